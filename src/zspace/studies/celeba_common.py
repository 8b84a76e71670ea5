"""What the CelebA studies share: run configs built from the shipped ones, decoded grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from zspace.config import RunConfig, load_config, packaged_config
from zspace.figures.training import image_grid


def celeba_config(
    base: str, path: Path, *, name: str, out_dir: Path, epochs: int, limit: int, seed: int, device: str = "auto"
) -> RunConfig:
    """A shipped CelebA config with the study's data, size, epochs and seed (typed overrides, checked as a run's)."""
    changes = [
        ("name", name),
        ("out_dir", str(out_dir)),
        ("data.path", str(path)),
        ("train.epochs", epochs),
        ("data.limit", limit),
        ("train.seed", seed),
        ("train.device", device),
    ]
    return load_config(packaged_config(base), changes)


def decode_gaussian_grid(model, *, n: int = 32, seed: int = 0, scale: float = 1.0) -> Figure:
    """Images decoded from z ~ N(0, scale^2 I) on a grid."""
    z = np.random.default_rng(seed).standard_normal((n, model.cfg.z_dim)).astype(np.float32) * np.float32(scale)
    return image_grid(model.decode_images(z), ncols=8)
