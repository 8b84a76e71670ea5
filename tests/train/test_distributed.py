"""Several training processes (gloo on CPU, via torchrun and via plain env launches) and the device-resident path.

The DDP runs use 2 processes of 1 thread on the bundled digits. Tolerance of the weight comparison with a
single process: DDP averages the two half-batch gradients where one process takes the mean over the whole
batch, so float32 sums are taken in another order (relative error ~1e-7 per step); Adam divides by sqrt(v), so
such differences do not shrink, and after the 34 steps here they stay below 1e-6 (measured: 6e-8). An atol of
1e-5 is far above that and far below any real difference (a wrong slice, a wrong loss weight, different noise
change weights by > 1e-3 after one step).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_training import make_trainer, tiny_config, tiny_data

from zspace.runs import folder as runs
from zspace.train import loop as training
from zspace.train.batches import local_slice

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SETTINGS = [
    "--set",
    "model.z_dim=4",
    "--set",
    "model.filters=[8, 16]",
    "--set",
    "train.batch_size=100",
    "--set",
    "train.threads=1",
    "--set",
    "train.checkpoint_every=5",
    "--set",
    "train.dist_timeout=60",
    "--set",
    'train.precision="fp32"',
]  # fmt: skip  (the equality claims are fp32's; bf16 rounds per batch)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(out: Path, name: str, epochs: int, *extra: str) -> list[str]:
    return ["-q", "train", DIGITS, "--out-dir", str(out), "--name", name, "--epochs", str(epochs), *SETTINGS, *extra]


def single(out: Path, name: str, epochs: int) -> Path:
    subprocess.run([sys.executable, "-m", "zspace", *train_args(out, name, epochs)], check=True, env=ENV, timeout=300)
    return out / name


def torchrun(*launcher: str, args: list[str], cwd: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "zspace", *args]
    return subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


def assert_close(a: Path, b: Path, atol: float = 1e-5) -> float:
    ta, tb = load_file(a / runs.WEIGHTS), load_file(b / runs.WEIGHTS)
    assert ta.keys() == tb.keys()
    diff = max((ta[k] - tb[k]).abs().max().item() for k in ta)
    assert diff <= atol, diff
    return diff


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, Path]:
    """Single-process runs of 1 and 2 epochs with the same global batch and seed."""
    out = tmp_path_factory.mktemp("single")
    return {1: single(out, "e1", 1), 2: single(out, "e2", 2)}


def test_local_slices_partition_a_global_batch():
    for n, world in [(100, 2), (17, 2), (5, 3), (3, 4)]:
        chunks = [local_slice(n, r, world) for r in range(world)]
        assert chunks[0][0] == 0
        assert chunks[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
        sizes = [hi - lo for lo, hi in chunks]
        assert max(sizes) - min(sizes) <= 1
        assert [hi - lo for lo, hi in chunks] == [len(c) for c in np.array_split(np.arange(n), world)]


def test_ddp_two_processes_equal_one_process_and_resume(reference, tmp_path):
    port = free_port()
    p = torchrun("--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(port),
                 args=train_args(tmp_path, "ddp", 1))  # fmt: skip
    finish(p)
    assert_close(reference[1], tmp_path / "ddp")
    p = torchrun("--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                 args=train_args(tmp_path, "ddp", 2, "--resume"))  # fmt: skip
    finish(p)
    assert_close(reference[2], tmp_path / "ddp")
    assert len(runs.read_history(tmp_path / "ddp")) == 2
    assert sorted(q.name for q in tmp_path.iterdir()) == ["ddp"]  # nothing else: no temp files, no lock file


def test_two_nodes_on_localhost(reference, tmp_path):
    port = str(free_port())
    nodes = [
        torchrun("--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                 "--master-port", port, args=train_args(Path("runs"), "nodes", 1), cwd=tmp_path / f"node{r}")
        for r in (0, 1) if (tmp_path / f"node{r}").mkdir() is None
    ]  # fmt: skip
    for p in nodes:
        finish(p)
    assert_close(reference[1], tmp_path / "node0" / "runs" / "nodes")
    assert not (tmp_path / "node1" / "runs").exists()  # only rank 0 writes


def launch_rank(rank: int, port: int, cwd: Path, epochs: int) -> subprocess.Popen:
    env = {**ENV, "RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    cmd = [sys.executable, "-m", "zspace", *train_args(Path("runs"), "k", epochs)]
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_process_makes_the_other_exit_with_one_line(tmp_path):
    port = free_port()
    for r in (0, 1):
        (tmp_path / f"r{r}").mkdir()
    ranks = [launch_rank(r, port, tmp_path / f"r{r}", epochs=1000) for r in (0, 1)]
    try:
        ckpt = tmp_path / "r0" / "runs" / "k" / runs.CHECKPOINT
        deadline = time.monotonic() + 120
        while not ckpt.is_file():
            assert all(p.poll() is None for p in ranks), ranks[0].stderr.read()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.2)
        good = ckpt.read_bytes()
        ranks[1].send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        _, err = ranks[0].communicate(timeout=90)  # gloo sees the closed connection at the next all-reduce
        waited = time.monotonic() - t0
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
            p.communicate()
    lines = err.strip().splitlines()
    assert ranks[0].returncode == 1, err
    assert len(lines) == 1, err
    assert "lost another training process" in lines[0]
    assert waited < 60
    assert not (tmp_path / "r1" / "runs").exists()  # only rank 0 writes
    from zspace.config import RunConfig
    from zspace.models import build_model
    from zspace.runs.checkpoint import load_checkpoint  # the last checkpoint is a whole, loadable one

    cfg = runs.read_config(tmp_path / "r0" / "runs" / "k")
    assert isinstance(cfg, RunConfig)
    model = build_model(cfg.model)
    assert load_checkpoint(ckpt, model, torch.optim.Adam(model.parameters()))["global_step"] >= 5
    assert len(good) > 0


GLOO_RESET = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
    "[127.0.0.1]:26505: Connection reset by peer. This is typically caused by a remote worker hanging"
)


def test_a_lost_peer_inside_backward_becomes_one_line_and_other_errors_pass():
    """DDP's all-reduce runs inside ``loss.backward()``: a peer lost there is the same one-line failure."""
    from zspace.errors import DistributedFailure
    from zspace.train.distributed import World, collectives

    two = World(rank=0, size=2)

    def raised(world: World, error: Exception, **kw) -> None:
        with collectives(world, **kw):
            raise error

    with pytest.raises(DistributedFailure, match=r"^lost another training process \(\[/__w.*Connection reset") as e:
        raised(two, RuntimeError(GLOO_RESET + "\nsecond line"))
    assert "\n" not in str(e.value)
    assert "rerun with --resume" in str(e.value)
    with pytest.raises(RuntimeError, match=r"^mat1 and mat2 shapes cannot be multiplied$"):  # a bug stays a bug
        raised(two, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(torch.OutOfMemoryError):  # the CLI names an out-of-memory itself
        raised(two, torch.OutOfMemoryError("CUDA out of memory (gloo)"))
    with pytest.raises(RuntimeError, match="Connection reset"):  # one process: nothing to lose
        raised(World(), RuntimeError(GLOO_RESET))
    with pytest.raises(DistributedFailure, match=r"lost another training process \(boom\)"):  # a collective alone
        raised(two, RuntimeError("boom"), mixed=False)


# --- the device-resident path and the deferred read-back (in process, CPU) -------------------------------------


def fit(tmp_path: Path, *sets: str) -> dict[str, torch.Tensor]:
    cfg = tiny_config(tmp_path, *sets)
    trainer = make_trainer(cfg, tiny_data())
    trainer.fit()
    return load_file(tmp_path / "t" / runs.WEIGHTS)


def test_the_resident_path_gives_the_same_weights(tmp_path):
    on = fit(tmp_path / "on", 'train.data_on_device="on"', "train.log_every=1")
    off = fit(tmp_path / "off", 'train.data_on_device="off"', "train.log_every=7")
    assert on.keys() == off.keys()
    assert all(torch.equal(on[k], off[k]) for k in on)  # bit for bit: same batches, same noise, same order


@pytest.mark.parametrize("log_every", [1, 3, 50])
def test_the_nan_stop_names_the_first_bad_step_whatever_log_every(tmp_path, monkeypatch, log_every):
    cfg = tiny_config(tmp_path, f"train.log_every={log_every}", 'train.data_on_device="on"')
    trainer = make_trainer(cfg, tiny_data())
    real, calls = training.compute_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        parts = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] >= 7:  # epoch 1 is 4 steps + 1 test batch: call 7 is epoch 2, step 2, and all after it
            parts.total = parts.total * float("nan")
        return parts

    monkeypatch.setattr(training, "compute_loss", poisoned)
    with pytest.raises(training.TrainingDiverged, match=r"at epoch 2, step 2 of 4.*\(epoch 1\) is intact"):
        trainer.fit()
    assert len(runs.read_history(tmp_path / "t")) == 1  # nothing of epoch 2 was saved


def test_ctrl_c_checkpoints_the_exact_position_and_resume_is_bit_identical(tmp_path):
    ref = fit(tmp_path / "ref", "train.log_every=2")
    cfg = tiny_config(tmp_path / "int", "train.log_every=2")
    trainer = make_trainer(cfg, tiny_data())
    real_step = trainer._step
    count = {"n": 0}

    def step_then_ctrl_c(*args, **kwargs):
        count["n"] += 1
        if count["n"] == 6:  # epoch 2, step 2: SIGINT arrives mid-step, as from a terminal
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)

    trainer._step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    progress = trainer.progress
    assert (progress["epoch"], progress["step"]) == (1, 2)  # stopped at the read-back after step 2 of epoch 2
    resumed = make_trainer(cfg, tiny_data(), seed=123)
    resumed.resume()
    resumed.fit()
    got = load_file(tmp_path / "int" / "t" / runs.WEIGHTS)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_an_empty_slice_on_one_process_is_no_lost_step(tmp_path):
    """n_train % batch_size == 1 with 2 processes: the last global batch has one image and process 1 none. Its
    batch means are of nothing (NaN); it must add zeros, not a non-finite loss, and the update must equal one
    process's."""
    from zspace.config import load_config
    from zspace.data import load_dataset

    n_train = len(load_dataset(load_config(DIGITS).data).indices("train"))
    batch = next(b for b in range(90, 400) if n_train % b == 1)
    sets = [f"train.batch_size={batch}" if s == "train.batch_size=100" else s for s in SETTINGS]
    assert f"train.batch_size={batch}" in sets
    args = ["-q", "train", DIGITS, "--out-dir", str(tmp_path), "--epochs", "1", *sets]
    subprocess.run([sys.executable, "-m", "zspace", *args, "--name", "one"], check=True, env=ENV, timeout=300)
    p = torchrun("--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                 args=[*args, "--name", "two"])  # fmt: skip
    finish(p)
    assert_close(tmp_path / "one", tmp_path / "two")
    one, two = runs.read_history(tmp_path / "one"), runs.read_history(tmp_path / "two")
    assert np.isfinite(two[0]["total"])
    assert two[0]["total"] == pytest.approx(one[0]["total"], rel=1e-5)


def test_batch_norm_across_cpu_processes_is_one_line_and_writes_nothing(tmp_path):
    p = torchrun("--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                 args=[*train_args(tmp_path, "bn", 1), "--set", "model.batch_norm=true"])  # fmt: skip
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0
    assert "zspace: error: model.batch_norm with several processes needs CUDA" in err
    frames = [line.strip() for line in err.splitlines() if line.strip().startswith("File ")]
    assert all("<frozen" in f or "/torch/" in f for f in frames), frames  # only torchrun's own report of a failed child
    assert not (tmp_path / "bn").exists()
