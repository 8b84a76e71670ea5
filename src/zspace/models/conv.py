"""The convolutional encoder body and decoder of the series (SPEC section 2), sized from the config.

Encoder: ``len(filters)`` Conv2D layers (kernel ``k``, stride ``s``, "same" padding, leaky ReLU, optional
BatchNorm), Flatten, optional extra Dense. Decoder: Dense -> reshape to the encoder's last feature map ->
transposed convolutions mirroring the encoder -> logits (the sigmoid is applied by the model).

With "same" padding a stride-``s`` convolution maps a side ``n`` to ``ceil(n / s)``; each transposed
convolution picks its ``output_padding`` so the decoder returns exactly the input size (28 -> 14 -> 7 -> 4 -> 2
is mirrored as 2 -> 4 -> 7 -> 14 -> 28).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.errors import ConfigError


def conv_sizes(image_size: int, n_layers: int, stride: int) -> list[int]:
    """Spatial side before each encoder layer and after the last: ``[image_size, ..., final]``.

    A layer whose input is already 1x1 would do nothing useful; that is a config error.
    """
    if image_size < 1:
        raise ConfigError(f"image size must be >= 1, got {image_size}")
    sizes = [image_size]
    for i in range(n_layers):
        if stride > 1 and sizes[-1] < 2:
            raise ConfigError(
                f"image size {image_size} cannot pass {n_layers} stride-{stride} convolutions: it is 1x1 "
                f"before layer {i + 1}; use at most {i} layers (model.filters) or a larger image"
            )
        sizes.append(math.ceil(sizes[-1] / stride))
    return sizes


def full_precision(t: torch.Tensor) -> torch.autocast:
    """A region computed in fp32 even under autocast: the latent heads, eps and the decoder's first layer."""
    return torch.autocast(t.device.type, enabled=False)


def _block(conv: nn.Module, channels: int, cfg: ModelConfig) -> list[nn.Module]:
    norm = [nn.BatchNorm2d(channels)] if cfg.batch_norm else []
    return [conv, *norm, nn.LeakyReLU(cfg.leaky_slope)]


class ConvEncoder(nn.Module):
    """Conv layers + Flatten (+ extra Dense): images (B, C, H, W) -> features (B, out_features)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        sizes = conv_sizes(cfg.image_size, len(cfg.filters), cfg.stride)
        layers: list[nn.Module] = []
        in_ch = cfg.channels
        for f in cfg.filters:
            conv = nn.Conv2d(in_ch, f, cfg.kernel, cfg.stride, padding=cfg.kernel // 2)
            layers += _block(conv, f, cfg)
            in_ch = f
        layers.append(nn.Flatten())
        self.flat_features = in_ch * sizes[-1] ** 2
        self.out_features = self.flat_features
        if cfg.extra_dense:
            layers += [nn.Linear(self.flat_features, cfg.extra_dense), nn.LeakyReLU(cfg.leaky_slope)]
            self.out_features = cfg.extra_dense
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C, H, W) -> (B, out_features)


class ConvDecoder(nn.Module):
    """Dense -> reshape -> transposed convs mirroring the encoder: z (B, z_dim) -> logits (B, C, H, W)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        sizes = conv_sizes(cfg.image_size, len(cfg.filters), cfg.stride)
        self.start_shape = (cfg.filters[-1], sizes[-1], sizes[-1])
        self.dense = nn.Linear(cfg.z_dim, math.prod(self.start_shape))
        out_channels = [*reversed(cfg.filters[:-1]), cfg.channels]
        layers: list[nn.Module] = []
        in_ch = cfg.filters[-1]
        for i, out_ch in enumerate(out_channels):
            n_in, n_out = sizes[-1 - i], sizes[-2 - i]
            output_padding = n_out - ((n_in - 1) * cfg.stride + 1)  # in [0, stride) by construction
            conv = nn.ConvTranspose2d(
                in_ch, out_ch, cfg.kernel, cfg.stride, padding=cfg.kernel // 2, output_padding=output_padding
            )
            last = i == len(out_channels) - 1
            layers += [conv] if last else _block(conv, out_ch, cfg)
            in_ch = out_ch
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with full_precision(z):  # z itself is never rounded to bf16
            h = self.dense(z.float()).view(z.shape[0], *self.start_shape)  # (B, F, s, s); B may be 0
        return self.layers(h)  # (B, C, H, W) logits
