"""What the cluster studies share: where the data is, loading it as feature matrices, the command line that makes
a study, and step-wise progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data import Dataset, load_dataset
from zspace.errors import DataError

log = logging.getLogger(__name__)

SHARED = {"mnist": Path("mnist"), "wifi": Path("wifi") / "wifi_localization.txt"}


def resolve_data(data: str | Path | None, name: str) -> Path:
    """``data``, else ../shared/data/<mnist|wifi> beside the working folder or the repository."""
    if data:
        return Path(data).expanduser()
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / SHARED[name]
        if candidate.exists():
            return candidate
    raise DataError(f"no {name} data given and none found at ../shared/data/{SHARED[name]}; pass --data")


@dataclass
class Split:
    """Feature matrices of a train/test split: ``X_*`` (n, d) float32, ``y_*`` (n,) int64 class indices."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str


def load_split(cfg: DataConfig, *, scale: float = 1.0) -> tuple[Split, Dataset]:
    """Load a labelled dataset and flatten its items to feature rows (images divided by ``scale``)."""
    ds = load_dataset(cfg)
    if ds.labels is None:
        raise DataError(f"dataset {cfg.name!r} at {cfg.path} has no labels; the cluster classifier needs them")
    tr, te = ds.indices("train"), ds.indices("test")
    if len(tr) == 0 or len(te) == 0:
        raise DataError(f"dataset {cfg.name!r} at {cfg.path} needs train and test items, got {len(tr)} and {len(te)}")
    flat = np.asarray(ds.x).reshape(len(ds), -1)

    def rows(idx: np.ndarray) -> np.ndarray:
        return (flat[idx].astype(np.float32) / np.float32(scale)).astype(np.float32)

    labels = np.asarray(ds.labels, dtype=np.int64)
    names = list(ds.label_names or [str(i) for i in range(int(labels.max()) + 1)])
    split = Split(rows(tr), labels[tr], rows(te), labels[te], names, str(ds.source.get("path")))
    return split, ds


def study_command(name: str, data: str | Path | None, out: Path, quick: bool, seed: int) -> str:
    """The command line that makes this study's report."""
    parts = ["zspace study", name, f"--data {data}" if data else "", f"--out {out}", "--quick" if quick else ""]
    return " ".join(p for p in [*parts, f"--seed {seed}" if seed else ""] if p)


class Steps:
    """Report study progress as ``progress(done, total)`` over a known number of steps."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, what: str = "") -> None:
        self.done = min(self.done + 1, self.total)
        if what:
            log.info("%s (%d/%d)", what, self.done, self.total)
        if self.progress:
            self.progress(self.done, self.total)
