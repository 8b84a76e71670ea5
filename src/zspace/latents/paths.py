"""Paths between two latent points: straight lines and great circles (slerp).

Linear or spherical interpolation (slerp: Shoemake, SIGGRAPH 1985; for latent spaces White, "Sampling Generative
Networks", 2016): a linear path between two points of a Gaussian shell cuts through its low-density interior, a
great circle stays on the shell. Plain numpy; decoding a path is :func:`zspace.latents.generate.interpolate`.
"""

from __future__ import annotations

import numpy as np

PATHS = ("linear", "slerp")
PARALLEL_TOL = 1e-7  # |sin(angle)| below this: a and b are (anti)parallel and slerp falls back to a straight line


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
