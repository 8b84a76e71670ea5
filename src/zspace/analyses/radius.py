"""Radius of latent points, R = ||z||_2: its histogram, peak, spread and the shells that hold most points.

For z ~ N(0, I_d) the radius follows a chi distribution with d degrees of freedom: its mode is sqrt(d - 1), its
mean about sqrt(d - 1/2) and its standard deviation about 1/sqrt(2) (the Gaussian annulus): R ~ 16 for the
series' d = 256. Everything here works on row blocks, so a memory-mapped (170,000, 256) array is never copied whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

DEFAULT_CHUNK = 16_384
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def check_latent(Z: Any, name: str = "Z") -> np.ndarray:
    """``Z`` as a 2-D array (no copy for an ndarray or memory map); raises ValueError when it is not one."""
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, z_dim), got shape {Z.shape}")
    return Z


def iter_rows(Z: np.ndarray, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
    """Consecutive row blocks of ``Z`` as float64 copies of at most ``chunk`` rows, with their row slice."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for start in range(0, len(Z), chunk):
        rows = slice(start, min(start + chunk, len(Z)))
        yield rows, np.asarray(Z[rows], dtype=np.float64)


def radii(Z: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Euclidean norm of every row.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    chunk : rows per block.

    Returns
    -------
    R : ndarray of shape (n_samples,), float64
    """
    Z = check_latent(Z)
    R = np.empty(len(Z))
    for rows, block in iter_rows(Z, chunk):
        R[rows] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return R


@dataclass
class Histogram:
    """Counts per interval [edges[i], edges[i + 1]); ``adapted`` when ``r_max`` had to be raised."""

    edges: np.ndarray  # (n_bins + 1,)
    counts: np.ndarray  # (n_bins,) int64
    width: float
    r_max_requested: float
    adapted: bool = False

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def r_max(self) -> float:
        return float(self.edges[-1])

    @property
    def peak(self) -> float:
        """Centre of the fullest interval (the first one on ties)."""
        return float(self.centres[int(np.argmax(self.counts))])


MAX_BINS = 10_000_000  # intervals per histogram at most (80 MB of counts)


def histogram(R: np.ndarray, *, width: float = 0.5, r_max: float = 35.0) -> Histogram:
    """Number of radii per interval of ``width`` over [0, r_max); r_max is raised to hold the largest radius.

    Parameters
    ----------
    R : ndarray of shape (n_samples,), non-negative radii.
    width : interval length (the series: 0.5 and 0.05).
    r_max : upper end; raised to a multiple of ``width`` above max(R) when points lie beyond it.
    """
    R = np.asarray(R, dtype=np.float64)
    if width <= 0 or r_max <= 0:
        raise ValueError(f"width and r_max must be > 0, got {width} and {r_max}")
    if R.ndim != 1 or len(R) == 0 or np.any(R < 0) or not np.all(np.isfinite(R)):
        raise ValueError("R must be a non-empty 1-D array of finite, non-negative radii")
    top = float(R.max())
    adapted = top >= r_max
    upper = width * (math.floor(top / width) + 1) if adapted else r_max
    if upper / width > MAX_BINS:  # a far outlier: coarser intervals (a multiple of width), not a huge array
        width *= math.ceil(upper / width / MAX_BINS)
        upper = width * (math.floor(top / width) + 1)
        adapted = True
    n_bins = max(1, math.ceil(upper / width - 1e-9))
    idx = np.minimum(np.floor(R / width).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(np.int64)
    return Histogram(np.arange(n_bins + 1) * width, counts, float(width), float(r_max), bool(adapted))


def narrowest_shell(R: np.ndarray, fraction: float) -> tuple[float, float]:
    """The narrowest shell [a, b] holding ceil(fraction * n) of the radii (exact, from the sorted radii)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    s = np.sort(np.asarray(R, dtype=np.float64))
    k = max(1, math.ceil(fraction * len(s) - 1e-9))
    spans = s[k - 1 :] - s[: len(s) - k + 1]
    i = int(np.argmin(spans))
    return float(s[i]), float(s[i + k - 1])


def shell_share(R: np.ndarray, a: float, b: float) -> float:
    """Share of radii with a <= R <= b."""
    r = np.asarray(R)
    return float(np.count_nonzero((r >= a) & (r <= b)) / len(r))


def chi_counts(edges: np.ndarray, z_dim: int, n: int) -> np.ndarray:
    """Expected counts per interval for ``n`` radii of a standard normal in ``z_dim`` dimensions (chi, d dof)."""
    if z_dim < 1:
        raise ValueError(f"z_dim must be >= 1, got {z_dim}")
    cdf = stats.chi.cdf(np.asarray(edges, dtype=np.float64), z_dim)
    return n * np.diff(cdf)


def chi_mode(z_dim: int) -> float:
    """Radius where the chi density with ``z_dim`` degrees of freedom peaks: sqrt(d - 1)."""
    return math.sqrt(max(z_dim - 1, 0))


@dataclass
class RadiusStats:
    """Summary of the radii of one latent array (z, or mu)."""

    n: int
    z_dim: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float]
    shell50: tuple[float, float]
    shell95: tuple[float, float]
    shells: list[tuple[float, float, float]]  # (a, b, share of points with a <= R <= b)
    hist: Histogram

    @property
    def peak(self) -> float:
        return self.hist.peak

    def to_metrics(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "z_dim": self.z_dim,
            "peak": self.peak,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "quantiles": self.quantiles,
            "shell50": list(self.shell50),
            "shell95": list(self.shell95),
            "shells": [{"a": a, "b": b, "share": s} for a, b, s in self.shells],
            "width": self.hist.width,
            "r_max": self.hist.r_max,
            "counts": self.hist.counts.tolist(),
            "chi_mode": chi_mode(self.z_dim),
        }


def radius_stats(
    R: np.ndarray,
    *,
    z_dim: int,
    width: float = 0.5,
    r_max: float = 35.0,
    shells: Sequence[tuple[float, float]] = ((12.0, 24.0), (14.0, 19.0)),
) -> RadiusStats:
    """Histogram, peak, mean, std, quantiles, narrowest 50 % / 95 % shells and shell shares of radii.

    Parameters
    ----------
    R : ndarray of shape (n_samples,), the radii (see :func:`radii`).
    z_dim : dimension of the latent space the radii come from.
    width, r_max : histogram intervals, see :func:`histogram`.
    shells : (a, b) pairs whose share of points is reported.
    """
    R = np.asarray(R, dtype=np.float64)
    hist = histogram(R, width=width, r_max=r_max)
    qs = np.quantile(R, QUANTILES)
    return RadiusStats(
        n=len(R),
        z_dim=int(z_dim),
        mean=float(R.mean()),
        std=float(R.std()),
        min=float(R.min()),
        max=float(R.max()),
        quantiles={f"{100 * q:g}%": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
        shell50=narrowest_shell(R, 0.5),
        shell95=narrowest_shell(R, 0.95),
        shells=[(float(a), float(b), shell_share(R, a, b)) for a, b in shells],
        hist=hist,
    )
