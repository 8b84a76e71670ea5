"""Per-axis densities: every coordinate's histogram overlaid, and chosen axes alone."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from zspace.analyses.axes import AxisHistograms, AxisStats


def all_axes(hist: AxisHistograms, st: AxisStats, *, highlight: Sequence[int] = ()) -> Figure:
    """Every axis' counts per interval as a thin grey line; the ``highlight`` axes in colour with a legend."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    x = hist.centres
    lw = 0.5 if len(hist.counts) <= 64 else 0.3
    for a in range(len(hist.counts)):
        if a not in highlight:
            ax.plot(x, hist.counts[a], color="0.55", lw=lw, alpha=0.6)
    for a in highlight:
        ax.plot(x, hist.counts[a], lw=1.2, label=f"axis {a}: centre {st.centre[a]:.2f}, width {st.width[a]:.2f}")
    ax.set_xlim(*_xlim(st))
    ax.set(
        xlabel="coordinate value",
        ylabel=f"points per interval of {hist.width:g}",
        title=f"all {len(hist.counts)} axes (grey), off-centre / broad axes in colour",
    )
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if highlight:
        ax.legend(fontsize=7)
    return fig


def chosen_axes(hist: AxisHistograms, st: AxisStats, axes: Sequence[int]) -> Figure:
    """One panel per axis: its histogram, median, central range and the bulk's Gaussian for comparison."""
    ncols = min(4, max(1, len(axes)))
    nrows = max(1, math.ceil(len(axes) / ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows), layout="constrained")
    panels = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    x = hist.centres
    sigma = st.bulk_width / stats.norm.ppf(1 - st.tail)
    for ax, a in zip(panels, axes, strict=False):
        n = hist.counts[a].sum()
        ax.step(x, hist.counts[a], where="mid", lw=1)
        ref = n * hist.width * stats.norm.pdf(x, st.bulk_centre, sigma)
        ax.plot(x, ref, color="0.4", ls="--", lw=0.8, label="bulk of the axes")
        ax.axvspan(st.low[a], st.high[a], color="tab:orange", alpha=0.15)
        ax.axvline(st.centre[a], color="tab:red", lw=0.8)
        ax.set_title(f"axis {a}: centre {st.centre[a]:.2f}, width {st.width[a]:.2f}", fontsize=8)
        ax.set_xlim(*_xlim(st))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in panels[len(axes) :]:
        ax.set_axis_off()
    if len(axes):
        panels[0].legend(fontsize=7)
    return fig


def _xlim(st: AxisStats) -> tuple[float, float]:
    lo, hi = float(st.low.min()), float(st.high.max())
    pad = 0.15 * (hi - lo) or 1.0
    return lo - pad, hi + pad
