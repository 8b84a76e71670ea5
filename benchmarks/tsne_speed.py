"""t-SNE of MNIST: zspace's ``embed_tsne`` (openTSNE, FFT) against scikit-learn's ``TSNE`` (Barnes-Hut) in one run.

Both get the same input: the 70,000 MNIST images (train + test), pixels / 255, projected onto their first 50
principal components (computed once, not timed), and the same parameters: perplexity 30, early exaggeration 12,
1000 iterations (250 exaggerated), PCA initialisation. Quality is the share of each point's 10 nearest
neighbours in the 50-d PCA space that stay among its 10 nearest in the map (``knn_preservation``, the same
5,000 query points for both).

Target: zspace's time <= 1/3 of scikit-learn's, with at least the same kNN preservation.

Threads: scikit-learn's Barnes-Hut gradient always uses every OpenMP thread (its ``n_jobs`` only sets the
neighbour search); ``--threads T`` caps OpenMP/BLAS for both and gives both T jobs, for a same-threads comparison.

    python benchmarks/tsne_speed.py [--data DIR] [--n 70000] [--sklearn-n-jobs -1] [--n-jobs -1] [--threads 0]
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_info, threadpool_limits

from zspace.analyses.tsne import embed_tsne, knn_preservation
from zspace.config import DataConfig
from zspace.data import load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_pca(path: Path, n: int, components: int, seed: int) -> np.ndarray:
    """``n`` MNIST images (all when n >= 70,000, else a fixed random subset) as /255 pixels on ``components`` PCs."""
    data = load_dataset(DataConfig(name="mnist", path=str(path)))
    rows = np.arange(len(data))
    if n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    x = np.asarray(data.x[rows], dtype=np.float32).reshape(len(rows), -1) / 255.0
    return PCA(n_components=components, random_state=seed).fit_transform(x).astype(np.float32)


def run_sklearn(X: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"  # renamed in 1.5
    tsne = TSNE(
        n_components=2,
        perplexity=args.perplexity,
        early_exaggeration=12.0,
        learning_rate="auto",
        init="pca",
        method="barnes_hut",
        random_state=args.seed,
        n_jobs=args.sklearn_n_jobs,
        **{iters: args.n_iter},
    )
    return tsne.fit_transform(X)


def run_zspace(X: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    return embed_tsne(
        X,
        perplexity=args.perplexity,
        early_exaggeration=12.0,
        n_iter=args.n_iter,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )


def timed(fn, *a) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the four MNIST idx files")
    p.add_argument("--n", type=int, default=70_000, help="points (a fixed random subset when < 70,000)")
    p.add_argument("--pca", type=int, default=50, help="principal components given to both")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--n-iter", type=int, default=1000, help="iterations in all (250 of them exaggerated)")
    p.add_argument("--queries", type=int, default=5_000, help="query points of the kNN-preservation score")
    p.add_argument("--n-jobs", type=int, default=-1, help="threads for zspace (openTSNE)")
    p.add_argument("--sklearn-n-jobs", type=int, default=-1, help="threads for scikit-learn's TSNE")
    p.add_argument("--threads", type=int, default=0, help="> 0: cap both at this many threads; 0 = as they are")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads > 0:
        _limits = threadpool_limits(args.threads)  # held for the whole run
        args.n_jobs = args.sklearn_n_jobs = args.threads

    omp = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; OpenMP threads {omp}")
    print(f"jobs: zspace {args.n_jobs}, sklearn {args.sklearn_n_jobs} (neighbour search; its gradient uses OpenMP)")
    X, prep = timed(mnist_pca, args.data, args.n, args.pca, args.seed)
    print(f"data: {len(X):,} MNIST images -> PCA {X.shape[1]} ({prep:.1f} s, not counted)")
    print(f"t-SNE: perplexity {args.perplexity:g}, early exaggeration 12, {args.n_iter} iterations, PCA init\n")

    results = {}
    for name, fn in (("zspace", run_zspace), ("sklearn", run_sklearn)):
        Y, seconds = timed(fn, X, args)
        knn = knn_preservation(X, Y, 10, n_queries=args.queries, random_state=args.seed)
        results[name] = (seconds, knn)
        print(f"{name:8s} {seconds:9.1f} s   kNN(10) kept {knn:.4f}", flush=True)

    (t_ours, k_ours), (t_sk, k_sk) = results["zspace"], results["sklearn"]
    speed, quality = t_ours / t_sk, k_ours / k_sk
    print(f"\ntime zspace / sklearn: {speed:.3f} (target <= 0.333): {'PASS' if speed <= 1 / 3 else 'FAIL'}")
    print(f"kNN  zspace / sklearn: {quality:.3f} (target >= 1.000): {'PASS' if quality >= 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
