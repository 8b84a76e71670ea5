"""Generative use of a trained run: reconstruct images, decode latent points, sample, interpolate.

Every function takes any model zspace can use (its own, ``zspace.wrap(...)``, an adapter, a pythae or diffusers
model: :func:`zspace.models.protocol.as_model`) and what a user has at hand: numpy arrays or torch tensors; images
as uint8 (0..255) or float (in [0, 1]), laid out NHWC (numpy's and PIL's habit) or NCHW (torch's), one image or a
batch; latent points as (z_dim,) or (N, z_dim). Anything else is a one-line :class:`~zspace.errors.DataError`
naming the shape that was expected. Results are torch tensors (B, C, H, W) in [0, 1] on the model's device, as
``model.decode`` gives; :func:`to_numpy_images` turns them into (B, H, W, C) float32 arrays for
:mod:`zspace.figures.decode`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zspace.errors import ConfigError, DataError
from zspace.latents.paths import PATHS
from zspace.latents.paths import interpolate as interpolate_path
from zspace.models.inputs import as_images, as_latents, as_tensor, model_device
from zspace.models.protocol import as_model

if TYPE_CHECKING:
    from zspace.models import LatentModel

log = logging.getLogger(__name__)


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
    model = as_model(model)
    images = as_images(x, model)
    out = []
    for start in range(0, len(images), batch_size):
        enc = model.encode(images[start : start + batch_size])
        out.append(model.decode(enc.mu if enc.mu is not None else enc.z))
    return torch.cat(out)


@torch.no_grad()
def decode(model: LatentModel, z: Any, *, batch_size: int = 256) -> torch.Tensor:
    """Decode latent points (N, z_dim) or (z_dim,), numpy or torch, to images (N, C, H, W) in [0, 1]."""
    model = as_model(model)
    zt = as_latents(z, model.cfg.z_dim, device=model_device(model))
    return torch.cat(list(model.decode_batches(zt, batch_size=batch_size)))


@torch.no_grad()
def sample(model: LatentModel, n: int, *, sampler: Any = None, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Decode ``n`` points drawn from ``sampler`` (default: the prior N(0, I)); returns (n, C, H, W) in [0, 1].

    ``sampler`` is a fitted sampler of :mod:`zspace.latents.samplers` (anything with ``sample(n, random_state=...)``
    returning (n, z_dim)) or the name ``"normal"``; samplers fitted on the latent points are made by
    :func:`zspace.latents.samplers.fit_sampler` or loaded with :func:`zspace.latents.samplers.load_sampler`.
    """
    from zspace.latents.samplers import NormalSampler

    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"the number of samples must be an integer >= 1, got {n!r}")
    model = as_model(model)
    if sampler is None or sampler == "normal":
        sampler = NormalSampler(z_dim=model.cfg.z_dim)
    elif isinstance(sampler, str):
        raise ConfigError(
            f"sampler {sampler!r} must be fitted first: zspace.latents.samplers.fit_sampler(run, {sampler!r})"
        )
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
    model = as_model(model)
    ends = [_endpoint(model, v, name) for v, name in ((a, "a"), (b, "b"))]
    points = interpolate_path(ends[0], ends[1], int(steps), path)  # (steps, z_dim)
    return decode(model, points.astype(np.float32))


def _endpoint(model: LatentModel, v: Any, name: str) -> np.ndarray:
    """A path end as a latent point (z_dim,): given as one, or encoded from one image."""
    t = as_tensor(v, name)
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
