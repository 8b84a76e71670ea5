"""diffusers' AutoencoderKL as a zspace model: a tiny one built from a config here (random weights, nothing is
downloaded) embeds the shared CelebA images through ``zspace embed --model diffusers:PATH``; analyze writes a decode
section with it, sample writes images; the flattened latents and decoding are checked against diffusers' own calls;
hostile inputs (pickled weights, a missing folder, an unknown scheme, weights edited after embedding) are one line."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zspace.cli.main import main
from zspace.errors import ConfigError, DataError
from zspace.models.adapters.diffusers import from_diffusers, load_autoencoder_kl, weights_digest

pytest.importorskip("diffusers")

SIZE, LATENT_CHANNELS, FACTOR = 32, 2, 2  # two blocks: one downsampling by 2 -> latents 2 x 16 x 16
Z_DIM = LATENT_CHANNELS * (SIZE // FACTOR) ** 2  # 512
N_IMAGES = 24


def tiny_vae(seed: int = 0):
    """A tiny AutoencoderKL with random weights (43k parameters)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1,
                         latent_channels=LATENT_CHANNELS, norm_num_groups=8, sample_size=SIZE).eval()  # fmt: skip


def save_vae(folder: Path, seed: int = 0) -> Path:
    tiny_vae(seed).save_pretrained(str(folder), safe_serialization=True)
    return folder


def embed_args(vae: Path, data: Path, out: Path, limit: int = N_IMAGES) -> list[str]:
    return ["-q", "embed", "--model", f"diffusers:{vae}", "--data", str(data), "--limit", str(limit),
            "--image-size", str(SIZE), "--out", str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> Path:
    return save_vae(tmp_path_factory.mktemp("vae") / "tiny-vae")


@pytest.fixture(scope="module")
def latents(vae_dir, celeba_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("emb") / "faces"
    assert main(embed_args(vae_dir, celeba_dir, out)) == 0
    return out


def one_line_error(capsys, phrase: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("zspace: error:"), err
    assert len(err.splitlines()) == 1, err
    assert phrase in err, err
    return err


# --- the latents of the CLI, checked by hand ----------------------------------------------------------------------


def test_embed_flattens_the_spatial_latents_and_records_the_model(latents, vae_dir):
    z, mu, logvar = (np.load(latents / f"{k}.npy") for k in ("z", "mu", "logvar"))
    assert z.shape == mu.shape == logvar.shape == (N_IMAGES, Z_DIM)  # 2 * 16 * 16
    meta = json.loads((latents / "meta.json").read_text())
    model = meta["model"]
    assert model["kind"] == "diffusers"
    assert model["latent_shape"] == [2, 16, 16]
    assert model["image_size"] == SIZE
    assert Path(model["path"]) == vae_dir.resolve()
    assert (latents / model["path_relative"]).resolve() == vae_dir.resolve()
    assert model["weights_sha256"] == weights_digest(vae_dir)
    # z is a draw from the posterior: (z - mu) / sigma are standard normal draws
    eps = (z - mu) / np.exp(logvar / 2)
    assert abs(eps.mean()) < 0.05, eps.mean()
    assert abs(eps.std() - 1) < 0.05, eps.std()


def test_the_latents_are_diffusers_own_posterior_of_the_images(latents, celeba_dir):
    """mu.npy row i = vae.encode(2 x_i - 1).latent_dist.mean flattened channel-major, x_i the i-th image of the
    folder as zspace's image cache holds it (centre square, 32 x 32)."""
    from zspace.config import DataConfig
    from zspace.data import load_dataset

    data = load_dataset(DataConfig(name="images", path=str(celeba_dir), image_size=SIZE, limit=N_IMAGES))
    mu, logvar = np.load(latents / "mu.npy"), np.load(latents / "logvar.npy")
    assert np.array_equal(np.load(latents / "index.npy"), np.arange(N_IMAGES))
    x = torch.from_numpy(np.asarray(data.x[[0, 5, 23]], dtype=np.float32) / 255).permute(0, 3, 1, 2)
    vae = tiny_vae()
    with torch.no_grad():
        dist = vae.encode(2 * x - 1).latent_dist
    assert dist.mean.shape == (3, LATENT_CHANNELS, 16, 16)
    np.testing.assert_allclose(mu[[0, 5, 23]], dist.mean.reshape(3, -1).numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar[[0, 5, 23]], dist.logvar.reshape(3, -1).numpy(), atol=1e-5)
    # channel-major: the first 256 numbers are channel 0's 16 x 16 grid, row by row
    np.testing.assert_allclose(mu[0, 16 * 3 + 7], dist.mean[0, 0, 3, 7].item(), atol=1e-5)
    np.testing.assert_allclose(mu[0, 256 + 16 * 5 + 2], dist.mean[0, 1, 5, 2].item(), atol=1e-5)


def test_decode_of_mu_is_diffusers_decode_mapped_to_0_1(vae_dir):
    model = load_autoencoder_kl(vae_dir, image_size=SIZE)
    vae = tiny_vae()
    x = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ((vae.decode(vae.encode(2 * x - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)
        enc = model.encode(x, generator=torch.Generator().manual_seed(0))
        got = model.decode(enc.mu)
    assert enc.z.shape == (3, Z_DIM)
    assert model.cfg.z_dim == Z_DIM
    assert model.kind == "vae"
    assert got.shape == (3, 3, SIZE, SIZE)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # numpy, one point, and decode_images (N, H, W, C) agree
    one = model.decode(enc.mu[0].numpy())
    torch.testing.assert_close(one[0], got[0], atol=1e-5, rtol=0)
    assert model.decode_images(enc.mu.numpy()).shape == (3, SIZE, SIZE, 3)


def test_scaled_latents_are_stable_diffusions(vae_dir):
    raw = load_autoencoder_kl(vae_dir, image_size=SIZE)
    scaled = load_autoencoder_kl(vae_dir, image_size=SIZE, scaled=True)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    a, b = raw.encode(x), scaled.encode(x)
    s = 0.18215  # diffusers' default scaling_factor
    torch.testing.assert_close(b.mu, a.mu * s, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b.logvar, a.logvar + 2 * math.log(s), atol=1e-5, rtol=0)
    torch.testing.assert_close(scaled.decode(b.mu), raw.decode(a.mu), atol=1e-5, rtol=0)


def test_an_autoencoder_kl_in_memory(vae_dir):
    from zspace.models.protocol import as_model

    model = from_diffusers(tiny_vae(), image_size=16)  # fully convolutional: any multiple of the factor
    assert model.cfg.z_dim == LATENT_CHANNELS * 8 * 8
    assert model.info["kind"] == "diffusers"
    assert model.decode(torch.zeros(1, model.cfg.z_dim)).shape == (1, 3, 16, 16)
    adapted = as_model(tiny_vae())  # what zspace.analyze(model=vae) does: at the config's sample_size
    assert adapted.cfg.image_size == SIZE
    assert adapted.cfg.z_dim == Z_DIM


# --- analyze, sample ----------------------------------------------------------------------------------------------


def test_analyze_decodes_with_the_recorded_model(latents, tmp_path):
    out = tmp_path / "report"
    small = [
        "decode.n_probes=10",
        "decode.n_reconstructions=4",
        "decode.n_pairs=1",
        "decode.steps=3",
        "decode.ranges=[[-2.0, 2.0]]",
    ]
    assert main(["-q", "analyze", str(latents), "--only", "radius,vae,decode", "--out", str(out),
                 *[a for s in small for a in ("--set", s)]]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    decode = metrics["sections"]["decode"]
    assert not decode["skipped"], decode["notes"]
    assert decode["probes"]["gaussian"]["n"] == 10
    assert decode["interpolation"]
    # the faces the latents came from are found again (meta data_config): reconstructions beside their originals
    assert decode["reconstruction"]["n"] == 4
    assert decode["reconstruction"]["loss"] == "bce"
    assert "AutoencoderKL" in metrics["source"]["freshness"]
    assert metrics["source"]["z_dim"] == Z_DIM
    assert metrics["source"]["kind"] == "vae"
    assert (out / "report.html").is_file()
    assert list(out.glob("decode*.png"))


@pytest.mark.parametrize("sampler", ["normal", "gaussian"])
def test_sample_decodes_a_sampler_fitted_on_the_latents(latents, tmp_path, sampler):
    out = tmp_path / f"{sampler}.png"
    assert main(["-q", "sample", str(latents), "--sampler", sampler, "--n", "4", "--ncols", "2", "--out",
                 str(out)]) == 0  # fmt: skip
    with Image.open(out) as im:
        assert im.width > 100
        assert im.height > 100


def _captured(monkeypatch, name: str) -> dict:
    """Capture the arrays zspace.figures.decode.<name> is drawn from (the decoded images of the grid)."""
    import zspace.figures.decode as figures

    seen: dict = {}
    real = getattr(figures, name)

    def spy(*args, **kw):
        seen["args"], seen["kw"] = args, kw
        return real(*args, **kw)

    monkeypatch.setattr(figures, name, spy)
    return seen


def test_interpolate_decodes_paths_between_given_latents_with_the_recorded_model(latents, vae_dir, tmp_path,
                                                                                 monkeypatch):  # fmt: skip
    """``interpolate LATENTS --z ENDS``: each path starts at diffusers' decode of its first end, ends at its last."""
    seen = _captured(monkeypatch, "interpolation_grid")
    mu = np.load(latents / "mu.npy")
    ends = tmp_path / "ends.npy"
    np.save(ends, mu[[0, 7]])
    out = tmp_path / "paths.png"
    assert main(["-q", "interpolate", str(latents), "--z", str(ends), "--steps", "3", "--out", str(out)]) == 0
    paths = seen["args"][0]  # (paths, steps, H, W, C) in [0, 1]
    assert paths.shape == (1, 3, SIZE, SIZE, 3)
    model = load_autoencoder_kl(vae_dir, image_size=SIZE)
    want = model.decode_images(mu[[0, 7]])  # (2, H, W, C)
    np.testing.assert_allclose(paths[0, 0], want[0], atol=1e-4)
    np.testing.assert_allclose(paths[0, -1], want[1], atol=1e-4)
    assert out.is_file()


def test_reconstruct_and_interpolate_use_the_images_embedded(latents, vae_dir, celeba_dir, tmp_path, monkeypatch):
    """Without --images / --z the images come from the folder the latents were embedded from (as for a run)."""
    from zspace.config import DataConfig
    from zspace.data import load_dataset

    seen = _captured(monkeypatch, "reconstruction_pairs")
    out = tmp_path / "rec.png"
    assert main(["-q", "reconstruct", str(latents), "--split", "all", "--n", "3", "--out", str(out)]) == 0
    originals, decoded = seen["args"][:2]
    assert originals.shape == decoded.shape == (3, SIZE, SIZE, 3)
    data = load_dataset(DataConfig(name="images", path=str(celeba_dir), image_size=SIZE, limit=N_IMAGES))
    rows = np.sort(np.random.default_rng(0).choice(data.indices("all"), 3, replace=False))
    np.testing.assert_allclose(originals, np.asarray(data.x[rows], np.float32) / 255, atol=1e-6)
    model = load_autoencoder_kl(vae_dir, image_size=SIZE)
    np.testing.assert_allclose(decoded[0], model.decode_images(np.load(latents / "mu.npy")[rows[:1]])[0], atol=1e-4)
    assert main(["-q", "interpolate", str(latents), "--split", "all", "--pairs", "2", "--steps", "2", "--out",
                 str(tmp_path / "i.png")]) == 0  # fmt: skip
    assert (tmp_path / "i.png").is_file()


def test_without_its_images_interpolate_walks_between_latent_points_and_reconstruct_asks_for_images(
    latents, tmp_path, monkeypatch, capsys
):
    """The embedded images gone: interpolate draws paths between rows of z; reconstruct needs --images."""
    import zspace.report.analyze as analyze

    monkeypatch.setattr(analyze, "embedded_dataset", lambda latents: None)
    seen = _captured(monkeypatch, "interpolation_grid")
    assert main(["-q", "interpolate", str(latents), "--pairs", "2", "--steps", "2", "--out",
                 str(tmp_path / "i.png")]) == 0  # fmt: skip
    assert seen["args"][0].shape == (2, 2, SIZE, SIZE, 3)
    assert all(label.startswith("z row ") for label in seen["kw"]["row_labels"])
    assert main(["-q", "reconstruct", str(latents), "--out", str(tmp_path / "r.png")]) == 2
    one_line_error(capsys, "name no images to reconstruct; give some with --images")
    assert main(["-q", "reconstruct", str(latents), "--data", str(tmp_path), "--out", str(tmp_path / "r.png")]) == 2
    one_line_error(capsys, "--data goes with a run folder")
    assert not (tmp_path / "r.png").exists()


def test_a_latents_folder_without_a_model_is_one_line(tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    np.save(bare / "z.npy", np.zeros((4, 3), np.float32))
    for argv in (["reconstruct", str(bare)], ["interpolate", str(bare)], ["sample", str(bare)]):
        assert main(["-q", *argv, "--out", str(tmp_path / "x.png")]) == 2
        one_line_error(capsys, "these latents come without a model to decode with")
    assert not (tmp_path / "x.png").exists()


# --- hostile inputs -----------------------------------------------------------------------------------------------


def test_pickled_weights_only_are_refused(tmp_path, vae_dir, celeba_dir, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(vae_dir / "config.json", folder / "config.json")
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    assert main(embed_args(folder, celeba_dir, tmp_path / "out")) == 2
    one_line_error(capsys, "only pickled weights (diffusion_pytorch_model.bin)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "phrase"),
    [
        ("diffusers:{tmp}/missing", "diffusers model folder not found"),
        ("diffusers:{tmp}/noconfig", "has no config.json"),
        ("diffusers:{tmp}/unet", "holds a UNet2DModel, not an AutoencoderKL"),
        ("diffusers:{tmp}/truncated", "cannot be loaded"),
        ("foo:{vae}", "unknown model scheme 'foo' (known: diffusers:PATH)"),
        ("{vae}", "unknown model scheme"),
        ("diffusers:", "unknown model scheme"),
    ],
)
def test_bad_model_specs_are_one_line(tmp_path, vae_dir, celeba_dir, capsys, model, phrase):
    (tmp_path / "noconfig").mkdir()
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (tmp_path / "truncated").mkdir()
    shutil.copy(vae_dir / "config.json", tmp_path / "truncated" / "config.json")
    weights = (vae_dir / "diffusion_pytorch_model.safetensors").read_bytes()
    (tmp_path / "truncated" / "diffusion_pytorch_model.safetensors").write_bytes(weights[: len(weights) // 2])
    spec = model.format(tmp=tmp_path, vae=vae_dir)
    argv = embed_args(vae_dir, celeba_dir, tmp_path / "out")
    argv[argv.index("--model") + 1] = spec
    assert main(argv) == 2
    one_line_error(capsys, phrase)
    assert not (tmp_path / "out").exists()


def test_an_image_size_off_the_latent_grid_is_one_line(tmp_path, vae_dir, celeba_dir, capsys):
    argv = embed_args(vae_dir, celeba_dir, tmp_path / "out")
    argv[argv.index("--image-size") + 1] = "33"
    assert main(argv) == 2
    one_line_error(capsys, "image size 33 is not a multiple of this AutoencoderKL's downsampling factor 2: use 32 or")


def test_embed_needs_data_and_out(tmp_path, vae_dir, capsys):
    assert main(["embed", "--model", f"diffusers:{vae_dir}", "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, "embed --model needs --data FOLDER")
    assert main(["embed", "--model", f"diffusers:{vae_dir}", "--data", str(tmp_path)]) == 2
    one_line_error(capsys, "embed --model needs --out LATENTS")


def test_weights_edited_after_embedding_are_refused(tmp_path, celeba_dir, capsys):
    vae = save_vae(tmp_path / "vae")
    out = tmp_path / "lat"
    assert main(embed_args(vae, celeba_dir, out, limit=4)) == 0
    save_vae(vae, seed=1)  # other weights in the same folder
    for argv in (["analyze", str(out), "--only", "decode", "--out", str(tmp_path / "r")],
                 ["sample", str(out), "--n", "2", "--out", str(tmp_path / "s.png")]):  # fmt: skip
        assert main(argv) == 2
        one_line_error(capsys, "were encoded by other weights than those now in")
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "s.png").exists()
    from zspace.explore import open_explorer

    with pytest.raises(DataError, match="other weights"):
        open_explorer(out)
    shutil.rmtree(vae)  # gone altogether: one line too
    assert main(["analyze", str(out), "--only", "decode", "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "which is not there any more")


def test_without_diffusers_the_error_says_how_to_install(vae_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers raises ImportError
    with pytest.raises(ConfigError, match=r"pip install zspace\[diffusers\]"):
        load_autoencoder_kl(vae_dir)
