"""Autoencoder: the conv encoder body and one Dense head give z directly (the AE of post XIII)."""

from __future__ import annotations

import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.models.base import Encoding, LatentModel
from zspace.models.conv import ConvEncoder, full_precision


class AEEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.body = ConvEncoder(cfg)
        self.z = nn.Linear(self.body.out_features, cfg.z_dim)

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, eps_window: tuple | None = None
    ) -> Encoding:
        h = self.body(x)
        with full_precision(h):
            return Encoding(z=self.z(h.float()))  # (B, z_dim) fp32; an AE draws no noise


class AE(LatentModel):
    """Deterministic autoencoder; trained with the reconstruction loss only."""

    kind = "ae"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, AEEncoder(cfg))
