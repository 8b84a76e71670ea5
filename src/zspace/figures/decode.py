"""Grids of decoded images: probes of the latent space, reconstructions beside originals, interpolation paths.

Images come as arrays (N, H, W, C) with values in [0, 1] (C = 1 grey, 3 RGB). A grid is tiled into one
picture and drawn with a single ``imshow``, which stays fast for hundreds of images.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

INCHES_PER_IMAGE = 0.75  # drawn size of one tile
MAX_WIDTH = 12.0  # inches; wider grids are drawn smaller per tile


def tile(images: np.ndarray, *, ncols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, H, W, C) row by row into one (rows * (H + pad) - pad, ncols * (W + pad) - pad, C) array.

    Cells after the last image are filled with ``pad_value`` (white).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0 or ncols < 1:
        raise ValueError(f"need images (N, H, W, C) with N >= 1 and ncols >= 1, got {images.shape}, ncols={ncols}")
    n, h, w, c = images.shape
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), pad_value, dtype=np.float32)
    for i, img in enumerate(np.clip(images, 0.0, 1.0)):
        r, col = divmod(i, ncols)
        out[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = img
    return out


def image_grid(
    images: np.ndarray,
    *,
    ncols: int = 10,
    title: str = "",
    row_labels: list[str] | None = None,
) -> Figure:
    """Images (N, H, W, C) in [0, 1] on a grid of ``ncols`` columns; grey for C == 1.

    ``row_labels`` name the rows of the grid on the left (one label per row).
    """
    images = np.asarray(images)
    ncols = min(ncols, len(images))
    mosaic = tile(images, ncols=ncols)
    nrows = math.ceil(len(images) / ncols)
    scale = min(INCHES_PER_IMAGE, MAX_WIDTH / ncols)
    label_space = 1.0 if row_labels else 0.0
    fig = Figure(
        figsize=(ncols * scale + label_space, nrows * scale + (0.4 if title else 0.1)),
        layout="constrained",
    )
    ax = fig.subplots()
    grey = mosaic.shape[-1] == 1
    ax.imshow(
        mosaic[..., 0] if grey else mosaic, cmap="gray" if grey else None, vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set(xticks=[], yticks=[])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels:
        h = images.shape[1] + 1
        ax.set_yticks([r * h + (h - 1) / 2 for r in range(len(row_labels))], row_labels, fontsize=7)
        ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def reconstruction_pairs(
    originals: np.ndarray, reconstructions: np.ndarray, *, ncols: int = 10, title: str = ""
) -> Figure:
    """Originals (N, H, W, C) in one row, their reconstructions in the row below, ``ncols`` per row pair."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape")
    ncols = min(ncols, len(originals))
    rows, labels = [], []
    for start in range(0, len(originals), ncols):
        orig, reco = originals[start : start + ncols], reconstructions[start : start + ncols]
        fill = np.ones((ncols - len(orig), *orig.shape[1:]), dtype=np.float32)
        rows += [orig, fill, reco, fill]
        labels += ["data", "decoded"]
    return image_grid(np.concatenate(rows), ncols=ncols, title=title, row_labels=labels)


def interpolation_grid(paths: np.ndarray, *, title: str = "", row_labels: list[str] | None = None) -> Figure:
    """Decoded paths (P, S, H, W, C): one row of ``S`` images per path, from its start (left) to its end."""
    paths = np.asarray(paths)
    if paths.ndim != 5:
        raise ValueError(f"paths must have shape (P, S, H, W, C), got {paths.shape}")
    p, s = paths.shape[:2]
    return image_grid(paths.reshape(p * s, *paths.shape[2:]), ncols=s, title=title, row_labels=row_labels)
