"""Plots of the filament/void numbers: intrinsic dimension, nearest-neighbour distances, voids, decoded paths."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from zspace.analyses.manifold_id import LocalDimension, TwoNN, twonn_fit_points
from zspace.analyses.manifold_nn import NNComparison, PathProfile, VoidShare

MAX_SCATTER = 2000  # points drawn in the TwoNN fit plot (evenly spaced in mu order)


def _log_bins(*arrays: np.ndarray, bins: int = 60) -> np.ndarray:
    """Log-spaced bin edges from the 0.1 % quantile to the maximum of the positive values of all arrays."""
    pos = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays])
    if len(pos) == 0:
        return np.array([0.5, 1.0, 2.0])
    lo, hi = float(np.quantile(pos, 0.001)), float(pos.max())
    if hi <= lo * 1.01:
        lo, hi = lo / 1.5, hi * 1.5
    return np.geomspace(lo, hi, bins + 1)


def _hist(ax, values: np.ndarray, bins: np.ndarray, **kw) -> None:
    """Share of ``values`` per (log) bin; values beyond the edges are drawn in the end bins."""
    values = values[np.isfinite(values)]
    ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, weights=np.full(len(values), 1 / max(len(values), 1)), **kw)


def intrinsic_dimension(twonn: TwoNN, local: LocalDimension, *, z_dim: int | None = None) -> Figure:
    """TwoNN line fit (slope = dimension) beside the histogram of the local MLE estimates."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x, y = twonn_fit_points(twonn.log_mu, twonn.discard_fraction)
    step = max(1, len(x) // MAX_SCATTER)
    ax1.plot(x[::step], y[::step], ".", ms=2, alpha=0.5, label=f"data ({len(x)} points)")
    xs = np.array([0.0, float(x.max()) if len(x) else 1.0])
    ax1.plot(xs, twonn.dimension * xs, "-", label=f"MLE: d = {twonn.dimension:.2f}")
    ax1.plot(xs, twonn.dimension_fit * xs, "--", label=f"fit: d = {twonn.dimension_fit:.2f}")
    ax1.plot(xs, xs, ":", color="grey", label="d = 1 (curves)")
    ax1.set(xlabel="log(r2 / r1)", ylabel="-log(1 - F)", title="TwoNN: slope = intrinsic dimension")
    ax1.set_ylim(0, float(y.max()) * 1.1 if len(y) else 1.0)
    ax1.legend(fontsize=8)
    est = local.estimates
    hi = float(np.quantile(est, 0.99))
    ax2.hist(est[est <= hi], bins=60, color="C0", alpha=0.8)
    q_lo, q_hi = min(local.quantiles, default=0.5), max(local.quantiles, default=0.5)
    if q_lo < q_hi:
        ax2.axvspan(local.quantiles[q_lo], local.quantiles[q_hi], color="C1", alpha=0.15, label=f"{q_lo:g}-{q_hi:g}")
    ax2.axvline(local.median, color="C1", label=f"median {local.median:.2f}")
    ax2.axvline(local.dimension, color="C2", ls="--", label=f"global {local.dimension:.2f}")
    space = f" in a {z_dim}-D space" if z_dim else ""
    ax2.set(xlabel="local dimension", ylabel="points", title=f"local MLE on k = {local.k} neighbours{space}")
    ax2.legend(fontsize=8)
    return fig


def nn_distances(cmp: NNComparison) -> Figure:
    """Histograms of nearest-neighbour distances of the data and of a Gaussian sample of the same spread."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    bins = _log_bins(cmp.data_nn, cmp.gaussian_nn)
    _hist(ax, cmp.data_nn, bins, alpha=0.6, label=f"data (median {cmp.median_data:.3g})")
    _hist(ax, cmp.gaussian_nn, bins, alpha=0.6, label=f"matched Gaussian (median {cmp.median_gaussian:.3g})")
    ax.axvline(cmp.median_data, color="C0")
    ax.axvline(cmp.median_gaussian, color="C1")
    ax.set_xscale("log")
    ax.set(
        xlabel="distance to the nearest other point",
        ylabel="share of points",
        title=f"median ratio {cmp.ratio:.3g}, KS statistic {cmp.ks_statistic:.2f}",
    )
    ax.legend(fontsize=8)
    return fig


SOURCE_LABELS = {"standard": "probes from N(0, I)", "gaussian_fit": "probes from the data's Gaussian fit"}


def void_share(result: VoidShare, data_nn: np.ndarray) -> Figure:
    """Distances of random probes to their nearest data point against the data's own NN distances."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    bins = _log_bins(data_nn, *result.probe_nn.values())
    _hist(ax, data_nn, bins, histtype="step", lw=1.5, color="k", label="data to data")
    for i, (source, d) in enumerate(result.probe_nn.items()):
        label = f"{SOURCE_LABELS.get(source, source)}: {result.shares[source]:.0%} in voids"
        _hist(ax, d, bins, alpha=0.5, color=f"C{i}", label=label)
    ax.axvline(result.threshold, color="red", ls="--", label=f"threshold: {result.quantile:g} quantile of data")
    ax.set_xscale("log")
    ax.set(xlabel="distance to the nearest data point", ylabel="share of points or probes", title="void share")
    ax.legend(fontsize=8)
    return fig


def path_profile(profile: PathProfile, *, max_lines: int = 20) -> Figure:
    """Median and quantile bands of the normalised nearest-training-image distance along decoded paths."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    t, norm = profile.t, profile.normalised
    for row in norm[:max_lines]:
        ax.plot(t, row, color="grey", lw=0.5, alpha=0.4)
    ax.fill_between(t, *np.quantile(norm, [0.1, 0.9], axis=0), color="C0", alpha=0.15, label="10-90 %")
    ax.fill_between(t, *np.quantile(norm, [0.25, 0.75], axis=0), color="C0", alpha=0.3, label="25-75 %")
    ax.plot(t, profile.median, "o-", color="C0", ms=3, label=f"median of {len(norm)} paths")
    ax.axhline(1.0, color="k", ls=":", label="a training image to its nearest other")
    ax.set(
        xlabel="position along the straight line in z (0 and 1 = data points)",
        ylabel="distance to nearest training image / baseline",
        title="decoded interpolation paths",
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig
