"""What the 2-D map sections (t-SNE, UMAP) share: whether there is anything to map, the map sizes, the random
subsets (the same points for both, for one seed), the cost checks, PCA sizes and the colours."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from zspace.io.limits import check_memory, check_time
from zspace.sections.base import Context


def nothing_to_map(z: np.ndarray, method: str, min_points: int = 4) -> str | None:
    """Why ``z`` (n_samples, z_dim) cannot be mapped by ``method`` (a note for the report), or None when it can."""
    if len(z) < min_points:
        return f"{method} needs at least {min_points} points; the latents hold {len(z)}."
    if all_equal(z):
        return f"every latent point is the same: a {method} map has nothing to show."
    return None


def all_equal(z: np.ndarray, chunk: int = 65536) -> bool:
    """Whether every row of ``z`` equals the first (read in chunks: z may be a large memory map)."""
    first = np.asarray(z[:1])
    return all(np.array_equal(np.asarray(z[i : i + chunk]), np.broadcast_to(first, z[i : i + chunk].shape))
               for i in range(0, len(z), chunk))  # fmt: skip


def fit_sizes(sizes: tuple[int, ...], n: int, notes: list[str]) -> list[int]:
    """The subset sizes that fit ``n`` points, ascending; larger ones become all points (once), with a note."""
    too_big = [s for s in sizes if s > n]
    if too_big:
        notes.append(f"map sizes {too_big} exceed the {n:,} latent points; mapping all {n:,} points instead.")
    return sorted({min(s, n) for s in sizes})


def check_map_cost(
    n: int, key: str, what: str, *, bytes_per_point: float, seconds_per_point: float | None = None
) -> None:
    """Refuse (ConfigError naming ``key``) a map of ``n`` points that would not fit in memory or take too long."""
    check_memory(n * bytes_per_point, key, what)
    if seconds_per_point is not None:
        check_time(n * seconds_per_point, key, what)


def subsets(z: np.ndarray, sizes: list[int], rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows, X)`` per size: sorted random rows of ``z`` (all rows for a size of ``len(z)``) and those points as
    float32 (size, z_dim). The same ``sizes`` and generator state give the same rows to every map section."""
    n = len(z)
    for size in sizes:
        rows = np.arange(n) if size == n else np.sort(rng.choice(n, size=size, replace=False))
        yield rows, np.asarray(z[rows], dtype=np.float32)


def fit_components(pcs: tuple[int, ...], z_dim: int, notes: list[str], method: str) -> list[int]:
    """PCA sizes below ``z_dim`` (PCA to z_dim or more components would not reduce anything)."""
    dropped = [c for c in pcs if c >= z_dim]
    if dropped:
        notes.append(
            f"{method} after PCA to {dropped} components skipped: the latent space has only {z_dim} dimensions."
        )
    return [c for c in pcs if c < z_dim]


def map_colors(ctx: Context, color_by: str | None, notes: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """The classes to colour map points by (:meth:`Context.colors`), with a note when there are none."""
    colors = ctx.colors(color_by)
    if colors is None:
        wanted = f"{color_by!r}" if color_by else "labels or attributes"
        notes.append(f"points are not coloured: the latents carry no {wanted}.")
    return colors


def colors_of(colors: tuple[np.ndarray, list[str]] | None, rows: np.ndarray) -> tuple[np.ndarray | None, list | None]:
    """The colour values of ``rows`` and the class names, or (None, None) for uncoloured maps."""
    return (None, None) if colors is None else (np.asarray(colors[0])[rows], colors[1])
