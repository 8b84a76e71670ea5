"""The training loop: Adam on the series' loss, atomic checkpoints, exact resume, a clear stop on NaN.

The trainer knows a model only through :class:`~zspace.models.LatentModel` (forward returns logits and an
encoding) and data only through :class:`~zspace.data.Dataset` (a uint8 image array and split indices).

Reproducibility: the batch order of epoch ``e`` is a pure function of ``(seed, e)``, and the global torch RNG
(the VAE's eps) is saved in every checkpoint, so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have (bit for bit on CPU; on CUDA up to cuDNN's nondeterministic algorithms).

Speed: the images can live on the device (``train.data_on_device``), the loss parts stay on the device and are
read back every ``train.log_every`` steps (a non-finite loss is still named at its exact step, and no checkpoint
is written before the steps since the last one were read back and found finite). Several processes train one
model through DistributedDataParallel (:mod:`zspace.train.distributed`). Ctrl-C stops at the next read-back with a
checkpoint of that exact position, so ``--resume`` continues as if nothing had happened.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zspace.config import RunConfig
from zspace.errors import ConfigError, DataError, TrainingDiverged
from zspace.io.atomic import atomic_write_bytes
from zspace.models import LatentModel
from zspace.models.inputs import to_tensor
from zspace.models.losses import LossParts, compute_loss
from zspace.runs import folder as runs
from zspace.runs.checkpoint import load_checkpoint, save_checkpoint, save_weights
from zspace.train.batches import epoch_order, global_batches, local_slice, make_batches
from zspace.train.distributed import SINGLE, World, all_sum, collectives, share_bytes
from zspace.train.precision import autocast, resolve_precision
from zspace.train.schedule import kl_factor

log = logging.getLogger(__name__)


@dataclass
class StepInfo:
    """Passed to ``on_step`` after every optimiser step (on the writing process only)."""

    epoch: int  # 0-based
    step: int  # 0-based step within the epoch
    steps_per_epoch: int
    loss: float  # the total loss of the last step read back from the device


def resolve_device(
    name: str,
    *,
    key: str = "train.device",
    cuda_available: bool | None = None,
    cuda_count: int | None = None,
    cuda_current: int | None = None,
) -> torch.device:
    """The device ``train.device = name`` means here: "auto" is CUDA when present, else CPU; a CUDA device always
    carries its index ("cuda" is "cuda:N" with N the current device), so that tensors placed on it compare equal
    to the device. ``key`` names the option in errors (``--device`` on the command line); ``cuda_*`` stand in for
    what torch reports (tests)."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if name == "auto":
        name = "cuda" if available else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key} {name!r} is not a device name") from None
    if device.type != "cuda":
        return device
    if not available:
        raise ConfigError(f"{key} is {name!r} but CUDA is not available here")
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    if device.index is None:
        return torch.device("cuda", torch.cuda.current_device() if cuda_current is None else cuda_current)
    if device.index >= count:
        raise ConfigError(f"{key} is {name!r} but this machine has {count} CUDA device(s)")
    return device


def iter_batches(x: np.ndarray, rows: np.ndarray, batch_size: int, start: int = 0) -> Iterator[np.ndarray]:
    """Gather the sorted global batches ``x[sort(rows[i*bs:(i+1)*bs])]`` from step ``start`` on."""
    for batch in global_batches(rows, batch_size, start):
        yield x[batch]


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
    model: LatentModel,
    x: np.ndarray,
    rows: np.ndarray,
    cfg: RunConfig,
    device: torch.device,
    epoch: int,
    *,
    precision: str = "fp32",
) -> dict[str, float]:
    """Mean loss parts over ``rows`` without gradients; the VAE's eps comes from its own generator.

    ``precision``: "fp32" or "bf16", the training's resolved precision."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed * 100_003 + epoch)
    sums = _Sums()
    for batch in iter_batches(x, rows, 2 * cfg.train.batch_size):
        xb = to_tensor(batch, device)
        with autocast(precision, device):
            out = model(xb, generator=gen)
        parts = compute_loss(out, xb, kl_weight=cfg.model.kl_weight, reconstruction=cfg.model.reconstruction)
        sums.add(loss_values(parts), len(batch))
    model.train(was_training)
    return sums.means()


@torch.no_grad()
def probe_radius(model: LatentModel, x: np.ndarray, rows: np.ndarray, device: torch.device, seed: int) -> dict:
    """Mean and density peak (intervals of 0.5) of ||z|| (and mean ||mu||) over the fixed probe images ``rows``.

    Tracked per epoch, it shows a jump like the series' R ~ 66 without eps clipping when it happens. The noise
    comes from a generator of its own, so probing leaves the training's random stream untouched.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    radii: dict[str, list[torch.Tensor]] = {"z": [], "mu": []}
    for batch in iter_batches(x, rows, 256):
        enc = model.encode(to_tensor(batch, device), generator=gen)
        radii["z"].append(enc.z.float().norm(dim=1).cpu())
        if enc.mu is not None:
            radii["mu"].append(enc.mu.float().norm(dim=1).cpu())
    model.train(was_training)
    r = torch.cat(radii["z"]).numpy()
    bins = np.bincount(np.floor(r / 0.5).astype(np.int64))
    out = {"radius_mean": float(r.mean()), "radius_peak": 0.5 * (int(bins.argmax()) + 0.5)}
    if radii["mu"]:
        out["mu_radius_mean"] = float(torch.cat(radii["mu"]).mean())
    return out


def compile_mode(value: bool | str) -> str | None:
    """``train.compile`` as torch.compile's mode: None (eager), "default" or "reduce-overhead" (CUDA graphs)."""
    if value is False:
        return None
    return "default" if value is True else str(value)


def fused_adam(device: torch.device) -> bool:
    """Whether this PyTorch has a fused Adam kernel for ``device`` (CUDA; CPU since PyTorch 2.4)."""
    return device.type in ("cuda", "cpu")


def check_batch_norm(batch_norm: bool, world: World, device: torch.device) -> None:
    """Several processes with BatchNorm need SyncBatchNorm (statistics over the global batch), which PyTorch
    runs on CUDA only: refused elsewhere, since per-process statistics would not be single-process training."""
    if batch_norm and world.distributed and device.type != "cuda":
        raise ConfigError(
            "model.batch_norm with several processes needs CUDA: BatchNorm statistics over the global batch "
            "(SyncBatchNorm) run on GPUs only; train in one process or without model.batch_norm"
        )


class LossStep(nn.Module):
    """The forward pass and loss of one batch as one module, so that torch.compile sees both (and, with
    "reduce-overhead", CUDA graphs replay both); returns the loss parts (4,) in fp32: total, reco, kl, weighted.
    The KL weight is a 0-d tensor argument, so a scheduled weight changes no compiled graph."""

    def __init__(self, net: nn.Module, cfg: RunConfig, precision: str):
        super().__init__()
        self.net, self.precision, self.reconstruction = net, precision, cfg.model.reconstruction

    def forward(self, x: torch.Tensor, kl_weight: torch.Tensor, eps_window: tuple | None = None) -> torch.Tensor:
        with autocast(self.precision, x.device):
            out = self.net(x, eps_window=eps_window)
        parts = compute_loss(out, x, kl_weight=kl_weight, reconstruction=self.reconstruction)
        return torch.stack([getattr(parts, k).float() for k in _PARTS])  # (4,)


@dataclass
class _Pending:
    """A step whose loss parts (a device tensor: 4 global means and the stop flag) are not yet read back."""

    step: int
    n: int  # images in the global batch
    values: torch.Tensor  # (5,)


class Trainer:
    """Trains ``model`` on the train split of ``data`` into the run folder ``run_dir``.

    ``world`` is this process's place among several (DistributedDataParallel); only its rank 0 writes.
    """

    def __init__(
        self, model: LatentModel, data: Any, cfg: RunConfig, run_dir: Path, device: torch.device, world: World = SINGLE
    ):
        self.model, self.data, self.cfg, self.run_dir, self.device = model, data, cfg, Path(run_dir), device
        self.world = world
        self.train_rows = data.indices("train")
        self.test_rows = data.indices("test")
        if len(self.train_rows) == 0:
            raise DataError(f"dataset {data.name!r} has no training items")
        tc = cfg.train
        self.precision = resolve_precision(tc.precision, device)
        self.compile_mode = compile_mode(tc.compile)
        # CUDA graphs want one batch shape: with "reduce-overhead" the last partial batch of an epoch is dropped
        # (its images come back in the next epoch's order), so no second graph is compiled and captured.
        self.drop_last = self.compile_mode == "reduce-overhead" and len(self.train_rows) >= tc.batch_size
        n_steps = len(self.train_rows) / tc.batch_size
        self.steps_per_epoch = math.floor(n_steps) if self.drop_last else math.ceil(n_steps)
        if self.drop_last and len(self.train_rows) % tc.batch_size:
            log.info("train.compile=reduce-overhead: the last %d images of each epoch's order are left out (static "
                     "shapes)", len(self.train_rows) % tc.batch_size)  # fmt: skip
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest algorithms once
        self.model.to(device)
        if tc.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self._wrap(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr, fused=fused_adam(device))
        self.feed = make_batches(data.x, device, tc.data_on_device)
        k = min(tc.radius_probe, len(self.train_rows))  # a fixed subset: the same images after every epoch
        self.probe_rows = np.sort(np.random.default_rng([tc.seed, 7]).choice(self.train_rows, k, replace=False))
        self.progress: dict[str, Any] = {"epoch": 0, "step": 0, "global_step": 0, "history": [], "partial": None}
        self.on_step: Callable[[StepInfo], None] | None = None
        self.on_epoch: Callable[[dict[str, float]], None] | None = None
        self._stop = torch.zeros((), device=device)  # set by Ctrl-C; summed over processes with the loss
        self._last_loss = float("nan")
        self.timings = {"checkpoint_s": 0.0, "checkpoints": 0}  # time spent writing checkpoints, apart
        self._kl_weight = torch.full((), cfg.model.kl_weight, device=device)  # the scheduled weight, on the device
        self._kl_scheduled = tc.kl_warmup_epochs > 0 or tc.kl_schedule != "constant"

    def _wrap(self, model: nn.Module) -> nn.Module:
        net = model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            check_batch_norm(self.cfg.model.batch_norm, self.world, self.device)
            if self.cfg.model.batch_norm:
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # same parameters, statistics over all processes
            ids = [self.device] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        step = LossStep(net, self.cfg, self.precision)
        if self.compile_mode is None:
            return step
        return torch.compile(step, mode=self.compile_mode, dynamic=False)  # static shapes (the last batch: one more)

    def resume(self, path: Path | None = None) -> None:
        """Restore model, optimizer, RNG and progress from the run's checkpoint (read once, shared by all).

        ``path``: another checkpoint to start from (``train.init_from``: a new run continuing, say, epoch 18 of
        an earlier one); its architecture must be this model's.
        """
        path = Path(path) if path is not None else self.run_dir / runs.CHECKPOINT
        data = share_bytes(self.world, path.read_bytes() if self.world.main and path.is_file() else None)
        cuda = self.device if self.world.distributed and self.device.type == "cuda" else None
        self.progress = load_checkpoint(
            path, self.model, self.optimizer, data=data, cuda_device=cuda, epochs=self.cfg.train.epochs
        )
        if self.world.main:
            runs.write_history(self.run_dir, self.progress["history"])
            if not (self.run_dir / runs.WEIGHTS).is_file():  # removed by hand: the checkpoint's weights are the run's
                self._save_weights()
        log.info("resuming %s at epoch %d, step %d", self.run_dir, self.progress["epoch"] + 1, self.progress["step"])

    def fit(self) -> list[dict[str, float]]:
        """Train until ``train.epochs``; returns the history (one dict per epoch)."""
        with self._ctrl_c():
            for epoch in range(self.progress["epoch"], self.cfg.train.epochs):
                self._run_epoch(epoch)
        return self.progress["history"]

    @contextlib.contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """The first Ctrl-C asks for a stop at the next read-back; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            self._stop.fill_(1.0)
            signal.signal(signal.SIGINT, previous)
            log.info("stopping at the next read-back with a checkpoint (Ctrl-C again to stop at once)")

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _batches(self, rows: np.ndarray, start: int) -> Iterator[tuple[int, int, tuple | None, torch.Tensor]]:
        """(step, global batch size, eps window, this process's uint8 batch on the device) per step."""
        w = self.world
        batches = list(global_batches(rows, self.cfg.train.batch_size, start))
        windows = [(*local_slice(len(b), w.rank, w.size), len(b)) for b in batches]
        local = (b[lo:hi] for b, (lo, hi, _) in zip(batches, windows, strict=True))
        for i, xb in enumerate(self.feed.iterate(local)):
            yield start + i, len(batches[i]), (windows[i] if w.distributed else None), xb

    def _run_epoch(self, epoch: int) -> None:
        tc, p = self.cfg.train, self.progress
        start_step = p["step"] if p["epoch"] == epoch else 0
        sums = _Sums(p["partial"] if start_step else None)
        rows = self.train_rows[epoch_order(len(self.train_rows), tc.seed, epoch)]
        if self.drop_last:
            rows = rows[: self.steps_per_epoch * tc.batch_size]
        self.model.train()
        t0, n_now, pending, stop = time.perf_counter(), 0, [], False
        for step, n, window, xb in self._batches(rows, start_step):
            pending.append(_Pending(step, n, self._step(xb, n, window)))
            n_now += n
            p["global_step"] += 1
            last = step + 1 == self.steps_per_epoch
            due = bool(tc.checkpoint_every) and p["global_step"] % tc.checkpoint_every == 0 and not last
            if len(pending) >= tc.log_every or due or last:
                stop = self._read_back(pending, sums, epoch)  # the same decision on every process
            if self.on_step and self.world.main:
                self.on_step(StepInfo(epoch, step, self.steps_per_epoch, self._last_loss))
            if (due or stop) and not last:
                p.update(epoch=epoch, step=step + 1, partial=sums.s)
                self._save()
                if stop:
                    raise KeyboardInterrupt
        self._end_epoch(epoch, sums, n_now, time.perf_counter() - t0)
        if stop:  # asked for during the epoch's last read-back: the epoch's checkpoint is the stop's
            raise KeyboardInterrupt

    def _end_epoch(self, epoch: int, sums: _Sums, n_now: int, seconds: float) -> None:
        p = self.progress
        row = {"epoch": epoch + 1, **sums.means(), "images_per_s": n_now / max(seconds, 1e-9), "seconds": seconds}
        if len(self.test_rows) and self.world.main:
            test = evaluate(
                self.model, self.data.x, self.test_rows, self.cfg, self.device, epoch, precision=self.precision
            )
            row.update(test_total=test["total"], test_reconstruction=test["reconstruction"], test_kl=test["kl"])
        if len(self.probe_rows) and self.world.main:
            row.update(probe_radius(self.model, self.data.x, self.probe_rows, self.device, self.cfg.train.seed))
        p["history"].append(row)
        p.update(epoch=epoch + 1, step=0, partial=None)
        self._save()
        if self.world.main:
            log.info(format_epoch(row, self.cfg.train.epochs))
            if self.on_epoch:
                self.on_epoch(row)

    def _step(self, xb: torch.Tensor, n: int, window: tuple | None) -> torch.Tensor:
        """One optimiser step on this process's slice; returns the global loss parts and stop flag (device)."""
        x = to_tensor(xb, self.device, channels_last=self.cfg.train.channels_last)  # (b, C, H, W)
        with collectives(self.world):  # DDP talks to the other processes in forward and in backward
            return self._update(x, n, window)

    def _update(self, x: torch.Tensor, n: int, window: tuple | None) -> torch.Tensor:
        if self.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new iteration: the last replay's outputs may be reused
        if self._kl_scheduled:
            self._kl_weight.fill_(self.cfg.model.kl_weight * self.kl_factor(self.progress["global_step"]))
        parts = self.net(x, self._kl_weight, window)  # (4,): total, reco, kl, weighted kl (batch means)
        values = torch.cat([parts.detach().clone(), self._stop[None]])  # (5,); a copy outlives the next replay
        loss = parts[0]
        if self.world.distributed:  # weights make DDP's gradient mean equal the global batch mean
            b = x.shape[0]
            # A process with an empty slice (the last global batch has fewer images than processes) has batch
            # means of nothing (NaN): it adds zeros to the sums; its gradients are sums over no image, zeros.
            local = values[:4] * b if b else torch.zeros_like(values[:4])
            values = all_sum(torch.cat([local, values[4:]]), self.world)
            values = torch.cat([values[:4] / n, values[4:]])
            loss = loss * (b * self.world.size / n)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return values

    def kl_factor(self, global_step: int) -> float:
        """The factor of ``model.kl_weight`` at a 0-based global step (:mod:`zspace.train.schedule`)."""
        tc = self.cfg.train
        return kl_factor(global_step, self.steps_per_epoch, tc.epochs, warmup_epochs=tc.kl_warmup_epochs,
                         schedule=tc.kl_schedule, cycles=tc.kl_cycles, ratio=tc.kl_cycle_ratio)  # fmt: skip

    def _read_back(self, pending: list[_Pending], sums: _Sums, epoch: int) -> bool:
        """One device sync for the pending steps; raises at the first non-finite loss; returns whether to stop."""
        with collectives(self.world):  # on CUDA a failed all-reduce may surface at this sync
            rows = torch.stack([q.values for q in pending]).tolist()
        for q, row in zip(pending, rows, strict=True):
            values = dict(zip(_PARTS, row[:4], strict=True))
            if not math.isfinite(values["total"]):
                raise TrainingDiverged(self._diverged_message(values["total"], epoch, q.step))
            sums.add(values, q.n)
            self._last_loss = values["total"]
        stop = any(row[4] > 0 for row in rows)
        pending.clear()
        return stop

    def _diverged_message(self, value: float, epoch: int, step: int) -> str:
        where = f"non-finite loss ({value}) at epoch {epoch + 1}, step {step + 1} of {self.steps_per_epoch}"
        ckpt = self.run_dir / runs.CHECKPOINT
        if not ckpt.is_file():
            return f"{where}; training stopped before any checkpoint was written"
        done = self.progress
        return f"{where}; training stopped, the last good checkpoint {ckpt} (epoch {done['epoch']}) is intact"

    def _save(self) -> None:
        """Checkpoint first (what --resume reads), then the weights and history derived from it (rank 0 only)."""
        if not self.world.main:
            return
        t0 = time.perf_counter()
        ckpt = self.run_dir / runs.CHECKPOINT
        save_checkpoint(ckpt, self.model, self.optimizer, self.progress)
        if self.cfg.train.keep_checkpoints and self.progress["step"] == 0:  # an epoch's end
            kept = self.run_dir / runs.KEPT / f"epoch-{self.progress['epoch']:03d}.safetensors"
            kept.parent.mkdir(exist_ok=True)
            atomic_write_bytes(kept, ckpt.read_bytes())
        self._save_weights()
        runs.write_history(self.run_dir, self.progress["history"])
        self.timings["checkpoint_s"] += time.perf_counter() - t0
        self.timings["checkpoints"] += 1

    def _save_weights(self) -> None:
        """The run's weights, with the epoch (and step within it) they are of: latents record both."""
        meta = {"kind": self.model.kind, "epoch": self.progress["epoch"], "step": self.progress["step"]}
        save_weights(self.run_dir / runs.WEIGHTS, self.model, meta)


def format_epoch(row: dict[str, float], epochs: int) -> str:
    """The series' per-epoch log line: total, reco, weighted KL, throughput."""
    line = (
        f"epoch {int(row['epoch'])}/{epochs}  total {row['total']:.4f}  reco {row['reconstruction']:.4f}  "
        f"kl*w {row['weighted_kl']:.4g}  (kl {row['kl']:.4g})"
    )
    if "test_total" in row:
        line += f"  test {row['test_total']:.4f}"
    return line + f"  {row['images_per_s']:.0f} img/s"


__all__ = ["StepInfo", "Trainer", "epoch_order", "evaluate", "iter_batches", "resolve_device", "to_tensor"]
