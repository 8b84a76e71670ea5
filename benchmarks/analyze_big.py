"""`zspace analyze` on a big N x 256 float32 .npy, against numpy's own load of the file (issue 19, "Measured").

Writes a synthetic N x 256 float32 .npy (a seeded mixture of 40 Gaussians, written in chunks as a memory map) to a
temporary folder, then, each in a fresh Python process (so that peak RSS is that process' own):

- baseline: ``np.load(FILE)`` (the whole array read into memory) and its sum;
- zspace: ``zspace.report.analyze.analyze(FILE, out=...)``, the function behind ``zspace analyze FILE --out ...``,
  with every analysis of the registry, the opt-in UMAP included (t-SNE / UMAP on their usual subsample; sections
  without a model or mu skip); ``--only`` names fewer.

Prints one table: wall seconds, CPU seconds / wall (how many cores were busy on average), peak memory, the ratio to
the baseline, and per section its seconds (as metrics.json records them) and cores busy.

Peak memory is given twice. ``ru_maxrss`` (the kernel's peak resident set) counts the pages of the memory-mapped
.npy that were read, as long as they stay mapped: page cache the kernel can drop at any time, not allocations, but a
full pass over a 1 GB file shows as 1 GB there. "Peak private" is the peak of ``RssAnon`` (the process' own
allocations), sampled every 20 ms from /proc/self/status: what must fit in memory.

    python benchmarks/analyze_big.py [--rows 250000] [--only radius,axes,pca,elbow,manifold] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from zspace.sections import SECTIONS

CHILD = r"""
import json, logging, os, resource, sys, threading, time
t0 = time.perf_counter(); mode, path, out, only = sys.argv[1:5]
peak = {"RssAnon": 0, "RssFile": 0}

def sample():
    while True:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in peak:
                    peak[key] = max(peak[key], int(value.split()[0]))
        time.sleep(0.02)

threading.Thread(target=sample, daemon=True).start()
marks = []  # (section, wall, cpu) at the start of each section
load = [os.getloadavg()[0]]
if mode == "numpy":
    import numpy as np
    a = np.load(path)
    total = float(a.sum(dtype=np.float64))
    extra = {"sum": total}
else:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from zspace.report.analyze import analyze
    on_section = lambda key: marks.append((key, time.perf_counter(), time.process_time()))
    analyze(path, out=out, only=only or None, command="benchmarks/analyze_big.py", on_section=on_section)
    extra = {}
marks.append(("end", time.perf_counter(), time.process_time()))
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
busy = {a[0]: (b[2] - a[2]) / max(b[1] - a[1], 1e-9) for a, b in zip(marks, marks[1:])}
load.append(os.getloadavg()[0])
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "max_rss_kb": ru.ru_maxrss,
                  "peak_anon_kb": peak["RssAnon"], "peak_file_kb": peak["RssFile"], "busy": busy, "load": load,
                  **extra}))
"""


def write_npy(path: Path, rows: int, dim: int = 256, *, seed: int = 0, clusters: int = 40, chunk: int = 50_000) -> None:
    """A mixture of ``clusters`` Gaussians (centres N(0, 0.6^2), spread 0.8) as a float32 (rows, dim) .npy."""
    if path.is_file():  # written before (--keep): reused when it holds the same shape
        old = np.load(path, mmap_mode="r")
        if old.shape == (rows, dim) and old.dtype == np.float32:
            return
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.6, (clusters, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, "w+", np.float32, (rows, dim))
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        block = rng.standard_normal((m, dim), dtype=np.float32) * np.float32(0.8)
        block += centres[rng.integers(0, clusters, m)]
        out[start : start + m] = block
    out.flush()
    del out


def child(mode: str, path: Path, out: Path, only: str, log_path: Path) -> dict:
    with log_path.open("w") as log:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(path), str(out), only],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"{mode} failed (exit {done.returncode}); see {log_path}:\n{log_path.read_text()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated analyses (default: the whole registry)")
    ap.add_argument("--keep", type=Path, default=None, help="write the .npy and the report here and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path, out = folder / f"emb-{args.rows}.npy", folder / f"report-{args.rows}"
        t = time.perf_counter()
        write_npy(path, args.rows, args.dim)
        size = path.stat().st_size
        print(f"wrote {args.rows:,} x {args.dim} float32 ({size / 2**20:,.0f} MiB) in {time.perf_counter() - t:.1f} s")
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()}")
        base = child("numpy", path, out, args.only, folder / "numpy.log")
        ours = child("zspace", path, out, args.only, folder / "analyze.log")
        print(f"load average after: {os.getloadavg()}")
        metrics = json.loads((out / "metrics.json").read_text())
        rows = [("numpy np.load + sum (baseline)", base), ("zspace analyze", ours)]
        print(f"\n{args.rows:,} x {args.dim} float32, {size / 2**20:,.0f} MiB")
        print("\n| what | wall s | cores busy | peak RSS MiB (ru_maxrss) | peak private MiB | private / file "
              "| wall ratio to baseline | load average start / end |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, r in rows:
            rss, anon = r["max_rss_kb"] * 1024, r["peak_anon_kb"] * 1024
            print(
                f"| {name} | {r['wall']:.1f} | {r['cpu'] / r['wall']:.2f} | {rss / 2**20:,.0f} | {anon / 2**20:,.0f} "
                f"| {anon / size:.2f} | {r['wall'] / base['wall']:.1f} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |"
            )
        print("\n| section | seconds | cores busy | skipped |")
        print("| --- | ---: | ---: | --- |")
        for key, sec in metrics["sections"].items():
            busy = ours["busy"].get(key)
            print(
                f"| {key} | {sec.get('seconds', float('nan')):.1f} | {'' if busy is None else f'{busy:.2f}'} "
                f"| {'yes' if sec.get('skipped') else ''} |"
            )
        elbow = metrics["sections"].get("elbow", {})
        if elbow.get("fit_points"):
            print(f"\nelbow fitted on: {elbow['fit_points']}")
        verdict = "met" if ours["wall"] < 300 else "NOT met"
        print(f"\ntarget: under 300 s: {verdict} ({ours['wall']:.1f} s)")


if __name__ == "__main__":
    main()
