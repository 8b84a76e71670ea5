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
