"""The dataset registry: one line per dataset, and the two functions that look a dataset up in it."""

from __future__ import annotations

import logging

from zspace.config import DataConfig
from zspace.data import celeba, digits, images, mnist, wifi
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.names import with_class_names
from zspace.errors import ConfigError

logger = logging.getLogger(__name__)

DATASETS: dict[str, DatasetSpec] = {
    "digits": digits.SPEC,
    "mnist": mnist.SPEC,
    "celeba": celeba.SPEC,
    "images": images.SPEC,
    "wifi": wifi.SPEC,
}


def get_spec(name: str) -> DatasetSpec:
    """The registered spec of dataset ``name``; ConfigError naming the known datasets otherwise."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")
    return DATASETS[name]


def image_shape(cfg: DataConfig) -> tuple[int, int]:
    """Image side and channels of the configured dataset, without loading it.

    Parameters
    ----------
    cfg : ``name`` and ``image_size`` (0 = the dataset's default).

    Returns
    -------
    (image_size, channels)

    Raises
    ------
    ConfigError
        for an unknown or tabular dataset, or a size that a fixed-size dataset does not have.
    """
    spec = get_spec(cfg.name)
    if spec.default_image_size is None or spec.channels is None:
        raise ConfigError(f"dataset {cfg.name!r} is tabular; image models need an image dataset")
    size = cfg.image_size or spec.default_image_size
    if not spec.resizable and size != spec.default_image_size:
        raise ConfigError(
            f"dataset {cfg.name!r} has a fixed image size of {spec.default_image_size}; "
            f"data.image_size must be 0 or {spec.default_image_size}, got {cfg.image_size}"
        )
    return size, spec.channels


def load_dataset(cfg: DataConfig, *, progress: Progress | None = None) -> Dataset:
    """Load the dataset ``cfg.name`` (images decoded once into the cache, reused afterwards).

    Parameters
    ----------
    cfg : the data section of a run config.
    progress : ``progress(done, total)``, called while images are decoded into a new cache entry.

    Returns
    -------
    Dataset: ``x`` of shape (N, H, W, C) uint8 for images, (N, F) float32 for tabular data.
    """
    spec = get_spec(cfg.name)
    if spec.default_image_size is not None:
        image_shape(cfg)  # a wrong size fails before any loading
    ds = with_class_names(spec.load(cfg, progress), cfg.class_names)  # data.class_names replace the defaults
    logger.info(
        "dataset %s: %d items (%d test), x %s %s",
        cfg.name,
        len(ds),
        int(ds.test_mask.sum()),
        ds.x.shape,
        ds.x.dtype,
    )
    return ds
