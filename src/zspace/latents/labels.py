"""Labels as colours: one rule shared by the report's sections and the explorer (no torch, so the report imports it)."""

from __future__ import annotations

from typing import Any

import numpy as np


def label_codes(labels: Any, names: list[str] | tuple[str, ...] = ()) -> tuple[np.ndarray, list[str]]:
    """Class codes and names to colour by: ``(codes (N,) int64, names)``.

    Labels 0..255 are their own codes, every class 0..max named (``names`` when they name them all, else the
    numbers), present or not; any other labels (negative, or as large as 1e9) are coded by their rank among the
    distinct values, each named by ``names[value]`` where there is one, so nothing is sized by a label's value.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) == 0 or (labels.min() >= 0 and labels.max() < 256):
        k = int(labels.max()) + 1 if len(labels) else 1
        return labels, list(names) if len(names) >= k else [str(i) for i in range(k)]
    values, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1), [names[v] if 0 <= v < len(names) else str(v) for v in values.tolist()]
