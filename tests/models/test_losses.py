"""Loss parts on known tensors, computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from zspace.models.base import Encoding, ModelOutput
from zspace.models.losses import compute_loss, kl_divergence, reconstruction_loss


def test_bce_keras_convention_channel_mean_pixel_sum():
    # logits 0 -> x_hat 0.5; BCE(x=0.5, 0.5) = ln 2 for every value; 3 channels averaged, 2x2 pixels summed.
    x = torch.full((2, 3, 2, 2), 0.5)
    assert torch.allclose(reconstruction_loss(torch.zeros_like(x), x), torch.full((2,), 4 * math.log(2)))
    # one pixel with channel values 1, 0, 1 and x_hat sigmoid(2): per channel -ln s, -ln(1-s), -ln s
    s = torch.sigmoid(torch.tensor(2.0))
    x1 = torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    expected = (-2 * torch.log(s) - torch.log(1 - s)) / 3
    assert reconstruction_loss(torch.full((1, 3, 1, 1), 2.0), x1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_published_bce_scale():
    # 0.49 per pixel x 96 x 96 is the series' 4,515 per image
    p = 0.3
    x = torch.full((1, 3, 96, 96), p)
    logits = torch.full_like(x, math.log(p / (1 - p)))
    per_pixel = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert reconstruction_loss(logits, x).item() == pytest.approx(per_pixel * 96 * 96, rel=1e-5)


def test_mse_same_reduction():
    x = torch.zeros(1, 2, 1, 3)
    logits = torch.zeros_like(x)  # x_hat = 0.5 -> squared error 0.25 everywhere
    assert reconstruction_loss(logits, x, "mse").item() == pytest.approx(0.25 * 3)


def test_kl_known_values():
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)]])
    # row 2: dim 1: 0.5 * mu^2 = 0.5; dim 2: -0.5 * (1 + ln 4 - 4 - 4) = 3.5 - ln 2
    expected = torch.tensor([0.0, 0.5 + 3.5 - math.log(2)])
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)


def test_compute_loss_parts_and_weighting():
    x = torch.full((2, 1, 2, 2), 0.5)
    mu = torch.tensor([[1.0], [3.0]])
    enc = Encoding(z=mu, mu=mu, logvar=torch.zeros_like(mu))
    parts = compute_loss(ModelOutput(enc, torch.zeros_like(x)), x, kl_weight=0.1, reconstruction="bce")
    assert parts.reconstruction.item() == pytest.approx(4 * math.log(2))
    assert parts.kl.item() == pytest.approx((0.5 + 4.5) / 2)
    assert parts.weighted_kl.item() == pytest.approx(0.25)
    assert parts.total.item() == pytest.approx(4 * math.log(2) + 0.25)
    ae = compute_loss(ModelOutput(Encoding(z=mu), torch.zeros_like(x)), x, kl_weight=5.0, reconstruction="bce")
    assert ae.kl.item() == 0
    assert ae.total.item() == pytest.approx(4 * math.log(2))
