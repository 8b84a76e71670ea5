"""Figures of a sweep over one setting (the KL weight): arrays and numbers in, a Figure out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from zspace.analyses.radius import Histogram, chi_counts, chi_mode


def weight_label(w: float) -> str:
    """How a KL weight is written on figures and tables: 0 is the AE."""
    return "AE (0)" if w == 0 else f"{w:g}"


def _symlog(ax, weights: Sequence[float], label) -> None:
    """A log axis that also shows 0 (the AE of a KL sweep): linear below the smallest positive value."""
    positive = [w for w in weights if w > 0]
    ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    ax.set_xticks(list(weights), [label(w) for w in weights], rotation=45, fontsize=7)


def rate_distortion(weights: Sequence[float], rate: Sequence[float], distortion: Sequence[float]) -> Figure:
    """KL (the rate, nats per image) against reconstruction loss (the distortion), one labelled point per weight."""
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(rate, distortion, "o-", color="tab:blue", ms=5)
    for w, r, d in zip(weights, rate, distortion, strict=True):
        ax.annotate(weight_label(w), (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if min(rate) > 0:
        ax.set_xscale("log")
    ax.set(xlabel="rate: KL(q(z|x) || N(0, I)) per image (nats)", ylabel="distortion: reconstruction loss per image",
           title="rate against distortion, one point per KL weight")  # fmt: skip
    ax.grid(alpha=0.3)
    return fig


def radius_overlay(hists: dict[float, Histogram], *, z_dim: int) -> Figure:
    """The radius histograms of z of every weight overlaid, with the chi reference of N(0, I_z_dim)."""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    colours = [f"C{i % 10}" for i in range(len(hists))]
    r_max = 0.0
    for (w, h), c in zip(hists.items(), colours, strict=True):
        ax.step(h.centres, h.counts / max(h.counts.sum(), 1), where="mid", color=c, lw=1.1, label=weight_label(w))
        nonzero = np.nonzero(h.counts)[0]
        r_max = max(r_max, float(h.edges[nonzero[-1] + 1]) if len(nonzero) else 0.0)
    first = next(iter(hists.values()))
    ref = chi_counts(first.edges, z_dim, 1)
    ax.plot(first.centres, ref, color="0.3", ls="--", lw=1, label=f"N(0, I): peak {chi_mode(z_dim):.2f}")
    ax.set(xlabel="radius ||z||", ylabel="share of points per interval", title="radius shells of z per KL weight")
    ax.set_xlim(0, max(r_max, 2 * chi_mode(z_dim)))
    ax.legend(fontsize=7, ncols=2)
    ax.grid(alpha=0.3)
    return fig


def against_weight(
    weights: Sequence[float],
    series: dict[str, Sequence[float | None]],
    *,
    ylabel: str,
    title: str,
    log_y: bool = False,
    log_x: bool = True,
    xlabel: str = "KL weight",
) -> Figure:
    """One or more quantities against the KL weight (symlog axis: 0, the AE, included), or against any x."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for label, values in series.items():
        y = np.array([np.nan if v is None else v for v in values], dtype=float)
        if y.shape == (len(weights),):
            ax.plot(weights, y, "o-" if log_x else "-", ms=4, label=label)
    if log_x:
        _symlog(ax, weights, weight_label if xlabel == "KL weight" else (lambda w: f"{w:g}"))
    finite = [v for values in series.values() for v in values if v is not None and np.isfinite(v)]
    if log_y and finite and min(finite) > 0:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def rows_of_images(rows: dict[str, np.ndarray], *, title: str = "") -> Figure:
    """One row of images (N, H, W, C) in [0, 1] per label."""
    labels = list(rows)
    ncols = max(len(v) for v in rows.values())
    fig = Figure(figsize=(ncols * 0.8 + 1.2, len(labels) * 0.85 + 0.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(labels), ncols, squeeze=False))
    for r, label in enumerate(labels):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(rows[label]):
                img = np.clip(rows[label][c], 0, 1)
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
