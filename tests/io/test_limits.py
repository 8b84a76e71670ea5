"""The work estimates of zspace.io.limits, with hand-computed numbers."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from zspace.analyses.elbow import elbow_curve
from zspace.errors import ConfigError
from zspace.io import limits


def test_kmeans_estimate_is_the_documented_cost_model(monkeypatch):
    monkeypatch.setattr(limits, "KMEANS_RATE", 1e9)
    monkeypatch.setattr(limits, "PASS_RATE", 1e10)
    monkeypatch.setattr(limits, "KMEANS_FIT_SECONDS", 0.01)
    # 100 points (fewer than 256 per centre: all fitted), 4 features: per k, fits 25 * 100 * k * 4 = 10,000 k at 1e9
    # and passes 100 * k * (4 + 4) = 800 k at 1e10; k = 2 and 3, 2 restarts: 2 * (50,000 / 1e9 + 4,000 / 1e10) s,
    # plus 2 restarts x 2 ks x 0.01 s
    assert limits.estimate_kmeans_seconds(100, 4, [2, 3], restarts=2) == pytest.approx(1.008e-4 + 0.04)
    # 10,000 points in 100-D, k = 2: fitted on 256 * 2 = 512 points in 64 PCA dims (the LloydSettings defaults):
    # 25 * 512 * 2 * 64 = 1,638,400; every point assigned in 64 dims and its inertia in 100: 10,000 * 2 * 164
    assert limits.estimate_kmeans_seconds(10_000, 100, [2]) == pytest.approx(1.6384e-3 + 3.28e-4 + 0.01)
    assert limits.estimate_kmeans_seconds(10_000, 100, [2], fit_dims=0, points_per_centroid=10**9) == pytest.approx(
        25 * 10_000 * 2 * 100 / 1e9 + 10_000 * 2 * 200 / 1e10 + 0.01
    )


def test_knn_tsne_and_decode_estimates(monkeypatch):
    monkeypatch.setattr(limits, "KNN_RATE", 1e9)
    monkeypatch.setattr(limits, "TSNE_RATE", 1e5)
    monkeypatch.setattr(limits, "DECODE_RATE", 1e6)
    assert limits.estimate_knn_seconds(1000, 2000, 50) == pytest.approx(0.1)  # 1e8 distance terms
    assert limits.estimate_tsne_seconds(20_000, 1000, 5) == pytest.approx(1000.0)  # 1e8 point-iterations
    assert limits.estimate_decode_seconds(100, 96 * 96 * 3) == pytest.approx(2.7648)
    with pytest.raises(ConfigError, match=r"^k: w would take about 2e\+03 s, more than the limit of 1000 s$"):
        limits.check_work(2000.0, 10.0, "k", "w", budget=1000.0)
    monkeypatch.setattr(limits, "available_memory", lambda: 1000)
    with pytest.raises(ConfigError, match=r"^k: w would need 1000 B, more than this machine can hold \(800 B\)$"):
        limits.check_work(1.0, 1000.0, "k", "w")


def test_check_time_refuses_beyond_the_budget_naming_key_and_estimate():
    limits.check_time(10.0, "elbow.ks", "fits", budget=10.0)
    with pytest.raises(ConfigError, match=r"^elbow.ks: fits would take about 11 s, more than the limit of 10 s$"):
        limits.check_time(11.0, "elbow.ks", "fits", budget=10.0)
    with pytest.raises(ConfigError, match="unbounded"):
        limits.check_time(math.inf, "splits", "splits")


def test_threads_capped_at_the_core_count_with_a_note():
    cores = limits.machine_cores()
    assert limits.usable_threads(1) == (1, None)
    n, note = limits.usable_threads(100000)
    assert n == cores
    assert note == f"--threads=100000 capped at {cores}, the number of CPU cores"
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--threads must be an integer >= 1"):
            limits.usable_threads(bad)


def test_the_thread_budget_reaches_torch_blas_openmp_faiss_and_zspaces_own_pools(monkeypatch):
    """``--threads 1`` used to reach torch only: the elbow's fits, faiss, openTSNE and BLAS took every core."""
    import faiss
    import torch
    from threadpoolctl import threadpool_info

    from zspace.analyses import elbow, tsne
    from zspace.data import cache

    monkeypatch.setattr(limits, "machine_cores", lambda: 2)  # a 2-core machine, wherever this runs
    assert limits.cpu_threads() == 2
    limits.set_thread_budget(1)
    try:
        assert limits.cpu_threads() == 1
        assert elbow.cores() == 1  # the elbow's fits side by side
        assert cache._n_workers(0) == 1  # image decoding workers
        assert tsne._tsne(5000, 8, 30.0, 12.0, 10, 0, -1).n_jobs == 1  # openTSNE
        assert torch.get_num_threads() == 1
        assert faiss.omp_get_max_threads() == 1
        assert {lib["num_threads"] for lib in threadpool_info()} == {1}  # every BLAS and OpenMP loaded
        limits.set_thread_budget(100)  # above the cores: the cores
        assert limits.cpu_threads() == 2
    finally:
        limits.set_thread_budget(None)
    assert limits.cpu_threads() == 2
    assert torch.get_num_threads() == 2


def test_check_count_refuses_non_integers_and_too_much_memory():
    assert limits.check_count(3, "--n", 8, "images") == 3
    assert limits.check_count(3.0, "--n", 8, "images") == 3
    for bad in (0, -5, 1.5, math.nan, math.inf, "3", True):
        with pytest.raises(ConfigError, match="--n must be a positive integer"):
            limits.check_count(bad, "--n", 8, "images")
    with pytest.raises(ConfigError, match=r"^decode.n_probes: probes would need .* more than this machine can hold"):
        limits.check_count(10**6, "decode.n_probes", 2.0**40, "probes")


def test_elbow_with_1797_ks_on_1797_points_is_refused_before_fitting():
    X = np.random.default_rng(0).normal(size=(1797, 64)).astype(np.float32)
    expected = limits.estimate_kmeans_seconds(1797, 64, range(1, 1798), 3)
    assert expected > limits.TIME_BUDGET_S
    shown = re.escape(f"{expected:.3g}")
    with pytest.raises(ConfigError, match=rf"^elbow.ks: 5391 k-means fits would take about {shown} s, more than"):
        elbow_curve(X, range(1, 1798), restarts=3)


# --- the estimates where the work is (t-SNE and manifold sections, the wifi study, quality) ---------------------


def test_tsne_maps_beyond_the_budget_are_refused_before_any_map():
    import time

    import zspace

    z = np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float32)
    t0 = time.perf_counter()
    # 2,000 points x 100,000 iterations x (2 presets + PCA to 2 and 4) = 8e11 point-iterations / 1e5 per s
    with pytest.raises(ConfigError, match=r"^tsne.sizes: 4 t-SNE maps \(2 presets and 2 PCA sizes .* 8e\+03 s"):
        zspace.analyze(
            z,
            only="tsne",
            tsne={"sizes": [5000], "n_iter": 100_000, "presets": ["default", "series"], "pca_components": [2, 4]},
        )
    assert time.perf_counter() - t0 < 20


def test_manifold_caps_its_points_with_a_note_and_refuses_too_many_probes(monkeypatch):
    import zspace

    monkeypatch.setattr(limits, "KNN_RATE", 1e3)  # a slow machine: 1,000 distance terms per second
    z = np.random.default_rng(1).normal(size=(1000, 4)).astype(np.float32)
    # cap = sqrt(1800 s * 1e3 / (2 * 4)) = 474 points; then (2 * 474 + 2 * 10) * 474 * 4 / 1e3 = 1,835 s < 3,600
    report = zspace.analyze(z, only="manifold", manifold={"n_probes": 10})
    section = report.section("manifold")
    assert section.metrics["n_points"] == 474
    assert any("a random subset of 474 points is analysed instead" in n for n in section.notes)
    with pytest.raises(ConfigError, match=r"^manifold.n_probes: exact neighbour searches of 474 points and 2 x 5,000"):
        zspace.analyze(z, only="manifold", manifold={"n_probes": 5000})


def test_the_wifi_studys_fits_are_estimated_before_any_data_is_read():
    from zspace.studies import study_module

    wifi = study_module("wifi")
    wifi.validate(wifi.Config())  # the defaults: seconds
    with pytest.raises(ConfigError, match=r"^splits: 3,000,000,000 k-means fits of 11 clusters .* would take about"):
        wifi.validate(wifi.Config(splits=10_000, n_init=100_000))
    wifi.validate(wifi.Config(elbow_k_max=2000, tsne_iter=100_000))  # the declared maxima: within the budget


def test_quality_n_is_estimated_before_any_image_is_made(monkeypatch):
    from zspace.latents.quality import check_cost

    check_cost(1000, 2000, 96 * 96 * 3)  # the default: well within
    monkeypatch.setattr(limits, "available_memory", lambda: 2**30)
    with pytest.raises(ConfigError, match=r"^--n: scoring 1,000,000 generated against 2,000 real images would need"):
        check_cost(10**6, 2000, 96 * 96 * 3)
    monkeypatch.setattr(limits, "available_memory", lambda: 2**50)
    with pytest.raises(ConfigError, match=r"^--n: scoring 1,000,000 generated .* would take about"):
        check_cost(10**6, 2000, 96 * 96 * 3)
