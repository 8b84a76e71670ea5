"""Elbow: KMeans inertia against the number of clusters, Lloyd (faiss) and the series' MiniBatchKMeans (SPEC 4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.elbow import (
    ALGORITHMS,
    ElbowCurve,
    LloydSettings,
    MiniBatchSettings,
    elbow_curve,
    estimate_seconds,
)
from zspace.analyses.kmeans import MIN_SAMPLE
from zspace.config import Len, OneOf, Range
from zspace.errors import ConfigError
from zspace.figures.elbow import NAMES, elbow_plot
from zspace.io.limits import TIME_BUDGET_S
from zspace.sections.base import Context, FigureItem, Section, Table, celeba_comparable

TITLE = "Elbow: KMeans inertia against the number of clusters"
PUBLISHED = {  # the series' published elbows, by the data they are of
    "celeba": "CelebA latents (z_dim 256): no pronounced elbow, 38 - 42 clusters plausible",
    "mnist": "on raw MNIST pixels (not latents): no pronounced elbow, 200 < k < 250 needed",
}
MINIBATCH_MAX_POINTS = 50_000  # the MiniBatchKMeans reference curve is fitted on at most this many points


@dataclass
class Config:
    k_min: Annotated[int, Range(1, 100000)] = 2  # smallest number of clusters
    # largest number of clusters (the series: 80 for CelebA latents, 250 for MNIST)
    k_max: Annotated[int, Range(1, 2**31 - 1)] = 80
    k_step: Annotated[int, Range(1, 100000)] = 2  # every second k, as the series did for CelebA
    # "lloyd": full k-means (faiss); "minibatch": the series' MiniBatchKMeans
    algorithms: Annotated[tuple[Annotated[str, OneOf(*ALGORITHMS)], ...], Len(1, len(ALGORITHMS))] = ALGORITHMS
    # Lloyd fits per k with different seeds: the band shows how unstable the curve is
    restarts: Annotated[int, Range(1, 1000)] = 3
    # MiniBatchKMeans fits per k (the series ran one curve; each fit is slow)
    minibatch_restarts: Annotated[int, Range(1, 1000)] = 1
    source: Annotated[str, OneOf("z", "mu")] = "z"  # the array to cluster: "z" or "mu" (mu falls back to z for an AE)
    max_points: Annotated[int, Range(0, 2**31 - 1)] = 0  # cluster a random subset of this many points; 0 = all points
    lloyd_iter: Annotated[int, Range(1, 100000)] = 20  # Lloyd iterations per fit
    # Lloyd fits on a sample of this many points per centre (inertia: all)
    lloyd_points_per_centroid: Annotated[int, Range(1, 10**6)] = 256
    # Lloyd fits in the first fit_dims PCA components of a larger space; 0 = the full space
    fit_dims: Annotated[int, Range(0, 65536)] = 64
    # the series' MiniBatchKMeans settings for its elbow (MNIST post)
    minibatch_n_init: Annotated[int, Range(1, 100000)] = 50
    minibatch_max_iter: Annotated[int, Range(1, 100000)] = 100  # passes over the data at most
    minibatch_tol: Annotated[float, Range(0, 1e6)] = 1e-4  # early stop on small centre changes
    minibatch_batch_size: Annotated[int, Range(1, 2**20)] = 200  # points per mini-batch
    # MiniBatchKMeans is fitted on a seeded random subset of this many points when there are more (its inertia is
    # still over all points); 0 = fit on all points, as the series did (436 s per curve on 1,000,000 points)
    minibatch_max_points: Annotated[int, Range(0, 2**31 - 1)] = MINIBATCH_MAX_POINTS
    # "pronounced": log-log slope over [k/2, k] >= this x the slope over [k, 2k]
    min_slope_ratio: Annotated[float, Range(1, 1e6)] = 3.0


MIN_CAPPED_POINTS = 50_000  # the time limit never shrinks the clustered points below this (a refusal instead)
MAX_KS = 256  # at most this many KMeans fits per algorithm (the series: every k in 2..250)


def validate(cfg: Config) -> None:
    unknown = [a for a in cfg.algorithms if a not in ALGORITHMS]
    if unknown or not cfg.algorithms:
        raise ConfigError(f"elbow: algorithms must be a non-empty subset of {ALGORITHMS}, got {cfg.algorithms}")
    if not 1 <= cfg.k_min <= cfg.k_max or cfg.k_step < 1:
        raise ConfigError(f"elbow: need 1 <= k_min <= k_max, k_step >= 1; got {cfg.k_min}, {cfg.k_max}, {cfg.k_step}")
    if min(cfg.restarts, cfg.minibatch_restarts, cfg.lloyd_iter, cfg.lloyd_points_per_centroid) < 1:
        raise ConfigError("elbow: restarts, minibatch_restarts, lloyd_iter and lloyd_points_per_centroid must be >= 1")
    if cfg.source not in ("z", "mu") or min(cfg.max_points, cfg.fit_dims, cfg.minibatch_max_points) < 0:
        raise ConfigError(
            f"elbow: source must be z or mu, max_points, fit_dims and minibatch_max_points >= 0 (source {cfg.source!r})"
        )


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    notes: list[str] = []
    X = _points(ctx, cfg, notes)
    ks = _ks(cfg, len(X), notes)
    X = _within_budget(X, ks, cfg, ctx, notes)
    section = Section(key="elbow", title=TITLE, notes=notes)
    if len(ks) == 0:
        notes.append(f"skipped: {len(X)} points are too few for k >= {cfg.k_min}")
        section.skipped = True
        return section
    curves = []
    for i, algorithm in enumerate(cfg.algorithms):
        ctx.tick(f"elbow fits ({len(ks)} k each)", i, len(cfg.algorithms))
        curves.append(_curve(X, ks, algorithm, cfg, ctx.seed))
    ctx.tick(f"elbow fits ({len(ks)} k each)", len(cfg.algorithms), len(cfg.algorithms))
    fitted = {c.algorithm: c.settings["fit_points"] for c in curves if c.settings.get("fit_points", len(X)) < len(X)}
    if "minibatch" in fitted:
        notes.append(
            f"MiniBatchKMeans (the series' reference curve) was fitted on a seeded random subset of "
            f"{fitted['minibatch']:,} of the {len(X):,} points (elbow.minibatch_max_points; 0 fits on all, as the "
            f"series did); its inertia is over all {len(X):,} points"
        )
    section.figures.append(_figure(curves, len(X), X.shape[1], cfg))
    section.tables.append(elbow_table(curves))
    section.metrics = {
        "n_points": len(X),
        "n_features": int(X.shape[1]),
        "source": cfg.source if cfg.source != "mu" or ctx.latents.mu is not None else "z",
        "fit_points": {c.algorithm: _fit_points(c, len(X)) for c in curves},  # points each curve was fitted on
        **({"published": published} if (published := series_published(ctx)) else {}),
        **{c.algorithm: c.to_metrics() for c in curves},
    }
    section.summary = elbow_summary(curves, published)
    return section


def series_published(ctx: Context) -> str | None:
    """The series' published elbow of the data these latents come from: CelebA's only for the series' CelebA at
    z_dim 256, MNIST's raw-pixel elbow only for the series' MNIST; None for any other data."""
    series = ctx.series()
    if series == "celeba" and not celeba_comparable(ctx, ctx.latents.z.shape[1]):
        return None
    return PUBLISHED.get(series) if series else None


def _points(ctx: Context, cfg: Config, notes: list[str]) -> np.ndarray:
    lat = ctx.latents
    X = lat.z
    if cfg.source == "mu":
        if lat.mu is None:
            notes.append("source mu asked for, but the latents have no mu (an AE): z is clustered")
        else:
            X = lat.mu
    if 0 < cfg.max_points < len(X):
        rows = np.sort(ctx.rng(31).choice(len(X), size=cfg.max_points, replace=False))
        notes.append(f"a random subset of {cfg.max_points:,} of the {len(X):,} points is clustered (max_points)")
        X = np.asarray(X[rows])
    return X


def estimate(n: int, d: int, ks: np.ndarray, cfg: Config) -> float:
    """Coarse seconds of the section's curves on ``n`` points (:func:`zspace.analyses.elbow.estimate_seconds`)."""
    lloyd = LloydSettings(cfg.lloyd_iter, cfg.lloyd_points_per_centroid, cfg.fit_dims)
    return sum(
        estimate_seconds(n, d, ks, cfg.restarts if a == "lloyd" else cfg.minibatch_restarts, a, lloyd=lloyd,
                         fit_points=cfg.minibatch_max_points)
        for a in cfg.algorithms
    )  # fmt: skip


def _within_budget(X: np.ndarray, ks: np.ndarray, cfg: Config, ctx: Context, notes: list[str]) -> np.ndarray:
    """All of ``X``, or (``max_points`` 0 and the curves estimated beyond the time limit) a seeded random subset
    small enough to fit it, with a note: ten million points are clustered on a sample, not refused. A subset
    that still does not fit (thousands of k) is left to :func:`elbow_curve`'s refusal."""
    n, d = len(X), int(X.shape[1])
    if cfg.max_points or len(ks) == 0 or estimate(n, d, ks, cfg) <= TIME_BUDGET_S:
        return X
    m = n
    while m > MIN_CAPPED_POINTS and estimate(m, d, ks, cfg) > TIME_BUDGET_S:
        m = max(MIN_CAPPED_POINTS, m // 2)
    if m >= n or estimate(m, d, ks, cfg) > TIME_BUDGET_S:
        return X
    rows = np.sort(ctx.rng(31).choice(n, size=m, replace=False))
    notes.append(
        f"a random subset of {m:,} of the {n:,} points is clustered: all of them would take about "
        f"{estimate(n, d, ks, cfg):.3g} s, more than the limit of {TIME_BUDGET_S:.0f} s (set elbow.max_points to "
        "choose the subset's size)"
    )
    return np.asarray(X[rows])


def _ks(cfg: Config, n: int, notes: list[str]) -> np.ndarray:
    ks = np.arange(cfg.k_min, cfg.k_max + 1, cfg.k_step)
    kept = ks[ks < n]  # k = n gives inertia 0: nothing to learn
    if len(kept) < len(ks):
        notes.append(f"k is limited to below the {n} points: k in {cfg.k_min}..{kept.max() if len(kept) else '-'}")
    if len(kept) > MAX_KS:  # thousands of KMeans fits would run for hours: thin the grid, keep its ends
        step = int(np.ceil(len(kept) / MAX_KS))
        thinned = np.unique(np.append(kept[::step], kept[-1]))
        notes.append(
            f"{len(kept):,} values of k are too many fits: every {step * cfg.k_step}th k is used ({len(thinned)})"
        )
        kept = thinned
    return kept


def _curve(X: np.ndarray, ks: np.ndarray, algorithm: str, cfg: Config, seed: int) -> ElbowCurve:
    return elbow_curve(
        X,
        ks,
        algorithm=algorithm,
        restarts=cfg.restarts if algorithm == "lloyd" else cfg.minibatch_restarts,
        seed=seed,
        lloyd=LloydSettings(cfg.lloyd_iter, cfg.lloyd_points_per_centroid, cfg.fit_dims),
        minibatch=MiniBatchSettings(
            cfg.minibatch_n_init, cfg.minibatch_max_iter, cfg.minibatch_tol, cfg.minibatch_batch_size
        ),
        min_slope_ratio=cfg.min_slope_ratio,
        fit_points=cfg.minibatch_max_points,
    )


def _fit_points(curve: ElbowCurve, n: int) -> int | str:
    """The points a curve was fitted on: a number, or for Lloyd its per-k sample rule."""
    if curve.algorithm == "minibatch":
        return int(curve.settings.get("fit_points", n))
    s = curve.settings
    return f"min({n}, max({s['max_points_per_centroid']} * k, {MIN_SAMPLE})) per k"


def _figure(curves: list[ElbowCurve], n: int, d: int, cfg: Config) -> FigureItem:
    fig = elbow_plot(curves, title=f"{n:,} points, {d} dimensions")
    parts = []
    for c in curves:
        s = c.settings
        if c.algorithm == "lloyd":
            space = f"first {s['fit_dims']} PCA components" if 0 < s["fit_dims"] < d else "the full space"
            parts.append(
                f"Lloyd (faiss): {c.inertia.shape[1]} fit(s) per k, {s['n_iter']} iterations in {space} on a sample "
                f"of {s['max_points_per_centroid']} points per centre, then centres = means of all points"
            )
        else:
            subset = f" on a random {s['fit_points']:,} of the points" if s.get("fit_points", n) < n else ""
            parts.append(
                f"MiniBatchKMeans: {c.inertia.shape[1]} fit(s) per k{subset}, n_init {s['n_init']}, max_iter "
                f"{s['max_iter']}, tol {s['tol']:g}, batch {s['batch_size']}"
            )
    caption = (
        f"Inertia (sum over all {n:,} points of the squared distance to the nearest centre, in the full space) "
        f"against k = {cfg.k_min}..{int(curves[0].ks.max())} step {cfg.k_step}; line: mean over the fits, band: min "
        f"to max. Star: a pronounced elbow, cross: the Kneedle point of a curve without one (log-log slope ratio "
        f"< {cfg.min_slope_ratio:g}). Right: spread of the fits per k. " + "; ".join(parts) + "."
    )
    return FigureItem("elbow", fig, caption)


def elbow_table(curves: list[ElbowCurve]) -> Table:
    """Per algorithm: the Kneedle k, whether it is pronounced, the spread over restarts, the time."""
    rows = []
    for c in curves:
        m = c.to_metrics()
        spread = f"{100 * m['max_relative_spread']:.2f} % (k = {m['k_max_relative_spread']})"
        rows.append(
            [
                NAMES.get(c.algorithm, c.algorithm),
                c.elbow.k if c.elbow.k is not None else "-",
                "yes" if c.elbow.pronounced else "no",
                m["elbow_slope_ratio"] if m["elbow_slope_ratio"] is not None else "inf",
                spread if m["restarts"] > 1 else "-",  # one fit per k: no spread to show
                float(c.best[-1]),
                m["seconds"],
            ]
        )
    columns = ["algorithm", "Kneedle k", "pronounced", "slope ratio", "max spread", "inertia at k max", "seconds"]
    return Table("Elbow estimates", columns, rows, caption="Kneedle on the curve normalised to the unit square.")


def elbow_summary(curves: list[ElbowCurve], published: str | None = None) -> str:
    """A sentence per algorithm, how the two compare, and the series' published elbows when they apply."""
    parts = [f"{NAMES.get(c.algorithm, c.algorithm)}: {c.elbow.describe()}" for c in curves]
    if len(curves) == 2:
        a, b = curves
        common, ia, ib = np.intersect1d(a.ks, b.ks, return_indices=True)  # the curves may use different k grids
        if len(common) and np.all(b.best[ib] > 0):
            ratio = a.best[ia] / b.best[ib]
            parts.append(
                f"inertia {a.algorithm}/{b.algorithm} at the {len(common)} common k: median {np.median(ratio):.4f}, "
                f"max {ratio.max():.4f} (below 1: {a.algorithm} fits better)"
            )
    return "; ".join(parts) + "." + (f" The series: {published}." if published else "")
