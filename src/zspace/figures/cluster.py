"""Figures of the KMeans-as-a-classifier studies: confusion matrices, per-cluster errors, accuracy against k, PCA
explained variance and the spread of errors over random splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

MAX_ANNOTATED = 12  # confusion matrices with more classes get no numbers in their cells


def row_percent(cm: np.ndarray) -> np.ndarray:
    """Confusion counts (c, c) as percentages of each row (true class); an empty row stays 0."""
    cm = np.asarray(cm, dtype=np.float64)
    return 100.0 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)


def confusion_plot(cm: np.ndarray, names: Sequence[str], *, title: str = "") -> Figure:
    """Counts (left) and row percentages (right) of a confusion matrix ``cm`` (c, c): rows true, columns predicted."""
    cm = np.asarray(cm)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    for ax, values, fmt, label in zip(
        fig.subplots(1, 2), (cm, row_percent(cm)), ("{:.0f}", "{:.1f}"), ("counts", "% of the true class"), strict=True
    ):
        shown = np.where(np.eye(len(cm), dtype=bool), np.nan, values)  # off-diagonal scale: the errors stand out
        im = ax.imshow(shown, cmap="Reds")
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"{label} (off-diagonal)")
        if len(cm) <= MAX_ANNOTATED:
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, weight="bold" if i == j else None)
        ticks = np.arange(len(cm))
        ax.set(xticks=ticks, yticks=ticks, xlabel="predicted class", ylabel="true class", title=label)
        ax.set_xticklabels(names, rotation=90 if len(names) > 10 else 0, fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def cluster_error_plot(errors: np.ndarray, sizes: np.ndarray, *, threshold: float = 0.4, title: str = "") -> Figure:
    """Histogram of the per-cluster error rates (left) and error against cluster size (right)."""
    errors, sizes = np.asarray(errors, dtype=np.float64), np.asarray(sizes)
    keep = np.isfinite(errors)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_hist, ax_size = fig.subplots(1, 2)
    ax_hist.hist(100 * errors[keep], bins=np.linspace(0, 100, 41), color="tab:blue")
    ax_hist.axvline(100 * threshold, color="tab:red", ls="--", label=f"{100 * threshold:.0f} %")
    above = int((errors[keep] > threshold).sum())
    ax_hist.set(xlabel="error of the cluster [%]", ylabel="clusters", title=f"{above} of {keep.sum()} clusters above")
    ax_hist.legend(fontsize=8)
    ax_size.scatter(sizes[keep], 100 * errors[keep], s=8, alpha=0.7)
    ax_size.axhline(100 * threshold, color="tab:red", ls="--")
    ax_size.set(xlabel="training points in the cluster", ylabel="error [%]", title="error against size")
    for ax in (ax_hist, ax_size):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def accuracy_vs_k_plot(ks: Sequence[int], errors: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Train (dashed) and test (solid) error against k for each labelled setting ``{label: (train, test)}``."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i, (label, (train, test)) in enumerate(errors.items()):
        color = f"C{i}"
        ax.plot(ks, 100 * np.asarray(test), "o-", ms=4, color=color, label=f"{label}, test")
        ax.plot(ks, 100 * np.asarray(train), "s--", ms=3, color=color, alpha=0.6, label=f"{label}, train")
    ax.set(xlabel="number of clusters k", ylabel="error [%]", title="error against the number of clusters")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def explained_variance_plot(ratio: np.ndarray) -> Figure:
    """Explained variance ratio per principal component (bars) and cumulative (line)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    pcs = np.arange(1, len(ratio) + 1)
    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.bar(pcs, 100 * ratio, color="tab:blue", label="per component")
    ax.plot(pcs, 100 * np.cumsum(ratio), "o-", color="tab:orange", label="cumulative")
    ax.set(xlabel="principal component", ylabel="explained variance [%]", xticks=pcs, ylim=(0, 102))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def split_errors_plot(errors: Mapping[str, Sequence[float]], *, published: Mapping[str, float] | None = None) -> Figure:
    """Test error of every random split per setting (points), their mean (bar) and a published value (star)."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, (label, values) in enumerate(errors.items()):
        v = 100 * np.asarray(values, dtype=np.float64)
        ax.bar(i, v.mean(), color=f"C{i}", alpha=0.35, width=0.6)
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, color=f"C{i}", s=14, zorder=3)
        if published and label in published:
            ax.plot([i], [100 * published[label]], "k*", ms=11, zorder=4)
    ax.set_xticks(range(len(errors)))
    ax.set_xticklabels(list(errors), fontsize=8)
    ax.set(ylabel="test error [%]", title="test error over random splits (bar: mean, star: published)")
    ax.grid(alpha=0.3, axis="y")
    return fig
