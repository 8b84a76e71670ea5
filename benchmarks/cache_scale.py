"""Time and peak memory of the image-cache build against the number of files: linear time, flat memory.

Synthetic JPEG folders (89x109 RGB, like the shared CelebA subset) of each size are made once under --work;
each build runs in a fresh subprocess (2 decoding workers by default) and its peak RSS is the largest of the
builder and its workers (getrusage inside the builder, after its workers were joined). The ratio of the
largest to the smallest folder's peak memory is printed (flat = about 1) and the full 202,599-image CelebA
folder extrapolated from the time per image.

    python benchmarks/cache_scale.py                      # 5,000 and 20,000 files
    python benchmarks/cache_scale.py --sizes 5000,20000,50000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL_CELEBA = 202_599
BUILD = """
import json, resource, sys, time
from zspace.data.cache import cached_images, list_relpaths
root, cache, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
files = list_relpaths(root)
c = cached_images(root, files, dataset="images", size=96, crop="center", cache_dir=cache, workers=workers)
seconds = time.perf_counter() - t0
kb = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({"n": len(c.images), "seconds": seconds, "self_kb": kb[0], "workers_kb": kb[1]}))
"""


def make_folder(path: Path, n: int) -> Path:
    """``n`` small random-texture JPEGs (made once; reused when the folder already holds them)."""
    from PIL import Image

    if path.is_dir() and len(list(path.iterdir())) == n:
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tiles = [Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)) for _ in range(64)]
    for i in range(n):
        tiles[i % 64].save(path / f"{i:06d}.jpg", quality=90)
    return path


def build(folder: Path, cache: Path, workers: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", BUILD, str(folder), str(cache), str(workers)], check=True,
                          capture_output=True, text=True)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # measured inside the builder: its own peak and its workers' (the largest one), in KiB
    out["peak_mb"] = max(out["self_kb"], out["workers_kb"]) / 1024
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "zspace-cache-scale")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.workers} decoding workers; 96 px, center crop")
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        folder = make_folder(args.work / f"jpeg-{n}", n)
        made = time.perf_counter() - t0
        cache = args.work / f"cache-{n}"
        shutil.rmtree(cache, ignore_errors=True)
        got = build(folder, cache, args.workers)
        shutil.rmtree(cache, ignore_errors=True)
        rows.append((n, got["seconds"], got["peak_mb"]))
        print(f"{n:8,d} files (made in {made:5.1f} s): built in {got['seconds']:7.1f} s, "
              f"{1e3 * got['seconds'] / n:.3f} ms/image, peak RSS {got['peak_mb']:.0f} MB")  # fmt: skip
    (n0, t0_, m0), (n1, t1, m1) = rows[0], rows[-1]
    print(f"time ratio {t1 / t0_:.2f} for {n1 / n0:.1f}x the files (linear = {n1 / n0:.1f}); "
          f"peak memory ratio {m1 / m0:.2f} (flat = 1)")  # fmt: skip
    per_image = t1 / n1
    print(f"extrapolated full CelebA folder ({FULL_CELEBA:,} files): {per_image * FULL_CELEBA / 60:.1f} min, "
          f"cache {FULL_CELEBA * 96 * 96 * 3 / 1e9:.2f} GB on disk, peak RSS about {m1:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
