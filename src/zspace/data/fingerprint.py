"""Is the data given the series' own data? A fingerprint of the files, computed once per process.

The series' published numbers (MNIST errors, targets, CelebA radii and axes) are shown only beside the series' own
data: for MNIST the four idx files must match the official md5 sums of their uncompressed bytes (a recompressed
``.gz`` still matches); for CelebA, whose images are often resized or recompressed (the shared copy is downscaled),
the official attribute file (its header and first 1,000 rows) must sit beside images that all carry official
CelebA names (``000001.jpg`` ... ``202599.jpg``). Reading the four MNIST files (~55 MB uncompressed) takes well under
a second; the answers are cached per file size and modification time, so a run checks each folder once.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

# md5 of the uncompressed official MNIST idx files (../shared/data/DATA.md)
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# md5 of the UCI Wireless Indoor Localization file the series used (wifi_localization.txt, ../shared/data/DATA.md)
WIFI_MD5 = "60e10563ada2a623f82194ed195135bc"
# md5 of the official list_attr_celeba.txt's names line and first 1,000 rows, each as its tokens joined by one
# space and the lines by "\n" (line ends and runs of spaces vary between copies; the count on line 1 is not hashed:
# cut copies keep 202599)
CELEBA_ATTR_HEAD_MD5 = "0a088005f5710a344bb46ef17c731052"
CELEBA_ATTR_HEAD_ROWS = 1000
CELEBA_IMAGES = 202_599
_CELEBA_NAME = re.compile(r"\d{6}\.jpg")
_CACHE: dict[tuple, bool] = {}


def _md5(path: Path) -> str:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    h = hashlib.md5(usedforsecurity=False)
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def is_series_mnist(folder: str | Path) -> bool:
    """True when ``folder`` holds the official MNIST idx files (uncompressed md5s equal the official ones).

    Parameters
    ----------
    folder : the folder with the four idx files (``.gz`` or not).

    Returns
    -------
    bool; False for any other idx data (e.g. Fashion-MNIST, a hand-made set) or missing files.
    """
    folder = Path(folder).expanduser().resolve()
    files = {n: _find(folder, n) for n in MNIST_MD5}
    if any(p is None for p in files.values()):
        return False
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values())
    if key not in _CACHE:
        _CACHE[key] = all(_md5(p) == MNIST_MD5[n] for n, p in files.items())
        log.debug("%s: series' MNIST %s", folder, _CACHE[key])
    return _CACHE[key]


def is_series_wifi(path: str | Path) -> bool:
    """True when ``path`` is the UCI WIFI localization file the series used (its md5; 2,000 rows, ~30 kB).

    Parameters
    ----------
    path : the tab-separated file of 7 signals and a room per row.

    Returns
    -------
    bool; False for any other file (another building's signals, an edited copy) or a missing one.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        return False
    key = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = _md5(path) == WIFI_MD5
        log.debug("%s: series' WIFI %s", path, _CACHE[key])
    return _CACHE[key]


def _celeba_attr_head_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        f.readline()  # the count
        lines = [b" ".join(f.readline().split()) for _ in range(CELEBA_ATTR_HEAD_ROWS + 1)]
    h.update(b"\n".join(lines))
    return h.hexdigest()


def is_series_celeba(folder: str | Path, attributes: str | Path | None = None) -> bool:
    """True when ``folder`` holds CelebA's aligned faces beside the official attribute file.

    Parameters
    ----------
    folder : the image folder (``img_align_celeba`` or a resized copy of it).
    attributes : the attribute file; None = the first ``list_attr_celeba*.txt`` in ``folder`` or its parent (as the
        CelebA loader finds it).

    Returns
    -------
    bool; True when the attribute file's names and first 1,000 rows are the official ones and every image in
    ``folder`` has an official CelebA name (``000001.jpg`` ... ``202599.jpg``); False for any other faces (another
    attribute file, none, other file names) or a missing folder. Pixels are not compared: resized copies count.
    """
    from zspace.data.celeba import find_attribute_file
    from zspace.data.files import list_relpaths
    from zspace.errors import DataError

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        return False
    try:
        attr = find_attribute_file(str(attributes) if attributes else None, folder)
    except DataError:
        return False
    if attr is None:
        return False
    attr = attr.resolve()
    key = ("celeba", str(folder), folder.stat().st_mtime_ns, str(attr), attr.stat().st_size, attr.stat().st_mtime_ns)
    if key not in _CACHE:
        try:
            head = _celeba_attr_head_md5(attr) == CELEBA_ATTR_HEAD_MD5
        except OSError:
            head = False
        names = list_relpaths(folder) if head else []
        _CACHE[key] = bool(names) and all(_CELEBA_NAME.fullmatch(n) and 1 <= int(n[:6]) <= CELEBA_IMAGES for n in names)
        log.debug("%s: series' CelebA %s (attributes %s)", folder, _CACHE[key], attr)
    return _CACHE[key]


def dataset_name(folder: str | Path) -> str:
    """The name a report gives the data in ``folder``: "MNIST" for the series' files, else the folder's name."""
    return "MNIST" if is_series_mnist(folder) else (Path(folder).expanduser().resolve().name or "data")
