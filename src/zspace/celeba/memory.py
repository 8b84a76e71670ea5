"""Peak memory of training steps, measured in a fresh process per configuration.

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
from zspace.losses import compute_loss
from zspace.models import build_model


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
