"""Filament/void numbers on constructed point clouds with known answers, and the "manifold" section end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from zspace.analyses.manifold_id import local_dimension, twonn
from zspace.analyses.manifold_nn import (
    gaussian_fit,
    interpolate_linear,
    nearest_distances,
    neighbour_distances,
    nn_comparison,
    path_distances,
    path_profile,
    sample_gaussian,
    void_share,
)
from zspace.config import ModelConfig
from zspace.data import Dataset
from zspace.errors import ConfigError
from zspace.latents.embedding import Latents
from zspace.models import build_model
from zspace.sections import manifold
from zspace.sections.base import Context


def embed(points: np.ndarray, dim: int = 64, seed: int = 1) -> np.ndarray:
    """Points (n, p) placed in a random p-dimensional subspace of R^dim (a random rotation)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, points.shape[1])))
    return points @ q.T


def circle(n: int, seed: int = 0) -> np.ndarray:
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    return embed(10 * np.c_[np.cos(theta), np.sin(theta)]) + 3.0  # off the origin: tests the exact recompute


def curves(n: int, dim: int = 64, n_curves: int = 3, seed: int = 0) -> np.ndarray:
    """``n`` points on ``n_curves`` closed smooth curves in R^dim, each a random image of a Lissajous loop."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_curves):
        t = rng.uniform(0, 1, n // n_curves)
        basis = np.c_[np.cos(2 * np.pi * t), np.sin(2 * np.pi * t), np.cos(4 * np.pi * t), np.sin(6 * np.pi * t)]
        parts.append(basis @ rng.standard_normal((4, dim)) + 2 * rng.standard_normal(dim))
    return np.concatenate(parts)


# --- neighbour search ---------------------------------------------------------------------------------------------


def test_neighbour_distances_hand_computed():
    x = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    d = neighbour_distances(x, 2, chunk_size=3)  # two query chunks
    expected = [[1, 3], [3, np.sqrt(10)], [4, np.sqrt(18)], [1, np.sqrt(10)]]
    np.testing.assert_allclose(d, expected, rtol=1e-12)


def test_neighbour_distances_duplicates_are_exactly_zero_far_from_origin():
    x = np.array([[1000.0, 1000.0], [1000.0, 1000.0], [1000.1, 1000.0]], dtype=np.float32)
    d = neighbour_distances(x, 2)
    assert d[0, 0] == 0.0
    assert d[1, 0] == 0.0
    gap = float(np.float32(1000.1)) - 1000.0  # the float32 inputs' exact gap; faiss' |x|^2 + |y|^2 - 2xy is off
    np.testing.assert_allclose(d[2], [gap, gap], rtol=1e-12)


@pytest.mark.parametrize("k", [0, 3])
def test_neighbour_distances_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        neighbour_distances(np.zeros((3, 2)), k)


def test_nearest_distances_with_exclusion_and_chunks():
    ref = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 10.0]])
    for chunk in (1, 2, None):
        np.testing.assert_allclose(nearest_distances(ref, ref, exclude=[0, 1, 2], chunk_size=chunk), [3, 3, 10])
        np.testing.assert_allclose(nearest_distances(ref + np.array([0.0, 1.0]), ref, chunk_size=chunk), [1, 1, 1])


def test_path_distances_hand_made():
    reference = np.array([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]])
    decoded = np.array(
        [
            [[1, 0, 0, 0], [10, 0, 3, 4], [0, 10, 0, 0]],  # 1 from ref 0, 5 from ref 1, on ref 2
            [[5, 5, 0, 0], [0, 0, 0, -2], [10, 10, 0, 0]],  # sqrt(50) from ref 0 and 1, 2 from ref 0, 10 from 1 and 2
        ],
        dtype=np.float64,
    )
    expected = [[1, 5, 0], [np.sqrt(50), 2, 10]]
    np.testing.assert_allclose(path_distances(decoded, reference), expected, atol=1e-12)
    np.testing.assert_allclose(path_distances(decoded, reference, chunk_size=1), expected, atol=1e-12)
    with pytest.raises(ValueError, match="n_paths, steps"):
        path_distances(decoded[0], reference)


def test_interpolate_linear_and_path_profile():
    path = interpolate_linear([[0.0, 0.0]], [[4.0, 2.0]], 5)
    np.testing.assert_allclose(path[0], [[0, 0], [1, 0.5], [2, 1], [3, 1.5], [4, 2]])
    profile = path_profile([[1.0, 3.0, 1.0], [1.0, 5.0, 3.0]], baseline=2.0)
    np.testing.assert_allclose(profile.median, [0.5, 2.0, 1.0])
    m = profile.to_metrics()
    assert m["median_at_ends"] == pytest.approx(0.5)  # median of 0.5, 0.5, 0.5, 1.5
    assert m["middle_over_ends"] == pytest.approx(4.0)


# --- intrinsic dimension ------------------------------------------------------------------------------------------


def test_circle_in_64d_has_dimension_one():
    d = neighbour_distances(circle(2000), 20)
    two, local = twonn(d), local_dimension(d)
    assert 0.8 < two.dimension < 1.3
    assert 0.8 < two.dimension_fit < 1.3
    assert 0.8 < local.median < 1.3
    assert 0.8 < local.dimension < 1.3
    assert two.n_duplicates == 0
    assert local.quantiles[0.05] < local.median < local.quantiles[0.95]


def test_five_dimensional_gaussian_in_64d_has_dimension_five():
    x = embed(np.random.default_rng(0).standard_normal((2000, 5)))
    d = neighbour_distances(x, 20)
    assert twonn(d).dimension == pytest.approx(5, rel=0.15)
    assert local_dimension(d).median == pytest.approx(5, rel=0.15)
    assert local_dimension(d).dimension == pytest.approx(5, rel=0.15)


def test_twonn_hand_computed_and_duplicates_removed():
    # r1, r2 per point: mu = 2, 4, e -> log mu = log 2, log 4, 1; two duplicates (r1 = 0) left out
    d = np.array([[1.0, 2.0], [0.5, 2.0], [1.0, np.e], [0.0, 0.0], [0.0, 3.0]])
    result = twonn(d, discard_fraction=0.0)
    assert result.n_duplicates == 2
    assert result.n_points == 3
    assert result.dimension == pytest.approx(2 / (np.log(2) + np.log(4) + 1))
    # fit: sorted log mu = (log 2, 1, log 4), F = 1/3, 2/3 (the last point has F = 1 and is left out)
    x, y = np.array([np.log(2), 1.0]), -np.log1p(-np.array([1 / 3, 2 / 3]))
    assert result.dimension_fit == pytest.approx(float(x @ y / (x @ x)))
    assert result.to_metrics()["n_duplicates"] == 2


def test_twonn_on_exact_duplicate_points():
    base = circle(500)
    x = np.concatenate([base, base[:50]])  # 50 points doubled -> 100 points with r1 = 0
    result = twonn(neighbour_distances(x, 2))
    assert result.n_duplicates == 100
    assert result.n_points == 450
    assert 0.8 < result.dimension < 1.3
    with pytest.raises(ValueError, match="at least 2 points"):
        twonn(neighbour_distances(np.ones((5, 3)), 2))


def test_local_dimension_hand_computed():
    # T = 1, 2, 4: sum log(T3 / Tj) = log 4 + log 2 -> m = 2 / log 8; duplicate and equidistant rows excluded
    d = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    result = local_dimension(d)
    assert result.n_excluded == 2
    np.testing.assert_allclose(result.estimates, [2 / np.log(8)])
    assert result.dimension == pytest.approx(2 / np.log(8))
    with pytest.raises(ValueError, match="sorted"):
        local_dimension([[2.0, 1.0]])


# --- nearest-neighbour distances and voids ------------------------------------------------------------------------


def test_gaussian_fit_and_sample():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    mean, cov = gaussian_fit(x, chunk_size=3)
    np.testing.assert_allclose(mean, [1, 1])
    np.testing.assert_allclose(cov, np.eye(2) * 4 / 3)
    s = sample_gaussian(mean, np.diag([4.0, 0.0]), 20000, random_state=0)  # singular covariance is fine
    assert np.all(s[:, 1] == 1.0)
    assert s[:, 0].std() == pytest.approx(2.0, rel=0.03)


def test_gaussian_probed_from_its_own_distribution_is_near_baseline():
    x = np.random.default_rng(0).standard_normal((2000, 8))
    result = void_share(x, n_probes=4000, random_state=1)
    assert 0.02 < result.shares["gaussian_fit"] < 0.09
    assert 0.02 < result.shares["standard"] < 0.09  # N(0, I) is (nearly) the same distribution here
    assert result.to_metrics()["baseline"] == pytest.approx(0.05)


def test_thin_curves_probed_from_their_gaussian_fit_are_mostly_void():
    result = void_share(curves(1500), n_probes=2000, random_state=0)
    assert result.shares["gaussian_fit"] > 0.9
    assert result.threshold == pytest.approx(np.quantile(neighbour_distances(curves(1500), 1)[:, 0], 0.95))


def test_curves_have_much_shorter_nn_distances_than_a_matched_gaussian():
    x = curves(1500)
    result = nn_comparison(x, random_state=0)
    assert result.ratio < 0.3
    assert result.ks_statistic > 0.9
    same = nn_comparison(np.random.default_rng(0).standard_normal((1500, 8)), random_state=0)
    assert 0.85 < same.ratio < 1.15  # a Gaussian against its own fit: no difference


def test_fixed_seed_reproducibility():
    x = curves(300)
    a, b = void_share(x, n_probes=500, random_state=7), void_share(x, n_probes=500, random_state=7)
    assert a.shares == b.shares
    np.testing.assert_array_equal(a.probe_nn["standard"], b.probe_nn["standard"])
    assert nn_comparison(x, random_state=3).ks_statistic == nn_comparison(x, random_state=3).ks_statistic


# --- the section --------------------------------------------------------------------------------------------------


def small_latents(n: int = 240, *, vae: bool = True) -> Latents:
    rng = np.random.default_rng(0)
    theta = rng.uniform(0, 2 * np.pi, n)
    z = (np.c_[np.cos(theta), np.sin(theta), 0.3 * np.cos(2 * theta)] * 2).astype(np.float32)
    mu = z + 1e-3 * rng.standard_normal(z.shape).astype(np.float32) if vae else None
    logvar = np.full_like(z, -9.0) if vae else None
    return Latents(z=z, index=np.arange(n), mu=mu, logvar=logvar, labels=theta.astype(np.int64) % 3, meta={})


def tiny_model_and_data(n: int = 40):
    cfg = ModelConfig(kind="vae", image_size=8, channels=1, filters=(4, 8), z_dim=3)
    model = build_model(cfg).eval()
    x = np.random.default_rng(0).integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)
    data = Dataset("fake", x, None, None, None, None, np.arange(n), np.arange(n) % 5 == 0)
    return model, data


def small_config(**kw) -> manifold.Config:
    defaults = {"n_probes": 300, "n_pairs": 6, "steps": 5, "n_baseline": 10}
    return manifold.Config(**(defaults | kw))


def test_section_without_model_skips_paths_with_a_note():
    sec = manifold.run(Context(latents=small_latents()), small_config())
    assert not sec.skipped
    assert [f.name for f in sec.figures] == ["intrinsic-dimension", "nn-distances", "voids"]
    assert all(isinstance(f.figure, Figure) and f.caption for f in sec.figures)
    assert {"points", "n_points", "twonn", "local", "nn", "void"} <= set(sec.metrics)
    assert "paths" not in sec.metrics
    assert any("no model" in note for note in sec.notes)
    assert 0.8 < sec.metrics["twonn"]["dimension"] < 1.3  # points on a closed curve in 3-D
    assert sec.metrics["void"]["shares"]["gaussian_fit"] > 0.5
    json.dumps(sec.metrics, allow_nan=False)
    assert sec.summary.startswith("The TwoNN intrinsic dimension is")
    assert sec.tables[0].rows
    void_rows = {r[0]: r[1:] for r in sec.tables[0].rows if r[0].startswith("void share")}
    share = sec.metrics["void"]["shares"]["gaussian_fit"]
    assert [f"{100 * share:.1f} %", "~5 %: no voids; ~100 %: mostly void"] in void_rows.values()  # shares in %


def test_section_with_model_decodes_paths():
    model, data = tiny_model_and_data()
    ctx = Context(latents=small_latents(), run=SimpleNamespace(model=model), _dataset=data)
    sec = manifold.run(ctx, small_config(max_reference=20))
    assert [f.name for f in sec.figures][-1] == "paths"
    paths = sec.metrics["paths"]
    assert paths["n_paths"] == 6
    assert paths["steps"] == 5
    assert paths["baseline"] > 0
    assert not any("interpolation paths skipped" in note for note in sec.notes)
    json.dumps(sec.metrics, allow_nan=False)


def test_section_adapts_to_a_tiny_space_and_an_ae():
    lat = small_latents(12, vae=False)
    sec = manifold.run(Context(latents=lat), small_config(points="mu", max_points=10))
    assert sec.metrics["points"] == "z"
    assert sec.metrics["n_points"] == 10
    assert sec.metrics["local"]["k"] == 9
    assert any("no mu" in note for note in sec.notes)
    assert any("k = 9 is used" in note for note in sec.notes)
    two = manifold.run(Context(latents=small_latents(2)), small_config())
    assert two.skipped
    assert two.notes


def test_section_rejects_bad_config():
    with pytest.raises(ConfigError, match="points"):
        manifold.run(Context(latents=small_latents()), manifold.Config(points="x"))
    with pytest.raises(ConfigError, match=r"k and manifold\.steps"):
        manifold.run(Context(latents=small_latents()), manifold.Config(k=1))
