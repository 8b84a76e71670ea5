"""Writes that readers never see half-done: a file replaced in one rename, recorded in the manifest that owns it.

The new bytes are written in a temporary folder of zspace's own (see :func:`zspace.io.ownership.temp_dir`) beside
the target, fsynced and renamed over it. When a folder above the file holds a zspace manifest, the new sha256 is
recorded there first as pending and confirmed after the rename, so the folder stays provably zspace's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from zspace.errors import ConfigError
from zspace.io import ownership


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    Inside a folder a zspace manifest accounts for, a file already at ``path`` is replaced only when the manifest
    records it with its current hash (:func:`check_owned_file`): a user's file at a name zspace writes (a kept
    checkpoint, a cached map, the weights after a hand edit) is refused in one line, for every writer at once.
    """
    path = Path(path)
    owned = path.name != ownership.MANIFEST and ownership.owner_of(path) is not None
    digest = hashlib.sha256(data).hexdigest() if owned else None
    if owned:
        check_owned_file(path, "move it away first")
        ownership.record(path, digest, pending=True)
    ownership.replace_bytes(path, data)
    if owned:
        ownership.record(path, digest)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def check_owned_file(path: Path, remedy: str = "choose another --out") -> Path | None:
    """Refuse ``path`` unless it is absent or a plain file a zspace manifest records with its current hash; the
    folder whose manifest governs it (None when no folder above holds one). ``remedy`` ends the one-line error."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ConfigError(f"{path} is not a plain file zspace wrote; {remedy}")
    root = ownership.owner_of(path)
    if path.exists():
        manifest = ownership.read_manifest(root) if root else None
        rel = Path(os.path.normpath(path.absolute())).relative_to(root).as_posix() if root else ""
        known = {manifest["files"].get(rel), manifest["pending"].get(rel)} - {None} if manifest else set()
        if ownership.sha256_file(path) not in known:
            raise ConfigError(f"{path} exists and was not written by zspace (or was changed since); {remedy}")
    return root


LOOSE_KINDS = ("images", "export", "samplers")  # single files zspace writes into any folder (a grid, a table)


def write_owned_file(path: Path, data: bytes, kind: str, remedy: str = "choose another --out") -> None:
    """Write a file zspace makes for the user (a generated image, an export): a file already at ``path`` is
    replaced only when a zspace manifest records it with its current hash (:func:`check_owned_file`); the new file
    is recorded (in ``path``'s folder's manifest when no folder above holds one)."""
    path = Path(path)
    root = check_owned_file(path, remedy)
    path.parent.mkdir(parents=True, exist_ok=True)
    if root is None:
        ownership.write_manifest(path.parent, kind, {})
    atomic_write_bytes(path, data)
    ownership.record(path, hashlib.sha256(data).hexdigest(), kind=kind)
