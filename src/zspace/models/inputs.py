"""What the models take in: images and latent points in the forms users have, coerced to tensors.

Images as uint8 (0..255) or float (in [0, 1]), laid out NHWC (numpy's and PIL's habit) or NCHW (torch's), one image
or a batch; latent points as (z_dim,) or (N, z_dim). Anything else is a one-line
:class:`~zspace.errors.DataError` naming the shape that was expected.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from zspace.errors import DataError


def to_tensor(images: np.ndarray | torch.Tensor, device: torch.device, *, channels_last: bool = False) -> torch.Tensor:
    """uint8 images (B, H, W, C) -> float (B, C, H, W) in [0, 1] on ``device``."""
    t = images if torch.is_tensor(images) else torch.from_numpy(np.ascontiguousarray(images))
    if t.device != device:
        if t.device.type == "cpu" and device.type == "cuda":
            t = t.pin_memory()  # only a host tensor can be pinned (a "cuda" vs "cuda:0" mismatch must not get here)
        t = t.to(device, non_blocking=True)
    x = t.permute(0, 3, 1, 2).float().div_(255.0)  # (B, C, H, W)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def model_device(model: Any) -> torch.device:
    """The device of a model's first parameter or buffer; the CPU for a model without any (plain callables)."""
    params, buffers = getattr(model, "parameters", None), getattr(model, "buffers", None)
    for t in itertools.chain(params() if callable(params) else (), buffers() if callable(buffers) else ()):
        return t.device
    return torch.device("cpu")


def as_tensor(x: Any, what: str) -> torch.Tensor:
    """A torch tensor view of ``x`` (numpy array, tensor, nested list); DataError for anything else."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} must be a numpy array or a torch tensor, got {type(x).__name__} ({e})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # torch warns on read-only memory


def as_images(x: Any, model: torch.nn.Module) -> torch.Tensor:
    """Images in any accepted form -> float32 (B, C, H, W) in [0, 1] on the model's device.

    Parameters
    ----------
    x : ndarray or Tensor of shape (B, H, W, C), (B, C, H, W), (H, W, C), (C, H, W), or (B, H, W) / (H, W) for
        one-channel images; uint8 in 0..255 or float in [0, 1].
    model : the run's model (a module with ``cfg.image_size`` and ``cfg.channels``: the shape wanted).
    """
    t = as_tensor(x, "images")
    size, c = model.cfg.image_size, model.cfg.channels
    nchw, nhwc = (c, size, size), (size, size, c)
    shape = tuple(t.shape)
    if c == 1 and shape[-2:] == (size, size) and len(shape) in (2, 3) and (len(shape) == 2 or shape[0] != 1):
        t = t.reshape(-1, 1, size, size)  # (B, H, W) or (H, W) grey images
    elif len(shape) == 3 and shape in (nchw, nhwc):
        t = t.unsqueeze(0)
    if t.ndim != 4 or tuple(t.shape[1:]) not in (nchw, nhwc) or t.shape[0] == 0:
        raise DataError(
            f"images must have shape (B, {size}, {size}, {c}) or (B, {c}, {size}, {size}) for this run, got "
            f"{list(shape)}"
        )
    prefer_nchw = isinstance(x, torch.Tensor)  # only ambiguous when C equals the image size
    if tuple(t.shape[1:]) == nhwc and not (prefer_nchw and tuple(t.shape[1:]) == nchw):
        t = t.permute(0, 3, 1, 2)  # (B, C, H, W)
    return _scaled(t).to(model_device(model))


def _scaled(t: torch.Tensor) -> torch.Tensor:
    """uint8 -> /255; float must already lie in [0, 1]."""
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    if t.dtype == torch.bool or not t.is_floating_point():
        raise DataError(f"images must be uint8 (0..255) or float (0..1), got {t.dtype}")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise DataError("images contain NaN or infinite values")
    low, high = float(t.min()), float(t.max())
    if low < 0.0 or high > 1.0:
        raise DataError(f"float images must lie in [0, 1], got values in [{low:g}, {high:g}] (uint8 for 0..255)")
    return t.contiguous()


def as_latents(z: Any, z_dim: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """Latent points (z_dim,) or (N, z_dim), numpy or torch, any real dtype -> float32 (N, z_dim) on ``device``."""
    t = as_tensor(z, "z")
    shape = list(t.shape)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != z_dim or t.shape[0] == 0:
        raise DataError(f"z must have shape (N, {z_dim}) or ({z_dim},) for this run, got {shape}")
    if t.is_complex() or t.dtype == torch.bool:
        raise DataError(f"z must be real numbers, got {t.dtype}")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise DataError("z contains NaN or infinite values")
    return t.to(device)
