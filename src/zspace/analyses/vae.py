"""VAE diagnostics: how much logvar moves z away from mu, KL per dimension and active units.

z = mu + exp(logvar / 2) * eps. The series' tiny-KL VAE (kl_weight 1e-5) had logvar between -24.66 and -2.02
(mean -13.68), max |z - mu| = 0.26 with only 5 of 43.5 M components in 0.05 < |z - mu| < 2, and radii of z and mu
equal to a relative 6.1e-5 on average: it placed its points with mu alone, like an AE.

Active units (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders"): the activity of unit u is
A_u = Cov_x(E_q[z_u | x]) = the variance over the data of mu_u; a unit is active when A_u > 0.01. The KL per
dimension is the mean over points of 0.5 * (mu^2 + exp(logvar) - 1 - logvar). One pass over the arrays, in row
blocks with float64 accumulators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analyses.radius import DEFAULT_CHUNK, check_latent, iter_rows


class _Moments:
    """Per-column mean and sum of squared deviations, merged block by block (Chan et al.)."""

    def __init__(self, d: int):
        self.n, self.mean, self.m2 = 0, np.zeros(d), np.zeros(d)

    def add(self, block: np.ndarray) -> None:
        nb, mb = len(block), block.mean(axis=0)
        m2b = ((block - mb) ** 2).sum(axis=0)
        delta, tot = mb - self.mean, self.n + nb
        self.mean += delta * nb / tot
        self.m2 += m2b + delta**2 * self.n * nb / tot
        self.n = tot

    @property
    def variance(self) -> np.ndarray:
        return self.m2 / self.n


def _kl_block(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Summed KL(q(z|x) || N(0, 1)) of a block, per dimension: ndarray (z_dim,)."""
    return 0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar).sum(axis=0)


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Mean over points of 0.5 * (mu^2 + exp(logvar) - 1 - logvar): ndarray (z_dim,) of per-dimension KL (nats).

    ``mu``, ``logvar`` : ndarray of shape (n_samples, z_dim).
    """
    mu, logvar = check_pair(mu, logvar, "logvar")
    total = np.zeros(mu.shape[1])
    for rows, m in iter_rows(mu, chunk):
        total += _kl_block(m, np.asarray(logvar[rows], dtype=np.float64))
    return total / len(mu)


def mu_variance(mu: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Activity A_u = variance over points (ddof 0) of every column of ``mu`` (n_samples, z_dim): ndarray (z_dim,)."""
    mu = check_latent(mu, "mu")
    mom = _Moments(mu.shape[1])
    for _, m in iter_rows(mu, chunk):
        mom.add(m)
    return mom.variance


@dataclass
class RadiusComparison:
    """Radius from z against radius from mu; relative differences are |R_z - R_mu| / R_mu."""

    z_max: float
    z_min: float
    z_mean: float
    mu_max: float
    mu_min: float
    mu_mean: float
    abs_max: float
    abs_mean: float
    rel_max: float
    rel_mean: float


def compare_radii(R_z: np.ndarray, R_mu: np.ndarray) -> RadiusComparison:
    """Max, min, mean of both radii and the max / mean absolute and relative differences (points with R_mu > 0)."""
    R_z, R_mu = np.asarray(R_z, dtype=np.float64), np.asarray(R_mu, dtype=np.float64)
    if R_z.shape != R_mu.shape or R_z.ndim != 1 or len(R_z) == 0:
        raise ValueError(f"R_z and R_mu must be non-empty 1-D arrays of one length, got {R_z.shape}, {R_mu.shape}")
    diff = np.abs(R_z - R_mu)
    pos = R_mu > 0
    rel = diff[pos] / R_mu[pos] if pos.any() else np.array([np.nan])
    return RadiusComparison(
        *(float(f(R)) for R in (R_z, R_mu) for f in (np.max, np.min, np.mean)),
        float(diff.max()),
        float(diff.mean()),
        float(rel.max()),
        float(rel.mean()),
    )


@dataclass
class VAEDiagnostics:
    """Everything :func:`vae_diagnostics` measures; arrays of shape (z_dim,)."""

    n: int
    z_dim: int
    logvar_min: float
    logvar_max: float
    logvar_mean: float
    max_abs_diff: float  # max |z - mu| over all components
    band: tuple[float, float]
    band_count: int  # components with band[0] < |z - mu| < band[1]
    radius: RadiusComparison
    kl_per_dim: np.ndarray
    mu_variance: np.ndarray
    active_threshold: float

    @property
    def active(self) -> np.ndarray:
        return self.mu_variance > self.active_threshold

    def to_metrics(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "z_dim": self.z_dim,
            "components": self.n * self.z_dim,
            "logvar_min": self.logvar_min,
            "logvar_max": self.logvar_max,
            "logvar_mean": self.logvar_mean,
            "max_abs_z_minus_mu": self.max_abs_diff,
            "band": list(self.band),
            "band_count": self.band_count,
            "radius": vars(self.radius).copy(),
            "kl_total": float(self.kl_per_dim.sum()),
            "kl_per_dim": np.round(self.kl_per_dim, 6).tolist(),
            "mu_variance": np.round(self.mu_variance, 6).tolist(),
            "active_threshold": self.active_threshold,
            "active_units": int(self.active.sum()),
        }


def vae_diagnostics(
    z: np.ndarray,
    mu: np.ndarray,
    logvar: np.ndarray,
    *,
    band: tuple[float, float] = (0.05, 2.0),
    active_threshold: float = 0.01,
    chunk: int = DEFAULT_CHUNK,
) -> VAEDiagnostics:
    """logvar range, |z - mu|, radius from z vs from mu, KL per dimension and active units, in one blocked pass.

    Parameters
    ----------
    z, mu, logvar : ndarray of shape (n_samples, z_dim)
    band : count the components with band[0] < |z - mu| < band[1].
    active_threshold : a unit is active when the variance of its mu over the points exceeds this.
    chunk : rows per block.
    """
    z, mu = check_pair(z, mu, "mu")
    _, logvar = check_pair(z, logvar, "logvar")
    acc = _Pass(*z.shape, band)
    for rows, zb in iter_rows(z, chunk):
        acc.add(rows, zb, np.asarray(mu[rows], dtype=np.float64), np.asarray(logvar[rows], dtype=np.float64))
    n, d = z.shape
    return VAEDiagnostics(
        n=n,
        z_dim=d,
        logvar_min=float(acc.lv_min),
        logvar_max=float(acc.lv_max),
        logvar_mean=float(acc.lv_sum / (n * d)),
        max_abs_diff=float(acc.diff_max),
        band=(float(band[0]), float(band[1])),
        band_count=acc.count,
        radius=compare_radii(acc.R_z, acc.R_mu),
        kl_per_dim=acc.kl / n,
        mu_variance=acc.moments.variance,
        active_threshold=float(active_threshold),
    )


class _Pass:
    """The running extremes, sums and per-point radii of :func:`vae_diagnostics`, one row block at a time."""

    def __init__(self, n: int, d: int, band: tuple[float, float]):
        self.band = band
        self.lv_min, self.lv_max, self.lv_sum, self.diff_max, self.count = np.inf, -np.inf, 0.0, 0.0, 0
        self.kl, self.moments = np.zeros(d), _Moments(d)
        self.R_z, self.R_mu = np.empty(n), np.empty(n)

    def add(self, rows: slice, z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> None:
        self.lv_min, self.lv_max = min(self.lv_min, logvar.min()), max(self.lv_max, logvar.max())
        self.lv_sum += logvar.sum()
        diff = np.abs(z - mu)
        self.diff_max = max(self.diff_max, diff.max())
        self.count += int(np.count_nonzero((diff > self.band[0]) & (diff < self.band[1])))
        self.kl += _kl_block(mu, logvar)
        self.moments.add(mu)
        self.R_z[rows], self.R_mu[rows] = np.sqrt((z**2).sum(axis=1)), np.sqrt((mu**2).sum(axis=1))


def check_pair(a: Any, b: Any, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = check_latent(a), check_latent(b, name_b)
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of z/mu {a.shape}, got {b.shape}")
    return a, b


@dataclass
class LogvarDistribution:
    """Every logvar component counted: a histogram, the count inside a band, the counts above thresholds."""

    edges: np.ndarray  # (n_bins + 1,) interval edges, width ``width``
    counts: np.ndarray  # (n_bins,) int64
    band: tuple[float, float]
    band_count: int  # components with band[0] <= logvar <= band[1] (the series: 2 of 43.5 M in [-3, 5])
    above: dict[float, int]  # threshold -> components with logvar > threshold
    n_components: int
    z_dim: int = 0

    def to_metrics(self) -> dict[str, Any]:
        return {
            "band": list(self.band),
            "band_count": self.band_count,
            "above": {f"{t:g}": c for t, c in self.above.items()},
            "n_components": self.n_components,
        }


MAX_LOGVAR_BINS = 10_000


def logvar_distribution(
    logvar: np.ndarray,
    *,
    width: float = 0.5,
    band: tuple[float, float] = (-3.0, 5.0),
    thresholds: tuple[float, ...] = (-10.0, -5.0, -3.0, 0.0),
    chunk: int = DEFAULT_CHUNK,
) -> LogvarDistribution:
    """Count every component of ``logvar`` (n_samples, z_dim) in one pass of row blocks.

    The histogram spans [floor(min), ceil(max)] in intervals of ``width`` (left-closed; the maximum falls in the
    last interval).
    """
    lo, hi = np.inf, -np.inf
    for _, block in iter_rows(logvar, chunk):
        lo, hi = min(lo, block.min()), max(hi, block.max())
    if (hi - lo) / width > MAX_LOGVAR_BINS:  # far outliers: wider intervals, not a huge array
        width = (hi - lo) / MAX_LOGVAR_BINS
    start = np.floor(lo / width) * width
    n_bins = max(1, int(np.ceil((hi - start) / width + 1e-9)))
    counts = np.zeros(n_bins, dtype=np.int64)
    above = dict.fromkeys(thresholds, 0)
    band_count = 0
    for _, block in iter_rows(logvar, chunk):
        idx = np.minimum(((block - start) / width).astype(np.int64), n_bins - 1)
        counts += np.bincount(idx.ravel(), minlength=n_bins)
        band_count += int(np.count_nonzero((block >= band[0]) & (block <= band[1])))
        for t in thresholds:
            above[t] += int(np.count_nonzero(block > t))
    edges = start + width * np.arange(n_bins + 1)
    n = int(logvar.shape[0] * logvar.shape[1])
    return LogvarDistribution(edges, counts, band, band_count, above, n, int(logvar.shape[1]))


def head_weight_norms(mu_weight: np.ndarray, logvar_weight: np.ndarray) -> dict[str, float]:
    """Frobenius norms of the mu- and logvar-head kernels (z_dim, features) and their ratio.

    The series' explanation of the tiny-KL VAE: the logvar head's weights grow large and negative-biased so that
    exp(logvar / 2) vanishes, while the mu head does the work of an AE's z head.
    """
    mu_n = float(np.linalg.norm(np.asarray(mu_weight, dtype=np.float64)))
    lv_n = float(np.linalg.norm(np.asarray(logvar_weight, dtype=np.float64)))
    return {"mu_head_norm": mu_n, "logvar_head_norm": lv_n, "logvar_over_mu": lv_n / mu_n if mu_n else float("nan")}
