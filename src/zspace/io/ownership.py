"""What zspace may replace or delete: only folders it can show it wrote, never the user's own files.

A run folder carries a marker file (``.zspace-run``) holding a random id; ``--overwrite`` replaces a folder only
when the marker is there (or, for runs made before the marker existed, a ``config.json`` that reads as a run
config beside an ``environment.json`` written by zspace) and the folder holds nothing but the entries zspace
writes. Training holds an exclusive lock on ``out_dir/.NAME.lock`` (``fcntl.flock``: released by the kernel when
the process dies, so a SIGKILL never leaves a stale lock) so two processes never train one run folder at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from zspace.errors import ConfigError

log = logging.getLogger(__name__)

RUN_MARKER = ".zspace-run"
# Top-level entries of a run folder that zspace itself writes (files, and folders of derived artifacts).
RUN_ENTRIES = frozenset(
    {
        RUN_MARKER,
        "config.json",
        "environment.json",
        "data.json",
        "history.csv",
        "model.safetensors",
        "checkpoint.safetensors",
        "checkpoints",
        "latents",
        "analysis",
        "samplers",
        "tensorboard",
        "explore",
        "quality",
    }
)


def write_marker(folder: Path) -> None:
    """Mark ``folder`` as a run folder zspace created."""
    payload = {"zspace": "run", "id": uuid.uuid4().hex, "created": time.time()}
    (Path(folder) / RUN_MARKER).write_text(json.dumps(payload) + "\n")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is a run folder zspace wrote (its marker, or a pre-marker run's config + environment)."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / RUN_MARKER).read_text())
        if isinstance(marker, dict) and marker.get("zspace") == "run":
            return True
    except (OSError, ValueError):
        pass
    try:
        env = json.loads((folder / "environment.json").read_text())
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(env, dict) and "zspace" in env and isinstance(cfg, dict) and {"data", "model", "train"} <= set(cfg)
    )


def foreign_entries(folder: Path) -> list[str]:
    """Top-level entries of a run folder that zspace did not write (its own temp files excepted)."""
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if p.name not in RUN_ENTRIES and not (p.name.startswith(".") and (".tmp" in p.name or ".old-" in p.name))
    )


def check_replaceable_run(path: Path) -> None:
    """Refuse, with one line, to replace ``path`` unless it is a zspace run folder holding only zspace's files."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"run folder {path} is a symbolic link; zspace replaces only folders it created")
    if not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder; choose another name or out_dir")
    if not is_run_folder(path):
        raise ConfigError(f"{path} is not a zspace run folder; --overwrite replaces only run folders zspace created")
    foreign = foreign_entries(path)
    if foreign:
        raise ConfigError(
            f"run folder {path} holds files zspace did not write ({', '.join(foreign[:3])}); move them or "
            "choose another name"
        )


@contextlib.contextmanager
def exclusive(lock: Path, what: str) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``lock`` (created if needed); a second holder gets a one-line error."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(f"{what} is in use by {holder}; wait for it or choose another") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        yield Path(lock)
    finally:
        os.close(fd)  # closing releases the flock


def lock_path(folder: Path, kind: str) -> Path:
    """A writers' lock for ``folder`` kept out of it (it may be the user's own), in the temp dir."""
    key = hashlib.sha256(str(Path(folder).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    locks = Path(tempfile.gettempdir()) / "zspace-locks"
    locks.mkdir(mode=0o1777, exist_ok=True)
    return locks / f"{kind}-{key}.lock"


def remove_stale(parent: Path, name: str) -> None:
    """Remove ``.NAME.tmp-*`` / ``.NAME.old-*`` folders an interrupted replace left (call with the lock held)."""
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for stale in Path(parent).glob(pattern):
            log.info("removing %s, left by an interrupted write", stale)
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def run_lock(out_dir: Path, name: str) -> Iterator[Path]:
    """Hold the exclusive training lock of run ``name``; a second holder gets a one-line :class:`ConfigError`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(out_dir / f".{name}.lock", f"run {out_dir / name} (being trained)") as lock:
        clean_stale_temps(out_dir, name)
        yield lock


def clean_stale_temps(out_dir: Path, name: str) -> None:
    """Remove what an interrupted write of run ``name`` left behind (called with the run's lock held)."""
    for tmp in Path(out_dir).glob(f".{name}.tmp-*"):
        log.info("removing %s, left by an interrupted run creation", tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    for old in Path(out_dir).glob(f".{name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    run = Path(out_dir) / name
    if run.is_dir() and not run.is_symlink():
        for tmp in run.glob(".*.tmp"):
            if tmp.is_file():
                log.info("removing %s, left by an interrupted write", tmp)
                tmp.unlink(missing_ok=True)
