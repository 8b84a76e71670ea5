"""The pythae adapter: an in-memory pythae VAE (built from its config, no download) hand-checked, through embed and
``zspace.analyze`` on the shared CelebA images; a pythae folder is refused unless its code may run; one line
without pythae. The explorer's click-to-decode with it is in tests/explore/test_explore_models.py."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import zspace
from zspace.config import DataConfig
from zspace.data import load_dataset
from zspace.errors import ConfigError, DataError
from zspace.latents.embedding import embed
from zspace.models.adapters import library_of
from zspace.models.protocol import as_model

pythae_models = pytest.importorskip("pythae.models")
from zspace.models.adapters.pythae import PythaeAdapter, load_pythae  # noqa: E402

IMG, Z = 16, 4


def tiny_vae(size: int = IMG, z_dim: int = Z):
    """pythae's VAE with its default MLP encoder/decoder on (3, size, size) images."""
    torch.manual_seed(0)
    return pythae_models.VAE(pythae_models.VAEConfig(input_dim=(3, size, size), latent_dim=z_dim))


def test_a_pythae_vae_hand_checked():
    vae = tiny_vae(size=4, z_dim=Z)
    with torch.no_grad():  # mu = (1, 2, 3, 4) and logvar = log 4 for every image; the decoder makes 0.25 everywhere
        vae.encoder.embedding.weight.zero_()
        vae.encoder.embedding.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        vae.encoder.log_var.weight.zero_()
        vae.encoder.log_var.bias.fill_(float(np.log(4.0)))
        last = vae.decoder.layers[-1][0]
        last.weight.zero_()
        last.bias.fill_(float(np.log(0.25 / 0.75)))  # sigmoid^-1(0.25)
    model = as_model(vae)  # what zspace.analyze(model=vae) does
    assert isinstance(model, PythaeAdapter)
    assert library_of(vae) == "pythae"
    assert (model.kind, model.cfg.z_dim, model.cfg.image_size, model.cfg.channels) == ("vae", Z, 4, 3)
    x = torch.rand(3, 3, 4, 4)
    enc = model.encode(x, generator=torch.Generator().manual_seed(5))
    eps = torch.randn((3, Z), generator=torch.Generator().manual_seed(5))
    mu = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(3, Z)
    torch.testing.assert_close(enc.mu, mu)
    torch.testing.assert_close(enc.logvar, torch.full((3, Z), float(np.log(4.0))))
    torch.testing.assert_close(enc.z, mu + 2.0 * eps)
    images = model.decode_images(np.zeros((5, Z)))
    assert images.shape == (5, 4, 4, 3)
    np.testing.assert_allclose(images, 0.25, atol=1e-6)
    assert model.info["library"] == "pythae"
    assert model.info["class"] == "VAE"


def test_a_pythae_ae_and_flat_data():
    ae = pythae_models.AE(pythae_models.AEConfig(input_dim=(1, 8, 8), latent_dim=3))
    model = as_model(ae)
    assert model.kind == "ae"
    assert model.encode(torch.rand(2, 1, 8, 8)).mu is None
    flat = pythae_models.VAE(pythae_models.VAEConfig(input_dim=(48,), latent_dim=2))  # 3 x 4 x 4 as a vector
    with pytest.raises(ConfigError, match=r"flat input_dim \[48\]: pass image_size= and channels="):
        PythaeAdapter(flat)
    with pytest.raises(ConfigError, match="not channels x image_size"):
        PythaeAdapter(flat, image_size=5, channels=3)
    model = PythaeAdapter(flat, image_size=4, channels=3)
    assert model.decode(torch.zeros(2, 2)).shape == (2, 3, 4, 4)
    assert model.encode(torch.rand(2, 3, 4, 4)).z.shape == (2, 2)
    as_ae = PythaeAdapter(tiny_vae(size=4), kind="ae")  # a VAE seen as an AE: its mean
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(as_ae.encode(x).z, as_ae.model.encoder(x)["embedding"])


def test_a_pythae_part_or_other_library_object_is_refused():
    with pytest.raises(ConfigError, match=r"expected a pythae model \(pythae.models.BaseAE\), got Encoder_VAE_MLP"):
        as_model(tiny_vae().encoder)
    with pytest.raises(ConfigError, match="model must have encode and decode"):
        zspace.analyze(np.zeros((10, Z)), model=torch.nn.Linear(2, 2), only="radius")


def test_a_pythae_folder_runs_code_only_when_told(tmp_path):
    vae = tiny_vae()
    folder = tmp_path / "pythae-vae"
    vae.save(str(folder))
    with pytest.raises(ConfigError, match=r"unpickles code from it .*run_code_from_folder=True") as e:
        load_pythae(folder)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="run_code_from_folder=True"):
        load_pythae(folder, run_code_from_folder="yes")  # only True itself says so
    loaded = load_pythae(folder, run_code_from_folder=True)
    z = torch.randn(3, Z)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), as_model(vae).decode(z))
    with pytest.raises(DataError, match="is not a pythae model folder"):
        load_pythae(tmp_path, run_code_from_folder=True)


def test_without_pythae_one_line(monkeypatch):
    for name in [m for m in sys.modules if m == "pythae" or m.startswith("pythae.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import pythae now fails, as when it is not installed
    with pytest.raises(ConfigError, match=r"pythae is not installed: pip install zspace\[pythae\]"):
        PythaeAdapter(object())


@pytest.fixture(scope="module")
def celeba_vae_latents(celeba_dir, tmp_path_factory):
    data = load_dataset(DataConfig(name="celeba", path=str(celeba_dir), image_size=IMG, limit=48))
    vae = tiny_vae()
    out = tmp_path_factory.mktemp("pythae") / "latents"
    return vae, data, embed(vae, data, out, batch_size=16, seed=3)  # the pythae model itself: embed wraps it


def test_a_pythae_vae_embeds_celeba(celeba_vae_latents):
    vae, data, lat = celeba_vae_latents
    assert lat.z.shape == (48, Z)
    assert lat.mu.shape == lat.logvar.shape == (48, Z)
    meta = json.loads((lat.path / "meta.json").read_text())
    assert (meta["kind"], meta["z_dim"], meta["model"]["library"]) == ("vae", Z, "pythae")
    x = torch.from_numpy(np.array(data.x[:6])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        out = vae.encoder(x)
    np.testing.assert_allclose(lat.mu[:6], out["embedding"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lat.logvar[:6], out["log_covariance"].numpy(), rtol=1e-5, atol=1e-6)


def test_analyze_decodes_with_a_pythae_vae(celeba_vae_latents, tmp_path):
    vae, _, lat = celeba_vae_latents
    report = zspace.analyze(lat.path, model=vae, only="vae,decode",
                            decode={"n_probes": 8, "n_reconstructions": 4, "n_pairs": 2, "steps": 3})  # fmt: skip
    decode = report.metrics["sections"]["decode"]
    assert not decode["skipped"], decode.get("notes")
    assert decode["z_source"] == "mu"
    assert {"gaussian", "data (mu, decoded)"} <= set(decode["probes"])
    assert report.metrics["sections"]["vae"]["skipped"] is False
    images = as_model(vae).decode_images(np.asarray(lat.mu[:4]))
    assert images.shape == (4, IMG, IMG, 3)
    assert images.min() >= 0.0
    assert images.max() <= 1.0
    saved = report.save(tmp_path / "report")
    assert {"decode-gaussian.png", "decode-interpolation_linear.png"} <= {p.name for p in saved.parent.glob("*.png")}
