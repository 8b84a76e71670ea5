"""The cluster classifier: majority labels, per-cluster errors, confusion matrices, scalers, reproducibility,
bad input, and scikit-learn's estimator checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from zspace.analyses.classifier import ClusterClassifier, ClusterInputError, Evaluation, evaluate
from zspace.errors import ZSpaceError
from zspace.figures.cluster import row_percent
from zspace.studies.clustering import classifier_section, results_table

ALGORITHMS = ["lloyd", "minibatch"]
CORNERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def four_blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten points around each corner; classes a | b | 7 b + 3 c | c."""
    rng = np.random.default_rng(seed)
    X = np.repeat(CORNERS, 10, axis=0) + rng.normal(scale=0.3, size=(40, 2))
    y = np.array(["a"] * 10 + ["b"] * 10 + ["b"] * 7 + ["c"] * 3 + ["c"] * 10)
    return X, y


def by_corner(clf: ClusterClassifier) -> np.ndarray:
    """The cluster index nearest to each corner, so tests do not depend on the cluster order."""
    return np.array([np.argmin(((clf.cluster_centers_ - c) ** 2).sum(axis=1)) for c in CORNERS])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_majority_labels_sizes_purity_errors(algorithm):
    X, y = four_blobs()
    clf = ClusterClassifier(4, algorithm=algorithm, n_init=3, batch_size=16, random_state=0).fit(X, y)
    order = by_corner(clf)
    assert sorted(order) == [0, 1, 2, 3]
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(clf.cluster_labels_[order], ["a", "b", "b", "c"])
    np.testing.assert_array_equal(clf.cluster_sizes_[order], [10, 10, 10, 10])
    np.testing.assert_allclose(clf.cluster_purity_[order], [1, 1, 0.7, 1])
    np.testing.assert_allclose(clf.cluster_errors_[order], [0, 0, 0.3, 0])
    np.testing.assert_array_equal(clf.cluster_class_counts_[order[2]], [0, 7, 3])
    assert clf.score(X, y) == pytest.approx(37 / 40)
    np.testing.assert_array_equal(clf.predict(CORNERS + 0.1), ["a", "b", "b", "c"])
    assert clf.n_features_in_ == 2
    assert clf.n_iter_ >= 1


def test_transform_is_distance_to_centres():
    X, y = four_blobs()
    clf = ClusterClassifier(4, random_state=0).fit(X, y)
    D = clf.transform(X[:5])
    expected = np.linalg.norm(X[:5, None, :] - clf.cluster_centers_[None].astype(np.float64), axis=2)
    np.testing.assert_allclose(D, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(clf.predict_cluster(X[:5]), D.argmin(axis=1))
    assert clf.inertia_ == pytest.approx(float((clf.transform(X).min(axis=1) ** 2).sum()), rel=1e-5)


def test_evaluation_confusion_matrix_by_hand():
    X, y = four_blobs()
    codes = np.unique(y, return_inverse=True)[1]
    e = evaluate(ClusterClassifier(4, random_state=0), X, codes, X, codes, label="blobs", class_names=["a", "b", "c"])
    # rows true a, b, c; the 3 c's in the b-cluster are predicted b
    np.testing.assert_array_equal(e.train_confusion, [[10, 0, 0], [0, 17, 0], [0, 3, 10]])
    assert e.train_error == pytest.approx(3 / 40)
    assert e.clusters_above == 0  # the worst cluster has 30 % error, below the series' 40 % line
    np.testing.assert_allclose(row_percent(e.train_confusion)[2], [0, 23.076923, 76.923077], rtol=1e-6)
    m = e.to_metrics()
    assert (m["n_wrong_train"], m["n_wrong_test"], m["n_clusters"]) == (3, 3, 4)
    section = classifier_section("k", "title", [e], detail=[e])
    assert [f.name for f in section.figures] == ["0-confusion-train", "0-confusion-test", "0-cluster-errors"]
    assert section.tables[1].rows[2] == ["c", 0, 3, 10, 76.9]


def test_clusters_above_threshold_counted():
    e = Evaluation("x", {}, ["a"], np.eye(1), np.eye(1), np.array([0.1, 0.41, np.nan, 0.9]), np.ones(4), 0.0, 0.0)
    assert e.clusters_above == 2
    assert results_table([e], published={"x": "0.1"}).rows[0][-1] == "0.1"


def test_normalizer_clusters_by_direction():
    """Two rays 20 degrees apart, lengths 1..100: unscaled KMeans splits short from long, normalized by direction."""
    r = np.linspace(1, 100, 50)
    angles = np.radians([0.0, 20.0])
    X = np.concatenate([np.c_[r * np.cos(a), r * np.sin(a)] for a in angles])
    y = np.repeat([0, 1], 50)
    plain = ClusterClassifier(2, random_state=0).fit(X, y)
    normed = ClusterClassifier(2, scaler="normalizer", random_state=0).fit(X, y)
    assert plain.score(X, y) < 0.75
    assert normed.score(X, y) == 1.0
    assert type(normed.scaler_).__name__ == "Normalizer"
    assert plain.scaler_ is None


def test_standard_scaler_lets_a_small_feature_count():
    """Feature 0 is wide noise, feature 1 a small class offset: only standardized features cluster by class."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    X = np.c_[rng.uniform(0, 1000, 200), y + rng.normal(scale=0.01, size=200)]
    assert ClusterClassifier(2, random_state=0).fit(X, y).score(X, y) < 0.75
    assert ClusterClassifier(2, scaler="standard", random_state=0).fit(X, y).score(X, y) == 1.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fixed_random_state_reproduces(algorithm):
    X = np.random.default_rng(1).normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(int)
    a = ClusterClassifier(8, algorithm=algorithm, random_state=5).fit(X, y)
    b = ClusterClassifier(8, algorithm=algorithm, random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_empty_cluster_takes_nearest_label():
    X = np.repeat([[0.0, 0.0], [10.0, 10.0]], 5, axis=0)  # 2 distinct points, 3 clusters: one stays empty
    y = np.repeat([0, 1], 5)
    clf = ClusterClassifier(3, random_state=0).fit(X, y)
    assert sorted(clf.cluster_sizes_) == [0, 5, 5]
    empty = int(np.flatnonzero(clf.cluster_sizes_ == 0)[0])
    assert np.isnan(clf.cluster_purity_[empty])
    assert clf.score(X, y) == 1.0


@pytest.mark.parametrize(
    ("X", "y", "kw", "message"),
    [
        (np.zeros((10, 2)), np.zeros(9), {}, "y has 9 labels but X has 10 samples"),
        (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), [0, 1, 0], {"n_clusters": 2}, "NaN.*first: row 1"),
        (np.eye(3), [0, 1, 0], {"n_clusters": 5}, "n_clusters=5 is more than the samples: n_samples = 3"),
        (np.eye(3), [0, 1, 0], {"n_clusters": 2, "scaler": "minmax"}, "scaler must be"),
        (np.eye(3), [0, 1, 0], {"n_clusters": 2, "algorithm": "kmedoids"}, "algorithm must be"),
    ],
)
def test_bad_input_one_line_errors(X, y, kw, message):
    with pytest.raises(ClusterInputError, match=message) as info:
        ClusterClassifier(**kw).fit(X, y)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ZSpaceError)


def test_predict_nan_and_wrong_width():
    X, y = four_blobs()
    clf = ClusterClassifier(4, random_state=0).fit(X, y)
    with pytest.raises(ClusterInputError, match="NaN"):
        clf.predict([[np.nan, 0.0]])
    with pytest.raises(ClusterInputError, match="3 features"):
        clf.predict(np.zeros((2, 3)))


@parametrize_with_checks(
    [ClusterClassifier(algorithm="lloyd", n_init=1), ClusterClassifier(algorithm="minibatch", n_init=1)]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_tsne_map_features_keep_blobs_apart_and_place_test_points():
    from zspace.analyses.tsne import tsne_features

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=20.0, size=(3, 10))  # three blobs far apart in 10-D
    y_train, y_test = np.repeat([0, 1, 2], 60), np.repeat([0, 1, 2], 10)
    X_train = centres[y_train] + rng.normal(size=(180, 10))
    X_test = centres[y_test] + rng.normal(size=(30, 10))
    f = tsne_features(X_train, X_test, n_iter=250, random_state=0, n_jobs=1)
    assert f.train.shape == (180, 2)
    assert f.test.shape == (30, 2)
    # every test point lands beside training points of its own blob: 1-NN on the map is right for all of them
    d = ((f.test[:, None, :] - f.train[None, :, :]) ** 2).sum(axis=2)
    assert (y_train[d.argmin(axis=1)] == y_test).all()
    # and the cluster classifier on the map, 3 clusters, is exact
    clf = ClusterClassifier(3, algorithm="lloyd", random_state=0).fit(f.train, y_train)
    assert clf.score(f.test, y_test) == 1.0
    with pytest.raises(ValueError, match="at least 4 points, got 3"):
        tsne_features(X_train[:3], X_test)
    with pytest.raises(ValueError, match=r"test points must be \(n >= 1, 10\)"):
        tsne_features(X_train, X_test[:, :4])


def test_distance_features_on_separated_blobs():
    """Three far-apart blobs, 6 clusters: the MLP on the 6 distances and the cluster vote are both exact."""
    from zspace.analyses.classifier import distance_features

    rng = np.random.default_rng(1)
    centres = rng.normal(scale=30.0, size=(3, 5))
    y_train, y_test = np.repeat([0, 1, 2], 50), np.repeat([0, 1, 2], 10)
    X_train = centres[y_train] + rng.normal(size=(150, 5))
    X_test = centres[y_test] + rng.normal(size=(30, 5))
    clf = ClusterClassifier(6, algorithm="lloyd", random_state=0)
    r = distance_features(clf, X_train, y_train, X_test, y_test, hidden=(16,), max_iter=200)
    assert r["n_features"] == 6
    assert r["kmeans_test_error"] == 0.0
    assert r["test_error"] == 0.0
    assert r["train_error"] == 0.0
