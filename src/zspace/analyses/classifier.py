"""KMeans as a classifier (the series' "KMeans as a classifier for the WIFI and MNIST datasets"): cluster the
features, label every cluster by the majority class of its training points, predict a sample's class through its
nearest cluster centre.

The distances to the centres (``transform``) are features in their own right: the series noted that an MLP on them
reaches 98 % on MNIST.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.metrics import confusion_matrix
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from zspace.analyses.kmeans import faiss_threads, lloyd, nearest_centres, one_thread
from zspace.errors import ZSpaceError
from zspace.io.limits import cpu_threads

log = logging.getLogger(__name__)

SCALERS = {None: None, "none": None, "normalizer": Normalizer, "standard": StandardScaler}
ALGORITHMS = ("lloyd", "minibatch")


class ClusterInputError(ZSpaceError, ValueError):
    """Bad input to the cluster classifier: a ValueError for scikit-learn, a ZSpaceError (exit code 2) for the CLI."""


class ClusterClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """KMeans clusters labelled by their majority class.

    Parameters
    ----------
    n_clusters : number of clusters (the series: 225 for MNIST, 11 for WIFI).
    algorithm : ``"lloyd"`` (full Lloyd k-means on all points, faiss, k-means++ starts) or ``"minibatch"``
        (scikit-learn's ``MiniBatchKMeans``, as the series).
    scaler : None, ``"normalizer"`` (every sample to unit length) or ``"standard"`` (zero mean, unit variance per
        feature), fitted on the training data and applied before clustering and prediction.
    n_init : initialisations; the fit with the lowest inertia is kept (minibatch: scikit-learn's meaning).
    max_iter : Lloyd iterations at most (minibatch: passes over the data at most).
    tol : stop when an iteration block lowers the inertia by less than this fraction (minibatch: scikit-learn's tol).
    batch_size : mini-batch size (minibatch only; the series used 200).
    random_state : int, RandomState or None.
    n_jobs : faiss threads for ``"lloyd"``; None = faiss' default (all cores).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,).
    cluster_centers_ : ndarray of shape (n_clusters, n_features), in the scaled space.
    cluster_labels_ : ndarray of shape (n_clusters,), the majority class of each cluster (an empty cluster takes
        the class of the nearest non-empty one).
    cluster_sizes_ : ndarray of shape (n_clusters,), training points per cluster.
    cluster_class_counts_ : ndarray of shape (n_clusters, n_classes).
    cluster_purity_ : ndarray of shape (n_clusters,), share of the majority class (NaN for an empty cluster).
    cluster_errors_ : ndarray of shape (n_clusters,), 1 - purity: the per-cluster error rate.
    labels_ : ndarray of shape (n_samples,), the cluster of each training point.
    n_iter_ : int, iterations of the kept fit (minibatch: scikit-learn's count).
    inertia_ : float, sum of squared distances of the training points to their nearest centre (scaled space).
    n_features_in_ : int.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        algorithm: str = "lloyd",
        scaler: str | None = None,
        n_init: int = 3,
        max_iter: int = 100,
        tol: float = 1e-4,
        batch_size: int = 1024,
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.algorithm = algorithm
        self.scaler = scaler
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    # --- fitting ---

    def fit(self, X, y):
        """Cluster ``X`` (n_samples, n_features) and label every cluster by the majority of ``y`` (n_samples,)."""
        self._check_params()
        X, y = self._validate_fit(X, y)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        scaler = SCALERS[self.scaler]
        self.scaler_ = None if scaler is None else scaler().fit(X)
        Xs = self._scale(X)
        self.cluster_centers_ = self._fit_centres(Xs).astype(np.float32)
        self.labels_, sq_dist = nearest_centres(Xs, self.cluster_centers_)
        self.inertia_ = float(sq_dist.sum())
        self._label_clusters(y_idx)
        return self

    def _check_params(self) -> None:
        checks = [
            (isinstance(self.n_clusters, (int, np.integer)) and self.n_clusters >= 1, "n_clusters must be an int >= 1"),
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}"),
            (self.scaler in SCALERS, "scaler must be None, 'normalizer' or 'standard'"),
            (isinstance(self.n_init, (int, np.integer)) and self.n_init >= 1, "n_init must be an int >= 1"),
            (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1, "max_iter must be an int >= 1"),
            (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1, "batch_size must be >= 1"),
            (self.tol >= 0, "tol must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                name = msg.split()[0]
                raise ClusterInputError(f"{msg}, got {getattr(self, name)!r}")

    def _validate_fit(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        n_x, n_y = _length(X), _length(y)
        if n_x is not None and n_y is not None and n_x != n_y:
            raise ClusterInputError(f"y has {n_y} labels but X has {n_x} samples")
        X, y = _first_line(validate_data, self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        _check_finite(X)
        if self.n_clusters > len(X):
            raise ClusterInputError(f"n_clusters={self.n_clusters} is more than the samples: n_samples = {len(X)}")
        return X, y

    def _fit_centres(self, Xs: np.ndarray) -> np.ndarray:
        if self.algorithm == "minibatch":
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(
                n_clusters=self.n_clusters,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                batch_size=self.batch_size,
                random_state=self.random_state,
                compute_labels=False,
            )
            with one_thread():
                km.fit(Xs)
            self.n_iter_ = int(km.n_iter_)
            return km.cluster_centers_
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=self.n_init)
        with faiss_threads(self.n_jobs or cpu_threads()):
            fits = [lloyd(Xs, self.n_clusters, seed=int(s), max_iter=self.max_iter, tol=self.tol) for s in seeds]
        centres, _, self.n_iter_ = min(fits, key=lambda f: f[1])
        return centres

    def _label_clusters(self, y_idx: np.ndarray) -> None:
        k, n_classes = self.n_clusters, len(self.classes_)
        counts = np.zeros((k, n_classes), dtype=np.int64)
        np.add.at(counts, (self.labels_, y_idx), 1)
        sizes = counts.sum(axis=1)
        majority = counts.argmax(axis=1)
        empty = np.flatnonzero(sizes == 0)
        if len(empty):  # an empty cluster takes the class of the nearest non-empty centre
            full = np.flatnonzero(sizes > 0)
            nearest, _ = nearest_centres(self.cluster_centers_[empty], self.cluster_centers_[full])
            majority[empty] = majority[full[nearest]]
        with np.errstate(invalid="ignore", divide="ignore"):
            purity = np.where(sizes > 0, counts.max(axis=1) / np.maximum(sizes, 1), np.nan)
        self.cluster_class_counts_ = counts
        self.cluster_sizes_ = sizes
        self.cluster_labels_ = self.classes_[majority]
        self.cluster_purity_ = purity
        self.cluster_errors_ = 1.0 - purity

    # --- using the fit ---

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return X if self.scaler_ is None else self.scaler_.transform(X)

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = _first_line(validate_data, self, X, reset=False, dtype=[np.float32, np.float64], ensure_all_finite=False)
        _check_finite(X)
        return self._scale(X)

    def predict_cluster(self, X) -> np.ndarray:
        """Index of the nearest cluster of each sample: ndarray of shape (n_samples,)."""
        return nearest_centres(self._check_X(X), self.cluster_centers_)[0]

    def predict(self, X) -> np.ndarray:
        """Class of the nearest cluster: ndarray of shape (n_samples,)."""
        clusters = self.predict_cluster(X)
        return self.cluster_labels_[clusters]

    def transform(self, X) -> np.ndarray:
        """Euclidean distances to the cluster centres (scaled space): ndarray of shape (n_samples, n_clusters)."""
        Xs = np.asarray(self._check_X(X), dtype=np.float64)
        c = self.cluster_centers_.astype(np.float64)
        sq = (Xs**2).sum(axis=1)[:, None] - 2.0 * Xs @ c.T + (c**2).sum(axis=1)[None, :]
        return np.sqrt(np.maximum(sq, 0.0))


def _check_finite(X: np.ndarray) -> None:
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ClusterInputError(f"X contains NaN or infinite values in {len(rows)} rows (first: row {rows[0]})")


def _first_line(validate, *args, **kwargs):
    """Run a scikit-learn validation; its ValueError becomes a ClusterInputError on one line."""
    try:
        return validate(*args, **kwargs)
    except ClusterInputError:
        raise
    except ValueError as e:
        raise ClusterInputError(" ".join(str(e).split()) or "invalid input") from None


def _length(a) -> int | None:
    """Number of samples of an array-like, or None when it has none (None, a scalar)."""
    try:
        return None if a is None else _num_samples(a)
    except TypeError:
        return None


ERROR_THRESHOLD = 0.4  # the series counted the clusters whose error is above 40 %


@dataclass(eq=False)  # compared by identity: it holds arrays
class Evaluation:
    """A fitted cluster classifier measured on its training data and on held-out test data."""

    label: str  # e.g. "lloyd, normalizer, k = 225"
    settings: dict
    class_names: list[str]
    train_confusion: np.ndarray  # (c, c) counts, rows true, columns predicted
    test_confusion: np.ndarray
    cluster_errors: np.ndarray  # (k,) per-cluster error rate, NaN for an empty cluster
    cluster_sizes: np.ndarray  # (k,)
    inertia: float
    seconds: float  # fitting time

    @staticmethod
    def _error(cm: np.ndarray) -> float:
        return float(1.0 - np.trace(cm) / max(cm.sum(), 1))

    @property
    def train_error(self) -> float:
        return self._error(self.train_confusion)

    @property
    def test_error(self) -> float:
        return self._error(self.test_confusion)

    @property
    def clusters_above(self) -> int:
        return int(np.sum(np.nan_to_num(self.cluster_errors, nan=0.0) > ERROR_THRESHOLD))

    def to_metrics(self) -> dict:
        return {
            "label": self.label,
            **self.settings,
            "train_error": self.train_error,
            "test_error": self.test_error,
            "n_wrong_train": int(self.train_confusion.sum() - np.trace(self.train_confusion)),
            "n_wrong_test": int(self.test_confusion.sum() - np.trace(self.test_confusion)),
            "clusters_above_40pc_error": self.clusters_above,
            "mean_cluster_error": float(np.nanmean(self.cluster_errors)),
            "inertia": self.inertia,
            "fit_seconds": round(self.seconds, 2),
            "train_confusion": self.train_confusion.tolist(),
            "test_confusion": self.test_confusion.tolist(),
        }


def evaluate(
    clf: ClusterClassifier,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    label: str,
    class_names: Sequence[str],
) -> Evaluation:
    """Fit ``clf`` on the training data and measure it on both splits (``y`` as class indices 0..c-1)."""
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    classes = np.arange(len(class_names))
    settings = {
        k: clf.get_params()[k] for k in ("algorithm", "scaler", "n_clusters", "n_init", "max_iter", "random_state")
    }
    return Evaluation(
        label=label,
        settings={**settings, "scaler": settings["scaler"] or "none", "n_iter": int(clf.n_iter_)},
        class_names=list(class_names),
        train_confusion=confusion_matrix(y_train, clf.predict(X_train), labels=classes),
        test_confusion=confusion_matrix(y_test, clf.predict(X_test), labels=classes),
        cluster_errors=clf.cluster_errors_,
        cluster_sizes=clf.cluster_sizes_,
        inertia=clf.inertia_,
        seconds=seconds,
    )


def errors_vs_k(
    make: Callable[[int], ClusterClassifier],
    ks: Sequence[int],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> tuple[list[float], list[float]]:
    """Train and test error of ``make(k)`` fitted for every k of ``ks``."""
    train, test = [], []
    for k in ks:
        clf = make(int(k)).fit(X_train, y_train)
        train.append(1.0 - clf.score(X_train, y_train))
        test.append(1.0 - clf.score(X_test, y_test))
    return train, test


def distance_features(
    clf: ClusterClassifier,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    hidden: Sequence[int] = (128,),
    max_iter: int = 40,
    random_state: int = 0,
) -> dict:
    """KMeans distances as features: fit ``clf`` on the training split, standardise its ``transform`` (the distance
    of every point to every centre) and fit a small MLP (scikit-learn ``MLPClassifier``) on it.

    Returns the train and test errors of the MLP and of ``clf``'s own nearest-cluster vote, the feature count and
    the seconds spent.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler as Standard

    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    F_train, F_test = clf.transform(X_train), clf.transform(X_test)
    mlp = make_pipeline(
        Standard(),
        MLPClassifier(
            hidden_layer_sizes=tuple(hidden),
            max_iter=max_iter,
            batch_size=min(200, len(X_train)),
            random_state=random_state,
        ),
    )
    with warnings.catch_warnings():  # a fixed epoch budget: not converging is expected, not news
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(F_train, y_train)
    return {
        "n_features": int(F_train.shape[1]),
        "train_error": float(1.0 - mlp.score(F_train, y_train)),
        "test_error": float(1.0 - mlp.score(F_test, y_test)),
        "kmeans_train_error": float(1.0 - clf.score(X_train, y_train)),
        "kmeans_test_error": float(1.0 - clf.score(X_test, y_test)),
        "seconds": round(time.perf_counter() - t0, 2),
    }
