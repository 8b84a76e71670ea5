"""One resolver: any input (run folder, latents folder, embeddings file, a loaded run or latents, arrays in memory)
becomes the one :class:`~zspace.report.analyze.Source` the analyses read: latents, optional run and model, a name.

Each file is loaded once: a run's dataset loaded to encode its missing latents is kept for the analyses, and the
run of a latents folder is loaded once from its meta. A ``model`` is a zspace model or an adapter around another
library's model (:mod:`zspace.models.protocol`); it is used instead of the run's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import ConfigError, DataError
from zspace.latents.embedding import Latents, checked
from zspace.models.protocol import as_model
from zspace.report.analyze import Source, open_source, run_source

log = logging.getLogger(__name__)


def as_array(x: Any, what: str) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor (detached, on the CPU) or a nested list."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if x.is_floating_point() and str(x.dtype) not in ("torch.float16", "torch.float32", "torch.float64"):
            x = x.float()  # bfloat16 and the float8 types have no numpy dtype
        x = x.numpy()
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise DataError(f"{what} is not an array ({str(e).splitlines()[0]})") from None
    if a.dtype == object:
        raise DataError(f"{what} is not a numeric array (ragged or mixed values)")
    return a


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, Path))


def latents_of_arrays(
    z: Any, *, labels: Any = None, mu: Any = None, logvar: Any = None, attributes: Any = None
) -> Latents:
    """Checked latents from arrays in memory: ``z`` (n_samples, z_dim), ``mu``/``logvar`` of its shape (both or
    neither), ``labels`` (n_samples,) int, ``attributes`` (n_samples, A); the index is 0..N-1 and rows with NaN
    or infinity are dropped (with a warning), as for a latents folder."""
    arrays = {k: None if v is None else as_array(v, k) for k, v in
              (("z", z), ("mu", mu), ("logvar", logvar), ("labels", labels), ("attributes", attributes))}  # fmt: skip
    if arrays["z"] is None:
        raise ConfigError("no latents given: z is None")
    for key in ("z", "mu", "logvar"):  # real numbers only (complex, boolean, text and dates are refused)
        if arrays[key] is not None and arrays[key].dtype.kind not in "iuf":
            raise DataError(f"{key} must be a real-valued (n_samples, z_dim) array, got dtype {arrays[key].dtype}")
    zz = arrays.pop("z")
    lab = arrays["labels"]
    if lab is not None and lab.ndim == 1 and len(lab) and not np.issubdtype(lab.dtype, np.integer):
        raise DataError(f"labels must be integers (n_samples,), got dtype {lab.dtype}")
    meta = {"kind": "vae" if arrays["mu"] is not None else "ae", "source": "memory"}
    return checked(Latents(z=zz, index=None, meta=meta, **arrays), "latents given in memory")


def resolve(
    source: Any,
    *,
    labels: Any = None,
    mu: Any = None,
    logvar: Any = None,
    model: Any = None,
    name: str | None = None,
    split: str = "all",
    device: str = "cpu",
    progress: Any = None,
    table: Any = None,
) -> Source:
    """The :class:`Source` of ``source``.

    Parameters
    ----------
    source : str or Path (run folder, latents folder, ``.npy``/``.npz``/``.safetensors`` file), a loaded
        :class:`~zspace.runs.folder.Run` or :class:`~zspace.latents.embedding.Latents`, or an array of shape
        (n_samples, z_dim) (numpy, torch, or anything ``np.asarray`` takes).
    labels : array of shape (n_samples,) int, optional; only with arrays in memory.
    mu, logvar : arrays of shape (n_samples, z_dim), optional, both or neither; only with arrays in memory.
    model : a zspace model, ``zspace.wrap(...)`` or another adapter, or a pythae / diffusers model (wrapped here),
        optional; put in eval mode, it replaces the run's model where there is one. Anything else is a one-line
        ConfigError (:func:`zspace.models.protocol.as_model`).
    name : the display name (default: the run's name, the folder's or file's name, or ``"latents"``).
    split, device, progress : a run's split, and where/how its missing latents are encoded.
    table : :class:`~zspace.latents.tables.TableColumns`, optional; the columns of a ``.parquet``, ``.arrow``,
        ``.feather`` or ``.csv`` table (embedding, labels, attributes).

    Returns
    -------
    Source
    """
    extra = [k for k, v in (("labels", labels), ("mu", mu), ("logvar", logvar)) if v is not None]
    if extra and not _is_array_like(source):
        raise ConfigError(f"{extra[0]}= goes with arrays in memory; a folder or file carries its own")
    src = _resolve(source, labels=labels, mu=mu, logvar=logvar, split=split, device=device, progress=progress,
                   table=table)  # fmt: skip
    if model is not None:
        src.model = as_model(model).eval()  # a pythae/diffusers model is wrapped; anything else is one line
    if name:
        src.name = name
    return src


def _is_array_like(x: Any) -> bool:
    return not _is_path(x) and not isinstance(x, Latents) and not _is_run(x)


def _is_run(x: Any) -> bool:
    from zspace.runs.folder import Run

    return isinstance(x, Run)


def _resolve(source: Any, *, labels, mu, logvar, split, device, progress, table=None) -> Source:
    if _is_path(source):
        return open_source(source, split=split, device=device, progress=progress, table=table)
    if table is not None:
        raise ConfigError("table= (the columns of a table) goes with a table file")
    if isinstance(source, Latents):
        lat = checked(source, "latents given in memory")
        name = Path(lat.path).name if lat.path is not None else "latents"
        return Source(lat, None, name, Path(lat.path) if lat.path is not None else Path.cwd())
    if _is_run(source):
        return run_source(source, split=split, device=device, progress=progress)
    lat = latents_of_arrays(source, labels=labels, mu=mu, logvar=logvar)
    return Source(lat, None, "latents", Path.cwd())
