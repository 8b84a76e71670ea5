"""Encode a dataset into a latents folder that later analyses memory-map.

A latents folder holds one ``.npy`` file per array, written batch by batch into memory maps, so encoding
170,000 images x 256 dimensions never needs the whole array (let alone copies of it) in memory::

    z.npy (N, z_dim) float32    mu.npy, logvar.npy (VAE only)    index.npy (N,) int64: item in the source
    labels.npy (N,) int64       attributes.npy (N, A) int8       meta.json: run, split, names, eps_factor, seed
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.data import Dataset, Progress
from zspace.errors import ConfigError, DataError
from zspace.io import ownership
from zspace.io.limits import check_disk, check_memory
from zspace.models import LatentModel, check_batch_size
from zspace.models.inputs import to_tensor
from zspace.models.protocol import as_model

log = logging.getLogger(__name__)

ARRAYS = ("z", "mu", "logvar")
REAL = "iuf"  # dtype kinds of real numbers: complex, boolean, text, dates and objects are refused
MAX_ABS = 1e15  # larger finite values overflow the analyses' squares and sums (radius, PCA, k-means) to infinity


@dataclass
class Latents:
    """Encoder outputs of a dataset split; arrays are read-only memory maps when loaded from disk.

    ``z``, ``mu``, ``logvar`` : ndarray of shape (n_samples, z_dim); ``mu``/``logvar`` are None for an AE.
    ``index`` : ndarray of shape (n_samples,), the item of each row in its source dataset.
    """

    z: np.ndarray
    index: np.ndarray
    mu: np.ndarray | None = None
    logvar: np.ndarray | None = None
    labels: np.ndarray | None = None
    attributes: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.z)


@torch.no_grad()
def encode_batches(
    model: LatentModel,
    x: np.ndarray,
    rows: np.ndarray,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Encode ``x[rows]`` in order, one dict of (B, z_dim) float32 arrays (``z`` [, ``mu``, ``logvar``]) a batch."""
    device = torch.device(device)
    model.eval().to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, len(rows), batch_size):
        batch_rows = rows[start : start + batch_size]
        enc = model.encode(to_tensor(x[batch_rows], device), generator=gen)
        yield {k: getattr(enc, k).float().cpu().numpy() for k in ARRAYS if getattr(enc, k) is not None}


LEGACY_FILES = frozenset({*(f"{k}.npy" for k in (*ARRAYS, "index", "labels", "attributes")), "meta.json"})


def _is_legacy_latents(folder: Path) -> bool:
    """A latents folder written before manifests: only the plain files embed writes, and a latents meta.json.

    Such a folder holds nothing a user could have added (any other name, subfolder or link makes it foreign),
    so replacing it loses only what zspace wrote.
    """
    entries = list(folder.iterdir())
    if not entries or any(p.name not in LEGACY_FILES or p.is_symlink() or not p.is_file() for p in entries):
        return False
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and {"split", "n", "z_dim", "kind"} <= set(meta) and (folder / "z.npy").is_file()


def _check_replaceable(out: Path) -> None:
    """A latents folder is replaced whole, and only when zspace wrote every file in it (see zspace.io.ownership)."""
    ownership.check_replaceable(out, "latents", legacy=_is_legacy_latents)


def embed(
    model: Any,
    data: Dataset,
    out: str | Path,
    *,
    split: str = "all",
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    eps_factor: float | None = None,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Latents:
    """Encode the ``split`` of ``data`` and write a latents folder at ``out`` (replaced atomically).

    ``model`` is a zspace model, a :class:`~zspace.models.protocol.ModelAdapter` (``zspace.wrap``, pythae,
    diffusers) or a model of a library zspace adapts (see :func:`zspace.models.protocol.as_model`); an adapter's
    images must have the data's size, and its description goes into ``meta.json`` (``"model"``).
    """
    if not data.is_image:
        raise DataError(f"dataset {data.name!r} is tabular; only image datasets can be embedded")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"embed batch size must be an integer >= 1, got {batch_size!r}")
    if eps_factor is not None and not (math.isfinite(eps_factor) and eps_factor >= 0):
        raise ConfigError(f"eps_factor must be a finite number >= 0, got {eps_factor!r}")
    rows = data.indices(split)
    if len(rows) == 0:
        raise DataError(f"split {split!r} of dataset {data.name!r} is empty")
    model = as_model(model)
    _check_model_fits(model, data, min(batch_size, len(rows)))
    out = Path(out)
    _check_replaceable(out)
    n_arrays = len(ARRAYS) if model.kind == "vae" else 1
    need = len(rows) * (
        4 * model.cfg.z_dim * n_arrays + 8 * 2 + (data.attributes.shape[1] if data.attributes is not None else 0)
    )
    check_disk(out.parent, need + (1 << 20), f"writing {len(rows):,} latents")  # a full disk would fault the memory map
    out.parent.mkdir(parents=True, exist_ok=True)
    return _embed_into(model, data, out, rows, split, batch_size, device, eps_factor, seed, meta, progress)


def _check_model_fits(model: Any, data: Dataset, batch: int) -> None:
    """A zspace model's batch checked against memory by its layers; an adapter's by its input batch, and its image
    shape against the data's (a foreign model does not adapt to the data)."""
    if isinstance(model, LatentModel):
        check_batch_size(model.cfg, batch, "embed batch size", training=False)
        return
    size, c = model.cfg.image_size, model.cfg.channels
    if tuple(data.image_shape) != (size, size, c):
        raise DataError(
            f"the model takes {size}x{size} images with {c} channel(s), dataset {data.name!r} has "
            f"{'x'.join(map(str, data.image_shape))} (H x W x C): load the data at the model's size"
        )
    check_memory(4.0 * batch * c * size * size, "embed batch size", f"a batch of {batch:,} images of {size}x{size}")


def _embed_into(model, data, out, rows, split, batch_size, device, eps_factor, seed, meta, progress) -> Latents:
    """Encode into a temporary folder beside ``out`` and swap it in (with the folder's lock held)."""
    old_factor = getattr(model, "eps_factor", None)
    if eps_factor is not None and old_factor is not None:
        model.eps_factor = eps_factor
    try:
        with ownership.replace_folder(out, "latents", legacy=_is_legacy_latents) as tmp:
            _write_folder(model, data, tmp, rows, split, batch_size, device, seed, meta, progress)
    finally:
        if eps_factor is not None and old_factor is not None:
            model.eps_factor = old_factor
    return load_latents(out)


def _write_folder(model, data, tmp, rows, split, batch_size, device, seed, meta, progress) -> None:
    """The arrays and meta.json of a latents folder, into the new folder ``tmp``."""
    _write(model, data, rows, tmp, batch_size=batch_size, device=device, seed=seed, progress=progress)
    info = {
        "split": split,
        "n": len(rows),
        "z_dim": model.cfg.z_dim,
        "kind": model.kind,
        "seed": seed,
        "eps_factor": getattr(model, "eps_factor", None),
        **({"model": model.info} if isinstance(getattr(model, "info", None), dict) else {}),
        "dataset": data.name,
        "label_names": data.label_names,
        "attribute_names": data.attribute_names,
        **(meta or {}),
    }
    (tmp / "meta.json").write_text(json.dumps(info, indent=2, default=list) + "\n")


def _write(
    model: LatentModel, data: Dataset, rows: np.ndarray, tmp: Path, *, progress: Progress | None, **kw: Any
) -> None:
    n, z_dim = len(rows), model.cfg.z_dim
    names = ARRAYS if model.kind == "vae" else ("z",)
    maps = {k: _preallocated(tmp / f"{k}.npy", (n, z_dim)) for k in names}
    done = 0
    for arrays in encode_batches(model, data.x, rows, **kw):
        b = len(arrays["z"])
        for k, m in maps.items():
            m[done : done + b] = arrays[k]
        done += b
        if progress:
            progress(done, n)
    for m in maps.values():
        m.flush()
    del maps
    np.save(tmp / "index.npy", np.asarray(data.index)[rows].astype(np.int64))
    if data.labels is not None:
        np.save(tmp / "labels.npy", np.asarray(data.labels)[rows].astype(np.int64))
    if data.attributes is not None:
        np.save(tmp / "attributes.npy", np.asarray(data.attributes)[rows].astype(np.int8))


def _preallocated(path: Path, shape: tuple[int, int]) -> np.memmap:
    """A float32 .npy memory map whose blocks are allocated now: a full disk is ENOSPC here, not SIGBUS later."""
    m = np.lib.format.open_memmap(path, "w+", np.float32, shape)
    with path.open("r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, path.stat().st_size)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    return m


def load_latents(path: str | Path, *, drop_nonfinite: bool = True) -> Latents:
    """Memory-map a latents folder written by :func:`embed` (read-only; nothing is copied).

    The arrays are checked against each other (2-D ``z`` with at least one row, ``mu``/``logvar`` of its shape,
    ``index``/``labels``/``attributes`` of its length); a corrupt ``meta.json`` or a mismatch is a
    :class:`~zspace.errors.DataError`. Rows with NaN or infinity in z/mu/logvar are counted, logged and dropped
    (``meta["nonfinite_dropped"]``), or refused when ``drop_nonfinite`` is false or no finite row is left.
    """
    path = Path(path)
    if not (path / "z.npy").is_file():
        raise DataError(f"{path} is not a latents folder (no z.npy)")

    def arr(name: str) -> np.ndarray | None:
        f = path / f"{name}.npy"
        if not f.is_file():
            return None
        try:
            return np.load(f, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"latents file {f} is corrupt: {str(e).splitlines()[0] if str(e) else e}") from None

    latents = Latents(
        z=arr("z"),
        index=arr("index"),
        mu=arr("mu"),
        logvar=arr("logvar"),
        labels=arr("labels"),
        attributes=arr("attributes"),
        meta=_read_meta(path),
        path=path,
    )
    return checked(latents, f"latents folder {path}", drop_nonfinite=drop_nonfinite)


def checked(latents: Latents, what: str, *, drop_nonfinite: bool = True) -> Latents:
    """``latents`` with its shapes checked (``what`` names the source in errors), the index 0..N-1 where there is
    none (``meta["index_default"]``), and rows with NaN or infinity dropped (or refused)."""
    check_shapes(latents, what)
    if latents.index is None:
        latents.index = np.arange(len(latents.z))
        latents.meta = {**latents.meta, "index_default": True}
    return drop_nonfinite_rows(latents, what, refuse=not drop_nonfinite)


def _read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return {}
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"latents metadata {meta_file} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise DataError(f"latents metadata {meta_file} must be a JSON object, got {type(meta).__name__}")
    return meta


def check_shapes(lat: Latents, what: str) -> None:
    """z is (N >= 1, D >= 1) numeric; mu/logvar match it; per-row arrays (index too, when given) have N rows."""
    z = lat.z
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1 or z.dtype.kind not in REAL:
        raise DataError(
            f"{what}: z must be a numeric (n_samples >= 1, z_dim >= 1) array of real numbers, got {z.shape} {z.dtype}"
        )
    for name in ("mu", "logvar"):
        a = getattr(lat, name)
        if a is not None and a.dtype.kind not in REAL:
            raise DataError(f"{what}: {name} must be real numbers, got dtype {a.dtype}")
        if a is not None and a.shape != z.shape:
            raise DataError(f"{what}: {name} has shape {a.shape}, z has {z.shape}")
    if (lat.mu is None) != (lat.logvar is None):
        raise DataError(f"{what}: mu and logvar come together (one is missing)")
    if lat.index is not None and lat.index.shape != (len(z),):
        raise DataError(f"{what} is inconsistent: index differs from z in length ({lat.index.shape} vs {len(z):,})")
    for name in ("labels", "attributes"):
        a = getattr(lat, name)
        if a is not None and (a.ndim < 1 or len(a) != len(z) or (name == "labels" and a.ndim != 1)):
            raise DataError(f"{what}: {name} has shape {a.shape}, but z has {len(z):,} rows")
    if lat.labels is not None and lat.labels.dtype.kind not in "iu":  # floats were truncated, NaN became -2^63
        raise DataError(f"{what}: labels must be integers (class codes), got dtype {lat.labels.dtype}")
    if lat.attributes is not None and lat.attributes.dtype.kind not in REAL + "b":
        raise DataError(f"{what}: attributes must be numbers, got dtype {lat.attributes.dtype}")


def drop_nonfinite_rows(lat: Latents, what: str, *, refuse: bool, chunk: int = 65536) -> Latents:
    names = [k for k in ARRAYS if getattr(lat, k) is not None]
    good = np.ones(len(lat.z), dtype=bool)
    for start in range(0, len(lat.z), chunk):  # chunked: a million rows never need a full-size temporary
        for k in names:
            block = getattr(lat, k)[start : start + chunk]
            finite = np.isfinite(block)
            good[start : start + chunk] &= finite.all(axis=1)
            huge = np.abs(np.where(finite, block, 0)) > MAX_ABS
            if huge.any():
                row, col = np.argwhere(huge)[0]
                value = float(block[row, col])
                raise DataError(
                    f"{what}: {k} holds {value:.3g} (row {start + int(row)}); zspace's analyses need |values| <= "
                    f"{MAX_ABS:.0e} (their squares and sums must stay finite)"
                )
    bad = int((~good).sum())
    if bad == 0:
        return lat
    first = int(np.flatnonzero(~good)[0])
    what = f"{what}: {bad:,} of {len(good):,} rows hold NaN or infinity (first: row {first})"
    if refuse or bad == len(good):
        raise DataError(what + ("; no finite row is left" if bad == len(good) else ""))
    log.warning("%s; they are dropped", what)
    keep = np.flatnonzero(good)
    rows = {
        k: None if getattr(lat, k) is None else np.asarray(getattr(lat, k))[keep]
        for k in (*ARRAYS, "index", "labels", "attributes")
    }
    meta = {**lat.meta, "nonfinite_dropped": bad, "nonfinite_first_row": first}
    return Latents(meta=meta, path=lat.path, **rows)
