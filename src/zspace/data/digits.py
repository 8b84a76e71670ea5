"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16), as uint8 images."""

from __future__ import annotations

import numpy as np

from zspace.config import DataConfig
from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.split import split_mask
from zspace.errors import ConfigError


def load(cfg: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load the digits, scaled from 0..16 to 0..255 (``round(v * 255 / 16)``).

    Parameters
    ----------
    cfg : ``path`` must be None; ``limit`` (> 0: the first ``limit`` images), ``test_fraction``,
        ``split_seed``.
    progress : unused.

    Returns
    -------
    Dataset with ``x`` of shape (N, 8, 8, 1), uint8, and ``labels`` (N,) int64 in 0..9.
    """
    if cfg.path is not None:
        raise ConfigError("dataset 'digits' ships with scikit-learn; data.path must be unset")
    from sklearn.datasets import load_digits  # slow import, only needed here

    bunch = load_digits()
    x = np.rint(bunch.images * 255 / 16).astype(np.uint8)[..., None]  # (N, 8, 8, 1)
    labels = bunch.target.astype(np.int64)
    if cfg.limit:
        x, labels = x[: cfg.limit], labels[: cfg.limit]
    return Dataset(
        name="digits",
        x=x,
        labels=labels,
        label_names=tuple(str(i) for i in range(10)),
        attributes=None,
        attribute_names=None,
        index=np.arange(len(x), dtype=np.int64),
        test_mask=split_mask(len(x), cfg.test_fraction, cfg.split_seed),
        source={
            "path": None,
            "cache": None,
            "cache_key": None,
            "n_skipped": 0,
            "origin": "sklearn.datasets.load_digits",
        },
    )


SPEC = DatasetSpec(load=load, default_image_size=8, channels=1, resizable=False)
