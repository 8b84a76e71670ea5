"""Per-axis densities: the distribution of every latent coordinate, and the axes that are off-centre or broad.

The series found most axes of a CelebA AE's 256-dim latent space Gaussian around 0 ("half-width around 2") and
about five off-centre and broad (axis 52: centre 5, width 8). Here, per axis:

- centre: the median (robust; the histogram mode, ``peak``, is reported beside it);
- width: half the range between the ``tail`` and 1 - ``tail`` quantiles, by default half the central 95 %, i.e.
  1.96 std for a Gaussian, which is the post's "width": ~2 for a standard axis, 8 for x in -3 < x < 13;
- offset = (centre - median of all centres) / bulk width and breadth = width / bulk width, where the bulk width is
  the median width over all axes; score = hypot(offset, max(breadth - 1, 0)). An axis is flagged when
  |offset| > ``centre_threshold`` or breadth > ``breadth_threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analyses.radius import DEFAULT_CHUNK, check_latent, iter_rows


@dataclass
class AxisHistograms:
    """Counts of every coordinate per interval [edges[j], edges[j + 1]); values beyond the range are clipped in."""

    edges: np.ndarray  # (n_bins + 1,)
    counts: np.ndarray  # (z_dim, n_bins) int64
    clipped: int = 0  # values outside the range, counted in the outermost intervals

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def width(self) -> float:
        return float(self.edges[1] - self.edges[0])


def axis_histograms(
    Z: np.ndarray, *, width: float = 0.25, max_bins: int = 4000, chunk: int = DEFAULT_CHUNK
) -> AxisHistograms:
    """Histogram of every column of ``Z`` on common intervals of ``width`` aligned at 0.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    width : interval length (the series: 0.25).
    max_bins : at most this many intervals, centred on 0; values beyond are counted in the outermost ones.
    chunk : rows per block.
    """
    Z = check_latent(Z)
    if width <= 0 or max_bins < 1:
        raise ValueError(f"width must be > 0 and max_bins >= 1, got {width} and {max_bins}")
    lo_v, hi_v = np.inf, -np.inf
    for _, block in iter_rows(Z, chunk):
        lo_v, hi_v = min(lo_v, block.min()), max(hi_v, block.max())
    if not (np.isfinite(lo_v) and np.isfinite(hi_v)):
        raise ValueError("Z holds non-finite values")
    lo, hi = math.floor(lo_v / width), math.floor(hi_v / width) + 1  # in units of width
    if hi - lo > max_bins:
        lo, hi = -(max_bins // 2), max_bins - max_bins // 2
    n_bins, z_dim = hi - lo, Z.shape[1]
    counts = np.zeros(z_dim * n_bins, dtype=np.int64)
    offsets = np.arange(z_dim) * n_bins
    clipped = 0
    for _, block in iter_rows(Z, chunk):
        idx = np.floor(block / width).astype(np.int64) - lo
        clipped += int(np.count_nonzero((idx < 0) | (idx >= n_bins)))
        np.clip(idx, 0, n_bins - 1, out=idx)
        counts += np.bincount((idx + offsets).ravel(), minlength=z_dim * n_bins)
    return AxisHistograms(np.arange(lo, hi + 1) * width, counts.reshape(z_dim, n_bins), clipped)


def column_blocks(Z: np.ndarray, chunk: int = DEFAULT_CHUNK):
    """Blocks of whole columns as float64 copies, about ``chunk * z_dim`` values each: (column slice, block)."""
    n, d = Z.shape
    step = max(1, (chunk * d) // n)
    for start in range(0, d, step):
        cols = slice(start, min(start + step, d))
        yield cols, np.asarray(Z[:, cols], dtype=np.float64)


def axis_quantiles(Z: np.ndarray, q: Any, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Exact quantiles ``q`` of every column, computed on column blocks: ndarray of shape (len(q), z_dim)."""
    Z = check_latent(Z)
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    out = np.empty((len(q), Z.shape[1]))
    for cols, block in column_blocks(Z, chunk):
        out[:, cols] = np.quantile(block, q, axis=0)
    return out


@dataclass
class AxisStats:
    """Centre, width and outlier score of every axis; arrays of shape (z_dim,)."""

    centre: np.ndarray  # median
    peak: np.ndarray  # centre of the fullest histogram interval
    low: np.ndarray  # tail quantile
    high: np.ndarray  # 1 - tail quantile
    width: np.ndarray  # (high - low) / 2
    offset: np.ndarray  # (centre - bulk_centre) / bulk_width
    breadth: np.ndarray  # width / bulk_width
    score: np.ndarray  # hypot(offset, max(breadth - 1, 0))
    flagged: np.ndarray  # bool
    bulk_centre: float
    bulk_width: float
    tail: float

    @property
    def ranking(self) -> np.ndarray:
        """Axes by decreasing score (ties: lower axis first)."""
        return np.argsort(-self.score, kind="stable")

    def ranked_rows(self, k: int | None = None) -> list[dict[str, Any]]:
        """The ``k`` highest-scoring axes (all flagged ones at least) as plain dicts."""
        k = max(k or 0, int(self.flagged.sum()))
        return [
            {
                "axis": int(a),
                "centre": float(self.centre[a]),
                "peak": float(self.peak[a]),
                "width": float(self.width[a]),
                "offset": float(self.offset[a]),
                "breadth": float(self.breadth[a]),
                "score": float(self.score[a]),
                "flagged": bool(self.flagged[a]),
            }
            for a in self.ranking[:k]
        ]

    def to_metrics(self, k: int = 12) -> dict[str, Any]:
        return {
            "centre": "median",
            "width": f"half the {100 * self.tail:g} - {100 * (1 - self.tail):g} % range",
            "bulk_centre": self.bulk_centre,
            "bulk_width": self.bulk_width,
            "n_flagged": int(self.flagged.sum()),
            "flagged": [int(a) for a in self.ranking if self.flagged[a]],
            "ranked": self.ranked_rows(k),
            "centres": np.round(self.centre, 5).tolist(),
            "widths": np.round(self.width, 5).tolist(),
            "peaks": np.round(self.peak, 5).tolist(),
        }


def axis_stats(
    Z: np.ndarray,
    *,
    hist: AxisHistograms | None = None,
    tail: float = 0.025,
    centre_threshold: float = 1.0,
    breadth_threshold: float = 2.0,
    chunk: int = DEFAULT_CHUNK,
) -> AxisStats:
    """Centre, width and outlier score of every column of ``Z`` (see the module docstring).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    hist : the axes' histograms, for the mode; computed with width 0.25 when None.
    tail : the width is half the range between the ``tail`` and ``1 - tail`` quantiles.
    centre_threshold, breadth_threshold : flag |offset| > centre_threshold or breadth > breadth_threshold.
    chunk : rows per block (the quantiles use column blocks of about the same size).
    """
    if not 0 < tail < 0.5:
        raise ValueError(f"tail must be in (0, 0.5), got {tail}")
    Z = check_latent(Z)
    hist = hist if hist is not None else axis_histograms(Z, chunk=chunk)
    low, centre, high = axis_quantiles(Z, [tail, 0.5, 1 - tail], chunk=chunk)
    width = (high - low) / 2
    bulk_centre = float(np.median(centre))
    bulk_width = float(np.median(width))
    if bulk_width <= 0:  # most axes constant: measure in absolute units rather than divide by zero
        bulk_width = float(width.max()) or 1.0
    offset = (centre - bulk_centre) / bulk_width
    breadth = width / bulk_width
    score = np.hypot(offset, np.maximum(breadth - 1, 0))
    flagged = (np.abs(offset) > centre_threshold) | (breadth > breadth_threshold)
    peak = hist.centres[np.argmax(hist.counts, axis=1)]
    return AxisStats(centre, peak, low, high, width, offset, breadth, score, flagged, bulk_centre, bulk_width, tail)
