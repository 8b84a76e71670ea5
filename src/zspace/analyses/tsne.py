"""t-SNE maps of a latent space and a measure of how much of its neighbourhoods they keep.

t-SNE (van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008) places points in 2-D so that a
heavy-tailed similarity between map points matches a Gaussian, perplexity-calibrated similarity between the
original points. The optimisation runs in two phases: an early-exaggeration phase (attraction multiplied by
``early_exaggeration``), then the normal phase. We use openTSNE (Poličar et al. 2024), whose FFT-interpolated
repulsion (Linderman et al., "Fast interpolation-based t-SNE", Nat. Methods 2019) scales linearly, so maps of
100,000+ points take minutes instead of hours; below 10,000 points its Barnes-Hut repulsion is faster.

The series ran scikit-learn's ``TSNE`` with two parameter sets (:data:`PRESETS`), 1000 iterations in all, of
which scikit-learn spends the first 250 in the exaggeration phase; :func:`embed_tsne` splits ``n_iter`` the same
way. :func:`knn_preservation` scores a map by the share of each point's nearest neighbours it keeps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

log = logging.getLogger(__name__)

# (perplexity, early exaggeration) of the series: scikit-learn's defaults, and the non-standard set of posts XII/XIII.
PRESETS: dict[str, tuple[float, float]] = {"default": (30.0, 12.0), "series": (10.0, 16.0)}
EXAGGERATION_ITER = 250  # scikit-learn's early-exaggeration phase (its _EXPLORATION_MAX_ITER)
# Below this Barnes-Hut is faster: the FFT's grid cost grows with the map's extent, not with n (openTSNE's own
# threshold; on MNIST/PCA-50, 1 thread: 5k points BH 20 s vs FFT 43 s, 20k points BH 103 s vs FFT 80 s).
FFT_MIN_POINTS = 10_000
SERIAL_BELOW = 1_000  # below this openTSNE's threads cost more than they save


@dataclass
class TsneMap:
    """A t-SNE map and how it was made: ``Y`` of shape (n_samples, 2); the rest is JSON-able."""

    Y: np.ndarray
    preset: str
    perplexity: float  # as used, after any lowering for few points
    early_exaggeration: float
    pca_components: int | None
    n_iter: int
    seconds: float
    knn_preservation: float  # share of the k nearest neighbours in the input points kept in the map
    k: int

    @property
    def n(self) -> int:
        return len(self.Y)

    def to_metrics(self) -> dict:
        return {
            "n": self.n,
            "preset": self.preset,
            "perplexity": self.perplexity,
            "early_exaggeration": self.early_exaggeration,
            "pca_components": self.pca_components,
            "n_iter": self.n_iter,
            "seconds": round(self.seconds, 3),
            "knn_preservation": self.knn_preservation,
            "knn_chance": self.k / (self.n - 1),
            "k": self.k,
        }


def tsne_map(
    X: np.ndarray,
    *,
    preset: str = "default",
    n_iter: int = 1000,
    pca_components: int | None = None,
    random_state: int = 0,
    k: int = 10,
    n_queries: int | None = 2_000,
    n_jobs: int = -1,
) -> TsneMap:
    """:func:`embed_tsne` of ``X`` (n_samples, n_features) with a named preset, timed and scored.

    The score is :func:`knn_preservation` against ``X`` itself (also after PCA), so maps with and without PCA
    compare on the same footing: how many of a point's ``k`` nearest neighbours in ``X`` stay its neighbours.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown t-SNE preset {preset!r} (known: {', '.join(PRESETS)})")
    perplexity, exaggeration = PRESETS[preset]
    perplexity = fit_perplexity(perplexity, len(X))
    start = time.perf_counter()
    Y = embed_tsne(
        X,
        perplexity=perplexity,
        early_exaggeration=exaggeration,
        n_iter=n_iter,
        pca_components=pca_components,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    seconds = time.perf_counter() - start
    k = min(k, len(X) - 1)
    score = knn_preservation(X, Y, k, n_queries=n_queries, random_state=random_state)
    return TsneMap(Y, preset, perplexity, exaggeration, pca_components, n_iter, seconds, score, k)


def embed_tsne(
    X: np.ndarray,
    *,
    perplexity: float = 30.0,
    early_exaggeration: float = 12.0,
    n_iter: int = 1000,
    pca_components: int | None = None,
    random_state: int = 0,
    n_jobs: int = -1,
) -> np.ndarray:
    """Embed points in 2-D with t-SNE (openTSNE; FFT-accelerated repulsion from 10,000 points on, else Barnes-Hut).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points, e.g. latent vectors ``Z`` of shape (n_samples, z_dim); at least 4, all finite.
    perplexity : float
        Effective number of neighbours. When ``3 * perplexity > n_samples - 1`` it is lowered to
        ``(n_samples - 1) / 3`` (logged), as openTSNE and scikit-learn require.
    early_exaggeration : float
        Factor on the attractive forces during the early-exaggeration phase.
    n_iter : int
        Total iterations, split like scikit-learn: ``min(250, n_iter // 2)`` with exaggeration, the rest
        without (so 1000 = 250 + 750). At least 2.
    pca_components : int or None
        Project onto that many principal components (scikit-learn ``PCA``) first; None = use ``X`` as it is.
    random_state : int
        Seeds the PCA, the initialisation and the approximate neighbour search; a fixed value gives the
        same map for the same input and ``n_jobs``.
    n_jobs : int
        Threads for openTSNE; -1 = all cores (maps under 1,000 points always run on one thread).

    Returns
    -------
    ndarray of shape (n_samples, 2), float64
        The map. openTSNE's learning rate is its ``"auto"`` choice, ``n_samples / early_exaggeration``, and the
        initialisation is the (rescaled) PCA of the input.
    """
    X = _check_points(X)
    if pca_components is not None:
        X = reduce_pca(X, pca_components, random_state=random_state)
    tsne = _tsne(len(X), X.shape[1], perplexity, early_exaggeration, n_iter, random_state, n_jobs)
    return np.array(tsne.fit(X), dtype=np.float64)


@dataclass
class TsneFeatures:
    """``train`` (n_train, 2) and ``test`` (n_test, 2) map coordinates, and the seconds fitting and placing took."""

    train: np.ndarray
    test: np.ndarray
    fit_seconds: float
    transform_seconds: float


def tsne_features(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    perplexity: float = 30.0,
    n_iter: int = 1000,
    random_state: int = 0,
    n_jobs: int = -1,
) -> TsneFeatures:
    """A t-SNE map as a feature space (beyond the series): fit on ``X_train`` (n_train, d), place ``X_test`` on it.

    The map is fitted on the training points only, as :func:`embed_tsne` does (``n_iter`` counts every iteration,
    the early-exaggeration ones included); test points are placed afterwards with openTSNE's ``transform`` (each
    optimised against the fixed training map), so no test point or label shapes the map.
    """
    X_train, X_test = _check_points(X_train), np.asarray(X_test, dtype=np.float64)
    if len(X_test) < 1 or X_test.ndim != 2 or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"test points must be (n >= 1, {X_train.shape[1]}), got shape {X_test.shape}")
    t0 = time.perf_counter()
    tsne = _tsne(len(X_train), X_train.shape[1], perplexity, 12.0, n_iter, random_state, n_jobs)
    embedding = tsne.fit(X_train)
    t1 = time.perf_counter()
    placed = embedding.transform(X_test)
    t2 = time.perf_counter()
    log.info("t-SNE map of %d points in %.0f s, %d placed in %.0f s", len(X_train), t1 - t0, len(X_test), t2 - t1)
    return TsneFeatures(np.asarray(embedding, dtype=np.float64), np.asarray(placed, dtype=np.float64), t1 - t0, t2 - t1)


def _tsne(n: int, dims: int, perplexity: float, early_exaggeration: float, n_iter: int, random_state: int, n_jobs: int):
    """The one openTSNE set-up of zspace: ``n_iter`` split like scikit-learn, FFT from 10,000 points on."""
    from openTSNE import TSNE

    if n_iter < 2:
        raise ValueError(f"n_iter must be at least 2, got {n_iter}")
    if perplexity <= 0 or early_exaggeration <= 0:
        raise ValueError(f"perplexity and early_exaggeration must be positive, got {perplexity}, {early_exaggeration}")
    early_iter = min(EXAGGERATION_ITER, n_iter // 2)
    if n_jobs < 1:  # every core this process may use, --threads included
        from zspace.io.limits import cpu_threads

        n_jobs = cpu_threads()
    return TSNE(
        n_components=2,
        perplexity=fit_perplexity(perplexity, n),
        early_exaggeration=early_exaggeration,
        early_exaggeration_iter=early_iter,
        n_iter=n_iter - early_iter,
        negative_gradient_method="fft" if n >= FFT_MIN_POINTS else "bh",
        initialization="pca" if dims >= 2 else "random",  # PCA init needs two features
        random_state=random_state,
        n_jobs=1 if n < SERIAL_BELOW else n_jobs,
    )


def fit_perplexity(perplexity: float, n_samples: int) -> float:
    """``perplexity``, lowered to ``(n_samples - 1) / 3`` when it is too large for ``n_samples`` points."""
    if 3 * perplexity > n_samples - 1:
        lowered = (n_samples - 1) / 3
        log.info("perplexity %g is too large for %d points; using %.3g", perplexity, n_samples, lowered)
        return lowered
    return float(perplexity)


def reduce_pca(X: np.ndarray, n_components: int, *, random_state: int = 0) -> np.ndarray:
    """Project ``X`` (n_samples, n_features) onto its first ``n_components`` principal components."""
    if not 1 <= n_components <= min(X.shape):
        raise ValueError(f"pca_components must be in 1..{min(X.shape)} for data of shape {X.shape}, got {n_components}")
    return PCA(n_components=n_components, random_state=random_state).fit_transform(X)


def _check_points(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if len(X) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(X)}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    return X


def knn_preservation(
    X_high: np.ndarray,
    Y_low: np.ndarray,
    k: int = 10,
    *,
    n_queries: int | None = 5_000,
    random_state: int = 0,
) -> float:
    """Mean share of each point's ``k`` nearest neighbours in ``X_high`` that are also among its ``k`` in ``Y_low``.

    Neighbours are exact (Euclidean; a point is not its own neighbour) and searched among all points; only the
    query points are a sample when there are more than ``n_queries``. A random map scores about
    ``k / (n_samples - 1)``; a map that keeps every neighbourhood scores 1.

    Parameters
    ----------
    X_high : ndarray of shape (n_samples, d)
        The original points, e.g. latent vectors.
    Y_low : ndarray of shape (n_samples, d_low)
        Their map, e.g. a t-SNE embedding of shape (n_samples, 2).
    k : int
        Neighbours per point, 1 <= k < n_samples.
    n_queries : int or None
        Query points, drawn without replacement with ``random_state``; None = every point.
    random_state : int
        Seeds the choice of query points.

    Returns
    -------
    float in [0, 1]
    """
    X_high, Y_low = np.asarray(X_high), np.asarray(Y_low)
    n = len(X_high)
    if X_high.ndim != 2 or Y_low.ndim != 2 or len(Y_low) != n:
        raise ValueError(f"X_high and Y_low must be 2-D with the same rows, got {X_high.shape} and {Y_low.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for {n} points, got {k}")
    queries = np.arange(n)
    if n_queries is not None and n_queries < n:
        queries = np.sort(np.random.default_rng(random_state).choice(n, size=n_queries, replace=False))
    high = _neighbours(X_high, queries, k)
    low = _neighbours(Y_low, queries, k)
    shared = [len(np.intersect1d(h, lo, assume_unique=True)) for h, lo in zip(high, low, strict=True)]
    return float(np.mean(shared) / k)


def _neighbours(X: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices (n_queries, k) of the ``k`` nearest points of each query, the query itself excluded."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    _, idx = nn.kneighbors(X[queries])
    # Drop the query itself; with exact duplicates it may not come first, so drop it where it is, else the last.
    is_self = idx == queries[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(len(idx)), drop] = False
    return idx[keep].reshape(len(idx), k)
