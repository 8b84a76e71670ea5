"""A t-SNE map as a feature space for the cluster classifier (beyond the series).

The series looked at t-SNE maps of MNIST and saw the classes as islands; clustering *on* such a map turns that
picture into a classifier. The map is fitted on the training points only (openTSNE); test points are placed on it
afterwards with openTSNE's ``transform`` (each optimised against the fixed training map), so no test point or label
shapes the map.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class TsneFeatures:
    """``train`` (n_train, 2) and ``test`` (n_test, 2) map coordinates, and the seconds fitting and placing took."""

    train: np.ndarray
    test: np.ndarray
    fit_seconds: float
    transform_seconds: float


def tsne_features(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    perplexity: float = 30.0,
    n_iter: int = 750,
    random_state: int = 0,
    n_jobs: int = -1,
) -> TsneFeatures:
    """Fit a 2-D t-SNE map on ``X_train`` (n_train, d) and place ``X_test`` (n_test, d) on it.

    Parameters
    ----------
    perplexity : effective number of neighbours (lowered for very small data).
    n_iter : iterations after the early-exaggeration phase (250 iterations, exaggeration 12).
    random_state : seeds the neighbour search and the optimisation.
    n_jobs : openTSNE threads; -1 = all cores.
    """
    from openTSNE import TSNE

    if len(X_train) < 4 or len(X_test) < 1:
        raise ValueError(
            f"a t-SNE map needs >= 4 training points and >= 1 test point, got {len(X_train)}, {len(X_test)}"
        )
    perplexity = min(perplexity, (len(X_train) - 1) / 3)
    t0 = time.perf_counter()
    tsne = TSNE(
        perplexity=perplexity,
        n_iter=n_iter,
        negative_gradient_method="fft" if len(X_train) >= 10_000 else "bh",
        random_state=random_state,
        n_jobs=n_jobs,
    )
    embedding = tsne.fit(np.asarray(X_train, dtype=np.float64))
    t1 = time.perf_counter()
    placed = embedding.transform(np.asarray(X_test, dtype=np.float64))
    t2 = time.perf_counter()
    log.info("t-SNE map of %d points in %.0f s, %d placed in %.0f s", len(X_train), t1 - t0, len(X_test), t2 - t1)
    return TsneFeatures(np.asarray(embedding), np.asarray(placed), t1 - t0, t2 - t1)
