"""What every latent model returns, and the shared AE/VAE skeleton (encoder -> z -> decoder)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.models.conv import ConvDecoder


@dataclass
class Encoding:
    """Encoder outputs for a batch: ``z`` (B, z_dim); ``mu`` and ``logvar`` (B, z_dim) for a VAE, else None."""

    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


@dataclass
class ModelOutput:
    """A forward pass: the encoding and the decoder's ``logits`` (B, C, H, W); ``x_hat`` is their sigmoid."""

    encoding: Encoding
    logits: torch.Tensor

    @property
    def x_hat(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


class LatentModel(nn.Module):
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

            z = as_latents(z, self.cfg.z_dim, device=next(self.parameters()).device)
        return torch.sigmoid(self.decoder(z))

    def decode_batches(self, z, *, batch_size: int = 256) -> Iterator[torch.Tensor]:
        """The one batched decoding loop: z (N, z_dim) or (z_dim,), numpy or torch, as decoded batches
        (B, C, H, W) in [0, 1] on the model's device, no gradients, ``batch_size`` points at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = next(self.parameters()).device
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z)
        zt = zt[None] if zt.ndim == 1 else zt
        with torch.no_grad():
            for s in range(0, len(zt), batch_size):
                yield self.decode(zt[s : s + batch_size].float().to(device))

    def decode_images(self, z, *, batch_size: int = 256) -> np.ndarray:
        """Decode many points for figures and metrics: a numpy array (N, H, W, C) float32 in [0, 1] on the CPU
        (one batch on the device at a time)."""
        out = [x.permute(0, 2, 3, 1).float().cpu().numpy() for x in self.decode_batches(z, batch_size=batch_size)]
        if not out:
            return np.zeros((0, self.cfg.image_size, self.cfg.image_size, self.cfg.channels), np.float32)
        return np.concatenate(out)

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
