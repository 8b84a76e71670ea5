"""Images/s of zspace's training step on the CelebA cache, every variant against the same baseline in one run.

(compute)   the old eager fp32 compute bound: the model fed float32 NCHW tensors already in memory
(memmap)    the old path: batches gathered from the memory-mapped uint8 cache, converted on the fly, NCHW
(cl-comp)   the channels_last compute bound (float32 NHWC tensors in memory, model in channels_last)
(default)   today's default: the uint8 cache resident on the device, gathered there, channels_last
(compile)   the default path with torch.compile (--compile; minutes of compilation on a CPU)
(naive)     a torch DataLoader that opens, decodes, crops and resizes every JPEG with PIL on every step
(ddp)       `zspace train` as 2 processes x 1 thread (torchrun, gloo) against 1 process x 2 threads (--ddp)

All run the same VAE (96x96, z_dim 256, filters 32-256) with the same batch size and number of steps.
Target on CPU (issue 8): default >= 1.15 x compute.

    python benchmarks/train_throughput.py [--data DIR] [--steps 6] [--batch-size 128] [--compile] [--ddp]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from zspace.config import load_config
from zspace.data import load_dataset
from zspace.data.cache import decode_image, list_images
from zspace.models import build_model
from zspace.models.inputs import to_tensor
from zspace.models.losses import compute_loss
from zspace.train.batches import ResidentBatches, epoch_order, global_batches
from zspace.train.loop import resolve_device

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba" / "img_align_celeba_89x109"


def make_step(cfg, device, *, channels_last: bool = False, compiled: bool = False):
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    net = torch.compile(model) if compiled else model

    def step(x: torch.Tensor) -> None:
        parts = compute_loss(net(x), x, kl_weight=cfg.model.kl_weight, reconstruction="bce")
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()

    return step


def timed(batches, step, device, warmup: int = 1) -> float:
    """Images/s over the batches after ``warmup`` batches (which are run but not timed)."""
    n, t0 = 0, None
    for i, xb in enumerate(batches):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        step(xb)
        if i >= warmup:
            n += len(xb)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per variant (plus one warm-up)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--naive-workers", type=int, default=0, help="DataLoader workers of the naive baseline")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on a CPU)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median of each is reported")
    ap.add_argument("--ddp", action="store_true", help="also compare 2 processes x 1 thread with 1 x 2 threads")
    args = ap.parse_args()
    device = resolve_device(args.device)
    bs, steps = args.batch_size, args.steps + 1
    n = bs * steps
    cfg = load_config(
        None,
        [
            "model.image_size=96",
            "model.channels=3",
            "model.kl_weight=1e-5",
            f"train.batch_size={bs}",
            "data.name=celeba",
            f"data.path={str(args.data)!r}",
            f"data.limit={n}",
            "data.test_fraction=0",
        ],
    )
    t0 = time.perf_counter()
    data = load_dataset(cfg.data)
    print(f"cache: {len(data)} images at 96x96 ready in {time.perf_counter() - t0:.1f} s ({data.source.get('cache')})")
    rows = data.indices("train")[epoch_order(len(data), 0, 0)]

    batches = list(global_batches(rows, bs))
    floats = torch.from_numpy(np.array(data.x)).permute(0, 3, 1, 2).float().div(255)  # (N, C, H, W)
    nchw = floats.contiguous().to(device)
    nhwc = floats.contiguous(memory_format=torch.channels_last).to(device)
    del floats
    feed = ResidentBatches(data.x, device)
    variants = {  # name -> (a fresh iterator of input batches, the step); timed in turns, --repeats rounds
        "compute": (lambda: (nchw[torch.from_numpy(b)] for b in batches), make_step(cfg, device)),
        "memmap": (lambda: (to_tensor(data.x[b], device) for b in batches), make_step(cfg, device)),
        "cl_compute": (
            lambda: (nhwc[torch.from_numpy(b)] for b in batches),
            make_step(cfg, device, channels_last=True),
        ),
        "default": (
            lambda: (to_tensor(xb, device, channels_last=True) for xb in feed.iterate(iter(batches))),
            make_step(cfg, device, channels_last=True),
        ),
    }
    if args.compile:
        try:
            step = make_step(cfg, device, channels_last=True, compiled=True)
            variants["compile"] = (variants["default"][0], step)
            timed(variants["default"][0](), step, device, warmup=len(batches) - 1)  # compile outside the timing
        except Exception as e:  # no C++ compiler, an unsupported backend: say so and go on
            variants.pop("compile", None)
            print(f"compile: skipped ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved rounds: a slow moment of a noisy machine hits every variant
        for name, (make_batches, step) in variants.items():
            speeds[name].append(timed(make_batches(), step, device))
    med = {k: float(np.median(v)) for k, v in speeds.items()}
    compute, memmap, cl_compute, default = med["compute"], med["memmap"], med["cl_compute"], med["default"]
    compiled = med.get("compile")

    files = list_images(args.data)[:n]

    class Files(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.from_numpy(decode_image(files[i], 96, "center")).permute(2, 0, 1).float() / 255

    loader = torch.utils.data.DataLoader(
        Files(),
        batch_size=bs,
        shuffle=True,
        num_workers=args.naive_workers,
        generator=torch.Generator().manual_seed(0),
    )
    naive = timed((xb.to(device) for xb in loader), make_step(cfg, device), device)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"batch {bs}, {args.steps} timed steps per variant, median of {args.repeats} interleaved rounds; "
        "ratios against the old eager fp32 compute bound"
    )
    rows_out = [
        ("compute bound, NCHW float32 in memory (baseline)", compute),
        ("old path: memory-mapped uint8 cache, NCHW", memmap),
        ("compute bound, channels_last", cl_compute),
        ("default: resident uint8 cache, channels_last", default),
        ("default + torch.compile", compiled),
        (f"naive per-file PIL DataLoader ({args.naive_workers} workers)", naive),
    ]
    for label, value in rows_out:
        if value is None:
            print(f"{label:52s}      -   (not run: pass --compile)")
        else:
            print(f"{label:52s} {value:8.1f} img/s   ratio {value / compute:.3f}")
    if args.ddp:
        ddp_comparison(args, n)


def ddp_comparison(args, n: int) -> None:
    """`zspace train` for one epoch as 2 processes x 1 thread and as 1 process x 2 threads: epoch images/s."""
    import socket
    import subprocess
    import sys
    import tempfile

    from zspace.runs.folder import read_history

    sets = ["--set", "model.kl_weight=1e-5", "--set", "data.name='celeba'", "--set", f"data.limit={n}",
            "--set", "data.test_fraction=0", "--set", "train.radius_probe=0", "--set", "data.crop='center'",
            "--set", f"train.batch_size={args.batch_size}", "--epochs", "2"]  # fmt: skip
    config = str(Path(__file__).resolve().parents[1] / "configs" / "celeba-vae-tiny-kl.toml")
    out = Path(tempfile.mkdtemp(prefix="zspace-ddp-bench-"))
    base = ["-q", "train", config, "--data", str(args.data), "--out-dir", str(out), *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "zspace", *base, "--name", "one", "--set", "train.threads=2"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(port), "-m", "zspace"]  # fmt: skip
    subprocess.run([*launcher, *base, "--name", "two", "--set", "train.threads=1"], check=True, env=env)
    one = read_history(out / "one")[-1]["images_per_s"]  # the second epoch: warm caches, no start-up
    two = read_history(out / "two")[-1]["images_per_s"]
    print(f"zspace train, 1 process x 2 threads:  {one:8.1f} img/s (epoch 2)")
    print(f"zspace train, 2 processes x 1 thread: {two:8.1f} img/s (epoch 2)   ratio {two / one:.3f}")


if __name__ == "__main__":
    main()
