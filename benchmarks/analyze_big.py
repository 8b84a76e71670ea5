"""`zspace analyze` on a big N x 256 float32 .npy, against numpy's own load of the file (issue 19, "Measured").

Writes a synthetic N x 256 float32 .npy (a seeded mixture of 40 Gaussians, written in chunks as a memory map) to a
temporary folder, then, each in a fresh Python process (so that peak RSS is that process' own):

- baseline: ``np.load(FILE)`` (the whole array read into memory) and its sum;
- zspace: ``zspace.report.analyze.analyze(FILE, out=...)``, the function behind ``zspace analyze FILE --out ...``,
  with every analysis of the registry (t-SNE / UMAP on their usual subsample; sections without a model or mu skip).

Prints one table: wall seconds, CPU seconds / wall (how many cores were busy on average), peak RSS, the ratio to the
baseline, and the seconds of every section as metrics.json records them.

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

CHILD = r"""
import json, logging, resource, sys, time
t0 = time.perf_counter(); mode, path, out, only = sys.argv[1:5]
if mode == "numpy":
    import numpy as np
    a = np.load(path)
    total = float(a.sum(dtype=np.float64))
    extra = {"sum": total}
else:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from zspace.report.analyze import analyze
    analyze(path, out=out, only=only or None, command="benchmarks/analyze_big.py")
    extra = {}
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "max_rss_kb": ru.ru_maxrss, **extra}))
"""


def write_npy(path: Path, rows: int, dim: int = 256, *, seed: int = 0, clusters: int = 40, chunk: int = 50_000) -> None:
    """A mixture of ``clusters`` Gaussians (centres N(0, 0.6^2), spread 0.8) as a float32 (rows, dim) .npy."""
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
    ap.add_argument("--only", default="", help="comma-separated analyses (default: all of the registry)")
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
        print("\n| what | wall s | cores busy | peak RSS MiB | RSS / file | wall ratio to baseline |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, r in rows:
            rss = r["max_rss_kb"] * 1024
            print(
                f"| {name} | {r['wall']:.1f} | {r['cpu'] / r['wall']:.2f} | {rss / 2**20:,.0f} | {rss / size:.2f} "
                f"| {r['wall'] / base['wall']:.1f} |"
            )
        print("\n| section | seconds | skipped |")
        print("| --- | --- | --- |")
        for key, sec in metrics["sections"].items():
            print(f"| {key} | {sec.get('seconds', float('nan')):.1f} | {'yes' if sec.get('skipped') else ''} |")
        verdict = "met" if ours["wall"] < 300 else "NOT met"
        print(f"\ntarget: under 300 s: {verdict} ({ours['wall']:.1f} s)")


if __name__ == "__main__":
    main()
