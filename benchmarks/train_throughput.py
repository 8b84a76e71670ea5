"""Images/s of zspace's training step on the CelebA cache, every variant against the same baseline in one run.

(compute)   the old eager fp32 compute bound: the model fed float32 NCHW tensors already on the device
(memmap)    the old path: batches gathered from the memory-mapped uint8 cache, converted on the fly, NCHW
(cl-comp)   the fp32 channels_last compute bound (float32 NHWC tensors on the device, model in channels_last)
(bf16)      the bf16 autocast compute bound, NCHW
(bf16-cl)   the bf16 autocast compute bound, channels_last
(default)   zspace's default: the uint8 cache resident on the device, gathered there (zspace's ResidentBatches),
            channels_last, at the precision train.precision = "auto" picks here (bf16 on CUDA and on AMX CPUs)
(compile)   the default path with torch.compile (--compile [reduce-overhead]; minutes of compilation on a CPU)
(naive)     a torch DataLoader that opens, decodes, crops and resizes every JPEG with PIL on every step
(ddp)       `zspace train` as 2 processes x 1 thread (torchrun, gloo) against 1 process x 2 threads (--ddp)

All run the same VAE (96x96, z_dim 256, filters 32-256) with the same batch size and number of steps, and step
as zspace's Trainer does: its forward-and-loss module (LossStep, bf16 autocast where asked for) and Adam with the
Trainer's settings (fused where PyTorch has a fused kernel). The compute-bound variants gather their batches with
index tensors made on the device before the timing (no host tensor per step). Each variant runs warm-up steps
first (1 on a CPU; 10 on CUDA, where cuDNN autotunes), and on CUDA the clock is read after a synchronisation.
Target on CPU (issue 8): default >= 1.15 x compute.

    python benchmarks/train_throughput.py [--data DIR] [--steps N] [--batch-size 128] [--compile [MODE]] [--ddp]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from zspace.config import load_config
from zspace.data import load_dataset
from zspace.data.cache import decode_image, list_images
from zspace.models import build_model
from zspace.models.inputs import to_tensor
from zspace.train.batches import ResidentBatches, epoch_order, global_batches
from zspace.train.loop import LossStep, fused_adam, resolve_device
from zspace.train.precision import resolve_precision

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba" / "img_align_celeba_89x109"
STEPS = {"cpu": 6, "cuda": 50}  # timed steps per variant by default
WARMUP = {"cpu": 1, "cuda": 10}  # untimed steps before them


def cpu_report() -> str:
    """The CPU's model name and whether it has bf16 matrix units (AMX) or bf16 vector instructions (AVX-512)."""
    text = ""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    fields = _fields(text)
    name, flags = fields.get("Model name", ""), set(fields.get("Flags", "").split())
    if not name or not flags:  # no lscpu: the same from /proc/cpuinfo
        with contextlib.suppress(OSError):
            info = _fields(Path("/proc/cpuinfo").read_text())
            name, flags = name or info.get("model name", ""), flags or set(info.get("flags", "").split())
    has = ", ".join(f"{f}: {'yes' if f in flags else 'no'}" for f in ("amx_bf16", "avx512_bf16"))
    return f"cpu: {name or platform.processor() or platform.machine()}, {os.cpu_count()} cores; {has}"


def _fields(text: str) -> dict[str, str]:
    """``key: value`` lines as a dict (the first of each key), keys and values stripped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def make_step(cfg, device, *, channels_last: bool = False, precision: str = "fp32", compiled: str | None = None):
    """One optimiser step as the Trainer takes it: LossStep (forward + loss) and Adam with its settings."""
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, fused=fused_adam(device))
    loss_step = LossStep(model, cfg, precision)
    net = torch.compile(loss_step, mode=compiled, dynamic=False) if compiled else loss_step
    kl_weight = torch.full((), cfg.model.kl_weight, device=device)

    def step(x: torch.Tensor) -> None:
        if compiled == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        parts = net(x, kl_weight)  # (4,): total, reco, kl, weighted kl
        opt.zero_grad(set_to_none=True)
        parts[0].backward()
        opt.step()

    return step


def timed(batches, step, device, warmup: int) -> float:
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
    ap.add_argument("--steps", type=int, help="timed steps per variant (default 6 on a CPU, 50 on CUDA)")
    ap.add_argument("--warmup", type=int, help="untimed steps before them (default 1 on a CPU, 10 on CUDA)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--naive-workers", type=int, default=0, help="DataLoader workers of the naive baseline")
    ap.add_argument("--compile", nargs="?", const="default", choices=("default", "reduce-overhead"),
                    help="also time torch.compile of the default path (slow to compile on a CPU)")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median of each is reported")
    ap.add_argument("--ddp", action="store_true", help="also compare 2 processes x 1 thread with 1 x 2 threads")
    args = ap.parse_args()
    device = resolve_device(args.device)
    steps = args.steps if args.steps is not None else STEPS.get(device.type, STEPS["cpu"])
    warmup = args.warmup if args.warmup is not None else WARMUP.get(device.type, WARMUP["cpu"])
    print(cpu_report())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the Trainer
        print(f"gpu: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}")
    bs = args.batch_size
    n = bs * (steps + warmup)
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
    full = [b for b in global_batches(rows, bs) if len(b) == bs] or list(global_batches(rows, bs))
    batches = [full[i % len(full)] for i in range(warmup + steps)]  # the data repeats when it has too few images
    index = [torch.from_numpy(b).to(device) for b in batches]  # made once, on the device

    floats = torch.from_numpy(np.array(data.x)).permute(0, 3, 1, 2).float().div(255)  # (N, C, H, W)
    nchw = floats.contiguous().to(device)
    nhwc = floats.contiguous(memory_format=torch.channels_last).to(device)
    del floats
    feed = ResidentBatches(data.x, device)
    auto = resolve_precision("auto", device)

    def gathered(source: torch.Tensor):
        return lambda: (source.index_select(0, i) for i in index)

    def default_batches():
        return (to_tensor(xb, device, channels_last=True) for xb in feed.iterate(iter(batches)))

    variants = {  # name -> (label, a fresh iterator of input batches, the step); timed in turns, --repeats rounds
        "compute": ("compute bound, NCHW fp32 (baseline)", gathered(nchw), make_step(cfg, device)),
        "memmap": (
            "old path: memory-mapped uint8 cache, NCHW fp32",
            lambda: (to_tensor(data.x[b], device) for b in batches),
            make_step(cfg, device),
        ),
        "cl_compute": ("compute bound, channels_last fp32", gathered(nhwc),
                       make_step(cfg, device, channels_last=True)),
        "bf16": ("compute bound, NCHW bf16 autocast", gathered(nchw), make_step(cfg, device, precision="bf16")),
        "bf16_cl": ("compute bound, channels_last bf16 autocast", gathered(nhwc),
                    make_step(cfg, device, channels_last=True, precision="bf16")),
        "default": (f"default: resident uint8 cache, channels_last, {auto}", default_batches,
                    make_step(cfg, device, channels_last=True, precision=auto)),
    }  # fmt: skip
    if args.compile:
        label = f"default + torch.compile ({args.compile})"
        try:
            step = make_step(cfg, device, channels_last=True, precision=auto, compiled=args.compile)
            timed(default_batches(), step, device, warmup=len(batches) - 1)  # compile outside the timing
            variants["compile"] = (label, default_batches, step)
        except Exception as e:  # no C++ compiler, an unsupported backend: say so and go on
            print(f"compile: skipped ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved rounds: a slow moment of a noisy machine hits every variant
        for name, (_, make_batches, step) in variants.items():
            speeds[name].append(timed(make_batches(), step, device, warmup))
    med = {k: float(np.median(v)) for k, v in speeds.items()}

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
    naive = timed((xb.to(device) for xb in loader), make_step(cfg, device), device, min(warmup, len(loader) - 1))

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"batch {bs}, {steps} timed steps per variant after {warmup} warm-up, median of {args.repeats} interleaved "
        "rounds; ratios against the old eager fp32 compute bound"
    )
    rows_out = [(label, med[k]) for k, (label, _, _) in variants.items()]
    if not args.compile:
        rows_out.append(("default + torch.compile", None))
    rows_out.append((f"naive per-file PIL DataLoader ({args.naive_workers} workers), NCHW fp32", naive))
    for label, value in rows_out:
        if value is None:
            print(f"{label:56s}      -   (not run: pass --compile)")
        else:
            print(f"{label:56s} {value:8.1f} img/s   ratio {value / med['compute']:.3f}")
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
