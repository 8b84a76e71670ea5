"""Intrinsic dimension of a point cloud: is it on near-one-dimensional filaments, or filling a volume?

Both estimators take the sorted nearest-neighbour distances of each point (``neighbour_distances(X, k)`` of
:mod:`zspace.analyses.manifold_nn`), so one neighbour search serves both.

**TwoNN** (Facco, d'Errico, Rodriguez & Laio 2017, "Estimating the intrinsic dimension of datasets by a minimal
neighborhood information", Sci. Rep. 7, 12140). For each point the ratio ``mu = r2 / r1`` of its second to first
nearest-neighbour distance follows a Pareto law ``P(mu > x) = x^-d`` whatever the local density, so ``log mu`` is
exponential with rate ``d``. The reported ``dimension`` is the maximum-likelihood estimate with the unbiased
normalisation, ``d = (N - 1) / sum(log mu)``. The paper's own estimate, a least-squares line through the origin of
``-log(1 - F(mu))`` against ``log mu`` after discarding the largest 10 % of ``mu`` (the noisy tail), is reported
beside it as ``dimension_fit``. Points with ``r1 = 0`` (exact duplicates) have no ratio and are left out, counted.

**Local MLE** (Levina & Bickel 2004, "Maximum likelihood estimation of intrinsic dimension", NIPS) on the ``k``
nearest neighbours ``T_1 <= ... <= T_k`` of a point: ``m = (k - 1) / sum_{j<k} log(T_k / T_j)``, one estimate per
point, whose distribution shows whether the dimension varies across the cloud. The global estimate follows
MacKay & Ghahramani's correction (2005 note): average the *inverses* ``1 / m`` over points, then invert, which is
far less biased than averaging ``m`` itself. Points whose neighbours all sit at one distance (including duplicates,
``T_1 = 0``) have no estimate and are left out, counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _num(x: float) -> float | None:
    """A JSON-able float: None for nan/inf."""
    return float(x) if np.isfinite(x) else None


def _check_distances(distances: Any, min_k: int) -> np.ndarray:
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < min_k or len(d) == 0:
        raise ValueError(f"distances must have shape (n_samples, k >= {min_k}), got {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(np.diff(d, axis=1) < 0):
        raise ValueError("distances must be finite, non-negative and sorted ascending along each row")
    return d


@dataclass
class TwoNN:
    """Global TwoNN intrinsic dimension."""

    dimension: float  # MLE (N - 1) / sum(log mu); ~1 = curves, ~z_dim = a filled volume
    dimension_fit: float  # Facco et al.'s line through the origin of -log(1 - F) vs log(mu), top tail discarded
    n_points: int  # points with a ratio (duplicates left out)
    n_duplicates: int  # points with r1 = 0
    discard_fraction: float  # share of the largest mu left out of the fit
    log_mu: np.ndarray = field(repr=False)  # (n_points,) sorted ascending, for the fit plot

    def to_metrics(self) -> dict[str, Any]:
        return {
            "dimension": _num(self.dimension),
            "dimension_fit": _num(self.dimension_fit),
            "n_points": self.n_points,
            "n_duplicates": self.n_duplicates,
            "discard_fraction": self.discard_fraction,
        }


def twonn_fit_points(log_mu: np.ndarray, discard_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The points (log mu, -log(1 - F)) of the TwoNN line fit, the top ``discard_fraction`` of mu left out.

    ``log_mu`` : ndarray of shape (n,), sorted ascending; F is the empirical CDF i / n.
    """
    n = len(log_mu)
    keep = min(int(np.floor(n * (1.0 - discard_fraction))), n - 1)
    i = np.arange(1, keep + 1)
    return log_mu[:keep], -np.log1p(-i / n)


def twonn(distances: Any, *, discard_fraction: float = 0.1) -> TwoNN:
    """TwoNN intrinsic dimension from each point's two nearest-neighbour distances.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k >= 2), each row sorted ascending (only the first two columns
        are used), e.g. ``neighbour_distances(X, 2)``.
    discard_fraction : share of the largest ratios left out of the line fit, in [0, 1).

    Returns
    -------
    TwoNN; ``dimension`` is inf when every ratio is 1 (all neighbours equidistant).
    """
    d = _check_distances(distances, 2)
    if not 0 <= discard_fraction < 1:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    dup = d[:, 0] <= 0
    log_mu = np.sort(np.log(d[~dup, 1] / d[~dup, 0]))
    n = len(log_mu)
    if n < 2:
        raise ValueError(f"TwoNN needs at least 2 points with a non-zero nearest-neighbour distance, got {n}")
    total = float(log_mu.sum())
    x, y = twonn_fit_points(log_mu, discard_fraction)
    sxx = float(x @ x)
    return TwoNN(
        dimension=(n - 1) / total if total > 0 else float("inf"),
        dimension_fit=float(x @ y) / sxx if sxx > 0 else float("inf"),
        n_points=n,
        n_duplicates=int(dup.sum()),
        discard_fraction=float(discard_fraction),
        log_mu=log_mu,
    )


@dataclass
class LocalDimension:
    """Levina-Bickel local intrinsic dimensions on k neighbours, and their MacKay-Ghahramani global average."""

    k: int
    estimates: np.ndarray = field(repr=False)  # (n_points,) one estimate per point with one
    dimension: float  # global: inverse of the mean of inverse local estimates
    median: float
    quantiles: dict[float, float]  # quantile -> value of the local estimates
    n_excluded: int  # points without an estimate (all k neighbours equidistant, or duplicates)

    def to_metrics(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "dimension": _num(self.dimension),
            "median": _num(self.median),
            "quantiles": {f"{q:g}": _num(v) for q, v in self.quantiles.items()},
            "n_points": len(self.estimates),
            "n_excluded": self.n_excluded,
        }


def _log_ratio_sums(d: np.ndarray) -> np.ndarray:
    """Per point ``sum_{j<k} log(T_k / T_j)`` (n_samples,), Gamma(k - 1, rate d); 0 where undefined (T_1 = 0)."""
    ok = d[:, 0] > 0
    s = np.zeros(len(d))
    s[ok] = np.log(d[ok, -1:] / d[ok, :-1]).sum(axis=1)
    return s


def local_dimensions(distances: Any) -> np.ndarray:
    """The Levina-Bickel MLE ``(k - 1) / sum_{j<k} log(T_k / T_j)`` of every point, on its k nearest neighbours.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k), k >= 2, each row sorted ascending, e.g.
        ``neighbour_distances(X, k)``; all k columns are used.

    Returns
    -------
    ndarray of shape (n_samples,), float64; NaN where the estimate is undefined (all k neighbours at one
    distance, or an exact duplicate, T_1 = 0).
    """
    d = _check_distances(distances, 2)
    s = _log_ratio_sums(d)
    out = np.full(len(d), np.nan)
    out[s > 0] = (d.shape[1] - 1) / s[s > 0]
    return out


def local_dimension(distances: Any, *, quantiles: Sequence[float] = QUANTILES) -> LocalDimension:
    """Levina-Bickel MLE of the intrinsic dimension around each point (:func:`local_dimensions`), and their
    MacKay-Ghahramani global average, on the k nearest neighbours.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k), k >= 2, each row sorted ascending, e.g.
        ``neighbour_distances(X, k)``; all k columns are used.
    quantiles : quantiles of the local estimates to report.

    Returns
    -------
    LocalDimension
    """
    d = _check_distances(distances, 2)
    k = d.shape[1]
    per_point = local_dimensions(d)
    ok = np.isfinite(per_point)
    if not ok.any():
        raise ValueError("no point has k neighbours at distinct non-zero distances; the local MLE is undefined")
    estimates = per_point[ok]
    return LocalDimension(
        k=k,
        estimates=estimates,
        dimension=float(1.0 / np.mean(1.0 / estimates)),  # = (k - 1) / mean(sum log(T_k / T_j))
        median=float(np.median(estimates)),
        quantiles={float(q): float(np.quantile(estimates, q)) for q in quantiles},
        n_excluded=int((~ok).sum()),
    )
