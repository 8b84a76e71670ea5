"""The loss of the series (SPEC section 3): reconstruction in the Keras convention plus ``kl_weight * KL``.

Per image, binary cross-entropy is averaged over the channels of a pixel and summed over the geometric pixels
(0.49 per pixel x 96 x 96 = 4,515 per image on CelebA). KL = -1/2 * sum_d (1 + logvar - mu^2 - exp(logvar)).
Every part is the mean over the batch of per-image values, so the numbers read like the series' logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zspace.models.base import ModelOutput


@dataclass
class LossParts:
    """Batch means of per-image values: ``total = reconstruction + weighted_kl``; ``kl`` is unweighted."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    weighted_kl: torch.Tensor


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Per-image reconstruction loss (B,) from decoder logits and targets (B, C, H, W) in [0, 1]."""
    logits = logits.float()
    if kind == "bce":
        per_value = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif kind == "mse":
        per_value = (torch.sigmoid(logits) - x) ** 2
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}")
    return per_value.mean(dim=1).sum(dim=(1, 2))  # channel mean, pixel sum


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-image KL(N(mu, exp(logvar)) || N(0, I)) (B,) from (B, z_dim) tensors."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def compute_loss(out: ModelOutput, x: torch.Tensor, *, kl_weight: float, reconstruction: str) -> LossParts:
    """Loss parts of a forward pass; an AE (no ``mu``) has KL 0."""
    reco = reconstruction_loss(out.logits, x, reconstruction).mean()
    enc = out.encoding
    kl = kl_divergence(enc.mu, enc.logvar).mean() if enc.mu is not None else reco.new_zeros(())
    weighted = kl_weight * kl
    return LossParts(total=reco + weighted, reconstruction=reco, kl=kl, weighted_kl=weighted)
