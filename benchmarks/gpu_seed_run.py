"""The series' experiment shape on one GPU: VAE 96x96, z_dim 256, 170,000 images, 24 epochs, with zspace's Trainer.

The images are synthetic uint8 arrays made on the host (nothing is downloaded), resident on the GPU
(``train.data_on_device = "on"``); ``train.precision`` is ``--precision`` ("auto": bf16 on CUDA); channels_last,
fused Adam and cuDNN autotuning are the Trainer's defaults; the loss is read back every ``--log-every`` steps. The
baseline in the same run is the series' own figure: one epoch of 170,000 images in 120 s on a GTX 960 (about
1,400 images/s). Target (issue 8): 24 x 170k in under 60 s on one H200, i.e. >= 68,000 images/s.

Per batch size it measures, through the Trainer's ``on_step`` callback (the GPU is synchronised only at the two
ends of the steady window):

- steady images/s over the second half of the last epoch (up to its last full-size batch),
- warm-up seconds: time from ``fit()`` to the end of the first step, less one steady step (compilation, cuDNN
  autotuning, CUDA graph capture),
- checkpoint seconds and count (``trainer.timings``, when the Trainer has them),
- setup seconds (model, optimiser, the upload of the images) and fit seconds (all epochs, warm-up included).

Each configuration also prints one JSON line prefixed ``RESULT `` (``benchmarks/gpu_check.py`` parses it): first a
partial one as soon as the steady window closes (so a run killed later, say while recompiling the graph for the
epoch's smaller last batch, still reports its throughput), then the full one.

    python benchmarks/gpu_seed_run.py                       # 24 epochs x 170k at batch 128, then batch 512
    python benchmarks/gpu_seed_run.py --epochs 1 --batch-sizes 512 --compile-mode reduce-overhead
    python benchmarks/gpu_seed_run.py --epochs 2 --batch-sizes 128,256,1024 --compile   # = --compile-mode default

Without CUDA it says so and exits 0, so it can be tried anywhere (``--device cpu --images 512 --epochs 1`` is a
smoke test of the script itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SERIES_IMAGES, SERIES_EPOCHS = 170_000, 24
SERIES_IMAGES_PER_S = SERIES_IMAGES / 120  # GTX 960, post XIII: 120 s per epoch of 170,000 images
COMPILE = {"none": "false", "default": "true", "reduce-overhead": '"reduce-overhead"'}  # -> train.compile


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


def make_config(batch_size: int, epochs: int, args: argparse.Namespace, out: Path):
    from zspace.config import load_config

    sets = ["model.image_size=96", "model.channels=3", "model.z_dim=256", "model.kl_weight=1e-5",
            f"train.batch_size={batch_size}", f"train.epochs={epochs}", 'train.data_on_device="on"',
            f"train.log_every={args.log_every}", "train.radius_probe=512", f"train.device={args.device!r}",
            f"train.precision={args.precision!r}", f"train.compile={COMPILE[args.compile_mode]}",
            f"out_dir={str(out)!r}", f"name='b{batch_size}'"]  # fmt: skip
    return load_config(None, sets)


class StepClock:
    """``on_step`` callback: the end of the first step and the steady window of the last epoch.

    The window runs from the end of step ``steps_per_epoch // 2 - 1`` to the end of the last step with a full
    batch (the last batch of an epoch may be smaller, and a compiled graph may recompile for it); the GPU is
    synchronised at these two points only. The first step's end is read on the host, unsynchronised: compiling,
    cuDNN's autotuning and graph capture block the host, so it is off by at most that step's own GPU time.
    """

    def __init__(self, device: torch.device, batch_size: int, n_train: int, epochs: int, on_window=None):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.bs, self.last_epoch, self.on_window = batch_size, epochs - 1, on_window
        full = n_train // batch_size  # steps with a full batch
        self.start_step = full // 2 - 1  # the window starts at the end of this step (-1: at the epoch's start)
        self.end_step = full - 1
        self.t0 = self.first = self.window_start = self.window_end = None

    def start(self) -> None:
        self.sync()
        self.t0 = time.perf_counter()

    def __call__(self, info) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        if info.epoch != self.last_epoch or not self.end_step > self.start_step >= 0:
            return
        if info.step == self.start_step:
            self.sync()
            self.window_start = time.perf_counter()
        elif info.step == self.end_step and self.window_start is not None:
            self.sync()
            self.window_end = time.perf_counter()
            if self.on_window:
                self.on_window()

    def numbers(self) -> dict:
        out: dict = {"first_step_s": None if self.first is None else self.first - self.t0}
        if self.window_end is not None:
            n_steps = self.end_step - self.start_step
            seconds = self.window_end - self.window_start
            step_s = seconds / n_steps
            out.update(steady_steps=n_steps, steady_s=seconds, steady_step_ms=1e3 * step_s,
                       steady_img_per_s=n_steps * self.bs / seconds,
                       warmup_s=out["first_step_s"] - step_s)  # fmt: skip
        return out


def run(x: np.ndarray, batch_size: int, epochs: int, args: argparse.Namespace) -> dict:
    """Train ``epochs`` epochs at ``batch_size`` in a temporary run folder; returns the numbers of the RESULT line."""
    with tempfile.TemporaryDirectory(prefix="zspace-gpu-") as tmp:
        return _run(x, batch_size, epochs, args, Path(tmp))


def _run(x: np.ndarray, batch_size: int, epochs: int, args: argparse.Namespace, out: Path) -> dict:
    from zspace.models import build_model
    from zspace.train.loop import Trainer, resolve_device

    cfg = make_config(batch_size, epochs, args, out)
    (out / cfg.name).mkdir(parents=True)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    device = resolve_device(args.device)
    trainer = Trainer(build_model(cfg.model), dataset(x), cfg, out / cfg.name, device)
    result = {"batch_size": batch_size, "images": len(x), "epochs": epochs, "compile_mode": args.compile_mode,
              "precision": trainer.precision, "device": str(device), "partial": True}  # fmt: skip
    clock = StepClock(device, batch_size, len(trainer.train_rows), epochs)
    trainer.on_step = clock
    clock.start()
    result["setup_s"] = clock.t0 - t0

    def emit() -> None:  # the steady window has closed: report it now, in case the rest never finishes
        print("RESULT " + json.dumps({**result, **clock.numbers()}), flush=True)

    clock.on_window = emit
    trainer.fit()
    clock.sync()
    fit_s = time.perf_counter() - clock.t0
    timings = getattr(trainer, "timings", None) or {}
    result.update(clock.numbers(), fit_s=fit_s, img_per_s_overall=epochs * len(x) / fit_s,
                  checkpoint_s=timings.get("checkpoint_s"), checkpoints=timings.get("checkpoints"),
                  partial=False)  # fmt: skip
    return result


def report(r: dict) -> str:
    """The human-readable line of one configuration."""
    steady = r.get("steady_img_per_s")
    line = (
        f"batch {r['batch_size']:5d}, compile {r['compile_mode']}, {r['precision']}: {r['epochs']} epochs x "
        f"{r['images']:,} in {r['fit_s']:7.1f} s ({r['img_per_s_overall']:9.0f} img/s overall"
    )
    if steady is None:
        return line + "; too few steps for a steady window)"
    ckpt = "n/a" if r["checkpoint_s"] is None else f"{r['checkpoint_s']:.2f} s in {r['checkpoints']}"
    if (r["epochs"], r["images"]) == (SERIES_EPOCHS, SERIES_IMAGES):
        target = f"target < 60 s: {'met' if r['fit_s'] < 60 else 'not met'}"
    else:  # a shorter run: what the steady speed would make of the series' run
        target = f"24 x 170k at the steady speed: {SERIES_EPOCHS * SERIES_IMAGES / steady:.0f} s (target < 60 s)"
    return (
        f"{line}, {steady:9.0f} img/s steady)  warm-up {r['warmup_s']:.1f} s, checkpoints {ckpt}, "
        f"setup {r['setup_s']:.1f} s  vs the series' GTX 960: {steady / SERIES_IMAGES_PER_S:6.1f}x  {target}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=SERIES_IMAGES)
    ap.add_argument("--epochs", type=int, default=SERIES_EPOCHS)
    ap.add_argument("--batch-sizes", default="128,512")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--compile-mode", choices=tuple(COMPILE), default="none", help="train.compile (default: none)")
    ap.add_argument("--compile", dest="compile_mode", action="store_const", const="default",
                    help="same as --compile-mode default")  # fmt: skip
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                    help="train.precision (default auto: bf16 on CUDA)")  # fmt: skip
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
        result = run(x, bs, args.epochs, args)
        print(report(result), flush=True)
        print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
