"""Samplers of the latent space: a GMM recovers a constructed mixture; save/reload without pickle; fit on a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zspace.errors import CheckpointError, ConfigError, DataError
from zspace.latents.samplers import (
    GaussianSampler,
    GMMSampler,
    NormalSampler,
    fit_latents_sampler,
    fit_sampler,
    kept_sampler,
    load_sampler,
    make_sampler,
    sampler_file,
    save_sampler,
)

ROOT = Path(__file__).resolve().parents[2]
MEANS = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 9.0]])
WEIGHTS = np.array([0.5, 0.3, 0.2])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A digits-demo VAE trained for one epoch (a few seconds)."""
    from zspace.cli.main import main

    out = tmp_path_factory.mktemp("runs")
    config = str(ROOT / "configs" / "digits-demo.toml")
    assert main(["-q", "train", config, "--epochs", "1", "--out-dir", str(out)]) == 0
    return out / "digits-demo"


def mixture(n: int = 3000, seed: int = 0) -> np.ndarray:
    """n points of three well separated round Gaussians (std 0.5) with WEIGHTS, in 2-D."""
    rng = np.random.default_rng(seed)
    comp = rng.choice(3, size=n, p=WEIGHTS)
    return MEANS[comp] + 0.5 * rng.standard_normal((n, 2))


def _sorted(gmm: GMMSampler) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((gmm.means_[:, 1], gmm.means_[:, 0]))  # by x, then y: (-6,0), (0,9), (6,0)
    return gmm.means_[order], gmm.weights_[order]


@pytest.mark.parametrize("n_components", ["bic", 3])
def test_gmm_recovers_constructed_mixture(n_components):
    gmm = GMMSampler(n_components).fit(mixture())
    assert gmm.n_components_ == 3
    means, weights = _sorted(gmm)
    np.testing.assert_allclose(means, MEANS[[0, 2, 1]], atol=0.05)
    np.testing.assert_allclose(weights, WEIGHTS[[0, 2, 1]], atol=0.03)
    np.testing.assert_allclose(gmm.covariances_, np.broadcast_to(0.25 * np.eye(2), (3, 2, 2)), atol=0.03)
    if n_components == "bic":
        assert min(gmm.bic_, key=gmm.bic_.get) == 3
        assert gmm.bic_[2] > gmm.bic_[3] < gmm.bic_[4]
        assert 16 not in gmm.bic_  # BIC rose twice after 3: the larger mixtures were never fitted


def test_gmm_samples_follow_the_mixture():
    z = GMMSampler(3).fit(mixture()).sample(6000, random_state=1)
    assert z.shape == (6000, 2)
    assert z.dtype == np.float32
    nearest = np.argmin(((z[:, None, :] - MEANS[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / len(z), WEIGHTS, atol=0.02)
    spread = z - MEANS[nearest]
    np.testing.assert_allclose(spread.std(0), [0.5, 0.5], atol=0.03)


def test_diag_gmm_and_gaussian():
    gmm = GMMSampler(3, covariance_type="diag").fit(mixture())
    assert gmm.covariances_.shape == (3, 2)
    np.testing.assert_allclose(_sorted(gmm)[0], MEANS[[0, 2, 1]], atol=0.05)
    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.5], [1.5, 1.0]])
    Z = rng.multivariate_normal([1.0, -2.0], cov, size=20000)
    g = GaussianSampler().fit(Z)
    np.testing.assert_allclose(g.mean_, [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(g.covariance_, cov, atol=0.1)
    s = g.sample(20000, random_state=3)
    np.testing.assert_allclose(np.cov(s, rowvar=False), cov, atol=0.15)


def test_normal_sampler_is_the_prior_and_seeded():
    s = NormalSampler(z_dim=4)
    a, b, c = s.sample(5000, random_state=7), s.sample(5000, random_state=7), s.sample(5000, random_state=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a.mean(0), 0, atol=0.05)
    np.testing.assert_allclose(a.std(0), 1, atol=0.05)
    assert NormalSampler().fit(np.zeros((3, 6))).z_dim == 6


@pytest.mark.parametrize("kind", ["normal", "gaussian", "gmm"])
def test_save_and_reload_give_the_same_samples(tmp_path, kind):
    sampler = (make_sampler(kind, n_components=3) if kind == "gmm" else make_sampler(kind)).fit(mixture(600))
    path = save_sampler(sampler, tmp_path / f"{kind}.safetensors", extra={"note": "x"})
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # not a pickle
    header = int.from_bytes(raw[:8], "little")
    assert b'"__metadata__"' in raw[8 : 8 + header]  # a safetensors header: JSON
    back = load_sampler(path)
    assert type(back) is type(sampler)
    assert back.meta["note"] == "x"
    np.testing.assert_array_equal(back.sample(50, random_state=2), sampler.sample(50, random_state=2))


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"shape \(n_samples >= 2, z_dim\), got \[5\]"):
        GMMSampler().fit(np.zeros(5))
    with pytest.raises(DataError, match="NaN"):
        GaussianSampler().fit(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(ConfigError, match="n_components"):
        GMMSampler(0).fit(mixture(50))
    with pytest.raises(ConfigError, match="unknown sampler 'vamp'"):
        make_sampler("vamp")
    with pytest.raises(ConfigError, match="takes no options"):
        make_sampler("gaussian", n_components=3)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_sampler(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_sampler(tmp_path / "none.safetensors")


def test_fit_sampler_on_a_run_is_kept_and_reused(digits_run):
    from zspace.runs.folder import load_run

    run = load_run(digits_run)
    gmm = fit_sampler(run, "gmm", n_components=2)
    path = sampler_file(digits_run, "gmm", 2)
    assert path == digits_run / "samplers" / "gmm-k2.safetensors"
    assert path.is_file()
    assert (digits_run / "latents" / "train" / "z.npy").is_file()
    n_train = np.load(digits_run / "latents" / "train" / "z.npy").shape[0]
    assert load_sampler(path).meta["n_points"] == n_train
    stamp = path.stat().st_mtime_ns
    again = fit_sampler(run, "gmm", n_components=2)
    assert path.stat().st_mtime_ns == stamp  # reused, not refitted
    np.testing.assert_array_equal(again.sample(8, random_state=0), gmm.sample(8, random_state=0))
    fit_sampler(run, "gmm", n_components=2, refit=True)
    assert path.stat().st_mtime_ns != stamp
    assert fit_sampler(run, "normal").z_dim == run.config.model.z_dim


def test_a_latents_folders_sampler_is_kept_while_z_is_the_same_file(tmp_path):
    """``sample LATENTS`` refitted on every call; now the fit is kept in LATENTS/samplers/ and reused until z.npy
    changes (its sha256) or --refit; a user's file of that name is never replaced."""
    folder = tmp_path / "lat"
    folder.mkdir()
    z = mixture(600)
    np.save(folder / "z.npy", z)
    first = fit_latents_sampler(folder, z, "gaussian")
    path = folder / "samplers" / "gaussian.safetensors"
    np.testing.assert_allclose(first.mean_, z.mean(axis=0))
    stamp = path.stat().st_mtime_ns
    again = fit_latents_sampler(folder, z, "gaussian")
    assert path.stat().st_mtime_ns == stamp  # reused
    np.testing.assert_array_equal(again.sample(5, random_state=1), first.sample(5, random_state=1))
    shifted = z + 10.0
    np.save(folder / "z.npy", shifted)  # other points: fitted again
    np.testing.assert_allclose(fit_latents_sampler(folder, shifted, "gaussian").mean_, shifted.mean(axis=0))
    assert fit_latents_sampler(folder, shifted, "normal").z_dim == 2
    path.write_bytes(b"my own notes")  # a file zspace did not write, at the sampler's name
    with pytest.raises(ConfigError, match=r"was not written by zspace .*; move it out of .*samplers"):
        fit_latents_sampler(folder, shifted, "gaussian", refit=True)
    assert path.read_bytes() == b"my own notes"

    def no_fit():
        raise AssertionError("fitted before the foreign file was refused")

    with pytest.raises(ConfigError, match="was not written by zspace"):  # refused before the fit, not after it
        kept_sampler("gaussian", folder, {"z": "other"}, no_fit, refit=True)
