"""Is the data given the series' own data? A fingerprint of the files, computed once per process.

The series' published numbers (MNIST errors, targets) are shown only beside the series' own data: for MNIST the
four idx files must match the official md5 sums of their uncompressed bytes (a recompressed ``.gz`` still matches).
Reading the four files (~55 MB uncompressed) takes well under a second; the answer is cached per file size and
modification time, so a run checks each folder once.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
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


def dataset_name(folder: str | Path) -> str:
    """The name a report gives the data in ``folder``: "MNIST" for the series' files, else the folder's name."""
    return "MNIST" if is_series_mnist(folder) else (Path(folder).expanduser().resolve().name or "data")
