"""PCA: explained variance, and the points on PCA planes and on planes of two original axes (SPEC 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.axes import axis_stats
from zspace.analyses.pca import Variance, axis_plane, fit_pca, pca_planes, valid_planes
from zspace.config import Distinct, Len, Range
from zspace.errors import ConfigError
from zspace.figures.pca import explained_variance, plane_scatter
from zspace.sections.base import Context, FigureItem, Section, celeba_comparable

TITLE = "PCA and projections onto planes"
SALT = 5  # the PCA subset's random stream (Context.rng salt)


PC = Annotated[int, Range(1, 65536)]  # a principal component, 1-based
Axis = Annotated[int, Range(0, 65535)]  # an original axis, 0-based
PCPlane = Annotated[tuple[PC, PC], Len(2, 2), Distinct()]  # two different components
AxisPlane = Annotated[tuple[Axis, Axis], Len(2, 2), Distinct()]


@dataclass
class Config:
    # the PCA is fitted on at most this many random points, then applied to all in blocks
    fit_max: Annotated[int, Range(1, 2**31 - 1)] = 200_000
    # PCA planes, 1-based like the post's PC1-PC2
    planes: Annotated[tuple[PCPlane, ...], Len(0, 64)] = ((1, 2), (1, 18), (8, 35))
    # half-widths of the windows around the centre; 0 = full extent
    zooms: Annotated[tuple[Annotated[float, Range(0, 1e6)], ...], Len(1, 16)] = (0.0, 4.0, 1.0, 0.25)
    # original axes, 0-based (post: 52-221); () = the 2 top-ranked
    axis_planes: Annotated[tuple[AxisPlane, ...], Len(0, 64)] = ()
    # "label", an attribute name, or None = the first available (none: one colour)
    color_by: Annotated[str | None, Len(1, 200)] = None
    # plot at most this many random points per plane (all 170,000 CelebA points fit)
    max_points: Annotated[int, Range(1, 2**31 - 1)] = 1_000_000
    n_ratios: Annotated[int, Range(0, 65536)] = 20  # leading explained-variance ratios in the metrics
    chunk: Annotated[int, Range(1, 2**24)] = 16_384  # rows per block when projecting


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    Z = ctx.latents.z
    n, z_dim = (int(s) for s in Z.shape)
    notes: list[str] = []
    try:
        pca, n_fit = fit_pca(Z, fit_max=cfg.fit_max, random_state=ctx.rng(SALT))
    except ValueError as e:  # fewer than 2 points, or all points equal: nothing to decompose
        return Section(key="pca", title=TITLE, skipped=True, notes=[f"PCA skipped: {e}"])
    var = Variance(pca.explained_variance_ratio_, n_fit)
    fit_text = f"{n_fit:,} random points of {n:,}" if n_fit < n else f"all {n:,} points"
    caption = f"Explained-variance ratio per principal component (log scale) and cumulative; PCA fitted on {fit_text}."
    figures = [FigureItem("variance", explained_variance(var.ratio, n_fit=n_fit), caption)]
    plot = _Plot(cfg, *_colors(ctx, cfg, notes), _plot_rows(n, cfg.max_points, ctx, notes))
    planes, skipped = valid_planes(cfg.planes, pca.n_components_)
    if skipped:
        notes.append(
            f"PCA planes {skipped} are skipped: there are only {pca.n_components_} components "
            f"(z_dim {z_dim}, {n_fit:,} points fitted)"
        )
    for (i, j), P in pca_planes(pca, Z, planes, chunk=cfg.chunk).items():
        figures.append(plot(P, f"pc{i}-pc{j}", (f"PC{i}", f"PC{j}"), "the origin (the data mean)"))
    auto = "" if cfg.axis_planes else " (the two highest-ranked off-centre / broad axes of the per-axis densities)"
    for a, b in _axis_planes(cfg, Z, notes):
        P = axis_plane(Z, a, b, chunk=cfg.chunk)
        centre = tuple(float(v) for v in np.median(P, axis=0))
        where = f"the points' median ({centre[0]:.3g}, {centre[1]:.3g}){auto}"
        figures.append(plot(P, f"axes-{a}-{b}", (f"axis {a}", f"axis {b}"), where, centre))
    metrics = {**var.to_metrics(cfg.n_ratios), "planes": [list(p) for p in planes]}
    summary = _summary(var, celeba_comparable(ctx, int(ctx.latents.z.shape[1])))
    return Section(key="pca", title=TITLE, summary=summary, metrics=metrics, figures=figures, notes=notes)


@dataclass
class _Plot:
    """Draws one plane's zoom panels with the section's colours and plotted rows."""

    cfg: Config
    colors: np.ndarray | None
    class_names: list[str] | None
    rows: np.ndarray

    def __call__(self, P: np.ndarray, name: str, names: tuple[str, str], where: str, centre=(0.0, 0.0)) -> FigureItem:
        colors = None if self.colors is None else np.asarray(self.colors)[self.rows]
        title = f"{names[0]} - {names[1]}"
        fig = plane_scatter(
            P[self.rows],
            self.cfg.zooms,
            names=names,
            centre=centre,
            colors=colors,
            class_names=self.class_names,
            title=title,
        )
        zooms = ", ".join("full extent" if z <= 0 else f"+-{z:g}" for z in self.cfg.zooms)
        caption = (
            f"The {len(self.rows):,} points projected onto the plane {title}, in square windows around {where}: "
            f"{zooms}. Marker size and opacity shrink with the number of points in a window so that thin filaments "
            "stay visible."
        )
        return FigureItem(name, fig, caption)


def validate(cfg: Config) -> None:
    if cfg.fit_max < 1 or cfg.max_points < 1 or cfg.n_ratios < 0 or cfg.chunk < 1:
        raise ConfigError("pca: fit_max, max_points and chunk must be >= 1, n_ratios >= 0")
    if any(len(p) != 2 for p in (*cfg.planes, *cfg.axis_planes)):
        raise ConfigError(f"pca: planes and axis_planes must be pairs, got {cfg.planes} and {cfg.axis_planes}")
    if any(z < 0 for z in cfg.zooms) or not cfg.zooms:
        raise ConfigError(f"pca: zooms must be half-widths >= 0 (0 = full extent), got {cfg.zooms}")


def _colors(ctx: Context, cfg: Config, notes: list[str]) -> tuple[np.ndarray | None, list[str] | None]:
    got = ctx.colors(cfg.color_by)
    if got is None:
        if cfg.color_by is not None:
            notes.append(f"no labels or attribute {cfg.color_by!r} to colour by; one colour is used")
        return None, None
    return got


def _plot_rows(n: int, max_points: int, ctx: Context, notes: list[str]) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    notes.append(f"the scatter plots show {max_points:,} random points of {n:,}")
    return np.sort(ctx.rng(SALT + 1).choice(n, max_points, replace=False))


def _axis_planes(cfg: Config, Z: np.ndarray, notes: list[str]) -> list[tuple[int, int]]:
    z_dim = Z.shape[1]
    if cfg.axis_planes:
        planes, skipped = valid_planes(cfg.axis_planes, z_dim, first=0)
        if skipped:
            notes.append(f"planes of original axes {skipped} are skipped: the axes are 0..{z_dim - 1}")
        return planes
    if z_dim < 2:
        notes.append("no plane of two original axes: the latent space has one dimension")
        return []
    top = [int(a) for a in axis_stats(Z, chunk=cfg.chunk).ranking[:2]]
    return [(top[0], top[1])]


def _summary(var: Variance, series: bool) -> str:
    m = var.to_metrics(3)
    first = ", ".join(f"{100 * r:.3g} %" for r in m["ratios"])
    return (
        f"The leading principal components explain {first} of the variance; {m['n_for_50']}, {m['n_for_90']} and "
        f"{m['n_for_99']} components reach 50, 90 and 99 %"
        + (" (the series' CelebA AE: one dominant component, flat after about ten)" if series else "")
        + ". The projections show whether the points fill the planes evenly or lie on thin lines "
        "around voids, at every zoom level."
    )
