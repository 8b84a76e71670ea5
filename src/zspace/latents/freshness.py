"""Which weights a latents folder came from, and whether they are still its run's weights.

:func:`provenance` gives the ``meta.json`` entries an embedding records: the sha256 of the run's weights file
and the epoch those weights are of (``weights_sha256``, ``weights_epoch``), and the run itself by a path relative
to the latents folder plus the random id in the run's marker (``run_relative``, ``run_id``; the absolute
``run`` stays for older readers). Readers then either re-encode latents whose weights changed (a run's own
``RUN/latents/SPLIT``: :func:`run_latents`) or refuse them with one line (a bare latents folder:
:func:`run_of`); a run whose id differs from the recorded one is never used to decode. Latents written before
these entries existed keep working, with a note that their freshness is unverified.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zspace.data import Dataset, Progress
from zspace.errors import DataError, ZSpaceError
from zspace.latents.embedding import Latents, embed, load_latents
from zspace.runs.folder import CONFIG, WEIGHTS, Run, load_run, read_run_id

log = logging.getLogger(__name__)

UNVERIFIED = "the latents record no weights hash (written by an older zspace): their freshness is unverified"


def provenance(run: Run, out: str | Path) -> dict[str, Any]:
    """The ``meta.json`` entries of latents encoded into ``out`` with ``run``'s weights."""
    target = Path(run.path).resolve()
    return {
        "run": str(target),
        "run_relative": os.path.relpath(target, Path(out).resolve()),
        "run_id": run.run_id,
        "weights_sha256": run.weights_sha256,
        "weights_epoch": run.epoch,
    }


def _epoch(meta: dict[str, Any]) -> str:
    epoch = meta.get("weights_epoch")
    return str(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else "?"


def staleness(meta: dict[str, Any], run: Run) -> str | None:
    """None when latents with ``meta`` came from ``run``'s current weights (or cannot tell: no hash recorded),
    else why not, in words."""
    recorded = meta.get("weights_sha256")
    if recorded is None or recorded == run.weights_sha256:
        return None
    return f"latents were encoded by epoch {_epoch(meta)}'s weights; re-encoded with epoch {run.epoch}'s"


def _own_staleness(latents: Latents, run: Run) -> str | None:
    """Why a run's own latents must be encoded again: other weights, another dimension, or (older latents
    without a hash) a weights file newer than them."""
    folder, z_dim = Path(run.path) / "latents", run.config.model.z_dim
    if latents.z.shape[1] != z_dim:
        return f"latents have dimension {latents.z.shape[1]}, the run's model {z_dim}; re-encoded"
    if latents.meta.get("weights_sha256") is None and latents.path is not None:
        meta_file, weights = Path(latents.path) / "meta.json", Path(run.path) / WEIGHTS
        if meta_file.is_file() and meta_file.stat().st_mtime < weights.stat().st_mtime:
            return f"latents in {folder} are older than the run's weights (and record no hash); re-encoded"
    return staleness(latents.meta, run)


def run_latents(
    run: Run,
    split: str,
    load_data: Callable[[], Dataset],
    *,
    device: Any = "cpu",
    batch_size: int = 512,
    progress: Progress | None = None,
) -> tuple[Latents, str]:
    """``RUN/latents/SPLIT``, encoded there first when missing or stale; returns them and a note on freshness.

    ``load_data()`` gives the run's dataset, called only when encoding.
    """
    folder = Path(run.path) / "latents" / split
    note = ""
    if (folder / "z.npy").is_file():
        latents = load_latents(folder)
        note = _own_staleness(latents, run) or ""
        if not note:
            if latents.meta.get("weights_sha256") is None:
                log.info("%s: %s", folder, UNVERIFIED)
                return latents, UNVERIFIED
            return latents, f"latents encoded by epoch {run.epoch}'s weights, the run's current ones"
        log.warning("%s: %s", folder, note)
    else:
        log.info("no latents in %s yet: encoding the %s split on %s", folder, split, device)
    data = load_data()
    meta = provenance(run, folder)
    embed(run.model, data, folder, split=split, device=device, batch_size=batch_size, progress=progress, meta=meta)
    return load_latents(folder), note or f"latents encoded now with epoch {run.epoch}'s weights"


def _candidates(latents: Latents) -> list[Path]:
    """Run folders the latents name (relative path first, then the absolute one) that exist."""
    meta, found = latents.meta, []
    rel, absolute = meta.get("run_relative"), meta.get("run")
    if isinstance(rel, str) and rel and latents.path is not None:
        found.append((Path(latents.path) / rel).resolve())  # the relative path was taken between resolved paths
    if isinstance(absolute, str) and absolute:
        found.append(Path(absolute))
    return [p for p in found if (p / CONFIG).is_file()]


def run_of(latents: Latents) -> tuple[Run | None, str]:
    """The run a bare latents folder came from, and a note on freshness; None when it is not found or loads not.

    Raises :class:`~zspace.errors.DataError` when a run with another id stands where the latents' run was (a
    renamed run, another one made at its old path), or when the run's weights changed since the encoding.
    """
    meta, where = latents.meta, latents.path
    recorded = meta.get("run_id")
    match, other = None, None
    for path in _candidates(latents):
        if recorded is None or read_run_id(path) == recorded:
            match = path
            break
        other = other or path
    if match is None and other is not None:
        raise DataError(
            f"latents {where} were encoded by run {recorded}, but {other} is another run "
            f"({read_run_id(other) or 'no id'}); it is not used to decode them"
        )
    if match is None:
        return None, "" if recorded is None else "the run these latents came from was not found"
    try:
        run = load_run(match)
    except ZSpaceError as e:
        log.warning("the run of these latents cannot be loaded (%s); analysing the latents alone", e)
        return None, ""
    if meta.get("weights_sha256") is None:
        log.info("latents %s: %s", where, UNVERIFIED)
        return run, UNVERIFIED
    if staleness(meta, run):
        raise DataError(
            f"latents {where} were encoded from other weights than {run.path}'s (epoch {_epoch(meta)} vs "
            f"{run.epoch}); run `{_embed_command(latents, run)}` again"
        )
    return run, f"latents encoded by epoch {run.epoch}'s weights, the run's current ones"


def _embed_command(latents: Latents, run: Run) -> str:
    split = latents.meta.get("split") if isinstance(latents.meta.get("split"), str) else "all"
    command = f"zspace embed {run.path}" + (f" --split {split}" if split != "all" else "")
    own = Path(run.path) / "latents" / split
    inside = latents.path is not None and Path(latents.path).resolve() == own.resolve()
    return command if inside else f"{command} --out {latents.path}"


def model_of(latents: Latents, *, device: Any = "cpu") -> tuple[Any, str]:
    """The model from elsewhere that encoded a latents folder (``meta["model"]``, written by ``zspace embed
    --model``), reloaded; ``(None, "")`` when the latents name none, or none that can be reloaded (a model that was
    given in memory: a note says so).

    Raises :class:`~zspace.errors.DataError` when the model's folder is gone or its weights changed since.
    """
    spec = latents.meta.get("model")
    if not isinstance(spec, dict) or spec.get("kind") != "diffusers":
        return None, ""
    if not spec.get("path"):
        return None, "the latents' model was given in memory; pass it again (model=) to decode"
    from zspace.models.adapters.diffusers import from_spec

    model = from_spec(spec, latents.path, device=device)
    return model, f"latents encoded by the AutoencoderKL in {spec['path']}, whose weights are unchanged since"
