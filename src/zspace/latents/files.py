"""Embeddings a user already has, as one file: ``.npy`` (N x d), ``.npz`` or ``.safetensors``.

``.npz`` and ``.safetensors`` hold ``z`` and optionally ``mu``, ``logvar`` (both or neither), ``labels`` (N,) and
``attributes`` (N, A); a ``.npy`` is ``z`` itself and is memory-mapped, never loaded whole. Nothing is unpickled.
The index of the points is 0..N-1. Checks are those of a latents folder: a numeric 2-D ``z`` with at least one
row, matching shapes, and rows with NaN or infinity counted and dropped.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from zspace.errors import DataError
from zspace.latents.embedding import Latents, checked

SUFFIXES = (".npy", ".npz", ".safetensors")
KEYS = ("z", "mu", "logvar", "labels", "attributes")


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _arrays(path: Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {"z": np.load(path, mmap_mode="r", allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        from safetensors.numpy import load_file

        return load_file(str(path))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"embeddings file {path} cannot be read ({_first_line(e)}); is it a {suffix} file?") from None
    except Exception as e:  # safetensors raises its own error type for a damaged header
        if type(e).__name__ == "SafetensorError":
            raise DataError(f"embeddings file {path} is corrupt ({_first_line(e)})") from None
        raise


def read_embeddings(path: str | Path, *, drop_nonfinite: bool = True) -> Latents:
    """The latents in one file (see the module's docstring); a :class:`DataError` names what is wrong."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: embeddings files are {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"not found: {path}")
    arrays = _arrays(path)
    if "z" not in arrays:
        raise DataError(
            f"embeddings file {path} has no array named 'z' (it has: {', '.join(sorted(arrays)) or 'none'})"
        )
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise DataError(f"embeddings file {path}: unknown array {unknown[0]!r} (known: {', '.join(KEYS)})")
    z = arrays["z"]
    if z.dtype == object:
        raise DataError(f"embeddings file {path}: z is not numeric")
    meta = {"source_file": str(path.resolve()), "kind": "vae" if "mu" in arrays else "ae"}
    lat = Latents(z=z, index=None, meta=meta, **{k: arrays.get(k) for k in KEYS[1:]})
    return checked(lat, f"embeddings file {path}", drop_nonfinite=drop_nonfinite)
