"""Several processes that cannot all start: a refusal on any process stops every one with one line, quickly, and a
process waiting for the others stops at Ctrl-C (issue 16, part 5).

Real 2-process gloo launches on CPU (plain env launches, as torchrun's workers see them); where the test plays
the other process itself, it serves or reads the launcher's key-value store (a torch TCPStore) directly.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]", "--set", "train.threads=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
QUICK = 60  # seconds: each launch starts Pythons with torch on 2 shared cores (measured 10-32 s); a hang is 300 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(rank: int, port: int, cwd: Path, *extra: str) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**ENV, "RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    cmd = [sys.executable, "-m", "zspace", "-q", "train", DIGITS, "--out-dir", "runs", "--epochs", "1", *SMALL, *extra]
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_all(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    errs = []
    try:
        for p in procs:
            errs.append(p.communicate(timeout=timeout)[1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return errs


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


def test_a_refusal_on_either_process_stops_both_with_one_line(tmp_path):
    """Rank 1 with a bad config, and (another launch at the same time) rank 0 with a bad data path, rank 1 with a
    bad option: each launch ends within seconds, exit 2, one line from rank 0, nothing written."""
    ports = [free_port() for _ in range(3)]
    procs = [
        launch(0, ports[0], tmp_path / "a0"),
        launch(1, ports[0], tmp_path / "a1", "--set", "model.z_dim=0"),
        launch(0, ports[1], tmp_path / "b0", "--set", 'data.name="mnist"', "--data", str(tmp_path / "no-such-data")),
        launch(1, ports[1], tmp_path / "b1", "--set", 'data.name="mnist"', "--data", str(tmp_path / "elsewhere")),
        launch(0, ports[2], tmp_path / "c0"),
        launch(1, ports[2], tmp_path / "c1", "--epochs", "many"),
    ]
    t0 = time.monotonic()
    errs = finish_all(procs, timeout=120)
    took = time.monotonic() - t0
    assert [p.returncode for p in procs] == [2] * 6, errs
    assert took < QUICK, took
    a0, a1, b0, b1, c0, _ = errs
    assert lines(a0) == ["zspace: error: process 1 of 2 refused to start: config key 'model.z_dim': must be in "
                         "[1, 65536], got 0"]  # fmt: skip
    assert lines(a1) == []  # rank 0 speaks for all
    assert len(lines(b0)) == 1, b0
    assert "no-such-data does not exist" in b0
    assert lines(b1) == []
    assert lines(c0) == ["zspace: error: process 1 of 2 refused to start: a bad command line (see its usage message)"]
    assert not any((tmp_path / d / "runs").exists() for d in ("a0", "a1", "b0", "b1", "c0", "c1"))


def store_client(port: int, timeout: float = 30) -> dist.Store:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, f"nothing serves port {port}"
            time.sleep(0.1)
    return dist.PrefixStore("zspace-start", dist.TCPStore("127.0.0.1", port, 2, False, datetime.timedelta(seconds=10)))


def wait_for_key(store: dist.Store, key: str, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not store.check([key]):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no {key} after {timeout} s"
        time.sleep(0.05)
    return store.get(key).decode()


def test_ctrl_c_stops_processes_waiting_for_the_others_and_a_missing_one_is_named(tmp_path):
    """Rank 0 waiting for a rank 1 that never starts, and rank 1 waiting for a rank 0 that never answers (the test
    serves the store and stays silent): Ctrl-C ends both within seconds (exit 130), and rank 1 tells the store it
    was interrupted. A rank 0 alone with train.dist_timeout=2 names the missing process after 2 s (exit 1)."""
    host_port, client_port, lonely_port = free_port(), free_port(), free_port()
    server = dist.TCPStore("127.0.0.1", client_port, 2, True, datetime.timedelta(seconds=30), wait_for_workers=False)
    alone = launch(0, host_port, tmp_path / "h")
    client = launch(1, client_port, tmp_path / "c")
    lonely = launch(0, lonely_port, tmp_path / "l", "--set", "train.dist_timeout=2")
    try:
        assert wait_for_key(dist.PrefixStore("zspace-start", server), "status/1", client).startswith("ok:{")
        assert wait_for_key(store_client(host_port), "status/0", alone).startswith("ok:{")  # rank 0 is waiting
        t0 = time.monotonic()
        for p in (alone, client):
            p.send_signal(signal.SIGINT)
        errs = finish_all([alone, client], timeout=30)
        took = time.monotonic() - t0
        lonely_err = finish_all([lonely], timeout=60)[0]
    finally:
        for p in (alone, client, lonely):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert (alone.returncode, client.returncode) == (130, 130), errs
    assert took < 10, took
    assert lines(errs[0]) == ["zspace: interrupted; a run continues from its last checkpoint with --resume"]
    assert lines(errs[1]) == []
    assert dist.PrefixStore("zspace-start", server).get("status/1").decode() == "refused:interrupted (Ctrl-C)"
    assert lonely.returncode == 1, lonely_err
    assert lines(lonely_err) == [
        "zspace: error: process 0 of 2: process 1 did not start within 2 s (train.dist_timeout)"
    ], lonely_err
    assert not any((tmp_path / d / "runs").exists() for d in ("h", "c", "l"))


def test_refuse_without_a_launcher_does_nothing(monkeypatch):
    from zspace.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "1")
    t0 = time.monotonic()
    distributed.refuse("bad")  # no launcher: nobody to tell, returns at once
    with pytest.raises(ValueError, match="boom"), distributed.refusing():
        raise ValueError("boom")
    assert time.monotonic() - t0 < 1


def write_mnist(folder: Path, n_train: int = 300, n_test: int = 100) -> None:
    """Random 28x28 idx files in MNIST's layout (labels 0..9)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28))), ("labels-idx1", np.arange(n) % 10)):
            header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


def test_another_config_or_a_data_folder_missing_on_one_machine_stops_both_with_one_line(tmp_path):
    """Two valid configs that differ (z_dim 4 and 5) would train two different models; and (another launch at the
    same time) process 1's copy of the data is missing where process 0's loads: each pair stops, exit 2."""
    write_mnist(tmp_path / "mnist")
    mnist = ["--set", 'data.name="mnist"']
    ports = [free_port(), free_port()]
    procs = [
        launch(0, ports[0], tmp_path / "a0"),
        launch(1, ports[0], tmp_path / "a1", "--set", "model.z_dim=5"),
        launch(0, ports[1], tmp_path / "b0", *mnist, "--data", str(tmp_path / "mnist")),
        launch(1, ports[1], tmp_path / "b1", *mnist, "--data", str(tmp_path / "no-copy-here")),
    ]
    t0 = time.monotonic()
    errs = finish_all(procs, timeout=120)
    assert time.monotonic() - t0 < QUICK
    assert [p.returncode for p in procs] == [2, 2, 2, 2], errs
    assert lines(errs[0]) == [
        "zspace: error: process 1 of 2 was started with another config than process 0: model.z_dim is 5 there and 4 "
        "on process 0; start every process with the same config and options"
    ]
    assert lines(errs[2]) == [f"zspace: error: process 1 of 2: data path {tmp_path / 'no-copy-here'} does not exist"]
    assert lines(errs[1]) == lines(errs[3]) == []
    assert not (tmp_path / "a0" / "runs").exists()
    assert not (tmp_path / "b0" / "runs" / "digits-demo" / "checkpoint.safetensors").exists()  # no training


def test_only_the_shared_keys_of_a_config_are_compared():
    from zspace.config import load_config
    from zspace.train import distributed

    a = load_config(DIGITS, [("data.workers", 2), ("train.threads", 1), ("out_dir", "/a")]).to_dict()
    b = load_config(DIGITS, [("data.workers", 8), ("train.threads", 2), ("out_dir", "/b")]).to_dict()
    c = load_config(DIGITS, [("train.lr", 0.25)]).to_dict()
    two = distributed.World(rank=0, size=2)
    same = {0: distributed.comparable_config(a), 1: distributed.comparable_config(b)}
    assert distributed._first_difference(two, same) is None  # where each machine keeps data and writes may differ
    other = {0: distributed.comparable_config(a), 1: distributed.comparable_config(c)}
    assert distributed._first_difference(two, other).startswith(
        f"process 1 of 2 was started with another config than process 0: train.lr is 0.25 there and {a['train']['lr']} "
    )
