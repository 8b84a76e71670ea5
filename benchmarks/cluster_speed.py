"""Elbow timings: zspace's Lloyd elbow (faiss, PCA-subspace fit, exact full-space inertia) against the scikit-learn
way of the series (MiniBatchKMeans, n_init 50, max_iter 100, tol 1e-4, batch 200), in one run.

Two workloads (issue 3 and issue 4 targets):

  mnist   raw MNIST training pixels / 255 (60,000 x 784), every k in 2..250: <= 120 s, and the inertia at every k no
          worse than the series' MiniBatchKMeans
  latent  170,000 x 256 synthetic latents (a mixture of Gaussians with a few off-centre, broad axes), k in 2..80
          step 2, 3 Lloyd restarts per k: <= 60 s

Inertia is measured the same way for both (zspace.analyses.kmeans.group_inertia: all points, nearest centre, full
space). The reference is timed at every Nth k (--reference-every, default 10) and its total time extrapolated;
its inertia at every k comes from a cache that --reference-all fills (about 75 min on one core for 2..250 on MNIST).

    python benchmarks/cluster_speed.py                              # both workloads, full size (many minutes)
    python benchmarks/cluster_speed.py --only mnist --reference-cache ref.json --reference-all   # inertia at every k
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
from zspace.analyses.kmeans import group_inertia
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


def fit_reference(X: np.ndarray, k: int, threads: int) -> dict:
    """One fit of the series' MiniBatchKMeans: its inertia (zspace's measure) and seconds."""
    t0 = time.perf_counter()
    if threads == 1:
        centres = minibatch_centres(X, k, seed=2, settings=SERIES)  # runs on one thread
    else:
        from sklearn.cluster import MiniBatchKMeans

        centres = MiniBatchKMeans(k, random_state=2, compute_labels=False, **vars(SERIES)).fit(X).cluster_centers_
    seconds = time.perf_counter() - t0
    return {"inertia": float(group_inertia(X, [centres])[0]), "seconds": seconds}


def reference(X: np.ndarray, ks: np.ndarray, args: argparse.Namespace) -> dict:
    """The series' MiniBatchKMeans: timed afresh at every ``--reference-every``-th k (the speed ratio), and its
    inertia at every k for the quality comparison.

    The inertia at the other k comes from ``--reference-cache`` (a JSON file that grows run by run; ``--reference-all``
    fills in every k missing from it). Cached seconds are never used for the ratio: they may come from a loaded machine.
    A fresh fit that disagrees with its cached inertia is reported (the reference is deterministic for a seed).
    """
    key = f"{X.shape[0]}x{X.shape[1]}"
    cache = args.reference_cache
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    known = stored.setdefault(key, {})

    def save() -> None:
        if cache:
            cache.write_text(json.dumps(stored) + "\n")

    timed = ks[:: args.reference_every]
    fresh = {}
    for k in timed:
        fresh[int(k)] = fit_reference(X, int(k), args.reference_threads)
        old = known.get(str(k))
        if old and not np.isclose(old["inertia"], fresh[int(k)]["inertia"], rtol=1e-6):
            print(f"  note: k = {k} fresh inertia {fresh[int(k)]['inertia']:.8g} != cached {old['inertia']:.8g}")
        known[str(k)] = fresh[int(k)]
        print(f"  reference k = {k}: {fresh[int(k)]['seconds']:.1f} s, inertia {fresh[int(k)]['inertia']:.6g}")
        save()
    if args.reference_all:
        for k in ks:
            if str(k) not in known:
                known[str(k)] = fit_reference(X, int(k), args.reference_threads)
                print(f"  reference k = {k} (filling the cache): inertia {known[str(k)]['inertia']:.6g}", flush=True)
                save()
    measured = float(sum(f["seconds"] for f in fresh.values()))
    compared = [int(k) for k in ks if str(k) in known]
    return {
        "timed_ks": sorted(fresh),
        "seconds": measured,
        "seconds_all_ks": measured * len(ks) / len(timed),
        "ks": compared,
        "inertia": [known[str(k)]["inertia"] for k in compared],
    }


def workload(name: str, X: np.ndarray, ks: np.ndarray, args: argparse.Namespace, restarts: int, target: float) -> dict:
    print(f"{name}: {X.shape[0]:,} x {X.shape[1]}, k = {ks[0]}..{ks[-1]} ({len(ks)} values), {restarts} restart(s)")
    lloyd = LloydSettings(n_iter=args.n_iter, max_points_per_centroid=args.points_per_centroid,
                          fit_dims=args.fit_dims, threads=args.threads)  # fmt: skip
    curve = elbow_curve(X, ks, restarts=restarts, seed=0, lloyd=lloyd)
    print(f"  ours (Lloyd, faiss): {curve.seconds:.1f} s (target <= {target:.0f} s); {curve.elbow.describe()}")
    result = {"n": X.shape[0], "d": X.shape[1], "ks": ks.tolist(), "ours_seconds": curve.seconds, "target": target}
    result["ours"] = curve.to_metrics()
    if args.reference_every:
        ref = reference(X, ks, args)
        ours = curve.best[np.searchsorted(ks, ref["ks"])]
        ratio = ours / np.asarray(ref["inertia"])
        worse = [int(k) for k, r in zip(ref["ks"], ratio, strict=True) if r > 1.0]
        result |= {"reference": ref, "inertia_ratio": ratio.tolist(), "ks_where_worse": worse}
        per_fit = ref["seconds_all_ks"] * restarts / curve.seconds  # the reference fits once per k
        result |= {"speedup_curve": ref["seconds_all_ks"] / curve.seconds, "speedup_per_fit": per_fit}
        print(
            f"  reference (MiniBatchKMeans, the series): {ref['seconds']:.1f} s on {len(ref['timed_ks'])} k "
            f"(~{ref['seconds_all_ks']:.0f} s for all, 1 fit per k); speed-up ~{result['speedup_curve']:.1f}x "
            f"for the curve, ~{per_fit:.1f}x per fit"
        )
        print(
            f"  inertia ours / reference: max {ratio.max():.4f}, median {np.median(ratio):.4f}, "
            f"worse at {len(worse)} of {len(ratio)} k {worse[:10]}"
            + (f" ({len(ks) - len(ratio)} k not compared: not in the cache)" if len(ratio) < len(ks) else "")
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
    p.add_argument("--reference-every", type=int, default=10, help="time the reference at every Nth k (0 = none)")
    p.add_argument("--reference-all", action="store_true", help="fit the reference at every k missing from the cache")
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
