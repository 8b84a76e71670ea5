"""``zspace compare``: several runs side by side in one report (the AE vs tiny-KL VAE question in one page).

Each run is analysed with the same settings; the report overlays the radius densities, the elbow curves and
the explained variance, tabulates the VAE diagnostics per run, and puts the grids decoded from z ~ N(0, I)
next to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import ConfigError
from zspace.figures.compare import elbow_overlay, radius_overlay, variance_overlay
from zspace.figures.sweep import against_weight
from zspace.latents.tables import TABLE_SUFFIXES, TableColumns
from zspace.report.analyze import analysis_settings, check_colorings, open_source, run_sections, source_summary
from zspace.report.page import slug, write_report
from zspace.sections import COMPARED
from zspace.sections.base import FigureItem, Section, Table

VAE_ROWS = [  # (label, key in the vae metrics, key inside "radius" or None)
    ("logvar min", "logvar_min", None),
    ("logvar max", "logvar_max", None),
    ("logvar mean", "logvar_mean", None),
    ("max |z - mu|", "max_abs_z_minus_mu", None),
    ("components with 0.05 < |z - mu| < 2", "band_count", None),
    ("components", "components", None),
    ("mean radius from z", "radius", "z_mean"),
    ("mean radius from mu", "radius", "mu_mean"),
    ("max abs. radius difference", "radius", "abs_max"),
    ("mean rel. radius difference", "radius", "rel_mean"),
    ("max rel. radius difference", "radius", "rel_max"),
    ("KL per image", "kl_total", None),
    ("active units", "active_units", None),
]
PUBLISHED_TINY_KL = {
    "logvar min": -24.66,
    "logvar max": -2.02,
    "logvar mean": -13.68,
    "max |z - mu|": 0.26,
    "components with 0.05 < |z - mu| < 2": 5,
    "components": 43_520_000,
    "mean radius from z": 16.283989,
    "mean radius from mu": 16.283972,
    "mean rel. radius difference": 6.1e-5,
    "max rel. radius difference": 7.2e-4,
}

Runs = dict[str, dict[str, Section]]
WIDE = 4  # more runs than this: per-run tables have one row per run


def analyse_runs(
    paths: Iterable[str | Path],
    *,
    config_path: str | Path | None = None,
    sets: Iterable[str] = (),
    keys: Iterable[str] = COMPARED,
    device: str = "cpu",
    table: TableColumns | None = None,
) -> tuple[Runs, dict[str, dict]]:
    """Run the compared analyses on every source with the same settings; names are made unique. ``table``: the
    columns of every table among the sources (:mod:`zspace.latents.tables`)."""
    keys_, configs, seed = analysis_settings(config_path, list(sets), ",".join(keys))
    sources: dict[str, Any] = {}
    seen: dict[Path, str] = {}
    for path in paths:  # every source is opened (and checked) before any analysis runs
        resolved = Path(path).resolve()
        if resolved in seen:
            raise ConfigError(f"compare: {path} is given twice (as {seen[resolved]!r}); name each run once")
        seen[resolved] = str(path)
        is_table = Path(path).suffix.lower() in TABLE_SUFFIXES
        source = open_source(path, device=device, table=table if is_table else None)
        sources[_unique_name(source.name, Path(path), sources)] = source
    for src in sources.values():  # a colouring one source lacks stops the comparison before any work
        check_colorings(src, configs)
    runs: Runs = {
        name: {s.key: s for s in run_sections(src, keys_, configs, seed=seed)} for name, src in sources.items()
    }
    infos = {name: source_summary(src) for name, src in sources.items()}
    for name, src in sources.items():
        infos[name]["config"] = flat_config(src.run.config.to_dict()) if src.run else None
    return runs, infos


# Keys that say where and how fast a run trained, not what it is, and seeds (runs that differ by their seed show a
# spread, not a curve): never the swept setting.
NOT_SWEPT = ("name", "out_dir", "data.path", "data.cache_dir", "data.workers", "train.device", "train.threads",
             "train.seed", "data.split_seed",
             "train.log_every", "train.checkpoint_every", "train.data_on_device", "train.dist_timeout",
             "train.keep_checkpoints", "train.tensorboard", "train.init_from", "train.compile")  # fmt: skip


def flat_config(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"section.key": value}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def swept_key(configs: dict[str, dict[str, Any] | None]) -> str | None:
    """The one config key whose value differs between the runs (numbers only), or None."""
    if len(configs) < 2 or any(c is None for c in configs.values()):
        return None
    keys = set().union(*(c.keys() for c in configs.values())) - set(NOT_SWEPT)
    differ = [k for k in sorted(keys) if len({repr(c.get(k)) for c in configs.values()}) > 1]
    if len(differ) != 1:
        return None
    values = [c.get(differ[0]) for c in configs.values()]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return differ[0] if numeric else None


SWEEP_COLUMNS = (  # (column, section key, path in its metrics)
    ("loss / image", "training", ("last", "total")),
    ("reco / image", "training", ("last", "reconstruction")),
    ("KL / image", "vae", ("kl_total",)),
    ("active units", "vae", ("active_units",)),
    ("logvar mean", "vae", ("logvar_mean",)),
    ("radius peak", "radius", ("peak",)),
    ("mean radius", "radius", ("mean",)),
)


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def sweep_section(runs: Runs, infos: dict[str, dict]) -> Section | None:
    """When the runs differ in exactly one numeric config key: the scalar metrics against its value."""
    key = swept_key({name: info.get("config") for name, info in infos.items()})
    if key is None:
        return None
    order = sorted(infos, key=lambda n: infos[n]["config"][key])
    x = [infos[n]["config"][key] for n in order]
    rows, series = [], {}
    for col, section, path in SWEEP_COLUMNS:
        values = [_dig(runs[n][section].metrics, path) if section in runs[n] else None for n in order]
        if any(v is not None for v in values):
            series[col] = values
    for i, n in enumerate(order):
        rows.append([n, x[i], *(series[c][i] for c in series)])
    section = Section("sweep", f"The runs as a sweep over {key}")
    section.summary = f"The runs differ in one config key, {key}: each scalar metric against its value."
    section.tables.append(Table(f"Metrics against {key}", ["run", key, *series], rows))
    for col, values in series.items():
        fig = against_weight(x, {col: values}, ylabel=col, title=f"{col} against {key}", log_x=min(x) >= 0, xlabel=key)
        section.figures.append(FigureItem(slug(col), fig, f"{col} of each run against {key}."))
    section.metrics = {"key": key, "values": x, "runs": order, **series}
    return section


def _unique_name(name: str, path: Path, taken: dict[str, Any]) -> str:
    """A display name whose file-name slug no other run has (figure files are named by slug)."""
    slugs = {slug(t) for t in taken}
    candidates = [name, f"{name} ({path.name})", f"{name} ({path.parent.name}/{path.name})"]
    candidates += [f"{name} ({i})" for i in range(2, len(taken) + 3)]
    return next(c for c in candidates if c not in taken and slug(c) not in slugs)


def _metrics(runs: Runs, key: str) -> dict[str, dict]:
    return {name: s[key].metrics for name, s in runs.items() if key in s and not s[key].skipped}


def runs_section(runs: Runs, infos: dict[str, dict]) -> Section:
    rows = []
    for name, info in infos.items():
        last = _metrics(runs, "training").get(name, {}).get("last", {})
        rows.append(
            [
                name,
                info["kind"],
                info["z_dim"],
                info["n"],
                info["dataset"],
                last.get("total"),
                last.get("reconstruction"),
                last.get("weighted_kl"),
            ]
        )
    cols = ["run", "model", "z_dim", "points", "dataset", "loss / image", "reco / image", "kl_weight * KL"]
    return Section("runs", "The runs", tables=[Table("Runs compared", cols, rows)])


def radius_section(runs: Runs) -> Section:
    section = Section("radius", "Radius: where the encoder puts the points")
    curves, rows = {}, []
    for name, m in _metrics(runs, "radius").items():
        edges = np.arange(len(m["counts"]) + 1) * m["width"]
        curves[name] = (edges, np.asarray(m["counts"]), m["z_dim"])
        rows.append([name, m["peak"], m["mean"], m["std"], *m["shell50"], *m["shell95"]])
    if curves:
        section.figures.append(
            FigureItem(
                "overlay",
                radius_overlay(curves),
                "Share of points per unit radius, all runs; dashed: N(0, I) of the same dimension (chi distribution).",
            )
        )
    cols = ["run", "peak R", "mean R", "std R", "50 % shell from", "to", "95 % shell from", "to"]
    section.tables.append(Table("Radius per run", cols, rows))
    section.metrics = {
        name: {"peak": r[1], "mean": r[2], "shell95": r[6:8]} for name, r in zip(curves, rows, strict=True)
    }
    return section


def _elbow_curves(m: dict[str, Any]) -> list[dict]:
    """Every curve in an elbow section's metrics (dicts with ``ks`` and ``inertia_min``/``inertia_max``)."""
    found = []
    for value in m.values():
        if isinstance(value, dict) and "ks" in value and "inertia_min" in value:
            found.append(value)
        elif isinstance(value, dict):
            found += _elbow_curves(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, dict) and "ks" in v and "inertia_min" in v]
    return found


def elbow_section(runs: Runs) -> Section:
    section = Section("elbow", "Elbow: KMeans inertia against the number of clusters")
    curves, rows = {}, []
    for name, m in _metrics(runs, "elbow").items():
        for c in _elbow_curves(m):
            label = f"{name}: {c.get('algorithm', '')}"
            curves[label] = (np.asarray(c["ks"]), np.asarray(c["inertia_min"]), np.asarray(c["inertia_max"]))
            rows.append(
                [name, c.get("algorithm"), c.get("elbow_k"), c.get("elbow_pronounced"), c.get("max_relative_spread")]
            )
    if curves:
        section.figures.append(
            FigureItem(
                "overlay", elbow_overlay(curves), "Inertia relative to the smallest k; the band spans the restarts."
            )
        )
    section.tables.append(
        Table("Elbow per run", ["run", "algorithm", "Kneedle k", "pronounced", "restart spread"], rows)
    )
    section.metrics = {f"{r[0]}/{r[1]}": {"elbow_k": r[2], "pronounced": r[3]} for r in rows}
    return section


def variance_section(runs: Runs) -> Section:
    section = Section("pca", "PCA: explained variance")
    ratios = {name: np.asarray(m["ratios"]) for name, m in _metrics(runs, "pca").items()}
    if ratios:
        section.figures.append(
            FigureItem(
                "overlay", variance_overlay(ratios), "Explained variance ratio of the first principal components."
            )
        )
    rows = [[n, m.get("n_for_50"), m.get("n_for_90"), m.get("n_for_99")] for n, m in _metrics(runs, "pca").items()]
    section.tables.append(Table("Components needed", ["run", "50 %", "90 %", "99 %"], rows))
    return section


def vae_section(runs: Runs) -> Section:
    ms = _metrics(runs, "vae")
    section = Section("vae", "VAE diagnostics per run (the table of the tiny-KL post)")
    if not ms:
        section.notes.append("no VAE among the runs")
        return section
    series = any(m.get("series_celeba") for m in ms.values())  # a run on the series' CelebA at z_dim 256
    if not series:
        section.notes.append(
            "The series' published tiny-KL figures are left out: no run here is on the series' CelebA at z_dim 256."
        )
    rows = []
    for label, key, sub in VAE_ROWS:
        values = [(m.get(key) or {}).get(sub) if sub else m.get(key) for m in ms.values()]
        rows.append([label, *values, *([PUBLISHED_TINY_KL.get(label)] if series else [])])
    section.metrics = {row[0]: dict(zip(ms, row[1 : 1 + len(ms)], strict=True)) for row in rows}
    published_name = "published (CelebA, fact 1e-5)"
    if len(ms) > WIDE:  # many runs: one row per run, one column per quantity
        cols = ["run", *(r[0] for r in rows)]
        per_run = [[name, *(r[1 + i] for r in rows)] for i, name in enumerate(ms)]
        published = [[published_name, *(r[-1] for r in rows)]] if series else []
        section.tables.append(Table("Diagnostics", cols, [*per_run, *published], "AE runs have no mu/logvar."))
        return section
    cols = ["quantity", *ms, *([published_name] if series else [])]
    section.tables.append(Table("Diagnostics", cols, rows, "AE runs have no mu/logvar and are left out."))
    return section


def grids_section(runs: Runs) -> Section:
    section = Section("decode", "Decoded from z ~ N(0, I), run by run")
    for name, s in runs.items():
        dec = s.get("decode")
        fig = next((f for f in dec.figures if f.name == "gaussian"), None) if dec else None
        if fig is None:
            section.notes.append(f"{name}: no decoder (bare latents)")
            continue
        section.figures.append(FigureItem(f"gaussian-{name}", fig.figure, f"{name}: {fig.caption}"))
    return section


def compare_sections(runs: Runs, infos: dict[str, dict]) -> list[Section]:
    """The comparison report's sections, in order: the runs table, then one per analysis that ran."""
    ran = {key for sections in runs.values() for key in sections}
    parts = [("radius", radius_section), ("elbow", elbow_section), ("pca", variance_section),
             ("vae", vae_section), ("decode", grids_section)]  # fmt: skip
    sweep = sweep_section(runs, infos)
    return [runs_section(runs, infos), *([sweep] if sweep else []), *(make(runs) for key, make in parts if key in ran)]


def compare(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    config_path: str | Path | None = None,
    sets: Iterable[str] = (),
    command: str = "zspace compare",
    title: str | None = None,
    before: Iterable[Section] = (),
    only: Iterable[str] | None = None,
    device: str = "cpu",
    table: TableColumns | None = None,
) -> Path:
    """Analyse every run with the same settings and write one side-by-side report; returns the page.

    ``only``: a subset of :data:`COMPARED` (the runs table is always there); ``device``: where missing latents
    are encoded.
    """
    keys = list(COMPARED) if only is None else [k for k in COMPARED if k in set(only)]
    unknown = sorted(set(only or ()) - set(COMPARED))
    if unknown or not keys:
        raise ConfigError(
            f"compare --only: {unknown[0] if unknown else 'nothing'!r} is not compared (known: {', '.join(COMPARED)})"
        )
    runs, infos = analyse_runs(paths, config_path=config_path, sets=sets, keys=keys, device=device, table=table)
    sections = [*before, *compare_sections(runs, infos)]
    title = title or "zspace: " + " vs ".join(runs)
    return write_report(sections, out, title=title, command=command, extra_metrics={"runs": infos})
