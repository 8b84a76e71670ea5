"""Variational autoencoder with the series' sampling layer (Kingma & Welling, "Auto-Encoding Variational Bayes").

z = mu + exp(logvar / 2) * eps * eps_factor, eps ~ N(0, I). Components with |eps| >= eps_clip are scaled back to
eps_clip * sign(eps): without it one run of the series jumped at epoch 22 to a z distribution centred at R = 66.
``eps_factor`` can be changed on a trained model (post XIV: variational parameters changed at inference).

The heads, eps and z are computed in fp32 even under bf16 autocast: a tiny-KL VAE has logvar between -8 and -20,
so sigma * eps is 1e-2 to 1e-5 of mu and bf16's 8-bit mantissa (relative step 2^-8) would round most of it away.
"""

from __future__ import annotations

import torch
from torch import nn

from zspace.config import ModelConfig
from zspace.models.base import Encoding, LatentModel
from zspace.models.conv import ConvEncoder, full_precision


def sample_eps(
    shape: torch.Size, like: torch.Tensor, clip: float | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Standard normal noise, clipped to [-clip, clip] when ``clip`` is set."""
    kwargs = {"generator": generator} if generator is not None else {}  # generator=None breaks symbolic shapes
    eps = torch.randn(shape, device=like.device, dtype=torch.float32, **kwargs)
    return eps if clip is None else eps.clamp(-clip, clip)


class VAEEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.body = ConvEncoder(cfg)
        self.mu = nn.Linear(self.body.out_features, cfg.z_dim)
        self.logvar = nn.Linear(self.body.out_features, cfg.z_dim)
        self.eps_clip = cfg.eps_clip
        self.eps_factor = cfg.eps_factor

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, eps_window: tuple | None = None
    ) -> Encoding:
        """``eps_window = (start, stop, n)``: this batch is rows start..stop of a global batch of n (one process
        of several); eps is drawn for all n and sliced, so every process sees single-process training's noise."""
        h = self.body(x)
        with full_precision(h):
            h = h.float()
            mu, logvar = self.mu(h), self.logvar(h)  # (B, z_dim) each, fp32
            if eps_window is None:
                eps = sample_eps(mu.shape, mu, self.eps_clip, generator)
            else:
                start, stop, n = eps_window
                eps = sample_eps(torch.Size((n, mu.shape[1])), mu, self.eps_clip, generator)[start:stop]
            z = mu + torch.exp(0.5 * logvar) * eps * self.eps_factor
        return Encoding(z=z, mu=mu, logvar=logvar)


class VAE(LatentModel):
    """VAE of the series; ``eps_factor`` is a plain attribute, changeable at inference."""

    kind = "vae"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, VAEEncoder(cfg))

    @property
    def eps_factor(self) -> float:
        return self.encoder.eps_factor

    @eps_factor.setter
    def eps_factor(self, value: float) -> None:
        self.encoder.eps_factor = float(value)
