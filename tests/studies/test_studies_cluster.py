"""The cluster studies end to end on reduced real data (quick mode), and their bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zspace.errors import DataError
from zspace.report.schema import problems
from zspace.studies import STUDIES, run_study

pytestmark = pytest.mark.slow


def check_report(out: Path, metrics: dict, command: str) -> dict:
    """The report folder holds the page, its PNGs and metrics.json equal to the returned metrics."""
    page = (out / "report.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs
    assert all(name in page for name in pngs)
    assert command in page
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["study"] == metrics["study"]
    assert not (out / ".report-staging").exists()
    assert problems(saved) == []  # its elbow curves are the analyze section's (the schema pins them)
    return saved


def test_registry():
    assert set(STUDIES) == {"mnist-kmeans", "mnist-latent", "wifi", "celeba-ae-vs-vae", "encoder-size", "kl-sweep"}


def test_wifi_quick(wifi_file, tmp_path):
    out = tmp_path / "wifi"
    m = run_study("wifi", data=str(wifi_file), out=out, quick=True)
    assert (m["n_train"], m["n_test"]) == (1500, 500)
    assert m["test_error"]["pca 3"]["mean"] < 0.05  # the series: 0.012 on one split
    assert m["test_error"]["original"]["mean"] < 0.06
    assert len(m["test_error"]["pca 3"]["all"]) == 3
    assert 0.8 < m["explained_variance_cumulative"][1] < m["explained_variance_cumulative"][2] < 0.95
    saved = check_report(out, m, "zspace study wifi")
    assert set(saved["sections"]) == {"splits", "split0", "elbow", "tsne"}


def test_mnist_kmeans_quick(mnist_dir, tmp_path):
    """On a copy of the idx files: any folder of idx files of the same layout works, not only the shared one."""
    copy = tmp_path / "idx"
    shutil.copytree(mnist_dir, copy)
    out = tmp_path / "mnist-kmeans"
    m = run_study("mnist-kmeans", data=str(copy), out=out, quick=True)
    assert m["data"] == str(copy.resolve())
    assert (m["n_train"], m["n_test"]) == (5000, 5000)
    errors = {label: r["test_error"] for label, r in m["results"].items()}
    assert len(errors) == 6  # 2 algorithms x 3 scalers
    assert all(0.1 < e < 0.5 for e in errors.values()), errors  # 50 clusters on 5,000 images
    assert min(errors.values()) < 0.3
    assert m["targets"]["best"]["value"] == min(errors.values())
    # StandardScaler against no scaling, as the post compared them (the series: about 1.5 points worse)
    by = m["results"]
    worse = by["MiniBatchKMeans (series), standard"]["test_error"] - by["MiniBatchKMeans (series), none"]["test_error"]
    assert m["targets"]["standard_scaler_worse"]["value"] == pytest.approx(worse)
    # the elbow of the normalized pixels keeps the shape of the unscaled one (the series: "does not change")
    assert 0 <= m["elbow_shape_difference"] < 0.1
    # an MLP on the 50 KMeans distances beats the nearest-cluster vote of the same fit
    f = m["distance_features"]
    assert f["n_features"] == 50
    assert f["test_error"] < f["kmeans_test_error"] < 0.5
    saved = check_report(out, m, "zspace study mnist-kmeans")
    assert set(saved["sections"]) == {
        "targets", "classifier", "error-vs-k", "elbow", "elbow-normalizer", "distance-features", "tsne"
    }  # fmt: skip
    assert saved["config"]["n_clusters"] == 50
    assert saved["quick"] is True


def test_mnist_latent_quick(mnist_dir, tmp_path):
    out = tmp_path / "mnist-latent"
    m = run_study("mnist-latent", data=str(mnist_dir), out=out, quick=True)
    assert set(m["training"]) == {"ae", "vae"}
    assert m["training"]["vae"]["clustered"] == "mu"
    assert m["training"]["ae"]["clustered"] == "z"
    assert m["best"]["test_error"] < 0.5  # three epochs on 1,500 images: far better than chance (0.9)
    assert (out / "runs" / "ae25" / "model.safetensors").is_file()
    assert m["targets"]["tsne_map_test_error"]["value"] < 0.6  # the classifier on a t-SNE map of the AE latents
    saved = check_report(out, m, "zspace study mnist-latent")
    assert {"targets", "ae-classifier", "vae-classifier", "tsne-map-classifier", "tsne"} <= set(saved["sections"])


def test_mnist_folder_without_idx_files(tmp_path):
    with pytest.raises(DataError, match="missing MNIST file") as info:
        run_study("mnist-kmeans", data=str(tmp_path), out=tmp_path / "out", quick=True)
    assert "\n" not in str(info.value)


def test_wifi_malformed_row_names_the_line(wifi_file, tmp_path):
    bad = tmp_path / "wifi.txt"
    lines = Path(wifi_file).read_text().splitlines()
    lines[41] = "-64\t-56\t-61\toops\t-74\t-78\t-81\t1"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"wifi.txt:42: expected 8 numbers") as info:
        run_study("wifi", data=str(bad), out=tmp_path / "out", quick=True)
    assert "\n" not in str(info.value)
