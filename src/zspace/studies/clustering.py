"""What the three cluster studies share: their data as feature matrices, and what they report (train/test errors,
confusion matrices with row percentages, per-cluster errors, error against k, the elbow, t-SNE maps) as sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from zspace.analyses.classifier import ERROR_THRESHOLD, Evaluation
from zspace.analyses.elbow import ElbowCurve
from zspace.config import DataConfig
from zspace.data import Dataset, load_dataset
from zspace.errors import DataError
from zspace.figures.cluster import accuracy_vs_k_plot, cluster_error_plot, confusion_plot, row_percent
from zspace.figures.elbow import elbow_plot
from zspace.figures.tsne import tsne_map
from zspace.sections.base import FigureItem, Section, Table
from zspace.sections.elbow import elbow_summary, elbow_table


@dataclass
class Split:
    """Feature matrices of a train/test split: ``X_*`` (n, d) float32, ``y_*`` (n,) int64 class indices."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str

    def xy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X_train, y_train, X_test, y_test)``, the argument order of ``evaluate`` and ``errors_vs_k``."""
        return self.X_train, self.y_train, self.X_test, self.y_test


def load_split(cfg: DataConfig, *, scale: float = 1.0) -> tuple[Split, Dataset]:
    """Load a labelled dataset and flatten its items to feature rows (images divided by ``scale``)."""
    ds = load_dataset(cfg)
    if ds.labels is None:
        raise DataError(f"dataset {cfg.name!r} at {cfg.path} has no labels; the cluster classifier needs them")
    tr, te = ds.indices("train"), ds.indices("test")
    if len(tr) == 0 or len(te) == 0:
        raise DataError(f"dataset {cfg.name!r} at {cfg.path} needs train and test items, got {len(tr)} and {len(te)}")
    flat = np.asarray(ds.x).reshape(len(ds), -1)

    def rows(idx: np.ndarray) -> np.ndarray:
        return (flat[idx].astype(np.float32) / np.float32(scale)).astype(np.float32)

    labels = np.asarray(ds.labels, dtype=np.int64)
    names = list(ds.label_names or [str(i) for i in range(int(labels.max()) + 1)])
    split = Split(rows(tr), labels[tr], rows(te), labels[te], names, str(ds.source.get("path")))
    return split, ds


def results_table(evaluations: Sequence[Evaluation], *, published: Mapping[str, str] | None = None) -> Table:
    """One row per setting: errors, wrong predictions, clusters above 40 % error, fitting time, published error."""
    columns = ["setting", "train error", "test error", "wrong (test)", "clusters > 40 % error", "fit s"]
    if published:
        columns.append("published test error")
    rows = []
    for e in evaluations:
        m = e.to_metrics()
        row = [e.label, e.train_error, e.test_error, m["n_wrong_test"], e.clusters_above, round(e.seconds, 1)]
        if published:
            row.append(published.get(e.label, "-"))
        rows.append(row)
    caption = "Error = share of wrongly predicted samples (the class of the nearest cluster is the prediction)."
    return Table("Cluster classifier: errors", columns, rows, caption=caption)


def confusion_table(cm: np.ndarray, names: Sequence[str], *, title: str) -> Table:
    """The confusion counts with each row's percentage correct, as the post printed them."""
    pct = row_percent(cm)
    rows = [[names[i], *[int(v) for v in cm[i]], round(float(pct[i, i]), 1)] for i in range(len(cm))]
    return Table(title, ["true \\ predicted", *names, "% correct"], rows)


def detail_items(e: Evaluation, key: str, *, series: bool = True) -> tuple[list[FigureItem], list[Table]]:
    """Confusion matrices (train, test) and per-cluster errors of one evaluation (``series``: the series' count)."""
    names = e.class_names
    figures = []
    for split, cm, err in (("train", e.train_confusion, e.train_error), ("test", e.test_confusion, e.test_error)):
        fig = confusion_plot(cm, names, title=f"{e.label}: {split}, error {err:.4f}")
        caption = (
            f"Confusion matrix of the {split} split ({int(cm.sum()):,} samples), {e.label}: counts (left) and "
            f"percentages of each true class (right; rows sum to 100 %). Colour: the off-diagonal cells (errors)."
        )
        figures.append(FigureItem(f"{key}-confusion-{split}", fig, caption))
    fig = cluster_error_plot(e.cluster_errors, e.cluster_sizes, threshold=ERROR_THRESHOLD, title=e.label)
    caption = (
        f"Per-cluster error (share of a cluster's training points not of its majority class), {e.label}: "
        f"{e.clusters_above} of {len(e.cluster_errors)} clusters above {100 * ERROR_THRESHOLD:.0f} %"
        + (" (the series: about 15 of 225 for unscaled MNIST pixels)." if series else ".")
    )
    figures.append(FigureItem(f"{key}-cluster-errors", fig, caption))
    table = confusion_table(e.test_confusion, names, title=f"Test confusion counts, {e.label}")
    return figures, [table]


def classifier_section(
    key: str,
    title: str,
    evaluations: Sequence[Evaluation],
    *,
    detail: Sequence[Evaluation] = (),
    published: Mapping[str, str] | None = None,
    summary: str = "",
    notes: Sequence[str] = (),
) -> Section:
    """The results table of all settings, and confusion matrices and cluster errors for those in ``detail``."""
    section = Section(key=key, title=title, summary=summary, notes=list(notes))
    section.tables.append(results_table(evaluations, published=published))
    for i, e in enumerate(detail):
        figures, tables = detail_items(e, f"{i}", series=bool(published))
        section.figures += figures
        section.tables += tables
    section.metrics = {"settings": [e.to_metrics() for e in evaluations]}
    return section


def accuracy_section(key: str, ks: Sequence[int], errors: Mapping[str, tuple[list[float], list[float]]]) -> Section:
    """Error against k for each setting: a figure and a table."""
    section = Section(key=key, title="Error against the number of clusters")
    fig = accuracy_vs_k_plot(ks, errors)
    caption = f"Train (dashed) and test (solid) error of the cluster classifier for k in {list(ks)}."
    section.figures.append(FigureItem("error-vs-k", fig, caption))
    rows = [[int(k), *[v for s in errors for v in (errors[s][1][i], errors[s][0][i])]] for i, k in enumerate(ks)]
    columns = ["k", *[f"{s}: {split}" for s in errors for split in ("test", "train")]]
    section.tables.append(Table("Test and train error against k", columns, rows))
    section.metrics = {"ks": [int(k) for k in ks], **{s: {"train": tr, "test": te} for s, (tr, te) in errors.items()}}
    best = {s: (int(ks[int(np.argmin(te))]), min(te)) for s, (_, te) in errors.items()}
    section.summary = "; ".join(f"{s}: lowest test error {e:.4f} at k = {k}" for s, (k, e) in best.items()) + "."
    return section


def elbow_section(key: str, curves: Sequence[ElbowCurve], *, caption: str, notes: Sequence[str] = ()) -> Section:
    """The elbow figure and table of a study."""
    section = Section(key=key, title="Elbow: inertia against the number of clusters", notes=list(notes))
    section.figures.append(FigureItem("elbow", elbow_plot(curves), caption))
    section.tables.append(elbow_table(curves))
    section.metrics = {c.algorithm: c.to_metrics() for c in curves}
    section.summary = elbow_summary(curves)
    return section


def tsne_section(
    key: str, title: str, maps: Sequence[tuple[str, np.ndarray, np.ndarray, str, str]], names: Sequence[str]
) -> Section:
    """t-SNE maps ``(name, Y (n, 2), labels (n,), heading, caption)`` coloured by class."""
    section = Section(key=key, title=title)
    for name, Y, labels, heading, caption in maps:
        fig = tsne_map(Y, colors=np.asarray(labels), names=list(names), title=heading)
        section.figures.append(FigureItem(name, fig, caption))
    section.metrics = {"maps": [{"name": m[0], "n_points": len(m[1])} for m in maps]}
    return section
