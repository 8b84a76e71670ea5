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
    m = run_study(
        "mnist-kmeans", data=str(data), out=out, quick=True, sets=[*TINY[:4], "features_clusters=4", *TINY[5:]]
    )
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
    assert "The series: " not in html  # no finding of the series' MNIST elbow or distance features either
    assert 'the series: "' not in html
    assert "the series: &quot;" not in html
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


# --- CelebA: the attribute file and the image names are the fingerprint (pixels are often resized) -----------------


def faces_folder(root, celeba_dir, names=("000001.jpg", "000002.jpg", "000003.jpg"), edit_row=None):
    """A folder of shared CelebA images under ``names`` with the official attribute file's head beside it."""
    import shutil

    folder = root / "faces"
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        shutil.copyfile(celeba_dir / f"{i + 1:06d}.jpg", folder / name)
    lines = (celeba_dir.parent / "list_attr_celeba_first20000.txt").read_text().splitlines()[:1100]
    if edit_row is not None:  # one attribute of one face flipped
        parts = lines[edit_row].split()
        parts[1] = "1" if parts[1] == "-1" else "-1"
        lines[edit_row] = " ".join(parts)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")  # LF, not CRLF: still the same file
    return folder


def test_celeba_is_recognised_by_its_attribute_file_and_image_names(celeba_dir, tmp_path):
    from zspace.data.fingerprint import is_series_celeba

    assert is_series_celeba(celeba_dir)
    assert is_series_celeba(faces_folder(tmp_path / "a", celeba_dir))
    assert not is_series_celeba(faces_folder(tmp_path / "b", celeba_dir, names=("000001.jpg", "me.jpg", "x.jpg")))
    assert not is_series_celeba(
        faces_folder(tmp_path / "c", celeba_dir, names=("000001.jpg", "000002.jpg", "300000.jpg"))
    )
    assert not is_series_celeba(faces_folder(tmp_path / "d", celeba_dir, edit_row=7))  # an edited attribute
    bare = faces_folder(tmp_path / "e", celeba_dir)
    (tmp_path / "e" / "list_attr_celeba.txt").unlink()
    assert not is_series_celeba(bare)  # no attribute file at all
    assert not is_series_celeba(tmp_path / "missing")


def test_celeba_figures_stand_only_beside_the_series_celeba(celeba_dir, tmp_path):
    from types import SimpleNamespace

    from zspace.config import DataConfig
    from zspace.latents.embedding import Latents
    from zspace.sections import axes, pca, radius, vae
    from zspace.sections.base import Context

    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 256)).astype(np.float32)
    lat = Latents(z=z, index=np.arange(400), mu=z, logvar=np.full_like(z, -12.0), meta={"z_dim": 256})

    def run_on(path):
        return SimpleNamespace(config=SimpleNamespace(data=DataConfig(name="celeba", path=str(path))), model=None)

    other = faces_folder(tmp_path / "other", celeba_dir, names=("a.jpg", "b.jpg", "c.jpg"))
    for ctx, series in ((Context(latents=lat), False), (Context(latents=lat, run=run_on(other)), False),
                        (Context(latents=lat, run=run_on(celeba_dir)), True)):  # fmt: skip
        table = radius.run(ctx, radius.Config()).tables[0]
        assert ("published (CelebA, z_dim 256)" in table.columns) is series
        assert ("do not come from a run on the series' CelebA images" in table.caption) is not series
        ax = axes.run(ctx, axes.Config())
        assert ("Published (CelebA AE" in ax.tables[0].caption) is series
        assert ("the series' CelebA AE" in pca.run(ctx, pca.Config(planes=())).summary) is series
        v = vae.run(ctx, vae.Config())
        assert ("the series" in v.summary) is series
        assert all(("published" in " ".join(t.columns)) is series for t in v.tables)
    small = Latents(z=z[:, :8], index=np.arange(400), meta={"z_dim": 8})
    caption = radius.run(Context(latents=small, run=run_on(celeba_dir)), radius.Config()).tables[0].caption
    assert "this space has z_dim 8" in caption  # the series' data, but not comparable at z_dim 8
