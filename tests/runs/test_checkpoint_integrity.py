"""Checkpoints and weights carry a checksum; edited, non-finite or impossible ones are one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file, save_file

from zspace.cli.main import main
from zspace.errors import CheckpointError
from zspace.models import build_model
from zspace.runs.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from zspace.runs.folder import read_config
from zspace.runs.integrity import CHECKSUM, content_sha256, signed

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]"]


def resume(out: Path, epochs: int = 2) -> list[str]:
    return ["train", DIGITS, "--out-dir", str(out), "--name", "d", "--epochs", str(epochs), *SMALL, "--resume"]


def refused(capsys, *argv: str, needle: str) -> str:
    capsys.readouterr()
    code = main(["-q", *argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert needle in lines[0], lines[0]
    return lines[0]


def edit(path: Path, change, *, sign: str = "keep") -> None:
    """Rewrite a safetensors file after ``change(tensors, meta)``; ``sign``: keep the old checksum (an edit by
    hand), ``resign`` it (an edit that fools the checksum) or ``strip`` it (a file from an older zspace)."""
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    tensors = load_file(path)
    change(tensors, meta)
    if sign != "keep":
        meta.pop(CHECKSUM, None)
    if sign == "resign":
        meta = signed(tensors, meta)
    save_file(tensors, path, metadata=meta)


@pytest.fixture
def run(tiny_run_copy: Path) -> Path:
    return tiny_run_copy


def _progress(key, value):
    def change(tensors, meta):
        p = json.loads(meta["progress"])
        p[key] = value(p) if callable(value) else value
        meta["progress"] = json.dumps(p)

    return change


def _group(key, value):
    def change(tensors, meta):
        groups = json.loads(meta["param_groups"])
        groups[0][key] = value
        meta["param_groups"] = json.dumps(groups)

    return change


def _first(prefix: str, suffix: str = ""):
    def pick(tensors):
        return sorted(k for k in tensors if k.startswith(prefix) and k.endswith(suffix))[0]

    return pick


def _nan(tensors, meta):
    tensors[_first("model/", "weight")(tensors)].view(-1)[0] = float("nan")


def _set_first_weight(value: float):
    def change(tensors, meta):
        tensors[_first("", "weight")(tensors)].view(-1)[1] = value

    return change


def _bytes(tensors, meta):
    tensors[_first("model/", "weight")(tensors)].view(-1)[0] += 1e-3


def _no_model(tensors, meta):
    for k in [k for k in tensors if k.startswith("model/")]:
        del tensors[k]


def _adam_step(tensors, meta):
    tensors[_first("optim/", "/step")(tensors)].fill_(-3)


FABRICATED_ROW = _progress("history", lambda p: [*p["history"], {**p["history"][-1], "epoch": 2}])

CASES = [  # (edit, what even a re-signed or unsigned file is refused for)
    (FABRICATED_ROW, "holds 2 history rows but only 1 finished epochs"),
    (_progress("epoch", 1000), "is at epoch 1000, beyond train.epochs = 2"),
    (_no_model, "holds no model weights"),
    (_nan, "holds non-finite weights in"),
    (_group("lr", "0.001"), "optimizer 'lr' must be a finite number > 0, got '0.001'"),
    (_adam_step, "must be an integer >= 0, got -3.0"),
]


@pytest.mark.parametrize("sign", ["keep", "resign", "strip"])
@pytest.mark.parametrize(("change", "needle"), CASES, ids=["row", "epoch", "weights", "nan", "lr", "adam-step"])
def test_an_impossible_checkpoint_is_one_line(capsys, run, change, needle, sign):
    edit(run / "checkpoint.safetensors", change, sign=sign)
    before = (run / "config.json").read_bytes()
    expected = "is edited or corrupt (checksum mismatch)" if sign == "keep" else needle
    line = refused(capsys, *resume(run.parent), needle=expected)
    assert str(run / "checkpoint.safetensors") in line
    assert (run / "config.json").read_bytes() == before


def test_edited_tensor_bytes_are_a_checksum_mismatch(capsys, run):
    edit(run / "checkpoint.safetensors", _bytes)
    refused(capsys, *resume(run.parent), needle="checkpoint.safetensors is edited or corrupt (checksum mismatch)")
    edit(run / "model.safetensors", _set_first_weight(0.5))
    refused(capsys, "embed", str(run), needle="model.safetensors is edited or corrupt (checksum mismatch)")


def test_nonfinite_weights_are_refused_at_load(capsys, run):
    edit(run / "model.safetensors", _set_first_weight(float("inf")), sign="resign")
    line = refused(capsys, "embed", str(run), needle="holds non-finite weights in ")
    assert "model.safetensors" in line
    refused(capsys, "sample", str(run), needle="holds non-finite weights in")
    assert not (run / "generated").exists()


def test_an_older_checkpoint_without_checksum_still_loads(capsys, run):
    edit(run / "checkpoint.safetensors", lambda t, m: None, sign="strip")
    edit(run / "model.safetensors", lambda t, m: None, sign="strip")
    (run / ".zspace-manifest.json").unlink()  # a run that old has no manifest either
    capsys.readouterr()
    assert main(["-q", "embed", str(run)]) == 0
    assert main(["-q", *resume(run.parent)]) == 0
    with (run / "checkpoint.safetensors").open("rb") as f:  # written anew, with its checksum
        n = int.from_bytes(f.read(8), "little")
        assert CHECKSUM in json.loads(f.read(n))["__metadata__"]


def test_a_run_whose_weights_were_removed_gets_them_back_from_its_checkpoint(capsys, run):
    weights = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").unlink()
    assert main(["-q", *resume(run.parent, epochs=1)]) == 0  # nothing left to train
    restored = load_file(run / "model.safetensors")
    with (run / "model.safetensors").open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        assert json.loads(json.loads(f.read(n))["__metadata__"]["epoch"]) == 1
    original = load(weights)
    assert restored.keys() == original.keys()
    assert all(torch.equal(restored[k], original[k]) for k in restored)


def test_the_checksum_covers_names_shapes_bytes_and_metadata():
    a = {"w": torch.zeros(2, 2), "b": torch.ones(3)}
    base = content_sha256(a, {"format": "x"})
    assert content_sha256({"b": torch.ones(3), "w": torch.zeros(2, 2)}, {"format": "x", CHECKSUM: "?"}) == base
    assert content_sha256({**a, "w": torch.zeros(4)}, {"format": "x"}) != base  # same bytes, another shape
    assert content_sha256({**a, "w": torch.zeros(2, 2, dtype=torch.int32)}, {"format": "x"}) != base
    assert content_sha256({"v": a["w"], "b": a["b"]}, {"format": "x"}) != base
    assert content_sha256(a, {"format": "y"}) != base
    assert content_sha256({**a, "e": torch.zeros(0)}, {"format": "x"}) != base


def test_library_round_trip_and_refusals(tmp_path, run):
    cfg = read_config(run)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    progress = {"epoch": 0, "step": 0, "global_step": 0, "history": [], "partial": None}
    save_checkpoint(tmp_path / "c.safetensors", model, opt, progress)
    save_weights(tmp_path / "w.safetensors", model, {"epoch": 0})
    assert load_checkpoint(tmp_path / "c.safetensors", build_model(cfg.model), opt, epochs=0) == progress
    assert load_weights(tmp_path / "w.safetensors", build_model(cfg.model)) == {"epoch": 0}
    edit(tmp_path / "c.safetensors", _progress("epoch", 3), sign="resign")
    with pytest.raises(CheckpointError, match=r"beyond train\.epochs = 2"):
        load_checkpoint(tmp_path / "c.safetensors", build_model(cfg.model), opt, epochs=2)
