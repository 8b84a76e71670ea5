"""Study ``mnist-kmeans``: KMeans as a classifier on raw MNIST pixels (the series' post V), reproduced and beaten.

k = 225 clusters on the 60,000 training images (pixels / 255), scalers none / Normalizer / StandardScaler, with the
series' MiniBatchKMeans (n_init 100, max_iter 120, tol 1e-4, batch 200, random_state 2) and full Lloyd KMeans; the
elbow over 1 < k <= 250; the error against k; a t-SNE map of 10,000 training images coloured by digit.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zspace.analyses.elbow import LloydSettings, MiniBatchSettings, elbow_curve
from zspace.analyses.tsne import embed_tsne
from zspace.cluster.classifier import ClusterClassifier
from zspace.cluster.common import Split, Steps, load_split, resolve_data, study_command
from zspace.cluster.outputs import (
    Evaluation,
    accuracy_section,
    classifier_section,
    elbow_section,
    errors_vs_k,
    evaluate,
    tsne_section,
)
from zspace.config import DataConfig
from zspace.report import write_report
from zspace.sections.base import Section, Table

log = logging.getLogger(__name__)

SERIES = "MiniBatchKMeans (series)"
LLOYD = "Lloyd KMeans"
# The series' test (train) errors at k = 225; "standard" was only described: ~1.5 % worse than unscaled.
PUBLISHED = {"none": (0.112, 0.115), "normalizer": (0.083, 0.085)}
TARGET_BEST = 0.075  # our best test error at k = 225 must reach this
TOLERANCE = 0.01  # the reproduction must land within this of the published errors


@dataclass
class Config:
    n_clusters: int = 225  # the series' k
    scalers: tuple[str, ...] = ("none", "normalizer", "standard")  # as the post tried them
    series_n_init: int = 100  # the series' MiniBatchKMeans settings for k = 225
    series_max_iter: int = 120
    series_tol: float = 1e-4
    series_batch_size: int = 200
    series_random_state: int = 2
    lloyd_n_init: int = 1  # Lloyd starts (k-means++); the fit with the lowest inertia is kept
    lloyd_max_iter: int = 100  # Lloyd iterations at most (stops earlier when the inertia changes < tol)
    elbow_k_min: int = 2  # the series: 1 < k <= 250, every k
    elbow_k_max: int = 250
    elbow_k_step: int = 1
    elbow_restarts: int = 1  # Lloyd fits per k
    elbow_minibatch_step: int = 10  # also the series' MiniBatchKMeans elbow at every Nth k (~20 min for all); 0 = none
    accuracy_ks: tuple[int, ...] = (25, 50, 100, 150, 200, 225, 250)  # error against k (Lloyd, normalizer)
    tsne_points: int = 10_000  # training images on the t-SNE map (the series: 10,000)
    tsne_pca: int = 50  # PCA components before t-SNE
    tsne_iter: int = 1000  # t-SNE iterations (250 of them with early exaggeration)
    limit: int = 0  # MNIST images per split; 0 = all (60,000 / 10,000)


QUICK = Config(
    n_clusters=50,
    series_n_init=3,
    series_max_iter=20,
    lloyd_max_iter=20,
    elbow_k_max=40,
    elbow_k_step=4,
    elbow_minibatch_step=0,
    accuracy_ks=(10, 50),
    tsne_points=500,
    tsne_iter=250,
    limit=5000,
)


def run_mnist_kmeans(
    *,
    data: str | None = None,
    out: str | Path = "studies/mnist-kmeans",
    quick: bool = False,
    seed: int = 0,
    progress=None,
    config: Config | None = None,
) -> dict:
    """Run the study; writes ``out/report.html``, the figures and ``metrics.json``; returns the metrics."""
    t0, out = time.perf_counter(), Path(out)
    cfg = config or (QUICK if quick else Config())
    steps = Steps(progress, 2 * len(cfg.scalers) + 4)
    split, _ = load_split(DataConfig(name="mnist", path=str(resolve_data(data, "mnist")), limit=cfg.limit), scale=255)
    steps("data loaded")
    evaluations = _classifiers(split, cfg, seed, steps)
    elbow_sec, elbow_metrics = _elbow(split, cfg, seed)
    steps("elbow")
    ks = [k for k in cfg.accuracy_ks if k <= len(split.X_train)]
    errors = {f"{LLOYD}, normalizer": errors_vs_k(lambda k: _lloyd(cfg, "normalizer", seed, k, 1), ks, *_xy(split))}
    steps("error against k")
    tsne = _tsne(split, cfg, seed)
    steps("t-SNE")
    metrics = _metrics(evaluations, cfg, split, elbow_metrics, time.perf_counter() - t0)
    sections = [
        _headline(metrics, split, cfg, quick),
        classifier_section(
            "classifier",
            f"KMeans as a classifier on raw pixels, k = {cfg.n_clusters}",
            evaluations,
            detail=_detail(evaluations),
            published={f"{SERIES}, {s}": f"{t:.3f}" for s, (t, _) in PUBLISHED.items()},
        ),
        accuracy_section("error-vs-k", ks, errors),
        elbow_sec,
        tsne,
    ]
    command = study_command("mnist-kmeans", data, out, quick, seed)
    title = "KMeans as a classifier: raw MNIST pixels"
    write_report(sections, out, title=title, command=command, extra_metrics=metrics)
    steps("report")
    return metrics


def _xy(split: Split) -> tuple[np.ndarray, ...]:
    return split.X_train, split.y_train, split.X_test, split.y_test


def _series(cfg: Config, scaler: str) -> ClusterClassifier:
    return ClusterClassifier(
        cfg.n_clusters,
        algorithm="minibatch",
        scaler=scaler,
        n_init=cfg.series_n_init,
        max_iter=cfg.series_max_iter,
        tol=cfg.series_tol,
        batch_size=cfg.series_batch_size,
        random_state=cfg.series_random_state,
    )


def _lloyd(cfg: Config, scaler: str, seed: int, k: int | None = None, n_init: int | None = None) -> ClusterClassifier:
    return ClusterClassifier(
        k or cfg.n_clusters,
        algorithm="lloyd",
        scaler=scaler,
        n_init=n_init or cfg.lloyd_n_init,
        max_iter=cfg.lloyd_max_iter,
        random_state=seed,
    )


def _classifiers(split: Split, cfg: Config, seed: int, steps: Steps) -> list[Evaluation]:
    evaluations = []
    for name in (SERIES, LLOYD):
        for scaler in cfg.scalers:
            clf = _series(cfg, scaler) if name == SERIES else _lloyd(cfg, scaler, seed)
            label = f"{name}, {scaler}"
            evaluations.append(evaluate(clf, *_xy(split), label=label, class_names=split.class_names))
            steps(f"{label}: test error {evaluations[-1].test_error:.4f}")
    return evaluations


def _detail(evaluations: list[Evaluation]) -> list[Evaluation]:
    """The series' unscaled and normalizer runs (the post's matrices) and our best, without repeats."""
    chosen = [e for e in evaluations if e.label in (f"{SERIES}, none", f"{SERIES}, normalizer")]
    best = min(evaluations, key=lambda e: e.test_error)
    return chosen + ([best] if best not in chosen else [])


def _elbow(split: Split, cfg: Config, seed: int) -> tuple[Section, dict]:
    X = split.X_train
    ks = np.arange(cfg.elbow_k_min, min(cfg.elbow_k_max, len(X) - 1) + 1, cfg.elbow_k_step)
    curves = [elbow_curve(X, ks, restarts=cfg.elbow_restarts, seed=seed, lloyd=LloydSettings())]
    if cfg.elbow_minibatch_step:
        mb = MiniBatchSettings(n_init=50, max_iter=100, tol=1e-4, batch_size=200)  # the series' elbow settings
        curves.append(elbow_curve(X, ks[:: cfg.elbow_minibatch_step], algorithm="minibatch", restarts=1, minibatch=mb))
    caption = (
        f"Inertia of the unscaled training pixels ({len(X):,} x {X.shape[1]}) against k = {ks[0]}..{ks[-1]} step "
        f"{cfg.elbow_k_step}: Lloyd KMeans fitted in the first 64 PCA components with centres moved to the means of "
        f"all points, inertia measured on all points in the full space"
        + (
            f"; the series' MiniBatchKMeans (n_init 50, max_iter 100, batch 200) at every "
            f"{cfg.elbow_minibatch_step}th k, its inertia measured the same way"
            if cfg.elbow_minibatch_step
            else ""
        )
        + ". The series: no pronounced elbow; 200 < k < 250 needed to resolve the classes."
    )
    section = elbow_section("elbow", curves, caption=caption)
    return section, section.metrics


def _tsne(split: Split, cfg: Config, seed: int) -> Section:
    n = min(cfg.tsne_points, len(split.X_train))
    rows = np.sort(np.random.default_rng(seed).choice(len(split.X_train), size=n, replace=False))
    pca = cfg.tsne_pca if cfg.tsne_pca < split.X_train.shape[1] else None
    Y = embed_tsne(split.X_train[rows], pca_components=pca, n_iter=cfg.tsne_iter, random_state=seed)
    heading = f"t-SNE of {n:,} random training images"
    caption = (
        f"{heading} (raw pixels / 255, PCA to {pca} components first; perplexity 30, "
        f"early exaggeration 12, {cfg.tsne_iter} iterations), coloured by digit. Mixed zones explain the confusions."
    )
    maps = [("tsne-train", Y, split.y_train[rows], heading, caption)]
    return tsne_section("tsne", "t-SNE map of the training images", maps, split.class_names)


def _metrics(evaluations: list[Evaluation], cfg: Config, split: Split, elbow: dict, seconds: float) -> dict:
    by = {e.label: e for e in evaluations}
    best = min(evaluations, key=lambda e: e.test_error)
    targets = {}
    for scaler, (test, _) in PUBLISHED.items():
        e = by.get(f"{SERIES}, {scaler}")
        if e is not None:
            targets[f"reproduction_{scaler}"] = {
                "value": e.test_error,
                "published": test,
                "met": bool(abs(e.test_error - test) <= TOLERANCE),
            }
    targets["best"] = {"value": best.test_error, "setting": best.label, "target": TARGET_BEST}
    targets["best"]["met"] = bool(best.test_error <= TARGET_BEST)
    return {
        "study": "mnist-kmeans",
        "config": dataclasses.asdict(cfg),
        "n_train": len(split.X_train),
        "n_test": len(split.X_test),
        "data": split.source,
        "results": {e.label: e.to_metrics() for e in evaluations},
        "targets": targets,
        "elbow": {k: {kk: v[kk] for kk in ("elbow_k", "elbow_pronounced", "seconds")} for k, v in elbow.items()},
        "seconds": round(seconds, 1),
    }


def _headline(metrics: dict, split: Split, cfg: Config, quick: bool) -> Section:
    t = metrics["targets"]
    rows = [
        [name, v["value"], v.get("published", v.get("target")), "yes" if v["met"] else "no"] for name, v in t.items()
    ]
    section = Section("targets", "Published numbers and targets")
    section.tables.append(Table("Targets", ["target", "ours (test error)", "published / target", "met"], rows))
    section.summary = (
        f"{len(split.X_train):,} training and {len(split.X_test):,} test images{' (quick mode)' if quick else ''}, "
        f"k = {cfg.n_clusters}. Best: {t['best']['setting']} with test error {t['best']['value']:.4f}. "
        f"Reproduction within +-{TOLERANCE} of the published errors (n_init 100, max_iter 120, batch 200, "
        f"random_state 2)."
    )
    return section
