"""Measure the rates of zspace.io.limits' cost model and print them against the constants (issue 16, part 3).

Each rate is timed on small fits of the code the estimates guard (faiss Lloyd through elbow_curve, the passes over
all points, the classifier's KMeans, exact neighbour search, openTSNE, the series' decoder) and printed beside the
constant in zspace.io.limits, with their ratio. For a rate, a ratio far below 1 means the constant promises more
speed than this machine has (the estimates refuse too little); far above 1, too much. For KMEANS_FIT_SECONDS, a
cost, the other way round. The constants were set from runs of this script on the development machine (2 shared
cores), rounded down (a conservative estimate refuses sooner).

    python benchmarks/limits_calibration.py            # about a minute
    python benchmarks/limits_calibration.py --quick    # smaller fits (a smoke test)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from zspace.analyses.classifier import ClusterClassifier
from zspace.analyses.elbow import elbow_curve
from zspace.analyses.kmeans import group_inertia
from zspace.analyses.manifold_nn import neighbour_distances
from zspace.analyses.tsne import tsne_map
from zspace.config import ModelConfig
from zspace.io import limits
from zspace.models import build_model


def timed(fn, repeats: int = 2) -> float:
    """The fastest of ``repeats`` runs (the least disturbed by other jobs), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def kmeans_fit_seconds(fits: int) -> float:
    """The fixed cost of one fit: ``fits`` fits of k = 2 on 200 x 2 points (no real work), per fit."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 2)).astype(np.float32), rng.integers(0, 2, 200)
    return timed(lambda: ClusterClassifier(2, algorithm="lloyd", n_init=fits, random_state=0).fit(X, y)) / fits


def kmeans_rate(n: int, d: int, ks: list[int], restarts: int) -> float:
    """Distance evaluations per second of the elbow's Lloyd fits; the fixed cost per fit and the estimated passes
    over all points (at PASS_RATE) taken off."""
    X = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    seconds = timed(lambda: elbow_curve(X, ks, restarts=restarts, seed=0))
    rate, limits.KMEANS_RATE = limits.KMEANS_RATE, float("inf")
    try:
        rest = limits.estimate_kmeans_seconds(n, d, ks, restarts)  # fixed costs and passes, no fits
    finally:
        limits.KMEANS_RATE = rate
    work = (limits.estimate_kmeans_seconds(n, d, ks, restarts) - rest) * rate
    return work / max(seconds - rest, 1e-3)


def pass_rate(n: int, d: int, ks: list[int]) -> float:
    """Multiply-adds per second of a pass over all points: the exact inertia of several centre sets at once."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    sets = [rng.normal(size=(k, d)).astype(np.float32) for k in ks]
    return n * sum(ks) * d / timed(lambda: group_inertia(X, sets))


def classifier_seconds_ratio(n: int, d: int, k: int, n_init: int) -> float:
    """The wifi study's classifier fits: estimated seconds / measured seconds (above 1: the estimate is safe)."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, n)
    seconds = timed(lambda: ClusterClassifier(k, algorithm="lloyd", n_init=n_init, random_state=0).fit(X, y))
    return limits.estimate_kmeans_seconds(n, d, [k], n_init) / seconds


def knn_rate(n: int, d: int, k: int) -> float:
    X = np.random.default_rng(2).normal(size=(n, d)).astype(np.float32)
    seconds = timed(lambda: neighbour_distances(X, k))
    return n * n * d / seconds


def tsne_rate(n: int, d: int, n_iter: int) -> float:
    X = np.random.default_rng(3).normal(size=(n, d)).astype(np.float32)
    seconds = timed(lambda: tsne_map(X, preset="default", n_iter=n_iter, n_queries=None), repeats=1)
    return n * n_iter / seconds


def decode_rate(n: int) -> float:
    torch.manual_seed(0)
    model = build_model(ModelConfig(z_dim=256, image_size=96, channels=3)).eval()
    z = torch.randn(n, 256)
    with torch.inference_mode():
        seconds = timed(lambda: model.decode(z))
    return n * 96 * 96 * 3 / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller fits")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = 0.25 if args.quick else 1.0
    rows = [
        ("KMEANS_RATE", "elbow: faiss Lloyd, 8000 x 32, k = 8, 16, 32, 64, 2 restarts", limits.KMEANS_RATE,
         lambda: kmeans_rate(int(8000 * s), 32, [8, 16, 32, 64], 2)),
        ("PASS_RATE", "inertia pass: 200,000 x 256 against 512 centres (4 sets)", limits.PASS_RATE,
         lambda: pass_rate(int(200_000 * s), 256, [64, 128, 64, 256])),
        ("KMEANS_FIT_SECONDS", "fixed cost of a k-means fit (k = 2 on 200 x 2, 40 fits)", limits.KMEANS_FIT_SECONDS,
         lambda: kmeans_fit_seconds(40)),
        ("(estimate)", "the wifi study's fits: 1500 x 7, k = 11, n_init 10: measured / estimated s", 1.0,
         lambda: 1 / classifier_seconds_ratio(1500, 7, 11, 10)),
        ("KNN_RATE", "exact neighbours (faiss + float64), 8000 x 32, k = 20", limits.KNN_RATE,
         lambda: knn_rate(int(8000 * s), 32, 20)),
        ("TSNE_RATE", "openTSNE FFT, 4000 x 10, 500 iterations", limits.TSNE_RATE,
         lambda: tsne_rate(int(4000 * s), 10, 500)),
        ("DECODE_RATE", "the series' 96x96 decoder (z_dim 256), 64 images", limits.DECODE_RATE,
         lambda: decode_rate(int(64 * s) or 8)),
    ]  # fmt: skip
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'constant':<18} {'measured':>10} {'constant':>10} {'ratio':>6}  what")
    for name, what, constant, measure in rows:
        rate = measure()
        print(f"{name:<18} {rate:>10.3g} {constant:>10.3g} {rate / constant:>6.2f}  {what}", flush=True)


if __name__ == "__main__":
    main()
