"""``zspace analyze``: run the registered analyses on a run or a latents folder and write one report.

Configuration: a TOML file with one table per analysis (``[radius] width = 0.05``) plus the top-level keys
``only`` (list of analyses) and ``seed``; ``--set radius.width=0.05`` overrides single keys.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zspace.config import (
    DataConfig,
    Seed,
    check_declared_value,
    check_finite,
    from_mapping,
    load_toml,
    parse_override,
    set_key,
    short_repr,
)
from zspace.data import Progress, load_dataset
from zspace.data.names import check_names, read_names
from zspace.errors import ConfigError, DataError, ZSpaceError
from zspace.latents.embedding import Latents, load_latents
from zspace.latents.files import SUFFIXES, read_embeddings
from zspace.latents.freshness import model_of, run_latents, run_of
from zspace.latents.tables import TABLE_SUFFIXES, TableColumns, read_table
from zspace.report.page import write_report
from zspace.runs.folder import CONFIG, Run, load_run
from zspace.sections import SECTIONS, default_sections, section_module
from zspace.sections.base import Context, Section

log = logging.getLogger(__name__)


@dataclass
class Source:
    """What is analysed: latents, the run they came from (None for a bare latents folder), a display name."""

    latents: Latents
    run: Run | None
    name: str
    root: Path  # the analysis folder goes under it by default
    default_out: Path | None = None  # where the report goes by default when not root / "analysis"
    freshness: str = ""  # whether the latents came from the run's current weights (zspace.latents.freshness)
    model: Any = None  # a model given without a run (any object with encode/decode); the run's model otherwise
    dataset: Any = None  # the run's dataset when it was loaded already (to encode the latents): never loaded twice


def open_source(
    path: str | Path,
    *,
    split: str = "all",
    progress: Progress | None = None,
    device: str = "cpu",
    table: TableColumns | None = None,
) -> Source:
    """A run folder (its latents are computed once if missing), a latents folder (written by ``embed``, or any
    folder with ``z.npy``; without ``index.npy`` the index is 0..N-1), or an embeddings file (``.npy``, ``.npz``,
    ``.safetensors``: :mod:`zspace.latents.files`; its report goes to ``<stem>-analysis`` beside it).

    ``device``: where a run's missing latents are encoded (in batches of 1,024, ``progress(done, total)`` after
    each); the analyses then use the model on the CPU. A table (``.parquet``, ``.arrow``, ``.feather``, ``.csv``:
    :mod:`zspace.latents.tables`) is read with the columns of ``table``, which goes with tables only. A latents
    folder written by ``zspace embed --model`` brings its model back (``Source.model``, on ``device``; refused in
    one line when its weights changed since) and the images it encoded (``Source.dataset``).
    """
    path = Path(path)
    if path.suffix.lower() in TABLE_SUFFIXES:
        latents = read_table(path, table)
        return Source(latents, None, path.stem, path.parent, default_out=path.parent / f"{path.stem}-analysis")
    if table is not None and table.given:
        raise ConfigError(f"--column/--labels/--attributes go with a table ({', '.join(TABLE_SUFFIXES)}), not {path}")
    if (path / CONFIG).is_file():
        return run_source(load_run(path), split=split, progress=progress, device=device)
    if (path / "z.npy").is_file():
        latents = load_latents(path)
        run, note = run_of(latents)  # refuses another run at the recorded place, or changed weights
        model, data = None, None
        if run is None:  # a model from elsewhere (zspace embed --model), refused when its weights changed since
            model, model_note = model_of(latents, device=device)
            note = note or model_note
            data = embedded_dataset(latents) if model is not None else None  # originals beside reconstructions
        name = run.config.name if run else path.name
        return Source(latents, run, name, path, freshness=note, model=model, dataset=data)
    if path.suffix.lower() in SUFFIXES:
        latents = read_embeddings(path)
        return Source(latents, None, path.stem, path.parent, default_out=path.parent / f"{path.stem}-analysis")
    if not path.exists():
        raise DataError(f"not found: {path}")
    raise DataError(
        f"{path} is neither a run folder ({CONFIG}), a latents folder (z.npy) nor an embeddings file "
        f"({', '.join(SUFFIXES)}) or a table ({', '.join(TABLE_SUFFIXES)})"
    )


def embedded_dataset(latents: Latents) -> Any:
    """The images a latents folder of ``zspace embed --model`` was encoded from (its ``meta["data_config"]``,
    loaded through the image cache), or None when it names none or they cannot be loaded any more (a warning)."""
    spec = latents.meta.get("data_config")
    if not isinstance(spec, dict):
        return None
    try:
        return load_dataset(from_mapping(DataConfig, spec, "data."))
    except ZSpaceError as e:
        log.warning("the latents' images cannot be loaded (%s); going on without them", e)
        return None


def run_source(run: Run, *, split: str = "all", progress: Progress | None = None, device: str = "cpu") -> Source:
    """The source of a loaded run: its latents of ``split`` (encoded when missing or stale, on ``device``)."""
    loaded: list[Any] = []  # the dataset, when encoding needed it: the analyses reuse it (loaded once)

    def load_data() -> Any:
        loaded.append(load_dataset(run.config.data))
        return loaded[0]

    latents, note = run_latents(  # encoded when missing, re-encoded when the weights changed since
        run, split, load_data, device=device, batch_size=1024, progress=progress
    )
    run.model.cpu()
    path = Path(run.path)
    return Source(latents, run, run.config.name, path, freshness=note, dataset=loaded[0] if loaded else None)


def analysis_settings(
    config_path: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    only: str | None = None,
    base: dict[str, Any] | None = None,
) -> tuple[list[str], dict[str, Any], int]:
    """The analyses to run, their configs and the seed, from a TOML file (or the mapping ``base`` of the same
    shape: ``{"radius": {"width": 0.05}, "seed": 1}``), overrides and ``--only``."""
    d: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in (base or {}).items()}
    if config_path:
        d = load_toml(config_path)
    for item in sets:
        set_key(d, *parse_override(item))
    unknown = sorted(set(d) - set(SECTIONS) - {"only", "seed"})
    if unknown:
        raise ConfigError(f"unknown analysis config key {unknown[0]!r} (known: only, seed, {', '.join(SECTIONS)})")
    keys = [k.strip() for k in only.split(",") if k.strip()] if only else list(d.get("only", default_sections(d)))
    bad = [k for k in keys if k not in SECTIONS]
    if bad:
        raise ConfigError(f"unknown analysis {bad[0]!r} (known: {', '.join(SECTIONS)})")
    configs = {k: from_mapping(section_module(k).Config, d.get(k, {}), f"{k}.") for k in keys}
    for k, cfg in configs.items():  # every value checked before any analysis runs
        check_finite(cfg, f"{k}.")
        validate = getattr(section_module(k), "validate", None) or getattr(section_module(k), "_validate", None)
        if validate:
            validate(cfg)
    seed = d.get("seed", 0)
    check_declared_value("seed", seed, Seed)  # 0..2^32-1, as every seed
    return keys, configs, seed


def run_sections(
    source: Source,
    keys: list[str],
    configs: dict[str, Any],
    *,
    seed: int = 0,
    on_section: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[Section]:
    """Run the analyses ``keys`` in registry order on one source; each section records its seconds.

    ``on_progress(what, done, total)`` follows the steps inside long analyses (t-SNE maps, elbow fits).
    """
    ctx = Context(latents=source.latents, run=source.run, seed=seed, progress=on_progress, given_model=source.model,
                  _dataset=source.dataset)  # fmt: skip
    sections = []
    for key in [k for k in SECTIONS if k in keys]:
        if on_section:
            on_section(key)
        t0 = time.perf_counter()
        section = section_module(key).run(ctx, configs[key])
        section.metrics["seconds"] = round(time.perf_counter() - t0, 3)
        log.info("%s: %.1f s%s", key, section.metrics["seconds"], " (skipped)" if section.skipped else "")
        sections.append(section)
    return sections


def check_colorings(source: Source, configs: dict[str, Any]) -> None:
    """Every analysis's ``color_by`` must name a colouring the latents of ``source`` have: ``"label"`` (which falls
    back to the first attribute, else one colour, with a note) or one of their attribute names. Anything else is
    a one-line ConfigError naming the known colourings, raised before any analysis runs."""
    lat = source.latents
    attributes = list(lat.meta.get("attribute_names") or []) if lat.attributes is not None else []
    known = ["label", *attributes]
    for key, cfg in configs.items():
        by = getattr(cfg, "color_by", None)
        if by is not None and by not in known:
            raise ConfigError(
                f"{key}.color_by: {short_repr(by)} is no colouring of {source.name} (known: {', '.join(known)})"
            )


def source_summary(source: Source) -> dict[str, Any]:
    """What was analysed, for metrics.json and the page's introduction."""
    lat = source.latents
    return {
        "name": source.name,
        "latents": str(lat.path) if lat.path is not None else None,  # None: a file or arrays in memory
        "n": len(lat),
        "z_dim": int(lat.z.shape[1]),
        "kind": lat.meta.get("kind", "vae" if lat.mu is not None else "ae"),
        "split": lat.meta.get("split"),
        "dataset": lat.meta.get("dataset"),
        "run": str(source.run.path) if source.run else None,
        "freshness": source.freshness or None,
        "class_names": lat.meta.get("label_names") if lat.labels is not None else None,
        **({"columns_left_out": lat.meta["columns_left_out"]} if lat.meta.get("columns_left_out") else {}),
    }


def name_classes(source: Source, names: Sequence[str] = (), *, what: str = "--class-names") -> None:
    """Give the labelled latents of ``source`` the class names ``names`` (else the run's ``data.class_names``);
    a count other than the labels' number of classes is a ConfigError naming both."""
    if not names and source.run is not None and source.run.config.data.class_names:
        names, what = source.run.config.data.class_names, "data.class_names"
    if names:
        lat = source.latents
        source.latents = dataclasses.replace(
            lat, meta={**lat.meta, "label_names": check_names(names, lat.labels, what=what)}
        )


def source_intro(source: Source, info: dict[str, Any]) -> str:
    """The report's first sentence: what was analysed (and how fresh the latents are)."""
    kind = info["kind"].upper()
    split = f", split {info['split']}" if info.get("split") else ""
    intro = (
        f"{info['n']:,} latent points of dimension {info['z_dim']} from {'an' if kind == 'AE' else 'a'} {kind} "
        f"({info['dataset'] or 'unknown dataset'}{split})."
    )
    classes = f" Classes: {', '.join(info['class_names'])}." if info.get("class_names") else ""
    left = info.get("columns_left_out")
    left = f" Table columns not read as coordinates (not numeric): {', '.join(left)}." if left else ""
    return intro + classes + left + (f" Freshness: {source.freshness}." if source.freshness else "")


def analyze(
    path: str | Path,
    *,
    config_path: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    only: str | None = None,
    out: str | Path | None = None,
    split: str = "all",
    command: str = "zspace analyze",
    progress: Progress | None = None,
    on_section: Callable[[str], None] | None = None,
    device: str = "cpu",
    on_progress: Callable[[str, int, int], None] | None = None,
    table: TableColumns | None = None,
    class_names: str | Path | Sequence[str] | None = None,
) -> Path:
    """Analyse a run or latents folder; writes ``analysis/`` (report.html, PNGs, metrics.json), returns the page.

    ``progress(done, total)`` follows the encoding of a run's missing latents (on ``device``). ``class_names``:
    a names file (one per line) or the names of classes 0..K-1 (default: the run's ``data.class_names``).
    """
    keys, configs, seed = analysis_settings(config_path, sets, only)
    names = read_names(class_names) if isinstance(class_names, (str, Path)) else tuple(class_names or ())
    source = open_source(path, split=split, progress=progress, device=device, table=table)
    name_classes(source, names)
    check_colorings(source, configs)
    sections = run_sections(source, keys, configs, seed=seed, on_section=on_section, on_progress=on_progress)
    info = source_summary(source)
    intro = source_intro(source, info)
    out = Path(out) if out else (source.default_out or source.root / "analysis")
    return write_report(
        sections,
        out,
        title=f"zspace: the latent space of {source.name}",
        command=command,
        intro=intro,
        extra_metrics={"source": info, "seed": seed},
    )
