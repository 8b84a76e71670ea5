"""Does ``train.precision = "auto"`` (bf16 autocast where the hardware has bf16 matrix units) change the science?

Trains the same run three times: fp32 with seed 0, fp32 with seed 1, and "auto" with seed 0, then compares per
epoch the total loss, the latent radius of the probe images (mean and density peak, history.csv), and after
training the mean logvar, the mean ||z|| and ||mu|| and the z-vs-mu radius difference of the test images.

The tolerance is the seed's: bf16 changes the rounding of every step, so after a few hundred steps the two runs
are as different as two seeds of fp32 (training is chaotic). "auto" passes where its distance from fp32 seed 0
is at most 1.5x the distance between the fp32 seeds (plus 1 % of the value, for quantities that happen to agree
closely between seeds). The ratio of wall-clock times is printed beside it (the CPU's name and flags first).

    python benchmarks/precision_check.py --which digits            # ~2 min on 2 cores
    python benchmarks/precision_check.py --which celeba            # the study's size: 10,000 images, 6 epochs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CELEBA = ROOT.parent / "shared" / "data" / "celeba" / "img_align_celeba_89x109"


def configs(which: str, args: argparse.Namespace) -> tuple[str, list[str]]:
    if which == "digits":
        return str(ROOT / "configs" / "digits-demo.toml"), [f"train.epochs={args.epochs or 30}"]
    return str(ROOT / "configs" / "celeba-vae-tiny-kl.toml"), [
        f"data.path={str(args.celeba)!r}",
        f"data.limit={args.limit}",
        f"train.epochs={args.epochs or 6}",
    ]


def train(config: str, sets: list[str], out: Path, name: str, precision: str, seed: int) -> tuple[dict, float]:
    from zspace import embed, load_config, load_dataset, load_run, train_run
    from zspace.runs.folder import read_history

    own = [f"out_dir={str(out)!r}", f"name={name!r}", f"train.precision={precision!r}", f"train.seed={seed}"]
    cfg = load_config(config, [*sets, *own])
    t0 = time.perf_counter()
    run_dir = train_run(cfg)
    seconds = time.perf_counter() - t0
    history = read_history(run_dir)
    run = load_run(run_dir)
    lat = embed(run.model, load_dataset(cfg.data), out / f"{name}-latents", split="test", seed=0)
    r_z, r_mu = np.linalg.norm(lat.z, axis=1), np.linalg.norm(lat.mu, axis=1)
    final = {
        "total": [r["total"] for r in history],
        "radius_mean": [r["radius_mean"] for r in history],
        "radius_peak": [r["radius_peak"] for r in history],
        "mean logvar": float(np.mean(lat.logvar)),
        "mean ||z||": float(r_z.mean()),
        "mean ||mu||": float(r_mu.mean()),
        "mean |r_z - r_mu| / r_mu": float(np.mean(np.abs(r_z - r_mu) / r_mu)),
    }
    return final, seconds


def distance(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--which", choices=("digits", "celeba"), default="digits")
    ap.add_argument("--epochs", type=int, default=0, help="0: 30 for digits, 6 for CelebA")
    ap.add_argument("--limit", type=int, default=10_000, help="CelebA images")
    ap.add_argument("--celeba", type=Path, default=CELEBA)
    args = ap.parse_args()
    from zspace.train.precision import cpu_has_bf16_matrix_units, resolve_precision

    name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")), "unknown")  # fmt: skip
    auto = resolve_precision("auto", torch.device("cpu"))
    print(f"CPU: {name}; AMX-BF16: {cpu_has_bf16_matrix_units()}; threads {torch.get_num_threads()}; auto = {auto}")
    config, sets = configs(args.which, args)
    out = Path(tempfile.mkdtemp(prefix="zspace-precision-"))
    runs = {}
    for label, precision, seed in (("fp32 seed 0", "fp32", 0), ("fp32 seed 1", "fp32", 1), ("auto seed 0", "auto", 0)):
        runs[label] = train(config, sets, out, label.replace(" ", "-"), precision, seed)
        print(f"{label}: {runs[label][1]:.1f} s")
    a, b, c = (runs[k][0] for k in ("fp32 seed 0", "fp32 seed 1", "auto seed 0"))
    print(f"\n{args.which}: auto vs fp32 (same seed) against fp32 seed 0 vs seed 1; per-epoch curves: max over epochs")
    print(f"{'quantity':30s} {'fp32 s0':>10s} {'auto s0':>10s} {'|auto-fp32|':>12s} {'|seed1-seed0|':>14s}  within")
    ok_all = True
    for key in a:
        d_prec, d_seed = distance(c[key], a[key]), distance(b[key], a[key])
        last_a, last_c = np.atleast_1d(a[key])[-1], np.atleast_1d(c[key])[-1]
        ok = d_prec <= 1.5 * d_seed + 0.01 * abs(last_a)
        ok_all &= ok
        print(f"{key:30s} {last_a:10.4g} {last_c:10.4g} {d_prec:12.4g} {d_seed:14.4g}  {'yes' if ok else 'NO'}")
    speed = runs["fp32 seed 0"][1] / runs["auto seed 0"][1]
    print(f"\ntime fp32 / auto: {speed:.2f}x (training + evaluation + probes, same run)")
    print(f"all within the seed's spread: {'yes' if ok_all else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
