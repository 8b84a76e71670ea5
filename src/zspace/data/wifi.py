"""UCI Wireless Indoor Localization: 7 WiFi signal strengths (dBm) per row and the room (1..4) of the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.split import split_mask
from zspace.errors import ConfigError, DataError

FILE_NAME = "wifi_localization.txt"
N_SIGNALS = 7


def load(cfg: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load ``wifi_localization.txt`` (``cfg.path``: the file or its folder), split by ``cfg.split_seed``.

    Parameters
    ----------
    cfg : ``path``, ``limit`` (> 0: the first ``limit`` rows), ``test_fraction``, ``split_seed``.
    progress : unused.

    Returns
    -------
    Dataset with ``x`` of shape (N, 7), float32, ``labels`` (N,) int64 = room - 1 and
    ``label_names`` ``("room 1", ...)`` up to the highest room present.
    """
    path = find_file(cfg.path)
    x, rooms = read_wifi(path)
    if cfg.limit:
        x, rooms = x[: cfg.limit], rooms[: cfg.limit]
    labels = rooms - 1
    return Dataset(
        name="wifi",
        x=x,
        labels=labels,
        label_names=tuple(f"room {i + 1}" for i in range(int(labels.max()) + 1)),
        attributes=None,
        attribute_names=None,
        index=np.arange(len(x), dtype=np.int64),
        test_mask=split_mask(len(x), cfg.test_fraction, cfg.split_seed),
        source={"path": str(path.resolve()), "cache": None, "cache_key": None, "n_skipped": 0},
    )


def find_file(path: str | None) -> Path:
    """``path`` when it is a file, ``path / wifi_localization.txt`` when it is a folder."""
    if path is None:
        raise ConfigError(f"dataset 'wifi' needs data.path (the file {FILE_NAME} or its folder)")
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / FILE_NAME
    if not p.is_file():
        raise DataError(f"data path {p} does not exist")
    return p


MAX_ROOM = 1000  # rooms are class labels: a larger number is a corrupt row, not a building
MAX_ABS_SIGNAL = 1000  # dBm; the UCI data lies in -98..-10


def read_wifi(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse rows of 7 integer signal strengths and a room number >= 1, separated by tabs or spaces.

    Returns
    -------
    x : ndarray of shape (N, 7), float32.
    rooms : ndarray of shape (N,), int64.

    Raises
    ------
    DataError
        ``"path:LINE: expected 8 numbers, got ..."`` for a malformed row; also for a file without rows.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    rows = []
    for lineno, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [int(p) for p in parts]
        except ValueError:
            msg = f"{path}:{lineno}: expected {N_SIGNALS + 1} numbers, got {line.strip()!r}"
            raise DataError(msg) from None
        if len(values) != N_SIGNALS + 1:
            raise DataError(f"{path}:{lineno}: expected {N_SIGNALS + 1} numbers, got {len(values)}")
        if not 1 <= values[-1] <= MAX_ROOM:
            raise DataError(f"{path}:{lineno}: room {values[-1]} is not a room number in 1..{MAX_ROOM}")
        bad = next((v for v in values[:-1] if abs(v) > MAX_ABS_SIGNAL), None)
        if bad is not None:
            raise DataError(
                f"{path}:{lineno}: signal strength {bad} dBm is outside -{MAX_ABS_SIGNAL}..{MAX_ABS_SIGNAL}"
            )
        rows.append(values)
    if not rows:
        raise DataError(f"{path} holds no rows")
    table = np.array(rows, dtype=np.int64)
    return table[:, :N_SIGNALS].astype(np.float32), table[:, N_SIGNALS]


SPEC = DatasetSpec(load=load, default_image_size=None, channels=None, resizable=False)
