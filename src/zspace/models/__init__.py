"""Model registry: a new model is one module plus one line in ``MODELS``."""

from __future__ import annotations

from zspace.config import ModelConfig
from zspace.errors import ConfigError
from zspace.models.ae import AE
from zspace.models.base import Encoding, LatentModel, ModelOutput
from zspace.models.conv import conv_sizes
from zspace.models.vae import VAE

MODELS: dict[str, type[LatentModel]] = {
    "ae": AE,
    "vae": VAE,
}


def build_model(cfg: ModelConfig) -> LatentModel:
    """Build the model a resolved config describes (``image_size`` and ``channels`` set)."""
    if cfg.kind not in MODELS:
        raise ConfigError(f"unknown model {cfg.kind!r} (known: {', '.join(sorted(MODELS))})")
    if cfg.image_size < 1 or cfg.channels < 1:
        raise ConfigError("model.image_size and model.channels must be resolved from the data before building")
    return MODELS[cfg.kind](cfg)


__all__ = ["AE", "MODELS", "VAE", "Encoding", "LatentModel", "ModelOutput", "build_model", "conv_sizes"]
