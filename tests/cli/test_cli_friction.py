"""The command line as a new user meets it: --version, -q/-v after the subcommand, --seed/--threads/--device,
an encoding progress bar, --only listing the analyses, compare --only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zspace.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]", "--epochs", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("friction")
    threads = torch.get_num_threads()
    try:  # -q after the subcommand, --seed and --threads on train
        assert main(["train", DIGITS, "--out-dir", str(out), "--name", "a", *SMALL, "-q", "--seed", "7",
                     "--threads", "1"]) == 0  # fmt: skip
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert main(["-q", "train", DIGITS, "--out-dir", str(out), "--name", "b", *SMALL]) == 0
    return out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == "zspace 0.1.0"


def test_train_flags_reach_the_config(runs):
    cfg = json.loads((runs / "a" / "config.json").read_text())
    assert cfg["train"]["seed"] == 7
    assert cfg["train"]["threads"] == 1


def test_analyze_encodes_with_a_progress_bar_on_the_device_and_seed(runs, capsys, tmp_path):
    capsys.readouterr()
    code = main(["analyze", str(runs / "a"), "--only", "radius", "--out", str(tmp_path / "r"), "--device", "cpu",
                 "--seed", "3"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "encoding" in err  # the bar follows the encoding of the run's missing latents
    assert "1,797" in err or "1797" in err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["seed"] == 3
    assert (runs / "a" / "latents" / "all" / "z.npy").is_file()


def test_analyze_help_lists_the_analyses(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "training, radius, axes, pca, elbow, tsne, vae, decode, manifold" in out


def test_compare_only(runs, capsys, tmp_path):
    code = main(["-q", "compare", str(runs / "a"), str(runs / "b"), "--out", str(tmp_path / "c"), "--only", "radius"])
    assert code == 0, capsys.readouterr().err
    sections = json.loads((tmp_path / "c" / "metrics.json").read_text())["sections"]
    assert set(sections) == {"runs", "radius"}
    code = main(["-q", "compare", str(runs / "a"), str(runs / "b"), "--out", str(tmp_path / "d"), "--only", "tsne"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "is not compared" in err[0]


@pytest.mark.parametrize(("argv", "needle"), [
    (["study", "wifi", "--device", "cpu"], "has no option --device"),
    (["analyze", "x", "--threads", "0"], "--threads must be in [1, 2147483647], got '0'"),
    (["analyze", "x", "--device", "tpu"], "not a device name"),
])  # fmt: skip
def test_flag_errors_are_one_line(capsys, argv, needle):
    code = main(["-q", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert needle in err[0]


def test_tensorboard_without_the_package_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    code = main(["-q", "train", DIGITS, "--out-dir", str(tmp_path / "r"), *SMALL, "--set", "train.tensorboard=true"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["zspace: error: train.tensorboard = true needs the tensorboard package (pip install tensorboard)"]
    assert not (tmp_path / "r").exists()


def test_tensorboard_scalars_per_epoch(tmp_path, monkeypatch):
    """The callback's scalars, through a stand-in SummaryWriter (the package is optional)."""
    import importlib.util
    import sys
    import types

    calls: list[tuple] = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("dir", log_dir))
            (Path(log_dir) / "events.out.tfevents.2.host").write_bytes(b"events")  # as TensorBoard names them

        def add_scalar(self, tag, value, global_step):
            calls.append((tag, value, global_step))

        def flush(self):
            calls.append(("flush",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "tensorboard" else real(name, *a)
    )
    from zspace.io import ownership
    from zspace.train.tensorboard import epoch_writer

    ownership.write_manifest(tmp_path, "run", {})  # a run folder, with the user's files in its tensorboard/
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "notes.txt").write_text("my notes")
    (tmp_path / "tensorboard" / "events.out.tfevents.1.mine").write_bytes(b"mine")  # there before the writer
    write = epoch_writer(tmp_path)
    write({"epoch": 3.0, "total": 40.5, "radius_mean": 2.0, "images_per_s": 900.0, "test_total": float("nan")})
    assert calls == [("dir", str(tmp_path / "tensorboard")), ("loss/total", 40.5, 3), ("radius/radius_mean", 2.0, 3),
                     ("speed/images_per_s", 900.0, 3), ("flush",)]  # fmt: skip
    # only the event file this writer made is zspace's: --overwrite would refuse, naming the user's files
    assert list(ownership.read_manifest(tmp_path)["files"]) == ["tensorboard/events.out.tfevents.2.host"]


def test_long_sections_show_their_steps(runs, capsys, tmp_path):
    capsys.readouterr()
    code = main(["analyze", str(runs / "b"), "--only", "elbow,tsne", "--out", str(tmp_path / "r"),
                 "--set", "tsne.sizes=[200]", "--set", "tsne.n_iter=30", "--set", "tsne.pca_components=[2]",
                 "--set", "tsne.presets=['default', 'series']",
                 "--set", "elbow.k_max=6", "--set", "elbow.algorithms=['lloyd']"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "t-SNE maps" in err  # a bar that counts the maps (3 here: two presets and one PCA size)
    assert "/3" in err
    assert "elbow fits (" in err
