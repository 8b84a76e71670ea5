"""Plot functions: arrays in, a matplotlib Figure out. They never touch disk (the report writes files)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure


def training_curves(history: list[dict[str, float]]) -> Figure:
    """Total, reconstruction and weighted KL per epoch (train, and test where present); the latent radius of the
    probe images per epoch when the history has it (a jump like the series' R ~ 66 shows there)."""
    radius = any(np.isfinite(r.get("radius_mean", np.nan)) for r in history)
    fig = Figure(figsize=(13 if radius else 10, 3.2), layout="constrained")
    axes = fig.subplots(1, 4 if radius else 3)
    epochs = [r["epoch"] for r in history]
    if radius:
        ax = axes[3]
        for key, label, style in (("radius_mean", "mean ||z||", "o-"), ("radius_peak", "peak of ||z||", "s--"),
                                  ("mu_radius_mean", "mean ||mu||", "^:")):  # fmt: skip
            if any(np.isfinite(r.get(key, np.nan)) for r in history):
                ax.plot(epochs, [r.get(key, np.nan) for r in history], style, ms=3, label=label)
        ax.set(title="latent radius (probe images)", xlabel="epoch")
        ax.legend()
        ax.grid(alpha=0.3)
        axes = axes[:3]
    for ax, key, title in zip(
        axes,
        ("total", "reconstruction", "weighted_kl"),
        ("total loss / image", "reconstruction / image", "kl_weight * KL / image"),
        strict=True,
    ):
        ax.plot(epochs, [r[key] for r in history], "o-", ms=3, label="train")
        test_key = {"total": "test_total", "reconstruction": "test_reconstruction"}.get(key)
        if test_key and any(np.isfinite(r.get(test_key, np.nan)) for r in history):
            ax.plot(epochs, [r.get(test_key, np.nan) for r in history], "s--", ms=3, label="test")
            ax.legend()
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
    return fig


def image_grid(images: np.ndarray, *, ncols: int = 10, title: str = "", labels: list[str] | None = None) -> Figure:
    """Images (N, H, W, C) with values in [0, 1] on a grid."""
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(ncols * 0.9, nrows * 0.9 + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            img = np.clip(images[i], 0, 1)
            ax.imshow(
                img[..., 0] if img.shape[-1] == 1 else img,
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            if labels:
                ax.set_title(labels[i], fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, *, ncols: int = 10) -> Figure:
    """Originals (odd rows) above their reconstructions (even rows); arrays (N, H, W, C) in [0, 1]."""
    n = len(originals)
    rows = []
    for start in range(0, n, ncols):
        rows += [originals[start : start + ncols], reconstructions[start : start + ncols]]
    labels = []
    for start in range(0, n, ncols):
        k = len(originals[start : start + ncols])
        labels += ["original"] * k + ["decoded"] * k
    return image_grid(np.concatenate(rows), ncols=ncols, labels=labels)
