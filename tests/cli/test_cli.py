"""The command line: summary, bad input (exit 2, one line, nothing written), kill + resume, real-data runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zspace.cli.main import main
from zspace.latents.embedding import load_latents
from zspace.runs.folder import read_history

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
DIGITS = str(CONFIGS / "digits-demo.toml")


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``python -m zspace`` in a subprocess; returns exit code and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "zspace", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stderr


def small_digits(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "train",
        DIGITS,
        "--out-dir",
        str(tmp_path),
        "--name",
        "d",
        "--epochs",
        "2",
        "--set",
        "model.z_dim=4",
        "--set",
        "model.filters=[8, 16]",
        *extra,
    ]


@pytest.mark.parametrize(
    ("sets", "encoder", "decoder"),
    [
        ([], 5_107_520, 2_756_675),
        (["model.z_dim=512"], 9_826_624, 5_115_971),
        (["model.extra_dense=256"], 2_879_552, 2_756_675),
        (["model.extra_dense=384"], 4_124_864, 2_756_675),
    ],
)
def test_summary_json_counts(capsys, sets, encoder, decoder):
    args = ["summary", str(CONFIGS / "celeba-vae.toml"), "--json"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["encoder_params"], out["decoder_params"]) == (encoder, decoder)
    assert out["input_shape"] == [96, 96, 3]


def test_summary_table_lists_layers(capsys):
    assert main(["summary", str(CONFIGS / "mnist-ae25.toml")]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out
    assert "ConvTranspose2d" in out
    assert "(1, 28, 28)" in out  # the decoder's last layer gives back the input size
    assert "encoder params" in out


def bad_inputs(tmp_path: Path) -> list[tuple[list[str], str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    d = ["train", DIGITS, "--out-dir", str(tmp_path / "runs"), "--epochs", "1"]
    return [
        (
            [
                "train",
                str(CONFIGS / "mnist-ae25.toml"),
                "--data",
                str(tmp_path / "nope"),
                "--out-dir",
                str(tmp_path / "runs"),
            ],
            "nope",
        ),
        (
            [
                "train",
                DIGITS,
                "--set",
                "data.name=images",
                "--data",
                str(empty),
                "--out-dir",
                str(tmp_path / "runs"),
            ],
            "empty",
        ),
        ([*d, "--set", "model.zdim=3"], "unknown config key 'model.zdim'"),
        ([*d, "--set", "model.z_dim=0"], "'model.z_dim': must be in [1, 65536], got 0"),
        ([*d, "--set", "model.filters=[8, 8, 8, 8]"], "cannot pass 4 stride-2 convolutions"),
        ([*d, "--set", "data.name=cifar"], "cifar"),
        ([*d, "--set", "model.kind=gan"], "unknown model 'gan'"),
        ([*d, "--resume"], "no checkpoint"),
        (["train", str(tmp_path / "missing.toml")], "config file not found"),
        (["embed", str(tmp_path / "no-run")], "run folder not found"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    for args, needle in bad_inputs(tmp_path):
        code, err = run_cli(*args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("zspace: error: ")
        assert needle in lines[0], (needle, lines[0])
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), args


def test_foreign_and_truncated_weights(tmp_path):
    assert main(small_digits(tmp_path)) == 0
    run = tmp_path / "d"
    assert main(small_digits(tmp_path, "--name", "other", "--set", "model.z_dim=6")) == 0
    code, err = run_cli("embed", str(run), "--out", str(tmp_path / "lat"))
    assert code == 0, err
    code, err = run_cli("embed", str(run), "--out", str(tmp_path / "lat"))  # a latents folder is replaced
    assert code == 0, err
    code, err = run_cli("embed", str(run), "--out", str(tmp_path))  # a folder with other things in it is not
    assert code == 2
    assert "is not a zspace latents folder" in err
    assert (run / "model.safetensors").is_file()
    # resume with another architecture
    code, err = run_cli(*small_digits(tmp_path, "--set", "model.z_dim=5", "--resume"))
    assert code == 2
    assert "model.z_dim is 4 in the run but 5 now" in err
    # weights of another architecture in the run folder
    (run / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    code, err = run_cli("embed", str(run))
    assert code == 2
    assert "another architecture" in err
    (run / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes()[:500])
    code, err = run_cli("embed", str(run))
    assert code == 2
    assert "truncated or corrupt" in err
    assert len(err.strip().splitlines()) == 1


def test_existing_run_folder_needs_resume_or_overwrite(tmp_path):
    assert main(small_digits(tmp_path)) == 0
    code, err = run_cli(*small_digits(tmp_path))
    assert code == 2
    assert "exists; use --resume" in err
    assert main([*small_digits(tmp_path), "--overwrite"]) == 0


def test_kill_and_resume_gives_the_same_weights(tmp_path):
    """A real SIGKILL mid-run, then --resume: the weights equal those of an uninterrupted run, bit for bit."""
    args = ["--epochs", "6", "--set", "train.threads=1", "--set", "train.checkpoint_every=5"]
    assert main([*small_digits(tmp_path / "a"), *args]) == 0
    cmd = [sys.executable, "-m", "zspace", "-q", *small_digits(tmp_path / "b"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "b" / "d" / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.is_file() and len(read_history(history.parent)) >= 2):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(read_history(history.parent))
    assert 2 <= done < 6, "the kill should land mid-run"
    assert main([*small_digits(tmp_path / "b"), *args, "--resume"]) == 0
    a = load_file(str(tmp_path / "a" / "d" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "d" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len(read_history(tmp_path / "b" / "d")) == 6


@pytest.mark.slow
def test_mnist_end_to_end(tmp_path, mnist_dir):
    args = [
        "train",
        str(CONFIGS / "mnist-ae25.toml"),
        "--data",
        str(mnist_dir),
        "--out-dir",
        str(tmp_path),
        "--epochs",
        "3",
        "--set",
        "data.limit=300",
        "--set",
        "train.batch_size=32",
    ]
    assert main(args) == 0
    run = tmp_path / "mnist-ae25"
    history = read_history(run)
    assert history[-1]["total"] < history[0]["total"]
    assert main(["embed", str(run), "--split", "test"]) == 0
    lat = load_latents(run / "latents" / "test")
    assert lat.z.shape == (300, 25)
    assert lat.mu is None
    assert lat.labels.shape == (300,)
    assert set(np.unique(lat.labels)) <= set(range(10))
    assert np.isfinite(lat.z).all()


@pytest.mark.slow
def test_celeba_end_to_end(tmp_path, celeba_dir):
    args = [
        "train",
        str(CONFIGS / "celeba-vae-tiny-kl.toml"),
        "--data",
        str(celeba_dir),
        "--out-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--set",
        "data.limit=256",
        "--set",
        "train.batch_size=32",
    ]
    assert main(args) == 0
    run = tmp_path / "celeba-vae-tiny-kl"
    history = read_history(run)
    assert history[-1]["total"] < history[0]["total"]
    assert 0.3 * 96 * 96 < history[-1]["reconstruction"] < 0.7 * 96 * 96  # BCE per image, Keras convention
    assert main(["embed", str(run)]) == 0
    lat = load_latents(run / "latents" / "all")
    assert lat.z.shape == (256, 256)
    assert lat.mu.shape == lat.logvar.shape == (256, 256)
    assert lat.attributes.shape == (256, 40)
    assert len(lat.meta["attribute_names"]) == 40
    assert isinstance(lat.z, np.memmap)
