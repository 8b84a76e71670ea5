"""Sample quality that works offline: FID and precision / recall / density / coverage in a zspace feature space.

The measures compare a set of generated images with a set of real ones in the feature space of a network; the
usual choice, Inception-v3 trained on ImageNet, needs downloaded weights. zspace trains its own feature network
on the dataset instead (:mod:`zspace.latents.feature_net`: a small CNN classifier of the dataset's labels or attributes,
features = its pooled last convolution). The numbers are therefore called **zspace-FID** etc. and are comparable
only between runs scored with the same feature network, never with published Inception-FIDs.

- FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule..."): the Fréchet distance between
  Gaussians fitted to the two feature sets, ``|mu_r - mu_g|^2 + Tr(C_r + C_g - 2 (C_r C_g)^(1/2))``.
- precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative
  models"): the share of generated points inside the real manifold (the union of balls around each real point
  reaching its k-th nearest real neighbour), and the share of real points inside the generated manifold.
- density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models"):
  density counts how many real balls hold each generated point (/ k; about 1 for matching sets); coverage is the
  share of real points whose ball holds at least one generated point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from zspace.errors import DataError

NAME = "zspace-FID"
K_NEIGHBOURS = 5  # Naeem et al.'s default k
CHUNK = 2048  # rows per block of pairwise distances
FEATURE_WIDTH = 256  # features per image of zspace's feature network (its last convolution's channels)


@dataclass
class Quality:
    """Scores of a generated feature set against a real one (see the module docstring)."""

    fid: float
    precision: float
    recall: float
    density: float
    coverage: float
    n_real: int
    n_fake: int
    k: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check(a: np.ndarray, name: str, min_rows: int = 2) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or len(a) < min_rows or a.shape[1] < 1:
        raise DataError(f"{name} features must have shape (n >= {min_rows}, n_features), got {list(a.shape)}")
    if not np.isfinite(a).all():
        raise DataError(f"{name} features contain NaN or infinite values")
    return a


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance of N(mu1, cov1) and N(mu2, cov2): ``|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))``.

    ``Tr (C1 C2)^(1/2)`` is computed as the sum of the square roots of the eigenvalues of the symmetric
    ``C1^(1/2) C2 C1^(1/2)`` (same spectrum), which stays real and stable for singular covariances.

    Parameters
    ----------
    mu1, mu2 : ndarray of shape (d,); cov1, cov2 : ndarray of shape (d, d), symmetric positive semi-definite.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1), len(mu1)):
        raise DataError(
            f"Fréchet distance of mismatched Gaussians: {mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}"
        )
    w, v = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # C1^(1/2)
    middle = root1 @ cov2 @ root1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt, 0.0))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n_real, d) and (n_fake, d)."""
    real, fake = _check(real, "real"), _check(fake, "generated")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real and generated features differ in width: {real.shape[1]} vs {fake.shape[1]}")
    cov = lambda a: np.atleast_2d(np.cov(a, rowvar=False))  # noqa: E731
    return frechet_distance(real.mean(0), cov(real), fake.mean(0), cov(fake))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def kth_neighbour_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point (n, d) to its k-th nearest other point: ndarray of shape (n,)."""
    out = np.empty(len(points))
    for s in range(0, len(points), CHUNK):
        d = _sq_dist(points[s : s + CHUNK], points)
        out[s : s + CHUNK] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # index 0 is the point itself
    return out


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = K_NEIGHBOURS) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi 2019), density and coverage (Naeem 2020) of ``fake`` against ``real``.

    Parameters
    ----------
    real : ndarray of shape (n_real, d); fake : ndarray of shape (n_fake, d); both need more than ``k`` rows.
    """
    real, fake = _check(real, "real", k + 1), _check(fake, "generated", k + 1)
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real and generated features differ in width: {real.shape[1]} vs {fake.shape[1]}")
    r_real, r_fake = kth_neighbour_radius(real, k) ** 2, kth_neighbour_radius(fake, k) ** 2
    inside_any, inside_count = np.zeros(len(fake), bool), np.zeros(len(fake))
    nearest_fake = np.full(len(real), np.inf)
    for s in range(0, len(fake), CHUNK):
        d = _sq_dist(fake[s : s + CHUNK], real)  # (c, n_real)
        inside = d <= r_real[None, :]
        inside_any[s : s + CHUNK], inside_count[s : s + CHUNK] = inside.any(1), inside.sum(1)
        nearest_fake = np.minimum(nearest_fake, d.min(0))
    recall = 0
    for s in range(0, len(real), CHUNK):
        recall += int((_sq_dist(real[s : s + CHUNK], fake) <= r_fake[None, :]).any(1).sum())
    return {
        "precision": float(inside_any.mean()),
        "recall": recall / len(real),
        "density": float(inside_count.sum() / (k * len(fake))),
        "coverage": float((nearest_fake <= r_real).mean()),
    }


def check_cost(n_fake: int, n_real: int, image_values: int, *, width: int = FEATURE_WIDTH, key: str = "--n") -> None:
    """Refuse (one-line ConfigError naming ``key``) a comparison of ``n_fake`` generated with ``n_real`` real images
    of ``image_values`` values each whose time or memory is beyond the machine (zspace.io.limits): decoding and
    featurising the images, then the exact pairwise distances of the precision/recall measures (``(n_fake +
    n_real)^2 * width``), held ``CHUNK`` rows at a time."""
    from zspace.io import limits

    n = float(n_fake) + float(n_real)
    seconds = limits.estimate_decode_seconds(n_fake + n, image_values) + limits.estimate_knn_seconds(n, n, width)
    nbytes = 2 * n * width * 8 + 3 * CHUNK * max(n_fake, n_real) * 8
    limits.check_work(seconds, nbytes, key, f"scoring {n_fake:,} generated against {n_real:,} real images")


def score(real: np.ndarray, fake: np.ndarray, *, k: int = K_NEIGHBOURS) -> Quality:
    """FID, precision, recall, density and coverage of feature sets (n_real, d) and (n_fake, d)."""
    return Quality(fid(real, fake), **prdc(real, fake, k=k), n_real=len(real), n_fake=len(fake), k=k)
