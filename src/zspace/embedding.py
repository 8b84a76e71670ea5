"""Encode a dataset into a latents folder that later analyses memory-map.

A latents folder holds one ``.npy`` file per array, written batch by batch into memory maps, so encoding
170,000 images x 256 dimensions never needs the whole array (let alone copies of it) in memory::

    z.npy (N, z_dim) float32    mu.npy, logvar.npy (VAE only)    index.npy (N,) int64: item in the source
    labels.npy (N,) int64       attributes.npy (N, A) int8       meta.json: run, split, names, eps_factor, seed
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.atomic import replace_dir
from zspace.data import Dataset, Progress
from zspace.errors import DataError
from zspace.models import LatentModel
from zspace.training import to_tensor

ARRAYS = ("z", "mu", "logvar")


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


def _check_replaceable(out: Path) -> None:
    """A latents folder is replaced whole; refuse anything else at ``out`` (``--out .`` must not wipe a folder)."""
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").is_file():
        raise DataError(f"{out} exists and is not a latents folder (no meta.json); choose another --out")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder; choose another --out")


def embed(
    model: LatentModel,
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
    """Encode the ``split`` of ``data`` and write a latents folder at ``out`` (replaced atomically)."""
    if not data.is_image:
        raise DataError(f"dataset {data.name!r} is tabular; only image datasets can be embedded")
    rows = data.indices(split)
    if len(rows) == 0:
        raise DataError(f"split {split!r} of dataset {data.name!r} is empty")
    old_factor = getattr(model, "eps_factor", None)
    if eps_factor is not None and old_factor is not None:
        model.eps_factor = eps_factor
    out = Path(out)
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        _write(model, data, rows, tmp, batch_size=batch_size, device=device, seed=seed, progress=progress)
        info = {
            "split": split,
            "n": len(rows),
            "z_dim": model.cfg.z_dim,
            "kind": model.kind,
            "seed": seed,
            "eps_factor": getattr(model, "eps_factor", None),
            "dataset": data.name,
            "label_names": data.label_names,
            "attribute_names": data.attribute_names,
            **(meta or {}),
        }
        (tmp / "meta.json").write_text(json.dumps(info, indent=2, default=list) + "\n")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if eps_factor is not None and old_factor is not None:
            model.eps_factor = old_factor
    return load_latents(out)


def _write(
    model: LatentModel, data: Dataset, rows: np.ndarray, tmp: Path, *, progress: Progress | None, **kw: Any
) -> None:
    n, z_dim = len(rows), model.cfg.z_dim
    names = ARRAYS if model.kind == "vae" else ("z",)
    maps = {k: np.lib.format.open_memmap(tmp / f"{k}.npy", "w+", np.float32, (n, z_dim)) for k in names}
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


def load_latents(path: str | Path) -> Latents:
    """Memory-map a latents folder written by :func:`embed` (read-only; nothing is copied)."""
    path = Path(path)
    if not (path / "z.npy").is_file():
        raise DataError(f"{path} is not a latents folder (no z.npy)")

    def arr(name: str) -> np.ndarray | None:
        f = path / f"{name}.npy"
        if not f.is_file():
            return None
        try:
            return np.load(f, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise DataError(f"latents file {f} is corrupt: {e}") from None

    meta_file = path / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    latents = Latents(
        z=arr("z"),
        index=arr("index"),
        mu=arr("mu"),
        logvar=arr("logvar"),
        labels=arr("labels"),
        attributes=arr("attributes"),
        meta=meta,
        path=path,
    )
    if latents.index is None or len(latents.index) != len(latents.z):
        raise DataError(f"latents folder {path} is inconsistent: index.npy is missing or differs from z in length")
    return latents
