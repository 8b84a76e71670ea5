"""The elbow analysis: inertia (one definition for both algorithms), the k-means kernels, the elbow estimate, and
the section on small latent spaces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zspace.analyses.elbow import LloydSettings, MiniBatchSettings, check_ks, elbow_curve, find_elbow
from zspace.analyses.kmeans import cluster_means, group_inertia, inertia, nearest_centres, one_thread
from zspace.errors import ConfigError
from zspace.latents.embedding import Latents
from zspace.report.page import report_metrics
from zspace.report.schema import problems
from zspace.sections import elbow as section
from zspace.sections.base import Context

FAST_MB = MiniBatchSettings(n_init=3, max_iter=50, tol=1e-4, batch_size=64)
CORNERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def blobs(n_per: int = 50, scale: float = 0.5, seed: int = 0, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Four well-separated blobs at the corners of a square (in the first two of ``dims`` dimensions)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, dims))
    centres[:, :2] = CORNERS
    labels = np.repeat(np.arange(4), n_per)
    X = centres[labels] + rng.normal(scale=scale, size=(4 * n_per, dims))
    return X.astype(np.float32), labels


def within_scatter(X: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances of the points to the mean of their blob: the inertia of the true partition."""
    return float(sum(((X[labels == c] - X[labels == c].mean(axis=0)) ** 2).sum() for c in np.unique(labels)))


# --- kernels --------------------------------------------------------------------------------------------------


def test_nearest_centres_and_inertia_by_hand():
    X = np.array([[0, 0], [1, 0], [10, 0], [9, 1]], dtype=np.float32)
    centres = np.array([[0, 0], [10, 0]], dtype=np.float32)
    labels, sq = nearest_centres(X, centres, chunk_size=3)  # a chunk boundary inside the data
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    np.testing.assert_allclose(sq, [0, 1, 0, 2], atol=1e-5)
    assert inertia(X, centres) == pytest.approx(3.0, abs=1e-5)


def test_group_inertia_equals_each_set_alone():
    X, _ = blobs()
    rng = np.random.default_rng(1)
    sets = [X[rng.choice(len(X), k, replace=False)] for k in (1, 3, 7)]
    together = group_inertia(X, sets, chunk_size=64)
    alone = [float(nearest_centres(X, c)[1].sum()) for c in sets]
    np.testing.assert_allclose(together, alone, rtol=1e-6)
    assert together[0] > together[1] > together[2]  # more centres drawn from the data: closer on average


def test_cluster_means_by_hand_and_empty_cluster():
    X = np.array([[0, 0], [2, 0], [10, 10], [4, 4]], dtype=np.float32)
    a = np.array([0, 0, 1, 1])
    b = np.array([2, 2, 2, 0])  # cluster 1 of b is empty: it gets the mean of all points
    ma, mb = cluster_means(X, [a, b], [2, 3], chunk_size=3)
    np.testing.assert_allclose(ma, [[1, 0], [7, 7]])
    np.testing.assert_allclose(mb, [[4, 4], [4, 3.5], [4, 10 / 3]], rtol=1e-6)


def test_inertia_same_as_scikit_learn_for_minibatch_centres():
    """One inertia for both algorithms: ours on MiniBatchKMeans' centres equals scikit-learn's own inertia_."""
    from sklearn.cluster import MiniBatchKMeans

    X, _ = blobs(seed=3)
    with one_thread():
        km = MiniBatchKMeans(n_clusters=5, n_init=3, batch_size=64, random_state=0).fit(X)
    assert inertia(X, km.cluster_centers_) == pytest.approx(km.inertia_, rel=1e-5)


# --- elbow curve ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["lloyd", "minibatch"])
def test_four_blobs_elbow_at_four(algorithm):
    X, labels = blobs()
    curve = elbow_curve(X, range(1, 13), algorithm=algorithm, restarts=2, minibatch=FAST_MB)
    assert curve.inertia.shape == (12, 2)
    assert curve.elbow.k == 4
    assert curve.elbow.pronounced
    assert curve.elbow.slope_ratio > 3
    k4 = curve.best[3]
    true = within_scatter(X, labels)
    if algorithm == "lloyd":  # centres are the means of the blobs: exactly the true partition's inertia
        assert k4 == pytest.approx(true, rel=1e-5)
    else:  # mini-batch centres are near, not at, the means
        assert true <= k4 <= 1.02 * true


def test_lloyd_in_pca_subspace_measures_inertia_in_full_space():
    X, labels = blobs(dims=40, scale=0.3)
    curve = elbow_curve(X, [2, 4, 6], restarts=1, lloyd=LloydSettings(fit_dims=3))
    assert curve.best[1] == pytest.approx(within_scatter(X, labels), rel=1e-5)  # all 40 dims of noise counted
    assert curve.elbow.k == 4


def test_uniform_square_has_no_pronounced_elbow():
    X = np.random.default_rng(0).random((2000, 2)).astype(np.float32)
    curve = elbow_curve(X, range(2, 41, 2), restarts=1)
    assert curve.elbow.k is not None
    assert not curve.elbow.pronounced
    assert curve.elbow.slope_ratio < 1.5  # inertia ~ k^-1 for a uniform square: a power law, no scale


def test_same_seed_same_curve_and_restarts_ordered():
    X = np.random.default_rng(2).normal(size=(600, 5)).astype(np.float32)
    a = elbow_curve(X, [3, 6, 9], restarts=3, seed=7)
    b = elbow_curve(X, [3, 6, 9], restarts=3, seed=7)
    np.testing.assert_array_equal(a.inertia, b.inertia)
    assert np.all(a.best <= a.mean)
    assert np.all(a.mean <= a.worst)
    m = a.to_metrics()
    assert m["ks"] == [3, 6, 9]
    assert m["restarts"] == 3
    assert len(m["inertia_min"]) == 3


def test_bad_ks_and_algorithm():
    X = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"1\.\.n_samples = 5"):
        elbow_curve(X, [2, 6])
    with pytest.raises(ValueError, match="empty"):
        check_ks([], 5)
    with pytest.raises(ValueError, match="unknown algorithm"):
        elbow_curve(X, [2], algorithm="kmedoids")


# --- elbow estimate -------------------------------------------------------------------------------------------


def test_find_elbow_on_constructed_curves():
    ks = np.arange(1, 21)
    sharp = np.where(ks <= 4, 1000.0 - 240.0 * (ks - 1), 280.0 * (4.0 / ks) ** 0.1)  # steep to k = 4, then flat
    e = find_elbow(ks, sharp)
    assert (e.k, e.pronounced) == (4, True)
    power = ks**-0.5  # a power law: scale-free, the log-log slope is the same everywhere
    e = find_elbow(ks, power)
    assert not e.pronounced
    assert e.slope_ratio == pytest.approx(1.0, rel=1e-6)
    assert find_elbow([2, 3], [5.0, 1.0]).k is None  # too short
    assert find_elbow(ks, ks.astype(float)).k is None  # increasing: no elbow
    assert "no pronounced elbow" in find_elbow(ks, power).describe()


# --- section --------------------------------------------------------------------------------------------------


def small_latents(n: int, z_dim: int = 6, mu: bool = False) -> Latents:
    rng = np.random.default_rng(0)
    centres = 15.0 * np.eye(5, z_dim)  # five blobs, 15 apart along the first five axes
    labels = rng.integers(0, 5, n)
    z = (centres[labels] + rng.normal(size=(n, z_dim))).astype(np.float32)
    extra = {"mu": z, "logvar": np.zeros_like(z)} if mu else {}
    return Latents(z=z, index=np.arange(n), labels=labels, meta={"z_dim": z_dim}, **extra)


def test_section_on_small_latents():
    cfg = section.Config(k_max=16, k_step=1, minibatch_n_init=3, restarts=2)
    s = section.run(Context(latents=small_latents(300)), cfg)
    assert not s.skipped
    assert not s.notes
    assert [f.name for f in s.figures] == ["elbow"]
    assert "k = 2..16 step 1" in s.figures[0].caption
    assert s.metrics["lloyd"]["ks"] == list(range(2, 17))
    assert s.metrics["lloyd"]["restarts"] == 2
    assert s.metrics["minibatch"]["restarts"] == 1
    for algorithm in ("lloyd", "minibatch"):  # five separated blobs: a pronounced elbow at 5
        assert (s.metrics[algorithm]["elbow_k"], s.metrics[algorithm]["elbow_pronounced"]) == (5, True)
    assert len(s.tables[0].rows) == 2
    # the keys metrics.json promises (docs/metrics.md), checked by its schema, which would catch a changed type
    doc = json.loads(json.dumps(report_metrics([s], command="test")))
    assert problems(doc) == []
    doc["sections"]["elbow"]["lloyd"]["elbow_k"] = "5"
    del doc["sections"]["elbow"]["minibatch"]["inertia_min"]
    assert problems(doc) == [
        "$.sections.elbow.lloyd.elbow_k: expected integer or null, got str",
        "$.sections.elbow.minibatch: missing 'inertia_min'",
    ]


def test_section_adapts_k_to_tiny_space_and_notes_mu():
    s = section.run(Context(latents=small_latents(12)), section.Config(algorithms=("lloyd",), source="mu"))
    assert s.metrics["lloyd"]["ks"] == [2, 4, 6, 8, 10]
    assert any("limited to below the 12 points" in n for n in s.notes)
    assert any("no mu" in n for n in s.notes)
    s = section.run(Context(latents=small_latents(2)), section.Config(algorithms=("lloyd",)))
    assert s.skipped
    assert s.notes


def test_points_beyond_the_time_limit_are_clustered_on_a_subset_with_a_note(monkeypatch):
    """Ten million rows were refused whole (the estimate over all points passed the limit); now the largest halving
    of the points that fits is clustered, seeded, with a note. A user's max_points is kept as given."""
    cfg = section.Config(k_max=6, k_step=1, algorithms=("lloyd",), restarts=1)
    ks = np.arange(2, 7)
    monkeypatch.setattr(section, "MIN_CAPPED_POINTS", 100)
    budget = (section.estimate(1000, 6, ks, cfg) + section.estimate(2000, 6, ks, cfg)) / 2  # 4,000 > 2,000 > 1,000
    monkeypatch.setattr(section, "TIME_BUDGET_S", budget)
    s = section.run(Context(latents=small_latents(4000)), cfg)
    assert s.metrics["n_points"] == 1000
    assert any("a random subset of 1,000 of the 4,000 points is clustered" in n for n in s.notes)
    assert s.metrics["lloyd"]["elbow_k"] == 5  # the five blobs, seen in the subset
    again = section.run(Context(latents=small_latents(4000)), cfg)
    assert again.metrics["lloyd"]["inertia_mean"] == s.metrics["lloyd"]["inertia_mean"]  # the same seeded subset
    pinned = section.run(Context(latents=small_latents(4000)), section.Config(**{**vars(cfg), "max_points": 3000}))
    assert pinned.metrics["n_points"] == 3000
    assert not any("more than the limit" in n for n in pinned.notes)


def test_section_bad_config():
    with pytest.raises(ConfigError, match="algorithms"):
        section.run(Context(latents=small_latents(50)), section.Config(algorithms=("kmedoids",)))
    with pytest.raises(ConfigError, match="k_min"):
        section.run(Context(latents=small_latents(50)), section.Config(k_min=10, k_max=5))


def test_summary_compares_curves_on_common_ks():
    X, _ = blobs()
    a = elbow_curve(X, range(1, 13), restarts=1)
    b = elbow_curve(X, range(1, 13, 3), algorithm="minibatch", restarts=1, minibatch=FAST_MB)
    text = section.elbow_summary([a, b])
    assert "at the 4 common k" in text
    assert "elbow at k = 4" in text


def test_the_series_elbows_are_quoted_only_beside_the_series_data(tmp_path, celeba_dir, mnist_dir):
    from types import SimpleNamespace

    from zspace.config import DataConfig

    cfg = section.Config(k_min=1, k_max=6, k_step=1, algorithms=("lloyd",))
    bare = section.run(Context(latents=small_latents(60)), cfg)
    assert "published" not in bare.metrics
    assert "The series" not in bare.summary
    named = SimpleNamespace(config=SimpleNamespace(data=DataConfig(name="celeba", path=str(tmp_path))))
    assert "published" not in section.run(Context(latents=small_latents(60), run=named), cfg).metrics  # a name only
    celeba = SimpleNamespace(config=SimpleNamespace(data=DataConfig(name="celeba", path=str(celeba_dir))))
    on_celeba = section.run(Context(latents=small_latents(60, z_dim=256), run=celeba), cfg)
    assert on_celeba.metrics["published"] == section.PUBLISHED["celeba"]
    assert "The series: CelebA latents (z_dim 256)" in on_celeba.summary
    assert "MNIST" not in on_celeba.summary
    small = section.run(Context(latents=small_latents(60), run=celeba), cfg)  # the series' faces, z_dim 6
    assert "published" not in small.metrics
    assert "The series" not in small.summary
    mnist = SimpleNamespace(config=SimpleNamespace(data=DataConfig(name="mnist", path=str(mnist_dir))))
    on_mnist = section.run(Context(latents=small_latents(60), run=mnist), cfg)
    assert on_mnist.metrics["published"] == section.PUBLISHED["mnist"]
    assert "raw MNIST pixels (not latents)" in on_mnist.summary
    assert "CelebA" not in on_mnist.summary
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not mnist")
    fake = SimpleNamespace(config=SimpleNamespace(data=DataConfig(name="mnist", path=str(tmp_path))))
    assert "published" not in section.run(Context(latents=small_latents(60), run=fake), cfg).metrics
