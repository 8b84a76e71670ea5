"""Nearest-neighbour geometry of a point cloud: how close neighbours are, and how much of the space is void.

Three questions the series answered with pictures ("the z-points lie on thin filaments around voids"):

- **Nearest-neighbour distances against a matched Gaussian.** Points on thin structures have much closer
  neighbours than a Gaussian cloud with the same mean and covariance (the same overall spread, filled).
- **Void share.** The fraction of random probes whose nearest data point is farther than the 95th percentile of the
  data's own nearest-neighbour distances. A probe drawn from the data's own distribution lands in a "void" with
  probability ~5 % by construction; for points on a few thin curves probed from their Gaussian fit it is ~1.
- **Distances along decoded interpolation paths**: how far each decoded image on a straight line in z between two
  data points is from its nearest training image.

Neighbours are searched exactly with faiss (``IndexFlatL2``); faiss returns *squared* distances computed as
``|x|^2 + |y|^2 - 2 x.y`` in float32, which loses precision for close points far from the origin (exact duplicates
need not come out as 0). So faiss only finds the neighbours; their distances are recomputed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

CHUNK_BYTES = 2**28  # float32 bytes of reference rows indexed at a time (256 MiB)
QUERY_CHUNK = 4096  # query rows searched at a time


def _num(x: float) -> float | None:
    """A JSON-able float: None for nan/inf."""
    return float(x) if np.isfinite(x) else None


def _check_points(X: Any, name: str = "X", min_rows: int = 2) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or len(X) < min_rows or X.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array with at least {min_rows} rows, got shape {X.shape}")
    return X


def _flat_index(X32: np.ndarray):
    """An exact L2 faiss index holding the float32 rows ``X32``."""
    import faiss

    index = faiss.IndexFlatL2(X32.shape[1])
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:  # faiss-gpu: the exact search on every GPU it sees
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(X32)
    return index


def _exact(X: np.ndarray, q64: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Float64 distances (m, k) from queries ``q64`` (m, D) to rows ``X[idx]``; -1 in ``idx`` gives inf."""
    out = np.full(idx.shape, np.inf)
    for j in range(idx.shape[1]):
        ok = idx[:, j] >= 0
        diff = np.asarray(X[idx[ok, j]], dtype=np.float64).reshape(-1, q64.shape[1]) - q64[ok]
        out[ok, j] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def _drop_self(idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Remove each query's own row from its k+1 neighbours (the last one where duplicates pushed it out)."""
    is_self = idx == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    return idx[~is_self].reshape(len(idx), idx.shape[1] - 1)


def neighbour_distances(X: Any, k: int, *, chunk_size: int = QUERY_CHUNK) -> np.ndarray:
    """Distances of every point to its ``k`` nearest other points, nearest first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    k : int, 1 <= k < n_samples.
    chunk_size : query rows searched at a time.

    Returns
    -------
    ndarray of shape (n_samples, k), float64, each row sorted ascending; exact duplicates give 0.
    """
    X = _check_points(X)
    n = len(X)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n_samples - 1 = {n - 1}, got {k}")
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    index = _flat_index(X32)
    out = np.empty((n, k))
    for start in range(0, n, chunk_size):
        q = X32[start : start + chunk_size]
        _, idx = index.search(q, k + 1)
        idx = _drop_self(idx, np.arange(start, start + len(q)))
        out[start : start + len(q)] = np.sort(_exact(X32, q.astype(np.float64), idx), axis=1)
    return out


def nearest_distances(
    queries: Any, reference: Any, *, exclude: Any = None, chunk_size: int | None = None
) -> np.ndarray:
    """Distance of each query to its nearest reference row, the reference searched chunk by chunk.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, ...), flattened per row to n_features.
    reference : array-like of shape (n_reference, ...), anything with ``len()`` and row slicing (a memory map, or
        a lazy view that scales images); each slice is flattened per row to n_features.
    exclude : ndarray of shape (n_queries,), int, optional: a reference row each query must not match (itself),
        to measure the distance of a reference row to its nearest *other* row.
    chunk_size : reference rows indexed at a time; default: 256 MiB of float32 rows.

    Returns
    -------
    ndarray of shape (n_queries,), float64; inf where no reference row is allowed.
    """
    q32 = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(len(queries), -1))
    n_ref = len(reference)
    if len(q32) == 0 or n_ref == 0:
        raise ValueError(f"queries and reference must be non-empty, got {len(q32)} and {n_ref} rows")
    exclude = None if exclude is None else np.asarray(exclude, dtype=np.int64)
    if exclude is not None and exclude.shape != (len(q32),):
        raise ValueError(f"exclude must have shape ({len(q32)},), got {exclude.shape}")
    chunk_size = chunk_size or max(1, CHUNK_BYTES // (4 * q32.shape[1]))
    q64 = q32.astype(np.float64)
    best = np.full(len(q32), np.inf)
    for start in range(0, n_ref, chunk_size):
        ref = np.ascontiguousarray(np.asarray(reference[start : start + chunk_size], dtype=np.float32))
        ref = ref.reshape(len(ref), -1)
        if ref.shape[1] != q32.shape[1]:
            raise ValueError(f"reference rows have {ref.shape[1]} features, queries {q32.shape[1]}")
        _, idx = _flat_index(ref).search(q32, min(1 if exclude is None else 2, len(ref)))
        if exclude is not None:
            idx[idx + start == exclude[:, None]] = -1
        best = np.minimum(best, _exact(ref, q64, idx).min(axis=1))
    return best


def gaussian_fit(X: Any, *, chunk_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n_features,) and covariance (n_features, n_features) of ``X`` (n_samples, n_features), in chunks."""
    X = _check_points(X)
    n = len(X)
    mean = sum(np.asarray(X[s : s + chunk_size], dtype=np.float64).sum(axis=0) for s in range(0, n, chunk_size)) / n
    cov = np.zeros((X.shape[1], X.shape[1]))
    for s in range(0, n, chunk_size):
        c = np.asarray(X[s : s + chunk_size], dtype=np.float64) - mean
        cov += c.T @ c
    return mean, cov / (n - 1)


def sample_gaussian(mean: np.ndarray, cov: np.ndarray, n: int, random_state: Any = None) -> np.ndarray:
    """``n`` points (n, n_features) from N(mean, cov); a singular covariance is fine (eigen-decomposition)."""
    w, V = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    A = V * np.sqrt(np.clip(w, 0.0, None))
    eps = np.random.default_rng(random_state).standard_normal((n, len(mean)))
    return np.asarray(mean, dtype=np.float64) + eps @ A.T


@dataclass
class NNComparison:
    """Nearest-neighbour distances of the data and of a Gaussian sample with the same mean, covariance and n."""

    data_nn: np.ndarray = field(repr=False)  # (n,) distance of each data point to its nearest other point
    gaussian_nn: np.ndarray = field(repr=False)  # (n,) the same within the matched Gaussian sample
    median_data: float
    median_gaussian: float
    ratio: float  # median_data / median_gaussian: well below 1 = points on thin structures
    ks_statistic: float  # two-sample Kolmogorov-Smirnov distance between the two distributions (0 = same)
    ks_pvalue: float

    def to_metrics(self) -> dict[str, Any]:
        return {
            "n_points": len(self.data_nn),
            "median_data": _num(self.median_data),
            "median_gaussian": _num(self.median_gaussian),
            "ratio": _num(self.ratio),
            "ks_statistic": _num(self.ks_statistic),
            "ks_pvalue": _num(self.ks_pvalue),
        }


def nn_comparison(X: Any, *, data_nn: np.ndarray | None = None, random_state: Any = None) -> NNComparison:
    """Compare the data's nearest-neighbour distances with those of a Gaussian sample of the same spread.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    data_nn : ndarray of shape (n_samples,), optional: precomputed ``neighbour_distances(X, 1)[:, 0]``.
    random_state : int, Generator or None: seeds the Gaussian sample.
    """
    X = _check_points(X)
    if data_nn is None:
        data_nn = neighbour_distances(X, 1)[:, 0]
    mean, cov = gaussian_fit(X)
    gaussian_nn = neighbour_distances(sample_gaussian(mean, cov, len(X), random_state), 1)[:, 0]
    med_d, med_g = float(np.median(data_nn)), float(np.median(gaussian_nn))
    ks = stats.ks_2samp(data_nn, gaussian_nn, method="asymp")
    ratio = med_d / med_g if med_g > 0 else float("nan")
    return NNComparison(data_nn, gaussian_nn, med_d, med_g, ratio, float(ks.statistic), float(ks.pvalue))


@dataclass
class VoidShare:
    """Share of random probes farther from every data point than the ``quantile`` of data NN distances."""

    threshold: float  # the quantile of the data's nearest-neighbour distances
    quantile: float  # 0.95: a probe from the data's own distribution is "in a void" ~5 % of the time
    shares: dict[str, float]  # probe source -> share of its probes in voids
    probe_nn: dict[str, np.ndarray] = field(repr=False)  # probe source -> (n_probes,) distance to nearest data point

    def to_metrics(self) -> dict[str, Any]:
        return {
            "threshold": _num(self.threshold),
            "quantile": self.quantile,
            "baseline": round(1.0 - self.quantile, 6),
            "n_probes": {k: len(v) for k, v in self.probe_nn.items()},
            "shares": {k: _num(v) for k, v in self.shares.items()},
            "median_probe_distance": {k: _num(float(np.median(v))) for k, v in self.probe_nn.items()},
        }


def void_threshold(data_nn: Any, quantile: float = 0.95) -> float:
    """The void threshold: the ``quantile`` (in (0, 1)) of the data's nearest-neighbour distances ``data_nn`` (n,)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return float(np.quantile(np.asarray(data_nn, dtype=np.float64), quantile))


def in_void(nn: Any, threshold: float) -> np.ndarray:
    """Whether each point (a probe, or a data point) lies in a void: its nearest data point (for a data point, its
    nearest *other* one) is farther than ``threshold`` (:func:`void_threshold`). ``nn`` (n,) -> bool (n,)."""
    return np.asarray(nn, dtype=np.float64) > threshold


def void_share(
    X: Any,
    *,
    n_probes: int = 5000,
    quantile: float = 0.95,
    sources: Sequence[str] = ("standard", "gaussian_fit"),
    data_nn: np.ndarray | None = None,
    random_state: Any = None,
) -> VoidShare:
    """Fraction of random probes whose nearest data point is farther than the data's own NN-distance quantile.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_probes : probes per source.
    quantile : in (0, 1); the threshold is this quantile of the data-to-data nearest-neighbour distances.
    sources : ``"standard"`` = N(0, I), ``"gaussian_fit"`` = N(mean, cov) of ``X``.
    data_nn : ndarray of shape (n_samples,), optional: precomputed ``neighbour_distances(X, 1)[:, 0]``.
    random_state : int, Generator or None: seeds the probes.
    """
    X = _check_points(X)
    if not 0 < quantile < 1 or n_probes < 1:
        raise ValueError(f"need 0 < quantile < 1 and n_probes >= 1, got {quantile} and {n_probes}")
    unknown = set(sources) - {"standard", "gaussian_fit"}
    if unknown:
        raise ValueError(f"unknown probe sources {sorted(unknown)} (known: standard, gaussian_fit)")
    rng = np.random.default_rng(random_state)
    if data_nn is None:
        data_nn = neighbour_distances(X, 1)[:, 0]
    threshold = void_threshold(data_nn, quantile)
    probe_nn = {}
    for source in sources:
        if source == "standard":
            probes = rng.standard_normal((n_probes, X.shape[1]))
        else:
            probes = sample_gaussian(*gaussian_fit(X), n_probes, rng)
        probe_nn[source] = nearest_distances(probes, X)
    shares = {k: float(np.mean(in_void(v, threshold))) for k, v in probe_nn.items()}
    return VoidShare(threshold, quantile, shares, probe_nn)


def interpolate_linear(a: Any, b: Any, steps: int) -> np.ndarray:
    """Straight lines from ``a`` (P, D) to ``b`` (P, D): ``steps`` points each, ends included -> (P, steps, D)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or steps < 2:
        raise ValueError(f"need a, b of the same shape (P, D) and steps >= 2, got {a.shape}, {b.shape}, {steps}")
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    return a[:, None, :] * (1.0 - t) + b[:, None, :] * t


def path_distances(decoded: Any, reference: Any, *, chunk_size: int | None = None) -> np.ndarray:
    """Distance of each decoded image along each path to its nearest reference (training) image.

    Parameters
    ----------
    decoded : ndarray of shape (n_paths, steps, n_features): flattened images along the paths.
    reference : array-like of shape (n_reference, n_features) (or (n_reference, H, W, C), flattened per row in
        the same order as ``decoded``); anything with ``len()`` and row slicing, read chunk by chunk.
    chunk_size : reference rows indexed at a time; default: 256 MiB of float32 rows.

    Returns
    -------
    ndarray of shape (n_paths, steps), float64.
    """
    decoded = np.asarray(decoded)
    if decoded.ndim != 3 or 0 in decoded.shape:
        raise ValueError(f"decoded must have shape (n_paths, steps, n_features), got {decoded.shape}")
    p, s, d = decoded.shape
    return nearest_distances(decoded.reshape(p * s, d), reference, chunk_size=chunk_size).reshape(p, s)


@dataclass
class PathProfile:
    """Distances along interpolation paths, normalised by a training image's distance to its nearest other."""

    t: np.ndarray = field(repr=False)  # (steps,) position along the path, 0 to 1
    distances: np.ndarray = field(repr=False)  # (n_paths, steps) raw nearest-training-image distances
    baseline: float  # median distance of a training image to its nearest other training image
    normalised: np.ndarray = field(repr=False)  # distances / baseline
    median: np.ndarray = field(repr=False)  # (steps,) median of normalised over paths

    def to_metrics(self) -> dict[str, Any]:
        mid = len(self.t) // 2
        ends = float(np.median(self.normalised[:, [0, -1]]))
        return {
            "n_paths": int(self.distances.shape[0]),
            "steps": len(self.t),
            "baseline": _num(self.baseline),
            "median_at_ends": _num(ends),
            "median_at_middle": _num(float(self.median[mid])),
            "max_median": _num(float(self.median.max())),
            "middle_over_ends": _num(float(self.median[mid]) / ends if ends > 0 else float("nan")),
        }


def path_profile(distances: Any, baseline: float) -> PathProfile:
    """Normalise path distances (n_paths, steps) by ``baseline`` and take the median over paths."""
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[1] < 2 or len(distances) == 0:
        raise ValueError(f"distances must have shape (n_paths, steps >= 2), got {distances.shape}")
    normalised = distances / baseline if baseline > 0 else np.full_like(distances, np.nan)
    t = np.linspace(0.0, 1.0, distances.shape[1])
    return PathProfile(t, distances, float(baseline), normalised, np.median(normalised, axis=0))
