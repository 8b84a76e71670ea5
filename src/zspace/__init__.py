"""zspace: train convolutional AEs and VAEs on images and map their latent space.

The top-level names are imported lazily, so that processes which only decode images (the cache workers) do
not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "DataConfig": "zspace.config",
    "ModelConfig": "zspace.config",
    "RunConfig": "zspace.config",
    "TrainConfig": "zspace.config",
    "load_config": "zspace.config",
    "Run": "zspace.runs.folder",
    "load_run": "zspace.runs.folder",
    "load_dataset": "zspace.data",
    "Latents": "zspace.latents.embedding",
    "embed": "zspace.latents.embedding",
    "load_latents": "zspace.latents.embedding",
    "train_run": "zspace.train.run",
    "decode": "zspace.latents.generate",
    "interpolate": "zspace.latents.generate",
    "reconstruct": "zspace.latents.generate",
    "sample": "zspace.latents.generate",
    "fit_sampler": "zspace.latents.samplers",
    "analyze": "zspace.report.api",
    "compare": "zspace.report.api",
    "Report": "zspace.report.api",
    "explore": "zspace.explore.notebook",
    "export": "zspace.report.export",
    "wrap": "zspace.models.protocol",
    "load_pythae": "zspace.models.adapters.pythae",
    "load_autoencoder_kl": "zspace.models.adapters.diffusers",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zspace' has no attribute {name!r}")
