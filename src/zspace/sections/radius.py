"""Radius: how many latent points lie at each distance R = ||z|| from the origin (SPEC section 4.1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.radius import RadiusStats, chi_mode, histogram, radii, radius_stats
from zspace.config import Len, Ordered, Range
from zspace.errors import ConfigError
from zspace.figures.radius import radius_histogram
from zspace.sections.base import Context, FigureItem, Section, Table, published_where_comparable

TITLE = "Radius of the latent points"
# The series' CelebA numbers (z_dim 256): AE peak 16.5 - 16.75, tiny-KL VAE ~16 (one run 17.37 mean).
PUBLISHED = {"peak": "16.5 - 16.75 (AE); ~16 (VAE)", "12-24": "almost all", "14-19": "> 50 %"}


Shell = Annotated[tuple[Annotated[float, Range(0, 1e6)], Annotated[float, Range(0, 1e6)]], Ordered(strict=False)]


@dataclass
class Config:
    # radius interval of the main histogram (the series: 0.5 over 0 <= R < 35)
    width: Annotated[float, Range(1e-9, 1e6)] = 0.5
    # interval of a second, fine histogram (the series: 0.05); None = none
    fine_width: Annotated[float | None, Range(1e-9, 1e6)] = 0.05
    # upper end of the histograms; raised, with a note, when points lie beyond it
    r_max: Annotated[float, Range(1e-9, 1e6)] = 35.0
    # shells [a, b] (0 <= a <= b) whose share is reported
    shells: Annotated[tuple[Shell, ...], Len(0, 64)] = ((12.0, 24.0), (14.0, 19.0))
    # z_dim the shells are meant for; scaled by sqrt(z_dim / shells_dim) otherwise; 0 = never
    shells_dim: Annotated[int, Range(0, 65536)] = 256
    use_mu: bool = True  # also the radius from mu when the latents have it (VAE), as a second curve
    chunk: Annotated[int, Range(1, 2**24)] = 16_384  # rows per block when computing norms


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    lat = ctx.latents
    z_dim = int(lat.z.shape[1])
    notes: list[str] = []
    shells = _shells(cfg, z_dim, notes)
    kw = {"z_dim": z_dim, "width": cfg.width, "r_max": cfg.r_max, "shells": shells}
    R = radii(lat.z, chunk=cfg.chunk)
    st = radius_stats(R, **kw)
    mu_st, R_mu = None, None
    if cfg.use_mu and lat.mu is not None:
        R_mu = radii(lat.mu, chunk=cfg.chunk)
        mu_st = radius_stats(R_mu, **kw)
    if st.hist.adapted or (mu_st is not None and mu_st.hist.adapted):
        top = max(st.hist.r_max, mu_st.hist.r_max if mu_st else 0.0)
        notes.append(
            f"points lie beyond r_max = {cfg.r_max:g} (largest radius {max(st.max, _max(mu_st)):.4g}); "
            f"the histograms reach to {top:g}"
        )
    section = Section(key="radius", title=TITLE, notes=notes)
    section.figures.append(_main_figure(st, mu_st, cfg))
    if cfg.fine_width is not None:
        section.figures.append(_fine_figure(R, R_mu, st, cfg))
    section.metrics = {**st.to_metrics(), "mu": mu_st.to_metrics() if mu_st else None}
    section.tables = [_table(st, mu_st, ctx)]
    section.summary = _summary(st, mu_st)
    return section


MAX_BINS = 10_000_000  # histogram bins per width (80 MB of counts)


def validate(cfg: Config) -> None:
    if cfg.width <= 0 or (cfg.fine_width is not None and cfg.fine_width <= 0) or cfg.r_max <= 0:
        raise ConfigError(
            f"radius: width, fine_width and r_max must be > 0, got {cfg.width}, {cfg.fine_width}, {cfg.r_max}"
        )
    for key, width in (("width", cfg.width), ("fine_width", cfg.fine_width)):
        if width is not None and cfg.r_max / width > MAX_BINS:
            raise ConfigError(
                f"radius.{key} = {width} makes {cfg.r_max / width:.3g} bins over r_max {cfg.r_max}; "
                f"the limit is {MAX_BINS:,} bins"
            )
    if any(len(s) != 2 for s in cfg.shells):
        raise ConfigError(f"radius: shells must be pairs (a, b), got {cfg.shells}")
    if cfg.chunk < 1 or cfg.shells_dim < 0 or any(a > b for a, b in cfg.shells):
        raise ConfigError("radius: chunk must be >= 1, shells_dim >= 0 and every shell (a, b) must have a <= b")


def _shells(cfg: Config, z_dim: int, notes: list[str]) -> list[tuple[float, float]]:
    """The configured shells, scaled by the Gaussian-annulus ratio sqrt(z_dim / shells_dim) when dims differ."""
    if not cfg.shells or cfg.shells_dim in (0, z_dim):
        return [(float(a), float(b)) for a, b in cfg.shells]
    f = math.sqrt(z_dim / cfg.shells_dim)
    shells = [(round(a * f, 3), round(b * f, 3)) for a, b in cfg.shells]
    notes.append(
        f"the shells {list(cfg.shells)} are meant for z_dim {cfg.shells_dim}; for z_dim {z_dim} they are "
        f"scaled by sqrt({z_dim}/{cfg.shells_dim}) = {f:.3f} to {shells}"
    )
    return shells


def _max(st: RadiusStats | None) -> float:
    return st.max if st is not None else 0.0


def _main_figure(st: RadiusStats, mu_st: RadiusStats | None, cfg: Config) -> FigureItem:
    hi = min(st.hist.r_max, max(st.max, _max(mu_st), chi_mode(st.z_dim) + 4.0) * 1.05)
    fig = radius_histogram(
        st.hist,
        z_dim=st.z_dim,
        shell50=st.shell50,
        mu_hist=mu_st.hist if mu_st else None,
        xlim=(0.0, hi),
        title=f"{st.n:,} points, z_dim {st.z_dim}",
    )
    caption = (
        f"Number of points per radius interval of width {cfg.width:g} (R = ||z||_2, 0 <= R < {st.hist.r_max:g})"
        f"{', with the radius of mu as a second curve' if mu_st else ''}. Dashed: the count expected for as "
        f"many points of N(0, I_{st.z_dim}) (chi distribution, {st.z_dim} degrees of freedom, peak at "
        f"sqrt(d-1) = {chi_mode(st.z_dim):.2f}). Red line: the peak (centre of the fullest interval, "
        f"R = {st.peak:.3g}); shaded: the narrowest shell holding 50 % of the points."
    )
    return FigureItem("radius", fig, caption)


def _fine_figure(R: np.ndarray, R_mu: np.ndarray | None, st: RadiusStats, cfg: Config) -> FigureItem:
    hist = histogram(R, width=cfg.fine_width, r_max=cfg.r_max)
    mu_hist = histogram(R_mu, width=cfg.fine_width, r_max=cfg.r_max) if R_mu is not None else None
    lo, hi = np.quantile(R, [0.001, 0.999])
    pad = max(5 * cfg.fine_width, 0.05 * (hi - lo))
    fig = radius_histogram(
        hist,
        z_dim=st.z_dim,
        shell50=st.shell50,
        mu_hist=mu_hist,
        xlim=(max(0.0, lo - pad), hi + pad),
        title=f"fine intervals of {cfg.fine_width:g}",
    )
    caption = (
        f"The same with intervals of width {cfg.fine_width:g}, shown over the 0.1 - 99.9 % range of the radii; "
        f"the fullest fine interval is at R = {hist.peak:.4g}."
    )
    return FigureItem("radius-fine", fig, caption)


def _table(st: RadiusStats, mu_st: RadiusStats | None, ctx: Context) -> Table:
    def row(name: str, f, published: str = "") -> list:
        return [name, f(st), f(mu_st) if mu_st else "-", published]

    rows = [
        row("peak (centre of the fullest interval)", lambda s: round(s.peak, 4), PUBLISHED["peak"]),
        row("mean", lambda s: round(s.mean, 4)),
        row("standard deviation", lambda s: round(s.std, 4)),
        row("min / max", lambda s: f"{s.min:.4g} / {s.max:.4g}"),
        row("narrowest 50 % shell", lambda s: f"[{s.shell50[0]:.4g}, {s.shell50[1]:.4g}]"),
        row("narrowest 95 % shell", lambda s: f"[{s.shell95[0]:.4g}, {s.shell95[1]:.4g}]"),
    ]
    for i, (a, b, _) in enumerate(st.shells):
        published = PUBLISHED.get(f"{a:g}-{b:g}", "")
        rows.append(row(f"share in [{a:g}, {b:g}]", lambda s, i=i: f"{100 * s.shells[i][2]:.2f} %", published))
    caption = (
        "Published: the series' CelebA latents (z_dim 256), comparable only for a 256-dimensional space; "
        f"a standard normal of this dimension would peak at {chi_mode(st.z_dim):.3f}."
    )
    table = Table("Radius statistics", ["quantity", "z", "mu", "published (CelebA, z_dim 256)"], rows, caption)
    return published_where_comparable(table, st.z_dim, ctx)


def _summary(st: RadiusStats, mu_st: RadiusStats | None) -> str:
    text = (
        f"The radius R = ||z|| of the {st.n:,} points peaks at R = {st.peak:.3g} (mean {st.mean:.4g}, standard "
        f"deviation {st.std:.3g}); half of the points lie in the shell [{st.shell50[0]:.4g}, {st.shell50[1]:.4g}]"
        f" and 95 % in [{st.shell95[0]:.4g}, {st.shell95[1]:.4g}]. A standard normal in {st.z_dim} dimensions "
        f"would peak at sqrt({st.z_dim}-1) = {chi_mode(st.z_dim):.3g} with a standard deviation of about 0.71."
    )
    if mu_st is not None:
        text += f" The radius of mu has mean {mu_st.mean:.6g} against {st.mean:.6g} for z."
    return text
