"""Build an :class:`~zspace.explore.data.Explorer` from anything :func:`zspace.report.resolve.resolve` takes.

A run folder gives its latents (encoded once if missing), its model and the images of its dataset, row-aligned
with the latents; a latents folder written by ``zspace embed --model`` gives its model (reloaded from the latents'
meta) and its images; embeddings files, tables and arrays give points without decoding. This one path serves the
command line (``zspace explore SOURCE``) and the notebook (``zspace.explore(...)``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.data import Dataset, Progress, load_dataset
from zspace.data.names import check_names
from zspace.errors import DataError, ZSpaceError
from zspace.explore.data import ExploreConfig, Explorer, validate
from zspace.io import ownership
from zspace.latents.embedding import Latents
from zspace.latents.freshness import run_latents
from zspace.report.resolve import resolve
from zspace.runs.folder import CONFIG, load_run
from zspace.sections.decode import dataset_rows

log = logging.getLogger(__name__)


def open_explorer(
    source: Any,
    *,
    split: str = "all",
    device: str | torch.device = "cpu",
    cfg: ExploreConfig | None = None,
    progress: Progress | None = None,
    table: Any = None,
    labels: Any = None,
    model: Any = None,
) -> Explorer:
    """The explorer of ``source``.

    Parameters
    ----------
    source : a run folder (latents of ``split`` from ``RUN/latents/SPLIT``, encoded if absent, re-encoded if the
        run's weights changed since; images and decoder), a latents folder (its run's or its ``embed --model``
        model decodes, refused in one line when the weights changed since), an embeddings file (``.npy``, ``.npz``,
        ``.safetensors``), a table (``.parquet``, ``.arrow``, ``.feather``, ``.csv``, with ``table``: the columns),
        a loaded ``Run`` / ``Latents``, or an array of shape (n_samples, z_dim).
    labels : array of shape (n_samples,) int, optional (arrays only).
    model : object with ``encode``/``decode``, optional: decodes clicked locations instead of the source's model.
    split, device, progress : a run's split, where its model runs and its missing latents are encoded.

    Returns
    -------
    Explorer
        Without a model the points, colours and images (where known) are shown and clicks decode nothing (logged).

    Raises :class:`~zspace.errors.ZSpaceError` for an input that is none of these, or latents of another model.
    A dataset that cannot be loaded any more is a warning: points and decoding still work, images do not.
    """
    cfg = cfg or ExploreConfig()
    validate(cfg)  # before any loading
    if isinstance(source, (str, Path)) and not Path(source).exists():
        raise DataError(f"{source} is not a run folder, a latents folder, an embeddings file nor a table: not found")
    if not (isinstance(source, (str, Path)) and (Path(source) / CONFIG).is_file() and model is None):
        return _resolved_explorer(source, split=split, device=device, cfg=cfg, progress=progress, table=table,
                                  labels=labels, model=model)  # fmt: skip
    path = Path(source)
    run = load_run(path, device=device)
    lat_dir = path / "latents" / split
    loaded: list[Dataset] = []

    def load_data() -> Dataset:  # only when the latents are missing or stale (zspace embed does this ahead of time)
        loaded.append(load_dataset(run.config.data, progress=progress))
        return loaded[0]

    latents, note = run_latents(run, split, load_data, device=device)
    log.info("explorer: %s", note)
    data = loaded[0] if loaded else None
    if latents.z.shape[1] != run.config.model.z_dim:
        raise DataError(f"latents in {lat_dir} have dimension {latents.z.shape[1]}, the run's model "
                        f"{run.config.model.z_dim}; re-encode them with zspace embed")  # fmt: skip
    if data is None:
        data = _try_dataset(run)
    images, train_mask = _aligned_images(latents, data)
    points = latents.mu if latents.mu is not None else latents.z
    log.info("explorer: %d points of dimension %d from %s", len(points), points.shape[1], lat_dir)
    return Explorer(
        np.asarray(points),
        model=run.model,
        images=images,
        labels=None if latents.labels is None else np.asarray(latents.labels),
        label_names=_label_names(run, latents),
        attributes=None if latents.attributes is None else np.asarray(latents.attributes),
        attribute_names=latents.meta.get("attribute_names"),
        train_mask=train_mask,
        name=run.config.name,
        tsne_cache=lat_dir,
        cfg=cfg,
    )


def _resolved_explorer(source: Any, *, split, device, cfg, progress, table, labels, model) -> Explorer:
    """The explorer of any source but a run folder without a given model (see :func:`open_explorer`)."""
    src = resolve(source, labels=labels, model=model, split=split, device=str(device), progress=progress, table=table)
    lat = src.latents
    decoder = src.model if src.model is not None else (src.run.model if src.run is not None else None)
    if decoder is None:
        log.info("explorer: %s comes without a model: its points are shown, clicks decode nothing", src.name)
    elif src.freshness:
        log.info("explorer: %s", src.freshness)
    data = src.dataset  # a run's, once loaded, or the images of ``zspace embed --model``'s latents
    if data is None and src.run is not None:
        data = _try_dataset(src.run)
    images, train_mask = _aligned_images(lat, data)
    points = lat.mu if lat.mu is not None else lat.z
    names = _label_names(src.run, lat) if src.run is not None else lat.meta.get("label_names")
    owned = lat.path is not None and ownership.read_manifest(Path(lat.path)) is not None
    return Explorer(
        np.asarray(points),
        model=decoder,
        images=images,
        labels=None if lat.labels is None else np.asarray(lat.labels),
        label_names=names,
        attributes=None if lat.attributes is None else np.asarray(lat.attributes),
        attribute_names=lat.meta.get("attribute_names"),
        train_mask=train_mask,
        name=src.name,
        tsne_cache=Path(lat.path) if owned else None,  # only in a folder zspace wrote; else kept in memory
        cfg=cfg,
    )


def _label_names(run, latents: Latents) -> list[str] | None:
    """The run's ``data.class_names`` (checked against the labels' count), else the names the latents carry."""
    names = run.config.data.class_names
    return check_names(names, latents.labels) if names else latents.meta.get("label_names")


def _try_dataset(run) -> Dataset | None:
    try:
        return load_dataset(run.config.data)
    except ZSpaceError as e:
        log.warning("the run's images cannot be loaded (%s); the explorer shows points without images", e)
        return None


def _aligned_images(latents: Latents, data: Dataset | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The dataset's images in the order of the latents (N, H, W, C) uint8, and which rows are training items."""
    if data is None or not data.is_image:
        return None, None
    rows = dataset_rows(data.index, np.asarray(latents.index))
    if (rows < 0).any():
        log.warning("%d latent points are not in the run's dataset any more; the explorer shows no images",
                    int((rows < 0).sum()))  # fmt: skip
        return None, None
    train = ~np.asarray(data.test_mask)[rows]
    if np.array_equal(rows, np.arange(len(data))):
        return data.x, train  # the whole dataset in order: no copy of a memory-mapped cache
    return _RowView(data.x, rows), train


class _RowView:
    """``x[rows[i]]`` without copying ``x`` (a memory map of the image cache may be larger than memory)."""

    def __init__(self, x: np.ndarray, rows: np.ndarray):
        self.x, self.rows = x, rows
        self.shape = (len(rows), *x.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[self.rows[i]]
