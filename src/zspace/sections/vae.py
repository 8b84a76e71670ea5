"""VAE diagnostics: logvar, z against mu, KL per dimension and active units (SPEC 4.6 and 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from zspace.analyses.vae import (
    LogvarDistribution,
    VAEDiagnostics,
    head_weight_norms,
    logvar_distribution,
    vae_diagnostics,
)
from zspace.config import Ordered, Range
from zspace.errors import ConfigError
from zspace.figures.vae import kl_and_activity, logvar_histogram
from zspace.sections.base import Context, FigureItem, Section, Table, celeba_comparable, published_where_comparable

TITLE = "VAE: logvar, z against mu, KL per dimension"
# The series' tiny-KL VAE (CelebA 96x96, z_dim 256, kl_weight 1e-5, 170,000 images), run 1.
PUBLISHED = {
    "logvar_min": "-24.66",
    "logvar_max": "-2.02",
    "logvar_mean": "-13.68",
    "max_abs": "0.26",
    "band": "5 of 43.5 M",
    "radius_z": "33.10274 / 6.4961233 / 16.283989",
    "radius_mu": "33.0972 / 6.494558 / 16.283972",
    "abs": "0.018045425 / 0.00094899256",
    "rel": "7.2147313e-04 / 6.1240215e-05",
}


@dataclass
class Config:
    # count components with band[0] < |z - mu| < band[1] (the series' band)
    band: Annotated[tuple[Annotated[float, Range(0, 1e6)], Annotated[float, Range(0, 1e6)]], Ordered()] = (0.05, 2.0)
    # a unit is active when Var_x(mu_u) exceeds this (Burda et al. 2016)
    active_threshold: Annotated[float, Range(0, 1e6)] = 0.01
    chunk: Annotated[int, Range(1, 2**24)] = 16_384  # rows per block; float64 accumulators
    logvar_width: Annotated[float, Range(1e-9, 1e6)] = 0.5  # interval of the logvar histogram
    # components counted inside (the series: 2 of 43.5 M in [-3, 5])
    logvar_band: Annotated[
        tuple[Annotated[float, Range(-1e6, 1e6)], Annotated[float, Range(-1e6, 1e6)]], Ordered(strict=False)
    ] = (-3.0, 5.0)


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    lat = ctx.latents
    if lat.mu is None or lat.logvar is None:
        return Section(
            key="vae",
            title=TITLE,
            skipped=True,
            notes=["the latents have no mu/logvar (an AE): the VAE diagnostics do not apply"],
        )
    diag = vae_diagnostics(
        lat.z, lat.mu, lat.logvar, band=cfg.band, active_threshold=cfg.active_threshold, chunk=cfg.chunk
    )
    fig = kl_and_activity(diag.kl_per_dim, diag.mu_variance, threshold=cfg.active_threshold)
    caption = (
        f"Left: KL(q(z|x) || N(0, 1)) per latent dimension, mean over the {diag.n:,} points of "
        f"0.5 * (mu^2 + exp(logvar) - 1 - logvar), sorted. Right: activity A_u = variance of mu_u over the "
        f"points (Burda et al. 2016), sorted, log scale; active (green) when A_u > {cfg.active_threshold:g}."
    )
    dist = logvar_distribution(lat.logvar, width=cfg.logvar_width, band=cfg.logvar_band, chunk=cfg.chunk)
    norms = _head_norms(ctx)
    metrics = {**diag.to_metrics(), "kl_weight": _kl_weight(ctx), "logvar": dist.to_metrics(), "heads": norms}
    hist = logvar_histogram(dist.edges, dist.counts, band=dist.band)
    series = celeba_comparable(ctx, diag.z_dim)
    metrics["series_celeba"] = series  # the series' CelebA at z_dim 256: its published figures apply (compare)
    hist_caption = (
        f"Every logvar component of the {diag.n:,} points, per interval of {cfg.logvar_width:g} (log scale); "
        f"{dist.band_count:,} of {dist.n_components:,} lie in [{dist.band[0]:g}, {dist.band[1]:g}]"
        + (" (the series' tiny-KL VAE: 2 of 43.5 M in [-3, 5])." if series else ".")
    )
    return Section(
        key="vae",
        title=TITLE,
        summary=_summary(diag, series) + _summary_logvar(dist, norms, series),
        metrics=metrics,
        figures=[FigureItem("kl-active", fig, caption), FigureItem("logvar-hist", hist, hist_caption)],
        tables=[_table(diag, ctx), _logvar_table(dist, norms, ctx)],
    )


def _head_norms(ctx: Context) -> dict[str, float] | None:
    """Norms of the run's mu- and logvar-head kernels; None for bare latents."""
    enc = getattr(ctx.model, "encoder", None)
    if enc is None or not hasattr(enc, "logvar"):
        return None
    return head_weight_norms(enc.mu.weight.detach().cpu().numpy(), enc.logvar.weight.detach().cpu().numpy())


def _logvar_table(dist: LogvarDistribution, norms: dict[str, float] | None, ctx: Context) -> Table:
    n = dist.n_components
    rows = [[f"logvar in [{dist.band[0]:g}, {dist.band[1]:g}]", f"{dist.band_count:,} of {n:,}", "2 of 43.5 M"]]
    rows += [[f"logvar > {t:g}", f"{c:,} ({100 * c / n:.3g} %)", "-"] for t, c in dist.above.items()]
    if norms is not None:
        rows += [
            ["norm of the mu-head kernel", f"{norms['mu_head_norm']:.4g}", "-"],
            ["norm of the logvar-head kernel", f"{norms['logvar_head_norm']:.4g}", "-"],
            ["logvar / mu kernel norm", f"{norms['logvar_over_mu']:.3g}", "-"],
        ]
    table = Table("logvar components and the two heads", ["quantity", "ours", "published"], rows)
    return published_where_comparable(table, dist.z_dim, ctx)


def _summary_logvar(dist: LogvarDistribution, norms: dict[str, float] | None, series: bool) -> str:
    text = (
        f" {dist.band_count:,} of {dist.n_components:,} logvar components lie in "
        f"[{dist.band[0]:g}, {dist.band[1]:g}]" + (" (the series: 2 of 43.5 M)." if series else ".")
    )
    if norms is not None:
        text += (
            f" The logvar head's kernel has norm {norms['logvar_head_norm']:.4g}, the mu head's "
            f"{norms['mu_head_norm']:.4g} (ratio {norms['logvar_over_mu']:.3g})."
        )
    return text


def validate(cfg: Config) -> None:
    if len(cfg.band) != 2:
        raise ConfigError(f"vae: band must be a pair (lo, hi), got {cfg.band}")
    lo, hi = cfg.band
    if not 0 <= lo < hi or cfg.active_threshold < 0 or cfg.chunk < 1:
        raise ConfigError(f"vae: band must be 0 <= lo < hi, active_threshold >= 0, chunk >= 1; got {cfg}")
    if cfg.logvar_width <= 0 or len(cfg.logvar_band) != 2 or cfg.logvar_band[0] > cfg.logvar_band[1]:
        raise ConfigError(f"vae: logvar_width must be > 0 and logvar_band (lo, hi) with lo <= hi; got {cfg}")


def _kl_weight(ctx: Context) -> float | None:
    try:
        return float(ctx.run.config.model.kl_weight)
    except AttributeError:
        return None


def _table(diag: VAEDiagnostics, ctx: Context) -> Table:
    r, p = diag.radius, PUBLISHED
    rows = [
        ["logvar min", f"{diag.logvar_min:.4g}", p["logvar_min"]],
        ["logvar max", f"{diag.logvar_max:.4g}", p["logvar_max"]],
        ["logvar mean", f"{diag.logvar_mean:.4g}", p["logvar_mean"]],
        ["max |z - mu| (component)", f"{diag.max_abs_diff:.4g}", p["max_abs"]],
        [
            f"components with {diag.band[0]:g} < |z - mu| < {diag.band[1]:g}",
            f"{diag.band_count:,} of {diag.n * diag.z_dim:,}",
            p["band"],
        ],
        ["radius from z: max / min / mean", f"{r.z_max:.8g} / {r.z_min:.8g} / {r.z_mean:.8g}", p["radius_z"]],
        ["radius from mu: max / min / mean", f"{r.mu_max:.8g} / {r.mu_min:.8g} / {r.mu_mean:.8g}", p["radius_mu"]],
        ["radius |z| - |mu|, absolute: max / mean", f"{r.abs_max:.5g} / {r.abs_mean:.5g}", p["abs"]],
        ["radius, relative to |mu|: max / mean", f"{r.rel_max:.5g} / {r.rel_mean:.5g}", p["rel"]],
        ["KL per point (sum over dimensions)", f"{diag.kl_per_dim.sum():.5g}", "-"],
        [f"active units (A_u > {diag.active_threshold:g})", f"{int(diag.active.sum())} of {diag.z_dim}", "-"],
    ]
    w = _kl_weight(ctx)
    caption = (
        "Published: the series' tiny-KL VAE on CelebA (z_dim 256, fact = kl_weight 1e-5, 170,000 images); "
        "comparable to ours for such a run only" + (f"; this run's kl_weight is {w:g}." if w is not None else ".")
    )
    table = Table("logvar and z against mu", ["quantity", "ours", "published (CelebA, fact 1e-5)"], rows, caption)
    return published_where_comparable(table, diag.z_dim, ctx)


def _summary(diag: VAEDiagnostics, series: bool) -> str:
    r = diag.radius
    like_ae = r.rel_mean < 1e-3
    verdict = (
        "the points are placed by mu alone"
        + (", as in the series' tiny-KL VAE (mean relative difference 6.1e-5)" if series else "")
        if like_ae
        else "the sampling noise moves the points noticeably: z is not just mu"
    )
    return (
        f"logvar lies between {diag.logvar_min:.4g} and {diag.logvar_max:.4g} (mean {diag.logvar_mean:.4g}); "
        f"the largest |z - mu| of a component is {diag.max_abs_diff:.3g}, and {diag.band_count:,} of "
        f"{diag.n * diag.z_dim:,} components lie in {diag.band[0]:g} < |z - mu| < {diag.band[1]:g}. The radii of "
        f"z and mu differ by {r.rel_mean:.3g} relative on average (at most {r.rel_max:.3g}): {verdict}. The KL "
        f"is {diag.kl_per_dim.sum():.4g} nats per point; {int(diag.active.sum())} of {diag.z_dim} units are "
        f"active (variance of mu over the points > {diag.active_threshold:g})."
    )
