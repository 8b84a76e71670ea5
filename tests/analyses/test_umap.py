"""UMAP maps and the umap section: separation of two blobs, seeds, sizes, options, metrics and the comparison with
t-SNE. umap-learn compiles its numba code on the first map of a process (about 10-20 s here); the maps are tiny."""

from __future__ import annotations

import json

import numpy as np
import pytest

import zspace
from zspace.analyses.umap import umap_embed, umap_map
from zspace.errors import ConfigError
from zspace.io import limits
from zspace.latents.embedding import Latents
from zspace.report.analyze import analysis_settings
from zspace.report.schema import problems
from zspace.sections import OPT_IN, SECTIONS, default_sections
from zspace.sections import tsne as tsne_section
from zspace.sections import umap as umap_section
from zspace.sections.base import Context


def two_blobs(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs (sd 1) in 8-D whose centres are 30 apart: every point's nearest neighbour is in its blob."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[labels == 1, 0] += 30.0
    return X, labels


def nearest_other(Y: np.ndarray) -> np.ndarray:
    """Index of each map point's nearest other map point (brute force)."""
    d = np.linalg.norm(Y[:, None] - Y[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.argmin(axis=1)


def latents(X: np.ndarray, labels: np.ndarray | None = None) -> Latents:
    return Latents(z=X, index=np.arange(len(X)), labels=labels, meta={"label_names": ["left", "right"]})


def test_umap_is_seeded_and_keeps_blobs_apart():
    X, labels = two_blobs()
    Y = umap_embed(X, random_state=3)
    assert Y.shape == (80, 2)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, umap_embed(X, random_state=3))  # the same seed, the same map
    assert not np.allclose(Y, umap_embed(X, random_state=4))
    np.testing.assert_array_equal(labels[nearest_other(Y)], labels)  # hand-checkable: no neighbour across blobs
    m = umap_map(X, random_state=3, pca_components=2)  # scored against X itself, not its PCA
    assert (m.n, m.k, m.pca_components, m.n_neighbors) == (80, 10, 2, 15)
    assert m.to_metrics()["knn_chance"] == pytest.approx(10 / 79)
    assert m.knn_preservation > 3 * 10 / 79  # well above a random map's share


def test_section_sizes_beyond_n_and_the_comparison_with_tsne():
    X, labels = two_blobs()
    ctx = Context(latents=latents(X, labels))
    tsne = tsne_section.run(ctx, tsne_section.Config(sizes=(80,), presets=("default",), pca_components=(), n_iter=250))
    cfg = umap_section.Config(sizes=(30, 500, 10_000), pca_components=(3, 8, 50))
    section = umap_section.run(ctx, cfg)
    assert not section.skipped
    maps = ctx.shared["umap"]
    assert [(m.n, m.pca_components) for m in maps] == [(30, None), (30, 3), (80, None), (80, 3)]
    assert any("[500, 10000] exceed the 80 latent points" in note for note in section.notes)
    assert any("[8, 50]" in note and "only 8 dimensions" in note for note in section.notes)
    assert [f.name for f in section.figures] == ["30", "30-pca3", "80", "80-pca3"]
    assert [t.get_text() for t in section.figures[0].figure.axes[0].get_legend().get_texts()] == ["left", "right"]
    full = maps[2]  # all 80 points, in the order of the latents: labels line up with rows
    np.testing.assert_array_equal(labels[nearest_other(full.Y)], labels)
    # the comparison: one t-SNE map (default preset, 80 points) beside the UMAP map of the same 80 points
    (v,) = section.metrics["vs_tsne"]
    assert (v["n"], v["tsne_preset"]) == (80, "default")
    assert v["umap_knn_preservation"] == full.knn_preservation
    assert v["tsne_knn_preservation"] == tsne.metrics["maps"][0]["knn_preservation"]
    assert "t-SNE (default preset)" in section.summary
    assert f"{full.knn_preservation:.1%}" in section.summary


def test_section_alone_the_same_for_a_seed_and_skips_what_cannot_be_mapped():
    X, _ = two_blobs(40, seed=1)
    cfg = umap_section.Config(sizes=(40,))
    first = umap_section.run(Context(latents=latents(X)), cfg)
    again = umap_section.run(Context(latents=latents(X)), cfg)
    drop = ("seconds",)
    strip = [{k: v for k, v in m.items() if k not in drop} for m in first.metrics["maps"]]
    assert strip == [{k: v for k, v in m.items() if k not in drop} for m in again.metrics["maps"]]
    assert first.metrics["vs_tsne"] == []
    assert "Run the tsne analysis" in first.summary
    assert any("not coloured" in note for note in first.notes)
    few = umap_section.run(Context(latents=latents(X[:3])), cfg)
    assert few.skipped
    assert "at least 4 points" in few.notes[0]
    same = umap_section.run(Context(latents=latents(np.ones((50, 8), np.float32))), cfg)
    assert same.skipped
    assert "the same" in same.notes[0]


def test_maps_beyond_memory_or_time_are_refused_before_mapping(monkeypatch):
    X, _ = two_blobs(40)
    monkeypatch.setattr(limits, "available_memory", lambda: 2**20)  # 40 x 200 neighbours: about 1.6 MB
    with pytest.raises(ConfigError, match=r"umap\.sizes: .*a UMAP map of 40 points"):
        umap_section.run(Context(latents=latents(X)), umap_section.Config(sizes=(40,), n_neighbors=200))
    monkeypatch.setattr(limits, "available_memory", lambda: 64 * 2**30)
    monkeypatch.setattr(umap_section, "SECONDS_PER_POINT_AND_NEIGHBOUR", 10.0)
    with pytest.raises(ConfigError, match=r"umap\.sizes: a UMAP map of 40 points would take about"):
        umap_section.run(Context(latents=latents(X)), umap_section.Config(sizes=(40,)))


def test_api_only_umap_metrics_are_schema_valid(tmp_path):
    X, labels = two_blobs(60)
    report = zspace.analyze(X, labels=labels, only=["umap"], umap={"sizes": [60]})
    assert list(report.metrics["sections"]) == ["umap"]
    m = report.metrics["sections"]["umap"]
    assert m["seconds"] > 0
    assert m["k"] == 10
    assert m["vs_tsne"] == []
    (one,) = m["maps"]
    assert one["n"] == 60
    assert one["knn_chance"] == pytest.approx(10 / 59)
    assert 0 < one["knn_preservation"] <= 1
    assert problems(report.metrics) == []
    broken = json.loads(json.dumps(report.metrics))
    broken["sections"]["umap"]["maps"][0]["knn_preservation"] = "high"
    assert problems(broken) == ["$.sections.umap.maps[0].knn_preservation: expected number, got str"]
    assert "umap" in SECTIONS
    assert list(SECTIONS).index("umap") == list(SECTIONS).index("tsne") + 1


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("umap.min_dist=2", "umap.min_dist"),
        ("umap.n_neighbors=1", "umap.n_neighbors"),
        ("umap.sizes=[2]", "umap.sizes"),
        ("umap.sizes=[]", "umap.sizes"),
        ("umap.pca_components=[0]", "umap.pca_components"),
        ("umap.min_dist=nan", "umap.min_dist"),
        ("umap.color_by=3", "umap.color_by"),
        ("umap.spread=1", "umap.spread"),
    ],
)
def test_bad_options_are_one_line_exit_2_and_nothing_written(setting, named, tmp_path, capsys):
    from zspace.cli.main import main

    X, _ = two_blobs(20)
    np.save(tmp_path / "emb.npy", X)
    before = sorted(tmp_path.rglob("*"))
    rc = main(["analyze", str(tmp_path / "emb.npy"), "--only", "umap", "--set", setting])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert named in err
    assert sorted(tmp_path.rglob("*")) == before


def test_umap_is_opt_in_named_or_configured():
    assert OPT_IN == ("umap",)
    assert "umap" not in default_sections()
    assert default_sections() == [k for k in SECTIONS if k != "umap"]
    assert "umap" not in analysis_settings()[0]  # `zspace analyze RUN`: every analysis but UMAP
    assert analysis_settings(only="radius,umap")[0] == ["radius", "umap"]
    keys, configs, _ = analysis_settings(sets=["umap.n_neighbors=5"])  # settings for it ask for it
    assert keys == list(SECTIONS)
    assert configs["umap"].n_neighbors == 5
    assert analysis_settings(base={"only": ["umap"]})[0] == ["umap"]


def test_cli_analyze_only_tsne_umap_writes_the_comparison(tmp_path, capsys):
    from zspace.cli.main import main

    X, _ = two_blobs(40)
    np.save(tmp_path / "emb.npy", X)
    tsne_fast = ["--set", "tsne.presets=['default']", "--set", "tsne.pca_components=[]", "--set", "tsne.n_iter=250"]
    out = ["--out", str(tmp_path / "r")]
    rc = main(["-q", "analyze", str(tmp_path / "emb.npy"), "--only", "tsne,umap", *tsne_fast, *out])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert list(metrics["sections"]) == ["tsne", "umap"]
    assert problems(metrics) == []
    (v,) = metrics["sections"]["umap"]["vs_tsne"]
    assert v["tsne_knn_preservation"] == metrics["sections"]["tsne"]["maps"][0]["knn_preservation"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "UMAP maps" in page
    assert "t-SNE (default preset)" in page
    assert (tmp_path / "r" / "umap-40.png").is_file()
