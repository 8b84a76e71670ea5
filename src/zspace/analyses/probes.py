"""Points of the latent space that are not data, to see what the decoder makes of them (SPEC 4.7).

The series decoded z drawn from N(0, I) and z with "equidistant" component values in [-2, 2] and [-10, 10]: a
VAE with a working KL term (fact 5) turns N(0, I) draws into faces, an AE or a tiny-KL VAE does not. Paths
between two data points are :mod:`zspace.latents.paths`.

Everything here is numpy; decoding the probes is the section's business.
"""

from __future__ import annotations

import numpy as np


def gaussian_probes(n: int, z_dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points z ~ N(0, I): ndarray of shape (n, z_dim), float32."""
    _check_sizes(n, z_dim)
    return rng.standard_normal((n, z_dim)).astype(np.float32)


def uniform_probes(n: int, z_dim: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` points with independent components uniform in [low, high): ndarray of shape (n, z_dim), float32."""
    _check_sizes(n, z_dim)
    _check_range(low, high)
    return rng.uniform(low, high, size=(n, z_dim)).astype(np.float32)


def equidistant_probes(n: int, z_dim: int, low: float, high: float) -> np.ndarray:
    """``n`` equally spaced points on the diagonal of the cube [low, high]^z_dim.

    Every component of probe ``i`` equals ``low + i * (high - low) / (n - 1)``, so probe 0 is (low, ..., low)
    and probe ``n - 1`` is (high, ..., high). This is our reading of the series' "equidistant distribution of
    component values": the component values step evenly through the range, the same on every axis.

    Returns
    -------
    ndarray of shape (n, z_dim), float32; ``n`` must be at least 2.
    """
    _check_sizes(n, z_dim)
    _check_range(low, high)
    if n < 2:
        raise ValueError(f"equidistant probes need n >= 2, got {n}")
    values = low + np.arange(n) * ((high - low) / (n - 1))
    return np.repeat(values[:, None], z_dim, axis=1).astype(np.float32)


def scale_to_radius(Z: np.ndarray, radius: float) -> np.ndarray:
    """Each row of ``Z`` (n, z_dim) rescaled to Euclidean norm ``radius`` (zero rows stay zero)."""
    Z = np.asarray(Z, dtype=np.float64)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return (Z * (radius / np.where(norms > 0, norms, 1.0))).astype(np.float32)


def mean_norm(Z: np.ndarray, *, chunk_size: int = 65_536) -> float:
    """Mean Euclidean norm of the rows of ``Z`` (n, z_dim), read in chunks (fine for a memory map)."""
    if len(Z) == 0:
        raise ValueError("mean_norm of an empty array")
    total = 0.0
    for start in range(0, len(Z), chunk_size):
        total += float(np.linalg.norm(np.asarray(Z[start : start + chunk_size], dtype=np.float64), axis=1).sum())
    return total / len(Z)


def image_stats(images: np.ndarray) -> dict[str, float]:
    """Brightness and variety of images (N, H, W, C) in [0, 1].

    ``mean``: mean pixel value; ``variance``: variance of all pixel values; ``within_image_std``: mean over the
    images of the std of each image's pixels (0 for flat images); ``between_image_std``: mean over pixels of
    the std across images (0 when every image is the same, e.g. a decoder that ignores its input).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"images must be a non-empty array (N, H, W, C), got shape {x.shape}")
    return {
        "mean": float(x.mean()),
        "variance": float(x.var()),
        "within_image_std": float(x.reshape(len(x), -1).std(axis=1).mean()),
        "between_image_std": float(x.std(axis=0).mean()),
    }


def reconstruction_error(x: np.ndarray, x_hat: np.ndarray, kind: str = "bce") -> np.ndarray:
    """Per-image reconstruction loss (N,) in the Keras convention of the series: channel mean, pixel sum.

    ``x`` and ``x_hat`` are images (N, H, W, C) in [0, 1]; ``kind`` is ``"bce"`` (``x_hat`` clipped to
    [1e-7, 1 - 1e-7] as Keras does) or ``"mse"``.
    """
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(f"x and x_hat must be image arrays (N, H, W, C) of one shape, got {x.shape}, {x_hat.shape}")
    if kind == "bce":
        p = np.clip(x_hat, 1e-7, 1 - 1e-7)
        per_value = -(x * np.log(p) + (1 - x) * np.log1p(-p))
    elif kind == "mse":
        per_value = (x - x_hat) ** 2
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r} (known: bce, mse)")
    return per_value.mean(axis=3).sum(axis=(1, 2))


def _check_sizes(n: int, z_dim: int) -> None:
    if n < 1 or z_dim < 1:
        raise ValueError(f"n and z_dim must be positive, got n={n}, z_dim={z_dim}")


def _check_range(low: float, high: float) -> None:
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"need finite low < high, got [{low}, {high}]")
