"""Overlays of several runs in one axes: radius densities, elbow curves, explained variance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import stats


def radius_overlay(curves: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> Figure:
    """Share of points per unit radius for each run, with the chi reference of each distinct z_dim.

    ``curves`` maps a run name to (bin edges (n+1,), counts (n,), z_dim).
    """
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    top = 0.0
    for name, (edges, counts, _) in curves.items():
        density = counts / max(counts.sum(), 1) / np.diff(edges)
        ax.step(edges[:-1], density, where="post", label=name)
        nonzero = np.nonzero(counts)[0]
        top = max(top, edges[nonzero[-1] + 1] if len(nonzero) else 0)
    r = np.linspace(0, max(top, 1e-9) * 1.05, 400)
    for d in sorted({c[2] for c in curves.values()}):
        ax.plot(r, stats.chi.pdf(r, d), "k--", lw=0.8, alpha=0.6, label=f"N(0, I_{d}) reference")
    ax.set(xlabel="radius R = ||z||", ylabel="share of points per unit radius", xlim=(0, r[-1]))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def elbow_overlay(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Figure:
    """Inertia / inertia at the smallest k against k, with the restart band (min..max), one line per run."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    for name, (ks, lo, hi) in curves.items():
        ref = hi[0] if hi[0] > 0 else 1.0
        line = ax.plot(ks, (lo + hi) / 2 / ref, label=name)[0]
        ax.fill_between(ks, lo / ref, hi / ref, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="number of clusters k", ylabel="inertia / inertia at the smallest k")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def variance_overlay(ratios: dict[str, np.ndarray]) -> Figure:
    """Explained variance ratio per principal component (log scale), one line per run."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    for name, r in ratios.items():
        ax.semilogy(np.arange(1, len(r) + 1), r, "o-", ms=3, label=name)
    ax.set(xlabel="principal component", ylabel="explained variance ratio")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig
