"""Filaments and voids in numbers: intrinsic dimension, nearest-neighbour distances, void share, decoded paths.

The series concluded from projections that the latent points of an AE lie on thin, curved, basically
one-dimensional filaments around voids. This section measures it: the intrinsic dimension (TwoNN, and local MLE
estimates with their spread), how much closer neighbours are than in a Gaussian cloud of the same spread, how many
random probes land in voids, and how far images decoded along straight lines between data points are from any
training image.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from zspace.analyses.manifold_id import LocalDimension, TwoNN, local_dimension, twonn
from zspace.analyses.manifold_nn import (
    NNComparison,
    PathProfile,
    VoidShare,
    interpolate_linear,
    nearest_distances,
    neighbour_distances,
    nn_comparison,
    path_distances,
    path_profile,
    void_share,
)
from zspace.config import OneOf, Range
from zspace.errors import ConfigError
from zspace.figures import manifold as plots
from zspace.io import limits
from zspace.sections.base import Context, FigureItem, Section, Table

log = logging.getLogger(__name__)

TITLE = "Filaments and voids in numbers"


@dataclass
class Config:
    # encoder output analysed: "z" or "mu" (an AE has only z; falls back with a note)
    points: Annotated[str, OneOf("z", "mu")] = "z"
    # random subset the neighbour searches run on (exact search is O(n^2))
    max_points: Annotated[int, Range(1, 2**31 - 1)] = 20000
    k: Annotated[int, Range(2, 10000)] = 20  # neighbours of the local (Levina-Bickel) dimension estimate
    # share of the largest TwoNN ratios left out of the line fit (Facco et al.)
    discard_fraction: Annotated[float, Range(0, 0.9)] = 0.1
    # random probes per source (N(0, I) and the data's Gaussian fit) for the void share
    n_probes: Annotated[int, Range(0, 10**7)] = 5000
    # a probe is in a void beyond this quantile of data NN distances (baseline 5 %)
    void_quantile: Annotated[float, Range(0, 1)] = 0.95
    # decoded straight-line paths between random pairs of data points (mu, else z)
    n_pairs: Annotated[int, Range(0, 100000)] = 32
    steps: Annotated[int, Range(2, 1000)] = 11  # points per path, both ends included
    # training images the decoded images are compared with (random subset)
    max_reference: Annotated[int, Range(1, 2**31 - 1)] = 20000
    # training images whose nearest other training image sets the distance scale
    n_baseline: Annotated[int, Range(0, 10**6)] = 256
    batch_size: Annotated[int, Range(1, 2**20)] = 256  # latent points decoded at a time


def validate(cfg: Config) -> None:
    if cfg.points not in ("z", "mu"):
        raise ConfigError(f"manifold.points must be 'z' or 'mu', got {cfg.points!r}")
    for name in ("max_points", "n_probes", "n_pairs", "max_reference", "n_baseline", "batch_size"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"manifold.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.k < 2 or cfg.steps < 2:
        raise ConfigError(f"manifold.k and manifold.steps must be >= 2, got {cfg.k} and {cfg.steps}")
    if not 0 <= cfg.discard_fraction < 1 or not 0 < cfg.void_quantile < 1:
        raise ConfigError("manifold.discard_fraction must be in [0, 1) and manifold.void_quantile in (0, 1)")


def _points(ctx: Context, cfg: Config, sec: Section) -> tuple[np.ndarray, str]:
    """The analysed points: a random subset (sorted rows, float32 copy) of z or mu."""
    lat = ctx.latents
    name = cfg.points
    if name == "mu" and lat.mu is None:
        sec.notes.append("points = 'mu' asked for, but these latents have no mu (an AE): z is analysed instead.")
        name = "z"
    arr = lat.mu if name == "mu" else lat.z
    rows = np.arange(len(arr))
    if len(arr) > cfg.max_points:
        rows = np.sort(ctx.rng(1).choice(len(arr), size=cfg.max_points, replace=False))
    return np.asarray(arr[rows], dtype=np.float32), name


def run(ctx: Context, cfg: Config) -> Section:
    """Intrinsic dimension, NN distances against a matched Gaussian, void share and decoded-path distances."""
    validate(cfg)
    sec = Section(key="manifold", title=TITLE)
    cfg = _within_budget(ctx, cfg, sec)
    X, name = _points(ctx, cfg, sec)
    n, n_total, z_dim = len(X), len(ctx.latents), int(X.shape[1])
    if n < 3:
        return _skip(sec, f"only {n} latent points; the neighbour statistics need at least 3.")
    k = min(cfg.k, n - 1)
    if k < cfg.k:
        sec.notes.append(f"k = {cfg.k} neighbours asked for, but only {n} points: k = {k} is used.")
    dist = neighbour_distances(X, k)
    if np.count_nonzero(dist[:, 0] > 0) < 2:
        return _skip(sec, "(almost) all latent points coincide: there is no geometry to measure.")
    two = twonn(dist, discard_fraction=cfg.discard_fraction)
    local = _local(dist, sec)
    nn = nn_comparison(X, data_nn=dist[:, 0], random_state=ctx.rng(2))
    void = void_share(X, n_probes=cfg.n_probes, quantile=cfg.void_quantile, data_nn=dist[:, 0], random_state=ctx.rng(3))
    where = f"{name} of {n:,} points" + (f" (a random subset of {n_total:,})" if n < n_total else "")
    sec.metrics = {"points": name, "n_points": n, "n_total": n_total, "z_dim": z_dim, "twonn": two.to_metrics()}
    if local is not None:
        sec.metrics["local"] = local.to_metrics()
        sec.figures.append(_id_figure(two, local, z_dim, where))
    sec.metrics |= {"nn": nn.to_metrics(), "void": void.to_metrics()}
    sec.figures += [_nn_figure(nn, where), _void_figure(void, dist[:, 0], where)]
    if two.n_duplicates:
        sec.notes.append(f"{two.n_duplicates} points have an exact duplicate (r1 = 0) and are left out of TwoNN.")
    profile = _paths(ctx, cfg, sec)
    if profile is not None:
        sec.metrics["paths"] = profile.to_metrics()
    sec.tables.append(_table(two, local, nn, void, profile))
    sec.summary = _summary(two, local, nn, void, profile, z_dim)
    return sec


def _within_budget(ctx: Context, cfg: Config, sec: Section) -> Config:
    """``cfg`` with ``max_points`` capped (and a note) where the exact neighbour searches, O(n^2), would take longer
    than zspace.io.limits.TIME_BUDGET_S; too many probes, or too much memory, is a one-line ConfigError."""
    n_all, z_dim = ctx.latents.z.shape
    n = min(cfg.max_points, n_all)
    # the data's own neighbours and a matched Gaussian's (2 n queries against n rows), then 2 sources of probes
    searches = lambda m: limits.estimate_knn_seconds(2 * m + 2 * cfg.n_probes, m, z_dim)  # noqa: E731
    if searches(n) > limits.TIME_BUDGET_S / 2:
        cap = max(3, int(np.sqrt(limits.TIME_BUDGET_S / 2 * limits.KNN_RATE / (2 * z_dim))))
        if cap < n:
            sec.notes.append(
                f"max_points = {cfg.max_points:,} would make exact neighbour searches of about "
                f"{searches(n):.3g} s; a random subset of {cap:,} points is analysed instead."
            )
            cfg, n = dataclasses.replace(cfg, max_points=cap), cap
    nbytes = n * z_dim * (4 + 8 + 8) + 2 * n * cfg.k * 8 + 2 * cfg.n_probes * z_dim * 8  # points, Gaussian, distances
    what = f"exact neighbour searches of {n:,} points and 2 x {cfg.n_probes:,} probes in {z_dim}-D"
    limits.check_work(searches(n), nbytes, "manifold.n_probes", what)
    return cfg


def _paths_within_budget(cfg: Config, n_reference: int, image_values: int) -> None:
    """Refuse decoded paths whose decoding and nearest-image searches would not fit the machine (one line)."""
    images = cfg.n_pairs * cfg.steps
    seconds = limits.estimate_decode_seconds(images, image_values) + limits.estimate_knn_seconds(
        images + cfg.n_baseline, n_reference, image_values
    )
    what = f"{cfg.n_pairs:,} decoded paths of {cfg.steps} images, each compared with {n_reference:,} images"
    limits.check_work(seconds, images * image_values * 4.0 * 2, "manifold.n_pairs", what)


def _skip(sec: Section, note: str) -> Section:
    sec.notes.append(note)
    sec.skipped = True
    return sec


def _local(dist: np.ndarray, sec: Section) -> LocalDimension | None:
    try:
        return local_dimension(dist)
    except ValueError as e:
        sec.notes.append(f"local dimension skipped: {e}")
        return None


def _id_figure(two: TwoNN, local: LocalDimension, z_dim: int, where: str) -> FigureItem:
    caption = (
        f"Intrinsic dimension of the {where} in a {z_dim}-D space: is the data on near-one-dimensional filaments, "
        f"as the series concluded? A value near 1 means curves, near z_dim = {z_dim} a filled volume. Left: TwoNN "
        f"(Facco et al. 2017): the ratio of each point's second to first neighbour distance; the slope is the "
        f"dimension (MLE {two.dimension:.2f}, line fit without the top {two.discard_fraction:.0%} of ratios "
        f"{two.dimension_fit:.2f}). Right: local estimates (Levina-Bickel MLE on k = {local.k} neighbours), "
        f"median {local.median:.2f}; a wide spread means the dimension differs across the cloud."
    )
    return FigureItem("intrinsic-dimension", plots.intrinsic_dimension(two, local, z_dim=z_dim), caption)


def _nn_figure(nn: NNComparison, where: str) -> FigureItem:
    caption = (
        f"Distance of each point to its nearest neighbour, for the {where} and for a Gaussian sample with the same "
        f"mean, covariance and number of points. Data on thin structures have much shorter nearest-neighbour "
        f"distances than a Gaussian cloud of the same spread: the ratio of medians is {nn.ratio:.3g} (1 = no "
        f"difference); the KS statistic {nn.ks_statistic:.2f} is the largest gap between the two distributions "
        f"(0 = same, 1 = no overlap). Log scale."
    )
    return FigureItem("nn-distances", plots.nn_distances(nn), caption)


def _void_figure(void: VoidShare, data_nn: np.ndarray, where: str) -> FigureItem:
    shares = ", ".join(f"{plots.SOURCE_LABELS[k]}: {v:.1%}" for k, v in void.shares.items())
    n_probes = len(next(iter(void.probe_nn.values())))
    caption = (
        f"Void share of the {where}: {n_probes:,} random probes per source, each measured to its nearest data "
        f"point. A probe is in a void when that distance exceeds the {void.quantile:g} quantile of the data's own "
        f"nearest-neighbour distances ({void.threshold:.3g}, dashed). Probes from the data's own distribution land "
        f"in voids {1 - void.quantile:.0%} of the time; a share near 100 % means the data leave most of the space "
        f"they span empty. {shares}."
    )
    return FigureItem("voids", plots.void_share(void, data_nn), caption)


class _ImageRows:
    """Rows ``x[rows]`` of uint8 images (N, H, W, C) as flattened float32 in [0, 1], read slice by slice."""

    def __init__(self, x: np.ndarray, rows: np.ndarray):
        self.x, self.rows = x, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, s: Any) -> np.ndarray:
        images = np.asarray(self.x[self.rows[s]])
        return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _decode(model: Any, z: np.ndarray, batch_size: int) -> np.ndarray:
    """Decode z (n, z_dim) to images (n, H, W, C) float32 in [0, 1]."""
    return model.decode_images(z, batch_size=batch_size)


def _path_inputs(ctx: Context, sec: Section) -> tuple[Any, Any] | None:
    """The model and the image dataset, or None with a note saying why the paths are skipped."""
    model, lat = ctx.model, ctx.latents
    if model is None:
        sec.notes.append("decoded interpolation paths skipped: no model (a bare latents folder).")
        return None
    if len(lat) < 2 or getattr(model.cfg, "z_dim", lat.z.shape[1]) != lat.z.shape[1]:
        sec.notes.append("decoded interpolation paths skipped: fewer than 2 points or the model's z_dim differs.")
        return None
    data = ctx.dataset()
    if data is None or not data.is_image or len(data) < 2:
        why = "the run's image data could not be loaded" if ctx.run is not None else "no image data with these latents"
        sec.notes.append(f"decoded interpolation paths skipped: {why}.")
        return None
    return model, data


def _paths(ctx: Context, cfg: Config, sec: Section) -> PathProfile | None:
    inputs = _path_inputs(ctx, sec)
    if inputs is None:
        return None
    model, data = inputs
    n_reference = min(cfg.max_reference, max(len(data.indices("train")), len(data.indices("all"))))
    _paths_within_budget(cfg, n_reference, int(np.prod(data.image_shape)))
    lat, rng = ctx.latents, ctx.rng(4)
    Z = lat.mu if lat.mu is not None else lat.z
    a = rng.integers(len(Z), size=cfg.n_pairs)
    b = (a + rng.integers(1, len(Z), size=cfg.n_pairs)) % len(Z)  # a different point
    z = interpolate_linear(Z[a], Z[b], cfg.steps).reshape(-1, Z.shape[1])
    decoded = _decode(model, z.astype(np.float32), cfg.batch_size)  # (P * S, H, W, C)
    if decoded.shape[1:] != data.image_shape:
        sec.notes.append(
            f"decoded paths skipped: the model makes {decoded.shape[1:]} images, the data has {data.image_shape}."
        )
        return None
    rows = data.indices("train")
    if len(rows) < 2:
        rows = data.indices("all")
    if len(rows) > cfg.max_reference:
        rows = np.sort(rng.choice(rows, size=cfg.max_reference, replace=False))
    reference = _ImageRows(data.x, rows)
    dist = path_distances(decoded.reshape(cfg.n_pairs, cfg.steps, -1), reference)
    q = np.sort(rng.choice(len(rows), size=min(cfg.n_baseline, len(rows)), replace=False))
    baseline = float(np.median(nearest_distances(reference[q], reference, exclude=q)))
    if not baseline > 0:
        sec.notes.append("decoded paths skipped: most training images have an exact duplicate (baseline 0).")
        return None
    profile = path_profile(dist, baseline)
    sec.figures.append(_path_figure(profile, len(rows), len(q), "mu" if lat.mu is not None else "z"))
    return profile


def _path_figure(profile: PathProfile, n_ref: int, n_base: int, name: str) -> FigureItem:
    m = profile.to_metrics()
    caption = (
        f"Straight lines in latent space between {m['n_paths']} random pairs of data points ({name}), "
        f"{m['steps']} decoded images each. Each decoded image is measured (pixel L2) to its nearest of {n_ref:,} "
        f"training images and divided by the median distance of a training image to its nearest other "
        f"({profile.baseline:.3g}, from {n_base} images). 1 = as close to the data as the data are to each other; "
        f"a hump in the middle means the path leaves the data between its ends, as off-filament points would "
        f"(median {m['median_at_ends']:.2f} at the ends, {m['median_at_middle']:.2f} in the middle)."
    )
    return FigureItem("paths", plots.path_profile(profile), caption)


def _r(x: float | None, digits: int = 3) -> float | str:
    return round(float(x), digits) if x is not None and np.isfinite(x) else "n/a"


def _describe_dimension(d: float, z_dim: int) -> str:
    if not np.isfinite(d):
        return "undefined (all neighbours equidistant)"
    if d < 1.5:
        return "near 1: the points lie on curves (filaments)"
    if d < 3.5:
        return "low: the points lie on thin sheets of a few dimensions"
    if d < 0.5 * z_dim:
        return f"well below z_dim = {z_dim}: a thin manifold, not a filled volume"
    return f"comparable to z_dim = {z_dim}: the points fill the space"


def _table(
    two: TwoNN, local: LocalDimension | None, nn: NNComparison, void: VoidShare, profile: PathProfile | None
) -> Table:
    rows: list[list[Any]] = [
        ["TwoNN dimension (MLE)", _r(two.dimension, 3), "~1: curves; ~z_dim: a filled volume"],
        ["TwoNN dimension (line fit)", _r(two.dimension_fit, 3), "the same, Facco et al.'s fit"],
    ]
    if local is not None:
        rows += [
            [f"local dimension, median (k = {local.k})", _r(local.median, 3), "typical dimension around a point"],
            ["local dimension, global (MacKay-Ghahramani)", _r(local.dimension, 3), "inverse of mean inverse"],
        ]
    rows += [
        ["NN distance ratio data / Gaussian", _r(nn.ratio, 4), "<< 1: points on thin structures"],
        ["KS statistic data vs Gaussian", _r(nn.ks_statistic, 3), "0: same distribution; 1: no overlap"],
    ]
    for source, share in void.shares.items():
        base = f"~{100 * (1 - void.quantile):.0f} %: no voids; ~100 %: mostly void"
        rows.append([f"void share, {plots.SOURCE_LABELS[source]}", f"{100 * share:.1f} %", base])
    if profile is not None:
        m = profile.to_metrics()
        rows.append(
            ["path distance, middle / ends", _r(m["middle_over_ends"]), "> 1: paths leave the data between ends"]
        )
    return Table("Filament and void numbers", ["quantity", "value", "what it means"], rows)


def _summary(
    two: TwoNN, local: LocalDimension | None, nn: NNComparison, void: VoidShare, profile: PathProfile | None, z_dim: int
) -> str:
    parts = [f"The TwoNN intrinsic dimension is {two.dimension:.2f}, {_describe_dimension(two.dimension, z_dim)}."]
    if local is not None:
        parts.append(
            f"Local estimates on {local.k} neighbours have median {local.median:.2f} "
            f"(5-95 %: {local.quantiles.get(0.05, np.nan):.2f}-{local.quantiles.get(0.95, np.nan):.2f})."
        )
    parts.append(f"Nearest neighbours are {nn.ratio:.3g} times as far apart as in a Gaussian cloud of the same spread.")
    fit_share = void.shares.get("gaussian_fit")
    if fit_share is not None:
        parts.append(
            f"{fit_share:.0%} of probes drawn from the data's Gaussian fit land in voids "
            f"(a cloud filling its Gaussian would give {1 - void.quantile:.0%})."
        )
    if profile is not None:
        m = profile.to_metrics()
        parts.append(
            f"Images decoded along straight lines between data points are {m['median_at_middle']:.2f} times the "
            f"typical data spacing from the nearest training image midway, {m['median_at_ends']:.2f} at the ends."
        )
    return " ".join(parts)
