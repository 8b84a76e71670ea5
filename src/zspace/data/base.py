"""The loaded dataset (:class:`Dataset`) and the registry entry of a loader (:class:`DatasetSpec`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zspace.errors import ConfigError

if TYPE_CHECKING:
    from zspace.config import DataConfig

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called as decoding advances (the CLI wires a progress bar to it)."""

SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: the items, what is known about them, where they came from and the train/test split.

    Attributes
    ----------
    name : registry key of the dataset (``"mnist"``, ``"celeba"``, ...).
    x : ndarray of shape (N, H, W, C), uint8, for images (possibly a read-only ``np.memmap`` of the
        decoded-image cache), or of shape (N, F), float32, for tabular data.
    labels : ndarray of shape (N,), int64, the class of each item, or None.
    label_names : name of each class, indexed by label, or None.
    attributes : ndarray of shape (N, A), int8 in {-1, 0, 1} (0 = unknown), or None.
    attribute_names : name of each attribute column, or None.
    index : ndarray of shape (N,), int64: position of each item in its source (row of an idx file, position
        in the sorted file listing), to trace a latent point back to its file.
    test_mask : ndarray of shape (N,), bool: True for items of the test split.
    source : JSON-able provenance: ``path``, ``cache``, ``cache_key``, ``n_skipped`` and dataset extras.
    """

    name: str
    x: np.ndarray
    labels: np.ndarray | None
    label_names: tuple[str, ...] | None
    attributes: np.ndarray | None
    attribute_names: tuple[str, ...] | None
    index: np.ndarray
    test_mask: np.ndarray
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.x)
        for name in ("labels", "attributes", "index", "test_mask"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Dataset {self.name!r}: {name} has {len(value)} rows, x has {n}")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def is_image(self) -> bool:
        """True for image data, ``x`` of shape (N, H, W, C)."""
        return self.x.ndim == 4

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the images; :class:`ConfigError` for tabular data."""
        if not self.is_image:
            raise ConfigError(f"dataset {self.name!r} is tabular; it has no image shape")
        _, h, w, c = self.x.shape
        return int(h), int(w), int(c)

    def indices(self, split: str) -> np.ndarray:
        """Sorted row indices into ``x`` of a split.

        Parameters
        ----------
        split : ``"train"``, ``"test"`` or ``"all"``.

        Returns
        -------
        ndarray of shape (n,), int64. Select rows with ``x[idx]`` (batch by batch for a large memmap).
        """
        if split == "train":
            return np.flatnonzero(~self.test_mask).astype(np.int64)
        if split == "test":
            return np.flatnonzero(self.test_mask).astype(np.int64)
        if split == "all":
            return np.arange(len(self), dtype=np.int64)
        raise ConfigError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and the image geometry known without loading it.

    Attributes
    ----------
    load : ``load(cfg, progress) -> Dataset``.
    default_image_size : side of the images when ``data.image_size`` is 0; None for tabular data.
    channels : channels of the images (1 grey, 3 RGB); None for tabular data.
    resizable : False when the images come at one fixed size (``data.image_size`` must be 0 or that size).
    """

    load: Callable[[DataConfig, Progress | None], Dataset]
    default_image_size: int | None
    channels: int | None
    resizable: bool
