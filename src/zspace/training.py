"""The training loop: Adam on the series' loss, atomic checkpoints, exact resume, a clear stop on NaN.

The trainer knows a model only through :class:`~zspace.models.LatentModel` (forward returns logits and an
encoding) and data only through :class:`~zspace.data.Dataset` (a uint8 image array and split indices).

Reproducibility: the batch order of epoch ``e`` is a pure function of ``(seed, e)``, and the global torch RNG
(the VAE's eps) is saved in every checkpoint, so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have (bit for bit on CPU).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace import runs
from zspace.checkpoint import load_checkpoint, save_checkpoint, save_weights
from zspace.config import RunConfig
from zspace.errors import ConfigError, DataError, TrainingDiverged
from zspace.losses import LossParts, compute_loss
from zspace.models import LatentModel

log = logging.getLogger(__name__)


@dataclass
class StepInfo:
    """Passed to ``on_step`` after every optimiser step."""

    epoch: int  # 0-based
    step: int  # 0-based step within the epoch
    steps_per_epoch: int
    loss: float


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device name") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here")
    return device


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of ``n`` training items in ``epoch``: depends on nothing else."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images (B, H, W, C) -> float (B, C, H, W) in [0, 1] on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def iter_batches(x: np.ndarray, rows: np.ndarray, batch_size: int, start: int = 0) -> Iterator[np.ndarray]:
    """Gather batches ``x[rows[i*bs:(i+1)*bs]]`` from step ``start`` on, one batch ahead in a thread.

    Rows are sorted within a batch so a memory-mapped cache is read front to back; a batch's loss is a mean,
    so the order inside it does not matter.
    """
    starts = range(start * batch_size, len(rows), batch_size)

    def gather(i: int) -> np.ndarray:
        return x[np.sort(rows[i : i + batch_size])]

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for i in starts:
            nxt = pool.submit(gather, i)
            if pending is not None:
                yield pending.result()
            pending = nxt
        if pending is not None:
            yield pending.result()


_PARTS = ("total", "reconstruction", "kl", "weighted_kl")


def loss_values(parts: LossParts) -> dict[str, float]:
    """The loss parts as floats, with a single device sync."""
    values = torch.stack([getattr(parts, k).detach().float() for k in _PARTS]).tolist()
    return dict(zip(_PARTS, values, strict=True))


class _Sums:
    """Image-weighted running sums of the loss parts within an epoch."""

    def __init__(self, state: dict[str, float] | None = None):
        self.s = dict(state or {"n": 0, "total": 0.0, "reconstruction": 0.0, "kl": 0.0, "weighted_kl": 0.0})

    def add(self, values: dict[str, float], n: int) -> None:
        self.s["n"] += n
        for k in _PARTS:
            self.s[k] += values[k] * n

    def means(self) -> dict[str, float]:
        n = max(self.s["n"], 1)
        return {k: v / n for k, v in self.s.items() if k != "n"}


@torch.no_grad()
def evaluate(
    model: LatentModel, x: np.ndarray, rows: np.ndarray, cfg: RunConfig, device: torch.device, epoch: int
) -> dict[str, float]:
    """Mean loss parts over ``rows`` without gradients; the VAE's eps comes from its own generator."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed * 100_003 + epoch)
    sums = _Sums()
    for batch in iter_batches(x, rows, 2 * cfg.train.batch_size):
        xb = to_tensor(batch, device)
        with _autocast(cfg, device):
            out = model(xb, generator=gen)
        parts = compute_loss(out, xb, kl_weight=cfg.model.kl_weight, reconstruction=cfg.model.reconstruction)
        sums.add(loss_values(parts), len(batch))
    model.train(was_training)
    return sums.means()


def _autocast(cfg: RunConfig, device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.precision == "bf16")


class Trainer:
    """Trains ``model`` on the train split of ``data`` into the run folder ``run_dir``."""

    def __init__(self, model: LatentModel, data: Any, cfg: RunConfig, run_dir: Path, device: torch.device):
        self.model, self.data, self.cfg, self.run_dir, self.device = model, data, cfg, Path(run_dir), device
        self.train_rows = data.indices("train")
        self.test_rows = data.indices("test")
        if len(self.train_rows) == 0:
            raise DataError(f"dataset {data.name!r} has no training items")
        self.steps_per_epoch = math.ceil(len(self.train_rows) / cfg.train.batch_size)
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr)
        self.progress: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "global_step": 0,
            "history": [],
            "partial": None,
        }
        self.on_step: Callable[[StepInfo], None] | None = None
        self.on_epoch: Callable[[dict[str, float]], None] | None = None

    def resume(self) -> None:
        """Restore model, optimizer, RNG and progress from the run's checkpoint."""
        self.progress = load_checkpoint(self.run_dir / runs.CHECKPOINT, self.model, self.optimizer)
        runs.write_history(self.run_dir, self.progress["history"])
        log.info(
            "resuming %s at epoch %d, step %d",
            self.run_dir,
            self.progress["epoch"] + 1,
            self.progress["step"],
        )

    def fit(self) -> list[dict[str, float]]:
        """Train until ``train.epochs``; returns the history (one dict per epoch)."""
        for epoch in range(self.progress["epoch"], self.cfg.train.epochs):
            self._run_epoch(epoch)
        return self.progress["history"]

    def _run_epoch(self, epoch: int) -> None:
        tc, p = self.cfg.train, self.progress
        start_step = p["step"] if p["epoch"] == epoch else 0
        sums = _Sums(p["partial"] if start_step else None)
        rows = self.train_rows[epoch_order(len(self.train_rows), tc.seed, epoch)]
        self.model.train()
        t0, n_now = time.perf_counter(), 0
        for step, batch in enumerate(iter_batches(self.data.x, rows, tc.batch_size, start_step), start_step):
            values = self._step(batch, epoch, step)
            sums.add(values, len(batch))
            n_now += len(batch)
            p["global_step"] += 1
            if self.on_step:
                self.on_step(StepInfo(epoch, step, self.steps_per_epoch, values["total"]))
            if tc.checkpoint_every and p["global_step"] % tc.checkpoint_every == 0 and step + 1 < self.steps_per_epoch:
                p.update(epoch=epoch, step=step + 1, partial=sums.s)
                self._save()
        seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            **sums.means(),
            "images_per_s": n_now / max(seconds, 1e-9),
            "seconds": seconds,
        }
        if len(self.test_rows):
            test = evaluate(self.model, self.data.x, self.test_rows, self.cfg, self.device, epoch)
            row.update(test_total=test["total"], test_reconstruction=test["reconstruction"], test_kl=test["kl"])
        p["history"].append(row)
        p.update(epoch=epoch + 1, step=0, partial=None)
        self._save()
        log.info(format_epoch(row, tc.epochs))
        if self.on_epoch:
            self.on_epoch(row)

    def _step(self, batch: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        x = to_tensor(batch, self.device)  # (B, C, H, W)
        with _autocast(self.cfg, self.device):
            out = self.model(x)
        parts = compute_loss(out, x, kl_weight=self.cfg.model.kl_weight, reconstruction=self.cfg.model.reconstruction)
        values = loss_values(parts)
        if not math.isfinite(values["total"]):
            raise TrainingDiverged(self._diverged_message(values["total"], epoch, step))
        self.optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        self.optimizer.step()
        return values

    def _diverged_message(self, value: float, epoch: int, step: int) -> str:
        where = f"non-finite loss ({value}) at epoch {epoch + 1}, step {step + 1} of {self.steps_per_epoch}"
        ckpt = self.run_dir / runs.CHECKPOINT
        if not ckpt.is_file():
            return f"{where}; training stopped before any checkpoint was written"
        done = self.progress
        return f"{where}; training stopped, the last good checkpoint {ckpt} (epoch {done['epoch']}) is intact"

    def _save(self) -> None:
        """Checkpoint first (what --resume reads), then the weights and history derived from it."""
        save_checkpoint(self.run_dir / runs.CHECKPOINT, self.model, self.optimizer, self.progress)
        save_weights(self.run_dir / runs.WEIGHTS, self.model, {"kind": self.model.kind})
        runs.write_history(self.run_dir, self.progress["history"])


def format_epoch(row: dict[str, float], epochs: int) -> str:
    """The series' per-epoch log line: total, reco, weighted KL, throughput."""
    line = (
        f"epoch {int(row['epoch'])}/{epochs}  total {row['total']:.4f}  reco {row['reconstruction']:.4f}  "
        f"kl*w {row['weighted_kl']:.4g}  (kl {row['kl']:.4g})"
    )
    if "test_total" in row:
        line += f"  test {row['test_total']:.4f}"
    return line + f"  {row['images_per_s']:.0f} img/s"
