"""Points of the latent space that are not data, to see what the decoder makes of them (SPEC 4.7).

The series decoded z drawn from N(0, I) and z with "equidistant" component values in [-2, 2] and [-10, 10]: a
VAE with a working KL term (fact 5) turns N(0, I) draws into faces, an AE or a tiny-KL VAE does not. Paths
between two data points are interpolated linearly or spherically (slerp: Shoemake, SIGGRAPH 1985; for latent
spaces White, "Sampling Generative Networks", 2016), since a linear path between two points of a Gaussian shell
cuts through its low-density interior.

Everything here is numpy; decoding the probes is the section's business.
"""

from __future__ import annotations

import numpy as np

PARALLEL_TOL = 1e-7  # |sin(angle)| below this: a and b are (anti)parallel and slerp falls back to a straight line


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


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, kind: str = "linear") -> np.ndarray:
    """``steps`` points from ``a`` to ``b`` (both included), on a straight line or a great circle.

    ``kind="slerp"`` uses Shoemake's formula on the vectors as they are (as White 2016 does for latent points):
    ``z(t) = sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b`` with ``w`` the angle between ``a`` and ``b``.
    For ``|a| = |b|`` every point keeps that norm (the path stays on the shell the data sit on); for unequal
    norms the norm moves smoothly from ``|a|`` to ``|b|``. When ``a`` and ``b`` are parallel, antiparallel
    (no unique great circle) or one is zero, slerp falls back to the straight line.

    Parameters
    ----------
    a, b : ndarray of shape (z_dim,)
    steps : int, at least 2
    kind : ``"linear"`` or ``"slerp"``

    Returns
    -------
    ndarray of shape (steps, z_dim), float64, with rows 0 and ``steps - 1`` exactly ``a`` and ``b``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be vectors of the same length, got shapes {a.shape} and {b.shape}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if kind not in ("linear", "slerp"):
        raise ValueError(f"unknown interpolation {kind!r} (known: linear, slerp)")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    wa, wb = 1.0 - t, t
    if kind == "slerp":
        omega = _angle(a, b)
        if omega is not None and abs(np.sin(omega)) > PARALLEL_TOL:
            wa, wb = np.sin(wa * omega) / np.sin(omega), np.sin(wb * omega) / np.sin(omega)
    path = wa * a + wb * b
    path[0], path[-1] = a, b
    return path


def _angle(a: np.ndarray, b: np.ndarray) -> float | None:
    """Angle between ``a`` and ``b`` in radians; None when one of them is zero."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return None
    return float(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)))


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
