"""Safe, atomic weight and checkpoint files (safetensors: loading never executes code from the file).

A checkpoint is one safetensors file holding the model (``model/...``), the Adam state (``optim/...``) and the
RNG states (``rng/...``), with the training progress as JSON in its metadata. Every write goes to a temporary
file in the same folder, is fsynced, and replaces the old file with ``os.replace``: a kill during a save leaves
the last good file as it was. Both files carry a checksum of their contents and are refused at load when it does
not match, or when a weight is NaN or infinite (:mod:`zspace.runs.integrity`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from zspace.errors import CheckpointError
from zspace.io.atomic import atomic_write_bytes
from zspace.runs import integrity

WEIGHTS_FORMAT = "zspace-weights-1"
CHECKPOINT_FORMAT = "zspace-checkpoint-1"


def _read_safetensors(path: Path, data: bytes | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"weights file {path} is truncated or corrupt ({msg})") from None
    return tensors, metadata


def _state_tensors(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``module``, naming the first key or shape that does not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unknown tensor {extra[0]!r}"
        raise CheckpointError(f"weights in {source} are of another architecture: the file {what}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"weights in {source} are of another architecture: {k!r} is {tuple(state[k].shape)} in the "
                f"file but {tuple(v.shape)} in the model"
            )
    module.load_state_dict(state)


def save_weights(path: Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> None:
    """Atomically write the model's weights (and buffers) as safetensors."""
    meta = {"format": WEIGHTS_FORMAT, **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    tensors = _state_tensors(model)
    atomic_write_bytes(Path(path), st_save(tensors, metadata=integrity.signed(tensors, meta)))


def load_weights(path: Path, model: nn.Module, *, data: bytes | None = None) -> dict[str, Any]:
    """Load weights written by :func:`save_weights` into ``model``; returns their metadata.

    An edited file (checksum mismatch) or a NaN/infinite weight is a :class:`CheckpointError`, and nothing is
    loaded. ``data``: the file's bytes, already read.
    """
    tensors, meta = _read_safetensors(path, data)
    integrity.verify(Path(path), tensors, meta, "weights file")
    integrity.check_finite(Path(path), tensors)
    load_into(model, tensors, Path(path))
    try:
        return {k: json.loads(v) for k, v in meta.items() if k not in ("format", integrity.CHECKSUM)}
    except ValueError:
        raise CheckpointError(f"weights file {path} has metadata that is not valid JSON") from None


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {
        f"optim/{idx}/{name}": (t if torch.is_tensor(t) else torch.tensor(t)).detach().cpu().contiguous()
        for idx, state in sd["state"].items()
        for name, t in state.items()
    }
    return tensors, sd["param_groups"]


def _optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        _, idx, name = key.split("/", 2)
        state.setdefault(int(idx), {})[name] = t
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]) -> None:
    """Atomically write model, optimizer and RNG states plus the JSON-able ``progress`` dict."""
    tensors = _state_tensors(model, "model/")
    opt_tensors, groups = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    meta = {"format": CHECKPOINT_FORMAT, "progress": json.dumps(progress), "param_groups": json.dumps(groups)}
    atomic_write_bytes(Path(path), st_save(tensors, metadata=integrity.signed(tensors, meta)))


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    data: bytes | None = None,
    cuda_device: torch.device | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer and RNG states from :func:`save_checkpoint`; returns the progress dict.

    Anything missing or edited (a header key, the progress JSON, an RNG entry) is a :class:`CheckpointError`
    naming the file and what is wrong; nothing is restored unless everything checks out. ``data``: the file's
    bytes, already read (one process reads, the others get them). ``cuda_device``: one of several training
    processes, each on its own GPU: that GPU gets the RNG state rank 0's GPU had (all draw the same noise).
    ``epochs``: the run's ``train.epochs``; a checkpoint beyond it is refused. A checksum mismatch, a NaN or
    infinite weight, a learning rate that is not a positive number or a negative Adam step is refused too.
    """
    path = Path(path)
    tensors, meta = _read_safetensors(path, data)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a zspace checkpoint (format {meta.get('format')!r})")
    progress = _check_progress(path, _json_entry(path, meta, "progress"))
    groups = _json_entry(path, meta, "param_groups")
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}}
    for key, t in tensors.items():
        head, _, rest = key.partition("/")
        if head not in parts:
            raise CheckpointError(f"checkpoint {path} holds an unknown tensor {key!r}")
        parts[head][rest if head == "model" else key] = t
    rng = parts["rng"].get("rng/cpu")
    if rng is None or rng.dtype != torch.uint8 or rng.dim() != 1:
        raise CheckpointError(f"checkpoint {path} lacks a valid CPU RNG state (rng/cpu)")
    if rng.numel() != torch.get_rng_state().numel():
        raise CheckpointError(f"checkpoint {path} has an invalid CPU RNG state ({rng.numel()} bytes)")
    _check_state(path, tensors, meta, parts, progress, groups, epochs)
    load_into(model, parts["model"], path)
    try:
        optimizer.load_state_dict(_optimizer_state(parts["optim"], _with_live_flags(groups, optimizer)))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise CheckpointError(f"optimizer state in {path} does not fit the model: {e}") from None
    match_layouts(optimizer)
    try:
        torch.set_rng_state(rng)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} has an invalid CPU RNG state: {str(e).splitlines()[0]}") from None
    try:
        cuda_keys = sorted(
            (k for k in parts["rng"] if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1])
        )
    except ValueError:
        raise CheckpointError(f"checkpoint {path} has a malformed CUDA RNG entry") from None
    cuda_states = [parts["rng"][k] for k in cuda_keys]
    if cuda_states and cuda_device is not None:
        torch.cuda.set_rng_state(cuda_states[0], cuda_device)
    elif cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return progress


# How the optimiser runs on this machine (not what it learnt): kept from the live optimiser, never taken from a
# checkpoint written elsewhere (a GPU's fused=True resumed on a CPU, or a CPU's fused=False on a GPU).
_OPTIMIZER_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def _with_live_flags(groups: Any, optimizer: torch.optim.Optimizer) -> Any:
    """The checkpoint's param groups with the live optimiser's execution flags."""
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        return groups  # load_state_dict names what does not fit
    out = []
    for saved, live in zip(groups, optimizer.param_groups, strict=True):
        if not isinstance(saved, dict):
            return groups
        out.append({**saved, **{k: live[k] for k in _OPTIMIZER_FLAGS if k in live}})
    return out


def match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout.

    A checkpoint stores tensors contiguous (NCHW); a channels_last parameter's moments must be channels_last too:
    CUDA's fused Adam refuses mismatched strides, and the CPU's fused kernel would silently update the wrong
    elements of every conv weight.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for name, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[name] = torch.empty_like(p, dtype=v.dtype).copy_(v)  # empty_like keeps p's strides


def _check_state(path, tensors, meta, parts, progress, groups, epochs) -> None:
    """The checksum, then what even a file with a valid (or no) checksum must hold: finite weights and moments,
    some weights at all, a usable optimiser state and a history that fits the epoch."""
    integrity.verify(path, tensors, meta, "checkpoint")
    if not parts["model"]:
        raise CheckpointError(f"checkpoint {path} holds no model weights (no model/... tensors)")
    integrity.check_finite(path, parts["model"])
    integrity.check_finite(path, parts["optim"], "optimizer state")
    integrity.check_param_groups(path, groups)
    integrity.check_adam_steps(path, parts["optim"])
    integrity.check_history(path, progress, epochs)


def _json_entry(path: Path, meta: dict[str, str], key: str) -> Any:
    if key not in meta:
        raise CheckpointError(f"checkpoint {path} lacks its {key!r} header entry")
    try:
        return json.loads(meta[key])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: header entry {key!r} is not valid JSON ({e})") from None


_PROGRESS_INTS = ("epoch", "step", "global_step")


def _check_progress(path: Path, progress: Any) -> dict[str, Any]:
    """The progress entry must have non-negative integer counters, a history list and a partial sum or null."""
    if not isinstance(progress, dict):
        raise CheckpointError(f"checkpoint {path}: progress must be a JSON object, got {type(progress).__name__}")
    for key in _PROGRESS_INTS:
        value = progress.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"checkpoint {path}: progress {key!r} must be an integer >= 0, got {value!r}")
    history = progress.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise CheckpointError(f"checkpoint {path}: progress 'history' must be a list of epoch rows")
    partial = progress.get("partial")
    if partial is not None and not (
        isinstance(partial, dict) and all(isinstance(v, (int, float)) for v in partial.values())
    ):
        raise CheckpointError(f"checkpoint {path}: progress 'partial' must be null or an object of numbers")
    if partial is not None and not {"n", "total", "reconstruction", "kl", "weighted_kl"} <= set(partial):
        raise CheckpointError(f"checkpoint {path}: progress 'partial' lacks loss sums")
    return progress
