"""The generative API on a tiny digits run: every input form gives the same images, wrong shapes are one-line
errors; and ``zspace sample / reconstruct / interpolate / quality`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zspace.cli.main import main
from zspace.errors import ConfigError, DataError
from zspace.latents.generate import decode, interpolate, reconstruct, sample
from zspace.latents.samplers import GMMSampler
from zspace.models.inputs import as_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A digits-demo VAE (8x8x1, z_dim 10) trained for one epoch (a few seconds)."""
    out = tmp_path_factory.mktemp("runs")
    config = str(ROOT / "configs" / "digits-demo.toml")
    assert main(["-q", "train", config, "--epochs", "1", "--out-dir", str(out)]) == 0
    return out / "digits-demo"


@pytest.fixture(scope="module")
def run(run_dir):
    from zspace.runs.folder import load_run

    return load_run(run_dir)


@pytest.fixture(scope="module")
def images(run):
    from zspace.data import load_dataset

    return np.asarray(load_dataset(run.config.data).x[:6])  # (6, 8, 8, 1) uint8


def test_every_image_form_gives_the_same_reconstruction(run, images):
    model = run.model
    want = reconstruct(model, images)  # uint8 NHWC numpy
    assert want.shape == (6, 1, 8, 8)
    assert float(want.min()) >= 0.0
    assert float(want.max()) <= 1.0
    nchw = torch.from_numpy(images).permute(0, 3, 1, 2)
    for form in (nchw, nchw.float() / 255, images.astype(np.float32) / 255, images[..., 0], nchw.double() / 255):
        torch.testing.assert_close(reconstruct(model, form), want)
    torch.testing.assert_close(reconstruct(model, images[0]), want[:1])  # one image (H, W, C)
    # a VAE reconstructs from mu: no sampling noise, the same on every call
    enc = model.encode(as_images(images, model))
    torch.testing.assert_close(want, model.decode(enc.mu))


def test_decode_accepts_numpy_torch_and_one_point(run):
    model = run.model
    z = np.random.default_rng(0).standard_normal((3, 10))
    x = model.decode(torch.from_numpy(z).float())
    torch.testing.assert_close(model.decode(z), x)  # float64 numpy
    torch.testing.assert_close(decode(model, z[1]), x[1:2])  # (z_dim,)
    assert x.shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.decode(np.zeros((2, 9))), r"z must have shape \(N, 10\) or \(10,\) for this run, got \[2, 9\]"),
        (lambda m: m.decode(np.zeros((1, 2, 10))), r"got \[1, 2, 10\]"),
        (lambda m: m.decode([[float("nan")] * 10]), "NaN"),
        (lambda m: reconstruct(m, np.zeros((2, 9, 9, 1), np.uint8)), r"\(B, 8, 8, 1\) or .*\[2, 9, 9, 1\]"),
        (lambda m: reconstruct(m, np.zeros((2, 8, 8, 3))), r"got \[2, 8, 8, 3\]"),
        (lambda m: reconstruct(m, np.full((1, 8, 8, 1), 255.0)), r"float images must lie in \[0, 1\]"),
        (lambda m: reconstruct(m, np.zeros((1, 8, 8, 1), np.int64)), "uint8"),
        (lambda m: reconstruct(m, "x.png"), "numeric"),
        (lambda m: interpolate(m, np.zeros(10), np.zeros(3)), r"b must be a latent point \(10,\) or one image"),
    ],
)
def test_wrong_input_is_a_one_line_data_error(run, call, message):
    with pytest.raises(DataError, match=message) as info:
        call(run.model)
    assert "\n" not in str(info.value)


def test_sample_is_seeded_and_takes_fitted_samplers(run):
    model = run.model
    a, b = sample(model, 5, seed=3), sample(model, 5, seed=3)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, sample(model, 5, seed=4))
    assert a.shape == (5, 1, 8, 8)
    gmm = GMMSampler(2).fit(np.random.default_rng(0).standard_normal((200, 10)) + 3)
    torch.testing.assert_close(sample(model, 4, sampler=gmm, seed=1), decode(model, gmm.sample(4, random_state=1)))
    with pytest.raises(ConfigError, match="must be fitted first"):
        sample(model, 4, sampler="gmm")
    with pytest.raises(ConfigError, match=">= 1"):
        sample(model, 0)


@pytest.mark.parametrize("path", ["linear", "slerp"])
def test_interpolate_starts_and_ends_at_its_points(run, images, path):
    model = run.model
    a, b = np.full(10, 1.0), np.linspace(-2, 2, 10)
    out = interpolate(model, a, b, steps=7, path=path)
    assert out.shape == (7, 1, 8, 8)
    torch.testing.assert_close(out[[0, -1]], model.decode(np.stack([a, b])))
    from_images = interpolate(model, images[0], images[1], steps=3, path=path)  # ends encoded first (mu)
    torch.testing.assert_close(from_images[[0, -1]], reconstruct(model, images[:2]))
    with pytest.raises(ConfigError, match="unknown interpolation path 'bezier'"):
        interpolate(model, a, b, path="bezier")


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_cli_sample_reconstruct_interpolate(run_dir, tmp_path, capsys):
    for sampler in ("normal", "gaussian", "gmm"):
        out = tmp_path / f"{sampler}.png"
        assert main(["-q", "sample", str(run_dir), "--sampler", sampler, "--n", "12", "--out", str(out)]) == 0
        assert _png(out)[0] > 100
    assert (run_dir / "samplers" / "gmm.safetensors").is_file()
    assert main(["-q", "sample", str(run_dir), "--sampler", "gmm", "--components", "3", "--n", "4"]) == 0
    assert (run_dir / "samplers" / "gmm-k3.safetensors").is_file()
    assert _png(run_dir / "generated" / "sample-gmm.png")[0] > 0  # default --out
    assert main(["-q", "reconstruct", str(run_dir), "--n", "5", "--out", str(tmp_path / "r.png")]) == 0
    np.save(tmp_path / "imgs.npy", np.zeros((3, 1, 8, 8), np.float32))
    assert main(["-q", "reconstruct", str(run_dir), "--images", str(tmp_path / "imgs.npy"),
                 "--out", str(tmp_path / "r2.png")]) == 0  # fmt: skip
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one.png")
    assert main(["-q", "reconstruct", str(run_dir), "--images", str(tmp_path / "one.png"),
                 "--out", str(tmp_path / "r3.png")]) == 0  # fmt: skip
    for path in ("linear", "slerp"):
        out = tmp_path / f"i-{path}.png"
        assert main(["-q", "interpolate", str(run_dir), "--path", path, "--steps", "5", "--out", str(out)]) == 0
        assert _png(out)[1] > 100
    np.save(tmp_path / "ends.npy", np.random.default_rng(0).standard_normal((4, 10)))
    assert main(["-q", "interpolate", str(run_dir), "--z", str(tmp_path / "ends.npy"),
                 "--out", str(tmp_path / "iz.png")]) == 0  # fmt: skip
    assert capsys.readouterr().err == ""


def test_cli_quality_json(run_dir, capsys):
    assert main(["-q", "quality", str(run_dir), "--sampler", "gmm", "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["measure"].startswith("zspace-FID (features: ")
    assert "Inception" not in result["measure"]
    assert result["n_fake"] == 200
    assert result["n_real"] == 180  # the digits' whole test split
    assert result["fid"] > 0
    assert 0 <= result["precision"] <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconstruct", "RUN", "--images", "BAD"], "images must have shape (B, 8, 8, 1) or (B, 1, 8, 8) for this run"),
        (["interpolate", "RUN", "--z", "BAD"], "--z needs an array (2 * pairs, z_dim)"),
        (["interpolate", "RUN", "--z", "BADZ"], "a must be a latent point (10,) or one image (8, 8, 1) for this run"),
        (["sample", "RUN", "--out", "grid.jpg"], "--out must name a .png file"),
        (["sample", "NOPE"], "run folder not found"),
        (["reconstruct", "RUN", "--images", "MISSING"], "image file not found"),
    ],
)
def test_cli_bad_input_is_exit_2_and_one_line(run_dir, tmp_path, capsys, args, message):
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 5)))
    np.save(tmp_path / "badz.npy", np.zeros((2, 3)))
    subs = {"RUN": str(run_dir), "BAD": str(tmp_path / "bad.npy"), "BADZ": str(tmp_path / "badz.npy")}
    subs |= {"MISSING": str(tmp_path / "no.npy"), "NOPE": str(tmp_path / "nope"), "grid.jpg": str(tmp_path / "g.jpg")}
    assert main(["-q", *(subs.get(a, a) for a in args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("zspace: error: ")
    assert message in err[0]
    assert not (tmp_path / "g.jpg").exists()
