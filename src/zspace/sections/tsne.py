"""t-SNE maps of random subsets of the latent points (SPEC 4.4, and t-SNE after PCA from 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.tsne import PRESETS, TsneMap, tsne_map
from zspace.config import Len, OneOf, Range, Seed
from zspace.errors import ConfigError
from zspace.figures.tsne import tsne_map as tsne_figure
from zspace.io.limits import check_time, estimate_tsne_seconds
from zspace.sections import maps as shared
from zspace.sections.base import Context, FigureItem, Section, Table

TITLE = "t-SNE maps"
K = 10  # neighbours per point in the kNN-preservation score
N_QUERIES = 2_000  # query points of the kNN-preservation score (neighbours are searched among all points)
# The series' five maps per subset (SPEC 4.4, 4.5): both presets and maps after PCA to 2/4/10 components. Each map
# costs about as much as the default one (1 - 2 min for 20,000 points on 2 cores), so a report draws one by default.
SERIES = {"presets": ("default", "series"), "pca_components": (2, 4, 10)}
SERIES_SETS = "--set 'tsne.presets=[\"default\", \"series\"]' --set 'tsne.pca_components=[2, 4, 10]'"


@dataclass
class Config:
    # random points per map; the series used 20k, 80k, 140k and 165k
    sizes: Annotated[tuple[Annotated[int, Range(4, 2**31 - 1)], ...], Len(1, 16)] = (20_000,)
    # (perplexity, early exaggeration): "default" (30, 12); the series also drew "series" (10, 16): see SERIES
    presets: Annotated[tuple[Annotated[str, OneOf("default", "series")], ...], Len(0, 2)] = ("default",)
    # also maps after PCA to this many components (default preset); the series drew (2, 4, 10): see SERIES
    pca_components: Annotated[tuple[Annotated[int, Range(1, 65536)], ...], Len(0, 16)] = ()
    # "label", a CelebA attribute name, or None = labels, else the first attribute
    color_by: Annotated[str | None, Len(1, 200)] = None
    # iterations in all; the first 250 with early exaggeration, as in scikit-learn
    n_iter: Annotated[int, Range(1, 100000)] = 1000
    seed: Seed = 0  # seeds t-SNE; the subsets also depend on the report's seed


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    section = Section("tsne", TITLE)
    z = ctx.latents.z
    n, z_dim = z.shape
    why = shared.nothing_to_map(z, "t-SNE")
    if why:
        section.skipped = True
        section.notes.append(why)
        return section
    sizes = shared.fit_sizes(cfg.sizes, n, section.notes)
    top = max(sizes)
    shared.check_map_cost(
        top, "tsne.sizes", f"a t-SNE map of {top:,} points", bytes_per_point=_tsne_bytes(1, z_dim, cfg)
    )
    pcs = shared.fit_components(cfg.pca_components, z_dim, section.notes, "t-SNE")
    per_size = len(cfg.presets) + len(pcs)  # maps of each subset: one per preset, one per PCA size
    check_time(
        estimate_tsne_seconds(sum(sizes), cfg.n_iter, per_size),
        "tsne.sizes",
        f"{per_size * len(sizes)} t-SNE maps ({len(cfg.presets)} presets and {len(pcs)} PCA sizes for each of the "
        f"sizes {sizes}, {cfg.n_iter} iterations)",
    )
    if set(SERIES["presets"]) - set(cfg.presets) or set(SERIES["pca_components"]) - set(cfg.pca_components):
        section.notes.append(f"the series' other maps (preset 'series', PCA to 2, 4 and 10 components): {SERIES_SETS}")
    colors = shared.map_colors(ctx, cfg.color_by, section.notes)
    rng = ctx.rng(cfg.seed)
    maps: list[TsneMap] = []
    total = len(sizes) * (len(cfg.presets) + len(pcs))
    ctx.tick("t-SNE maps", 0, total)
    for rows, X in shared.subsets(z, sizes, rng):
        jobs = [(p, None) for p in cfg.presets] + [("default", c) for c in pcs]
        for preset, c in jobs:
            m = tsne_map(
                X, preset=preset, n_iter=cfg.n_iter, pca_components=c, random_state=cfg.seed, k=K, n_queries=N_QUERIES
            )
            maps.append(m)
            section.figures.append(_figure(m, colors, rows))
            ctx.tick("t-SNE maps", len(maps), total)
    section.tables.append(_table(maps))
    section.metrics = {"maps": [m.to_metrics() for m in maps], "k": K, "n_queries": N_QUERIES}
    section.summary = _summary(maps)
    ctx.shared["tsne"] = maps  # for the UMAP section's comparison
    return section


def _tsne_bytes(n: int, z_dim: int, cfg: Config) -> float:
    """Peak memory of one map: the points, 3 * perplexity neighbours each (index, distance, affinity x2)."""
    used = list(cfg.presets) + (["default"] if cfg.pca_components else [])  # the PCA maps use the default preset
    neighbours = 3 * max((PRESETS[p][0] for p in used), default=PRESETS["default"][0]) + 1
    return n * (8.0 * z_dim + 32.0 * neighbours + 64.0) * 2  # x2: openTSNE's working copies


def validate(cfg: Config) -> None:
    """Raise ConfigError for values that cannot work, naming the key."""
    unknown = [p for p in cfg.presets if p not in PRESETS]
    if unknown:
        raise ConfigError(f"tsne.presets: unknown preset(s) {unknown} (known: {', '.join(PRESETS)})")
    if any(s < 4 for s in cfg.sizes) or not cfg.sizes:
        raise ConfigError(f"tsne.sizes must be one or more sizes of at least 4 points, got {cfg.sizes}")
    if not cfg.presets and not cfg.pca_components:
        raise ConfigError("tsne.presets and tsne.pca_components are both empty: no map to draw (name a preset)")
    if any(c < 1 for c in cfg.pca_components):
        raise ConfigError(f"tsne.pca_components must be positive, got {cfg.pca_components}")
    if cfg.n_iter < 2:
        raise ConfigError(f"tsne.n_iter must be at least 2, got {cfg.n_iter}")


def _figure(m: TsneMap, colors: tuple[np.ndarray, list[str]] | None, rows: np.ndarray) -> FigureItem:
    values, names = shared.colors_of(colors, rows)
    pca = f", after PCA to {m.pca_components} components" if m.pca_components else ""
    name = f"{m.n}-pca{m.pca_components}" if m.pca_components else f"{m.n}-{m.preset}"
    title = (
        f"t-SNE of {m.n:,} points{pca} ({m.preset}: perplexity {m.perplexity:g}, exaggeration {m.early_exaggeration:g})"
    )
    caption = (
        f"t-SNE map of {m.n:,} random latent points{pca}; preset {m.preset!r} (perplexity {m.perplexity:g}, "
        f"early exaggeration {m.early_exaggeration:g}, {m.n_iter} iterations); {m.seconds:.1f} s; "
        f"{m.knn_preservation:.1%} of each point's {m.k} nearest latent neighbours kept. "
        "Distances between clusters in a t-SNE map carry little meaning."
    )
    return FigureItem(name, tsne_figure(m.Y, colors=values, names=names, title=title), caption)


def _table(maps: list[TsneMap]) -> Table:
    rows = [
        [
            m.n,
            m.preset,
            round(m.perplexity, 3),
            m.early_exaggeration,
            m.pca_components or "-",
            round(m.seconds, 2),
            round(m.knn_preservation, 4),
            round(m.k / (m.n - 1), 4),
        ]
        for m in maps
    ]
    columns = [
        "points",
        "preset",
        "perplexity",
        "early exaggeration",
        "PCA components",
        "seconds",
        f"kNN kept (k={K})",
        "kNN kept by chance",
    ]
    return Table(
        "t-SNE maps",
        columns,
        rows,
        caption="kNN kept: share of each point's nearest latent neighbours "
        "that are also its nearest neighbours in the map (on a sample of query points).",
    )


def _summary(maps: list[TsneMap]) -> str:
    best = max(maps, key=lambda m: m.knn_preservation)
    mean = float(np.mean([m.knn_preservation for m in maps]))
    return (
        f"{len(maps)} t-SNE map(s) of up to {max(m.n for m in maps):,} points kept on average {mean:.1%} of each "
        f"point's {K} nearest latent neighbours (chance: {K / (best.n - 1):.2%} for {best.n:,} points); best: "
        f"{best.preset}{f' after PCA to {best.pca_components}' if best.pca_components else ''} on {best.n:,} "
        f"points ({best.knn_preservation:.1%}). The slowest map took {max(m.seconds for m in maps):.1f} s. "
        "High kNN preservation means the local structure in the maps (clusters, filaments) is real; the "
        "distances between clusters are not."
    )
