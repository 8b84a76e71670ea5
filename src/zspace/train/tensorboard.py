"""Optional TensorBoard event files: ``train.tensorboard = true`` writes each epoch's numbers to ``RUN/tensorboard``.

TensorBoard is not a dependency of zspace: asking for it without the ``tensorboard`` package installed is a
one-line :class:`~zspace.errors.ConfigError`, raised before the run folder is created.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

from zspace.errors import ConfigError

FOLDER = "tensorboard"
EVENTS = "events.out.tfevents.*"  # the names TensorBoard gives its event files


def check_available() -> None:
    """Refuse ``train.tensorboard = true`` when the package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.tensorboard = true needs the tensorboard package (pip install tensorboard)")


def epoch_writer(run_dir: Path) -> Callable[[dict[str, float]], None]:
    """An ``on_epoch`` callback writing every finite number of a history row as a scalar at its epoch."""
    check_available()
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(run_dir) / FOLDER
    before = set(folder.rglob(EVENTS)) if folder.is_dir() else set()
    writer = SummaryWriter(log_dir=str(folder))

    def on_epoch(row: dict[str, float]) -> None:
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                group = "radius" if "radius" in key else "speed" if key in ("images_per_s", "seconds") else "loss"
                writer.add_scalar(f"{group}/{key}", value, global_step=epoch)
        writer.flush()
        _record(folder, before)

    return on_epoch


def _record(folder: Path, before: set[Path]) -> None:
    """Record the event files this writer made (TensorBoard writes them, not zspace's writers) in the run's
    manifest: only new files with TensorBoard's names, so a user's notes (or files) in the folder stay theirs."""
    from zspace.io import ownership

    for path in sorted(set(folder.rglob(EVENTS)) - before):
        if path.is_file() and not path.is_symlink():
            ownership.record(path, ownership.sha256_file(path))
