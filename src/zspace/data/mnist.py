"""MNIST from its four idx files (gzip or not), with the official 60,000 / 10,000 train/test split.

An idx file is a big-endian header, ``0 0 <type> <ndim>`` then ``ndim`` uint32 sizes, followed by the data.
Any idx set of the same layout loads (e.g. Fashion-MNIST); images must be square uint8.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.files import require_folder
from zspace.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
UBYTE = 0x08  # idx type code of unsigned bytes
GZIP_MAGIC = b"\x1f\x8b"


def load(cfg: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load the idx files in folder ``cfg.path``: train rows first, then the t10k rows.

    Parameters
    ----------
    cfg : ``path`` (folder with the four idx files, ``.gz`` or not) and ``limit`` (> 0: keep the first
        ``limit`` rows of each split). ``test_fraction`` is ignored: the split is the official one.
    progress : unused (parsing takes about a second).

    Returns
    -------
    Dataset with ``x`` of shape (N, 28, 28, 1), uint8, ``labels`` (N,) int64, ``test_mask`` True on the
    t10k rows and ``index`` the row of each item in its idx file.
    """
    folder = require_folder(cfg.path, "mnist", "the folder with the idx files")
    parts = {split: read_split(folder, *names, limit=cfg.limit) for split, names in FILES.items()}
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{folder}: train images are {x_train.shape[1:]} but test images {x_test.shape[1:]}")
    labels = np.concatenate([y_train, y_test]).astype(np.int64)
    source = {
        "path": str(folder.resolve()),
        "cache": None,
        "cache_key": None,
        "n_skipped": 0,
        "files": [find_idx(folder, n).name for names in FILES.values() for n in names],
    }
    return Dataset(
        name="mnist",
        x=np.concatenate([x_train, x_test])[..., None],  # (N, H, W, 1)
        labels=labels,
        label_names=tuple(str(i) for i in range(int(labels.max(initial=0)) + 1)),
        attributes=None,
        attribute_names=None,
        index=np.concatenate([np.arange(len(x_train)), np.arange(len(x_test))]).astype(np.int64),
        test_mask=np.concatenate([np.zeros(len(x_train), bool), np.ones(len(x_test), bool)]),
        source=source,
    )


def read_split(folder: Path, images_name: str, labels_name: str, *, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, H, W) uint8 and labels (n,) uint8 of one split; the first ``limit`` rows when limit > 0."""
    images_file, labels_file = find_idx(folder, images_name), find_idx(folder, labels_name)
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise DataError(f"{images_file}: expected square images (n, H, H), got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_file}: expected {len(images)} labels for {images_file.name}, got shape {labels.shape}"
        )
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def find_idx(folder: Path, name: str) -> Path:
    """``folder / name``, else ``folder / (name + ".gz")``; DataError naming the missing file otherwise."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing MNIST file {name}[.gz] in {folder}")


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file of unsigned bytes (gzip-compressed or not, told by its first bytes).

    Returns
    -------
    ndarray of the shape the header gives, uint8.

    Raises
    ------
    DataError
        naming the file for a bad magic number, a type other than unsigned byte, or a data size that does not
        match the header (truncated or mismatched file).
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DataError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    if raw[2] != UBYTE:
        raise DataError(f"{path}: idx type 0x{raw[2]:02x} is not supported (only unsigned bytes, 0x08)")
    ndim, offset = raw[3], 4 + 4 * raw[3]
    if ndim == 0 or len(raw) < offset:
        raise DataError(f"{path}: idx header of {ndim} dimensions is truncated or invalid")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise DataError(
            f"{path}: header says {shape} = {expected} bytes of data, the file holds "
            f"{len(raw) - offset} (truncated or mismatched)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


SPEC = DatasetSpec(load=load, default_image_size=28, channels=1, resizable=False)
