"""Integrity of weight and checkpoint files: a checksum over their contents, finite weights, a plausible state.

Every ``.safetensors`` file zspace writes carries, in its metadata, the sha256 of its tensors (name, dtype,
shape and bytes, in name order) and of its other metadata entries: a file edited by hand, or damaged without
breaking its format, no longer matches and is refused with one line. Files written before the checksum existed
still load, with a logged note. Independently of the checksum, loading refuses non-finite weights and a training
state that cannot be (a history that does not fit the epoch, an epoch beyond ``train.epochs``, a learning rate
that is not a positive number, a negative Adam step).
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import torch

from zspace.errors import CheckpointError

log = logging.getLogger(__name__)

CHECKSUM = "sha256"  # the metadata entry holding the checksum


def _feed(h: Any, *parts: str) -> None:
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)


def content_sha256(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over the metadata (without the checksum entry) and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for key in sorted(k for k in metadata if k != CHECKSUM):
        _feed(h, key, str(metadata[key]))
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        _feed(h, name, str(t.dtype), repr(tuple(t.shape)))
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def signed(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, str]:
    """``metadata`` with the checksum of ``tensors`` and ``metadata`` added."""
    return {**metadata, CHECKSUM: content_sha256(tensors, metadata)}


def verify(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], what: str) -> None:
    """Refuse a file whose contents do not match its checksum; a file without one is loaded with a note."""
    saved = metadata.get(CHECKSUM)
    if saved is None:
        log.info("%s %s carries no checksum (written by an older zspace): its integrity is not verified", what, path)
        return
    if saved != content_sha256(tensors, metadata):
        raise CheckpointError(f"{what} {path} is edited or corrupt (checksum mismatch)")


def check_finite(path: Path, tensors: dict[str, torch.Tensor], what: str = "weights") -> None:
    """Refuse NaN or infinity in any floating-point tensor, naming the first one (``what``: weights, ...)."""
    for name in sorted(tensors):
        t = tensors[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path} holds non-finite {what} in {name}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Optimiser hyper-parameters a checkpoint may carry: (check, what it must be).
_GROUP_KEYS = {
    "lr": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "eps": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "betas": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_number(b) and 0 <= b < 1 for b in v),
        "two numbers in [0, 1)",
    ),
}


def check_param_groups(path: Path, groups: Any) -> None:
    """Each optimiser group's learning rate (and eps, weight decay, betas, where present) must be usable."""
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise CheckpointError(f"checkpoint {path}: 'param_groups' must be a list of objects")
    for i, group in enumerate(groups):
        if "lr" not in group:
            raise CheckpointError(f"checkpoint {path}: optimizer group {i} has no learning rate ('lr')")
        for key, (ok, must) in _GROUP_KEYS.items():
            if key in group and not ok(group[key]):
                raise CheckpointError(f"checkpoint {path}: optimizer {key!r} must be {must}, got {group[key]!r}")


def check_adam_steps(path: Path, optim: dict[str, torch.Tensor]) -> None:
    """Adam's step counters (``optim/<i>/step``) must be single non-negative integers."""
    for key in sorted(k for k in optim if k.endswith("/step")):
        t = optim[key]
        value = float(t.reshape(-1)[0]) if t.numel() == 1 else float("nan")
        if not (math.isfinite(value) and value >= 0 and value == int(value)):
            shown = t.tolist() if t.numel() <= 4 else f"a tensor of shape {tuple(t.shape)}"
            raise CheckpointError(f"checkpoint {path}: Adam step {key} must be an integer >= 0, got {shown}")


def check_history(path: Path, progress: dict[str, Any], epochs: int | None = None) -> None:
    """History rows numbered 1, 2, ... and no more of them than finished epochs; the epoch within [0, epochs]."""
    epoch, history = progress["epoch"], progress["history"]
    if epochs is not None and epoch > epochs:
        raise CheckpointError(
            f"checkpoint {path} is at epoch {epoch}, beyond train.epochs = {epochs}; raise --epochs to continue it"
        )
    if len(history) > epoch:
        raise CheckpointError(f"checkpoint {path} holds {len(history)} history rows but only {epoch} finished epochs")
    for i, row in enumerate(history, start=1):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values())
        if row.get("epoch") != i or not numbers:
            raise CheckpointError(f"checkpoint {path}: history row {i} is not a row of numbers for epoch {i}")
