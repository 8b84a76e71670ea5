"""Does zspace-FID separate what the eye sees on CelebA? AE and kl-5 VAE, each with every sampler.

Trains (or reuses, from ``--out``) the study's AE and kl-5 VAE on the shared CelebA images, trains (or reuses) the
quality measure's feature network on the same images, and scores 1,000 decoded samples of each (model, sampler)
against the test images: zspace-FID, precision, recall, density, coverage; beside them the study's former L2
"faces" ratio, and two references in the same run: training images (the floor: real vs real) and the models'
reconstructions of training images.

    python benchmarks/sample_quality.py [--data DIR] [--epochs 6] [--out /tmp/zspace-sample-quality] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from zspace.data import load_dataset
from zspace.latents.feature_net import data_features, extract, feature_network, generated_features
from zspace.latents.generate import reconstruct
from zspace.latents.quality import NAME, score
from zspace.latents.samplers import fit_sampler
from zspace.runs.folder import WEIGHTS, load_run
from zspace.studies.base import StudyContext
from zspace.studies.celeba_ae_vs_vae import face_distance
from zspace.studies.celeba_common import celeba_config
from zspace.train.run import train_run

MODELS = (("ae", "celeba-ae"), ("vae-kl5", "celeba-vae"))


def trained(key: str, config: str, args) -> Path:
    run_dir = args.out / "runs" / key
    if (run_dir / WEIGHTS).is_file():
        return run_dir
    cfg = celeba_config(config, args.data, name=key, out_dir=args.out / "runs", epochs=args.epochs, limit=0, seed=0)
    t0 = time.perf_counter()
    train_run(cfg, overwrite=True)
    print(f"trained {key} in {time.perf_counter() - t0:.0f} s")
    return run_dir


def row(label: str, q, seconds: float, faces: float | None = None) -> str:
    l2 = "-" if faces is None else f"{faces:.2f}"
    return (f"| {label} | {q.fid:.3g} | {q.precision:.3f} | {q.recall:.3f} | {q.density:.3f} | {q.coverage:.3f} "
            f"| {l2} | {seconds:.1f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("/tmp/zspace-sample-quality"))
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args()
    args.data = StudyContext("sample-quality", args.out, data=args.data).data_path("celeba")
    torch.manual_seed(0)
    runs = {key: trained(key, config, args) for key, config in MODELS}
    data = load_dataset(load_run(runs["ae"]).config.data)
    t0 = time.perf_counter()
    net = feature_network(data, folder=args.out / "feature-net")
    print(
        f"feature net ({net.describe()}): {time.perf_counter() - t0:.0f} s, test accuracy {net.info['test_accuracy']}"
    )
    real = data_features(net, data, "test", args.n)
    results, lines = {}, []
    t0 = time.perf_counter()
    floor = score(real, data_features(net, data, "train", args.n, seed=1))
    lines.append(row(f"training images ({args.n})", floor, time.perf_counter() - t0))
    results["training images"] = floor.to_dict()
    rows = np.sort(np.random.default_rng(2).choice(data.indices("train"), args.n, replace=False))
    for key, run_dir in runs.items():
        run = load_run(run_dir)
        t0 = time.perf_counter()
        reco = torch.cat(
            [reconstruct(run.model, np.asarray(data.x[rows[s : s + 256]])) for s in range(0, len(rows), 256)]
        )
        q = score(real, extract(net, reco))
        lines.append(row(f"{key}: reconstructions of training images", q, time.perf_counter() - t0))
        results[f"{key} reconstructions"] = q.to_dict()
        for kind in ("normal", "gaussian", "gmm"):
            t0 = time.perf_counter()
            sampler = fit_sampler(run, kind)
            label = f"{key} + {kind}" + (f" ({sampler.n_components_} components by BIC)" if kind == "gmm" else "")
            q = score(real, generated_features(net, run.model, sampler, args.n))
            faces = face_distance(run_dir) if kind == "normal" else None
            lines.append(row(label, q, time.perf_counter() - t0, faces))
            results[label] = {**q.to_dict(), "l2_faces": faces}
    print(f"\n{NAME} (features: {net.describe()}); {args.n} images per set against {len(real)} test images")
    print(f"{platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| images | zspace-FID | precision | recall | density | coverage | L2 faces ratio | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
