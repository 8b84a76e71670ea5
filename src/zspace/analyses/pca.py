"""PCA of a latent space: explained variance, and the points projected onto planes of two components or two axes.

The series found one dominant component for a CelebA AE, a flat spectrum after about ten, and thin lines
(filaments) around voids at every zoom level in the planes PC1-PC2, PC1-PC18, PC8-PC35 and in the plane of the
original axes 52 and 221. The PCA is fitted on a random subset of at most ``fit_max`` points (scikit-learn), then
applied to all points block by block; only the coordinates on the requested components are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from zspace.analyses.radius import DEFAULT_CHUNK, check_latent, iter_rows

LEVELS = (0.5, 0.9, 0.99)


def fit_pca(Z: np.ndarray, *, fit_max: int = 200_000, random_state: Any = None) -> tuple[PCA, int]:
    """Fit a PCA with all min(n_fit, z_dim) components on at most ``fit_max`` random rows of ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    fit_max : largest number of rows the PCA is fitted on.
    random_state : int, numpy Generator or None; picks the subset.

    Raises ValueError when the (subset of) points has fewer than 2 rows or no spread at all.

    Returns
    -------
    pca : the fitted ``sklearn.decomposition.PCA``.
    n_fit : the number of rows it was fitted on.
    """
    Z = check_latent(Z)
    if fit_max < 1:
        raise ValueError(f"fit_max must be >= 1, got {fit_max}")
    n, d = Z.shape
    rows = np.arange(n)
    if n > fit_max:
        rows = np.sort(np.random.default_rng(random_state).choice(n, fit_max, replace=False))
    X = np.empty((len(rows), d))  # the one float64 copy: fit_max x z_dim x 8 bytes (410 MB at 200,000 x 256)
    for start in range(0, len(rows), DEFAULT_CHUNK):
        X[start : start + DEFAULT_CHUNK] = Z[rows[start : start + DEFAULT_CHUNK]]
    if len(X) < 2 or not np.any(X.max(axis=0) > X.min(axis=0)):
        raise ValueError(f"PCA needs at least 2 distinct points, got {len(X)} row(s) without spread")
    k = min(X.shape)
    pca = PCA(n_components=k, svd_solver="covariance_eigh" if len(X) >= d else "full")
    return pca.fit(X), len(X)


def components_for(cumulative: np.ndarray, level: float) -> int:
    """Smallest number of leading components whose cumulative explained-variance ratio reaches ``level``."""
    k = int(np.searchsorted(np.asarray(cumulative), level - 1e-12)) + 1
    return min(k, len(cumulative))


@dataclass
class Variance:
    """Explained-variance ratio per component and cumulative; arrays of shape (n_components,)."""

    ratio: np.ndarray
    n_fit: int

    @property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.ratio)

    def to_metrics(self, n_ratios: int = 20) -> dict[str, Any]:
        cum = self.cumulative
        return {
            "n_components": len(self.ratio),
            "n_fit": self.n_fit,
            "ratios": np.round(self.ratio[:n_ratios], 6).tolist(),
            **{f"n_for_{round(100 * lv)}": components_for(cum, lv) for lv in LEVELS},
        }


def project(Z: np.ndarray, mean: np.ndarray, components: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Coordinates of every row of ``Z`` on the given directions, block by block.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    mean : ndarray of shape (z_dim,), subtracted first.
    components : ndarray of shape (k, z_dim), orthonormal directions (rows of ``pca.components_``).

    Returns
    -------
    P : ndarray of shape (n_samples, k), float32
    """
    Z = check_latent(Z)
    components = np.atleast_2d(np.asarray(components, dtype=np.float64))
    P = np.empty((len(Z), len(components)), dtype=np.float32)
    for rows, block in iter_rows(Z, chunk):
        P[rows] = (block - mean) @ components.T
    return P


def pca_planes(
    pca: PCA, Z: np.ndarray, planes: Sequence[tuple[int, int]], *, chunk: int = DEFAULT_CHUNK
) -> dict[tuple[int, int], np.ndarray]:
    """Points projected onto PCA planes given by 1-based component pairs: {(i, j): ndarray (n_samples, 2)}.

    Every plane must lie within the fitted components (see :func:`valid_planes`); one pass over ``Z`` serves all.
    """
    dims = sorted({c for plane in planes for c in plane})
    if not dims:
        return {}
    if dims[0] < 1 or dims[-1] > pca.n_components_:
        raise ValueError(f"PCA components are 1..{pca.n_components_}, got planes {list(planes)}")
    P = project(Z, pca.mean_, pca.components_[[c - 1 for c in dims]], chunk=chunk)
    col = {c: i for i, c in enumerate(dims)}
    return {tuple(p): P[:, [col[p[0]], col[p[1]]]] for p in planes}


def axis_plane(Z: np.ndarray, a: int, b: int, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Coordinates of every row on the original (0-based) axes ``a`` and ``b``: ndarray (n_samples, 2) float32."""
    Z = check_latent(Z)
    if not (0 <= a < Z.shape[1] and 0 <= b < Z.shape[1]):
        raise ValueError(f"axes must be in 0..{Z.shape[1] - 1}, got ({a}, {b})")
    out = np.empty((len(Z), 2), dtype=np.float32)
    for start in range(0, len(Z), chunk):
        out[start : start + chunk] = np.asarray(Z[start : start + chunk])[:, [a, b]]
    return out


def valid_planes(planes: Sequence[tuple[int, int]], n_max: int, *, first: int = 1) -> tuple[list, list]:
    """Split planes into those whose indices lie in first..first + n_max - 1 and distinct, and the others."""
    ok = [tuple(p) for p in planes if p[0] != p[1] and all(first <= c < first + n_max for c in p)]
    return ok, [tuple(p) for p in planes if tuple(p) not in ok]


def window(P: np.ndarray, half_width: float, centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Boolean mask of the rows of ``P`` (n_samples, 2) inside the square centre +- half_width; all for 0."""
    if half_width <= 0:
        return np.ones(len(P), dtype=bool)
    c = np.asarray(centre, dtype=np.float64)
    return np.all(np.abs(P - c) <= half_width, axis=1)
