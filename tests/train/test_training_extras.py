"""The series' training experiments: latent radius per epoch, every epoch's checkpoint kept, a new run started
from an earlier run's epoch, and Keras' weight initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_training import make_trainer, tiny_config, tiny_data

from zspace.config import ModelConfig, load_config
from zspace.io.limits import cpu_threads
from zspace.models import build_model
from zspace.models.base import Encoding
from zspace.runs import folder as runs
from zspace.train.loop import probe_radius
from zspace.train.run import train_run


class FixedEncoder(torch.nn.Module):
    """Encodes image i (its first pixel holds i) to a z of known length."""

    LENGTHS = (1.0, 1.2, 3.1)

    def encode(self, x, *, generator=None):
        i = (x[:, 0, 0, 0] * 255).round().long()
        z = torch.zeros(len(x), 2)
        z[:, 0] = torch.tensor(self.LENGTHS)[i]
        return Encoding(z=z)


def test_probe_radius_on_known_lengths():
    x = np.zeros((3, 2, 2, 1), np.uint8)
    x[:, 0, 0, 0] = [0, 1, 2]
    got = probe_radius(FixedEncoder(), x, np.arange(3), torch.device("cpu"), seed=0)
    assert got["radius_mean"] == pytest.approx((1.0 + 1.2 + 3.1) / 3)
    assert got["radius_peak"] == 1.25  # floor(r / 0.5) = 2, 2, 6: interval [1.0, 1.5) holds most, centre 1.25
    assert "mu_radius_mean" not in got  # an AE has no mu


def test_history_records_the_radius_and_kept_checkpoints(tmp_path):
    cfg = tiny_config(tmp_path, "train.keep_checkpoints=true", "train.radius_probe=16")
    trainer = make_trainer(cfg, tiny_data())
    trainer.fit()
    history = runs.read_history(tmp_path / "t")
    assert all(np.isfinite(r["radius_mean"]) and r["radius_peak"] > 0 for r in history)
    assert all(np.isfinite(r["mu_radius_mean"]) for r in history)  # the tiny config is a VAE
    kept = sorted(p.name for p in (tmp_path / "t" / runs.KEPT).iterdir())
    assert kept == ["epoch-001.safetensors", "epoch-002.safetensors", "epoch-003.safetensors"]
    last = tmp_path / "t" / runs.KEPT / "epoch-003.safetensors"
    assert last.read_bytes() == (tmp_path / "t" / runs.CHECKPOINT).read_bytes()


def test_a_new_run_from_an_earlier_runs_epoch_continues_it_exactly(tmp_path):
    sets = ["model.filters=[8, 16]", "model.z_dim=4", "train.threads=1", "train.keep_checkpoints=true"]
    base = [f"out_dir={str(tmp_path)!r}", *sets]
    first = train_run(load_config("configs/digits-demo.toml", [*base, "name='a'", "train.epochs=3"]))
    assert (cpu_threads(), torch.get_num_threads()) == (1, 1)  # train.threads reaches every pool, as --threads does
    kept = first / runs.KEPT / "epoch-002.safetensors"
    again = train_run(load_config("configs/digits-demo.toml", [*base, "name='b'", "train.epochs=3",
                                                              f"train.init_from={str(kept)!r}"]))  # fmt: skip
    a, b = load_file(first / runs.WEIGHTS), load_file(again / runs.WEIGHTS)
    assert all(torch.equal(a[k], b[k]) for k in a)  # epoch 3 from the kept epoch 2 is the same epoch 3
    assert [r["epoch"] for r in runs.read_history(again)] == [1, 2, 3]  # its history starts with the first run's


def test_glorot_init_is_keras_default():
    cfg = ModelConfig(kind="vae", z_dim=8, filters=(4, 8), image_size=8, channels=1, init="glorot")
    torch.manual_seed(0)
    model = build_model(cfg)
    lin = model.encoder.mu
    bound = (6 / (lin.in_features + lin.out_features)) ** 0.5
    assert lin.weight.abs().max() <= bound
    assert lin.weight.abs().max() > 0.8 * bound  # uniform over the whole range, not PyTorch's narrower one
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    torch.manual_seed(0)
    default = build_model(ModelConfig(kind="vae", z_dim=8, filters=(4, 8), image_size=8, channels=1))
    assert default.param_counts() == model.param_counts()
    assert not torch.equal(default.encoder.mu.weight, lin.weight)
