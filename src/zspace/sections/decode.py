"""What the decoder makes of points that are not data: random probes, reconstructions, interpolation paths (SPEC 4.7).

The series decoded z ~ N(0, I) and "equidistant" z in [-2, 2] and [-10, 10]: an AE or a tiny-KL VAE gives no
faces there, a VAE with a working KL term (fact 5) does. We add reconstructions of data points beside their
originals, straight and spherical paths between data points, and N(0, I) directions put on the data's own shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from zspace.analyses import probes
from zspace.config import Interval, Len, Range, Seed
from zspace.errors import ConfigError
from zspace.figures.decode import image_grid, interpolation_grid, reconstruction_pairs
from zspace.io.limits import GRID_BYTES_PER_IMAGE, check_count
from zspace.latents.paths import interpolate as interpolate_path
from zspace.sections.base import Context, FigureItem, Section, Table

TITLE = "Decoding points that are not data"
NCOLS = 10  # images per grid row


@dataclass
class Config:
    n_probes: Annotated[int, Range(2, 2**31 - 1)] = 40  # decoded images per probe grid (4 rows of 10)
    # the series' uniform/equidistant ranges of latent values, each (low, high) with low < high
    ranges: Annotated[tuple[Interval, ...], Len(1, 16)] = ((-2.0, 2.0), (-10.0, 10.0))
    # random data points decoded beside their originals; 0 = none
    n_reconstructions: Annotated[int, Range(0, 100000)] = 20
    n_pairs: Annotated[int, Range(0, 100000)] = 4  # random pairs of data points joined by interpolation paths; 0 = none
    steps: Annotated[int, Range(2, 1000)] = 10  # decoded images per path, both ends included
    batch_size: Annotated[int, Range(1, 2**20)] = 256  # z points per decoder call
    seed: Seed = 0  # seeds the probes and the choice of data points (with the report's seed)


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    section = Section("decode", TITLE)
    lat, model = ctx.latents, ctx.model
    reason = _cannot_decode(lat, model)
    if reason:
        section.skipped = True
        section.notes.append(reason)
        return section
    rng = ctx.rng(cfg.seed)
    points, source = (lat.mu, "mu") if lat.mu is not None else (lat.z, "z")
    radius = probes.mean_norm(lat.z)
    stats: dict[str, dict] = {}
    for name, Z, title, caption in _probe_sets(cfg, lat.z.shape[1], radius, rng):
        images = decode(model, Z, cfg.batch_size)
        stats[name] = {"n": len(Z), "mean_norm": float(np.linalg.norm(Z, axis=1).mean()), **probes.image_stats(images)}
        section.figures.append(FigureItem(name, image_grid(images, ncols=NCOLS, title=title), caption))
    metrics = {"z_source": source, "data_mean_radius": radius, "probes": stats}
    metrics["reconstruction"] = _reconstructions(ctx, cfg, points, source, rng, section, stats)
    metrics["interpolation"] = _interpolations(cfg, model, points, source, rng, section)
    section.metrics = metrics
    section.tables.append(_stats_table(stats))
    section.summary = _summary(stats, radius, lat.z.shape[1], metrics["reconstruction"])
    return section


def validate(cfg: Config) -> None:
    """Raise ConfigError for values that cannot work, naming the key."""
    checks = [
        (cfg.n_probes >= 2, "n_probes must be >= 2", cfg.n_probes),
        (cfg.steps >= 2, "steps must be >= 2", cfg.steps),
        (cfg.batch_size >= 1, "batch_size must be >= 1", cfg.batch_size),
        (cfg.n_reconstructions >= 0, "n_reconstructions must be >= 0", cfg.n_reconstructions),
        (cfg.n_pairs >= 0, "n_pairs must be >= 0", cfg.n_pairs),
        (all(len(r) == 2 and r[0] < r[1] for r in cfg.ranges), "ranges must be (low, high), low < high", cfg.ranges),
    ]
    for ok, message, value in checks:
        if not ok:
            raise ConfigError(f"decode.{message}, got {value!r}")


def _cannot_decode(lat, model) -> str | None:
    if model is None:
        return "no model to decode with: these latents come without their run (a bare latents folder)."
    if model.cfg.z_dim != lat.z.shape[1]:
        return f"the model has z_dim {model.cfg.z_dim}, the latents {lat.z.shape[1]}: they do not belong together."
    return None


def decode(model, Z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Decode z (N, z_dim) in batches to images (N, H, W, C) float32 in [0, 1] (model in eval mode)."""
    return model.decode_images(Z, batch_size=batch_size)


def _probe_sets(cfg: Config, z_dim: int, radius: float, rng: np.random.Generator):
    """(name, z (n_probes, z_dim), short title, caption) of each probe set."""
    n = check_count(cfg.n_probes, "decode.n_probes", GRID_BYTES_PER_IMAGE, f"grids of {cfg.n_probes} decoded probes")
    gauss = probes.gaussian_probes(n, z_dim, rng)
    gauss_norm = np.linalg.norm(gauss, axis=1).mean()
    sets = [
        ("gaussian", gauss, "z ~ N(0, I)", f"{n} decoded z ~ N(0, I) (mean |z| {gauss_norm:.2f})"),
        (
            "gaussian_shell",
            probes.scale_to_radius(gauss, radius),
            f"N(0, I) directions at |z| = {radius:.2f}",
            f"the same {n} N(0, I) directions, each rescaled to the data's mean radius {radius:.2f}, decoded",
        ),
    ]
    for low, high in cfg.ranges:
        tag = f"{low:g}_{high:g}".replace("-", "m")
        uniform = probes.uniform_probes(n, z_dim, low, high, rng)
        equidistant = probes.equidistant_probes(n, z_dim, low, high)
        sets += [
            (
                f"uniform_{tag}",
                uniform,
                f"uniform in [{low:g}, {high:g}]",
                f"{n} decoded z with independent components uniform in [{low:g}, {high:g}]",
            ),
            (
                f"equidistant_{tag}",
                equidistant,
                f"equidistant in [{low:g}, {high:g}]",
                f"{n} decoded z on the diagonal of [{low:g}, {high:g}]^d: all components of z equal, stepping evenly "
                f"from {low:g} (top left) to {high:g} (bottom right)",
            ),
        ]
    return sets


def dataset_rows(dataset_index: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of the dataset whose ``index`` equals each of ``wanted`` (source positions); -1 where none does."""
    wanted = np.asarray(wanted)
    if len(dataset_index) == 0:
        return np.full(wanted.shape, -1, dtype=np.int64)
    order = np.argsort(dataset_index, kind="stable")
    sorted_index = np.asarray(dataset_index)[order]
    pos = np.minimum(np.searchsorted(sorted_index, wanted), len(order) - 1)
    return np.where(sorted_index[pos] == wanted, order[pos], -1).astype(np.int64)


def _originals(ctx: Context, wanted: np.ndarray, shape: tuple, notes: list[str]) -> np.ndarray | None:
    """The data images (N, H, W, C) in [0, 1] of source positions ``wanted``, or None (with a note)."""
    ds = ctx.dataset()
    if ds is None or not ds.is_image:
        notes.append("reconstructions are not shown beside their originals: the run's images could not be loaded.")
        return None
    if ds.image_shape != shape:
        notes.append(f"the run's images are {ds.image_shape}, the decoder makes {shape}: originals not shown.")
        return None
    rows = dataset_rows(ds.index, np.asarray(wanted))
    if (rows < 0).any():
        notes.append("some latent points were not found in the run's dataset: originals not shown.")
        return None
    order = np.argsort(rows)  # read a memory-mapped cache front to back
    images = np.empty((len(rows), *shape), dtype=np.float32)
    images[order] = np.asarray(ds.x[rows[order]], dtype=np.float32) / 255.0
    return images


def _reconstructions(ctx, cfg, points, source, rng, section, stats) -> dict:
    """Decode random data points; with their originals, a side-by-side grid and the reconstruction loss."""
    n = min(cfg.n_reconstructions, len(points))
    if n == 0:
        return {}
    rows = np.sort(rng.choice(len(points), size=n, replace=False))
    decoded = decode(ctx.model, np.asarray(points[rows]), cfg.batch_size)
    stats[f"data ({source}, decoded)"] = {
        "n": n,
        "mean_norm": float(np.linalg.norm(points[rows], axis=1).mean()),
        **probes.image_stats(decoded),
    }
    originals = _originals(ctx, ctx.latents.index[rows], decoded.shape[1:], section.notes)
    if originals is None:
        caption = f"{n} random data points decoded from their {source}"
        fig = image_grid(decoded, ncols=NCOLS, title=f"decoded {source} of data points")
        section.figures.append(FigureItem("data", fig, caption))
        return {}
    stats["data (images)"] = {"n": n, "mean_norm": None, **probes.image_stats(originals)}
    kind = getattr(getattr(ctx.run, "config", None), "model", None)
    kind = getattr(kind, "reconstruction", "bce")
    loss = probes.reconstruction_error(originals, decoded, kind)
    caption = f"{n} random data images (upper rows) and their decoded {source} (lower rows); {kind} {loss.mean():.1f}"
    section.figures.append(
        FigureItem("reconstructions", reconstruction_pairs(originals, decoded, ncols=NCOLS), caption)
    )
    return {"loss": kind, "n": n, "mean_per_image": float(loss.mean()), "max_per_image": float(loss.max())}


def _interpolations(cfg, model, points, source, rng, section) -> dict:
    """Straight and spherical paths between random pairs of data points, decoded; the norm halfway along."""
    n = len(points)
    if cfg.n_pairs == 0 or n < 2:
        if cfg.n_pairs:
            section.notes.append("interpolation skipped: it needs at least 2 latent points.")
        return {}
    pairs = np.array([rng.choice(n, size=2, replace=False) for _ in range(cfg.n_pairs)])
    labels = [f"{a} -> {b}" for a, b in pairs]
    result = {}
    for kind in ("linear", "slerp"):
        paths = np.stack([interpolate_path(points[a], points[b], cfg.steps, kind) for a, b in pairs])
        images = decode(model, paths.reshape(-1, paths.shape[-1]), cfg.batch_size)
        mid = np.linalg.norm(paths[:, cfg.steps // 2], axis=1)
        ends = (np.linalg.norm(paths[:, 0], axis=1) + np.linalg.norm(paths[:, -1], axis=1)) / 2
        result[kind] = {"midpoint_norm_ratio": float(np.mean(mid / np.where(ends > 0, ends, 1.0)))}
        caption = (
            f"{kind} interpolation between {cfg.n_pairs} random pairs of data points ({source}), "
            f"{cfg.steps} steps each; rows labelled by latent row numbers"
        )
        decoded = images.reshape(*paths.shape[:2], *images.shape[1:])  # (P, S, H, W, C)
        fig = interpolation_grid(decoded, title=f"{kind} paths", row_labels=labels)
        section.figures.append(FigureItem(f"interpolation_{kind}", fig, caption))
    result["pairs"] = pairs.tolist()
    return result


def _stats_table(stats: dict[str, dict]) -> Table:
    columns = ["z points", "n", "mean |z|", "pixel mean", "pixel variance", "within-image std", "between-image std"]
    keys = ["n", "mean_norm", "mean", "variance", "within_image_std", "between_image_std"]
    rows = [[name, *(_cell(s[k]) for k in keys)] for name, s in stats.items()]
    caption = "Decoded images per set of z points. Between-image std near 0: the decoder makes the same image."
    return Table("Decoded probes against decoded data", columns, rows, caption)


def _cell(value):
    if value is None:
        return "-"
    return round(value, 4) if isinstance(value, float) else value


def _summary(stats: dict[str, dict], radius: float, z_dim: int, reco: dict) -> str:
    g = stats["gaussian"]
    data = next((s for name, s in stats.items() if name.startswith("data (") and "decoded" in name), None)
    text = (
        f"The data lie at a mean radius of {radius:.2f}; N(0, I) probes at {g['mean_norm']:.2f} (about "
        f"sqrt({z_dim}) = {np.sqrt(z_dim):.2f}). Decoded N(0, I) probes have a pixel mean of {g['mean']:.3f} and "
        f"differ between images by {g['between_image_std']:.3f} (std per pixel)"
    )
    if data is not None:
        text += f"; decoded data points: {data['mean']:.3f} and {data['between_image_std']:.3f}"
    text += (
        ". Whether the probe grids look like data is for the eye to judge; the series' AE and tiny-KL VAE made none."
    )
    if reco:
        text += f" Mean reconstruction loss ({reco['loss']}) of {reco['n']} data images: {reco['mean_per_image']:.1f}."
    return text
