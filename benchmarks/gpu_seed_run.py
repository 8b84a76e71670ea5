"""The series' experiment shape on one GPU: VAE 96x96, z_dim 256, 170,000 images, 24 epochs, with zspace's Trainer.

The images are synthetic uint8 arrays made on the host (nothing is downloaded), resident on the GPU
(``train.data_on_device = "on"``); bf16 autocast, channels_last and fused Adam are the CUDA defaults here, and
the loss is read back every ``--log-every`` steps. The baseline in the same run is the series' own figure: one
epoch of 170,000 images in 120 s on a GTX 960 (about 1,400 images/s). Target (issue 8): 24 x 170k in under
60 s on one H200, i.e. >= 68,000 images/s.

    python benchmarks/gpu_seed_run.py                       # 24 epochs x 170k at batch 128, then batch 512
    python benchmarks/gpu_seed_run.py --epochs 2 --batch-sizes 128,256,1024 --compile

Without CUDA it says so and exits 0, so it can be tried anywhere.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SERIES_IMAGES_PER_S = 170_000 / 120  # GTX 960, post XIII: 120 s per epoch of 170,000 images


def synthetic_faces(n: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8: smooth random blobs (cheap to make, not constant, learnable)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(64, size // 8, size // 8, 3), dtype=np.uint8)
    tiles = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)  # (64, size, size, 3)
    out = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, 4096):
        k = min(4096, n - start)
        out[start : start + k] = tiles[rng.integers(0, 64, size=k)]
    return out


def dataset(x: np.ndarray):
    from zspace.data import Dataset

    n = len(x)
    return Dataset("synthetic-faces", x, None, None, None, None, np.arange(n), np.zeros(n, bool), {"path": None})


def run(x: np.ndarray, batch_size: int, epochs: int, args: argparse.Namespace) -> tuple[float, float]:
    """Seconds and images/s of ``epochs`` epochs (the first epoch's warm-up included in the total)."""
    from zspace.config import load_config
    from zspace.models import build_model
    from zspace.train.loop import Trainer

    sets = ["model.image_size=96", "model.channels=3", "model.z_dim=256", "model.kl_weight=1e-5",
            f"train.batch_size={batch_size}", f"train.epochs={epochs}",
            f"train.precision={'bf16' if args.device == 'cuda' else 'fp32'!r}",
            'train.data_on_device="on"', f"train.log_every={args.log_every}", "train.radius_probe=512",
            f"train.compile={'true' if args.compile else 'false'}", f"train.device={args.device!r}"]  # fmt: skip
    out = Path(tempfile.mkdtemp(prefix="zspace-gpu-"))
    cfg = load_config(None, [*sets, f"out_dir={str(out)!r}", f"name='b{batch_size}'"])
    (out / cfg.name).mkdir(parents=True)
    torch.manual_seed(0)
    device = torch.device(args.device)
    trainer = Trainer(build_model(cfg.model), dataset(x), cfg, out / cfg.name, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    history = trainer.fit()
    sync()
    seconds = time.perf_counter() - t0
    steady = np.median([r["images_per_s"] for r in history[1:]] or [history[0]["images_per_s"]])
    return seconds, float(steady)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=170_000)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--batch-sizes", default="128,512")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_seed_run: no CUDA device here; run it on a machine with a GPU (nothing was measured)")
        return 0
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    else:  # a smoke test of the script itself, e.g. --device cpu --images 512 --epochs 1
        print(f"device: cpu (a smoke test, not the benchmark), torch {torch.__version__}")
    t0 = time.perf_counter()
    x = synthetic_faces(args.images)
    print(
        f"{args.images:,} synthetic 96x96x3 images made in {time.perf_counter() - t0:.1f} s ({x.nbytes / 1e9:.2f} GB)"
    )
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        seconds, steady = run(x, bs, args.epochs, args)
        total = args.epochs * args.images
        print(
            f"batch {bs:5d}: {args.epochs} epochs x {args.images:,} in {seconds:7.1f} s  ({total / seconds:9.0f} img/s "
            f"overall, {steady:9.0f} img/s steady)  vs the series' GTX 960: {steady / SERIES_IMAGES_PER_S:6.1f}x  "
            f"target < 60 s: {'met' if seconds < 60 else 'not met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
