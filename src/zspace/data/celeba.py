"""CelebA: the image-folder pipeline on the aligned face images, plus the 40 binary attributes of each face.

The attribute file (``list_attr_celeba.txt``) has a count on line 1 (ignored: cut copies keep the full
count), the attribute names on line 2, then one row per image, ``000001.jpg  -1  1 ...``; rows are matched to
images by file name.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.files import require_folder
from zspace.data.images import DEFAULT_SIZE, load_folder
from zspace.errors import DataError

logger = logging.getLogger(__name__)

ATTRIBUTE_GLOB = "list_attr_celeba*.txt"
_SHOW = 5  # file names shown in a log line


@dataclass(frozen=True, eq=False)
class AttributeTable:
    """A parsed attribute file.

    Attributes
    ----------
    names : the A attribute names.
    files : file name of each row.
    values : ndarray of shape (R, A), int8 in {-1, 1}.
    """

    names: tuple[str, ...]
    files: tuple[str, ...]
    values: np.ndarray


def load(cfg: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load CelebA images (as :func:`zspace.data.images.load_folder`) with their attributes.

    Parameters
    ----------
    cfg : as for an image folder, plus ``attributes``: the attribute file; None = the first
        ``list_attr_celeba*.txt`` in the image folder or its parent.
    progress : ``progress(done, total)`` while decoding into a new cache entry.

    Returns
    -------
    Dataset with ``x`` of shape (N, S, S, 3), uint8, ``labels`` None, and ``attributes`` of shape (N, 40),
    int8 in {-1, 1}, 0 for an image without a row (None when no attribute file is found).
    """
    folder = require_folder(cfg.path, "celeba", "the folder with the face images")
    attr_file = find_attribute_file(cfg.attributes, folder.absolute())
    table = read_attributes(attr_file) if attr_file else None  # a bad file fails before a long decoding
    ds, files = load_folder(cfg, progress, dataset="celeba")
    ds = dataclasses.replace(ds, labels=None, label_names=None)
    if attr_file is None or table is None:
        logger.info("no %s in %s or its parent: CelebA attributes are unknown", ATTRIBUTE_GLOB, folder)
        return dataclasses.replace(ds, source={**ds.source, "attributes": None})
    attributes, missing = match_attributes(table, [f.rsplit("/", 1)[-1] for f in files])
    if missing:
        logger.warning(
            "%d of %d images have no row in %s (%s); their attributes are 0 (unknown)",
            len(missing),
            len(files),
            attr_file,
            ", ".join(missing[:_SHOW]) + ", ..." * (len(missing) > _SHOW),
        )
    source = {**ds.source, "attributes": str(attr_file.resolve()), "n_without_attributes": len(missing)}
    return dataclasses.replace(ds, attributes=attributes, attribute_names=table.names, source=source)


def find_attribute_file(given: str | None, folder: Path) -> Path | None:
    """``given`` (which must exist), else the first ``list_attr_celeba*.txt`` in ``folder`` or its parent."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DataError(f"attribute file {path} does not exist")
        return path
    for place in (folder, folder.parent):
        found = sorted(place.glob(ATTRIBUTE_GLOB))
        if found:
            return found[0]
    return None


def read_attributes(path: str | Path) -> AttributeTable:
    """Parse a CelebA attribute file (CRLF or LF line ends, runs of spaces, final newline optional).

    Raises
    ------
    DataError
        naming the file and line of a row with the wrong number of values or a value other than -1 / 1.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read attribute file {path}: {e}") from None
    if len(lines) < 2 or not lines[1].split():
        raise DataError(f"{path}: expected a count on line 1 and the attribute names on line 2")
    names = tuple(lines[1].split())
    files, rows, linenos = [], [], []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{path}:{lineno}: expected a file name and {len(names)} values, got {len(parts) - 1} values"
            )
        files.append(parts[0])
        rows.append(parts[1:])
        linenos.append(lineno)
    text = np.array(rows, dtype=str).reshape(len(rows), len(names))
    good = (text == "1") | (text == "-1")
    if not good.all():
        r, c = np.argwhere(~good)[0]
        raise DataError(f"{path}:{linenos[r]}: value {str(text[r, c])!r} of {names[c]} is not -1 or 1")
    values = np.where(text == "1", 1, -1).astype(np.int8)
    return AttributeTable(names=names, files=tuple(files), values=values)


def match_attributes(table: AttributeTable, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The attribute row of each file name, zeros where the table has none; also the names without a row.

    Returns
    -------
    attributes : ndarray of shape (len(names), A), int8.
    missing : the names without a row.
    """
    row_of = {f: i for i, f in enumerate(table.files)}
    rows = np.array([row_of.get(n, -1) for n in names], dtype=np.int64)
    attributes = np.zeros((len(names), len(table.names)), dtype=np.int8)
    have = rows >= 0
    attributes[have] = table.values[rows[have]]
    return attributes, [n for n, h in zip(names, have, strict=True) if not h]


SPEC = DatasetSpec(load=load, default_image_size=DEFAULT_SIZE, channels=3, resizable=True)
