"""PCA figures: explained variance, and scatter plots of points on a plane at several zoom windows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zspace.analyses.pca import LEVELS, components_for, window


def explained_variance(ratio: np.ndarray, *, n_fit: int | None = None) -> Figure:
    """Explained-variance ratio per component (log scale) and cumulative, with the 50 / 90 / 99 % counts."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    k = np.arange(1, len(ratio) + 1)
    ax1.plot(k, np.maximum(ratio, np.finfo(float).tiny), "o-", ms=2, lw=0.8)
    ax1.set_yscale("log")
    ax1.set(xlabel="component", ylabel="explained variance ratio", title="per component")
    cum = np.cumsum(ratio)
    ax2.plot(k, cum, lw=1.2)
    for level, color in zip(LEVELS, ("tab:green", "tab:orange", "tab:red"), strict=True):
        m = components_for(cum, level)
        ax2.axhline(level, color=color, lw=0.6, ls="--")
        ax2.plot([m], [cum[m - 1]], "o", color=color, ms=4, label=f"{100 * level:g} %: {m} components")
    ax2.set(xlabel="components", ylabel="cumulative ratio", ylim=(0, 1.02), title="cumulative")
    ax2.legend(fontsize=8, loc="lower right")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    if n_fit is not None:
        fig.suptitle(f"PCA fitted on {n_fit:,} points", fontsize=9)
    return fig


def marker_style(n_visible: int) -> tuple[float, float]:
    """Marker area (pt^2) and alpha for a scatter of ``n_visible`` points: thin filaments stay visible at 10^5."""
    n = max(n_visible, 1)
    size = float(np.clip(200.0 / math.sqrt(n), 0.1, 2.0))
    alpha = float(np.clip(math.sqrt(2e4 / n), 0.1, 1.0))
    return size, alpha


def plane_scatter(
    P: np.ndarray,
    zooms: Sequence[float],
    *,
    names: tuple[str, str],
    centre: tuple[float, float] = (0.0, 0.0),
    colors: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """One panel per zoom window: the points ``P`` (n_samples, 2) inside the square centre +- half-width.

    A half-width of 0 means the full extent. ``colors`` (n_samples,) are class indices into ``class_names``.
    """
    ncols = max(1, len(zooms))
    fig = Figure(figsize=(3.3 * ncols, 3.6), layout="constrained")
    panels = np.atleast_1d(fig.subplots(1, ncols, squeeze=False)).ravel()
    n_cls = len(class_names) if class_names is not None else 0
    cmap = mpl.colormaps["tab10" if n_cls <= 10 else "tab20" if n_cls <= 20 else "viridis"]
    for ax, hw in zip(panels, zooms, strict=False):
        inside = window(P, hw, centre)
        kw = {"color": "tab:blue"}
        if colors is not None:
            kw = {"c": colors[inside], "cmap": cmap, "vmin": 0, "vmax": max(n_cls - 1, 1)}
        _panel(ax, P[inside], hw, centre, kw)
        ax.set(xlabel=names[0], ylabel=names[1])
    if colors is not None and 0 < n_cls <= 20:
        norm = max(n_cls - 1, 1)
        handles = [
            Line2D([], [], ls="", marker="o", ms=4, color=cmap(i / norm), label=str(c))
            for i, c in enumerate(class_names)
        ]
        fig.legend(handles=handles, loc="outside right center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _panel(ax, P: np.ndarray, half_width: float, centre: tuple[float, float], kw: dict) -> None:
    """Scatter the points ``P`` (n, 2) of one window; marker size and alpha follow their number."""
    s, alpha = marker_style(len(P))
    ax.scatter(P[:, 0], P[:, 1], s=s, alpha=alpha, lw=0, rasterized=True, **kw)
    if half_width > 0:
        ax.set_xlim(centre[0] - half_width, centre[0] + half_width)
        ax.set_ylim(centre[1] - half_width, centre[1] + half_width)
        ax.set_aspect("equal")
    if len(P) == 0:
        ax.text(0.5, 0.5, "no points", transform=ax.transAxes, ha="center", va="center", color="0.4")
    label = "full extent" if half_width <= 0 else f"+-{half_width:g}"
    ax.set_title(f"{label}: {len(P):,} points", fontsize=8)
    ax.tick_params(labelsize=7)
