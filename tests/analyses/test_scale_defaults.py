"""Defaults that keep `zspace analyze` on a million points within minutes (issue 19, "Measured"): the MiniBatchKMeans
reference curve fitted on a stated, seeded subset above a limit (inertia still over all points), the note and metrics
saying so, the elbow's cost estimate at 1,000,000 x 256, and t-SNE's one default map with the series' maps one
setting away. Speed itself is measured only by benchmarks/analyze_big.py."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from zspace.analyses import elbow as analysis
from zspace.analyses import tsne as tsne_analysis
from zspace.analyses.elbow import MiniBatchSettings, elbow_curve, estimate_seconds, fit_rows
from zspace.errors import ConfigError
from zspace.io.limits import TIME_BUDGET_S, machine_cores, set_thread_budget
from zspace.latents.embedding import Latents
from zspace.report.analyze import analysis_settings
from zspace.sections import elbow as elbow_section
from zspace.sections import tsne as tsne_section
from zspace.sections.base import Context

FAST_MB = MiniBatchSettings(n_init=2, max_iter=20, tol=1e-4, batch_size=32)


def blobs(n: int, dims: int = 4, seed: int = 0) -> np.ndarray:
    """Three blobs 10 apart along the first axes: (n, dims) float32."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(3, dims)
    return (centres[rng.integers(0, 3, n)] + rng.normal(size=(n, dims))).astype(np.float32)


def spy_fits(monkeypatch) -> list[np.ndarray]:
    """Record the array every MiniBatchKMeans fit gets, and the centres it returns."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = analysis._minibatch_fit

    def fit(X, k, seed, settings):
        centres = real(X, k, seed, settings)
        seen.append((np.array(X), centres))
        return centres

    monkeypatch.setattr(analysis, "_minibatch_fit", fit)
    return seen


# --- the subset rule ------------------------------------------------------------------------------------------


def test_fit_rows_exactly_the_limit_seeded_sorted_distinct():
    rows = fit_rows(1000, 120, seed=3)
    assert rows.shape == (120,)
    assert rows.dtype == np.int64
    assert len(np.unique(rows)) == 120
    assert np.all(np.diff(rows) > 0)
    assert rows[0] >= 0
    assert rows[-1] < 1000
    np.testing.assert_array_equal(rows, fit_rows(1000, 120, seed=3))  # deterministic
    assert not np.array_equal(rows, fit_rows(1000, 120, seed=4))  # and seeded
    assert fit_rows(120, 120, seed=3) is None  # at or below the limit: all points
    assert fit_rows(50, 120, seed=3) is None
    assert fit_rows(1000, 0, seed=3) is None  # 0: no limit


def test_reference_curve_above_the_limit_is_fitted_on_exactly_the_subset(monkeypatch):
    X = blobs(400)
    seen = spy_fits(monkeypatch)
    curve = elbow_curve(X, [2, 3, 4], algorithm="minibatch", restarts=2, minibatch=FAST_MB, fit_points=150, seed=5)
    assert len(seen) == 6  # 3 ks x 2 restarts
    subset = X[fit_rows(400, 150, seed=5)]
    for fitted, _ in seen:  # every fit: exactly the stated 150 points, the same seeded subset for every k
        np.testing.assert_array_equal(fitted, subset)
    assert {k: curve.settings[k] for k in ("n_points", "fit_points", "fit_points_limit")} == {
        "n_points": 400,
        "fit_points": 150,
        "fit_points_limit": 150,
    }
    # the inertia is still over all 400 points: by hand, from the centres the fits returned
    by_hand = [((X[:, None, :] - c[None]) ** 2).sum(axis=2).min(axis=1).sum() for _, c in seen]
    np.testing.assert_allclose(np.sort(curve.inertia.ravel()), np.sort(by_hand), rtol=1e-5)


def test_reference_curve_is_deterministic_and_independent_of_threads():
    X = blobs(300, seed=1)
    kw = dict(algorithm="minibatch", restarts=2, minibatch=FAST_MB, fit_points=120, seed=0)
    a = elbow_curve(X, [2, 3, 5], n_jobs=1, **kw)
    b = elbow_curve(X, [2, 3, 5], n_jobs=2, **kw)
    np.testing.assert_array_equal(a.inertia, b.inertia)


def test_reference_curve_below_the_limit_is_fitted_on_all_points(monkeypatch):
    X = blobs(100)
    seen = spy_fits(monkeypatch)
    curve = elbow_curve(X, [2, 3], algorithm="minibatch", restarts=1, minibatch=FAST_MB, fit_points=100)
    assert all(np.array_equal(fitted, X) for fitted, _ in seen)
    assert len(seen) == 2
    assert (curve.settings["fit_points"], curve.settings["n_points"]) == (100, 100)


# --- the section: note, metrics, caption ----------------------------------------------------------------------


def latents(n: int) -> Latents:
    return Latents(z=blobs(n, dims=6), index=np.arange(n))


def test_section_states_the_subset_in_notes_metrics_and_caption():
    cfg = elbow_section.Config(k_max=6, k_step=1, minibatch_n_init=2, restarts=1, minibatch_max_points=120)
    s = elbow_section.run(Context(latents=latents(300)), cfg)
    assert s.metrics["fit_points"]["minibatch"] == 120
    assert s.metrics["minibatch"]["settings"]["fit_points"] == 120
    assert s.metrics["minibatch"]["settings"]["n_points"] == 300
    assert s.metrics["fit_points"]["lloyd"] == "min(300, max(256 * k, 20000)) per k"
    [note] = [n for n in s.notes if "MiniBatchKMeans" in n]
    assert "seeded random subset of 120 of the 300 points (elbow.minibatch_max_points" in note
    assert "inertia is over all 300 points" in note
    assert "MiniBatchKMeans: 1 fit(s) per k on a random 120 of the points" in s.figures[0].caption


def test_section_below_the_limit_fits_all_points_without_a_note():
    assert elbow_section.Config().minibatch_max_points == elbow_section.MINIBATCH_MAX_POINTS == 50_000
    cfg = elbow_section.Config(k_max=5, k_step=1, minibatch_n_init=2, restarts=1)
    s = elbow_section.run(Context(latents=latents(200)), cfg)
    assert s.metrics["fit_points"]["minibatch"] == 200
    assert not s.notes
    assert "on a random" not in s.figures[0].caption


def test_minibatch_max_points_is_declared():
    _, configs, _ = analysis_settings(sets=["elbow.minibatch_max_points=0"], only="elbow")
    assert configs["elbow"].minibatch_max_points == 0
    with pytest.raises(ConfigError, match="minibatch_max_points"):
        analysis_settings(sets=["elbow.minibatch_max_points=-1"], only="elbow")


def test_the_default_elbow_on_a_million_points_is_not_refused():
    """1,000,000 x 256, every second k in 2..80: both curves are estimated under the time budget (the reference
    curve's fits on 50,000 points, the passes over all points), while fitting it on all points is estimated higher."""
    cfg = elbow_section.Config()
    ks = np.arange(cfg.k_min, cfg.k_max + 1, cfg.k_step)
    lloyd = estimate_seconds(10**6, 256, ks, cfg.restarts, "lloyd")
    mb = estimate_seconds(10**6, 256, ks, 1, "minibatch", fit_points=cfg.minibatch_max_points)
    assert lloyd < TIME_BUDGET_S
    assert mb < TIME_BUDGET_S
    assert estimate_seconds(10**6, 256, ks, 1, "minibatch") > 10 * mb  # all points: about 20x the fits


# --- t-SNE's default ------------------------------------------------------------------------------------------


def test_tsne_default_is_one_map_of_the_default_preset():
    cfg = tsne_section.Config()
    assert (cfg.sizes, cfg.presets, cfg.pca_components, cfg.n_iter) == ((20_000,), ("default",), (), 1000)
    assert tsne_analysis.PRESETS["default"] == (30.0, 12.0)
    # 20,000 points: FFT gradients on every core this process may use, 250 exaggerated + 750 normal iterations
    t = tsne_analysis._tsne(20_000, 256, 30.0, 12.0, 1000, 0, -1)
    assert (t.negative_gradient_method, t.n_jobs, t.early_exaggeration_iter, t.n_iter) == (
        "fft",
        machine_cores(),
        250,
        750,
    )
    set_thread_budget(1)  # --threads 1 reaches openTSNE too
    assert tsne_analysis._tsne(20_000, 256, 30.0, 12.0, 1000, 0, -1).n_jobs == 1
    assert (t.perplexity, t.early_exaggeration) == (30.0, 12.0)


def test_tsne_default_map_names_the_series_settings_which_round_trip():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 12)).astype(np.float32)
    z[:40, 0] += 8
    s = tsne_section.run(Context(latents=Latents(z=z, index=np.arange(120))), tsne_section.Config(n_iter=30))
    assert [f.name for f in s.figures] == ["120-default"]
    assert [(m["preset"], m["pca_components"]) for m in s.metrics["maps"]] == [("default", None)]
    assert any(tsne_section.SERIES_SETS in n for n in s.notes)
    words = shlex.split(tsne_section.SERIES_SETS)
    _, configs, _ = analysis_settings(sets=words[1::2], only="tsne")  # the note's settings, as the CLI reads them
    assert configs["tsne"].presets == tsne_section.SERIES["presets"]
    assert configs["tsne"].pca_components == tsne_section.SERIES["pca_components"]
    series = tsne_section.run(
        Context(latents=Latents(z=z, index=np.arange(120))), tsne_section.Config(n_iter=30, **tsne_section.SERIES)
    )
    assert not any("series' other maps" in n for n in series.notes)
    assert len(series.metrics["maps"]) == 5
