"""The elbow plot: KMeans inertia against k per algorithm, the spread over restarts, and the elbow estimate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from zspace.analyses.elbow import ElbowCurve

COLORS = {"lloyd": "tab:blue", "minibatch": "tab:orange"}
NAMES = {"lloyd": "Lloyd KMeans (faiss)", "minibatch": "MiniBatchKMeans (the series)"}


def elbow_plot(curves: Sequence[ElbowCurve], *, title: str = "") -> Figure:
    """Inertia against k (left; mean over restarts, the min-max band, the elbow marked) and, when there are
    restarts, their relative spread (max - min) / min per k (right)."""
    spread = any(c.inertia.shape[1] > 1 for c in curves)
    fig = Figure(figsize=(11, 4) if spread else (7.5, 4), layout="constrained")
    ax, ax_spread = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]}) if spread else (fig.subplots(), None)
    for c in curves:
        color = COLORS.get(c.algorithm)
        label = f"{NAMES.get(c.algorithm, c.algorithm)}, {c.inertia.shape[1]} fit(s) per k"
        ax.plot(c.ks, c.mean, "o-", ms=2.5, lw=1.2, color=color, label=label)
        if c.inertia.shape[1] > 1:
            ax.fill_between(c.ks, c.best, c.worst, color=color, alpha=0.25, lw=0)
        if c.elbow.k is not None:
            y = c.best[np.searchsorted(c.ks, c.elbow.k)]
            marker = "*" if c.elbow.pronounced else "x"
            ax.plot([c.elbow.k], [y], marker, ms=12, color=color, label=f"{c.algorithm}: {c.elbow.describe()}")
        if ax_spread is not None and c.inertia.shape[1] > 1:
            ax_spread.plot(c.ks, 100 * c.relative_spread(), ".-", ms=3, color=color, label=c.algorithm)
    ax.set(xlabel="number of clusters k", ylabel="inertia (sum of squared distances)", title=title or "elbow")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if ax_spread is not None:
        ax_spread.set(xlabel="number of clusters k", ylabel="(max - min) / min over restarts [%]", title="spread")
        ax_spread.grid(alpha=0.3)
        ax_spread.legend(fontsize=7)
    return fig


def inertia_ratio_plot(ks: np.ndarray, ours: np.ndarray, reference: np.ndarray, *, labels=("ours", "ref")) -> Figure:
    """``ours / reference`` inertia per k: below 1 means a better (lower) inertia than the reference."""
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(ks, np.asarray(ours) / np.asarray(reference), ".-", ms=3)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="number of clusters k", ylabel=f"inertia {labels[0]} / {labels[1]}")
    ax.grid(alpha=0.3)
    return fig
