"""t-SNE maps and kNN preservation; latent probes, interpolation and the decode section."""

from __future__ import annotations

import logging
import types

import numpy as np
import pytest
import torch

from zspace.analyses import probes
from zspace.analyses import tsne as tsne_analysis
from zspace.analyses.tsne import PRESETS, embed_tsne, fit_perplexity, knn_preservation, reduce_pca
from zspace.config import ModelConfig, RunConfig
from zspace.data import Dataset
from zspace.errors import ConfigError
from zspace.figures.decode import tile
from zspace.latents import paths
from zspace.latents.embedding import Latents
from zspace.models import build_model
from zspace.sections import decode, tsne
from zspace.sections.base import Context


def planar_blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two flat discs (intrinsically 2-D) in 10-D, 20 units apart: t-SNE can keep their neighbourhoods."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    basis = np.linalg.qr(rng.normal(size=(10, 10)))[0][:2]
    X = rng.uniform(size=(n, 2)) @ basis * 10
    X[labels == 1] += 20
    return X, labels


# --- t-SNE --------------------------------------------------------------------------------------------------------


def test_embed_tsne_is_reproducible_and_separates_blobs():
    X, labels = planar_blobs()
    Y = embed_tsne(X, n_iter=250, random_state=3, n_jobs=1)
    assert Y.shape == (200, 2)
    np.testing.assert_array_equal(Y, embed_tsne(X, n_iter=250, random_state=3, n_jobs=1))
    assert knn_preservation(X, Y, 10) > 0.8
    # Separated: every point is nearer its own blob's centre than the other's.
    centres = np.stack([Y[labels == c].mean(axis=0) for c in (0, 1)])
    nearest = np.linalg.norm(Y[:, None] - centres[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(nearest, labels)


def test_fft_path_is_reproducible(monkeypatch):
    monkeypatch.setattr(tsne_analysis, "FFT_MIN_POINTS", 100)  # the FFT path, on a small set
    X, _ = planar_blobs()
    Y = embed_tsne(X, n_iter=60, random_state=1, n_jobs=1)
    np.testing.assert_array_equal(Y, embed_tsne(X, n_iter=60, random_state=1, n_jobs=1))
    monkeypatch.setattr(tsne_analysis, "FFT_MIN_POINTS", 10_000)
    assert not np.allclose(Y, embed_tsne(X, n_iter=60, random_state=1, n_jobs=1))  # Barnes-Hut differs


def test_random_map_scores_near_chance():
    X, _ = planar_blobs()
    Y = np.random.default_rng(1).normal(size=(200, 2))
    assert knn_preservation(X, Y, 10) < 0.15  # chance: 10 / 199 = 0.05


def test_embed_tsne_after_pca_and_bad_input():
    X, _ = planar_blobs(60)
    assert embed_tsne(X, n_iter=20, pca_components=3, n_jobs=1).shape == (60, 2)
    with pytest.raises(ValueError, match="at least 4"):
        embed_tsne(X[:3])
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        embed_tsne(bad)
    with pytest.raises(ValueError, match="pca_components"):
        reduce_pca(X, 11)


def test_perplexity_is_lowered_for_few_points(caplog):
    assert fit_perplexity(30, 10) == pytest.approx(3.0)  # (10 - 1) / 3
    assert fit_perplexity(30, 91) == 30.0  # 3 * 30 = 90 = n - 1: fits
    assert fit_perplexity(30, 90) == pytest.approx(89 / 3)
    X = np.random.default_rng(0).normal(size=(10, 4))
    with caplog.at_level(logging.INFO, logger="zspace.analyses.tsne"):
        Y = embed_tsne(X, n_iter=20, n_jobs=1)
    assert Y.shape == (10, 2)
    assert np.isfinite(Y).all()
    assert "perplexity 30 is too large for 10 points" in caplog.text


def test_presets_are_the_series():
    assert PRESETS == {"default": (30.0, 12.0), "series": (10.0, 16.0)}


# --- kNN preservation, hand-checked -------------------------------------------------------------------------------


def test_knn_preservation_identical_is_one():
    X = np.random.default_rng(0).normal(size=(50, 3))
    assert knn_preservation(X, X.copy(), 5) == 1.0
    assert knn_preservation(X, X.copy(), 5, n_queries=10) == 1.0


def test_knn_preservation_known_overlap():
    # Points a, b, c, d at 0, 1, 3, 7 on a line; in the map at 0, 10, 1, 3.
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    Y = np.array([[0.0], [10.0], [1.0], [3.0]])
    # k=1: X: a->b, b->a, c->b, d->c; Y: a->c, b->d, c->a, d->c: only d keeps its neighbour.
    assert knn_preservation(X, Y, 1) == 0.25
    # k=2: X: a{b,c} b{a,c} c{b,a} d{c,b}; Y: a{c,d} b{d,c} c{a,d} d{c,a}: one of two kept each.
    assert knn_preservation(X, Y, 2) == 0.5


def test_knn_preservation_excludes_self_among_duplicates():
    X = np.array([[0.0], [0.0], [5.0], [6.0]])  # 0 and 1 coincide: the search may return 0 first for query 1
    Y = np.array([[0.0], [0.1], [5.0], [6.0]])
    assert knn_preservation(X, Y, 1) == 1.0


def test_knn_preservation_sample_is_reproducible_and_checked():
    X = np.random.default_rng(0).normal(size=(300, 5))
    Y = np.random.default_rng(1).normal(size=(300, 2))
    a = knn_preservation(X, Y, 10, n_queries=50, random_state=7)
    assert a == knn_preservation(X, Y, 10, n_queries=50, random_state=7)
    with pytest.raises(ValueError, match="k must be"):
        knn_preservation(X, Y, 300)
    with pytest.raises(ValueError, match="same rows"):
        knn_preservation(X, Y[:10], 3)


# --- probes -------------------------------------------------------------------------------------------------------


def test_gaussian_and_uniform_probes():
    g = probes.gaussian_probes(1000, 4, np.random.default_rng(0))
    assert g.shape == (1000, 4)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, probes.gaussian_probes(1000, 4, np.random.default_rng(0)))
    assert abs(g.mean()) < 0.1
    assert abs(g.std() - 1) < 0.05
    u = probes.uniform_probes(500, 3, -10.0, 10.0, np.random.default_rng(0))
    assert u.shape == (500, 3)
    assert u.min() >= -10
    assert u.max() < 10
    assert u.max() > 9
    with pytest.raises(ValueError, match="low < high"):
        probes.uniform_probes(5, 3, 2.0, 2.0, np.random.default_rng(0))


def test_equidistant_probes_step_along_the_diagonal():
    e = probes.equidistant_probes(5, 3, -2.0, 2.0)
    expected = np.array([[-2.0] * 3, [-1.0] * 3, [0.0] * 3, [1.0] * 3, [2.0] * 3], dtype=np.float32)
    np.testing.assert_array_equal(e, expected)
    assert probes.equidistant_probes(3, 2, -10.0, 10.0).tolist() == [[-10, -10], [0, 0], [10, 10]]
    with pytest.raises(ValueError, match="n >= 2"):
        probes.equidistant_probes(1, 2, 0.0, 1.0)


def test_linear_interpolation():
    path = paths.interpolate(np.array([0.0, 0.0]), np.array([2.0, 4.0]), 3)
    np.testing.assert_allclose(path, [[0, 0], [1, 2], [2, 4]])


def test_slerp_on_unit_vectors():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    path = paths.interpolate(a, b, 7, kind="slerp")
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(path[3], (a + b) / np.sqrt(2), rtol=1e-12)
    # 60 degrees apart: still on the unit sphere; 30 degrees per third.
    c = np.array([0.5, np.sqrt(3) / 2, 0.0])
    third = paths.interpolate(a, c, 4, kind="slerp")
    np.testing.assert_allclose(np.linalg.norm(third, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(third[1], [np.cos(np.pi / 9), np.sin(np.pi / 9), 0], rtol=1e-12)


def test_slerp_keeps_equal_norms_and_falls_back_when_parallel():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    np.testing.assert_allclose(np.linalg.norm(paths.interpolate(a, b, 5, "slerp"), axis=1), 3.0)
    for p, q in ([1.0, 1.0], [2.0, 2.0]), ([1.0, 0.0], [-1.0, 0.0]), ([0.0, 0.0], [1.0, 2.0]):
        p, q = np.array(p), np.array(q)
        np.testing.assert_allclose(paths.interpolate(p, q, 5, "slerp"), paths.interpolate(p, q, 5, "linear"))
    with pytest.raises(ValueError, match="unknown interpolation"):
        paths.interpolate(a, b, 3, "cubic")


def test_radius_helpers_and_image_stats():
    Z = np.array([[3.0, 4.0], [6.0, 8.0], [0.0, 0.0]])
    assert probes.mean_norm(Z, chunk_size=2) == 5.0
    np.testing.assert_allclose(probes.scale_to_radius(Z, 10.0), [[6, 8], [6, 8], [0, 0]])
    images = np.array([[[[0.0], [1.0]]], [[[0.0], [1.0]]]])  # two identical 1x2 grey images
    assert probes.image_stats(images) == {
        "mean": 0.5,
        "variance": 0.25,
        "within_image_std": 0.5,
        "between_image_std": 0.0,
    }


def test_reconstruction_error_keras_convention():
    x = np.ones((1, 1, 2, 2))  # one image, 1x2 pixels, 2 channels
    x_hat = np.full_like(x, 0.5)
    np.testing.assert_allclose(probes.reconstruction_error(x, x_hat, "bce"), [2 * np.log(2)])  # pixel sum
    x_hat[..., 1] = 1.0  # channel mean: (0.25 + 0) / 2 per pixel
    np.testing.assert_allclose(probes.reconstruction_error(x, x_hat, "mse"), [0.25])


def test_tile_layout():
    images = np.stack([np.full((2, 3, 1), v) for v in (0.1, 0.2, 0.3)])
    mosaic = tile(images, ncols=2)
    assert mosaic.shape == (5, 7, 1)
    assert mosaic[0, 0, 0] == pytest.approx(0.1)
    assert mosaic[0, 4, 0] == pytest.approx(0.2)
    assert mosaic[3, 0, 0] == pytest.approx(0.3)
    assert mosaic[3, 4, 0] == 1.0
    assert mosaic[2, 0, 0] == 1.0  # padding row


# --- sections -----------------------------------------------------------------------------------------------------


def small_latents(n: int = 150, z_dim: int = 5, labels: bool = True) -> Latents:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    z = rng.normal(size=(n, z_dim)).astype(np.float32)
    z[:, 0] += 6 * y
    meta = {"label_names": ["zero", "one", "two"]} if labels else {}
    return Latents(z=z, index=np.arange(n), mu=z, logvar=np.zeros_like(z), labels=y if labels else None, meta=meta)


def test_tsne_section_series_maps_adapt_to_a_small_space():
    section = tsne.run(Context(latents=small_latents()), tsne.Config(**tsne.SERIES))
    assert [f.name for f in section.figures] == ["150-default", "150-series", "150-pca2", "150-pca4"]
    assert any("20000" in note for note in section.notes)
    assert any("[10]" in note and "5 dimensions" in note for note in section.notes)
    maps = section.metrics["maps"]
    assert [(m["preset"], m["perplexity"], m["early_exaggeration"]) for m in maps[:2]] == [
        ("default", 30.0, 12.0),
        ("series", 10.0, 16.0),
    ]
    assert all(m["n"] == 150 and 0 <= m["knn_preservation"] <= 1 and m["seconds"] > 0 for m in maps)
    assert len(section.tables[0].rows) == 4
    assert section.summary
    ax = section.figures[0].figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]


def test_tsne_section_sizes_and_no_colours():
    cfg = tsne.Config(sizes=(50, 20_000, 30_000), presets=("series",), pca_components=(), n_iter=20)
    section = tsne.run(Context(latents=small_latents(labels=False)), cfg)
    assert [m["n"] for m in section.metrics["maps"]] == [50, 150]
    assert any("not coloured" in note for note in section.notes)
    assert section.figures[0].figure.axes[0].get_legend() is None
    with pytest.raises(ConfigError, match="unknown preset"):
        tsne.run(Context(latents=small_latents()), tsne.Config(presets=("fast",)))


def tiny_run(kind: str = "vae", z_dim: int = 3):
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, image_size=8, channels=1, filters=(4, 8), z_dim=z_dim)
    return types.SimpleNamespace(model=build_model(cfg).eval(), config=RunConfig(model=cfg))


def shuffled_dataset(n: int = 100) -> Dataset:
    """Rows in a shuffled order; every image is flat with value (its source index) / 255."""
    index = np.random.default_rng(5).permutation(n).astype(np.int64)
    x = np.broadcast_to(index[:, None, None, None], (n, 8, 8, 1)).astype(np.uint8)
    return Dataset("fake", x, None, None, None, None, index, np.zeros(n, dtype=bool))


def test_dataset_rows():
    rows = decode.dataset_rows(np.array([5, 3, 9, 0]), np.array([9, 0, 7, 5]))
    assert rows.tolist() == [2, 3, -1, 0]


def test_decode_section_grids_and_reconstructions():
    n = 30
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 3)).astype(np.float32)
    source = rng.permutation(np.arange(0, 2 * n, 2))  # even source positions only, shuffled
    lat = Latents(z=z, index=source, mu=z, logvar=np.zeros_like(z))
    ctx = Context(latents=lat, run=tiny_run(), _dataset=shuffled_dataset())
    section = decode.run(ctx, decode.Config(n_reconstructions=10))
    names = [f.name for f in section.figures]
    assert names == [
        "gaussian",
        "gaussian_shell",
        "uniform_m2_2",
        "equidistant_m2_2",
        "uniform_m10_10",
        "equidistant_m10_10",
        "reconstructions",
        "interpolation_linear",
        "interpolation_slerp",
    ]
    grid = section.figures[0].figure.axes[0].images[0].get_array()
    assert grid.shape == (4 * 9 - 1, 10 * 9 - 1)  # 40 probes of 8x8, 10 per row, 1-pixel gaps
    paths = section.figures[-1].figure.axes[0].images[0].get_array()
    assert paths.shape == (4 * 9 - 1, 10 * 9 - 1)  # 4 pairs x 10 steps
    # The originals are the dataset rows whose index matches the latents' source positions (all even).
    mosaic = np.asarray(section.figures[6].figure.axes[0].images[0].get_array())
    shown = {round(float(mosaic[0, c * 9]) * 255) for c in range(10)}
    assert len(shown) == 10
    assert shown <= set(source.tolist())
    assert section.metrics["reconstruction"]["n"] == 10
    assert section.metrics["reconstruction"]["mean_per_image"] > 0
    assert section.metrics["probes"]["gaussian_shell"]["mean_norm"] == pytest.approx(probes.mean_norm(z), rel=1e-5)
    ratios = section.metrics["interpolation"]
    assert ratios["linear"]["midpoint_norm_ratio"] < ratios["slerp"]["midpoint_norm_ratio"] + 1e-9
    assert not section.notes


def test_decode_section_without_data_or_model():
    lat = small_latents(n=20, z_dim=3)
    section = decode.run(Context(latents=lat, run=tiny_run(), _dataset=False), decode.Config(n_probes=4))
    assert "data" in [f.name for f in section.figures]
    assert any("could not be loaded" in note for note in section.notes)
    bare = decode.run(Context(latents=lat), decode.Config())
    assert bare.skipped
    assert not bare.figures
    assert "bare latents" in bare.notes[0]
    other = decode.run(Context(latents=lat, run=tiny_run(z_dim=4)), decode.Config())
    assert other.skipped
    assert "z_dim 4" in other.notes[0]


def test_decode_section_on_an_ae_uses_z():
    z = np.random.default_rng(1).normal(size=(12, 3)).astype(np.float32)
    ctx = Context(latents=Latents(z=z, index=np.arange(12)), run=tiny_run("ae"), _dataset=False)
    section = decode.run(ctx, decode.Config(n_probes=4, n_pairs=1, steps=3))
    assert section.metrics["z_source"] == "z"
    assert "data (z, decoded)" in section.metrics["probes"]
    with pytest.raises(ConfigError, match="low < high"):
        decode.run(ctx, decode.Config(ranges=((2.0, -2.0),)))


def test_tsne_headings_say_the_pca_dimension():
    from zspace.analyses.tsne import TsneMap
    from zspace.sections.tsne import _figure

    m = TsneMap(Y=np.zeros((5, 2)), preset="default", perplexity=30.0, early_exaggeration=12.0, pca_components=4,
                n_iter=10, seconds=0.1, knn_preservation=0.5, k=2)  # fmt: skip
    item = _figure(m, None, np.arange(5))
    assert "after PCA to 4 components" in item.figure.axes[0].get_title()


def test_tsne_pca_maps_only_and_no_maps():
    """Only PCA maps asked for (no preset): they run with the default preset; neither: one line naming both keys."""
    cfg = tsne.Config(sizes=(60,), presets=(), pca_components=(2,), n_iter=20)
    section = tsne.run(Context(latents=small_latents()), cfg)
    assert [(m["preset"], m["pca_components"]) for m in section.metrics["maps"]] == [("default", 2)]
    with pytest.raises(ConfigError, match=r"tsne\.presets and tsne\.pca_components are both empty"):
        tsne.run(Context(latents=small_latents()), tsne.Config(presets=(), pca_components=()))
