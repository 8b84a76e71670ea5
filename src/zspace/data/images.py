"""Any folder of JPEG/PNG images, decoded through the cache; class labels from first-level subfolders."""

from __future__ import annotations

import numpy as np

from zspace.config import DataConfig
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.cache import cached_images
from zspace.data.files import list_relpaths, require_folder
from zspace.data.split import split_mask
from zspace.errors import DataError

DEFAULT_SIZE = 96


def load(cfg: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load an image folder (``data.name = "images"``); see :func:`load_folder`."""
    return load_folder(cfg, progress, dataset="images")[0]


def load_folder(cfg: DataConfig, progress: Progress | None = None, *, dataset: str) -> tuple[Dataset, tuple[str, ...]]:
    """Decode the JPEG/PNG files under ``cfg.path`` (once, into the cache) and split them by split_seed.

    Parameters
    ----------
    cfg : ``path`` (folder), ``image_size`` (0 = 96), ``crop``, ``limit`` (decode only the first ``limit``
        files of the sorted listing), ``test_fraction``, ``split_seed``, ``strict``, ``cache_dir``,
        ``workers``.
    progress : ``progress(done, total)`` while decoding into a new cache entry.
    dataset : registry key, names the cache entry.

    Returns
    -------
    dataset : Dataset with ``x`` a read-only memmap of shape (N, S, S, 3), uint8, N = the files that
        decoded. ``labels`` is the index of each file's first-level subfolder when every file lies in one
        and there are >= 2 of them.
    files : relative POSIX path of the source file of each row of ``x``.
    """
    root = require_folder(cfg.path, dataset, "the folder with the images")
    files = list_relpaths(root)
    if not files:
        raise DataError(f"no .jpg/.jpeg/.png images in {root}")
    cached = cached_images(
        root,
        files[: cfg.limit] if cfg.limit else files,
        dataset=dataset,
        size=cfg.image_size or DEFAULT_SIZE,
        crop=cfg.crop,
        limit=cfg.limit,
        cache_dir=cfg.cache_dir,
        workers=cfg.workers,
        strict=cfg.strict,
        progress=progress,
    )
    folders = subfolder_classes(files)
    labels = None
    if folders is not None:
        label_of = {name: i for i, name in enumerate(folders)}
        labels = np.array([label_of[rel.split("/")[0]] for rel in cached.files], dtype=np.int64)
    source = {
        "path": str(root.resolve()),
        "cache": str(cached.path),
        "cache_key": cached.key,
        "n_skipped": len(cached.manifest["skipped"]),
        "n_files": cached.manifest["n_files"],
    }
    test_mask = split_mask(len(cached.index), cfg.test_fraction, cfg.split_seed)
    ds = Dataset(
        name=dataset,
        x=cached.images,
        labels=labels,
        label_names=folders,
        attributes=None,
        attribute_names=None,
        index=cached.index,
        test_mask=test_mask,
        source=source,
    )
    return ds, cached.files


def subfolder_classes(rels: list[str]) -> tuple[str, ...] | None:
    """Sorted first-level subfolder names when every path lies in one and there are >= 2, else None."""
    if any("/" not in rel for rel in rels):
        return None
    names = sorted({rel.split("/")[0] for rel in rels})
    return tuple(names) if len(names) >= 2 else None


SPEC = DatasetSpec(load=load, default_image_size=DEFAULT_SIZE, channels=3, resizable=True)
