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
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

from zspace.analyses.pca import fit_pca
from zspace.analyses.tsne import PRESETS
from zspace.errors import ConfigError
from zspace.explore.maps import METHODS, MapJob
from zspace.latents.labels import label_codes
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
    umap_neighbors: int = 15  # UMAP's n_neighbors
    umap_min_dist: float = 0.1  # UMAP's min_dist
    seed: int = 0  # seeds the PCA subset, the maps and the drawn subsample
    max_drawn: int = 100_000  # more points than this: a density layer under this many drawn (refined on zoom)
    density_bins: int = 256  # the density layer's bins along the longer side of the region


def validate(cfg: ExploreConfig) -> None:
    """Raise ConfigError for settings that cannot work, naming the setting."""
    checks = [
        (1 <= cfg.k <= cfg.max_k, f"k must be in 1..{cfg.max_k}", cfg.k),
        (1 <= cfg.thumb_size <= cfg.max_thumb_size, f"thumb_size must be in 1..{cfg.max_thumb_size}", cfg.thumb_size),
        (cfg.pca_fit_max >= 2, "pca_fit_max must be >= 2", cfg.pca_fit_max),
        (cfg.tsne_pca >= 2, "tsne_pca must be >= 2", cfg.tsne_pca),
        (cfg.tsne_preset in PRESETS, f"tsne_preset must be one of {', '.join(PRESETS)}", cfg.tsne_preset),
        (2 <= cfg.umap_neighbors <= 200, "umap_neighbors must be in 2..200", cfg.umap_neighbors),
        (0 <= cfg.umap_min_dist <= 1, "umap_min_dist must be in 0..1", cfg.umap_min_dist),
        (1_000 <= cfg.max_drawn <= 10_000_000, "max_drawn must be in 1000..10000000", cfg.max_drawn),
        (8 <= cfg.density_bins <= 1024, "density_bins must be in 8..1024", cfg.density_bins),
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
    tsne_cache : folder where the t-SNE and UMAP maps are cached (beside the latents), or None to keep them in
        memory.
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
        tsne = {"preset": self.cfg.tsne_preset, "pca_components": pca_dims, "seed": self.cfg.seed}
        umap = {"n_neighbors": self.cfg.umap_neighbors, "min_dist": self.cfg.umap_min_dist, "seed": self.cfg.seed}
        self.maps = {name: MapJob(self.points, tsne_cache, method=name, params=params)
                     for name, params in (("tsne", tsne), ("umap", umap))}  # fmt: skip
        self.tsne, self.umap = self.maps["tsne"], self.maps["umap"]
        self._order: np.ndarray | None = None  # a fixed random order of the rows: the drawn subsample
        self._trees: dict[tuple, cKDTree] = {}  # nearest-point search on a 2-D view, the latest few
        self._planes: dict[tuple, np.ndarray] = {}  # the latest few PCA planes' coordinates

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
            "views": ["pca", *self.maps],
            "tsne": self.tsne.status,
            "umap": self.umap.status,
            "max_drawn": self.cfg.max_drawn,
            "can_decode": self.model is not None,
            "has_images": self.images is not None,
            "image_shape": shape,
            "k": self.cfg.k,
            "n_neighbour_candidates": len(self.neighbour_rows),
        }

    def plane(self, pcs: tuple[int, int], rows: Any = slice(None)) -> np.ndarray:
        """Coordinates of every point (or of ``rows``) on the plane of two principal components (1-based),
        (N, 2) float32."""
        idx = [self._pc_index(p) for p in pcs]
        return (self.points[rows] - self.mean) @ self.components[idx].T

    def view(self, view: str, pcs: tuple[int, int] = (1, 2)) -> tuple[np.ndarray | None, list[str]]:
        """Coordinates (N, 2) float32 of every point on a view (``pca`` with ``pcs``, ``tsne``, ``umap``) and its
        axis titles; None for a map not computed yet (asking starts it)."""
        if view == "pca":
            xy = self._planes.get(tuple(pcs))
            if xy is None:  # kept: hovering asks for the nearest point on the plane at every move
                xy = self.plane(pcs)  # checks the components
                self._planes = {**dict(list(self._planes.items())[-3:]), tuple(pcs): xy}
            return xy, [f"PC{p} ({100 * self.explained[p - 1]:.1f} % of the variance)" for p in pcs]
        if view not in self.maps:
            raise ConfigError(f"unknown view {view!r} (known: pca, {', '.join(self.maps)})")
        job = self.maps[view]
        if job.start() != "ready":
            if job.status == "failed":
                raise MapFailed(f"the {job.method.title} map failed: {job.error}")
            return None, []
        return job.map, [f"{METHODS[view].title} 1", f"{METHODS[view].title} 2"]

    def nearest(self, view: str, xy: np.ndarray, pcs: tuple[int, int], x: float, y: float) -> tuple[int, float]:
        """The row of the point nearest to (x, y) on the view whose coordinates are ``xy`` (N, 2), and its
        distance there; the view's KD-tree is built once (the latest four views are kept)."""
        key = (view, tuple(pcs) if view == "pca" else ())
        tree = self._trees.get(key)
        if tree is None:
            tree = cKDTree(np.asarray(xy, dtype=np.float64))
            self._trees = {**dict(list(self._trees.items())[-3:]), key: tree}
        dist, row = tree.query([x, y])
        return int(row), float(dist)

    def drawn(self, xy: np.ndarray, box: tuple[float, float, float, float] | None) -> tuple[np.ndarray, int]:
        """The rows drawn as points of view ``xy`` (N, 2) inside ``box`` = (x0, x1, y0, y1) (None = all): all of
        them up to ``cfg.max_drawn``, else that many in a fixed random order (the same points stay drawn as the
        view zooms in, and more appear); and how many points the box holds."""
        inside = np.ones(len(xy), dtype=bool) if box is None else in_box(xy, box)
        count = int(inside.sum())
        if count <= self.cfg.max_drawn:
            return np.flatnonzero(inside).astype(np.uint32), count
        if self._order is None:
            self._order = np.random.default_rng(self.cfg.seed).permutation(len(xy)).astype(np.uint32)
        return self._order[inside[self._order]][: self.cfg.max_drawn], count

    def close(self) -> None:
        """Stop the maps under way (the server calls this when it stops)."""
        for job in self.maps.values():
            job.close()

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
        codes, names = label_codes(self.labels, self.label_names or [])
        if len(names) > 65536:
            raise ConfigError(f"cannot colour by label: {len(names)} distinct values, at most 65536")
        return Colouring("label", codes.astype(np.uint8 if len(names) <= 256 else np.uint16), names)

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


class MapFailed(RuntimeError):
    """A map's computation failed (the page is told why, with a 503)."""


def in_box(xy: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which points of ``xy`` (N, 2) lie in ``box`` = (x0, x1, y0, y1), edges included: bool (N,)."""
    x0, x1, y0, y1 = box
    x, y = xy[:, 0], xy[:, 1]
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def density(xy: np.ndarray, box: tuple[float, float, float, float], bins: tuple[int, int]) -> np.ndarray:
    """Counts of the points of ``xy`` (N, 2) in a ``bins`` = (bx, by) grid over ``box`` = (x0, x1, y0, y1):
    int64 (by, bx), row 0 at y0; points on the upper edges count in the last bins, points outside in none."""
    x0, x1, y0, y1 = box
    bx, by = bins
    keep = in_box(xy, box)
    x, y = xy[keep, 0].astype(np.float64), xy[keep, 1].astype(np.float64)
    ix = np.minimum(((x - x0) * (bx / max(x1 - x0, 1e-30))).astype(np.int64), bx - 1)
    iy = np.minimum(((y - y0) * (by / max(y1 - y0, 1e-30))).astype(np.int64), by - 1)
    return np.bincount(iy * bx + ix, minlength=bx * by).reshape(by, bx)


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
