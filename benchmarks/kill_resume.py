"""SIGKILL a training run at random moments, resume it each time, and compare with the uninterrupted run.

    python benchmarks/kill_resume.py                 # 20 kills on the bundled digits (about 2 minutes on 2 cores)
    python benchmarks/kill_resume.py --kills 50 --seed 3

Checkpoints are written every step (``train.checkpoint_every = 1``), so many kills land inside a checkpoint
write; a kill that left a temporary checkpoint file behind is counted as "during a write". The first kills may
come before any checkpoint exists (the run is then started afresh by ``--resume``). At the end the resumed
run's weights and checkpoint tensors must equal the uninterrupted run's bit for bit.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits-demo.toml"
# A wide extra Dense layer makes each checkpoint ~25 MB, so a good share of the kills land inside a write.
SETTINGS = ["--epochs", "3", "--set", "model.z_dim=4", "--set", "model.filters=[8, 16]",
            "--set", "model.extra_dense=8192", "--set", "train.checkpoint_every=1",
            "--set", "train.threads=1", "--set", "train.batch_size=128"]  # fmt: skip


def command(out: Path, name: str, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "zspace", "-q", "train", str(CONFIG), "--out-dir", str(out), "--name", name]
    return cmd + SETTINGS + (["--resume"] if resume else [])


def train_to_end(out: Path, name: str, resume: bool) -> float:
    t0 = time.perf_counter()
    subprocess.run(command(out, name, resume), check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def kill_once(out: Path, name: str, delay: float) -> tuple[int | None, bool]:
    """Start (or resume) the run, SIGKILL it after ``delay`` s; returns its exit code and whether a temp was left."""
    run = out / name
    proc = subprocess.Popen(command(out, name, resume=run.exists()), env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        proc.wait(timeout=delay)
        return proc.returncode, False  # finished before the kill
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    during_write = run.is_dir() and any(run.glob(".*.safetensors.*.tmp"))  # a checkpoint or weights write
    return None, during_write


def same_tensors(a: Path, b: Path) -> bool:
    ta, tb = load_file(a), load_file(b)
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zspace-kill-"))
    try:
        t_ref = train_to_end(work, "reference", resume=False)
        print(f"uninterrupted run: {t_ref:.1f} s (with start-up)")
        rng = random.Random(args.seed)
        kills = during_write = finished_early = 0
        while kills < args.kills:
            low = 0.3 if kills < 3 else 0.55 * t_ref  # a few kills during start-up, the rest while training
            code, in_write = kill_once(work, "killed", rng.uniform(low, t_ref))
            if code is not None:
                finished_early += 1
                shutil.rmtree(work / "killed")  # it ran to the end: start again, a kill must come first
                continue
            kills += 1
            during_write += in_write
        train_to_end(work, "killed", resume=True)
        weights = same_tensors(work / "reference" / "model.safetensors", work / "killed" / "model.safetensors")
        ckpt = same_tensors(work / "reference" / "checkpoint.safetensors", work / "killed" / "checkpoint.safetensors")
        print(f"kills: {kills} ({during_write} left a temporary weights/checkpoint file: killed during a write); "
              f"{finished_early} attempts finished before their kill")  # fmt: skip
        print(f"final weights bit-identical: {weights}; checkpoint (model, Adam, RNG) bit-identical: {ckpt}")
        return 0 if weights and ckpt else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
