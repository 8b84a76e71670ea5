"""Models: the published parameter counts, decoder output sizes, eps clipping and eps_factor."""

from __future__ import annotations

import pytest
import torch

from zspace.config import ModelConfig
from zspace.errors import ConfigError
from zspace.models import AE, VAE, build_model, conv_sizes
from zspace.models.vae import sample_eps


def model(**kw) -> torch.nn.Module:
    return build_model(ModelConfig(**{"image_size": 96, "channels": 3, **kw}))


@pytest.mark.parametrize(
    ("kw", "encoder", "decoder"),
    [
        ({"z_dim": 256}, 5_107_520, 2_756_675),
        ({"z_dim": 512}, 9_826_624, 5_115_971),
        ({"z_dim": 256, "extra_dense": 256}, 2_879_552, 2_756_675),
        ({"z_dim": 256, "extra_dense": 384}, 4_124_864, 2_756_675),
    ],
)
def test_published_parameter_counts(kw, encoder, decoder):
    counts = model(**kw).param_counts()
    assert counts["encoder_params"] == encoder
    assert counts["decoder_params"] == decoder


def test_ae_has_one_head_fewer_than_vae():
    # VAE z_dim 256: 388,416 conv + 2 x (9216 x 256 + 256) heads; the AE drops one head.
    ae, vae = model(kind="ae"), model(kind="vae")
    assert vae.param_counts()["encoder_params"] - ae.param_counts()["encoder_params"] == 9216 * 256 + 256
    assert isinstance(ae, AE)
    assert isinstance(vae, VAE)


def test_batch_norm_adds_parameters_per_hidden_layer():
    plain, bn = model(), model(batch_norm=True)
    # encoder: 2 x (32 + 64 + 128 + 256); decoder hidden: 2 x (128 + 64 + 32)
    assert bn.param_counts()["encoder_params"] - plain.param_counts()["encoder_params"] == 2 * 480
    assert bn.param_counts()["decoder_params"] - plain.param_counts()["decoder_params"] == 2 * 224


@pytest.mark.parametrize(
    ("size", "channels", "filters"),
    [(96, 3, (32, 64, 128, 256)), (28, 1, (32, 64, 128, 256)), (8, 1, (32, 64, 128)), (89, 3, (8, 16)),
     (5, 1, (4, 4, 4)), (64, 3, (8,))],
)  # fmt: skip
def test_decoder_returns_the_input_size(size, channels, filters):
    for kind in ("ae", "vae"):
        m = build_model(ModelConfig(kind=kind, image_size=size, channels=channels, filters=filters, z_dim=4))
        x = torch.rand(2, channels, size, size)
        out = m(x)
        assert out.logits.shape == x.shape
        assert m.decode(out.encoding.z).shape == x.shape
        assert out.x_hat.min() >= 0
        assert out.x_hat.max() <= 1


def test_conv_sizes_follow_same_padding():
    assert conv_sizes(96, 4, 2) == [96, 48, 24, 12, 6]
    assert conv_sizes(28, 4, 2) == [28, 14, 7, 4, 2]
    assert conv_sizes(10, 2, 3) == [10, 4, 2]


def test_unreachable_size_is_a_config_error():
    with pytest.raises(ConfigError, match="1x1 before layer 4"):
        build_model(ModelConfig(image_size=8, channels=1))
    with pytest.raises(ConfigError, match="unknown model 'gan'"):
        build_model(ModelConfig(kind="gan", image_size=8, channels=1, filters=(8,)))


def test_eps_clipping_scales_large_values_back():
    torch.manual_seed(0)
    like = torch.zeros(200_000)
    eps = sample_eps(like.shape, like, clip=1.0)
    assert eps.abs().max().item() == 1.0
    assert (eps.abs() == 1.0).float().mean().item() == pytest.approx(0.3173, abs=0.01)  # P(|N(0,1)| >= 1)
    torch.manual_seed(0)
    raw = sample_eps(like.shape, like, clip=None)
    assert torch.equal(raw.clamp(-1, 1), eps)
    assert raw.abs().max().item() > 4


def test_vae_z_is_mu_plus_scaled_eps_and_eps_factor_changes_at_inference():
    m = build_model(ModelConfig(image_size=8, channels=1, filters=(4,), z_dim=3, eps_clip=None))
    x = torch.rand(5, 1, 8, 8)
    g = torch.Generator().manual_seed(1)
    enc = m.encode(x, generator=g)
    eps = torch.randn(enc.mu.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(enc.z, enc.mu + torch.exp(enc.logvar / 2) * eps)
    m.eps_factor = 0.0
    assert torch.equal(m.encode(x).z, m.encode(x).mu)
    m.eps_factor = 2.0
    enc2 = m.encode(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(enc2.z, enc.mu + 2 * torch.exp(enc.logvar / 2) * eps)


def test_ae_is_deterministic():
    m = build_model(ModelConfig(kind="ae", image_size=8, channels=1, filters=(4,), z_dim=3))
    x = torch.rand(4, 1, 8, 8)
    enc = m.encode(x)
    assert enc.mu is None
    assert enc.logvar is None
    assert torch.equal(enc.z, m.encode(x).z)


def test_decode_images_batches_equal_one_decode():
    """The one batched decoding loop: any batch size gives the images of a single decode call, NHWC on the CPU."""
    import numpy as np
    import torch

    from zspace.config import ModelConfig
    from zspace.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="ae", z_dim=3, image_size=8, channels=2, filters=(4, 8))).eval()
    z = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    with torch.no_grad():
        whole = model.decode(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy()
    for batch in (1, 2, 7, 100):
        np.testing.assert_allclose(model.decode_images(z, batch_size=batch), whole, atol=1e-6)
    assert model.decode_images(z[0]).shape == (1, 8, 8, 2)
    assert model.decode_images(np.zeros((0, 3))).shape == (0, 8, 8, 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model.decode_images(z, batch_size=0)
