"""KMeans inertia against the number of clusters k (the "elbow" curve), two ways, and where it bends, if anywhere.

Two algorithms, one inertia:

- ``"minibatch"``: scikit-learn's ``MiniBatchKMeans`` with the series' settings (n_init 50, max_iter 100, tol 1e-4,
  mini-batches of 200), as the posts did it. Above ``fit_points`` points (50,000 in the elbow section) it is fitted on a
  seeded random subset of exactly that many points, the same subset for every k (:func:`fit_rows`). The series fitted
  it on MNIST's 60,000 training images; on a million points one curve took 436 s, while on 250,000 points of
  ``benchmarks/analyze_big.py``'s mixture fits on 20,000, 50,000, 100,000 or all points left the inertia (over all
  points) within 2 % of each other at k = 10, 40 and 80, without a trend. The fits of several k run side by side, one
  per core, each on one thread.
- ``"lloyd"``: full Lloyd k-means (faiss) from k-means++ starts. Fitting runs on the first ``fit_dims`` PCA
  components (when the space has more) and on a sample of ``max_points_per_centroid * k`` points (at least 20,000; a
  small k keeps the best of up to 16 starts); then every point is labelled and every centre moved to the mean of its
  points in the full space (one exact Lloyd update on all points). Fits run side by side, one per core, each on one
  thread (:func:`side_by_side`).

Inertia is the same function for both (``zspace.analyses.kmeans.group_inertia``): the sum over *all* points of the
squared Euclidean distance to the nearest centre, in the full space, in chunks (several centre sets share one pass).

The elbow is the Kneedle point (Satopää et al. 2011, offline form): on the curve normalised to the unit square, the k
farthest below the chord from the first to the last point. It is called *pronounced* only when the curve really
bends there: the slope of log(inertia) against log(k) over [k/2, k] is at least ``min_slope_ratio`` times the slope over
[k, 2k]. A power law ``k^-a`` (what clusterless data gives: no scale of its own) has ratio 1 everywhere, and the
series found none on CelebA latents or raw MNIST.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from zspace.analyses.kmeans import (
    cluster_means,
    faiss_labels,
    faiss_threads,
    group_inertia,
    one_thread,
    pca_basis,
    project,
)
from zspace.io.limits import PASS_RATE, check_time, estimate_kmeans_seconds

log = logging.getLogger(__name__)

ALGORITHMS = ("lloyd", "minibatch")
CENTRES_PER_PASS = 512  # centre sets are grouped until they hold this many centres: one pass over X for all


@dataclass(frozen=True)
class MiniBatchSettings:
    """scikit-learn ``MiniBatchKMeans`` parameters; the defaults are the series' elbow settings for MNIST."""

    n_init: int = 50  # initialisations tried per fit (the best on a validation batch is kept)
    max_iter: int = 100  # passes over the data at most
    tol: float = 1e-4  # early stop on small centre changes
    batch_size: int = 200  # points per mini-batch


@dataclass(frozen=True)
class LloydSettings:
    """faiss k-means parameters."""

    n_iter: int = 20  # Lloyd iterations per fit
    max_points_per_centroid: int = 256  # fit on a sample of this many points per centre (inertia uses all points)
    fit_dims: int = 64  # fit in the first fit_dims PCA components when the space has more; 0 = the full space
    threads: int = 0  # fits side by side, each on one faiss thread; 0 = one per core


@dataclass
class Elbow:
    """Where an inertia curve bends: the Kneedle point and whether the bend is pronounced."""

    k: int | None  # the Kneedle point (None when the curve is too short or flat)
    pronounced: bool  # the log-log slope drops by at least min_slope_ratio at k
    slope_ratio: float  # log-log slope before k / slope after k (inf when flat after k)
    method: str = "kneedle"

    def describe(self) -> str:
        if self.k is None:
            return "no elbow (curve too short or flat)"
        if not self.pronounced:
            return f"no pronounced elbow (Kneedle point k = {self.k}, log-log slope ratio {self.slope_ratio:.2f})"
        return f"elbow at k = {self.k} (log-log slope ratio {self.slope_ratio:.2f})"


@dataclass
class ElbowCurve:
    """Inertia of every fit: ``inertia`` of shape (n_k, restarts), one row per k of ``ks``."""

    algorithm: str
    ks: np.ndarray
    inertia: np.ndarray
    seconds: float
    elbow: Elbow
    settings: dict = field(default_factory=dict)

    best = property(lambda self: self.inertia.min(axis=1))  # (n_k,) best of the restarts
    mean = property(lambda self: self.inertia.mean(axis=1))
    worst = property(lambda self: self.inertia.max(axis=1))

    def relative_spread(self) -> np.ndarray:
        """(max - min) / min over the restarts, per k."""
        return (self.worst - self.best) / np.maximum(self.best, np.finfo(float).tiny)

    def to_metrics(self) -> dict:
        spread = self.relative_spread()
        return {
            "algorithm": self.algorithm,
            "ks": self.ks.tolist(),
            "inertia_mean": self.mean.tolist(),
            "inertia_min": self.best.tolist(),
            "inertia_max": self.worst.tolist(),
            "restarts": int(self.inertia.shape[1]),
            "max_relative_spread": float(spread.max()) if len(spread) else 0.0,
            "k_max_relative_spread": int(self.ks[spread.argmax()]) if len(spread) else None,
            "elbow_k": self.elbow.k,
            "elbow_pronounced": self.elbow.pronounced,
            "elbow_slope_ratio": float(self.elbow.slope_ratio) if np.isfinite(self.elbow.slope_ratio) else None,
            "elbow_method": self.elbow.method,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
        }


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def minibatch_centres(X: np.ndarray, k: int, *, seed: int, settings: MiniBatchSettings) -> np.ndarray:
    """Centres (k, d) of scikit-learn's ``MiniBatchKMeans`` with the given settings (on one thread: see below)."""
    with one_thread():
        return _minibatch_fit(X, k, seed, settings)


def _minibatch_fit(X: np.ndarray, k: int, seed: int, settings: MiniBatchSettings) -> np.ndarray:
    """One ``MiniBatchKMeans`` fit; OpenMP on one thread in the calling thread (its thread count is per thread)."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    km = MiniBatchKMeans(n_clusters=k, random_state=seed, compute_labels=False, **asdict(settings))
    with threadpool_limits(limits=1, user_api="openmp"):
        return km.fit(X).cluster_centers_


def fit_rows(n_points: int, fit_points: int, seed: int) -> np.ndarray | None:
    """The rows a reference curve is fitted on: None (all ``n_points``) unless ``0 < fit_points < n_points``, else
    a seeded random subset of exactly ``fit_points`` distinct rows, sorted: ndarray of shape (fit_points,), int64."""
    if not 0 < fit_points < n_points:
        return None
    rng = np.random.default_rng(_seed(seed, 0x5EED))
    return np.sort(rng.choice(n_points, size=fit_points, replace=False)).astype(np.int64)


def cores() -> int:
    """Threads the fits may use: the cores of this process, capped by ``--threads`` (zspace.io.limits)."""
    from zspace.io.limits import cpu_threads

    return cpu_threads()


# --- the curve ---------------------------------------------------------------------------------------------

Fitter = Callable[[list[tuple[int, int]]], list[np.ndarray]]


def side_by_side(fn: Callable[[tuple[int, int]], np.ndarray], jobs: list[tuple[int, int]], workers: int) -> list:
    """``[fn(job) for job in jobs]``, ``workers`` at a time in threads, with BLAS on one thread meanwhile.

    Each fit runs on one thread: faiss, scikit-learn and numpy release the GIL in their arithmetic, so two fits keep
    two cores busy, where one fit on two OpenMP threads spends its time at barriers (measured on 2 shared cores:
    faiss k-means of 20,000 x 64 points, k = 40, 9x slower on two threads than on one). BLAS' thread count is one
    setting for the whole process: it is set here, once, so that the fits' own one-thread contexts cannot leave it
    changed. Each fit has its own seed: the results do not depend on ``workers``.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        if workers <= 1 or len(jobs) <= 1:
            return [fn(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            return list(pool.map(fn, jobs))


def _lloyd_fitter(X: np.ndarray, seed: int, settings: LloydSettings, chunk_size: int) -> Fitter:
    if 0 < settings.fit_dims < X.shape[1]:
        mean, basis = pca_basis(X, settings.fit_dims, seed=seed)
        Y = project(X, mean, basis, chunk_size=chunk_size)
    else:
        Y = np.ascontiguousarray(X, dtype=np.float32)

    def one(job: tuple[int, int]) -> np.ndarray:
        k, r = job
        with faiss_threads(1):  # OpenMP's thread count is per thread: this fit's only
            return faiss_labels(
                Y, k, seed=_seed(seed, k, r), n_iter=settings.n_iter,
                max_points_per_centroid=settings.max_points_per_centroid,
            )  # fmt: skip

    def fit(jobs: list[tuple[int, int]]) -> list[np.ndarray]:
        labels = side_by_side(one, jobs, settings.threads or cores())
        return cluster_means(X, labels, [k for k, _ in jobs], chunk_size=chunk_size)

    return fit


def _minibatch_fitter(X: np.ndarray, seed: int, settings: MiniBatchSettings, n_jobs: int) -> Fitter:
    """Fits of ``X`` (the fitting rows), ``n_jobs`` at a time (:func:`side_by_side`), each on one thread."""

    def one(job: tuple[int, int]) -> np.ndarray:
        k, r = job
        return _minibatch_fit(X, k, _seed(seed, k, r), settings)

    return lambda jobs: side_by_side(one, jobs, n_jobs)


def _groups(jobs: list[tuple[int, int]], max_jobs: int = 16) -> list[list[tuple[int, int]]]:
    """Consecutive jobs grouped until a group holds CENTRES_PER_PASS centres or max_jobs fits."""
    groups: list[list[tuple[int, int]]] = [[]]
    for job in jobs:
        if groups[-1] and (sum(k for k, _ in groups[-1]) >= CENTRES_PER_PASS or len(groups[-1]) >= max_jobs):
            groups.append([])
        groups[-1].append(job)
    return [g for g in groups if g]


def check_ks(ks: Sequence[int], n_samples: int) -> np.ndarray:
    """Sorted unique ks as int64; ValueError for an empty list or a k outside 1..n_samples."""
    arr = np.unique(np.asarray(list(ks), dtype=np.int64))
    if len(arr) == 0:
        raise ValueError("no number of clusters to try: ks is empty")
    if arr[0] < 1 or arr[-1] > n_samples:
        raise ValueError(f"every k must be in 1..n_samples = {n_samples}, got {arr[0]}..{arr[-1]}")
    return arr


def elbow_curve(
    X: np.ndarray,
    ks: Sequence[int],
    *,
    algorithm: str = "lloyd",
    restarts: int = 3,
    seed: int = 0,
    lloyd: LloydSettings | None = None,
    minibatch: MiniBatchSettings | None = None,
    min_slope_ratio: float = 3.0,
    chunk_size: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    fit_points: int = 0,
    n_jobs: int = -1,
) -> ElbowCurve:
    """Inertia against k, ``restarts`` independent fits per k, and the elbow of the best-of-restarts curve.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features); a read-only memory map is read in chunks.
    ks : numbers of clusters, each in 1..n_samples.
    algorithm : ``"lloyd"`` (faiss) or ``"minibatch"`` (scikit-learn, the series' way).
    restarts : fits per k with different seeds (all derived from ``seed``).
    lloyd, minibatch : settings of each algorithm (defaults: :class:`LloydSettings`, :class:`MiniBatchSettings`).
    min_slope_ratio : see :func:`find_elbow`.
    progress : ``progress(done, total)`` over the fits.
    fit_points : ``"minibatch"`` only: with more points than this, fit on a seeded random subset of exactly this many
        (:func:`fit_rows`, the same for every k); 0 = fit on all points. The inertia is always over all points.
        ``settings`` records ``n_points``, ``fit_points`` (used) and ``fit_points_limit``.
    n_jobs : ``"minibatch"`` only: fits run side by side in this many threads; -1 = one per core.

    Returns
    -------
    ElbowCurve with ``inertia`` of shape (len(ks), restarts): exact nearest-centre inertia on all points.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    ks = check_ks(ks, len(X))
    lloyd, minibatch = lloyd or LloydSettings(), minibatch or MiniBatchSettings()
    seconds = estimate_seconds(len(X), X.shape[1], ks, restarts, algorithm, lloyd=lloyd, fit_points=fit_points)
    check_time(seconds, "elbow.ks", f"{len(ks) * restarts} k-means fits")
    t0 = time.perf_counter()
    if algorithm == "lloyd":
        fit, settings = _lloyd_fitter(X, seed, lloyd, chunk_size), asdict(lloyd)
    else:
        rows = fit_rows(len(X), fit_points, seed)
        X_fit = X if rows is None else X[rows]  # a copy of the subset (a memory map is read at those rows only)
        workers = cores() if n_jobs < 1 else n_jobs
        fit = _minibatch_fitter(X_fit, seed, minibatch, workers)
        settings = asdict(minibatch) | {"n_points": len(X), "fit_points": len(X_fit), "fit_points_limit": fit_points}
    jobs = [(int(k), r) for k in ks for r in range(restarts)]
    row = {int(k): i for i, k in enumerate(ks)}
    values = np.empty((len(ks), restarts), dtype=np.float64)
    done = 0
    for group in _groups(jobs):
        for (k, r), value in zip(group, group_inertia(X, fit(group), chunk_size=chunk_size), strict=True):
            values[row[k], r] = value
        done += len(group)
        if progress:
            progress(done, len(jobs))
    seconds = time.perf_counter() - t0
    log.info("elbow (%s): %d fits, inertia of %d points, in %.1f s", algorithm, len(jobs), len(X), seconds)
    elbow = find_elbow(ks, values.min(axis=1), min_slope_ratio=min_slope_ratio)
    return ElbowCurve(algorithm, ks, values, seconds, elbow, settings | {"seed": seed})


def estimate_seconds(
    n_points: int,
    n_features: int,
    ks: Sequence[int],
    restarts: int,
    algorithm: str,
    *,
    lloyd: LloydSettings | None = None,
    fit_points: int = 0,
) -> float:
    """Coarse seconds of :func:`elbow_curve`, to refuse hours of work before it starts (not to predict run time).

    Lloyd: :func:`zspace.io.limits.estimate_kmeans_seconds` with the fits' sample and dimensions. MiniBatchKMeans:
    the same model for fits on all ``fit_points`` (or all) points in every dimension, plus the inertia pass over all
    ``n_points``.
    """
    if algorithm == "lloyd":
        lloyd = lloyd or LloydSettings()
        return estimate_kmeans_seconds(
            n_points, n_features, ks, restarts, points_per_centroid=lloyd.max_points_per_centroid,
            fit_dims=lloyd.fit_dims,
        )  # fmt: skip
    m = fit_points if 0 < fit_points < n_points else n_points
    fits = estimate_kmeans_seconds(m, n_features, ks, restarts, points_per_centroid=2**62, fit_dims=0)
    return fits + restarts * float(sum(int(k) for k in ks)) * n_points * n_features / PASS_RATE


def find_elbow(ks: Sequence[int], inertia: Sequence[float], *, min_slope_ratio: float = 3.0) -> Elbow:
    """The Kneedle point of a decreasing inertia curve, and whether the curve really bends there.

    Parameters
    ----------
    ks : ndarray of shape (n_k,), increasing.
    inertia : ndarray of shape (n_k,).
    min_slope_ratio : the elbow is pronounced when the least-squares slope of log(inertia) against log(k) over
        [k/2, k] is at least this many times the slope over [k, 2k] (a power law gives 1).

    Returns
    -------
    Elbow; ``k`` is None for fewer than 3 points or a curve that does not fall below its chord.
    """
    k_arr = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertia, dtype=np.float64)
    if len(k_arr) < 3 or not y[0] > y[-1]:
        return Elbow(None, False, float("nan"))
    x_n = (k_arr - k_arr[0]) / (k_arr[-1] - k_arr[0])
    y_n = (y - y[-1]) / (y[0] - y[-1])
    below = (1.0 - x_n) - y_n  # distance below the chord from the first to the last point
    i = int(np.argmax(below[1:-1])) + 1
    if below[i] <= 0:
        return Elbow(None, False, float("nan"))
    log_k, log_y = np.log(k_arr), np.log(np.maximum(y, y.max() * 1e-12))
    idx = np.arange(len(k_arr))
    near_before = ((k_arr >= k_arr[i] / 2) & (idx <= i)) | (idx == i - 1)  # from k/2 to k: the local slope
    near_after = ((k_arr <= k_arr[i] * 2) & (idx >= i)) | (idx == i + 1)  # from k to 2k
    before = -np.polyfit(log_k[near_before], log_y[near_before], 1)[0]
    after = -np.polyfit(log_k[near_after], log_y[near_after], 1)[0]
    ratio = before / after if after > 0 else float("inf")
    return Elbow(int(k_arr[i]), bool(ratio >= min_slope_ratio), float(ratio))
