"""The work estimates of zspace.io.limits, with hand-computed numbers."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from zspace.analyses.elbow import elbow_curve
from zspace.errors import ConfigError
from zspace.io import limits


def test_kmeans_estimate_is_the_documented_cost_model():
    # sum(k) = 2 + 3 = 5; 5 * 100 points * 4 features * 25 iterations * 2 restarts / 2e9 = 5e-5 s
    assert limits.estimate_kmeans_seconds(100, 4, [2, 3], restarts=2) == pytest.approx(5e-5)


def test_check_time_refuses_beyond_the_budget_naming_key_and_estimate():
    limits.check_time(10.0, "elbow.ks", "fits", budget=10.0)
    with pytest.raises(ConfigError, match=r"^elbow.ks: fits would take about 11 s, more than the limit of 10 s$"):
        limits.check_time(11.0, "elbow.ks", "fits", budget=10.0)
    with pytest.raises(ConfigError, match="unbounded"):
        limits.check_time(math.inf, "splits", "splits")


def test_threads_capped_at_the_core_count_with_a_note():
    cores = os.cpu_count() or 1
    assert limits.usable_threads(1) == (1, None)
    n, note = limits.usable_threads(100000)
    assert n == cores
    assert note == f"--threads=100000 capped at {cores}, the number of CPU cores"
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--threads must be an integer >= 1"):
            limits.usable_threads(bad)


def test_check_count_refuses_non_integers_and_too_much_memory():
    assert limits.check_count(3, "--n", 8, "images") == 3
    assert limits.check_count(3.0, "--n", 8, "images") == 3
    for bad in (0, -5, 1.5, math.nan, math.inf, "3", True):
        with pytest.raises(ConfigError, match="--n must be a positive integer"):
            limits.check_count(bad, "--n", 8, "images")
    with pytest.raises(ConfigError, match=r"^decode.n_probes: probes would need .* more than this machine can hold"):
        limits.check_count(10**6, "decode.n_probes", 2.0**40, "probes")


def test_elbow_with_1797_ks_on_1797_points_is_refused_before_fitting(monkeypatch):
    # 1797 points, 64 features, ks 1..1797: sum(k) = 1797*1798/2 = 1,615,503 -> 1.6e6*1797*64*25*3/2e9 ~ 6,970 s
    X = np.random.default_rng(0).normal(size=(1797, 64)).astype(np.float32)
    with pytest.raises(ConfigError, match=r"^elbow.ks: 5391 k-means fits would take about 6.97e\+03 s"):
        elbow_curve(X, range(1, 1798), restarts=3)
