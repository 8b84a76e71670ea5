"""UMAP of MNIST: zspace's seeded ``umap_embed`` (umap-learn) against its ``embed_tsne`` (openTSNE, FFT) in one run.

Both get the same input, the 70,000 MNIST images (train + test), pixels / 255, as ``tsne_speed.py`` prepares them:
projected onto their first 50 principal components (``pca50``, computed once, not timed) and/or as raw pixels
(``raw``, 784-D); or any (n, d) ``.npy`` of latents (``--latents FILE``). Parameters: UMAP as the umap section runs it
(n_neighbors 15, min_dist 0.1, seeded: single-threaded), t-SNE as the tsne section's default preset (perplexity 30,
early exaggeration 12, 1000 iterations, PCA initialisation, all threads). Quality: the share of each point's 10
nearest neighbours in the input kept among its 10 nearest in the map (``knn_preservation``, the same 5,000 query
points for both).

umap-learn compiles its numba code on the first map of a process; a warm-up map of 5,000 other points is run first
and timed apart (it takes umap-learn's neighbour-search path, as the 70,000-point map does).

    python benchmarks/umap_speed.py [--data DIR] [--inputs pca50,raw] [--latents Z.npy] [--n 70000] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from zspace.analyses.tsne import embed_tsne, knn_preservation
from zspace.analyses.umap import umap_embed
from zspace.config import DataConfig
from zspace.data import load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_pixels(path: Path, n: int, seed: int) -> np.ndarray:
    """``n`` MNIST images (all when n >= 70,000, else a fixed random subset) as float32 pixels / 255, (n, 784)."""
    data = load_dataset(DataConfig(name="mnist", path=str(path)))
    rows = np.arange(len(data))
    if n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    return np.asarray(data.x[rows], dtype=np.float32).reshape(len(rows), -1) / 255.0


def timed(fn, *a, **kw) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the four MNIST idx files")
    p.add_argument("--n", type=int, default=70_000, help="points (a fixed random subset when < 70,000)")
    p.add_argument("--inputs", default="pca50", help="comma-separated: pca50 (PCA to 50, as tsne_speed.py), raw")
    p.add_argument("--latents", type=Path, help="also (or only, with --inputs '') an (n, d) .npy of latents")
    p.add_argument("--n-neighbors", type=int, default=15)
    p.add_argument("--min-dist", type=float, default=0.1)
    p.add_argument("--queries", type=int, default=5_000, help="query points of the kNN-preservation score")
    p.add_argument("--n-jobs", type=int, default=-1, help="threads for openTSNE (seeded UMAP runs on one)")
    p.add_argument("--threads", type=int, default=0, help="> 0: cap OpenMP/BLAS (and openTSNE) at this many threads")
    p.add_argument("--skip-tsne", action="store_true", help="UMAP only")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads > 0:
        _limits = threadpool_limits(args.threads)  # held for the whole run
        args.n_jobs = args.threads

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; openTSNE jobs {args.n_jobs}")
    inputs: dict[str, np.ndarray] = {}
    wanted = [w.strip() for w in args.inputs.split(",") if w.strip()]
    if wanted:
        pixels, prep = timed(mnist_pixels, args.data, args.n, args.seed)
        print(f"data: {len(pixels):,} MNIST images ({prep:.1f} s, not counted)")
        for w in wanted:
            if w == "raw":
                inputs["raw 784"] = pixels
            elif w.startswith("pca"):
                c = int(w[3:] or 50)
                pca = PCA(n_components=c, random_state=args.seed)
                inputs[f"PCA {c}"] = pca.fit_transform(pixels).astype(np.float32)
            else:
                p.error(f"unknown input {w!r} (pca50, raw)")
    if args.latents:
        z = np.load(args.latents, mmap_mode="r", allow_pickle=False)
        inputs[f"latents {args.latents.name}"] = np.asarray(z[: args.n], dtype=np.float32)
    print(f"UMAP: n_neighbors {args.n_neighbors}, min_dist {args.min_dist:g}, seeded (one thread); t-SNE: perplexity "
          "30, early exaggeration 12, 1000 iterations, PCA init\n")  # fmt: skip

    first = next(iter(inputs.values()))
    warm = np.random.default_rng(args.seed + 1).normal(size=(5_000, first.shape[1])).astype(np.float32)
    _, compile_s = timed(umap_embed, warm, n_neighbors=args.n_neighbors, random_state=args.seed)
    print(f"UMAP warm-up (numba compilation + a 5,000-point map): {compile_s:.1f} s, not counted\n", flush=True)

    rows = []
    for name, X in inputs.items():
        res = {}
        runs = [("UMAP", lambda X=X: umap_embed(X, n_neighbors=args.n_neighbors, min_dist=args.min_dist,
                                                random_state=args.seed))]  # fmt: skip
        if not args.skip_tsne:
            runs.append(("t-SNE", lambda X=X: embed_tsne(X, random_state=args.seed, n_jobs=args.n_jobs)))
        for method, fn in runs:
            Y, seconds = timed(fn)
            knn = knn_preservation(X, Y, 10, n_queries=args.queries, random_state=args.seed)
            res[method] = (seconds, knn)
            print(f"{name:14s} {method:6s} {seconds:9.1f} s   kNN(10) kept {knn:.4f}", flush=True)
        rows.append((name, len(X), res))

    print("\n| input | points | UMAP s | t-SNE s | time UMAP/t-SNE | UMAP kNN(10) | t-SNE kNN(10) | kNN UMAP/t-SNE |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, n, res in rows:
        u, t = res["UMAP"], res.get("t-SNE")
        if t:
            tcols = f"{t[0]:.1f} | {u[0] / t[0]:.3f} | {u[1]:.4f} | {t[1]:.4f} | {u[1] / t[1]:.3f}"
        else:
            tcols = f"- | - | {u[1]:.4f} | - | -"
        print(f"| {name} | {n:,} | {u[0]:.1f} | {tcols} |")


if __name__ == "__main__":
    main()
