"""What every cluster study reports: train/test errors, confusion matrices (counts and row percentages), the
per-cluster error table, error against k, the elbow and a t-SNE map, as report sections."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix

from zspace.analyses.elbow import ElbowCurve
from zspace.cluster.classifier import ClusterClassifier
from zspace.figures.cluster import accuracy_vs_k_plot, cluster_error_plot, confusion_plot, row_percent
from zspace.figures.elbow import elbow_plot
from zspace.figures.tsne import tsne_map
from zspace.sections.base import FigureItem, Section, Table
from zspace.sections.elbow import elbow_summary, elbow_table

ERROR_THRESHOLD = 0.4  # the series counted the clusters whose error is above 40 %


@dataclass(eq=False)  # compared by identity: it holds arrays
class Evaluation:
    """A fitted cluster classifier measured on its training data and on held-out test data."""

    label: str  # e.g. "lloyd, normalizer, k = 225"
    settings: dict
    class_names: list[str]
    train_confusion: np.ndarray  # (c, c) counts, rows true, columns predicted
    test_confusion: np.ndarray
    cluster_errors: np.ndarray  # (k,) per-cluster error rate, NaN for an empty cluster
    cluster_sizes: np.ndarray  # (k,)
    inertia: float
    seconds: float  # fitting time

    @staticmethod
    def _error(cm: np.ndarray) -> float:
        return float(1.0 - np.trace(cm) / max(cm.sum(), 1))

    @property
    def train_error(self) -> float:
        return self._error(self.train_confusion)

    @property
    def test_error(self) -> float:
        return self._error(self.test_confusion)

    @property
    def clusters_above(self) -> int:
        return int(np.sum(np.nan_to_num(self.cluster_errors, nan=0.0) > ERROR_THRESHOLD))

    def to_metrics(self) -> dict:
        return {
            "label": self.label,
            **self.settings,
            "train_error": self.train_error,
            "test_error": self.test_error,
            "n_wrong_train": int(self.train_confusion.sum() - np.trace(self.train_confusion)),
            "n_wrong_test": int(self.test_confusion.sum() - np.trace(self.test_confusion)),
            "clusters_above_40pc_error": self.clusters_above,
            "mean_cluster_error": float(np.nanmean(self.cluster_errors)),
            "inertia": self.inertia,
            "fit_seconds": round(self.seconds, 2),
            "train_confusion": self.train_confusion.tolist(),
            "test_confusion": self.test_confusion.tolist(),
        }


def evaluate(
    clf: ClusterClassifier,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    label: str,
    class_names: Sequence[str],
) -> Evaluation:
    """Fit ``clf`` on the training data and measure it on both splits (``y`` as class indices 0..c-1)."""
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    classes = np.arange(len(class_names))
    settings = {
        k: clf.get_params()[k] for k in ("algorithm", "scaler", "n_clusters", "n_init", "max_iter", "random_state")
    }
    return Evaluation(
        label=label,
        settings={**settings, "scaler": settings["scaler"] or "none", "n_iter": int(clf.n_iter_)},
        class_names=list(class_names),
        train_confusion=confusion_matrix(y_train, clf.predict(X_train), labels=classes),
        test_confusion=confusion_matrix(y_test, clf.predict(X_test), labels=classes),
        cluster_errors=clf.cluster_errors_,
        cluster_sizes=clf.cluster_sizes_,
        inertia=clf.inertia_,
        seconds=seconds,
    )


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


def detail_items(e: Evaluation, key: str) -> tuple[list[FigureItem], list[Table]]:
    """Confusion matrices (train, test) and per-cluster errors of one evaluation."""
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
        f"{e.clusters_above} of {len(e.cluster_errors)} clusters above {100 * ERROR_THRESHOLD:.0f} % (the series: "
        f"about 15 of 225 for unscaled MNIST pixels)."
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
        figures, tables = detail_items(e, f"{i}")
        section.figures += figures
        section.tables += tables
    section.metrics = {"settings": [e.to_metrics() for e in evaluations]}
    return section


def errors_vs_k(
    make: Callable[[int], ClusterClassifier],
    ks: Sequence[int],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> tuple[list[float], list[float]]:
    """Train and test error of ``make(k)`` fitted for every k of ``ks``."""
    train, test = [], []
    for k in ks:
        clf = make(int(k)).fit(X_train, y_train)
        train.append(1.0 - clf.score(X_train, y_train))
        test.append(1.0 - clf.score(X_test, y_test))
    return train, test


def accuracy_section(key: str, ks: Sequence[int], errors: Mapping[str, tuple[list[float], list[float]]]) -> Section:
    """Error against k for each setting: a figure and a table."""
    section = Section(key=key, title="Error against the number of clusters")
    fig = accuracy_vs_k_plot(ks, errors)
    caption = f"Train (dashed) and test (solid) error of the cluster classifier for k in {list(ks)}."
    section.figures.append(FigureItem("error-vs-k", fig, caption))
    rows = [[int(k), *[errors[s][1][i] for s in errors]] for i, k in enumerate(ks)]
    section.tables.append(Table("Test error against k", ["k", *errors], rows))
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
