"""Latents record the weights they came from: stale ones are re-encoded (a run's own) or refused (a bare folder),
and a run found where the latents' run was but with another id is never used to decode them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from zspace.cli.main import main
from zspace.errors import DataError
from zspace.explore.source import open_explorer
from zspace.io.atomic import atomic_write_text
from zspace.latents.embedding import load_latents
from zspace.latents.freshness import UNVERIFIED, run_of
from zspace.latents.samplers import train_latents
from zspace.runs.folder import load_run, read_run_id

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]"]


def cli(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-q", *argv])
    return code, capsys.readouterr().err


def refused(capsys, *argv: str, needle: str) -> str:
    code, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    return lines[0]


def train(out: Path, name: str, epochs: int, *extra: str) -> list[str]:
    return ["train", DIGITS, "--out-dir", str(out), "--name", name, "--epochs", str(epochs), *SMALL, *extra]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fresh")
    assert main(["-q", *train(out, "d", 1)]) == 0
    assert main(["-q", "embed", str(out / "d")]) == 0
    assert main(["-q", "embed", str(out / "d"), "--out", str(out / "bare")]) == 0
    return out


@pytest.fixture
def runs(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run (embedded into d/latents/all and into bare/), in a folder of its own."""
    out = tmp_path / "runs"
    shutil.copytree(trained, out)
    for folder in (out / "d" / "latents" / "all", out / "bare"):  # the copy's absolute path, as embed writes it
        m = meta(folder)
        atomic_write_text(folder / "meta.json", json.dumps({**m, "run": str((out / "d").resolve())}))  # recorded
    return out


def test_latents_record_their_weights_and_run(runs):
    run = runs / "d"
    m = meta(run / "latents" / "all")
    assert m["weights_sha256"] == sha256(run / "model.safetensors")
    assert m["weights_epoch"] == 1
    assert m["run_relative"] == "../.."
    assert m["run_id"] == read_run_id(run)
    assert len(m["run_id"]) == 32
    assert meta(runs / "bare")["run_relative"] == "../d"


def test_analyze_reencodes_the_latents_of_a_resumed_run_and_says_so(capsys, runs):
    run, lat = runs / "d", runs / "d" / "latents" / "all"
    before = np.load(lat / "mu.npy")
    assert cli(capsys, *train(runs, "d", 2, "--resume"))[0] == 0
    code, err = cli(capsys, "analyze", str(run), "--only", "radius")
    assert code == 0, err
    note = "latents were encoded by epoch 1's weights; re-encoded with epoch 2's"
    metrics = json.loads((run / "analysis" / "metrics.json").read_text())
    assert metrics["source"]["freshness"] == note
    assert "re-encoded with epoch 2" in (run / "analysis" / "report.html").read_text()
    assert meta(lat)["weights_sha256"] == sha256(run / "model.safetensors")
    assert meta(lat)["weights_epoch"] == 2
    assert not np.allclose(np.load(lat / "mu.npy"), before)  # encoded anew, by the new weights
    code, err = cli(capsys, "analyze", str(run), "--only", "radius")  # now fresh: nothing re-encoded
    metrics = json.loads((run / "analysis" / "metrics.json").read_text())
    assert metrics["source"]["freshness"] == "latents encoded by epoch 2's weights, the run's current ones"


def test_a_bare_latents_folder_of_a_changed_run_is_refused(capsys, runs):
    assert cli(capsys, *train(runs, "d", 2, "--resume"))[0] == 0
    bare = runs / "bare"
    line = refused(capsys, "analyze", str(bare), needle="were encoded from other weights than")
    assert "(epoch 1 vs 2)" in line
    assert f"zspace embed {runs / 'd'} --out {bare}` again" in line
    with pytest.raises(DataError, match="other weights"):
        run_of(load_latents(bare))
    out = runs / "cmp"
    refused(capsys, "compare", str(bare), str(runs / "d"), "--out", str(out), needle="encoded from other weights")
    assert not out.exists()
    assert not (bare / "analysis").exists()


def test_explore_and_sample_reencode_a_resumed_runs_latents(capsys, runs):
    run = runs / "d"
    assert cli(capsys, *train(runs, "d", 2, "--resume"))[0] == 0
    explorer = open_explorer(run)
    assert meta(run / "latents" / "all")["weights_sha256"] == sha256(run / "model.safetensors")
    assert np.allclose(explorer.points, np.load(run / "latents" / "all" / "mu.npy"))
    # sample's training latents: written at epoch 1, stale after the resume
    loaded = load_run(run)
    train_latents(loaded)
    old = meta(run / "latents" / "train")
    assert old["weights_epoch"] == 2
    assert cli(capsys, *train(runs, "d", 3, "--resume"))[0] == 0
    train_latents(load_run(run))
    assert meta(run / "latents" / "train")["weights_epoch"] == 3
    assert meta(run / "latents" / "train")["weights_sha256"] == sha256(run / "model.safetensors")


def test_a_renamed_run_is_followed_and_another_run_at_its_old_path_refused(capsys, runs):
    (runs / "d").rename(runs / "e")
    assert cli(capsys, *train(runs, "d", 1))[0] == 0  # another run where the first one was
    assert read_run_id(runs / "d") != read_run_id(runs / "e")
    refused(capsys, "analyze", str(runs / "bare"), needle="is another run")
    # latents inside the renamed run follow it by their relative path
    code, err = cli(capsys, "analyze", str(runs / "e" / "latents" / "all"), "--only", "radius")
    assert code == 0, err
    metrics = json.loads((runs / "e" / "latents" / "all" / "analysis" / "metrics.json").read_text())
    assert Path(metrics["source"]["run"]).resolve() == (runs / "e").resolve()


def test_older_latents_without_the_new_fields_still_work_with_a_note(capsys, runs):
    for folder in (runs / "d" / "latents" / "all", runs / "bare"):
        m = meta(folder)
        for key in ("run_relative", "run_id", "weights_sha256", "weights_epoch"):
            del m[key]
        (folder / "meta.json").write_text(json.dumps(m))
    for target, report in ((runs / "d", runs / "d" / "analysis"), (runs / "bare", runs / "bare" / "analysis")):
        capsys.readouterr()
        assert main(["analyze", str(target), "--only", "radius"]) == 0  # not quiet: the note is logged
        assert "freshness is unverified" in capsys.readouterr().err
        assert json.loads((report / "metrics.json").read_text())["source"]["freshness"] == UNVERIFIED


def test_older_latents_older_than_the_weights_are_reencoded(capsys, runs):
    lat = runs / "d" / "latents" / "all"
    m = meta(lat)
    for key in ("run_relative", "run_id", "weights_sha256", "weights_epoch"):
        del m[key]
    (lat / "meta.json").write_text(json.dumps(m))
    (lat / ".zspace-manifest.json").unlink()  # older latents had no manifest either
    weights = (runs / "d" / "model.safetensors").stat().st_mtime
    os.utime(lat / "meta.json", (weights - 60, weights - 60))  # written before the weights were
    code, err = cli(capsys, "analyze", str(runs / "d"), "--only", "radius")
    assert code == 0, err
    freshness = json.loads((runs / "d" / "analysis" / "metrics.json").read_text())["source"]["freshness"]
    assert "older than the run's weights (and record no hash); re-encoded" in freshness
    assert meta(lat)["weights_sha256"] == sha256(runs / "d" / "model.safetensors")
