"""Training loop, checkpoints and run folders on tiny synthetic images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zspace.config import RunConfig, load_config
from zspace.data import Dataset
from zspace.errors import CheckpointError, TrainingDiverged
from zspace.models import build_model
from zspace.runs import folder as runs
from zspace.runs.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from zspace.train import loop as training
from zspace.train.loop import Trainer, epoch_order, iter_batches


def tiny_data(n: int = 40, size: int = 8, seed: int = 0) -> Dataset:
    """Bright squares at random places on a dark background: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, 1), np.uint8)
    for i in range(n):
        r, c = rng.integers(0, size - 3, 2)
        x[i, r : r + 3, c : c + 3] = 255
    test = np.zeros(n, bool)
    test[-8:] = True
    return Dataset("tiny", x, None, None, None, None, np.arange(n), test, {"path": None})


def tiny_config(tmp_path, *sets: str) -> RunConfig:
    base = [
        f'out_dir="{tmp_path}"',
        "name=t",
        "model.image_size=8",
        "model.channels=1",
        "model.filters=[4, 8]",
        "model.z_dim=3",
        "train.batch_size=8",
        "train.epochs=3",
        "train.lr=0.01",
    ]
    return load_config(None, [*base, *sets])


def make_trainer(cfg: RunConfig, data: Dataset, seed: int | None = None) -> Trainer:
    torch.manual_seed(cfg.train.seed if seed is None else seed)
    run_dir = (
        runs.create_run(cfg, {"name": data.name}, overwrite=True) if seed is None else runs.Path(cfg.out_dir) / cfg.name
    )
    return Trainer(build_model(cfg.model), data, cfg, run_dir, torch.device("cpu"))


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path / runs.WEIGHTS))


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert np.array_equal(epoch_order(50, 3, 7), epoch_order(50, 3, 7))
    assert not np.array_equal(epoch_order(50, 3, 7), epoch_order(50, 3, 8))
    assert sorted(epoch_order(50, 3, 7)) == list(range(50))


def test_iter_batches_covers_rows_from_a_start_step():
    x = np.arange(10)[:, None] * 10
    rows = np.array([9, 2, 5, 0, 7, 1, 3])
    batches = list(iter_batches(x, rows, 3, start=1))
    assert [b[:, 0].tolist() for b in batches] == [[0, 10, 70], [30]]  # rows 0, 7, 1 sorted within a batch


def test_training_writes_a_run_folder_and_the_loss_falls(tmp_path):
    cfg = tiny_config(tmp_path, "train.epochs=6")
    trainer = make_trainer(cfg, tiny_data())
    history = trainer.fit()
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["total"] < 0.8 * history[0]["total"]
    for r in history:
        assert r["total"] == pytest.approx(r["reconstruction"] + r["weighted_kl"], rel=1e-6)
        assert math.isfinite(r["test_total"])
    folder = tmp_path / "t"
    for name in (runs.CONFIG, runs.ENVIRONMENT, runs.DATA, runs.HISTORY, runs.WEIGHTS, runs.CHECKPOINT):
        assert (folder / name).is_file(), name
    assert len(runs.read_history(folder)) == 6
    run = runs.load_run(folder)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k])


@pytest.mark.parametrize(
    "sets",
    [
        ['train.precision="fp32"'],
        ['train.precision="bf16"', 'train.kl_schedule="cyclical"', "train.kl_warmup_epochs=1"],
    ],
)
def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path, sets):
    """Also with fused Adam on channels_last parameters, bf16 autocast and a scheduled KL weight."""
    data = tiny_data()
    straight = tiny_config(tmp_path / "a", *sets)
    make_trainer(straight, data).fit()

    cfg = tiny_config(tmp_path / "b", "train.checkpoint_every=2", *sets)
    crashed = make_trainer(cfg, data)

    def crash(info: training.StepInfo) -> None:
        if (info.epoch, info.step) == (1, 2):  # one step after the mid-epoch checkpoint at step 2
            raise KeyboardInterrupt

    crashed.on_step = crash
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = make_trainer(cfg, data, seed=123)  # other initial weights: all state must come from the checkpoint
    resumed.resume()
    assert (resumed.progress["epoch"], resumed.progress["step"]) == (1, 2)
    resumed.fit()
    a, b = weights(tmp_path / "a" / "t"), weights(tmp_path / "b" / "t")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha, hb = runs.read_history(tmp_path / "a" / "t"), runs.read_history(tmp_path / "b" / "t")
    assert [r["total"] for r in ha] == [r["total"] for r in hb]


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    trainer = make_trainer(cfg, tiny_data())
    real = training.compute_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        parts = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # installed after epoch 1: the 2nd step of epoch 2
            parts.total = parts.total * float("nan")
        return parts

    good = None

    def remember(row):
        nonlocal good
        good = (tmp_path / "t" / runs.CHECKPOINT).read_bytes()
        monkeypatch.setattr(training, "compute_loss", poisoned)

    trainer.on_epoch = remember
    with pytest.raises(
        TrainingDiverged, match=r"non-finite loss \(nan\) at epoch 2, step 2 of 4.*\(epoch 1\) is intact"
    ):
        trainer.fit()
    assert (tmp_path / "t" / runs.CHECKPOINT).read_bytes() == good
    assert len(runs.read_history(tmp_path / "t")) == 1


def test_a_crash_during_a_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters())
    path = tmp_path / "ckpt.safetensors"
    progress = {"epoch": 1, "step": 0, "global_step": 3, "history": [], "partial": None}
    save_checkpoint(path, model, opt, progress)
    before = path.read_bytes()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1)

    def killed(*_):
        raise OSError("disk full")

    monkeypatch.setattr("zspace.io.atomic.os.replace", killed)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, {**progress, "epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # no temp file left behind
    monkeypatch.undo()
    assert load_checkpoint(path, build_model(cfg.model), opt) == progress


def test_truncated_and_foreign_weights_are_clear_errors(tmp_path):
    cfg = tiny_config(tmp_path)
    model = build_model(cfg.model)
    path = tmp_path / "w.safetensors"
    save_weights(path, model)
    other = build_model(
        load_config(None, ["model.image_size=8", "model.channels=1", "model.filters=[4, 8]", "model.z_dim=5"]).model
    )
    with pytest.raises(CheckpointError, match=r"another architecture: 'encoder.mu.weight' is \(3, 32\)"):
        load_weights(path, other)
    ae = build_model(
        load_config(
            None,
            [
                "model.kind=ae",
                "model.image_size=8",
                "model.channels=1",
                "model.filters=[4, 8]",
                "model.z_dim=3",
            ],
        ).model
    )
    with pytest.raises(CheckpointError, match="another architecture"):
        load_weights(path, ae)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_weights(path, model)
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(tmp_path / "none.safetensors", model)


def test_load_run_errors(tmp_path):
    with pytest.raises(CheckpointError, match="run folder not found"):
        runs.load_run(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="not a zspace run folder"):
        runs.load_run(tmp_path)
