"""Reports are true for the data given: the series' MNIST numbers appear only beside the series' MNIST files."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np

from zspace.data.fingerprint import dataset_name, is_series_mnist
from zspace.studies import run_study

TINY = ["n_clusters=4", "accuracy_ks=[2, 4]", "elbow_k_max=6", "elbow_k_step=2", "features_clusters=0",
        "tsne_points=60", "tsne_iter=250", "series_n_init=1", "series_max_iter=5", "lloyd_max_iter=5"]  # fmt: skip


def write_idx(folder, n_train=200, n_test=60, seed=0):
    """Hand-made idx files: class c is a bright square at row 6 c, column 6 c on 28x28 noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n, dtype=np.uint8) % 4
        x = rng.integers(0, 30, size=(n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, 6 * c : 6 * c + 6, 6 * c : 6 * c + 6] = 250
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + x.tobytes())
        )
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, n) + y.tobytes())
    return folder


def test_other_idx_data_gets_no_published_mnist_numbers(tmp_path):
    data = write_idx(tmp_path / "fashion")
    assert not is_series_mnist(data)
    assert dataset_name(data) == "fashion"
    out = tmp_path / "out"
    m = run_study("mnist-kmeans", data=str(data), out=out, quick=True, sets=TINY)
    assert m["targets"] == {}
    assert m["dataset"] == "fashion"
    html = (out / "report.html").read_text()
    assert "raw pixels of fashion" in html
    assert "MNIST pixels" not in html
    assert "coloured by digit" not in html
    assert "published test error" not in html
    assert ">met<" not in html
    assert "0.112" not in html
    assert "0.083" not in html
    assert "the comparison does not apply" in html
    text = (out / "metrics.json").read_text()
    assert '"met"' not in text
    assert '"published"' not in text
    saved = json.loads(text)
    assert saved["targets"] == {}
    assert saved["dataset"] == "fashion"


def test_series_mnist_keeps_the_published_comparison(mnist_dir, tmp_path):
    assert is_series_mnist(mnist_dir)  # the official md5s of the uncompressed files
    assert dataset_name(mnist_dir) == "MNIST"
    out = tmp_path / "out"
    m = run_study("mnist-kmeans", data=str(mnist_dir), out=out, quick=True, sets=[*TINY, "limit=600"])
    assert m["targets"]["reproduction_none"]["published"] == 0.112
    assert "met" in m["targets"]["best"]
    html = (out / "report.html").read_text()
    assert "raw MNIST pixels" in html
    assert "published test error" in html
    assert "coloured by digit" in html


def test_a_changed_file_is_not_the_series_data(tmp_path):
    data = write_idx(tmp_path / "mnist")  # named like the series' folder, but other bytes
    assert not is_series_mnist(data)
    assert dataset_name(data) == "mnist"


def test_mnist_latent_on_other_idx_data_names_it_and_drops_the_targets(tmp_path):
    data = write_idx(tmp_path / "fashion")
    out = tmp_path / "out"
    sets = ["epochs=1", "ks=[4]", "tsne_map_ks=[4]", "accuracy_ks=[2, 4]", "elbow_k_max=6", "tsne_points=40",
            "limit=200", "models=['ae']", "tsne_map_models=[]"]  # fmt: skip
    m = run_study("mnist-latent", data=str(data), out=out, quick=True, sets=sets)
    assert m["targets"] == {}
    assert m["dataset"] == "fashion"
    html = (out / "report.html").read_text()
    assert "autoencoder latents of fashion" in html
    assert "the comparison does not apply" in html
    assert "coloured by digit" not in html
    assert "0.0574" not in html  # the series' published error for the AE
    assert '"met"' not in (out / "metrics.json").read_text()


WIFI_TINY = ["splits=1", "n_init=1", "elbow_k_max=4", "tsne_iter=0"]


def test_wifi_signals_of_another_building_get_no_published_numbers(wifi_file, tmp_path):
    """Another file of the same layout (here the UCI rows with every signal 1 dBm weaker) is not the series' data:
    its report names it and shows neither the series' numbers nor its target."""
    from zspace.data.fingerprint import is_series_wifi

    rows = [line.split("\t") for line in wifi_file.read_text().splitlines()]
    other = tmp_path / "building-b.txt"
    other.write_text("\n".join("\t".join([*(str(int(v) - 1) for v in r[:7]), r[7]]) for r in rows) + "\n")
    assert is_series_wifi(wifi_file)
    assert not is_series_wifi(other)
    out = tmp_path / "out"
    m = run_study("wifi", data=str(other), out=out, quick=True, sets=WIFI_TINY)
    assert m["targets"] == {}
    assert m["dataset"] == "building-b.txt"
    html = (out / "report.html").read_text()
    assert "building-b.txt" in html
    assert "published" not in html
    assert "0.012" not in html
    assert "do not apply" in html
    assert "The series found 4 - 5" not in html


def test_the_series_wifi_file_keeps_the_published_comparison(wifi_file, tmp_path):
    out = tmp_path / "out"
    m = run_study("wifi", data=str(wifi_file), out=out, quick=True, sets=WIFI_TINY)
    assert m["dataset"] == "UCI WIFI"
    assert m["targets"]["pca3_mean_test_error"]["target"] == 0.02
    html = (out / "report.html").read_text()
    assert "published (one split)" in html
    assert "The series found 4 - 5" in html
