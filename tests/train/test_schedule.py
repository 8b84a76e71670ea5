"""The KL weight's warm-up and cyclical annealing as pure functions of the step, and in the trainer."""

from __future__ import annotations

import pytest
from test_training import make_trainer, tiny_config, tiny_data

from zspace.config import load_config
from zspace.errors import ConfigError
from zspace.train.schedule import cyclical_factor, kl_factor, warmup_factor


def test_warmup_rises_linearly_then_stays():
    assert [warmup_factor(s, 10, 2) for s in (0, 5, 10, 15, 20, 35)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert warmup_factor(0, 10, 0) == 1.0  # no warm-up


def test_cyclical_ramps_in_each_of_four_cycles():
    # 80 steps, 4 cycles of 20: 0 -> 1 over the first 10 steps of each, then 1 (Fu et al.: M = 4, R = 0.5)
    got = [cyclical_factor(s, 80, 4, 0.5) for s in (0, 5, 10, 19, 20, 25, 30, 79)]
    assert got == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="cycles"):
        cyclical_factor(0, 80, 0, 0.5)


def test_the_shapes_multiply():
    # 8 epochs of 10 steps, warm-up over 4 epochs, 4 cycles of 20 steps
    f = kl_factor(25, 10, 8, warmup_epochs=4, schedule="cyclical")
    assert f == pytest.approx(0.625 * 0.5)
    assert kl_factor(25, 10, 8) == 1.0
    with pytest.raises(ValueError, match="unknown KL schedule"):
        kl_factor(0, 10, 8, schedule="sigmoid")


def test_schedule_options_are_checked():
    with pytest.raises(ConfigError, match="kl_schedule"):
        load_config(None, ['train.kl_schedule="monotonic"'])
    with pytest.raises(ConfigError, match="kl_cycle_ratio"):
        load_config(None, ["train.kl_cycle_ratio=0"])
    with pytest.raises(ConfigError, match="kl_warmup_epochs"):
        load_config(None, ["train.kl_warmup_epochs=-1"])


def test_the_trainer_follows_the_warmup(tmp_path):
    """32 training images, batch 8: 4 steps an epoch. Warm-up over 2 epochs: the last step of epoch 1 (step 3) has
    weight 3/8 of model.kl_weight, and the epoch's mean weighted KL is below kl_weight * kl."""
    cfg = tiny_config(tmp_path, "train.epochs=1", "train.kl_warmup_epochs=2", "model.kl_weight=2.0")
    trainer = make_trainer(cfg, tiny_data())
    row = trainer.fit()[0]
    assert float(trainer._kl_weight) == pytest.approx(2.0 * 3 / 8)
    assert row["weighted_kl"] < 2.0 * row["kl"]
    assert trainer.kl_factor(8) == 1.0
