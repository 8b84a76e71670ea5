"""The shared AE/VAE skeleton (encoder -> z -> decoder) and what a forward pass returns.

:class:`Encoding` (what every encoder returns) and the batched decoding loop live in :mod:`zspace.models.protocol`,
shared with the adapters of models trained elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.models.conv import ConvDecoder
from zspace.models.protocol import DecodeLoop, Encoding, model_device


@dataclass
class ModelOutput:
    """A forward pass: the encoding and the decoder's ``logits`` (B, C, H, W); ``x_hat`` is their sigmoid."""

    encoding: Encoding
    logits: torch.Tensor

    @property
    def x_hat(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


class LatentModel(DecodeLoop, nn.Module):
    """An ``encoder`` module returning an :class:`Encoding` and a :class:`ConvDecoder`."""

    kind: str = ""

    def __init__(self, cfg: ModelConfig, encoder: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.decoder = ConvDecoder(cfg)

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Encoding:
        """Encode images (B, C, H, W) in [0, 1]."""
        return self.encoder(x, generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode z (B, z_dim) to images (B, C, H, W) in [0, 1].

        ``z`` may also be a numpy array or a single point (z_dim,); a wrong shape is a one-line DataError.
        """
        if not (isinstance(z, torch.Tensor) and z.ndim == 2 and z.shape[1] == self.cfg.z_dim and z.is_floating_point()):
            from zspace.models.inputs import as_latents

            z = as_latents(z, self.cfg.z_dim, device=model_device(self))
        return torch.sigmoid(self.decoder(z))

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, eps_window: tuple | None = None
    ) -> ModelOutput:
        encoding = self.encoder(x, generator=generator, eps_window=eps_window)
        return ModelOutput(encoding, self.decoder(encoding.z))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters of the encoder (with its heads), the decoder and the whole model."""
        enc = sum(p.numel() for p in self.encoder.parameters())
        dec = sum(p.numel() for p in self.decoder.parameters())
        return {"encoder_params": enc, "decoder_params": dec, "total_params": enc + dec}
