"""What the CelebA studies share: the data location, run configs built from the shipped ones, decoded grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from zspace.config import RunConfig, load_config
from zspace.demo import packaged_config
from zspace.errors import DataError
from zspace.figures.training import image_grid

SHARED = Path("img_align_celeba_89x109")


def resolve_data(data: str | None) -> Path:
    """The CelebA folder: ``data``, else ../shared/data/celeba/img_align_celeba_89x109 from here or the repo."""
    if data:
        return Path(data)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / "celeba" / SHARED
        if candidate.is_dir():
            return candidate
    raise DataError("no CelebA folder given and none found at ../shared/data/celeba; pass --data DIR")


def celeba_config(
    base: str, path: Path, *, name: str, out_dir: Path, epochs: int, limit: int, seed: int, device: str = "auto"
) -> RunConfig:
    """A shipped CelebA config with the study's data, size, epochs and seed."""
    sets = [
        f"name={name!r}",
        f"out_dir={str(out_dir)!r}",
        f"data.path={str(path)!r}",
        f"train.epochs={epochs}",
        f"data.limit={limit}",
        f"train.seed={seed}",
        f"train.device={device!r}",
    ]
    return load_config(packaged_config(base), sets)


@torch.no_grad()
def decode_gaussian_grid(model: torch.nn.Module, *, n: int = 32, seed: int = 0, scale: float = 1.0) -> Figure:
    """Images decoded from z ~ N(0, scale^2 I) on a grid."""
    z = torch.randn(n, model.cfg.z_dim, generator=torch.Generator().manual_seed(seed)) * scale
    images = model.decode(z).permute(0, 2, 3, 1).numpy()
    return image_grid(np.asarray(images), ncols=8)
