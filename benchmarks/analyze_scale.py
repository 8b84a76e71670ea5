"""The analyses at the series' scale, each against the numpy/scikit-learn way the series did it, in one run.

Latents: 170,000 x 256, synthetic, shaped like a tiny-KL VAE's on CelebA (a mixture of Gaussians on a shell,
five off-centre broad axes as in the post, logvar around -13, z = mu + exp(logvar / 2) * eps), written as
memory-mapped .npy files like ``zspace embed`` writes them.

(1) radius + per-axis densities + PCA + VAE diagnostics, zspace's sections (figures included)   target <= 30 s
    baseline: full-array numpy, np.histogram per axis, scikit-learn PCA on all points (no figures)
(2) elbow over k = 2..80 step 2: faiss Lloyd (zspace)                                        target <= 60 s
    baseline: scikit-learn MiniBatchKMeans per k (the series' way)
(3) t-SNE of the 70,000 MNIST images: see benchmarks/tsne_speed.py (run separately: it takes long)

    python benchmarks/analyze_scale.py [--n 170000] [--z-dim 256] [--restarts 1] [--skip-elbow-baseline]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA

from zspace.analyses.elbow import elbow_curve
from zspace.latents.embedding import load_latents
from zspace.sections import section_module
from zspace.sections.base import Context

OFF_CENTRE = {52: (5.0, 8.0), 130: (-2.0, 9.0), 171: (0.7, 5.0), 200: (0.5, 11.0), 221: (-1.0, 8.0)}


def synthetic_latents(folder: Path, n: int, z_dim: int, seed: int = 0) -> Path:
    """Write mu, logvar, z (float32 .npy memory maps) and index.npy; returns the folder."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.6, (40, z_dim))
    maps = {
        k: np.lib.format.open_memmap(folder / f"{k}.npy", "w+", np.float32, (n, z_dim)) for k in ("mu", "logvar", "z")
    }
    for start in range(0, n, 20_000):
        m = min(20_000, n - start)
        mu = centres[rng.integers(0, 40, m)] + rng.normal(0, 0.8, (m, z_dim))
        for axis, (centre, width) in OFF_CENTRE.items():
            if axis < z_dim:
                mu[:, axis] = rng.normal(centre, width / 2, m)
        logvar = rng.normal(-13.5, 1.5, (m, z_dim))
        z = mu + np.exp(logvar / 2) * np.clip(rng.standard_normal((m, z_dim)), -5, 5)
        for k, v in (("mu", mu), ("logvar", logvar), ("z", z)):
            maps[k][start : start + m] = v
    for m in maps.values():
        m.flush()
    np.save(folder / "index.npy", np.arange(n))
    return folder


def ours_geometry(latents) -> float:
    ctx = Context(latents=latents)
    t0 = time.perf_counter()
    for key in ("radius", "axes", "pca", "vae"):
        module = section_module(key)
        t = time.perf_counter()
        module.run(ctx, module.Config())
        print(f"  zspace {key:<7} {time.perf_counter() - t:6.2f} s")
    return time.perf_counter() - t0


def baseline_geometry(latents) -> float:
    """What the series did: whole arrays in memory, one np.histogram per axis, PCA on every point."""
    t0 = time.perf_counter()
    z, mu, logvar = (np.asarray(a, dtype=np.float64) for a in (latents.z, latents.mu, latents.logvar))
    r = np.linalg.norm(z, axis=1)
    np.histogram(r, bins=np.arange(0, 35.5, 0.5))
    np.histogram(r, bins=np.arange(0, 35.05, 0.05))
    bins = np.arange(np.floor(z.min()), np.ceil(z.max()) + 0.25, 0.25)
    for j in range(z.shape[1]):
        np.histogram(z[:, j], bins=bins)
    np.percentile(z, [2.5, 50, 97.5], axis=0)
    pca = PCA().fit(z)
    pca.transform(z)
    d = np.abs(z - mu)
    _ = logvar.min(), logvar.max(), logvar.mean(), d.max(), ((d > 0.05) & (d < 2)).sum()
    r_mu = np.linalg.norm(mu, axis=1)
    _ = np.abs(r - r_mu).max(), (np.abs(r - r_mu) / r_mu).mean()
    return time.perf_counter() - t0


def baseline_elbow(X: np.ndarray, ks: list[int], seed: int) -> tuple[float, np.ndarray]:
    """The series' way: a MiniBatchKMeans per k; inertia_ as scikit-learn reports it."""
    t0 = time.perf_counter()
    inertia = [MiniBatchKMeans(k, n_init=3, random_state=seed, batch_size=1024).fit(X).inertia_ for k in ks]
    return time.perf_counter() - t0, np.asarray(inertia)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=170_000)
    ap.add_argument("--z-dim", type=int, default=256)
    ap.add_argument("--restarts", type=int, default=1, help="Lloyd fits per k")
    ap.add_argument("--skip-elbow-baseline", action="store_true", help="the MiniBatchKMeans loop takes minutes")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        latents = load_latents(synthetic_latents(Path(tmp), args.n, args.z_dim))
        print(f"latents: {args.n:,} x {args.z_dim} written in {time.perf_counter() - t:.1f} s (memory-mapped)")
        ours = ours_geometry(latents)
        base = baseline_geometry(latents)
        print(
            f"(1) radius+axes+pca+vae: zspace {ours:.1f} s (target <= 30 s: {'PASS' if ours <= 30 else 'FAIL'}), "
            f"numpy/sklearn way {base:.1f} s, ratio {ours / base:.2f}"
        )
        ks = list(range(2, 81, 2))
        z = np.asarray(latents.z)
        t = time.perf_counter()
        curve = elbow_curve(z, ks, algorithm="lloyd", restarts=args.restarts, seed=0)
        ours_elbow = time.perf_counter() - t
        print(
            f"(2) elbow k=2..80 step 2, Lloyd x{args.restarts}: zspace {ours_elbow:.1f} s "
            f"(target <= 60 s: {'PASS' if ours_elbow <= 60 else 'FAIL'}); {curve.elbow.describe()}"
        )
        if not args.skip_elbow_baseline:
            base_elbow, base_inertia = baseline_elbow(z, ks, seed=0)
            worse = int(np.sum(curve.best > base_inertia * (1 + 1e-6)))
            print(
                f"    MiniBatchKMeans per k (n_init 3): {base_elbow:.1f} s, ratio {ours_elbow / base_elbow:.3f}; "
                f"zspace inertia worse at {worse} of {len(ks)} k"
            )


if __name__ == "__main__":
    main()
