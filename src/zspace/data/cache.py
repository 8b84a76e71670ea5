"""The decoded-image cache: a folder of images decoded and resized once into one memory-mapped uint8 array.

An entry is a folder ``{dataset}-{size}px-{crop}-{key[:16]}`` under the cache root holding

- ``images.npy``: (N, S, S, 3) uint8, read back with ``np.load(..., mmap_mode="r")``;
- ``files.txt``: the relative path of each kept image, in row order;
- ``index.npy``: (N,) int64, the position of each kept image in the sorted listing;
- ``manifest.json``: version, dataset, source, size, crop, limit, n_files, n_images, skipped files, seconds.

The key hashes the source folder, size, crop, limit and a fingerprint of the listing (relative path, size
and mtime of every file), so a changed folder gets a new entry. An entry is built in a temporary folder and
renamed into place only when complete: a killed build never leaves a valid-looking entry. Images are decoded
by a pool of processes, each writing its rows straight into the memory-mapped array.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zspace.data.base import Progress
from zspace.data.files import decode_image, fingerprint, list_images, list_relpaths
from zspace.errors import ConfigError, DataError
from zspace.io.limits import check_disk
from zspace.io.ownership import umask

__all__ = [
    "CACHE_VERSION",
    "CachedImages",
    "cache_root",
    "cached_images",
    "decode_image",
    "list_images",
    "list_relpaths",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: 16-bit greyscale PNGs scaled to 8 bits instead of clipped
MIN_PARALLEL = 64  # fewer files than this are decoded in-process: starting workers would cost more
STALE_TEMP_S = 7 * 24 * 3600  # a temporary build folder this old is removed whoever owns it
_SHOW = 5  # skipped files named in a log line


@dataclass(frozen=True, eq=False)
class CachedImages:
    """An opened cache entry.

    Attributes
    ----------
    path : the entry folder.
    key : full sha256 key of the entry.
    images : read-only memmap of shape (N, S, S, 3), uint8.
    files : relative POSIX path of each row's source file.
    index : ndarray of shape (N,), int64, position of each row's file in the sorted listing.
    manifest : the entry's ``manifest.json``.
    """

    path: Path
    key: str
    images: np.ndarray
    files: tuple[str, ...]
    index: np.ndarray
    manifest: dict[str, Any]


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$ZSPACE_CACHE_DIR``, else ``~/.cache/zspace``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("ZSPACE_CACHE_DIR"):
        return Path(os.environ["ZSPACE_CACHE_DIR"]).expanduser()
    return Path.home() / ".cache" / "zspace"


def cache_key(root: Path, files: Sequence[str], *, size: int, crop: str, limit: int) -> str:
    """sha256 of what the decoded array depends on: source folder, size, crop, limit, listing fingerprint."""
    spec = {
        "version": CACHE_VERSION,
        "source": str(root),
        "size": size,
        "crop": crop,
        "limit": limit,
        "fingerprint": fingerprint(root, files),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def cached_images(
    root: str | Path,
    files: Sequence[str],
    *,
    dataset: str,
    size: int,
    crop: str = "center",
    limit: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    strict: bool = False,
    progress: Progress | None = None,
) -> CachedImages:
    """Open the cache entry of ``files``, decoding them into a new entry first when there is none.

    Parameters
    ----------
    root : the source folder.
    files : relative POSIX paths of the image files under ``root``, in listing order (``list_relpaths(root)``,
        cut to ``limit`` files when limit > 0).
    dataset : registry key, the first part of the entry name.
    size : side S of the decoded square images.
    crop : ``"center"`` or ``"none"``, see :func:`decode_image`.
    limit : the ``data.limit`` the listing was cut with (part of the key).
    cache_dir : cache root, see :func:`cache_root`.
    workers : decoding processes; 0 = one per CPU core.
    strict : a file that cannot be decoded is a :class:`DataError` instead of a skipped, reported file.
    progress : ``progress(done, total)`` while decoding.

    Returns
    -------
    CachedImages, whose ``images`` has shape (N, S, S, 3), N = the files that decoded.
    """
    root = Path(root).resolve()
    files = list(files)
    if not files:
        raise DataError(f"no images to decode in {root}")
    key = cache_key(root, files, size=size, crop=crop, limit=limit)
    base = cache_root(cache_dir)
    entry = base / f"{dataset}-{size}px-{crop}-{key[:16]}"
    cached = _open_entry(entry, key, size)
    if cached is None:
        _make_room(base, entry)
        opts = {"dataset": dataset, "size": size, "crop": crop, "limit": limit, "strict": strict}
        cached = _build_entry(entry, key, root, files, opts, _n_workers(workers), progress)
    else:
        logger.info("using %d cached images of %s from %s", len(cached.files), root, entry)
    skipped = cached.manifest["skipped"]
    if strict and skipped:
        raise DataError(f"cannot decode {root / skipped[0]['file']}: {skipped[0]['error']} (data.strict)")
    return cached


def _n_workers(workers: int) -> int:
    if workers < 0:
        raise ConfigError(f"data.workers must be >= 0, got {workers}")
    if workers:
        return workers
    from zspace.io.limits import cpu_threads

    return cpu_threads()


def _open_entry(entry: Path, key: str, size: int) -> CachedImages | None:
    """The entry when it exists and is consistent, else None."""
    if not (entry / "manifest.json").is_file():
        return None
    try:
        manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
        images = np.load(entry / "images.npy", mmap_mode="r")
        index = np.load(entry / "index.npy")
        files = tuple((entry / "files.txt").read_text(encoding="utf-8").splitlines())
    except (OSError, ValueError) as e:
        logger.warning("cache entry %s is unreadable (%s); rebuilding it", entry, e)
        return None
    n = manifest.get("n_images")
    if (
        (manifest.get("version"), manifest.get("key")) != (CACHE_VERSION, key)
        or images.shape != (n, size, size, 3)
        or len(index) != n
        or len(files) != n
    ):
        logger.warning("cache entry %s is inconsistent; rebuilding it", entry)
        return None
    return CachedImages(entry, key, images, files, index, manifest)


def _make_room(base: Path, entry: Path) -> None:
    """Create the cache root, remove a broken entry of this name and temporary folders of dead builds."""
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the image cache folder {base}: {e.strerror}") from None
    if entry.exists():
        shutil.rmtree(entry, ignore_errors=True)
    for tmp in base.glob(".tmp-*"):
        if _is_stale(tmp):
            logger.info("removing the temporary folder of an unfinished cache build: %s", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _is_stale(tmp: Path) -> bool:
    """A temporary build folder (with its owner.json) whose builder died (same host, pid gone) or is a week old."""
    try:
        age = time.time() - tmp.stat().st_mtime
    except OSError:
        return False
    try:
        owner = json.loads((tmp / "owner.json").read_text())
    except (OSError, ValueError):
        return False  # no proof that a cache build made it: never removed
    if not isinstance(owner, dict) or not {"host", "pid"} <= set(owner):
        return False
    dead = owner.get("host") == socket.gethostname() and not _pid_alive(owner.get("pid"))
    return dead or age > STALE_TEMP_S


def _pid_alive(pid: Any) -> bool:
    if os.name != "posix" or not isinstance(pid, int):
        return True  # cannot tell: leave it to the age rule
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _build_entry(
    entry: Path,
    key: str,
    root: Path,
    files: list[str],
    opts: dict[str, Any],
    workers: int,
    progress: Progress | None,
) -> CachedImages:
    """Decode ``files`` into a temporary folder and rename it to ``entry``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=entry.parent))
    try:
        tmp.chmod(0o777 & ~umask())  # mkdtemp makes 0700; the entry follows the umask like any other folder
        (tmp / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        start = time.perf_counter()
        logger.info(
            "decoding %d images of %s at %d px into %s (%d workers)",
            len(files),
            root,
            opts["size"],
            entry,
            workers,
        )
        failures = _decode_all(tmp / "images.npy", [f"{root}/{f}" for f in files], opts, workers, progress)
        skipped = [{"file": files[i], "error": err} for i, err in failures]
        if len(failures) == len(files):
            raise DataError(
                f"none of the {len(files)} images in {root} could be decoded "
                f"(first: {skipped[0]['file']}: {skipped[0]['error']})"
            )
        index = _compact(tmp / "images.npy", len(files), {i for i, _ in failures})
        seconds = time.perf_counter() - start
        _write_entry(tmp, root, files, index, skipped, {**opts, "key": key, "seconds": round(seconds, 3)})
        _report(root, len(files), skipped, seconds)
        return _move_into_place(tmp, entry, key, opts["size"])
    except OSError as e:
        raise DataError(f"cannot write the image cache {tmp}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _decode_all(
    array_path: Path, paths: list[str], opts: dict[str, Any], workers: int, progress: Progress | None
) -> list[tuple[int, str]]:
    """Decode every file into row i of a new (n, S, S, 3) array; return the sorted (row, reason) failures."""
    n, size = len(paths), opts["size"]
    need = n * size * size * 3
    # twice: dropping the rows of corrupt files writes a compacted copy beside the array
    check_disk(array_path.parent, 2 * need + (16 << 20), f"the image cache of {n:,} images at {size} px")
    np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3)).flush()
    _allocate(array_path)  # a full disk is ENOSPC now, not a Bus error in a worker later
    chunk = max(8, min(256, math.ceil(n / (workers * 8))))
    tasks = [(str(array_path), s, paths[s : s + chunk], size, opts["crop"]) for s in range(0, n, chunk)]
    failures: list[tuple[int, str]] = []
    done = 0

    def on_done(n_files: int, chunk_failures: list[tuple[int, str]]) -> None:
        nonlocal done
        if opts["strict"] and chunk_failures:
            i, err = min(chunk_failures)
            raise DataError(f"cannot decode {paths[i]}: {err} (data.strict)")
        failures.extend(chunk_failures)
        done += n_files
        if progress:
            progress(done, n)

    if progress:
        progress(0, n)
    _run(tasks, workers if n >= MIN_PARALLEL else 1, on_done)
    return sorted(failures)


def _run(tasks: list[tuple], workers: int, on_done: Callable[[int, list[tuple[int, str]]], None]) -> None:
    """Run :func:`_decode_chunk` on every task, in ``workers`` processes when > 1; ``on_done`` may raise.

    When the pool breaks (a worker killed, or unable to start, e.g. under ``python -`` where spawned
    processes cannot re-import the main script), the unfinished tasks are decoded in this process.
    """
    finished: set[int] = set()
    if workers > 1 and len(tasks) > 1:
        try:
            _run_pool(tasks, workers, on_done, finished)
        except BrokenProcessPool as e:
            logger.warning("decoding processes failed (%s); decoding the rest in this process", e)
    for k, task in enumerate(tasks):
        if k not in finished:
            on_done(len(task[2]), _decode_chunk(*task))


def _run_pool(
    tasks: list[tuple],
    workers: int,
    on_done: Callable[[int, list[tuple[int, str]]], None],
    finished: set[int],
) -> None:
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a process that may run torch threads
    pool_args = {"mp_context": ctx, "initializer": _worker_init, "initargs": (os.getpid(),)}
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), **pool_args) as pool:
        futures = {pool.submit(_decode_chunk, *task): k for k, task in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                failures = fut.result()
                finished.add(futures[fut])
                on_done(len(tasks[futures[fut]][2]), failures)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no worker may write after the caller cleans up
            raise


def _decode_chunk(array_path: str, start: int, paths: list[str], size: int, crop: str) -> list[tuple[int, str]]:
    """Worker: decode ``paths`` into rows ``start, start + 1, ...`` of the array; return the failures."""
    out = np.load(array_path, mmap_mode="r+")
    failures = []
    for i, path in enumerate(paths, start):
        try:
            out[i] = decode_image(path, size, crop)
        except Exception as e:  # any decoding failure makes the file a skipped one
            failures.append((i, " ".join(f"{type(e).__name__}: {e}".split())))
    out.flush()
    del out
    return failures


def _allocate(path: Path) -> None:
    """Reserve the file's blocks (a sparse memory-mapped file on a full disk faults with SIGBUS when written)."""
    with path.open("r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, path.stat().st_size)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise


def _worker_init(parent: int) -> None:
    """A decoding worker ends itself when the process that started it is gone (killed with SIGKILL, say)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="zspace-parent-watch", daemon=True).start()


def _compact(array_path: Path, n: int, bad: set[int]) -> np.ndarray:
    """Drop the rows of failed files from the array file; return the listing position of each kept row."""
    index = np.array([i for i in range(n) if i not in bad], dtype=np.int64)
    if bad:
        src = np.load(array_path, mmap_mode="r")
        compact = array_path.with_name("compact.npy")
        shape = (len(index), *src.shape[1:])
        dst = np.lib.format.open_memmap(compact, mode="w+", dtype=np.uint8, shape=shape)
        for s in range(0, len(index), 4096):
            dst[s : s + 4096] = src[index[s : s + 4096]]
        dst.flush()
        del src, dst
        compact.replace(array_path)
    return index


def _write_entry(
    tmp: Path,
    root: Path,
    files: list[str],
    index: np.ndarray,
    skipped: list[dict[str, str]],
    extra: dict[str, Any],
) -> None:
    np.save(tmp / "index.npy", index)
    (tmp / "files.txt").write_text("".join(files[i] + "\n" for i in index), encoding="utf-8")
    manifest = {
        "version": CACHE_VERSION,
        "dataset": extra["dataset"],
        "source": str(root),
        "size": extra["size"],
        "crop": extra["crop"],
        "limit": extra["limit"],
        "n_files": len(files),
        "n_images": len(index),
        "skipped": skipped,
        "seconds": extra["seconds"],
        "key": extra["key"],
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    (tmp / "owner.json").unlink()


def _report(root: Path, n_files: int, skipped: list[dict[str, str]], seconds: float) -> None:
    if skipped:
        names = ", ".join(s["file"] for s in skipped[:_SHOW]) + (", ..." if len(skipped) > _SHOW else "")
        logger.warning(
            "skipped %d of %d images in %s that could not be decoded: %s (see the cache manifest)",
            len(skipped),
            n_files,
            root,
            names,
        )
    logger.info(
        "decoded %d images in %.1f s (%.0f images/s)",
        n_files - len(skipped),
        seconds,
        n_files / max(seconds, 1e-9),
    )


def _move_into_place(tmp: Path, entry: Path, key: str, size: int) -> CachedImages:
    """Rename the finished build to the entry name; when another process was first, use its entry."""
    try:
        tmp.rename(entry)
    except OSError:
        if (theirs := _open_entry(entry, key, size)) is None:
            raise
        logger.info("another process built cache entry %s first; using it", entry)
        return theirs
    opened = _open_entry(entry, key, size)
    if opened is None:
        raise DataError(f"cache entry {entry} is unreadable right after it was written")
    return opened
