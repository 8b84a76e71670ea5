"""Study ``mnist-kmeans``: KMeans as a classifier on raw MNIST pixels (the series' post V), reproduced and beaten.

k = 225 clusters on the 60,000 training images (pixels / 255), scalers none / Normalizer / StandardScaler, with the
series' MiniBatchKMeans (n_init 100, max_iter 120, tol 1e-4, batch 200, random_state 2) and full Lloyd KMeans; the
elbow over 1 < k <= 250; the error against k; a t-SNE map of 10,000 training images coloured by digit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from sklearn.preprocessing import Normalizer

from zspace.analyses.classifier import ClusterClassifier, Evaluation, distance_features, errors_vs_k, evaluate
from zspace.analyses.elbow import LloydSettings, MiniBatchSettings, elbow_curve
from zspace.analyses.tsne import embed_tsne
from zspace.config import ClusterKs, DataConfig, Range, Scalers, Seed
from zspace.data.fingerprint import dataset_name
from zspace.sections.base import Section, Table
from zspace.studies.base import StudyContext, StudyResult
from zspace.studies.clustering import (
    Split,
    accuracy_section,
    classifier_section,
    elbow_section,
    load_split,
    tsne_section,
)

log = logging.getLogger(__name__)

SERIES = "MiniBatchKMeans (series)"
LLOYD = "Lloyd KMeans"
# The series' test (train) errors at k = 225; "standard" was only described: ~1.5 % worse than unscaled.
PUBLISHED = {"none": (0.112, 0.115), "normalizer": (0.083, 0.085)}
TARGET_BEST = 0.075  # our best test error at k = 225 must reach this
TOLERANCE = 0.01  # the reproduction must land within this of the published errors
STANDARD_WORSE = 0.015  # the series: StandardScaler about 1.5 points of error worse than no scaling
FEATURES_TARGET = 0.02  # the series: a classifier on the KMeans distances reaches > 98 % accuracy
SAME_SHAPE = 0.05  # normalized elbow curves closer than this (share of the first inertia) have "the same shape"


@dataclass
class Config:
    n_clusters: Annotated[int, Range(1, 100000)] = 225  # the series' k
    # as the post tried them
    scalers: Scalers = ("none", "normalizer", "standard")
    series_n_init: Annotated[int, Range(1, 100000)] = 100  # the series' MiniBatchKMeans settings for k = 225
    series_max_iter: Annotated[int, Range(1, 100000)] = 120  # the series: max_iter 120
    series_tol: Annotated[float, Range(0, 1e6)] = 1e-4  # the series: tol 1e-4
    series_batch_size: Annotated[int, Range(1, 2**20)] = 200  # the series: mini-batches of 200
    series_random_state: Seed = 2  # the series: random_state 2 (fixed, not the study seed)
    # Lloyd starts (k-means++); the fit with the lowest inertia is kept
    lloyd_n_init: Annotated[int, Range(1, 100000)] = 1
    # Lloyd iterations at most (stops earlier when the inertia changes < tol)
    lloyd_max_iter: Annotated[int, Range(1, 100000)] = 100
    elbow_k_min: Annotated[int, Range(1, 100000)] = 2  # the series: 1 < k <= 250, every k
    elbow_k_max: Annotated[int, Range(1, 100000)] = 250  # the largest k of the elbow
    elbow_k_step: Annotated[int, Range(1, 100000)] = 1  # every k_step-th k from elbow_k_min
    elbow_restarts: Annotated[int, Range(1, 100000)] = 1  # Lloyd fits per k
    elbow_normalizer: bool = True  # the same elbow on Normalizer-scaled pixels (the series: the shape does not change)
    # also the series' MiniBatchKMeans elbow at every Nth k (~20 min for all); 0 = none
    elbow_minibatch_step: Annotated[int, Range(0, 100000)] = 10
    # error against k (Lloyd, normalizer)
    accuracy_ks: ClusterKs = (25, 50, 100, 150, 200, 225, 250)
    # KMeans distances as features: k of the Lloyd fit (normalizer); 0 = skip
    features_clusters: Annotated[int, Range(0, 100000)] = 225
    # hidden units of the MLP on the standardised distances (scikit-learn MLPClassifier)
    features_hidden: Annotated[int, Range(1, 100000)] = 128
    features_iter: Annotated[int, Range(1, 100000)] = 40  # MLP epochs (Adam, batch 200)
    tsne_points: Annotated[int, Range(2, 1_000_000)] = 10_000  # training images on the t-SNE map (the series: 10,000)
    tsne_pca: Annotated[int, Range(2, 4096)] = 50  # PCA components before t-SNE
    tsne_iter: Annotated[int, Range(1, 100000)] = 1000  # t-SNE iterations (250 of them with early exaggeration)
    limit: Annotated[int, Range(0, 2**31 - 1)] = 0  # MNIST images per split; 0 = all (60,000 / 10,000)


QUICK = {
    "n_clusters": 50,
    "series_n_init": 3,
    "series_max_iter": 20,
    "lloyd_max_iter": 20,
    "elbow_k_max": 40,
    "elbow_k_step": 4,
    "elbow_minibatch_step": 0,
    "features_clusters": 50,
    "features_iter": 20,
    "accuracy_ks": (10, 50),
    "tsne_points": 500,
    "tsne_iter": 250,
    "limit": 5000,
}


TITLE = "KMeans as a classifier: raw MNIST pixels"
DATA = "mnist"


def run(cfg: Config, ctx: StudyContext) -> StudyResult:
    """Cluster the pixels with every scaler and algorithm; the elbow (unscaled and normalized); error against k;
    KMeans distances as features; a t-SNE map."""
    seed = ctx.seed
    ctx.begin(2 * len(cfg.scalers) + 5 + bool(cfg.features_clusters))
    split, _ = load_split(DataConfig(name="mnist", path=str(ctx.data_path(DATA)), limit=cfg.limit), scale=255)
    name = dataset_name(ctx.data_path(DATA))  # "MNIST" only for the series' own files
    series = name == "MNIST"
    ctx.step("data loaded")
    evaluations = _classifiers(split, cfg, seed, ctx)
    elbow_sections, elbow_metrics = _elbow(split, cfg, seed, ctx, series)
    ks = [k for k in cfg.accuracy_ks if k <= len(split.X_train)]
    errors = {f"{LLOYD}, normalizer": errors_vs_k(lambda k: _lloyd(cfg, "normalizer", seed, k, 1), ks, *split.xy())}
    ctx.step("error against k")
    features = distance_features_section(split, cfg, seed, series) if cfg.features_clusters else None
    if features:
        ctx.step("KMeans distances as features")
    tsne = _tsne(split, cfg, seed, "digit" if series else "class")
    ctx.step("t-SNE")
    metrics = _metrics(evaluations, cfg, split, elbow_metrics, features, series)
    metrics["dataset"] = name
    sections = [
        _headline(metrics, split, cfg, ctx.quick, name),
        classifier_section(
            "classifier",
            f"KMeans as a classifier on raw pixels, k = {cfg.n_clusters}",
            evaluations,
            detail=_detail(evaluations),
            published={f"{SERIES}, {s}": f"{t:.3f}" for s, (t, _) in PUBLISHED.items()} if series else None,
            summary=_scaler_summary(evaluations),
        ),
        accuracy_section("error-vs-k", ks, errors),
        *elbow_sections,
        *([features] if features else []),
        tsne,
    ]
    title = TITLE if series else f"KMeans as a classifier: raw pixels of {name}"
    return StudyResult(sections, metrics, title)


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


def _classifiers(split: Split, cfg: Config, seed: int, ctx: StudyContext) -> list[Evaluation]:
    evaluations = []
    for name in (SERIES, LLOYD):
        for scaler in cfg.scalers:
            clf = _series(cfg, scaler) if name == SERIES else _lloyd(cfg, scaler, seed)
            label = f"{name}, {scaler}"
            evaluations.append(evaluate(clf, *split.xy(), label=label, class_names=split.class_names))
            ctx.step(f"{label}: test error {evaluations[-1].test_error:.4f}")
    return evaluations


def _scaler_summary(evaluations: list[Evaluation]) -> str:
    """The scalers compared, per algorithm: test (train) errors, as the post compared them."""
    parts = []
    for name in (SERIES, LLOYD):
        es = [e for e in evaluations if e.label.startswith(name + ",")]
        if es:
            cells = ", ".join(f"{e.settings['scaler']} {e.test_error:.4f} ({e.train_error:.4f})" for e in es)
            parts.append(f"{name}: {cells}")
    return "Test (train) error by scaler. " + "; ".join(parts) + "." if parts else ""


def _detail(evaluations: list[Evaluation]) -> list[Evaluation]:
    """The series' unscaled and normalizer runs (the post's matrices) and our best, without repeats."""
    chosen = [e for e in evaluations if e.label in (f"{SERIES}, none", f"{SERIES}, normalizer")]
    best = min(evaluations, key=lambda e: e.test_error)
    return chosen + ([best] if best not in chosen else [])


def _elbow(split: Split, cfg: Config, seed: int, ctx: StudyContext, series: bool = True) -> tuple[list[Section], dict]:
    """The elbow of the unscaled pixels (and the series' MiniBatchKMeans), then of the Normalizer-scaled ones; the
    series' findings quoted only when ``series`` (its MNIST files)."""
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
        + (". The series: no pronounced elbow; 200 < k < 250 needed to resolve the classes." if series else ".")
    )
    sections = [elbow_section("elbow", curves, caption=caption)]
    ctx.step("elbow")
    metrics = dict(sections[0].metrics)
    if cfg.elbow_normalizer:
        normal = elbow_curve(Normalizer().transform(X), ks, restarts=cfg.elbow_restarts, seed=seed)
        diff = shape_difference(curves[0].best, normal.best)
        caption = (
            f"The same elbow on Normalizer-scaled pixels (every image divided by its L2 norm). Both curves divided by "
            f"their inertia at k = {ks[0]} differ by at most {diff:.3f} (share of the k = {ks[0]} inertia)"
            + ('; the series: "the shape of the curve does not change".' if series else ".")
        )
        section = elbow_section("elbow-normalizer", [normal], caption=caption)
        section.title = "Elbow of the Normalizer-scaled pixels"
        section.metrics["shape_difference"] = diff
        section.summary = (
            f"{section.summary} Relative to k = {ks[0]} the unscaled and normalized curves differ by at most "
            f"{diff:.3f}: {'the shape does not change' if diff < SAME_SHAPE else 'the shape changes'} "
            f"(threshold {SAME_SHAPE})."
        )
        sections.append(section)
        metrics["normalizer"] = {**normal.to_metrics(), "shape_difference": diff}
        ctx.step("elbow, normalizer")
    return sections, metrics


def shape_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest gap between two inertia curves over the same ks once each is divided by its first value."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or len(a) == 0 or a[0] <= 0 or b[0] <= 0:
        raise ValueError(f"two non-empty curves of one length with positive first values needed: {a.shape}, {b.shape}")
    return float(np.max(np.abs(a / a[0] - b / b[0])))


def _tsne(split: Split, cfg: Config, seed: int, kind: str = "digit") -> Section:
    n = min(cfg.tsne_points, len(split.X_train))
    rows = np.sort(np.random.default_rng(seed).choice(len(split.X_train), size=n, replace=False))
    pca = cfg.tsne_pca if cfg.tsne_pca < split.X_train.shape[1] else None
    Y = embed_tsne(split.X_train[rows], pca_components=pca, n_iter=cfg.tsne_iter, random_state=seed)
    heading = f"t-SNE of {n:,} random training images"
    caption = (
        f"{heading} (raw pixels / 255, PCA to {pca} components first; perplexity 30, "
        f"early exaggeration 12, {cfg.tsne_iter} iterations), coloured by {kind}. Mixed zones explain the confusions."
    )
    maps = [("tsne-train", Y, split.y_train[rows], heading, caption)]
    return tsne_section("tsne", "t-SNE map of the training images", maps, split.class_names)


def _metrics(
    evaluations: list[Evaluation], cfg: Config, split: Split, elbow: dict, features: Section | None, series: bool = True
) -> dict:
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
    none, standard = by.get(f"{SERIES}, none"), by.get(f"{SERIES}, standard")
    if none is not None and standard is not None:
        worse = standard.test_error - none.test_error
        targets["standard_scaler_worse"] = {"value": worse, "published": STANDARD_WORSE, "met": bool(worse > 0)}
    targets["best"] = {"value": best.test_error, "setting": best.label, "target": TARGET_BEST}
    targets["best"]["met"] = bool(best.test_error <= TARGET_BEST)
    if features is not None:
        f = features.metrics
        targets["distance_features"] = {"value": f["test_error"], "target": FEATURES_TARGET}
        targets["distance_features"]["met"] = bool(f["test_error"] <= FEATURES_TARGET)
    if not series:  # the series' numbers and targets are for MNIST only
        targets = {}
    return {
        "n_train": len(split.X_train),
        "n_test": len(split.X_test),
        "data": split.source,
        "results": {e.label: e.to_metrics() for e in evaluations},
        "targets": targets,
        "elbow": {k: {kk: v[kk] for kk in ("elbow_k", "elbow_pronounced", "seconds")} for k, v in elbow.items()},
        **({"elbow_shape_difference": elbow["normalizer"]["shape_difference"]} if "normalizer" in elbow else {}),
        **({"distance_features": features.metrics} if features is not None else {}),
    }


def distance_features_section(split: Split, cfg: Config, seed: int, series: bool = True) -> Section:
    """An MLP on the distances to the centres of a KMeans fit (``ClusterClassifier.transform``) beside the KMeans
    classifier itself, both fitted on the training split only; the series' claim and target only when ``series``."""
    clf = _lloyd(cfg, "normalizer", seed, cfg.features_clusters, 1)
    result = distance_features(
        clf, *split.xy(), hidden=(cfg.features_hidden,), max_iter=cfg.features_iter, random_state=seed
    )
    rows = [
        [f"KMeans classifier (Lloyd, normalizer, k = {cfg.features_clusters})", result["kmeans_train_error"],
         result["kmeans_test_error"]],
        [f"MLP ({cfg.features_hidden} hidden) on the {cfg.features_clusters} distances", result["train_error"],
         result["test_error"]],
    ]  # fmt: skip
    section = Section("distance-features", "KMeans distances as features")
    caption = (
        f"Every image becomes the vector of its {cfg.features_clusters} distances to the KMeans centres "
        f"(standardised); an MLP ({cfg.features_hidden} ReLU units, Adam, {cfg.features_iter} epochs) learns the "
        + ("digit from them. The series: such a classifier reaches more than 98 % accuracy." if series else
           "class from them.")
    )  # fmt: skip
    section.tables.append(Table("Errors", ["classifier", "train error", "test error"], rows, caption))
    section.metrics = result
    section.summary = (
        f"The MLP on the distances: test error {result['test_error']:.4f} against {result['kmeans_test_error']:.4f} "
        f"for the nearest-cluster vote of the same fit" + (f" (target <= {FEATURES_TARGET})." if series else ".")
    )
    return section


def _headline(metrics: dict, split: Split, cfg: Config, quick: bool, name: str = "MNIST") -> Section:
    t = metrics["targets"]
    if not t:
        return _not_applicable(metrics, split, cfg, quick, name)
    rows = [
        [name, v["value"], v.get("published", v.get("target")), "yes" if v["met"] else "no"] for name, v in t.items()
    ]
    section = Section("targets", "Published numbers and targets")
    caption = (
        "Test errors, except standard_scaler_worse: the test error of the series' MiniBatchKMeans with StandardScaler "
        "minus without scaling (the series: about 1.5 points worse)."
    )
    section.tables.append(Table("Targets", ["target", "ours", "published / target", "met"], rows, caption))
    section.summary = (
        f"{len(split.X_train):,} training and {len(split.X_test):,} test images{' (quick mode)' if quick else ''}, "
        f"k = {cfg.n_clusters}. Best: {t['best']['setting']} with test error {t['best']['value']:.4f}. "
        f"Reproduction within +-{TOLERANCE} of the published errors (n_init 100, max_iter 120, batch 200, "
        f"random_state 2)."
    )
    return section


def _not_applicable(metrics: dict, split: Split, cfg: Config, quick: bool, name: str) -> Section:
    """The headline for data other than the series' MNIST: no published numbers, no targets."""
    best = min(metrics["results"].items(), key=lambda kv: kv[1]["test_error"])
    section = Section("targets", f"Results on {name}")
    section.summary = (
        f"{len(split.X_train):,} training and {len(split.X_test):,} test images{' (quick mode)' if quick else ''}, "
        f"k = {cfg.n_clusters}. Best: {best[0]} with test error {best[1]['test_error']:.4f}. The series' published "
        f"numbers and targets are for MNIST; this data is {name}, so the comparison does not apply."
    )
    return section
