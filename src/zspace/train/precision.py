"""Which arithmetic a training run uses: ``train.precision`` = "auto", "fp32" or "bf16".

"auto" is bf16 autocast where the hardware has bf16 matrix units, fp32 elsewhere: on CUDA devices that support
bf16, and on CPUs with AMX-BF16 tiles (Intel Sapphire Rapids and later). The CPU is detected, not assumed:
``avx512_bf16`` alone is not enough (on the AMD machines of an earlier round, bf16 autocast on the CPU ran at 0.08x
of fp32). Under autocast the loss, the VAE's eps and the latent heads stay in fp32
(:func:`zspace.models.conv.full_precision`), so a tiny-KL VAE's sigma * eps (logvar -8 to -20) is not rounded away.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``'s first ``flags`` line); empty where there is none."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@functools.cache
def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU has AMX-BF16 tiles (and the kernel lets us use them)."""
    return "amx_bf16" in cpu_flags()


def resolve_precision(
    name: str, device: torch.device, *, cpu_bf16: bool | None = None, cuda_bf16: bool | None = None
) -> str:
    """ "fp32" or "bf16" for ``train.precision = name`` on ``device``; "auto" decides by the hardware.

    ``cpu_bf16`` / ``cuda_bf16`` stand in for the detection (tests).
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r} (known: {', '.join(PRECISIONS)})")
    if name != "auto":
        return name
    if device.type == "cuda":
        ok = _cuda_bf16() if cuda_bf16 is None else cuda_bf16
        why = "CUDA device with bf16"
    elif device.type == "cpu":
        ok = cpu_has_bf16_matrix_units() if cpu_bf16 is None else cpu_bf16
        why = "CPU with AMX-BF16"
    else:
        ok, why = False, device.type
    chosen = "bf16" if ok else "fp32"
    _log_once(chosen, why if ok else f"no bf16 matrix units found on {device.type}")
    return chosen


def _cuda_bf16() -> bool:
    """bf16 in hardware (Ampere and later), not emulated (a V100 or T4 would emulate it slowly)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older PyTorch without the argument
        return torch.cuda.get_device_capability() >= (8, 0)


@functools.cache
def _log_once(chosen: str, why: str) -> None:
    log.info("train.precision auto: %s (%s)", chosen, why)


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """bf16 autocast when ``precision`` (resolved) is "bf16", else a disabled autocast."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
