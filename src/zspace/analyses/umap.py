"""UMAP maps of a latent space, beside t-SNE's (McInnes, Healy & Melville, "UMAP: Uniform Manifold Approximation and
Projection for Dimension Reduction", 2018), through umap-learn.

umap-learn is seeded here: with ``random_state`` set it runs its optimisation on one thread, so the same points
and seed give the same map on every machine. :func:`umap_map` mirrors :func:`zspace.analyses.tsne.tsne_map`: the
map, how it was made, and the share of each point's nearest neighbours it keeps (the same score, so the two
methods compare on one number).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analyses.tsne import knn_preservation, reduce_pca

log = logging.getLogger(__name__)

SPECTRAL_MIN_POINTS = 16  # below this umap-learn's spectral start fails (an eigensolver asked for k >= N)


def _umap_module() -> Any:
    """umap-learn, imported on first use (numba compiles on import) and without its ImportWarning about
    TensorFlow (ParametricUMAP, which zspace does not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        import umap

    return umap


@dataclass
class UmapMap:
    """A UMAP map and how it was made: ``Y`` of shape (n_samples, 2); the rest is JSON-able."""

    Y: np.ndarray
    n_neighbors: int  # as used, after any lowering for few points
    min_dist: float
    seconds: float
    knn_preservation: float  # share of the k nearest neighbours in the input points kept in the map
    k: int
    pca_components: int | None = None  # the points were projected onto this many principal components first

    @property
    def n(self) -> int:
        return len(self.Y)

    def to_metrics(self) -> dict:
        return {
            "n": self.n,
            "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist,
            "seconds": round(self.seconds, 3),
            "knn_preservation": self.knn_preservation,
            "knn_chance": self.k / (self.n - 1),
            "k": self.k,
            "pca_components": self.pca_components,
        }


def fit_umap(X: np.ndarray, *, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int = 0) -> Any:
    """A fitted ``umap.UMAP`` of ``X`` (n_samples, n_features), seeded; its ``embedding_`` is (n_samples, 2) and
    its ``transform`` places new points (n_new, n_features) on the same map.

    ``n_neighbors`` is lowered to ``n_samples - 1`` for few points (UMAP needs a neighbour graph).
    """
    n = len(X)
    if n < 3:
        raise ValueError(f"a UMAP map needs at least 3 points, got {n}")
    umap = _umap_module()
    model = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        random_state=random_state,
        n_jobs=1,  # a seeded UMAP is single-threaded anyway; saying so avoids umap-learn's warning
        transform_seed=random_state,
        init="spectral" if n >= SPECTRAL_MIN_POINTS else "random",
    )
    with warnings.catch_warnings():
        # umap-learn and pynndescent warn about their own internals (numba, sparse formats): not the user's concern
        warnings.simplefilter("ignore")
        model.fit(np.ascontiguousarray(X, dtype=np.float32))
    return model


def umap_embed(X: np.ndarray, *, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int = 0) -> np.ndarray:
    """The seeded UMAP map of ``X`` (n_samples, n_features): float32 (n_samples, 2)."""
    return np.asarray(fit_umap(X, n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state).embedding_,
                      dtype=np.float32)  # fmt: skip


def umap_map(
    X: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    k: int = 10,
    n_queries: int | None = 2_000,
    pca_components: int | None = None,
) -> UmapMap:
    """:func:`umap_embed` of ``X`` (n_samples, n_features), timed and scored by :func:`knn_preservation`.

    The score is always against ``X`` itself, as t-SNE's (:func:`zspace.analyses.tsne.tsne_map`), so maps with and
    without PCA, and UMAP and t-SNE maps, compare on one number: the share of each point's ``k`` nearest neighbours
    in ``X`` that stay among its ``k`` nearest in the map (chance: ``k / (n_samples - 1)``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points, e.g. latent vectors; at least 3, all finite.
    n_neighbors, min_dist : int, float
        umap-learn's parameters (``n_neighbors`` lowered to ``n_samples - 1`` for few points).
    random_state : int
        Seeds the map (umap-learn then runs on one thread), the PCA and the choice of query points.
    k : int
        Neighbours per point of the score (lowered to ``n_samples - 2`` for few points).
    n_queries : int or None
        Query points of the score; None = every point.
    pca_components : int or None
        Project ``X`` onto that many principal components before the map (timed with it); None = ``X`` as it is.

    Returns
    -------
    UmapMap
        ``Y`` of shape (n_samples, 2), float32, and the numbers of the map.
    """
    t0 = time.perf_counter()
    inputs = X if pca_components is None else reduce_pca(np.asarray(X), pca_components, random_state=random_state)
    Y = umap_embed(inputs, n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state)
    seconds = time.perf_counter() - t0
    kk = min(k, len(X) - 2)
    kept = knn_preservation(X, Y, k=kk, n_queries=n_queries, random_state=random_state)
    log.info("UMAP of %d points: %.1f s, kNN(%d) kept %.3f", len(X), seconds, kk, kept)
    return UmapMap(Y, min(n_neighbors, len(X) - 1), min_dist, seconds, kept, kk, pca_components)
