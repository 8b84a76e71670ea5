"""One prepared GPU check of zspace, in under 4 minutes on one H200; every part in its own subprocess and time limit.

(a) ``zspace train`` (the CLI, ``--device cuda``) for 1 epoch of the series' tiny-KL VAE (96x96x3, z_dim 256, default
    filters, kl_weight 1e-5) on 2,000 synthetic PNG images (``data.name = "images"``): seconds and images/s from
    the run's history.csv.
(b) stop and resume: part (a)'s run (a copy) resumed with ``--resume --epochs 2``, beside the same config trained
    2 epochs uninterrupted: both finished?, max |difference| of the final weights (cuDNN need not be
    deterministic on a GPU; on a CPU it is 0).
(c) part (a)'s GPU checkpoint on the CPU: zspace's Trainer (``train.device = "cpu"``) resumed from it takes one
    step; a plain reference (``build_model``, the checkpoint's weights, a fresh non-fused ``torch.optim.Adam``
    filled with the checkpoint's Adam tensors, the same batch and the same noise) takes the same step: max
    |difference| of the parameters (should be < ~1e-5).
(d) ``benchmarks/gpu_seed_run.py``: 1 epoch of 170,000 synthetic images at batch 128 and 512, eager and with
    ``train.compile = "reduce-overhead"``, one subprocess each: steady images/s (second half of the epoch),
    compile/warm-up seconds, checkpoint seconds, total seconds (a run killed after its steady window still
    reports it).
(e) ``zspace embed`` of the CelebA folder (``--celeba``; 10,000 JPEGs) with part (a)'s run on the GPU (the embed
    command keeps the run's dataset kind, "images", and takes the folder from ``--data``: the same decoding,
    crop and resize as ``celeba``, without the attributes): images/s of the command and of a warm in-process
    encoding; then the explorer on that run (``open_explorer``): milliseconds per ``Explorer.decode`` on the GPU
    (where ``zspace.explore`` cannot be imported, e.g. without starlette, the same decode on the run's model).

Time budget (``--budget``, default 228 s): a part gets at most its own limit and never the time the parts after it
need at least; a part that fails or runs out of time is recorded (with the tail of its stderr) and the others go
on. Everything is written to a temporary folder (deleted at the end) except ``--out``: ``gpu_check.md`` (the
summary table), ``gpu_check.json`` (the raw numbers, rewritten after every part) and ``gpu_check.log`` (every
part's command and output).

    PYTHONPATH=src python3 benchmarks/gpu_check.py --celeba PATH --out DIR       # on the GPU machine, repo root
    PYTHONPATH=src .venv/bin/python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu-check   # smoke test

``--quick`` shrinks every size (a CPU smoke test of the script in about two minutes); ``--only a,c`` runs some
parts (b, c and e use part (a)'s run: run a with them).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "celeba-vae-tiny-kl.toml"  # the series' VAE: 96x96, z_dim 256, kl_weight 1e-5
SEED_RUN = REPO / "benchmarks" / "gpu_seed_run.py"
SHARED_CELEBA = Path("data/celeba/img_align_celeba_89x109")  # under shared/, beside the repo or in it
CELEBA = next((s / SHARED_CELEBA for s in (REPO.parent / "shared", REPO / "shared") if (s / SHARED_CELEBA).is_dir()),
              REPO.parent / "shared" / SHARED_CELEBA)  # fmt: skip
# zspace's dependencies (pyproject.toml) as modules: the GPU machine may lack some (it has no package registry)
DEPENDENCIES = ("numpy", "safetensors", "PIL", "tqdm", "sklearn", "scipy", "matplotlib", "openTSNE", "faiss",
                "starlette", "uvicorn", "plotly")  # fmt: skip
TAIL_LINES = 40  # lines of a failed part's stderr kept in the json


@dataclass(frozen=True)
class Part:
    """One part; limit: the most seconds it may run; reserve: the seconds kept for it while earlier parts run."""

    key: str
    title: str
    gpu: tuple[float, float]  # (limit, reserve) on the GPU machine
    quick: tuple[float, float]  # (limit, reserve) in --quick (a 2-core CPU)
    seed_run: tuple[str, int] | None = None  # part d: (compile mode, batch size) of gpu_seed_run.py


@dataclass(frozen=True)
class Sizes:
    images: int  # synthetic PNGs of parts a-c
    seed_images: int  # images of part d's epoch
    batch_sizes: tuple[int, int]  # part d
    celeba: int  # CelebA images embedded in part e (0 = the whole folder)
    decodes: int  # timed explorer decodes


FULL = Sizes(images=2_000, seed_images=170_000, batch_sizes=(128, 512), celeba=0, decodes=200)
QUICK = Sizes(images=160, seed_images=192, batch_sizes=(32, 64), celeba=200, decodes=50)
# part d: eager, then compiled with CUDA graphs: (GPU, quick) x (limit, reserve) in seconds; a compiled run compiles
# twice (the epoch's last, smaller batch is a new static shape)
SEED_RUN_LIMITS = {"none": ((45, 25), (45, 10)), "reduce-overhead": ((90, 35), (30, 10))}


def plan(sizes: Sizes) -> list[list[Part]]:
    """The stages in order; the parts of one stage run at the same time (b on the GPU beside c on the CPU)."""
    d = [
        [Part(f"d-{mode}-{bs}", f"d. {sizes.seed_images:,} imgs, batch {bs}, {'eager' if mode == 'none' else mode}",
              *limits, seed_run=(mode, bs))]
        for mode, limits in SEED_RUN_LIMITS.items()
        for bs in sizes.batch_sizes
    ]  # fmt: skip
    return [
        [Part("a", "a. train 1 epoch (CLI)", (50, 15), (60, 10))],
        [
            Part("b", "b. stop + resume vs straight", (60, 20), (90, 15)),
            Part("c", "c. GPU checkpoint, 1 CPU step", (45, 15), (60, 10)),
        ],
        [Part("e", "e. embed CelebA + explorer decode", (60, 20), (90, 10))],
        *d,
    ]


# ---------------------------------------------------------------------------------------------------------------
# The parent: environment, preparation, the parts in their subprocesses, the report.


class Budget:
    """Seconds left until the deadline, less what the parts still to come need at least."""

    def __init__(self, seconds: float, parts: list[Part], quick: bool):
        self.deadline = time.perf_counter() + seconds
        self.limits = {p.key: p.quick if quick else p.gpu for p in parts}  # (limit, reserve)
        self.pending = [p.key for p in parts]
        self.lock = threading.Lock()

    def take(self, part: Part) -> float:
        with self.lock:
            self.pending.remove(part.key)
            later = sum(self.limits[k][1] for k in self.pending)
            return min(self.limits[part.key][0], self.deadline - time.perf_counter() - later)


LOG_LOCK = threading.Lock()
LOG_CHARS = 60_000  # of each stream of a part, in gpu_check.log


def run_process(cmd: list[str], limit: float, env: dict, log: Path, scratch: Path) -> dict:
    """Run ``cmd`` in a process group of its own, all of it killed after ``limit`` seconds; logged to ``log``.

    Its output goes to files in ``scratch`` (not pipes: a killed part's stray grandchild cannot hold us up).
    """
    scratch.mkdir(parents=True, exist_ok=True)
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    t0 = time.perf_counter()
    with (scratch / "stdout").open("w+") as out, (scratch / "stderr").open("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO, **group)
        timed_out = False
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the part's own group: its CLI runs and compile workers too
            proc.wait()
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    with LOG_LOCK, log.open("a") as f:
        f.write(f"\n===== $ {' '.join(cmd)}\n===== exit code {proc.returncode}, {seconds:.1f} s"
                f"{' (killed: time limit)' if timed_out else ''}\n----- stdout\n{stdout[-LOG_CHARS:]}\n"
                f"----- stderr\n{stderr[-LOG_CHARS:]}\n")  # fmt: skip
    return {"rc": proc.returncode, "timed_out": timed_out, "seconds": seconds, "stdout": stdout, "stderr": stderr}


def last_json(stdout: str, prefix: str) -> dict | None:
    lines = [line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix)]
    return json.loads(lines[-1]) if lines else None


def part_command(part: Part, args: argparse.Namespace, work: Path, sizes: Sizes) -> tuple[list[str], str]:
    """The subprocess of a part and the prefix of the JSON line it reports with."""
    if part.seed_run is not None:
        mode, bs = part.seed_run
        cmd = [sys.executable, str(SEED_RUN), "--images", str(sizes.seed_images), "--epochs", "1", "--batch-sizes",
               str(bs), "--compile-mode", mode, "--precision", "auto", "--device", args.device]  # fmt: skip
        return cmd, "RESULT "
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part.key, "--work", str(work),
           "--device", args.device, "--celeba", str(args.celeba)] + (["--quick"] if args.quick else [])  # fmt: skip
    return cmd, "PART "


def run_part(part: Part, args: argparse.Namespace, work: Path, sizes: Sizes, budget: Budget, env: dict) -> dict:
    """Run one part; whatever goes wrong, a table entry comes back and the next part runs."""
    try:
        return _run_part(part, args, work, sizes, budget, env)
    except Exception as e:  # a bug here, a full disk: recorded like a failed part
        return {"status": "failed", "seconds": 0.0, "summary": f"gpu_check could not run it: {e!r}"[:300]}


def _run_part(part: Part, args: argparse.Namespace, work: Path, sizes: Sizes, budget: Budget, env: dict) -> dict:
    limit = budget.take(part)
    if limit < 8:
        return {"status": "skipped", "seconds": 0.0, "summary": "no time left in the budget"}
    cmd, prefix = part_command(part, args, work, sizes)
    part_env = dict(env)
    if part.seed_run is not None:  # a cold compile per configuration: each compile time stands on its own
        part_env["TORCHINDUCTOR_CACHE_DIR"] = str(work / f"inductor-{part.key}")
        part_env["TRITON_CACHE_DIR"] = str(work / f"triton-{part.key}")
    p = run_process(cmd, limit, part_env, args.out / "gpu_check.log", work / "parts" / part.key)
    result = last_json(p["stdout"], prefix)
    ok = p["rc"] == 0 and result is not None and not result.get("failed")
    status = "timeout" if p["timed_out"] else "ok" if ok else "failed"
    entry: dict[str, Any] = {"status": status, "seconds": round(p["seconds"], 2), "limit_s": round(limit, 1)}
    if result is not None:
        entry["result"] = result
    if status != "ok":
        entry["stderr_tail"] = p["stderr"].splitlines()[-TAIL_LINES:]
    entry["summary"] = summarize(part, result, p)
    return entry


def summarize(part: Part, result: dict | None, p: dict) -> str:
    """The key numbers of a part for the table (what is known, even from a failed or timed-out part)."""
    if part.seed_run is not None:
        if not result or result.get("steady_img_per_s") is None:
            return last_error(p)
        text = (
            f"steady {result['steady_img_per_s']:,.0f} img/s ({result['steady_step_ms']:.2f} ms/step), "
            f"warm-up {result['warmup_s']:.1f} s, setup {result['setup_s']:.1f} s, {result['precision']}"
        )
        if result.get("partial"):
            return text + "; did not finish the epoch: " + last_error(p)
        ckpt = result.get("checkpoint_s")
        ckpt_text = "n/a (no trainer.timings)" if ckpt is None else f"{ckpt:.2f} s ({result['checkpoints']})"
        return text + f", checkpoints {ckpt_text}, epoch {result['fit_s']:.1f} s"
    if result is None:
        return last_error(p)
    return result["summary"]


def last_error(p: dict) -> str:
    if p["timed_out"]:
        return f"killed after {p['seconds']:.0f} s"
    lines = [line.strip() for line in p["stderr"].splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit code {p['rc']}")[:200]


def environment(args: argparse.Namespace) -> dict:
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "zspace_commit": command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "nvidia_smi": command_output(["nvidia-smi", "--query-gpu=name,memory.total,clocks.sm", "--format=csv"]),
    }
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    env["zspace_dirty"] = bool(dirty)
    env["missing_modules"] = [m for m in DEPENDENCIES if importlib.util.find_spec(m) is None]
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command_output(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def prepare(work: Path, args: argparse.Namespace, sizes: Sizes) -> dict:
    """The synthetic PNGs of parts a-c and, in --quick, a small copy of the CelebA folder."""
    t0 = time.perf_counter()
    write_pngs(work / "images", sizes.images)
    out = {"pngs": sizes.images, "png_s": round(time.perf_counter() - t0, 2)}
    if sizes.celeba and args.celeba.is_dir():
        small = work / "celeba-quick"
        small.mkdir()
        for f in sorted(args.celeba.glob("*.jpg"))[: sizes.celeba]:
            shutil.copy2(f, small / f.name)
        args.celeba = small
    return out


def write_pngs(folder: Path, n: int, size: int = 96, seed: int = 0) -> None:
    """``n`` distinct smooth random RGB images (8x8-pixel blocks) as PNG files."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        blocks = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
        image = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
        Image.fromarray(image).save(folder / f"{i:06d}.png", compress_level=1)


def table(results: dict[str, dict], parts: list[Part]) -> list[str]:
    lines = ["| part | status | seconds | key numbers |", "| --- | --- | ---: | --- |"]
    for part in parts:
        r = results.get(part.key)
        if r is not None:
            summary = r["summary"].replace("|", "\\|")  # a literal bar inside a markdown table cell
            lines.append(f"| {part.title} | {r['status']} | {r['seconds']:.1f} | {summary} |")
    return lines


def write_report(args: argparse.Namespace, report: dict, parts: list[Part]) -> list[str]:
    env = report["environment"]
    head = [
        "# zspace GPU check",
        "",
        f"- command: `{report['command']}`",
        f"- device: {env['gpu'] or env['device']}; torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
        f"- CPU: {env['cpu']}, {env['cpu_count']} cores; Python {env['python']}",
        f"- zspace: {env['zspace_commit']}{' (uncommitted changes)' if env['zspace_dirty'] else ''}",
        f"- zspace dependencies missing: {', '.join(env['missing_modules']) or 'none'}",
        f"- total: {report['total_s']:.1f} s of a {report['budget_s']:.0f} s budget",
        "",
    ]
    if env["nvidia_smi"]:
        head += ["```", env["nvidia_smi"], "```", ""]
    lines = table(report["parts"], parts)
    (args.out / "gpu_check.md").write_text("\n".join(head + lines) + "\n")
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    return lines


def main_parent(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come, also into a pipe
    sizes = QUICK if args.quick else FULL
    stages = plan(sizes)
    if args.only:
        wanted = {k.strip() for k in args.only.split(",")}
        stages = [[p for p in stage if p.key.split("-")[0] in wanted] for stage in stages]
        stages = [stage for stage in stages if stage]
    parts = [p for stage in stages for p in stage]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.log").write_text(f"zspace GPU check, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    env = environment(args)
    print(f"GPU: {env['gpu']}  torch {env['torch']}  CUDA {env['cuda']}  cuDNN {env['cudnn']}")
    print(f"CPU: {env['cpu']} ({env['cpu_count']} cores)  zspace {env['zspace_commit']}")
    print(env["nvidia_smi"] or "nvidia-smi: not available")
    print(f"zspace dependencies missing here: {', '.join(env['missing_modules']) or 'none'}")
    budget_s = args.budget if args.budget is not None else (200.0 if args.quick else 228.0)
    budget = Budget(budget_s - (time.perf_counter() - t_start), parts, args.quick)
    work = Path(tempfile.mkdtemp(prefix="zspace-gpu-check-"))
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "ZSPACE_CACHE_DIR": str(work / "cache"),
        "TMPDIR": str(work / "tmp"),
        "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor"),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    }
    (work / "tmp").mkdir()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "environment": env,
        "budget_s": budget_s,
        "sizes": sizes.__dict__,
        "parts": {},
    }
    try:
        report["prepare"] = prepare(work, args, sizes)
        report["celeba"] = str(args.celeba)
        for stage in stages:
            with ThreadPoolExecutor(max_workers=len(stage)) as pool:
                futures = {p.key: pool.submit(run_part, p, args, work, sizes, budget, child_env) for p in stage}
                for part in stage:
                    r = report["parts"][part.key] = futures[part.key].result()
                    t = time.perf_counter() - t_start
                    print(f"[{t:6.1f} s] {part.title}: {r['status']} ({r['seconds']:.1f} s)  {r['summary']}")
            report["total_s"] = time.perf_counter() - t_start
            write_report(args, report, parts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["total_s"] = time.perf_counter() - t_start
    lines = write_report(args, report, parts)
    print()
    print("\n".join(lines))
    print(f"\ntotal {report['total_s']:.1f} s; wrote {args.out / 'gpu_check.md'} and {args.out / 'gpu_check.json'}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The parts a, b, c and e, each run as `gpu_check.py --part KEY` in a subprocess: one `PART {json}` line at the end.


class PartError(Exception):
    pass


def zspace(*argv: str) -> float:
    """Run the zspace CLI; seconds it took. A failure raises with the tail of its stderr."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zspace", "-q", *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-TAIL_LINES:])
        raise PartError(f"zspace {argv[0]} {argv[1]} exited with {done.returncode}:\n{tail}")
    return time.perf_counter() - t0


def train(args: argparse.Namespace, out_dir: Path, name: str, epochs: int, *, resume: bool = False) -> float:
    """`zspace train` of the series' VAE on the synthetic PNGs (the same config for parts a and b)."""
    return zspace("train", str(CONFIG), "--device", args.device, "--out-dir", str(out_dir), "--name", name,
                  "--epochs", str(epochs), "--data", str(args.work / "images"), "--set", 'data.name="images"',
                  "--set", "model.z_dim=256", "--set", "model.kl_weight=1e-5",
                  *(["--resume"] if resume else []))  # fmt: skip


def history(run: Path) -> list[dict[str, float]]:
    import csv

    with (run / "history.csv").open() as f:
        return [{k: float(v) if v else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]


def part_a(args: argparse.Namespace) -> dict:
    wall = train(args, args.work / "runs", "a", 1)
    run = args.work / "runs" / "a"
    row = history(run)[-1]
    config = json.loads((run / "config.json").read_text())
    n_train = json.loads((run / "data.json").read_text()).get("n_train")
    return {
        "wall_s": wall,
        "epoch_s": row["seconds"],
        "img_per_s": row["images_per_s"],
        "n_train": n_train,
        "precision": config["train"]["precision"],
        "loss": row["total"],
        "summary": f"{n_train} imgs: epoch {row['seconds']:.2f} s, {row['images_per_s']:,.0f} img/s (history.csv); "
        f"command {wall:.1f} s; train.precision {config['train']['precision']}",
    }


def max_weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a), load_file(b)
    if wa.keys() != wb.keys():
        raise PartError(f"{a} and {b} hold different tensors")
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def part_b(args: argparse.Namespace) -> dict:
    out = args.work / "runs-b"
    first = args.work / "runs" / "a"
    copied = (first / "checkpoint.safetensors").is_file()

    def resumed() -> float:
        if copied:  # part a's run is the interrupted one: a copy, so that parts c and e keep theirs
            shutil.copytree(first, out / "resumed")
        else:
            train(args, out, "resumed", 1)
        return train(args, out, "resumed", 2, resume=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {"resumed": pool.submit(resumed), "straight": pool.submit(train, args, out, "straight", 2)}
        errors = {k: f.exception() for k, f in jobs.items()}
    finished = {k: errors[k] is None and (out / k / "history.csv").is_file() and len(history(out / k)) == 2
                for k in jobs}  # fmt: skip
    result: dict[str, Any] = {"first_epoch": "part a's run (copied)" if copied else "trained here", **finished}
    if not all(finished.values()):
        for k, e in errors.items():
            if e is not None:
                print(f"{k}: {e}", file=sys.stderr)
        said = ", ".join(f"{k} {'finished' if ok else 'FAILED'}" for k, ok in finished.items())
        return {**result, "failed": True, "summary": f"{said}: {last_line(errors)}"}
    diff = max_weight_difference(out / "resumed" / "model.safetensors", out / "straight" / "model.safetensors")
    losses = [history(out / k)[-1]["total"] for k in ("resumed", "straight")]
    result.update(max_abs_weight_diff=diff, final_loss_resumed=losses[0], final_loss_straight=losses[1])
    result["summary"] = (
        f"resumed and straight both finished 2 epochs; max |w_resumed - w_straight| = {diff:.3g} "
        f"(final loss {losses[0]:.4f} vs {losses[1]:.4f})"
    )
    return result


def last_line(errors: dict[str, BaseException | None]) -> str:
    """The last line of the first error (a CLI's one-line ``zspace: error: ...`` or an exception's last line)."""
    text = next((str(e) for e in errors.values() if e is not None), "")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"


def part_c(args: argparse.Namespace) -> dict:
    import torch
    from safetensors import safe_open

    from zspace.data import Dataset
    from zspace.models import build_model
    from zspace.models.losses import compute_loss
    from zspace.runs.folder import read_config
    from zspace.train.loop import Trainer

    run = args.work / "runs" / "a"
    ckpt = run / "checkpoint.safetensors"
    if not ckpt.is_file():
        raise PartError(f"part a left no checkpoint ({ckpt})")
    with safe_open(str(ckpt), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        meta = f.metadata()
    progress, groups = json.loads(meta["progress"]), json.loads(meta["param_groups"])
    cfg = read_config(run)
    bs = cfg.train.batch_size
    cfg.train.device, cfg.train.precision, cfg.train.compile = "cpu", "fp32", False
    cfg.train.radius_probe, cfg.train.epochs = 0, progress["epoch"] + 1  # one more epoch: exactly one step
    shape = (bs, cfg.model.image_size, cfg.model.image_size, cfg.model.channels)  # (B, H, W, C)
    x = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    data = Dataset("check", x, None, None, None, None, np.arange(bs), np.zeros(bs, bool), {"path": None})

    # zspace: the Trainer on the CPU, resumed from the GPU checkpoint, one epoch = one step of the whole batch
    cpu = torch.device("cpu")
    (args.work / "c-run").mkdir()
    trainer = Trainer(build_model(cfg.model), data, cfg, args.work / "c-run", cpu)
    trainer.resume(ckpt)
    trainer.fit()
    after = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}

    # the plain reference: NCHW fp32 model, non-fused Adam filled from the checkpoint, the checkpoint's RNG state
    model = build_model(cfg.model).train()
    model.load_state_dict({k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")})
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = groups[0]
    opt = torch.optim.Adam(model.parameters(), lr=g["lr"], betas=tuple(g["betas"]), eps=g["eps"],
                           weight_decay=g["weight_decay"], amsgrad=g["amsgrad"], foreach=False,
                           fused=False)  # fmt: skip
    for i, p in enumerate(model.parameters()):
        state = {k.rsplit("/", 1)[1]: v.clone() for k, v in tensors.items() if k.startswith(f"optim/{i}/")}
        state["step"] = state["step"].to(torch.float32).reshape(())
        opt.state[p] = state
    torch.set_rng_state(tensors["rng/cpu"])
    xb = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0)  # the one batch: every row, in order
    parts = compute_loss(model(xb), xb, kl_weight=cfg.model.kl_weight, reconstruction=cfg.model.reconstruction)
    opt.zero_grad(set_to_none=True)
    parts.total.backward()
    opt.step()

    names = dict(model.named_parameters())
    diff = max(float((after[k] - names[k].detach()).abs().max()) for k in names)
    update = max(float((names[k].detach() - before[k]).abs().max()) for k in names)
    trainer_group = {k: v for k, v in trainer.optimizer.param_groups[0].items() if k in ("fused", "foreach")}
    return {
        "max_abs_param_diff": diff,
        "max_abs_update": update,
        "within_1e-5": diff < 1e-5,
        "checkpoint_epoch": progress["epoch"],
        "checkpoint_param_group": {k: v for k, v in g.items() if k != "params"},
        "trainer_optimizer": trainer_group,
        "summary": f"max |trainer - plain Adam| = {diff:.3g} after one step (the step moved weights by up to "
        f"{update:.3g}); < 1e-5: {'yes' if diff < 1e-5 else 'NO'}; trainer's Adam {trainer_group}",
    }


def part_e(args: argparse.Namespace) -> dict:
    import torch

    from zspace.data import load_dataset
    from zspace.latents.embedding import embed
    from zspace.runs.folder import load_run
    from zspace.train.loop import resolve_device

    run = args.work / "runs" / "a"
    if not (run / "model.safetensors").is_file():
        raise PartError(f"part a left no weights ({run})")
    if not args.celeba.is_dir():
        raise PartError(f"no CelebA folder at {args.celeba} (pass --celeba)")
    cli_s = zspace("embed", str(run), "--data", str(args.celeba), "--device", args.device, "--batch-size", "512")
    n = len(np.load(run / "latents" / "all" / "z.npy", mmap_mode="r"))
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    loaded = load_run(run, device=device)  # a warm encoding in this process: the images are in the cache now
    cfg = loaded.config.data
    cfg.path = str(args.celeba)
    data = load_dataset(cfg)
    seconds = []
    for i in range(2):  # the first pass warms up (cuDNN, allocator)
        sync()
        t0 = time.perf_counter()
        embed(loaded.model, data, args.work / f"e-latents-{i}", device=device, batch_size=512)
        sync()
        seconds.append(time.perf_counter() - t0)
    decode = explorer_decode(run, device, args.decodes)
    return {
        "images": n,
        "embed_cli_s": cli_s,
        "embed_cli_img_per_s": n / cli_s,
        "encode_warm_s": seconds[1],
        "encode_warm_img_per_s": len(data) / seconds[1],
        **decode,
        "summary": f"embed {n:,} CelebA imgs: command {cli_s:.1f} s ({n / cli_s:,.0f} img/s incl. start-up and "
        f"decoding into the cache), warm {len(data) / seconds[1]:,.0f} img/s; {decode['decode_text']}",
    }


def explorer_decode(run: Path, device, calls: int) -> dict:
    """Milliseconds per ``Explorer.decode`` of PCA-plane locations (clicks), after 10 warm-up calls."""
    try:
        from zspace.explore import open_explorer
    except ImportError as e:  # the package imports its web app (starlette, uvicorn) with it
        return model_decode(run, device, calls, f"{type(e).__name__}: {e}")
    t0 = time.perf_counter()
    explorer = open_explorer(run, device=device)  # the latents the embed command wrote
    open_s = time.perf_counter() - t0
    plane = explorer.plane((1, 2))  # (N, 2): clicks land where the points are
    xy = np.random.default_rng(0).uniform(plane.min(0), plane.max(0), size=(calls + 10, 2))
    ms, shape = time_calls(explorer.decode, [explorer.location((1, 2), float(x), float(y)) for x, y in xy])
    return {"explorer_open_s": open_s, "decode_ms": ms, "decodes": calls, "decoded_shape": shape,
            "decode_text": f"explorer opens in {open_s:.1f} s, decode {ms:.2f} ms ({calls} calls)"}  # fmt: skip


def model_decode(run: Path, device, calls: int, why: str) -> dict:
    """Without ``zspace.explore``: what ``Explorer.decode`` does (one z through the decoder, uint8 on the host)."""
    import torch

    from zspace.runs.folder import load_run

    model = load_run(run, device=device).model
    z = np.load(run / "latents" / "all" / "z.npy", mmap_mode="r")
    points = np.asarray(z[np.random.default_rng(0).integers(0, len(z), calls + 10)], dtype=np.float32)

    @torch.no_grad()
    def decode(one: np.ndarray) -> np.ndarray:
        x_hat = model.decode(torch.as_tensor(one[None], device=device))  # (1, C, H, W) in [0, 1]
        return (x_hat[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)

    ms, shape = time_calls(decode, list(points))
    return {"explorer": f"not importable ({why})", "decode_ms": ms, "decodes": calls, "decoded_shape": shape,
            "decode_text": f"explorer not importable ({why.split(':')[0]}): the same decode through the run's "
                           f"model {ms:.2f} ms ({calls} calls)"}  # fmt: skip


def time_calls(decode, points: list) -> tuple[float, list[int]]:
    """Milliseconds per call of ``decode`` over ``points[10:]``, after ``points[:10]`` as warm-up; the image shape.

    Each call returns a host array, so it waits for its own GPU work: no extra synchronisation is needed."""
    for z in points[:10]:
        decode(z)
    t0 = time.perf_counter()
    for z in points[10:]:
        image = decode(z)
    return 1e3 * (time.perf_counter() - t0) / (len(points) - 10), list(image.shape)


PARTS = {"a": part_a, "b": part_b, "c": part_c, "e": part_e}


def main_child(args: argparse.Namespace) -> int:
    args.decodes = (QUICK if args.quick else FULL).decodes
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise PartError("--device cuda but CUDA is not available here (use --device cpu for a smoke test)")
    result = PARTS[args.part](args)
    print("PART " + json.dumps(result), flush=True)
    return 1 if result.get("failed") else 0  # a failed part may still report what it knows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--celeba", type=Path, default=CELEBA, help=f"folder of CelebA JPEGs (default {CELEBA})")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_check.md, .json and .log")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script on a CPU")
    ap.add_argument("--budget", type=float, help="seconds for everything (default 228; 200 with --quick)")
    ap.add_argument("--only", help="comma-separated parts to run, of a,b,c,d,e (default all)")
    ap.add_argument("--part", choices=tuple(PARTS), help=argparse.SUPPRESS)  # a subprocess running one part
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.celeba = args.celeba.expanduser().resolve()
    if args.part:
        return main_child(args)
    if args.out is None:
        ap.error("--out DIR is required")
    args.out = args.out.expanduser().resolve()
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
