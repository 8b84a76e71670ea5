"""UMAP maps of random subsets of the latent points, beside t-SNE's (issue 19, part 5).

The subsets are t-SNE's: the same sizes by default and, for the same seed, the same points (one helper,
:func:`zspace.sections.maps.subsets`, draws both), so the two maps compare point for point, on one score: the share
of each point's nearest latent neighbours that stay its neighbours in the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses.umap import UmapMap, umap_map
from zspace.config import Len, Range, Seed
from zspace.errors import ConfigError
from zspace.figures.tsne import tsne_map as map_figure
from zspace.sections import maps as shared
from zspace.sections.base import Context, FigureItem, Section, Table
from zspace.sections.tsne import Config as TsneConfig

TITLE = "UMAP maps"
K = 10  # neighbours per point in the kNN-preservation score (as t-SNE's)
N_QUERIES = 2_000  # query points of the score (as t-SNE's)
MIN_POINTS = 4
# Coarse cost of one map per point (refused beyond memory or zspace.io.limits.TIME_BUDGET_S, never predicted):
# umap-learn's neighbour search, fuzzy graph and layout took 1.3 ms a point for 20,000 points in 10-D on 2 busy
# cores (after the first map's numba compilation); twice that, scaled by the neighbours per point.
SECONDS_PER_POINT_AND_NEIGHBOUR = 2.6e-3 / 15

Size = Annotated[int, Range(MIN_POINTS, 2**31 - 1)]
Components = Annotated[int, Range(1, 65536)]


@dataclass
class Config:
    # random points per map; by default t-SNE's sizes, and for the same seed the same points as its maps
    sizes: Annotated[tuple[Size, ...], Len(1, 16)] = TsneConfig.sizes
    n_neighbors: Annotated[int, Range(2, 200)] = 15  # umap-learn's default: local (small) vs global (large) structure
    min_dist: Annotated[float, Range(0.0, 1.0)] = 0.1  # umap-learn's default: how tightly map points may pack
    pca_components: Annotated[tuple[Components, ...], Len(0, 16)] = ()  # also maps after PCA to this many components
    color_by: Annotated[str | None, Len(0, 4096)] = None  # "label", an attribute, or None = labels, else the first
    seed: Seed = 0  # seeds UMAP (then single-threaded: the same map on every machine); subsets as tsne.seed


def validate(cfg: Config) -> None:
    """Raise ConfigError for values that cannot work, naming the key (the declarations cover the ranges)."""
    if not cfg.sizes or any(s < MIN_POINTS for s in cfg.sizes):
        raise ConfigError(f"umap.sizes must be one or more sizes of at least {MIN_POINTS} points, got {cfg.sizes}")


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    section = Section("umap", TITLE)
    z = ctx.latents.z
    n, z_dim = z.shape
    why = shared.nothing_to_map(z, "UMAP", MIN_POINTS)
    if why:
        section.skipped = True
        section.notes.append(why)
        return section
    sizes = shared.fit_sizes(cfg.sizes, n, section.notes)
    top = max(sizes)
    shared.check_map_cost(
        top,
        "umap.sizes",
        f"a UMAP map of {top:,} points",
        bytes_per_point=umap_bytes_per_point(z_dim, cfg.n_neighbors),
        seconds_per_point=SECONDS_PER_POINT_AND_NEIGHBOUR * cfg.n_neighbors,
    )
    pcs = shared.fit_components(cfg.pca_components, z_dim, section.notes, "UMAP")
    colors = shared.map_colors(ctx, cfg.color_by, section.notes)
    rng = ctx.rng(cfg.seed)
    maps: list[UmapMap] = []
    total = len(sizes) * (1 + len(pcs))
    ctx.tick("UMAP maps", 0, total)
    for rows, X in shared.subsets(z, sizes, rng):
        for c in [None, *pcs]:
            m = umap_map(X, n_neighbors=cfg.n_neighbors, min_dist=cfg.min_dist, random_state=cfg.seed, k=K,
                         n_queries=N_QUERIES, pca_components=c)  # fmt: skip
            maps.append(m)
            section.figures.append(_figure(m, colors, rows))
            ctx.tick("UMAP maps", len(maps), total)
    section.tables.append(_table(maps))
    versus = against_tsne(maps, ctx.shared.get("tsne") or [])
    section.metrics = {"maps": [m.to_metrics() for m in maps], "k": K, "n_queries": N_QUERIES, "vs_tsne": versus}
    section.summary = _summary(maps, versus)
    ctx.shared["umap"] = maps  # the maps themselves, for later sections
    return section


def umap_bytes_per_point(z_dim: int, n_neighbors: int) -> float:
    """Peak memory of a map per point: the points (and a float32 copy), the neighbour graph (indices, distances,
    the search's heaps) and the fuzzy graph (its COO and CSR forms, symmetrised): about 200 bytes a neighbour."""
    return 12.0 * z_dim + 200.0 * n_neighbors + 256.0


def against_tsne(maps: list[UmapMap], tsne_maps: list) -> list[dict]:
    """Each UMAP map without PCA beside the t-SNE maps (without PCA) of the same number of points: the kNN kept and
    the seconds of both. Empty when t-SNE did not run in this report."""
    out = []
    for m in (m for m in maps if m.pca_components is None):
        for t in (t for t in tsne_maps if t.n == m.n and t.pca_components is None):
            out.append({
                "n": m.n,
                "tsne_preset": t.preset,
                "umap_knn_preservation": m.knn_preservation,
                "tsne_knn_preservation": t.knn_preservation,
                "umap_seconds": round(m.seconds, 3),
                "tsne_seconds": round(t.seconds, 3),
            })  # fmt: skip
    return out


def _figure(m: UmapMap, colors: tuple[np.ndarray, list[str]] | None, rows: np.ndarray) -> FigureItem:
    values, names = shared.colors_of(colors, rows)
    pca = f", after PCA to {m.pca_components} components" if m.pca_components else ""
    name = f"{m.n}-pca{m.pca_components}" if m.pca_components else f"{m.n}"
    title = f"UMAP of {m.n:,} points{pca} (n_neighbors {m.n_neighbors}, min_dist {m.min_dist:g})"
    caption = (
        f"UMAP map of {m.n:,} random latent points{pca} (n_neighbors {m.n_neighbors}, min_dist {m.min_dist:g}); "
        f"{m.seconds:.1f} s; {m.knn_preservation:.1%} of each point's {m.k} nearest latent neighbours kept "
        f"(chance {m.k / (m.n - 1):.2%}). As in a t-SNE map, the sizes of and distances between clusters carry "
        "little meaning."
    )
    return FigureItem(name, map_figure(m.Y, colors=values, names=names, title=title), caption)


def _table(maps: list[UmapMap]) -> Table:
    rows = [
        [m.n, m.n_neighbors, m.min_dist, m.pca_components or "-", round(m.seconds, 2), round(m.knn_preservation, 4),
         round(m.k / (m.n - 1), 4)]
        for m in maps
    ]  # fmt: skip
    columns = ["points", "n_neighbors", "min_dist", "PCA components", "seconds", f"kNN kept (k={K})",
               "kNN kept by chance"]  # fmt: skip
    return Table(
        "UMAP maps",
        columns,
        rows,
        caption="kNN kept: share of each point's nearest latent neighbours that are also its nearest neighbours in "
        "the map (on a sample of query points), the same score as the t-SNE maps'.",
    )


def _summary(maps: list[UmapMap], versus: list[dict]) -> str:
    best = max(maps, key=lambda m: m.knn_preservation)
    mean = float(np.mean([m.knn_preservation for m in maps]))
    text = (
        f"{len(maps)} UMAP map(s) of up to {max(m.n for m in maps):,} points kept on average {mean:.1%} of each "
        f"point's {K} nearest latent neighbours (chance: {K / (best.n - 1):.2%} for {best.n:,} points); best: "
        f"{f'after PCA to {best.pca_components}' if best.pca_components else 'on the latent points'} "
        f"({best.knn_preservation:.1%}). The slowest map took {max(m.seconds for m in maps):.1f} s."
    )
    if versus:
        parts = [
            f"on {v['n']:,} points UMAP kept {v['umap_knn_preservation']:.1%} in {v['umap_seconds']:.1f} s, t-SNE "
            f"({v['tsne_preset']} preset) {v['tsne_knn_preservation']:.1%} in {v['tsne_seconds']:.1f} s"
            for v in versus
        ]
        text += f" Against the t-SNE maps of as many points (the same points for the same seed): {'; '.join(parts)}."
    else:
        text += " (Run the tsne analysis in the same report to compare the two on the same points.)"
    return text
