"""The model protocol and ``zspace.wrap``: hand-checked decodes and encodes, the shared decoding loop, one-line
errors for what a foreign model gets wrong, and a wrapped torch module through embed and ``zspace.analyze`` on the
shared CelebA images (its explorer is in tests/explore/test_explore_models.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import zspace
from zspace.config import DataConfig
from zspace.data import load_dataset
from zspace.errors import ConfigError, DataError
from zspace.latents.embedding import embed
from zspace.models import LatentModel
from zspace.models.protocol import Encoding, Model, ModelAdapter, ModelShape, as_model, wrap
from zspace.models.protocol import model_device as protocol_device

SIZE, C = 2, 1  # 2x2 grey images: z_dim 4 is one value per pixel


def identity_decoder() -> nn.Module:
    """z (B, 4) -> the image whose pixels are z, row-major: (B, 1, 2, 2)."""
    lin = nn.Linear(4, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(4))
        lin.bias.zero_()
    return nn.Sequential(lin, nn.Unflatten(1, (C, SIZE, SIZE)))


def test_an_identity_decoder_gives_the_known_image():
    model = wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C)
    z = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    np.testing.assert_allclose(model.decode(z).detach().numpy(), [[[[0.0, 0.25], [0.5, 1.0]]]])
    assert model.cfg == ModelShape(z_dim=4, image_size=SIZE, channels=C)
    assert model.kind == "ae"
    assert isinstance(model, Model)
    assert isinstance(model, ModelAdapter)
    # one point, numpy: coerced as for zspace's models; decode_images is (N, H, W, C) on the CPU
    np.testing.assert_allclose(model.decode(np.array([1.0, 0.0, 0.0, 0.5])).detach().numpy().ravel(), [1, 0, 0, 0.5])
    images = model.decode_images(np.tile([0.0, 0.25, 0.5, 1.0], (5, 1)), batch_size=2)
    assert images.shape == (5, SIZE, SIZE, C)
    assert images.dtype == np.float32
    np.testing.assert_allclose(images[3, :, :, 0], [[0.0, 0.25], [0.5, 1.0]])
    assert model.decode_images(np.zeros((0, 4))).shape == (0, SIZE, SIZE, C)


def test_logits_and_tanh_outputs_are_mapped_to_unit_range():
    logits = wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C, output="logits")
    x = logits.decode(torch.tensor([[0.0, 100.0, -100.0, np.log(3.0)]])).detach().numpy().ravel()
    np.testing.assert_allclose(x, [0.5, 1.0, 0.0, 0.75], atol=1e-6)  # sigmoid(log 3) = 3/4
    tanh = wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C, output="tanh")
    x = tanh.decode(torch.tensor([[-1.0, 0.0, 1.0, 3.0]])).detach().numpy().ravel()
    np.testing.assert_allclose(x, [0.0, 0.5, 1.0, 1.0])  # (x + 1) / 2, clamped (diffusers' decoders overshoot)
    for output in ("logits", "tanh"):
        nan = wrap(decoder=lambda z: torch.full((len(z), C, SIZE, SIZE), float("nan")), z_dim=4, image_size=SIZE,
                   channels=C, output=output)  # fmt: skip
        with pytest.raises(DataError, match="NaN or infinite"):
            nan.decode(torch.zeros(1, 4))


def test_encoder_outputs_tensor_tuple_or_encoding():
    flat = nn.Flatten()  # (B, 1, 2, 2) -> (B, 4): z is the image itself
    ae = wrap(encoder=flat, decoder=identity_decoder(), image_size=SIZE, channels=C)
    assert (ae.cfg.z_dim, ae.kind) == (4, "ae")  # found from the encoder's output
    x = torch.rand(3, C, SIZE, SIZE)
    enc = ae.encode(x)
    assert enc.mu is None
    assert enc.logvar is None
    np.testing.assert_array_equal(enc.z.numpy(), x.reshape(3, 4).numpy())
    np.testing.assert_allclose(zspace.reconstruct(ae, x).numpy(), x.numpy())  # identity both ways

    def mu_logvar(x):  # mu = the pixels, logvar = log 4 (sigma 2)
        return x.reshape(len(x), 4), torch.full((len(x), 4), float(np.log(4.0)))

    vae = wrap(encoder=mu_logvar, decoder=identity_decoder(), image_size=SIZE, channels=C)
    assert (vae.cfg.z_dim, vae.kind) == (4, "vae")
    enc = vae.encode(x, generator=torch.Generator().manual_seed(7))
    eps = torch.randn((3, 4), generator=torch.Generator().manual_seed(7))
    np.testing.assert_allclose(enc.z.numpy(), (x.reshape(3, 4) + 2.0 * eps).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(enc.mu.numpy(), x.reshape(3, 4).numpy())
    mean_only = wrap(encoder=mu_logvar, image_size=SIZE, channels=C, kind="ae")  # an AE view of a VAE: its mean
    np.testing.assert_array_equal(mean_only.encode(x).z.numpy(), x.reshape(3, 4).numpy())
    as_encoding = wrap(encoder=lambda x: Encoding(z=x.reshape(len(x), 4)), image_size=SIZE, channels=C)
    assert as_encoding.kind == "ae"
    assert as_encoding.encode(x).z.shape == (3, 4)


def test_plain_callables_report_the_cpu_and_modules_move():
    model = wrap(encoder=lambda x: x.reshape(len(x), -1), decoder=lambda z: z.reshape(-1, C, SIZE, SIZE),
                 image_size=SIZE, channels=C)  # fmt: skip
    assert model.device == torch.device("cpu") == protocol_device(model)
    assert list(model.parameters()) == []
    owner = nn.Linear(4, 4)  # a bound method's module is registered: its parameters count
    bound = wrap(decoder=owner.forward, z_dim=4, image_size=1, channels=4, output="logits")
    assert any(p is owner.weight for p in bound.parameters())
    assert bound.eval() is bound
    assert not owner.training


def test_the_probe_takes_a_batchnorm_in_training_mode_and_a_half_adapter_says_what_it_lacks():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    model = wrap(encoder=encoder, image_size=SIZE, channels=C)
    assert model.cfg.z_dim == 3
    assert encoder.training  # the probe ran in eval mode and gave the mode back

    class EncodeOnly(ModelAdapter):
        def _encode(self, x):
            return x.reshape(len(x), 4)

    half = EncodeOnly(z_dim=4, image_size=SIZE, channels=C, kind="ae")
    assert half.encode(torch.zeros(1, C, SIZE, SIZE)).z.shape == (1, 4)
    with pytest.raises(ConfigError, match="EncodeOnly: EncodeOnly cannot decode"):
        half.decode(torch.zeros(1, 4))


def test_a_half_precision_module_gets_half_inputs_and_gives_float32():
    model = wrap(encoder=nn.Flatten(), decoder=identity_decoder().to(torch.bfloat16), image_size=SIZE, channels=C)
    out = model.decode(torch.tensor([[0.0, 0.25, 0.5, 1.0]]))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy().ravel(), [0.0, 0.25, 0.5, 1.0])  # exact in bf16
    spatial = wrap(encoder=lambda x: x.repeat(1, 2, 1, 1), image_size=SIZE, channels=C)  # (B, 2, 2, 2) latents
    assert spatial.cfg.z_dim == 8
    assert spatial.encode(torch.rand(3, C, SIZE, SIZE)).z.shape == (3, 8)


def test_one_decoding_loop_for_zspace_models_and_adapters():
    assert LatentModel.decode_images is ModelAdapter.decode_images
    assert LatentModel.decode_batches is ModelAdapter.decode_batches


def test_generate_functions_take_a_wrapped_model():
    model = wrap(encoder=nn.Flatten(), decoder=identity_decoder(), image_size=SIZE, channels=C)
    a, b = np.zeros(4, np.float32), np.ones(4, np.float32)
    path = zspace.interpolate(model, a, b, steps=5).numpy()  # (5, 1, 2, 2): the pixels go 0, 0.25, ..., 1
    np.testing.assert_allclose(path.reshape(5, 4), np.linspace(0, 1, 5)[:, None].repeat(4, 1), atol=1e-6)
    np.testing.assert_allclose(zspace.decode(model, [[0.5, 0.5, 0.5, 0.5]]).numpy(), 0.5)
    with pytest.raises(DataError, match="values in"):  # N(0, I) samples leave [0, 1]: the identity decoder says so
        zspace.sample(model, 64, seed=0)


class OwnModel:
    """A class of the user's own that follows the protocol: cfg, kind, encode, decode (no torch module)."""

    cfg = ModelShape(z_dim=4, image_size=SIZE, channels=C)
    kind = "vae"

    def encode(self, x, *, generator=None):
        mu = x.reshape(len(x), 4)
        return Encoding(z=mu + 1.0, mu=mu, logvar=torch.zeros_like(mu))  # its own z: kept

    def decode(self, z):
        return z.reshape(-1, C, SIZE, SIZE).clamp(0, 1)


def test_an_object_following_the_protocol_is_adapted():
    model = as_model(OwnModel())
    assert isinstance(model, ModelAdapter)
    assert (model.kind, model.cfg.z_dim, model.device.type) == ("vae", 4, "cpu")
    x = torch.rand(2, C, SIZE, SIZE)
    enc = model.encode(x)
    torch.testing.assert_close(enc.z, x.reshape(2, 4) + 1.0)
    np.testing.assert_allclose(model.decode_images(np.full((3, 4), 0.5)), 0.5)
    report = zspace.analyze(np.random.default_rng(0).random((30, 4)), model=OwnModel(), only="decode",
                            decode={"n_probes": 4, "n_pairs": 1, "steps": 2})  # fmt: skip
    assert not report.section("decode").skipped

    class NoShape:
        def encode(self, x):
            return x

        def decode(self, z):
            return z

    with pytest.raises(ConfigError, match=r"NoShape has encode and decode but no cfg.z_dim, cfg.image_size and cfg"):
        as_model(NoShape())


def test_a_fitted_sampler_decodes_through_a_wrapped_model():
    from zspace.latents.samplers import make_sampler

    model = wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C)
    z = np.random.default_rng(0).uniform(0.4, 0.6, size=(200, 4))  # a small cloud around 0.5, inside [0, 1]
    sampler = make_sampler("gaussian").fit(z)
    images = zspace.sample(model, 16, sampler=sampler, seed=1).numpy()
    assert images.shape == (16, C, SIZE, SIZE)
    assert abs(images.mean() - 0.5) < 0.05  # the identity decoder shows the samples themselves


# --- hostile models --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decoder", "needle"),
    [
        (lambda z: torch.zeros(len(z), 1, 2, 3), r"returned shape \[2, 1, 2, 3\], expected \[2, 1, 2, 2\]"),
        (lambda z: torch.zeros(len(z), 4), r"returned shape \[2, 4\]"),
        (lambda z: torch.full((len(z), 1, 2, 2), 1.5), r"values in \[1.5, 1.5\], not in \[0, 1\]: pass output="),
        (lambda z: torch.full((len(z), 1, 2, 2), float("nan")), "NaN or infinite"),
        (lambda z: np.zeros((len(z), 1, 2, 2)), "must return a torch tensor of images, got ndarray"),
        (lambda z: torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), "floating-point images"),
        (lambda z: z @ torch.zeros(3, 3), "the decoder failed on input of shape"),
    ],
)
def test_a_bad_decoder_is_one_line(decoder, needle):
    model = wrap(decoder=decoder, z_dim=4, image_size=SIZE, channels=C)
    with pytest.raises(DataError, match=needle) as e:
        model.decode(torch.zeros(2, 4))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("encoder", "error", "needle"),
    [
        (lambda x: "z", DataError, "must return z .* got str"),
        (lambda x: (x, x, x), DataError, "got tuple of length 3"),
        (lambda x: torch.zeros(len(x) + 1, 4), DataError, r"z has shape \[3, 4\], expected \[2, 4\]"),
        (lambda x: (torch.zeros(len(x), 4), torch.zeros(len(x), 3)), DataError, r"logvar has shape \[2, 3\]"),
        (lambda x: torch.zeros(len(x), 4, dtype=torch.long), DataError, "floating point"),
    ],
)
def test_a_bad_encoder_is_one_line(encoder, error, needle):
    model = wrap(encoder=encoder, image_size=SIZE, channels=C, z_dim=4, kind="ae")
    with pytest.raises(error, match=needle) as e:
        model.encode(torch.zeros(2, C, SIZE, SIZE))
    assert "\n" not in str(e.value)


def test_wrong_widths_kinds_and_options_are_one_line():
    model = wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C)
    with pytest.raises(DataError, match=r"z must have shape \(N, 4\) or \(4,\) for this run, got \[2, 3\]"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(DataError, match="gives z of width 4, but z_dim=5 was given"):
        _ = wrap(encoder=nn.Flatten(), image_size=SIZE, channels=C, z_dim=5).cfg
    with pytest.raises(ConfigError, match="kind 'vae' needs an encoder that returns"):
        wrap(encoder=nn.Flatten(), image_size=SIZE, channels=C, kind="vae").encode(torch.zeros(1, C, SIZE, SIZE))
    with pytest.raises(ConfigError, match="needs z_dim"):
        wrap(decoder=identity_decoder(), image_size=SIZE, channels=C)
    with pytest.raises(ConfigError, match="an encoder, a decoder or both"):
        wrap(image_size=SIZE, channels=C, z_dim=4)
    with pytest.raises(ConfigError, match="encoder must be a torch module or a callable, got int"):
        wrap(encoder=42, image_size=SIZE, channels=C)
    with pytest.raises(ConfigError, match="output must be one of"):
        wrap(decoder=identity_decoder(), z_dim=4, image_size=SIZE, channels=C, output="bogus")
    with pytest.raises(ConfigError, match="image_size must be an integer >= 1"):
        wrap(decoder=identity_decoder(), z_dim=4, image_size=0, channels=C)
    with pytest.raises(ConfigError, match="no encoder"):
        model.encode(torch.zeros(1, C, SIZE, SIZE))


def test_anything_else_is_refused_as_a_model():
    for thing in (object(), "runs/x", nn.Linear(2, 2)):
        with pytest.raises(ConfigError, match=f"model must have encode and decode.*got {type(thing).__name__}"):
            as_model(thing)
    with pytest.raises(ConfigError, match="got ndarray"):
        zspace.analyze(np.zeros((10, 2)), model=np.zeros(3), only="radius")


# --- a wrapped conv net on the shared CelebA images -------------------------------------------------------------

IMG, Z = 16, 6


def tiny_conv_model() -> ModelAdapter:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, Z))
    decoder = nn.Sequential(nn.Linear(Z, 8 * 8 * 8), nn.Unflatten(1, (8, 8, 8)), nn.ReLU(),
                            nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1))  # fmt: skip
    return wrap(encoder=encoder, decoder=decoder, image_size=IMG, channels=3, output="logits")


@pytest.fixture(scope="module")
def celeba_latents(celeba_dir, tmp_path_factory):
    data = load_dataset(DataConfig(name="celeba", path=str(celeba_dir), image_size=IMG, limit=48))
    model = tiny_conv_model()
    out = tmp_path_factory.mktemp("wrapped") / "latents"
    return model, data, embed(model, data, out, batch_size=16)


def test_a_wrapped_module_embeds_celeba(celeba_latents):
    model, data, lat = celeba_latents
    assert lat.z.shape == (48, Z)
    assert lat.mu is None
    assert lat.attributes.shape == (48, 40)
    meta = json.loads((lat.path / "meta.json").read_text())
    assert (meta["kind"], meta["z_dim"], meta["model"]["adapter"]) == ("ae", Z, "wrapped model")
    x = torch.from_numpy(np.array(data.x[:5])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        np.testing.assert_allclose(lat.z[:5], model.encode(x).z.numpy(), rtol=1e-5, atol=1e-6)
    wrong = wrap(encoder=nn.Flatten(), image_size=8, channels=3)
    with pytest.raises(DataError, match=r"the model takes 8x8 images with 3 channel.*16x16x3"):
        embed(wrong, data, lat.path.parent / "wrong")
    assert not (lat.path.parent / "wrong").exists()


def test_analyze_decodes_with_a_wrapped_module(celeba_latents, tmp_path):
    model, _, lat = celeba_latents
    report = zspace.analyze(np.asarray(lat.z), model=model, only="radius,decode",
                            decode={"n_probes": 8, "n_reconstructions": 4, "n_pairs": 2, "steps": 3})  # fmt: skip
    section = report.section("decode")
    assert not section.skipped
    metrics = report.metrics["sections"]["decode"]
    assert {"gaussian", "data (z, decoded)"} <= set(metrics["probes"])
    for stats in metrics["probes"].values():  # decoded pixels: a sigmoid's, within [0, 1]
        assert 0.0 <= stats["mean"] <= 1.0
    names = {f.name for f in section.figures}
    assert {"gaussian", "interpolation_linear", "interpolation_slerp"} <= names
    images = model.decode_images(np.asarray(lat.z[:4]))
    assert images.shape == (4, IMG, IMG, 3)
    assert images.min() >= 0.0
    assert images.max() <= 1.0
    other = zspace.analyze(np.zeros((10, Z + 1)), model=model, only="decode")  # latents of another width
    assert other.section("decode").skipped
    assert any(f"the model has z_dim {Z}, the latents {Z + 1}" in n for n in other.section("decode").notes)
    saved = report.save(tmp_path / "report")
    assert {"decode-gaussian.png", "decode-interpolation_slerp.png"} <= {p.name for p in saved.parent.glob("*.png")}
    assert json.loads((saved.parent / "metrics.json").read_text())["sections"]["decode"]["probes"]
