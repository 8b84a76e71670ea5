"""What zspace may replace or delete: only files a manifest that zspace wrote records, by path and sha256.

One rule for every folder zspace writes (run folders, latents folders, report folders, generated images):

* A folder zspace writes holds a manifest, ``.zspace-manifest.json`` (written atomically), recording the
  relative path and sha256 of every file zspace put there, at every depth, and the folder's ``kind``. A
  subfolder with a manifest of its own (a run's ``latents/all`` or ``analysis``) accounts for itself.
* A folder is zspace's only if its manifest says so and every entry under it is accounted for with a matching
  hash; :func:`first_foreign` names the first one that is not (a user's file, a changed file, a link; an
  empty folder holds nothing to lose and is not foreign). zspace never deletes or replaces such a folder: the
  command refuses with one line naming that file.
* A single file is replaced only when the manifest above it records it with its current hash.
* Temporary names are zspace's own: ``.zspace-tmp-`` plus a random part, made with O_EXCL
  (:func:`tempfile.mkdtemp`), then given the umask's mode. Each temporary folder holds a proof file its
  creator keeps ``flock``-ed while it lives; a temporary folder is removed later only when it holds that proof
  and nobody holds the lock. No pattern built from user text ever selects what to delete.
* Writes into an owned folder go through :func:`zspace.io.atomic.atomic_write_bytes`, which records the new
  hash in the nearest manifest above the file (first as pending, then confirmed after the rename, so a kill at
  any moment leaves a file the manifest accounts for); folders are made with :func:`replace_folder`.

Runs made before manifests existed (a ``.zspace-run`` marker, or ``config.json`` + ``environment.json``, but no
manifest) cannot prove which files are zspace's: they are resumed and read as before, never replaced.

Training holds an exclusive lock on ``out_dir/.NAME.lock`` (``fcntl.flock``: released by the kernel when the
process dies, so a SIGKILL never leaves a stale lock) so two processes never train one run folder at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from zspace.errors import ConfigError

log = logging.getLogger(__name__)

RUN_MARKER = ".zspace-run"
MANIFEST = ".zspace-manifest.json"
MANIFEST_FORMAT = "zspace-manifest-1"
TMP_PREFIX = ".zspace-tmp-"
PROOF = ".zspace-temp"  # inside every temporary folder, flock-ed by its creator
_HEX = re.compile(r"[0-9a-f]{64}")


def umask() -> int:
    """The process's umask (read without changing it for longer than two calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- manifests ---------------------------------------------------------------------------------------------------


def _safe_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "." not in rel.split("/") and str(p) == rel


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder`` as ``{"kind", "files": {rel: sha256}, "pending": {...}}``, or None."""
    file = Path(folder) / MANIFEST
    if file.is_symlink() or not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT or not isinstance(raw.get("kind"), str):
        return None

    def entries(key: str) -> dict[str, str]:
        got = raw.get(key)
        got = got if isinstance(got, dict) else {}
        return {r: h for r, h in got.items() if _safe_rel(r) and isinstance(h, str) and _HEX.fullmatch(h)}

    kinds = raw.get("kinds") if isinstance(raw.get("kinds"), dict) else {}
    return {**raw, "files": entries("files"), "pending": entries("pending"), "kinds": kinds}


def write_manifest(folder: Path, kind: str, files: dict[str, str], **extra: Any) -> None:
    """Write the manifest of ``folder`` (atomically): ``files`` maps relative paths to their sha256."""
    payload = {"format": MANIFEST_FORMAT, "kind": kind, **extra, "files": dict(files)}
    replace_bytes(Path(folder) / MANIFEST, (json.dumps(payload, indent=1) + "\n").encode())


def replace_bytes(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` whole or not at all: written in zspace's own temp folder, fsynced, renamed."""
    path = Path(path)
    with temp_dir(path.parent) as tmp:
        fd = os.open(tmp / "data", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp / "data", path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def hash_tree(folder: Path) -> dict[str, str]:
    """sha256 of every plain file under ``folder`` (relative POSIX paths; the manifest itself excluded)."""
    folder = Path(folder)
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path != folder / MANIFEST:
            out[path.relative_to(folder).as_posix()] = sha256_file(path)
    return out


def first_foreign(folder: Path) -> str | None:
    """The first entry under ``folder`` that its manifest does not account for (a path), or None if all are.

    A folder without a manifest is foreign as a whole (its manifest's path is named).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return str(folder / MANIFEST)
    return _walk(folder, folder, manifest)


def _walk(root: Path, here: Path, manifest: dict[str, Any]) -> str | None:
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError:
        return str(here)
    for entry in entries:
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        if here == root and entry.name == MANIFEST:
            continue
        if entry.is_symlink():
            return str(path)
        if entry.is_dir() and is_zspace_temp(path):
            continue  # zspace's own temporary folder (a write in progress, or left by a killed one)
        if entry.is_dir():
            found = first_foreign(path) if read_manifest(path) is not None else _walk(root, path, manifest)
        elif not entry.is_file():
            found = str(path)
        else:
            known = {manifest["files"].get(rel), manifest["pending"].get(rel)} - {None}
            found = None if known and sha256_file(path) in known else str(path)
        if found:
            return found
    return None


def owner_of(path: Path) -> Path | None:
    """The nearest folder above ``path`` holding a manifest (the folder that accounts for ``path``), or None."""
    path = Path(os.path.normpath(Path(path).absolute()))
    for folder in path.parents:
        if folder.name.startswith(TMP_PREFIX):
            return None  # a folder being built: its manifest is written when it is complete
        if (folder / MANIFEST).is_file():
            return folder
    return None


@contextlib.contextmanager
def _manifest_lock(folder: Path) -> Iterator[None]:
    fd = os.open(lock_path(folder, "manifest"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for one read-modify-write of a small JSON file
        yield
    finally:
        os.close(fd)


def record(path: Path, sha256: str | None, *, pending: bool = False, kind: str | None = None) -> None:
    """Record (or, with ``sha256=None``, forget) file ``path`` in the manifest of the folder that owns it.

    ``pending`` records a hash about to be written while the old one stays valid: a kill between the write and
    the confirming call still leaves a file the manifest accounts for. ``kind`` notes which command wrote it when
    that is not the folder's own kind (a generated image in a report folder). No owner: nothing to do.
    """
    root = owner_of(path)
    if root is None:
        return
    rel = Path(os.path.normpath(Path(path).absolute())).relative_to(root).as_posix()
    with _manifest_lock(root):
        manifest = read_manifest(root)
        if manifest is None:
            return
        files, waiting, kinds = manifest["files"], manifest["pending"], manifest["kinds"]
        if pending and sha256:
            waiting[rel] = sha256
        else:
            waiting.pop(rel, None)
            files.pop(rel, None)
            kinds.pop(rel, None)
            if sha256:
                files[rel] = sha256
                if kind and kind != manifest["kind"]:
                    kinds[rel] = kind
        extra = {k: v for k, v in manifest.items() if k not in ("format", "kind", "files", "pending", "kinds")}
        write_manifest(root, manifest["kind"], files, pending=waiting, kinds=kinds, **extra)


# --- temporary folders -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def temp_dir(parent: Path) -> Iterator[Path]:
    """A new ``.zspace-tmp-XXXX`` folder in ``parent`` (O_EXCL, umask's mode), removed with what is left in it."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=TMP_PREFIX))
    fd = -1
    try:
        tmp.chmod(0o777 & ~umask())
        fd = os.open(tmp / PROOF, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"zspace": "temp", "pid": os.getpid(), "created": time.time()}).encode())
        yield tmp
    finally:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


def is_zspace_temp(path: Path) -> bool:
    """Whether ``path`` is a temporary folder zspace made: its name, and the proof file :func:`temp_dir` writes."""
    path = Path(path)
    proof = path / PROOF
    if not path.name.startswith(TMP_PREFIX) or path.is_symlink() or proof.is_symlink() or not proof.is_file():
        return False
    try:
        payload = json.loads(proof.read_bytes()[:4096] or b"{}")
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and payload.get("zspace") == "temp"


def remove_stale_temps(parent: Path) -> None:
    """Remove the temporary folders of dead zspace writers in ``parent``: those holding an unlocked proof file."""
    try:
        candidates = [e for e in os.scandir(parent) if e.name.startswith(TMP_PREFIX)]
    except OSError:
        return
    for entry in candidates:
        if entry.is_symlink() or not entry.is_dir():
            continue
        proof = Path(entry.path) / PROOF
        try:
            fd = os.open(proof, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # no proof: not provably a zspace temp, kept
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            payload = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            continue  # its writer is alive (or the proof is not ours)
        finally:
            os.close(fd)
        if isinstance(payload, dict) and payload.get("zspace") == "temp":
            log.info("removing %s, left by an interrupted zspace write", entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)


# --- replacing folders -------------------------------------------------------------------------------------------


def check_replaceable(target: Path, kind: str, legacy: Callable[[Path], bool] | None = None) -> None:
    """Refuse, with one line, to replace ``target`` unless it is absent or provably a ``kind`` folder of zspace's.

    ``legacy(target)`` may accept a folder made before manifests existed (the caller documents why it is safe).
    """
    target = Path(target)
    if target.is_symlink():
        raise ConfigError(f"{target} is a symbolic link; zspace replaces only folders it wrote")
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"{target} exists and is not a folder; choose another name")
    manifest = read_manifest(target)
    if manifest is None:
        if legacy is not None and legacy(target):
            return
        if not any(target.iterdir()):
            return  # an empty folder: nothing in it to lose
        raise ConfigError(f"{target} is not a zspace {kind} folder (it has no {MANIFEST}); choose another name")
    if manifest["kind"] != kind:
        raise ConfigError(f"{target} is a zspace {manifest['kind']} folder, not a {kind} folder; choose another name")
    foreign = first_foreign(target)
    if foreign:
        raise ConfigError(f"{foreign} was not written by zspace (or was changed since); move it or choose another name")


@contextlib.contextmanager
def replace_folder(target: Path, kind: str, legacy: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a new empty folder to fill; on success it becomes ``target`` with a manifest of every file in it.

    ``target`` is replaced only when :func:`check_replaceable` allows it, checked just before the swap with the
    folder's lock held (callers check first too, to refuse before doing the work); on an error nothing changes.
    """
    target = Path(os.path.normpath(Path(target).absolute()))
    if Path.cwd() == target or target in Path.cwd().parents:
        raise ConfigError(f"{target} is the current folder (or holds it); choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_path(target, kind), f"{kind} folder {target}"):
        remove_stale_temps(target.parent)
        with temp_dir(target.parent) as tmp:
            new = tmp / "new"
            new.mkdir()
            yield new
            write_manifest(new, kind, hash_tree(new), id=uuid.uuid4().hex, created=time.time())
            check_replaceable(target, kind, legacy)
            if target.exists():
                target.rename(tmp / "old")  # removed with the temporary folder
            new.rename(target)


# --- run folders -------------------------------------------------------------------------------------------------


def write_marker(folder: Path) -> None:
    """Mark ``folder`` as a run folder zspace created (a random id that latents refer to)."""
    payload = {"zspace": "run", "id": uuid.uuid4().hex, "created": time.time()}
    (Path(folder) / RUN_MARKER).write_text(json.dumps(payload) + "\n")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like a run (a manifest of kind run, a marker, or a pre-marker config+environment)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is not None:
        return manifest["kind"] == "run"
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


def check_replaceable_run(path: Path) -> None:
    """Refuse, with one line, to replace ``path`` unless it is a run folder whose every file zspace wrote."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and read_manifest(path) is None and is_run_folder(path):
        raise ConfigError(
            f"run folder {path} was made before zspace kept manifests, so it cannot show which files are its own; "
            "remove it yourself or choose another name"
        )
    check_replaceable(path, "run")


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


@contextlib.contextmanager
def run_lock(out_dir: Path, name: str) -> Iterator[Path]:
    """Hold the exclusive training lock of run ``name``; a second holder gets a one-line :class:`ConfigError`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_path(out_dir / name, "train"), f"run {out_dir / name} (being trained)") as lock:
        remove_stale_temps(out_dir)
        if (out_dir / name).is_dir() and not (out_dir / name).is_symlink():
            remove_stale_temps(out_dir / name)
        yield lock
