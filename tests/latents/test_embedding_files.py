"""Embeddings as one file (.npy, .npz, .safetensors) and latents folders without index.npy: the same numbers as a
latents folder, one-line errors for what cannot be analysed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from zspace.cli.main import main
from zspace.latents.files import read_embeddings


def points() -> tuple[np.ndarray, np.ndarray]:
    """40 points at radius exactly 3 (3 * a unit vector), labels 0..3."""
    z = np.zeros((40, 5), np.float32)
    z[np.arange(40), np.arange(40) % 5] = 3.0
    return z, (np.arange(40) % 4).astype(np.int64)


def radius_metrics(path, out) -> dict:
    assert main(["-q", "analyze", str(path), "--only", "radius", "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())["sections"]["radius"]


def test_every_format_gives_the_numbers_of_a_latents_folder(tmp_path):
    z, labels = points()
    folder = tmp_path / "folder"  # a latents folder of only z.npy and labels.npy: the index defaults to 0..N-1
    folder.mkdir()
    np.save(folder / "z.npy", z)
    np.save(folder / "labels.npy", labels)
    np.save(tmp_path / "emb.npy", z)
    np.savez(tmp_path / "emb.npz", z=z, labels=labels)
    save_file({"z": z, "labels": labels}, str(tmp_path / "emb.safetensors"))
    want = radius_metrics(folder, tmp_path / "r-folder")
    assert want["mean"] == pytest.approx(3.0)
    assert want["n"] == 40
    for name in ("emb.npy", "emb.npz", "emb.safetensors"):
        got = radius_metrics(tmp_path / name, tmp_path / f"r-{name}")
        assert (got["mean"], got["peak"], got["n"]) == (want["mean"], want["peak"], want["n"]), name
    assert (tmp_path / "emb-analysis" / "report.html").exists() is False  # --out was given
    lat = read_embeddings(tmp_path / "emb.npz")
    np.testing.assert_array_equal(lat.labels, labels)
    np.testing.assert_array_equal(lat.index, np.arange(40))
    assert lat.meta["index_default"]


def test_an_npy_is_memory_mapped_and_the_report_goes_beside_it(tmp_path):
    z, _ = points()
    np.save(tmp_path / "emb.npy", z)
    lat = read_embeddings(tmp_path / "emb.npy")
    assert isinstance(lat.z, np.memmap)
    assert main(["-q", "analyze", str(tmp_path / "emb.npy"), "--only", "radius"]) == 0
    assert (tmp_path / "emb-analysis" / "report.html").is_file()


def test_non_finite_rows_are_counted_and_dropped(tmp_path):
    z, _ = points()
    z[[3, 7]] = np.nan
    np.save(tmp_path / "nan.npy", z)
    lat = read_embeddings(tmp_path / "nan.npy")
    assert len(lat.z) == 38
    assert lat.meta["nonfinite_dropped"] == 2
    assert lat.meta["nonfinite_first_row"] == 3


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: np.save(p / "x.npy", np.zeros(5)), "z must be a numeric"),  # 1-D
        (lambda p: np.save(p / "x.npy", np.zeros((0, 3))), "n_samples >= 1"),  # empty
        (lambda p: np.save(p / "x.npy", np.array([["a", "b"]])), "numeric"),  # strings
        (lambda p: np.save(p / "x.npy", np.array([[1, 2], [3]], dtype=object), allow_pickle=True), "cannot be read"),
        (lambda p: np.savez(p / "x.npz", w=np.zeros((3, 2))), "no array named 'z'"),
        (lambda p: np.savez(p / "x.npz", z=np.zeros((3, 2)), extra=np.zeros(3)), "unknown array 'extra'"),
        (lambda p: np.savez(p / "x.npz", z=np.zeros((3, 2)), mu=np.zeros((3, 2))), "mu and logvar come together"),
        (lambda p: np.savez(p / "x.npz", z=np.zeros((3, 2)), labels=np.zeros(4)), "labels has shape"),
        (lambda p: np.save(p / "x.npy", np.full((2, 2), np.inf)), "no finite row is left"),
        (lambda p: (p / "x.npy").write_bytes(b"not numpy"), "cannot be read"),
        (lambda p: (p / "x.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}"), "corrupt"),
    ],
)
def test_bad_embedding_files_are_one_line(tmp_path, capsys, make, needle):
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    assert main(["-q", "analyze", str(path), "--only", "radius"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0]
    assert not (tmp_path / "x-analysis").exists()  # nothing half-written
