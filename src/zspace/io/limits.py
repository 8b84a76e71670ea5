"""What the machine can hold: estimate before allocating, and refuse with one line naming the key and the limit."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from zspace.errors import ConfigError, DataError


def available_memory() -> int:
    """Bytes of memory this process can still allocate (MemAvailable; the cgroup limit where lower)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            avail = 8 * 2**30
    for cgroup in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cgroup).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            avail = min(avail, int(raw))
    return avail


def human(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if not math.isfinite(nbytes):
        return "unbounded"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} EiB"  # pragma: no cover


def check_memory(nbytes: float, key: str, what: str, *, share: float = 0.8) -> None:
    """Refuse when ``what`` (set by config key ``key``) needs more than ``share`` of the available memory."""
    limit = share * available_memory()
    if not math.isfinite(nbytes) or nbytes > limit:
        raise ConfigError(f"{key}: {what} would need {human(nbytes)}, more than this machine can hold ({human(limit)})")


def check_disk(folder: Path, nbytes: int, what: str) -> None:
    """Refuse when ``folder``'s file system has less than ``nbytes`` free (a memory map would fault, not fail)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if nbytes > free:
        raise DataError(f"{what} needs {human(nbytes)} in {folder}, but only {human(free)} is free")


# --- work estimated before it starts ---------------------------------------------------------------------------
#
# A cost model per step: time = operations / RATE, with RATE measured on the development machine (2 shared CPU
# cores, float32 numpy / faiss). The estimates are deliberately coarse (within a factor of ~3); they exist to refuse
# work that would run for hours or exhaust memory, not to predict run time.

#: distance evaluations (point x centre x feature) per second of a k-means iteration, measured with faiss on 1 core
KMEANS_RATE = 2.0e9
#: Lloyd iterations assumed per fit when estimating (faiss' default niter is 25)
KMEANS_ITERS = 25
#: memory per image of a decoded grid (decoded batch + matplotlib figure): 18 GB measured for 100,000 MNIST images
GRID_BYTES_PER_IMAGE = 180_000
#: the longest a single analysis step may be estimated to take before it is refused (seconds)
TIME_BUDGET_S = 3600.0


def usable_threads(n: int, key: str = "--threads") -> tuple[int, str | None]:
    """``n`` capped at the machine's core count; returns ``(threads, note)``, the note None when not capped.

    ``n < 1`` is refused (ConfigError); ``n`` above ``os.cpu_count()`` is capped (a huge thread count made torch
    segfault) and the note says so, for the log and the report.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {n!r}")
    cores = os.cpu_count() or 1
    if n <= cores:
        return n, None
    return cores, f"{key}={n} capped at {cores}, the number of CPU cores"


def estimate_kmeans_seconds(n_points: int, n_features: int, ks, restarts: int = 1) -> float:
    """Seconds for ``restarts`` Lloyd fits at each k in ``ks``: ``sum(k) * n * d * iters * restarts / rate``."""
    return float(sum(int(k) for k in ks)) * n_points * n_features * KMEANS_ITERS * restarts / KMEANS_RATE


def check_time(seconds: float, key: str, what: str, *, budget: float = TIME_BUDGET_S) -> None:
    """Refuse when ``what`` (set by ``key``) is estimated to take longer than ``budget`` seconds."""
    if not math.isfinite(seconds) or seconds > budget:
        shown = "unbounded" if not math.isfinite(seconds) else f"{seconds:.3g} s"
        raise ConfigError(f"{key}: {what} would take about {shown}, more than the limit of {budget:.0f} s")


def check_count(n, key: str, per_item_bytes: float, what: str, *, share: float = 0.8) -> int:
    """Refuse a count (``--n``, ``n_probes``, ``splits``) that is not a positive integer or whose memory is too much.

    Returns the count as an int. Memory is ``n * per_item_bytes`` checked with :func:`check_memory`.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n != int(n) or n < 1:
        raise ConfigError(f"{key} must be a positive integer, got {n!r}")
    n = int(n)
    check_memory(float(n) * per_item_bytes, key, what, share=share)
    return n
