"""Datasets: loaders for digits, MNIST, CelebA, any image folder and UCI WIFI, and the decoded-image cache.

``load_dataset(cfg)`` returns a :class:`Dataset`; ``DATASETS`` is the registry (one module per dataset).
"""

from zspace.data.base import Dataset, DatasetSpec, Progress
from zspace.data.cache import cached_images
from zspace.data.files import decode_image, list_images
from zspace.data.registry import DATASETS, image_shape, load_dataset

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "Progress",
    "cached_images",
    "decode_image",
    "image_shape",
    "list_images",
    "load_dataset",
]
