"""The seeded train/test split of sources that come without an official one."""

from __future__ import annotations

import numpy as np


def split_mask(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Mark ``round(n * test_fraction)`` items, drawn by ``seed``, as test items.

    Parameters
    ----------
    n : number of items.
    test_fraction : share of test items, in [0, 1). At least one item stays in training when n >= 2.
    seed : the split is a pure function of ``(n, test_fraction, seed)``.

    Returns
    -------
    test_mask : ndarray of shape (n,), bool.
    """
    n_test = min(round(n * test_fraction), max(n - 1, 0))
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return mask
