"""The KL weight over training: a linear warm-up from 0 and cyclical annealing, as pure functions of the step.

``model.kl_weight`` is the weight the schedule reaches. Two shapes, which multiply:

- warm-up (``train.kl_warmup_epochs = E``): the factor rises linearly from 0 to 1 over the first E epochs
  (Bowman et al. 2016, "Generating sentences from a continuous space"), then stays 1;
- cyclical (``train.kl_schedule = "cyclical"``; Fu et al. 2019, "Cyclical annealing schedule: a simple approach
  to mitigating KL vanishing"): training is cut into ``train.kl_cycles`` cycles (the paper's M = 4); in each, the
  factor rises linearly from 0 to 1 over the first ``train.kl_cycle_ratio`` of the cycle (R = 0.5), then stays 1.

Being functions of the global step, they resume exactly.
"""

from __future__ import annotations

SCHEDULES = ("constant", "cyclical")


def warmup_factor(step: int, steps_per_epoch: int, warmup_epochs: float) -> float:
    """Linear warm-up: ``step / (warmup_epochs * steps_per_epoch)`` clipped to [0, 1]; 1 without warm-up."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (warmup_epochs * steps_per_epoch))


def cyclical_factor(step: int, total_steps: int, cycles: int, ratio: float) -> float:
    """Fu et al.'s schedule: within each of ``cycles`` equal cycles, 0 -> 1 linearly over ``ratio`` of it, then 1."""
    if cycles < 1 or not 0 < ratio <= 1:
        raise ValueError(f"cycles must be >= 1 and ratio in (0, 1], got {cycles} and {ratio}")
    period = total_steps / cycles
    tau = (step % period) / period if period > 0 else 1.0  # position within the cycle, [0, 1)
    return min(1.0, tau / ratio)


def kl_factor(
    step: int,
    steps_per_epoch: int,
    epochs: int,
    *,
    warmup_epochs: float = 0.0,
    schedule: str = "constant",
    cycles: int = 4,
    ratio: float = 0.5,
) -> float:
    """The factor in [0, 1] that multiplies ``model.kl_weight`` at global optimiser step ``step`` (0-based)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown KL schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
    factor = warmup_factor(step, steps_per_epoch, warmup_epochs)
    if schedule == "cyclical":
        factor *= cyclical_factor(step, steps_per_epoch * epochs, cycles, ratio)
    return factor
