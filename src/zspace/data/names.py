"""Class names given by the user (``data.class_names`` or a names file) in place of a dataset's default names.

A names file holds one name per line (UTF-8); a trailing newline and ``\\r`` line ends are allowed. The number of
names must be the number of classes in the labels (the largest label + 1), else a one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zspace.data.base import Dataset
from zspace.errors import ConfigError

MAX_NAME = 200  # characters of one name, as data.class_names declares
MAX_FILE = 16 * 2**20  # bytes of a names file


def n_classes(labels: np.ndarray) -> int:
    """The number of classes in ``labels`` (n,) int: the largest label + 1 (0 for no labels)."""
    labels = np.asarray(labels)
    return int(labels.max()) + 1 if labels.size else 0


def check_names(names: Sequence[str], labels: np.ndarray | None, *, what: str = "data.class_names") -> list[str]:
    """``names`` as a list when there is one per class of ``labels`` (n,); a ConfigError naming both counts."""
    if labels is None:
        raise ConfigError(f"{what} gives {len(names)} class names but the data has no labels")
    k = n_classes(labels)
    if len(names) != k:
        raise ConfigError(f"{what} gives {len(names)} class names but the labels have {k} classes (0..{k - 1})")
    return [str(n) for n in names]


def with_class_names(ds: Dataset, names: Sequence[str], *, what: str = "data.class_names") -> Dataset:
    """``ds`` with ``label_names`` replaced by ``names`` (unchanged when ``names`` is empty)."""
    if not names:
        return ds
    return dataclasses.replace(ds, label_names=tuple(check_names(names, ds.labels, what=what)))


def read_names(path: str | Path) -> tuple[str, ...]:
    """The class names of a names file: one per line, UTF-8, none empty or longer than 200 characters."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"class names file not found: {path}")
    if path.stat().st_size > MAX_FILE:
        raise ConfigError(f"class names file {path} is larger than {MAX_FILE // 2**20} MiB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"class names file {path} is not UTF-8 (byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the trailing newline
    names = [line.removesuffix("\r").strip() for line in lines]
    if not names:
        raise ConfigError(f"class names file {path} is empty")
    for i, name in enumerate(names, 1):
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise ConfigError(f"{path}:{i}: a class name is 1 to {MAX_NAME} printable characters, not {name[:40]!r}")
    return tuple(names)
