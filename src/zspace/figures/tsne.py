"""Scatter plots of 2-D maps (t-SNE, UMAP) of a latent space, coloured by class where there are classes."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

MAX_LEGEND = 20  # more classes than this get no legend (colours from a continuous map)


def marker_style(n: int) -> tuple[float, float]:
    """Point size (points^2) and alpha that keep ``n`` points readable: big and opaque for few, fine for many."""
    size = float(np.clip(8_000 / max(n, 1), 0.3, 20.0))
    alpha = float(np.clip(5_000 / max(n, 1), 0.2, 0.9))
    return size, alpha


def tsne_map(
    Y: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    names: list[str] | None = None,
    title: str = "",
) -> Figure:
    """A 2-D map ``Y`` (n, 2), points coloured by class ``colors`` (n,) int with legend ``names``, or plain.

    The axes of a t-SNE or UMAP map have no meaning of their own, so the ticks are hidden.
    """
    Y = np.asarray(Y)
    size, alpha = marker_style(len(Y))
    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    ax = fig.subplots()
    if colors is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=size, alpha=alpha, c="tab:blue", linewidths=0, rasterized=True)
    else:
        _scatter_classes(ax, Y, np.asarray(colors), names, size, alpha)
    ax.set(title=title, xticks=[], yticks=[])
    ax.set_aspect("equal", adjustable="datalim")
    return fig


def _scatter_classes(ax, Y: np.ndarray, colors: np.ndarray, names, size: float, alpha: float) -> None:
    """All points in one scatter, in a shuffled order so no class hides the others, and a legend of the classes."""
    classes = np.unique(colors)
    n_classes = int(classes.max()) + 1 if len(classes) else 0
    palette = _palette(n_classes)
    order = np.random.default_rng(0).permutation(len(Y))
    Y, colors = Y[order], colors[order]
    ax.scatter(Y[:, 0], Y[:, 1], s=size, alpha=alpha, c=palette[colors], linewidths=0, rasterized=True)
    if n_classes <= MAX_LEGEND:
        for c in classes:
            label = names[c] if names is not None and c < len(names) else str(c)
            ax.scatter([], [], s=30, color=palette[c], label=label)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def _palette(n: int) -> np.ndarray:
    """``n`` RGBA colours: tab10 / tab20 while they last, then a continuous map."""
    from matplotlib import colormaps

    if n <= 10:
        return colormaps["tab10"](np.arange(max(n, 1)))
    if n <= 20:
        return colormaps["tab20"](np.arange(n))
    return colormaps["turbo"](np.linspace(0, 1, n))
