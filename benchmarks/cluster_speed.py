"""Elbow timings: zspace's Lloyd elbow (faiss, PCA-subspace fit, exact full-space inertia) against the scikit-learn
way of the series (MiniBatchKMeans, n_init 50, max_iter 100, tol 1e-4, batch 200), in one run.

Two workloads (issue 3 and issue 4 targets):

  mnist   raw MNIST training pixels / 255 (60,000 x 784), every k in 2..250: <= 120 s, and the inertia at every k no
          worse than the series' MiniBatchKMeans
  latent  170,000 x 256 synthetic latents (a mixture of Gaussians with a few off-centre, broad axes), k in 2..80
          step 2, 3 Lloyd restarts per k: <= 60 s

Inertia is measured the same way for both (zspace.cluster.kmeans.group_inertia: all points, nearest centre, full
space). The reference can be restricted to every Nth k (--reference-every); its total time is then extrapolated.

    python benchmarks/cluster_speed.py                              # both workloads, full size (many minutes)
    python benchmarks/cluster_speed.py --only mnist --n 10000 --ks 2:60:2 --reference-every 5   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from zspace.analyses.elbow import LloydSettings, MiniBatchSettings, elbow_curve, minibatch_centres
from zspace.cluster.kmeans import group_inertia
from zspace.config import DataConfig
from zspace.data import load_dataset

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SERIES = MiniBatchSettings(n_init=50, max_iter=100, tol=1e-4, batch_size=200)


def parse_ks(text: str) -> np.ndarray:
    start, stop, step = (int(v) for v in text.split(":"))
    return np.arange(start, stop + 1, step)


def mnist_pixels(path: Path, n: int) -> np.ndarray:
    ds = load_dataset(DataConfig(name="mnist", path=str(path)))
    rows = ds.indices("train")[:n] if n else ds.indices("train")
    return (np.asarray(ds.x[rows]).reshape(len(rows), -1).astype(np.float32) / 255.0).astype(np.float32)


def synthetic_latents(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A mixture of 40 Gaussians in d dims, 5 axes off-centre and broad (like the series' AE latents)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(40, d)).astype(np.float32)
    X = centres[rng.integers(0, 40, n)] + rng.normal(size=(n, d)).astype(np.float32)
    off_centre = [(5, 8), (-2, 9), (0.7, 5), (0.5, 11), (-1, 8)]  # (centre, width) of the series' AE axes
    for axis, (centre, width) in zip(rng.choice(d, 5, replace=False), off_centre, strict=True):
        X[:, axis] = centre + width / 2 * rng.standard_normal(n).astype(np.float32)
    return X


def reference(X: np.ndarray, ks: np.ndarray, every: int, threads: int, cache: Path | None) -> dict:
    """The series' MiniBatchKMeans at every ``every``-th k: inertia (same function) and time per k.

    With ``cache`` (a JSON file), results of earlier runs on the same data shape are reused and new ones added.
    """
    key = f"{X.shape[0]}x{X.shape[1]}"
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    known = stored.setdefault(key, {})
    sub = ks[::every]
    for k in sub:
        if str(k) in known:
            continue
        t0 = time.perf_counter()
        if threads == 1:
            centres = minibatch_centres(X, int(k), seed=2, settings=SERIES)  # runs on one thread
        else:
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(int(k), random_state=2, compute_labels=False, **vars(SERIES)).fit(X)
            centres = km.cluster_centers_
        seconds = time.perf_counter() - t0
        known[str(k)] = {"inertia": float(group_inertia(X, [centres])[0]), "seconds": seconds}
        print(f"  reference k = {k}: {seconds:.1f} s, inertia {known[str(k)]['inertia']:.6g}", flush=True)
        if cache:
            cache.write_text(json.dumps(stored) + "\n")
    inertia = [known[str(k)]["inertia"] for k in sub]
    measured = float(sum(known[str(k)]["seconds"] for k in sub))
    total = measured * len(ks) / len(sub)
    return {"ks": sub.tolist(), "inertia": inertia, "seconds": measured, "seconds_all_ks": total}


def workload(name: str, X: np.ndarray, ks: np.ndarray, args: argparse.Namespace, restarts: int, target: float) -> dict:
    print(f"{name}: {X.shape[0]:,} x {X.shape[1]}, k = {ks[0]}..{ks[-1]} ({len(ks)} values), {restarts} restart(s)")
    lloyd = LloydSettings(n_iter=args.n_iter, max_points_per_centroid=args.points_per_centroid,
                          fit_dims=args.fit_dims, threads=args.threads)  # fmt: skip
    curve = elbow_curve(X, ks, restarts=restarts, seed=0, lloyd=lloyd)
    print(f"  ours (Lloyd, faiss): {curve.seconds:.1f} s (target <= {target:.0f} s); {curve.elbow.describe()}")
    result = {"n": X.shape[0], "d": X.shape[1], "ks": ks.tolist(), "ours_seconds": curve.seconds, "target": target}
    result["ours"] = curve.to_metrics()
    if args.reference_every:
        ref = reference(X, ks, args.reference_every, args.reference_threads, args.reference_cache)
        ours = curve.best[:: args.reference_every]
        ratio = ours / np.asarray(ref["inertia"])
        worse = [int(k) for k, r in zip(ref["ks"], ratio, strict=True) if r > 1.0]
        result |= {"reference": ref, "inertia_ratio": ratio.tolist(), "ks_where_worse": worse}
        per_fit = ref["seconds_all_ks"] * restarts / curve.seconds  # the reference fits once per k
        result |= {"speedup_curve": ref["seconds_all_ks"] / curve.seconds, "speedup_per_fit": per_fit}
        print(
            f"  reference (MiniBatchKMeans, the series): {ref['seconds']:.1f} s on {len(ref['ks'])} k "
            f"(~{ref['seconds_all_ks']:.0f} s for all, 1 fit per k); speed-up ~{result['speedup_curve']:.1f}x "
            f"for the curve, ~{per_fit:.1f}x per fit"
        )
        print(
            f"  inertia ours / reference: max {ratio.max():.4f}, median {np.median(ratio):.4f}, "
            f"worse at {len(worse)} of {len(ratio)} k {worse[:10]}"
        )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["mnist", "latent"], help="run one workload")
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST, help="folder of the MNIST idx files")
    p.add_argument("--n", type=int, default=0, help="MNIST training images (0 = all 60,000)")
    p.add_argument("--ks", default="2:250:1", help="MNIST k range start:stop:step")
    p.add_argument("--latent-n", type=int, default=170_000)
    p.add_argument("--latent-dim", type=int, default=256)
    p.add_argument("--latent-ks", default="2:80:2")
    p.add_argument("--latent-restarts", type=int, default=3)
    p.add_argument("--n-iter", type=int, default=LloydSettings.n_iter)
    p.add_argument("--points-per-centroid", type=int, default=LloydSettings.max_points_per_centroid)
    p.add_argument("--fit-dims", type=int, default=LloydSettings.fit_dims)
    p.add_argument("--threads", type=int, default=LloydSettings.threads, help="faiss threads (0 = faiss default)")
    p.add_argument("--reference-every", type=int, default=1, help="reference at every Nth k (0 = no reference)")
    p.add_argument("--reference-threads", type=int, default=1, help="1: one thread (see one_thread); 0: default")
    p.add_argument("--reference-cache", type=Path, help="JSON file of reference results to reuse and extend")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    results = {}
    if args.only in (None, "mnist"):
        results["mnist"] = workload("mnist", mnist_pixels(args.data, args.n), parse_ks(args.ks), args, 1, 120.0)
    if args.only in (None, "latent"):
        X = synthetic_latents(args.latent_n, args.latent_dim)
        results["latent"] = workload("latent", X, parse_ks(args.latent_ks), args, args.latent_restarts, 60.0)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
