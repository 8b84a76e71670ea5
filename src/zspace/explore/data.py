"""What the explorer serves, prepared once at start: latent points, their PCA, colourings, images and neighbours.

:class:`Explorer` holds plain arrays (no files, no web): the points, the images they came from (row-aligned),
labels or attributes, and the decoder. :func:`open_explorer` builds one from a run folder.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.neighbors import NearestNeighbors

from zspace.analyses.pca import fit_pca
from zspace.errors import ConfigError
from zspace.explore.tsne_cache import TsneJob
from zspace.models.inputs import model_device

log = logging.getLogger(__name__)

NONE = "none"  # the colouring that colours nothing


@dataclass
class ExploreConfig:
    k: int = 8  # nearest training images shown beside a decoded location
    max_k: int = 64  # the most neighbours one request may ask for
    thumb_size: int = 64  # images are enlarged (nearest pixel) to at least this side; never shrunk
    max_thumb_size: int = 512  # the largest side a request may ask for
    pca_fit_max: int = 200_000  # the PCA is fitted on at most this many random points
    tsne_preset: str = "default"  # zspace.analyses.tsne.PRESETS: "default" (30, 12) or "series" (10, 16)
    tsne_pca: int = 50  # t-SNE runs on this many principal components when z_dim is larger
    seed: int = 0  # seeds the PCA subset and the t-SNE map


def validate(cfg: ExploreConfig) -> None:
    """Raise ConfigError for settings that cannot work, naming the setting."""
    checks = [
        (1 <= cfg.k <= cfg.max_k, f"k must be in 1..{cfg.max_k}", cfg.k),
        (1 <= cfg.thumb_size <= cfg.max_thumb_size, f"thumb_size must be in 1..{cfg.max_thumb_size}", cfg.thumb_size),
        (cfg.pca_fit_max >= 2, "pca_fit_max must be >= 2", cfg.pca_fit_max),
        (cfg.tsne_pca >= 2, "tsne_pca must be >= 2", cfg.tsne_pca),
    ]
    for ok, message, value in checks:
        if not ok:
            raise ConfigError(f"explore: {message}, got {value!r}")


@dataclass
class Colouring:
    """Per-point classes: ``codes`` of shape (n_samples,), uint8 or uint16, indexing ``names``."""

    by: str
    codes: np.ndarray
    names: list[str]


class Explorer:
    """The data behind the explorer's page.

    Parameters
    ----------
    points : ndarray of shape (n_samples, z_dim), the latent positions shown (``mu`` for a VAE, else ``z``).
    model : the run's model (decodes z), or None: decoding requests then fail with ConfigError.
    images : ndarray of shape (n_samples, H, W, C) uint8, row-aligned with ``points`` (may be a memory map),
        or None when the images are not available.
    labels : ndarray of shape (n_samples,) int, or None; ``label_names`` names them.
    attributes : ndarray of shape (n_samples, A) in {-1, 0, 1} (0 = unknown), or None; ``attribute_names``.
    train_mask : ndarray of shape (n_samples,) bool: the points nearest-neighbour searches may return
        (the training images); None = all.
    tsne_cache : folder where the t-SNE map is cached (beside the latents), or None to keep it in memory.
    """

    def __init__(
        self,
        points: np.ndarray,
        *,
        model: Any = None,
        images: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        label_names: list[str] | None = None,
        attributes: np.ndarray | None = None,
        attribute_names: list[str] | None = None,
        train_mask: np.ndarray | None = None,
        name: str = "latents",
        tsne_cache: Path | None = None,
        cfg: ExploreConfig | None = None,
    ):
        self.cfg = cfg or ExploreConfig()
        validate(self.cfg)
        self.points = np.ascontiguousarray(points, dtype=np.float32)  # (N, D)
        if self.points.ndim != 2 or len(self.points) < 2 or not np.isfinite(self.points).all():
            raise ConfigError(f"the explorer needs at least 2 finite latent points (N, z_dim), got {points.shape}")
        n = len(self.points)
        for what, arr in (("images", images), ("labels", labels), ("attributes", attributes), ("mask", train_mask)):
            if arr is not None and len(arr) != n:
                raise ConfigError(f"{what} have {len(arr)} rows but there are {n} latent points")
        self.model, self.images, self.name = model, images, name
        self.labels, self.attributes = labels, attributes
        self.label_names = list(label_names) if label_names else None
        self.attribute_names = list(attribute_names or [])
        pca, _ = fit_pca(self.points, fit_max=self.cfg.pca_fit_max, random_state=self.cfg.seed)
        self.mean = pca.mean_.astype(np.float32)  # (D,)
        self.components = pca.components_.astype(np.float32)  # (P, D), rows are unit vectors
        self.explained = pca.explained_variance_ratio_.astype(np.float64)  # (P,)
        self.neighbour_rows = np.flatnonzero(train_mask) if train_mask is not None else np.arange(n)
        if len(self.neighbour_rows) == 0:
            self.neighbour_rows = np.arange(n)
        self._nn = NearestNeighbors().fit(self.points[self.neighbour_rows])
        pca_dims = self.cfg.tsne_pca if self.points.shape[1] > self.cfg.tsne_pca else None
        self.tsne = TsneJob(self.points, tsne_cache, preset=self.cfg.tsne_preset, pca_components=pca_dims,
                            seed=self.cfg.seed)  # fmt: skip

    @property
    def n_pcs(self) -> int:
        return len(self.components)

    def colourings(self) -> list[str]:
        """The names :meth:`colouring` accepts: ``none``, ``label`` when there are labels, every attribute."""
        return [NONE] + (["label"] if self.labels is not None else []) + self.attribute_names

    def info(self) -> dict[str, Any]:
        """What the page needs to draw its controls (JSON-able)."""
        shape = list(self.images.shape[1:]) if self.images is not None else None
        return {
            "name": self.name,
            "n": len(self.points),
            "z_dim": int(self.points.shape[1]),
            "n_pcs": self.n_pcs,
            "explained_variance": [round(float(v), 6) for v in self.explained[:100]],
            "colourings": self.colourings(),
            "default_colouring": self.colourings()[1] if len(self.colourings()) > 1 else NONE,  # as the report
            "views": ["pca", "tsne"],
            "tsne": self.tsne.status,
            "can_decode": self.model is not None,
            "has_images": self.images is not None,
            "image_shape": shape,
            "k": self.cfg.k,
            "n_neighbour_candidates": len(self.neighbour_rows),
        }

    def plane(self, pcs: tuple[int, int]) -> np.ndarray:
        """Coordinates of every point on the plane of two principal components (1-based), (N, 2) float32."""
        idx = [self._pc_index(p) for p in pcs]
        return (self.points - self.mean) @ self.components[idx].T

    def _pc_index(self, pc: int) -> int:
        if not 1 <= pc <= self.n_pcs:
            raise ConfigError(f"principal component {pc} does not exist (1..{self.n_pcs})")
        return pc - 1

    def colouring(self, by: str) -> Colouring:
        """Classes to colour by: ``none``, ``label`` or an attribute name (0 = absent, 1 = present, 2 = unknown)."""
        n = len(self.points)
        if by == NONE:
            return Colouring(by, np.zeros(n, dtype=np.uint8), ["all points"])
        if by == "label" and self.labels is not None:
            return self._label_colouring()
        if by in self.attribute_names:
            col = np.asarray(self.attributes[:, self.attribute_names.index(by)])
            codes = np.where(col > 0, 1, np.where(col < 0, 0, 2)).astype(np.uint8)
            return Colouring(by, codes, [f"not {by}", by, "unknown"])
        raise ConfigError(f"unknown colouring {by!r} (known: {', '.join(self.colourings())})")

    def _label_colouring(self) -> Colouring:
        """Labels 0..255 are their own codes (every class named, present or not); any other labels (negative, or
        as large as 1e9) are coded by rank among the distinct values, so nothing is sized by a label's value."""
        labels = np.asarray(self.labels, dtype=np.int64)
        given = self.label_names or []
        if len(labels) == 0 or (labels.min() >= 0 and labels.max() < 256):
            k = int(labels.max()) + 1 if len(labels) else 1
            names = given if len(given) >= k else [str(i) for i in range(k)]
            return Colouring("label", labels.astype(np.uint8), list(names))
        values, codes = np.unique(labels, return_inverse=True)
        if len(values) > 65536:
            raise ConfigError(f"cannot colour by label: {len(values)} distinct values, at most 65536")
        names = [given[v] if 0 <= v < len(given) else str(v) for v in values.tolist()]
        return Colouring("label", codes.reshape(-1).astype(np.uint8 if len(values) <= 256 else np.uint16), names)

    def location(self, pcs: tuple[int, int], x: float, y: float, base: int | None = None) -> np.ndarray:
        """The latent point (z_dim,) at (x, y) on a PCA plane, its other PCA coordinates those of ``base``.

        ``base`` is a point's row; None = the mean of the points (every other PCA coordinate 0).
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ConfigError(f"coordinates must be finite numbers, got x={x!r}, y={y!r}")
        if base is not None:
            self.check_row(base)
        origin = self.mean if base is None else self.points[base]
        idx = [self._pc_index(p) for p in pcs]
        if idx[0] == idx[1]:
            raise ConfigError(f"a plane needs two different components, got PC{pcs[0]} twice")
        c = self.components[idx]  # (2, D)
        now = (origin - self.mean) @ c.T  # the base's own coordinates on the plane
        return (origin + (np.array([x, y], dtype=np.float32) - now) @ c).astype(np.float32)

    def check_row(self, row: int) -> None:
        if not 0 <= row < len(self.points):
            raise ConfigError(f"no point {row}: there are {len(self.points)} (0..{len(self.points) - 1})")

    def neighbours(self, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (k,) of the training points nearest to ``z`` (z_dim,) in latent space, and their distances (k,)."""
        if not 1 <= k <= self.cfg.max_k:
            raise ConfigError(f"k must be in 1..{self.cfg.max_k}, got {k}")
        k = min(k, len(self.neighbour_rows))
        dist, pos = self._nn.kneighbors(np.asarray(z, dtype=np.float32)[None], n_neighbors=k)
        return self.neighbour_rows[pos[0]], dist[0]

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """The decoder's image of ``z`` (z_dim,) as uint8 (H, W, C)."""
        if self.model is None:
            raise ConfigError("these latents come without their run's model: nothing to decode with")
        device = model_device(self.model)
        x_hat = self.model.decode(torch.as_tensor(z[None], dtype=torch.float32, device=device))  # (1, C, H, W)
        return to_uint8(x_hat[0].permute(1, 2, 0).float().cpu().numpy())

    def image(self, row: int) -> np.ndarray:
        """The data image of point ``row``, uint8 (H, W, C)."""
        self.check_row(row)
        if self.images is None:
            raise ConfigError("the run's images are not available (its data could not be loaded)")
        return np.asarray(self.images[row])

    def png(self, image: np.ndarray, size: int | None = None) -> bytes:
        """``image`` (H, W, C) uint8 as PNG, enlarged by a whole factor to at least ``size`` pixels a side."""
        size = self.cfg.thumb_size if size is None else size
        if not 1 <= size <= self.cfg.max_thumb_size:
            raise ConfigError(f"size must be in 1..{self.cfg.max_thumb_size}, got {size}")
        return png_bytes(image, size)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (any shape) as uint8, rounded."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray, size: int) -> bytes:
    """PNG of a (H, W, C) uint8 image (C = 1 or 3), enlarged by the smallest whole factor reaching ``size``."""
    h, w, c = image.shape
    pil = Image.fromarray(image[:, :, 0] if c == 1 else image, mode="L" if c == 1 else "RGB")
    factor = max(1, math.ceil(size / max(h, w)))
    if factor > 1:
        pil = pil.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def b64(array: np.ndarray, dtype: str) -> str:
    """Little-endian bytes of ``array`` as ``dtype``, base64 (the page reads them into a typed array)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()
