"""Model registry: a new model is one module plus one line in ``MODELS``.

Models trained elsewhere come in through :mod:`zspace.models.protocol` (``wrap``, ``ModelAdapter``, ``as_model``)
and the adapters in :mod:`zspace.models.adapters`.
"""

from __future__ import annotations

import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.errors import ConfigError
from zspace.io.limits import check_memory
from zspace.models.ae import AE
from zspace.models.base import Encoding, LatentModel, ModelOutput
from zspace.models.conv import conv_sizes
from zspace.models.protocol import Model, ModelAdapter, ModelShape, as_model, wrap
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
    check_model_size(cfg)
    model = MODELS[cfg.kind](cfg)
    if cfg.init == "glorot":
        glorot_init(model)
    return model


def glorot_init(model: nn.Module) -> None:
    """Keras' defaults: Glorot-uniform kernels and zero biases for every Dense and (transposed) convolution."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(cfg: ModelConfig) -> int:
    """Parameters of the model ``cfg`` describes, counted on the meta device (nothing is allocated)."""
    try:
        with torch.device("meta"):
            model = MODELS[cfg.kind](cfg)
    except (RuntimeError, OverflowError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"model config cannot be built ({msg}): check model.z_dim, filters, extra_dense") from None
    return sum(p.numel() for p in model.parameters())


def activation_floats(cfg: ModelConfig) -> int:
    """Floats one image's activations take in a forward pass (encoder and mirrored decoder, input and output)."""
    sizes = conv_sizes(cfg.image_size, len(cfg.filters), cfg.stride)
    conv = sum(f * s * s for f, s in zip(cfg.filters, sizes[1:], strict=True))
    return 2 * conv + 2 * cfg.channels * cfg.image_size**2 + 4 * cfg.z_dim + cfg.extra_dense


def check_batch_size(cfg: ModelConfig, batch: int, key: str, *, training: bool = True) -> None:
    """Refuse a batch whose activations (x4 for training: pre/post activation and their gradients) do not fit."""
    factor = 4 if training else 1
    need = 4.0 * factor * batch * activation_floats(cfg)
    check_memory(need, key, f"a batch of {batch:,} images of {cfg.image_size}x{cfg.image_size}")


def check_model_size(cfg: ModelConfig) -> None:
    """Refuse a model whose weights, gradients and Adam state (4 float32 copies) the machine cannot hold."""
    n = count_parameters(cfg)
    check_memory(16.0 * n, "model.z_dim/filters/extra_dense/image_size", f"a model of {n:,} parameters")


__all__ = [
    "AE",
    "MODELS",
    "VAE",
    "Encoding",
    "LatentModel",
    "Model",
    "ModelAdapter",
    "ModelOutput",
    "ModelShape",
    "activation_floats",
    "as_model",
    "build_model",
    "check_batch_size",
    "conv_sizes",
    "wrap",
]
