"""Self-describing run folders: everything needed to rebuild a trained model lives in ``runs/<name>/``.

Layout::

    config.json            the resolved RunConfig
    environment.json       versions, device, threads
    data.json              what the run was trained on: dataset, path, cache, sizes
    history.csv            one row per finished epoch
    model.safetensors      the latest weights
    checkpoint.safetensors model + Adam + RNG states + progress, for --resume
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.config import RunConfig
from zspace.errors import CheckpointError, ConfigError
from zspace.io import ownership
from zspace.io.atomic import atomic_write_text
from zspace.models import LatentModel, build_model
from zspace.runs.checkpoint import load_weights

CONFIG, ENVIRONMENT, DATA, HISTORY = "config.json", "environment.json", "data.json", "history.csv"
WEIGHTS, CHECKPOINT = "model.safetensors", "checkpoint.safetensors"
KEPT = "checkpoints"  # every epoch's checkpoint, with train.keep_checkpoints
HISTORY_FIELDS = (
    "epoch",
    "total",
    "reconstruction",
    "weighted_kl",
    "kl",
    "test_total",
    "test_reconstruction",
    "test_kl",
    "radius_mean",
    "radius_peak",
    "mu_radius_mean",
    "images_per_s",
    "seconds",
)
# Keys that may differ between a run's saved config and the config it is resumed with.
RESUMABLE_CHANGES = (
    "name",  # a run folder may be moved or renamed and resumed where it now is
    "out_dir",
    "train.epochs",
    "train.device",
    "train.threads",
    "train.checkpoint_every",
    "train.data_on_device",
    "train.log_every",
    "train.channels_last",
    "train.compile",
    "train.dist_timeout",
    "train.keep_checkpoints",
    "train.init_from",
    "train.tensorboard",
    "data.workers",
)


def environment(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Versions and hardware a run was made with."""
    from zspace import __version__

    device = torch.device(device)
    env = {
        "zspace": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def create_run(
    cfg: RunConfig, data_ref: dict[str, Any], *, device: str | torch.device = "cpu", overwrite: bool = False
) -> Path:
    """Create ``out_dir/name`` with config, environment and data reference, all at once (temp + rename).

    An existing folder is replaced only when its manifest shows zspace wrote every file in it (see
    :mod:`zspace.io.ownership`): with ``overwrite``, or without it when the folder is an unfinished start (no
    checkpoint, no weights yet). Runs made before manifests are never replaced.
    """
    path = check_creatable(cfg, overwrite=overwrite)
    with ownership.replace_folder(path, "run") as tmp:  # a manifest records every file; swapped in whole
        ownership.write_marker(tmp)
        save_config(tmp, cfg)
        atomic_write_text(tmp / ENVIRONMENT, json.dumps(environment(device), indent=2) + "\n")
        atomic_write_text(tmp / DATA, json.dumps(data_ref, indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def check_creatable(cfg: RunConfig, *, overwrite: bool = False) -> Path:
    """The run folder ``cfg`` names, if it may be created (or replaced); else a one-line :class:`ConfigError`."""
    path = Path(cfg.out_dir) / cfg.name
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"out_dir {parent} is a file, not a folder")
    if path.exists() or path.is_symlink():
        if not overwrite and not is_unfinished_start(path):
            raise ConfigError(f"run folder {path} exists; use --resume to continue it or --overwrite to replace it")
        ownership.check_replaceable_run(path)
    return path


def is_unfinished_start(path: Path) -> bool:
    """A run folder zspace created that holds no checkpoint and no weights: nothing to lose by replacing it."""
    path = Path(path)
    return (
        path.is_dir()
        and not path.is_symlink()
        and ownership.is_run_folder(path)
        and not (path / CHECKPOINT).exists()
        and not (path / WEIGHTS).exists()
    )


def save_config(path: Path, cfg: RunConfig) -> None:
    """Rewrite the config of an existing run (after a resume that changed, say, the number of epochs)."""
    atomic_write_text(Path(path) / CONFIG, json.dumps(cfg.to_dict(), indent=2) + "\n")


def check_resumable(cfg: RunConfig) -> Path:
    """The run folder ``cfg`` names, if it holds a checkpoint made with a compatible config."""
    path = Path(cfg.out_dir) / cfg.name
    if not (path / CHECKPOINT).is_file():
        raise CheckpointError(f"cannot resume: {path} has no checkpoint ({CHECKPOINT})")
    saved = read_config(path).to_dict()
    diff = _first_difference(saved, cfg.to_dict())
    if diff is not None:
        key, old, new = diff
        raise ConfigError(f"cannot resume {path}: {key} is {old!r} in the run but {new!r} now")
    return path


def _first_difference(a: dict, b: dict, prefix: str = "") -> tuple[str, Any, Any] | None:
    for k in sorted(set(a) | set(b)):
        key = prefix + k
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            found = _first_difference(a[k], b[k], key + ".")
            if found:
                return found
        elif a.get(k) != b.get(k) and key not in RESUMABLE_CHANGES:
            return key, a.get(k), b.get(k)
    return None


def read_config(path: Path) -> RunConfig:
    file = Path(path) / CONFIG
    if not file.is_file():
        raise CheckpointError(f"{path} is not a zspace run folder (no {CONFIG})")
    try:
        return RunConfig.from_dict(json.loads(file.read_text()))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path) / HISTORY, buf.getvalue())


def read_history(path: Path) -> list[dict[str, float]]:
    file = Path(path) / HISTORY
    if not file.is_file():
        return []
    with file.open() as f:
        return [
            {k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()} for row in csv.DictReader(f)
        ]


@dataclass
class Run:
    """A trained run rebuilt from its folder: ``model`` is in eval mode on ``device``."""

    path: Path
    config: RunConfig
    model: LatentModel
    history: list[dict[str, float]] = field(default_factory=list)
    data_ref: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""  # of the weights file as loaded: latents record it to tell when they are stale
    epoch: int = 0  # finished epochs the weights are of
    run_id: str | None = None  # the random id in the run's marker (None for runs made before markers)


def read_run_id(path: Path) -> str | None:
    """The random id in the marker of run folder ``path``, or None (no marker, or a run made before them)."""
    try:
        marker = json.loads((Path(path) / ownership.RUN_MARKER).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    run_id = marker.get("id") if isinstance(marker, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def load_run(path: str | Path, *, device: str | torch.device = "cpu") -> Run:
    """Rebuild the trained model of a run folder from the folder alone.

    Raises :class:`~zspace.errors.CheckpointError` for a folder that is not a run, has no weights yet, or
    whose weights are truncated or belong to another architecture.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"run folder not found: {path}")
    cfg = read_config(path)
    if not (path / WEIGHTS).is_file():
        raise CheckpointError(f"run {path} has no weights yet ({WEIGHTS}): no epoch has finished")
    model = build_model(cfg.model)
    weights = (path / WEIGHTS).read_bytes()  # hashed and loaded from the same bytes
    meta = load_weights(path / WEIGHTS, model, data=weights)
    data_file = path / DATA
    data_ref = json.loads(data_file.read_text()) if data_file.is_file() else {}
    history = read_history(path)
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        epoch = len(history)  # weights written before they recorded their epoch
    digest = hashlib.sha256(weights).hexdigest()
    return Run(path, cfg, model.to(device).eval(), history, data_ref, digest, epoch, read_run_id(path))
