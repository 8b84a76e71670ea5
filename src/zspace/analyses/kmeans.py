"""The k-means kernels shared by the elbow analysis and the cluster classifier, all in chunks over the data.

- nearest-centre labels and inertia (one definition of inertia for every algorithm; several centre sets can share
  one pass over the data);
- faiss Lloyd k-means from k-means++ starts, on all points or on a sample, and the full-space means of clusters;
- a PCA subspace (from a sample) to fit in when the space is large.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

MIN_SAMPLE = 20_000  # fit on at least this many points (a few hundred per centre would starve a small k)
SMALL_K_STARTS = 64  # a fit of k clusters keeps the best of up to SMALL_K_STARTS // k k-means++ starts
SMALL_WORK = 2e7  # points x dims x clusters of one Lloyd iteration below which faiss runs on one thread


def _chunk(X: np.ndarray, start: int, stop: int, shift: np.ndarray) -> np.ndarray:
    return np.asarray(X[start:stop], dtype=np.float32) - shift


def nearest_centres(X: np.ndarray, centres: np.ndarray, *, chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every point and its squared distance, in chunks.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), possibly a read-only memory map.
    centres : ndarray of shape (n_clusters, n_features).

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64.
    sq_dist : ndarray of shape (n_samples,), float64, >= 0.
    """
    centres = np.asarray(centres, dtype=np.float32)
    shift = centres.mean(axis=0)  # distances are shift-invariant; centring keeps float32 cancellation small
    c = centres - shift
    c_sq = (c.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    labels = np.empty(len(X), dtype=np.int64)
    sq_dist = np.empty(len(X), dtype=np.float64)
    for start in range(0, len(X), chunk_size):
        xb = _chunk(X, start, start + chunk_size, shift)
        d = c_sq - 2.0 * (xb @ c.T)  # (B, k): squared distance minus |x|^2
        j = d.argmin(axis=1)
        best = d[np.arange(len(xb)), j].astype(np.float64) + (xb.astype(np.float64) ** 2).sum(axis=1)
        labels[start : start + len(xb)] = j
        sq_dist[start : start + len(xb)] = np.maximum(best, 0.0)
    return labels, sq_dist


def inertia(X: np.ndarray, centres: np.ndarray, *, chunk_size: int = 4096) -> float:
    """Sum over all points of the squared distance to the nearest centre (``X`` (n, d), ``centres`` (k, d))."""
    return float(group_inertia(X, [centres], chunk_size=chunk_size)[0])


def group_inertia(X: np.ndarray, centre_sets: Sequence[np.ndarray], *, chunk_size: int = 4096) -> np.ndarray:
    """Inertia of several centre sets in one pass over ``X``: one product with all centres per chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features).
    centre_sets : sequence of ndarrays of shape (k_i, n_features).

    Returns
    -------
    ndarray of shape (len(centre_sets),), float64.
    """
    sets = [np.asarray(c, dtype=np.float32) for c in centre_sets]
    allc = np.concatenate(sets)
    shift = allc.mean(axis=0)
    c = allc - shift
    c_sq = (c.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    bounds = np.cumsum([0] + [len(s) for s in sets])
    totals = np.zeros(len(sets), dtype=np.float64)
    for start in range(0, len(X), chunk_size):
        xb = _chunk(X, start, start + chunk_size, shift)
        x_sq = (xb.astype(np.float64) ** 2).sum(axis=1)
        d = c_sq - 2.0 * (xb @ c.T)  # (B, sum k_i)
        for i in range(len(sets)):
            best = d[:, bounds[i] : bounds[i + 1]].min(axis=1).astype(np.float64) + x_sq
            totals[i] += np.maximum(best, 0.0).sum()
    return totals


def pca_basis(X: np.ndarray, n_components: int, *, seed: int = 0, sample: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and the top ``n_components`` principal axes (d, p) of ``X``, from a random sample of rows."""
    from sklearn.utils.extmath import randomized_svd

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), size=min(sample, len(X)), replace=False))
    xs = np.asarray(X[rows], dtype=np.float32)
    mean = xs.mean(axis=0)
    with one_thread():
        _, _, vt = randomized_svd(xs - mean, n_components, random_state=seed)
    return mean, np.ascontiguousarray(vt.T, dtype=np.float32)


def project(X: np.ndarray, mean: np.ndarray, basis: np.ndarray, *, chunk_size: int = 4096) -> np.ndarray:
    """``(X - mean) @ basis`` in chunks: ndarray of shape (n_samples, p), float32."""
    out = np.empty((len(X), basis.shape[1]), dtype=np.float32)
    for start in range(0, len(X), chunk_size):
        out[start : start + chunk_size] = _chunk(X, start, start + chunk_size, mean) @ basis
    return out


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run faiss with ``n`` OpenMP threads inside the block (0: leave as is)."""
    import faiss

    old = faiss.omp_get_max_threads()
    if n > 0:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)


def one_thread():
    """A context in which OpenMP and BLAS run on one thread.

    scikit-learn's MiniBatchKMeans runs a parallel region per mini-batch of 200 points: on a busy 2-core machine
    the threads spin-wait for each other and a fit takes 4 - 16 times longer than on one thread (measured:
    MNIST, k = 225, n_init 100: 25 s on one thread, 105 - 430 s on two).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def kmeans_plusplus_start(Y: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """k-means++ centres (k, p) drawn on a random sample of max(1000, 16 k) points of ``Y`` (n, p)."""
    from sklearn.cluster import kmeans_plusplus

    rows = np.random.default_rng(seed).choice(len(Y), size=min(len(Y), max(1000, 16 * k)), replace=False)
    with one_thread():  # a small problem: threads only wait for each other
        init, _ = kmeans_plusplus(np.asarray(Y[np.sort(rows)], dtype=np.float32), k, random_state=seed)
    return init


def faiss_gpus() -> int:
    """GPUs faiss can use: 0 for faiss-cpu (its ``get_num_gpus`` is absent or says 0)."""
    import faiss

    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except RuntimeError:
        return 0


def faiss_kmeans(Y: np.ndarray, k: int, *, seed: int, n_iter: int, init: np.ndarray | None = None):
    """faiss Lloyd k-means on all rows of ``Y`` (n, p) float32, ``n_iter`` iterations from ``init`` (k, p)."""
    import faiss

    gpu = faiss_gpus() > 0  # a faiss build with GPU support (faiss-gpu) fits on every GPU it sees
    km = faiss.Kmeans(Y.shape[1], k, niter=n_iter, seed=seed, max_points_per_centroid=len(Y) // k + 1, gpu=gpu)
    km.cp.min_points_per_centroid = 1  # small data is fine here; faiss would print a warning otherwise
    small = Y.size * k < SMALL_WORK  # threads cost more than they save on small problems
    with faiss_threads(1) if small else contextlib.nullcontext():
        km.train(Y, init_centroids=init)
    return km


def n_starts(k: int) -> int:
    """k-means++ starts of one fit of k clusters: 16 for k <= 4, halving with k, 1 from k = 33 on (and for k = 1)."""
    return 1 if k == 1 else max(1, min(16, SMALL_K_STARTS // k))


def faiss_labels(Y: np.ndarray, k: int, *, seed: int, n_iter: int, max_points_per_centroid: int) -> np.ndarray:
    """Fit faiss k-means on ``Y`` (n, p) float32 and return the nearest-centre label (n,) of every point.

    Fits on a random sample of ``max_points_per_centroid * k`` points (at least MIN_SAMPLE), from k-means++ centres
    (faiss' own start, k random points, often misses well-separated clusters). A small k, where a fit costs little
    and a poor local optimum costs much, keeps the best (lowest inertia on the sample) of ``n_starts(k)`` starts.
    """
    rng = np.random.default_rng(seed)
    m = min(len(Y), max(max_points_per_centroid * k, MIN_SAMPLE))
    sample = Y if m == len(Y) else np.ascontiguousarray(Y[np.sort(rng.choice(len(Y), m, replace=False))])
    best = None
    for start in range(n_starts(k)):
        s = (seed + 7919 * start) % 2**31  # faiss takes a C int
        km = faiss_kmeans(sample, k, seed=s, n_iter=n_iter, init=kmeans_plusplus_start(sample, k, seed=s))
        if best is None or km.obj[-1] < best.obj[-1]:
            best = km
    _, idx = best.index.search(Y, 1)
    return idx[:, 0].astype(np.int64)


def cluster_means(
    X: np.ndarray, label_sets: Sequence[np.ndarray], ks: Sequence[int], *, chunk_size: int = 4096
) -> list[np.ndarray]:
    """Full-space mean of every cluster of several labellings, in one pass over ``X``.

    An empty cluster keeps no mean of its own: it gets the mean of all points (it will simply not be nearest).
    Returns one ndarray of shape (k_i, n_features), float32, per labelling.
    """
    offsets = np.cumsum([0, *ks])
    sums = np.zeros((offsets[-1], X.shape[1]), dtype=np.float64)
    counts = np.zeros(offsets[-1], dtype=np.float64)
    for start in range(0, len(X), chunk_size):
        xb = np.asarray(X[start : start + chunk_size], dtype=np.float32)
        parts = zip(label_sets, offsets[:-1], strict=True)
        rows = np.concatenate([lab[start : start + len(xb)] + off for lab, off in parts])
        cols = np.tile(np.arange(len(xb)), len(label_sets))
        onehot = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(offsets[-1], len(xb)))
        sums += onehot @ xb
        counts += np.bincount(rows, minlength=offsets[-1])
    overall = sums[: offsets[1]].sum(axis=0) / max(len(X), 1)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], overall)
    return [means[a:b].astype(np.float32) for a, b in itertools.pairwise(offsets)]


def lloyd(
    X: np.ndarray, k: int, *, seed: int, max_iter: int, tol: float, block: int = 10
) -> tuple[np.ndarray, float, int]:
    """Full Lloyd k-means on all points (faiss) from a k-means++ start: (centres (k, d), inertia, iterations).

    Runs in blocks of ``block`` iterations and stops when a block lowers the inertia by less than ``tol`` of it.
    """
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    centres, previous, done = kmeans_plusplus_start(Xf, k, seed=seed), np.inf, 0
    while done < max_iter:
        n_iter = min(block, max_iter - done)
        km = faiss_kmeans(Xf, k, seed=seed, n_iter=n_iter, init=centres)
        centres, objective, done = km.centroids, float(km.obj[-1]), done + n_iter
        if previous - objective <= tol * objective:
            break
        previous = objective
    return centres, objective, done
