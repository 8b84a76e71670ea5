"""Peak memory and speed of training steps; memory is measured in a fresh process per configuration.

On CUDA: ``torch.cuda.max_memory_allocated``. On CPU: the growth of the process's peak resident set size
(``ru_maxrss``) from just before the model is built to after the steps, so imports and the batch do not count.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from dataclasses import asdict
from typing import Any

import torch

from zspace.config import ModelConfig
from zspace.models import build_model
from zspace.models.losses import compute_loss


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _measure(cfg_dict: dict[str, Any], batch_size: int, steps: int, device: str) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = ModelConfig(**{**cfg_dict, "filters": tuple(cfg_dict["filters"])})
    dev = torch.device(device)
    x = torch.rand(batch_size, cfg.channels, cfg.image_size, cfg.image_size, device=dev)
    before = _rss_mib()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    model = build_model(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    for _ in range(steps):
        loss = compute_loss(model(x), x, kl_weight=cfg.kl_weight, reconstruction=cfg.reconstruction).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = {"cpu_peak_growth_mib": _rss_mib() - before}
    if dev.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def peak_training_memory(cfg: ModelConfig, *, batch_size: int = 128, steps: int = 2, device: str = "cpu") -> dict:
    """Peak memory (MiB) of ``steps`` Adam steps of the model of ``cfg`` on random images, in a new process."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_measure, (asdict(cfg), batch_size, steps, device))


def training_speed(
    cfg: ModelConfig, *, batch_size: int = 128, steps: int = 10, warmup: int = 2, device: str = "cpu", seed: int = 0
) -> dict[str, float]:
    """Images per second of Adam steps of the model of ``cfg`` on random images (``warmup`` untimed steps first).

    Returns ``images_per_s`` and ``epoch_s_170k``: the seconds one epoch of the series' 170,000 images would take.
    """
    import time

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = build_model(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.rand(batch_size, cfg.channels, cfg.image_size, cfg.image_size, device=dev)

    def step() -> None:
        loss = compute_loss(model(x), x, kl_weight=cfg.kl_weight, reconstruction=cfg.reconstruction).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    rate = steps * batch_size / (time.perf_counter() - t0)
    return {"images_per_s": rate, "epoch_s_170k": 170_000 / rate}
