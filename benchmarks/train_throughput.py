"""Images/s of zspace's training loop on the CelebA cache, against two baselines in the same run.

(ours)    the Trainer's loop: batches gathered from the memory-mapped uint8 cache, converted on the fly
(compute) the same model and steps fed from a float32 tensor already in memory: the compute bound
(naive)   a torch DataLoader that opens, decodes, crops and resizes every JPEG with PIL on every step

All three run the same VAE (96x96, z_dim 256, filters 32-256) with the same batch size and number of steps.
Target: ours >= 0.9 x compute.

    python benchmarks/train_throughput.py [--data DIR] [--steps 6] [--batch-size 128] [--device auto]
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
from zspace.losses import compute_loss
from zspace.models import build_model
from zspace.training import epoch_order, iter_batches, resolve_device, to_tensor

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba" / "img_align_celeba_89x109"


def make_step(cfg, device):
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)

    def step(x: torch.Tensor) -> None:
        parts = compute_loss(model(x), x, kl_weight=cfg.model.kl_weight, reconstruction="bce")
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

    ours = timed((to_tensor(b, device) for b in iter_batches(data.x, rows, bs)), make_step(cfg, device), device)

    resident = torch.from_numpy(np.array(data.x)).permute(0, 3, 1, 2).float().div(255).contiguous().to(device)
    compute = timed(
        (resident[torch.from_numpy(np.sort(rows[i : i + bs]))] for i in range(0, n, bs)),
        make_step(cfg, device),
        device,
    )
    del resident

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
    print(f"batch {bs}, {args.steps} timed steps per variant")
    print(f"compute bound (in-memory float tensors): {compute:8.1f} img/s")
    print(f"ours (memory-mapped uint8 cache):        {ours:8.1f} img/s   ratio {ours / compute:.3f}")
    print(
        f"naive per-file PIL DataLoader ({args.naive_workers} workers): {naive:8.1f} img/s   "
        f"ratio {naive / compute:.3f}"
    )


if __name__ == "__main__":
    main()
