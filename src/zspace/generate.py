"""Generative use of a trained run: reconstruct images, decode latent points, sample, interpolate.

Every function takes what a user has at hand: numpy arrays or torch tensors; images as uint8 (0..255) or float
(in [0, 1]), laid out NHWC (numpy's and PIL's habit) or NCHW (torch's), one image or a batch; latent points as
(z_dim,) or (N, z_dim). Anything else is a one-line :class:`~zspace.errors.DataError` naming the shape that was
expected. Results are torch tensors (B, C, H, W) in [0, 1] on the model's device, as ``model.decode`` gives;
:func:`to_numpy_images` turns them into (B, H, W, C) float32 arrays for :mod:`zspace.figures.decode`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zspace.analyses.probes import interpolate as interpolate_path
from zspace.errors import ConfigError, DataError

if TYPE_CHECKING:
    from zspace.models import LatentModel

log = logging.getLogger(__name__)

PATHS = ("linear", "slerp")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _as_tensor(x: Any, what: str) -> torch.Tensor:
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


def as_images(x: Any, model: LatentModel) -> torch.Tensor:
    """Images in any accepted form -> float32 (B, C, H, W) in [0, 1] on the model's device.

    Parameters
    ----------
    x : ndarray or Tensor of shape (B, H, W, C), (B, C, H, W), (H, W, C), (C, H, W), or (B, H, W) / (H, W) for
        one-channel images; uint8 in 0..255 or float in [0, 1].
    model : the run's model; its ``cfg.image_size`` and ``cfg.channels`` are the shape wanted.
    """
    t = _as_tensor(x, "images")
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
    return _scaled(t).to(_device(model))


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
    t = _as_tensor(z, "z")
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


@torch.no_grad()
def reconstruct(model: LatentModel, x: Any, *, batch_size: int = 256) -> torch.Tensor:
    """Encode and decode images: a VAE decodes its ``mu`` (no sampling noise), an AE its ``z``.

    Parameters
    ----------
    x : images in any form :func:`as_images` accepts, B of them.

    Returns
    -------
    Tensor of shape (B, C, H, W), float32 in [0, 1], on the model's device.
    """
    images = as_images(x, model)
    out = []
    for start in range(0, len(images), batch_size):
        enc = model.encode(images[start : start + batch_size])
        out.append(model.decode(enc.mu if enc.mu is not None else enc.z))
    return torch.cat(out)


@torch.no_grad()
def decode(model: LatentModel, z: Any, *, batch_size: int = 256) -> torch.Tensor:
    """Decode latent points (N, z_dim) or (z_dim,), numpy or torch, to images (N, C, H, W) in [0, 1]."""
    zt = as_latents(z, model.cfg.z_dim, device=_device(model))
    return torch.cat(list(model.decode_batches(zt, batch_size=batch_size)))


@torch.no_grad()
def sample(model: LatentModel, n: int, *, sampler: Any = None, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Decode ``n`` points drawn from ``sampler`` (default: the prior N(0, I)); returns (n, C, H, W) in [0, 1].

    ``sampler`` is a fitted sampler of :mod:`zspace.samplers` (anything with ``sample(n, random_state=...)``
    returning (n, z_dim)) or the name ``"normal"``; samplers fitted on the latent points are made by
    :func:`zspace.samplers.fit_sampler` or loaded with :func:`zspace.samplers.load_sampler`.
    """
    from zspace.samplers import NormalSampler

    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"the number of samples must be an integer >= 1, got {n!r}")
    if sampler is None or sampler == "normal":
        sampler = NormalSampler(z_dim=model.cfg.z_dim)
    elif isinstance(sampler, str):
        raise ConfigError(f"sampler {sampler!r} must be fitted first: zspace.samplers.fit_sampler(run, {sampler!r})")
    z = sampler.sample(int(n), random_state=seed)  # (n, z_dim)
    return decode(model, z, batch_size=batch_size)


@torch.no_grad()
def interpolate(model: LatentModel, a: Any, b: Any, *, steps: int = 10, path: str = "linear") -> torch.Tensor:
    """Decode the ``steps`` points of a straight (``"linear"``) or great-circle (``"slerp"``) path from a to b.

    ``a`` and ``b`` are latent points (z_dim,) or, when they have the shape of one image, images, which are
    encoded first (``mu`` for a VAE). Returns a tensor of shape (steps, C, H, W) in [0, 1], ``a`` first.
    """
    if path not in PATHS:
        raise ConfigError(f"unknown interpolation path {path!r} (known: {', '.join(PATHS)})")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 2:
        raise ConfigError(f"interpolation steps must be an integer >= 2, got {steps!r}")
    ends = [_endpoint(model, v, name) for v, name in ((a, "a"), (b, "b"))]
    points = interpolate_path(ends[0], ends[1], int(steps), path)  # (steps, z_dim)
    return decode(model, points.astype(np.float32))


def _endpoint(model: LatentModel, v: Any, name: str) -> np.ndarray:
    """A path end as a latent point (z_dim,): given as one, or encoded from one image."""
    t = _as_tensor(v, name)
    z_dim = model.cfg.z_dim
    if tuple(t.shape) in ((z_dim,), (1, z_dim)):
        return as_latents(t, z_dim)[0].numpy().astype(np.float64)
    if t.ndim >= 2 and t.numel() == model.cfg.channels * model.cfg.image_size**2:
        enc = model.encode(as_images(t, model))
        return (enc.mu if enc.mu is not None else enc.z)[0].float().cpu().numpy().astype(np.float64)
    size, c = model.cfg.image_size, model.cfg.channels
    raise DataError(
        f"{name} must be a latent point ({z_dim},) or one image ({size}, {size}, {c}) for this run, got {list(t.shape)}"
    )


def to_numpy_images(images: torch.Tensor) -> np.ndarray:
    """Images (B, C, H, W) -> ndarray of shape (B, H, W, C), float32, on the CPU (for the grid figures)."""
    return images.detach().permute(0, 2, 3, 1).float().cpu().numpy()
