"""t-SNE maps of random subsets of the latent points (SPEC 4.4, and t-SNE after PCA from 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.tsne import PRESETS, TsneMap, tsne_map
from zspace.config import Range, Seed
from zspace.errors import ConfigError
from zspace.figures.tsne import tsne_map as tsne_figure
from zspace.io.limits import check_memory
from zspace.sections.base import Context, FigureItem, Section, Table

TITLE = "t-SNE maps"
K = 10  # neighbours per point in the kNN-preservation score
N_QUERIES = 2_000  # query points of the kNN-preservation score (neighbours are searched among all points)


@dataclass
class Config:
    sizes: tuple[int, ...] = (20_000,)  # random points per map; the series used 20k, 80k, 140k and 165k
    presets: tuple[str, ...] = ("default", "series")  # (perplexity, early exaggeration): (30, 12) and (10, 16)
    pca_components: tuple[int, ...] = (2, 4, 10)  # also maps after PCA to this many components (default preset)
    color_by: str | None = None  # "label", a CelebA attribute name, or None = labels, else the first attribute
    # iterations in all; the first 250 with early exaggeration, as in scikit-learn
    n_iter: Annotated[int, Range(1, 100000)] = 1000
    seed: Seed = 0  # seeds t-SNE; the subsets also depend on the report's seed


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    section = Section("tsne", TITLE)
    z = ctx.latents.z
    n, z_dim = z.shape
    if n < 4:
        section.skipped = True
        section.notes.append(f"t-SNE needs at least 4 points; the latents hold {n}.")
        return section
    if _all_equal(z):
        section.skipped = True
        section.notes.append("every latent point is the same: a t-SNE map has nothing to show.")
        return section
    sizes = _fit_sizes(cfg.sizes, n, section.notes)
    check_memory(_tsne_bytes(max(sizes), z_dim, cfg), "tsne.sizes", f"a t-SNE map of {max(sizes):,} points")
    pcs = _fit_components(cfg.pca_components, z_dim, section.notes)
    colors = _colors(ctx, cfg, section.notes)
    rng = ctx.rng(cfg.seed)
    maps: list[TsneMap] = []
    total = len(sizes) * (len(cfg.presets) + len(pcs))
    ctx.tick("t-SNE maps", 0, total)
    for size in sizes:
        rows = np.arange(n) if size == n else np.sort(rng.choice(n, size=size, replace=False))
        X = np.asarray(z[rows], dtype=np.float32)
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
    return section


def _tsne_bytes(n: int, z_dim: int, cfg: Config) -> float:
    """Peak memory of one map: the points, 3 * perplexity neighbours each (index, distance, affinity x2)."""
    neighbours = 3 * max(PRESETS[p][0] for p in cfg.presets) + 1
    return n * (8.0 * z_dim + 32.0 * neighbours + 64.0) * 2  # x2: openTSNE's working copies


def _all_equal(z: np.ndarray, chunk: int = 65536) -> bool:
    """Whether every row of ``z`` equals the first (read in chunks: z may be a large memory map)."""
    first = np.asarray(z[:1])
    return all(np.array_equal(np.asarray(z[i : i + chunk]), np.broadcast_to(first, z[i : i + chunk].shape))
               for i in range(0, len(z), chunk))  # fmt: skip


def validate(cfg: Config) -> None:
    """Raise ConfigError for values that cannot work, naming the key."""
    unknown = [p for p in cfg.presets if p not in PRESETS]
    if unknown:
        raise ConfigError(f"tsne.presets: unknown preset(s) {unknown} (known: {', '.join(PRESETS)})")
    if any(s < 4 for s in cfg.sizes) or not cfg.sizes:
        raise ConfigError(f"tsne.sizes must be one or more sizes of at least 4 points, got {cfg.sizes}")
    if any(c < 1 for c in cfg.pca_components):
        raise ConfigError(f"tsne.pca_components must be positive, got {cfg.pca_components}")
    if cfg.n_iter < 2:
        raise ConfigError(f"tsne.n_iter must be at least 2, got {cfg.n_iter}")


def _fit_sizes(sizes: tuple[int, ...], n: int, notes: list[str]) -> list[int]:
    """The subset sizes that fit ``n`` points, ascending; larger ones become all points (once), with a note."""
    too_big = [s for s in sizes if s > n]
    if too_big:
        notes.append(f"map sizes {too_big} exceed the {n:,} latent points; mapping all {n:,} points instead.")
    return sorted({min(s, n) for s in sizes})


def _fit_components(pcs: tuple[int, ...], z_dim: int, notes: list[str]) -> list[int]:
    """PCA sizes below ``z_dim`` (PCA to z_dim or more components would not reduce anything)."""
    dropped = [c for c in pcs if c >= z_dim]
    if dropped:
        notes.append(f"t-SNE after PCA to {dropped} components skipped: the latent space has only {z_dim} dimensions.")
    return [c for c in pcs if c < z_dim]


def _colors(ctx: Context, cfg: Config, notes: list[str]) -> tuple[np.ndarray, list[str]] | None:
    colors = ctx.colors(cfg.color_by)
    if colors is None:
        wanted = f"{cfg.color_by!r}" if cfg.color_by else "labels or attributes"
        notes.append(f"points are not coloured: the latents carry no {wanted}.")
    return colors


def _figure(m: TsneMap, colors: tuple[np.ndarray, list[str]] | None, rows: np.ndarray) -> FigureItem:
    values, names = (None, None) if colors is None else (np.asarray(colors[0])[rows], colors[1])
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
