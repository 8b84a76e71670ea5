"""Radius, per-axis densities, PCA and VAE diagnostics: hand-computed answers on tiny arrays, then each section."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from zspace.analyses.axes import axis_histograms, axis_quantiles, axis_stats
from zspace.analyses.pca import components_for, fit_pca, pca_planes, project, valid_planes, window
from zspace.analyses.radius import chi_counts, chi_mode, histogram, narrowest_shell, radii, radius_stats, shell_share
from zspace.analyses.vae import compare_radii, kl_per_dimension, mu_variance, vae_diagnostics
from zspace.errors import ConfigError
from zspace.latents.embedding import Latents
from zspace.sections import axes as axes_section
from zspace.sections import pca as pca_section
from zspace.sections import radius as radius_section
from zspace.sections import vae as vae_section
from zspace.sections.base import Context

# Norms exactly 1, 2, 2, 3.
Z4 = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, -2.0], [2.0, 2.0, 1.0]])


# ---------------------------------------------------------------- radius


def test_radius_histogram_of_known_norms():
    R = radii(Z4)
    np.testing.assert_allclose(R, [1, 2, 2, 3])
    st = radius_stats(R, z_dim=3, width=0.5, r_max=35.0, shells=((1.5, 2.5), (1.0, 3.0), (0.0, 1.0)))
    assert len(st.hist.counts) == 70
    assert not st.hist.adapted
    assert st.hist.counts[2] == 1
    assert st.hist.counts[4] == 2
    assert st.hist.counts[6] == 1
    assert st.hist.counts.sum() == 4
    assert st.peak == 2.25  # centre of [2, 2.5)
    assert st.mean == pytest.approx(2.0)
    assert st.std == pytest.approx(math.sqrt(0.5))  # deviations -1, 0, 0, 1
    assert st.shell50 == (2.0, 2.0)  # two points, both at R = 2
    assert st.shell95 == (1.0, 3.0)  # ceil(0.95 * 4) = 4 points
    assert [s for _, _, s in st.shells] == [0.5, 1.0, 0.25]  # closed shells [a, b]
    assert st.quantiles["50%"] == 2.0


def test_narrowest_shell_and_share():
    R = np.array([0.0, 10.0, 10.5, 11.0, 11.2, 30.0])
    assert narrowest_shell(R, 0.5) == (10.5, 11.2)  # 3 points: spans 10.5-11.2 = 0.7 beat 10-11 = 1.0
    assert shell_share(R, 10.0, 11.0) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="fraction"):
        narrowest_shell(R, 0.0)


def test_histogram_raises_r_max_above_the_largest_radius():
    hist = histogram(np.array([1.0, 40.0]), width=0.5, r_max=35.0)
    assert hist.adapted
    assert hist.r_max == 40.5
    assert hist.counts[-1] == 1
    assert hist.counts[2] == 1
    assert hist.counts.sum() == 2
    assert hist.r_max_requested == 35.0


@pytest.mark.parametrize("d", [3, 10, 256])
def test_chi_reference_peaks_at_sqrt_d_minus_1(d):
    edges = np.arange(0, 40.0001, 0.01)
    ref = chi_counts(edges, d, 1000)
    centres = 0.5 * (edges[:-1] + edges[1:])
    assert centres[np.argmax(ref)] == pytest.approx(math.sqrt(d - 1), abs=0.01)
    assert chi_mode(d) == math.sqrt(d - 1)
    assert ref.sum() == pytest.approx(1000, rel=1e-6)


def test_radii_chunked_equals_unchunked():
    Z = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    whole = np.linalg.norm(Z.astype(np.float64), axis=1)
    for chunk in (1, 7, 1000):
        np.testing.assert_allclose(radii(Z, chunk=chunk), whole, rtol=1e-14)
    with pytest.raises(ValueError, match="2-D"):
        radii(np.zeros(5))


# ---------------------------------------------------------------- axes


def test_axis_histograms_by_hand():
    Z = np.array([[0.1, -0.3], [0.3, 0.6], [0.2, -0.1]])
    h = axis_histograms(Z, width=0.25)
    np.testing.assert_allclose(h.edges, [-0.5, -0.25, 0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(h.counts, [[0, 0, 2, 1, 0], [1, 1, 0, 0, 1]])
    assert h.clipped == 0
    np.testing.assert_array_equal(axis_histograms(Z, width=0.25, chunk=1).counts, h.counts)
    clipped = axis_histograms(Z, width=0.25, max_bins=2)  # intervals [-0.25, 0) and [0, 0.25) only
    np.testing.assert_array_equal(clipped.counts, [[0, 3], [2, 1]])
    assert clipped.clipped == 3  # 0.3, -0.3 and 0.6


def test_off_centre_broad_axis_is_ranked_first():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(4000, 10))
    Z[:, 3] = rng.normal(5.0, 4.0, size=4000)
    st = axis_stats(Z)
    assert st.ranking[0] == 3
    assert np.flatnonzero(st.flagged).tolist() == [3]
    assert st.centre[3] == pytest.approx(5.0, abs=0.3)
    assert st.width[3] == pytest.approx(1.96 * 4.0, rel=0.08)  # half the central 95 %: the post's "width 8"
    assert st.bulk_width == pytest.approx(1.96, rel=0.08)
    assert st.peak[3] == pytest.approx(5.0, abs=1.5)  # the histogram mode is noisier than the median
    rows = st.ranked_rows(3)
    assert next(r["axis"] for r in rows) == 3
    assert len(rows) == 3
    json.dumps(st.to_metrics())


def test_axis_quantiles_chunked_equals_unchunked():
    Z = np.random.default_rng(1).normal(size=(101, 9))
    exact = np.quantile(Z, [0.025, 0.5, 0.975], axis=0)
    for chunk in (1, 5, 10_000):
        np.testing.assert_allclose(axis_quantiles(Z, [0.025, 0.5, 0.975], chunk=chunk), exact)


# ---------------------------------------------------------------- pca


def _rotated_plane():
    """A symmetric 31 x 11 grid (uncorrelated, zero-mean coordinates) on a plane rotated into 6-D and shifted."""
    g1, g2 = np.meshgrid(np.linspace(-3, 3, 31), np.linspace(-1, 1, 11))
    u = np.column_stack([g1.ravel(), g2.ravel()])
    Q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(6, 2)))
    return u, u @ Q.T + np.arange(6.0)


def test_pca_recovers_a_rotated_plane():
    u, Z = _rotated_plane()
    pca, n_fit = fit_pca(Z)
    assert n_fit == len(Z)
    assert pca.n_components_ == 6
    assert pca.explained_variance_ratio_[:2].sum() == pytest.approx(1.0, abs=1e-10)
    assert pca.explained_variance_ratio_[0] > pca.explained_variance_ratio_[1] > 0.05
    P = pca_planes(pca, Z, [(1, 2)])[(1, 2)]
    np.testing.assert_allclose(np.abs(P), np.abs(u), atol=1e-5)  # up to the sign of each component
    np.testing.assert_allclose(project(Z, pca.mean_, pca.components_[:2], chunk=7), P, atol=1e-6)
    with pytest.raises(ValueError, match="components"):
        pca_planes(pca, Z, [(1, 7)])


def test_pca_subset_is_reproducible():
    Z = np.random.default_rng(3).normal(size=(500, 4)) * [3.0, 2.0, 1.0, 0.5]
    a, n_fit = fit_pca(Z, fit_max=100, random_state=7)
    b, _ = fit_pca(Z, fit_max=100, random_state=7)
    c, _ = fit_pca(Z, fit_max=100, random_state=8)
    assert n_fit == 100
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.array_equal(a.mean_, c.mean_)


def test_components_planes_and_windows():
    cum = np.array([0.5, 0.9, 1.0])
    assert [components_for(cum, lv) for lv in (0.5, 0.9, 0.99)] == [1, 2, 3]
    ok, skipped = valid_planes([(1, 2), (1, 18), (8, 35)], 6)
    assert ok == [(1, 2)]
    assert skipped == [(1, 18), (8, 35)]
    assert valid_planes([(0, 5), (3, 3)], 6, first=0) == ([(0, 5)], [(3, 3)])
    P = np.array([[0.0, 0.0], [0.3, 0.0], [0.2, -0.2]])
    assert window(P, 0.25).tolist() == [True, False, True]
    assert window(P, 0.25, centre=(0.3, 0.0)).tolist() == [False, True, True]
    assert window(P, 0.0).all()


# ---------------------------------------------------------------- vae


def _vae_triple():
    mu = np.array([[3.0, 4, 0], [0, 0, 2], [1, 0, 0], [0, 5, 12]])
    offsets = np.array([[0.1, 0, 0], [0, 0, -0.03], [0, 0.5, 0], [-3.0, 0, 0]])
    logvar = np.full((4, 3), -2.0)
    logvar[1, 2] = -10.0
    return mu + offsets, mu, logvar


def test_vae_diagnostics_by_hand():
    z, mu, logvar = _vae_triple()
    d = vae_diagnostics(z, mu, logvar)
    assert (d.logvar_min, d.logvar_max) == (-10.0, -2.0)
    assert d.logvar_mean == pytest.approx((11 * -2 - 10) / 12)
    assert d.max_abs_diff == pytest.approx(3.0)
    assert d.band_count == 2  # 0.1 and 0.5; 0.03 is below the band, 3 above it
    R_z = np.array([math.sqrt(3.1**2 + 16), 1.97, math.sqrt(1.25), math.sqrt(178)])
    R_mu = np.array([5.0, 2.0, 1.0, 13.0])
    r = d.radius
    assert (r.z_max, r.z_min) == (pytest.approx(math.sqrt(178)), pytest.approx(1.0 * math.sqrt(1.25)))
    assert (r.mu_max, r.mu_min, r.mu_mean) == (13.0, 1.0, 5.25)
    assert r.z_mean == pytest.approx(R_z.mean())
    assert r.abs_max == pytest.approx(math.sqrt(178) - 13)
    assert r.abs_mean == pytest.approx(np.abs(R_z - R_mu).mean())
    assert r.rel_max == pytest.approx(math.sqrt(1.25) - 1)  # 0.118 / 1 beats 0.342 / 13
    assert r.rel_mean == pytest.approx((np.abs(R_z - R_mu) / R_mu).mean())
    metrics = d.to_metrics()
    assert metrics["components"] == 12
    assert metrics["band_count"] == 2
    json.dumps(metrics)


def test_kl_per_dimension_and_active_units_by_hand():
    _, mu, logvar = _vae_triple()
    c = 0.5 * (math.exp(-2) - 1 + 2)  # the logvar part of the KL of one component with logvar -2
    expected = [10 / 8 + c, 41 / 8 + c, 148 / 8 + (3 * c + 0.5 * (math.exp(-10) - 1 + 10)) / 4]
    np.testing.assert_allclose(kl_per_dimension(mu, logvar), expected)
    np.testing.assert_allclose(mu_variance(mu)[:2], [1.5, 5.1875])  # [3, 0, 1, 0] and [4, 0, 0, 5]
    flat = np.array([[0.7, 0.05, 0.2], [0.7, -0.05, -0.2]])  # variances 0, 0.0025, 0.04
    d = vae_diagnostics(flat, flat, np.zeros_like(flat), active_threshold=0.01)
    assert d.active.tolist() == [False, False, True]
    assert d.to_metrics()["active_units"] == 1


def test_vae_chunked_equals_unchunked():
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(37, 5)).astype(np.float32) * 3 + 1
    logvar = rng.uniform(-12, 0, size=(37, 5)).astype(np.float32)
    z = mu + np.exp(logvar / 2) * rng.normal(size=(37, 5)).astype(np.float32)
    whole = vae_diagnostics(z, mu, logvar, chunk=10_000)
    for chunk in (1, 4):
        part = vae_diagnostics(z, mu, logvar, chunk=chunk)
        np.testing.assert_allclose(part.kl_per_dim, whole.kl_per_dim, rtol=1e-12)
        np.testing.assert_allclose(part.mu_variance, whole.mu_variance, rtol=1e-12)
        np.testing.assert_allclose(part.mu_variance, np.var(mu.astype(np.float64), axis=0), rtol=1e-12)
        assert part.logvar_mean == pytest.approx(whole.logvar_mean, rel=1e-12)
        assert (part.band_count, part.max_abs_diff) == (whole.band_count, whole.max_abs_diff)
        assert vars(part.radius) == pytest.approx(vars(whole.radius), rel=1e-12)


def test_compare_radii_rejects_mismatch():
    with pytest.raises(ValueError, match="one length"):
        compare_radii(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="shape"):
        vae_diagnostics(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 3)))


# ---------------------------------------------------------------- sections


def _latents(vae: bool, n: int = 300, z_dim: int = 10, seed: int = 0) -> Latents:
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, z_dim)).astype(np.float32)
    mu[:, 3] = rng.normal(5.0, 4.0, size=n)
    labels = rng.integers(0, 3, size=n)
    meta = {"label_names": ["a", "b", "c"], "kind": "vae" if vae else "ae"}
    if not vae:
        return Latents(z=mu, index=np.arange(n), labels=labels, meta=meta)
    logvar = rng.uniform(-14, -6, size=(n, z_dim)).astype(np.float32)
    z = mu + np.exp(logvar / 2) * rng.normal(size=(n, z_dim)).astype(np.float32)
    return Latents(z=z, index=np.arange(n), mu=mu, logvar=logvar, labels=labels, meta=meta)


def _memmapped(lat: Latents, tmp_path) -> Latents:
    """The same latents as read-only memory maps, like a loaded latents folder."""
    arrays = {}
    for name in ("z", "mu", "logvar"):
        if getattr(lat, name) is not None:
            np.save(tmp_path / f"{name}.npy", getattr(lat, name))
            arrays[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    return Latents(index=lat.index, labels=lat.labels, meta=lat.meta, **arrays)


def _render(section) -> None:
    """Draw every figure (warnings at draw time fail the test too)."""
    for item in section.figures:
        item.figure.savefig(io.BytesIO(), format="png", dpi=30)
        assert item.caption


def test_sections_on_ae_latents():
    ctx = Context(latents=_latents(vae=False))
    rad = radius_section.run(ctx, radius_section.Config())
    assert [f.name for f in rad.figures] == ["radius", "radius-fine"]
    assert rad.metrics["mu"] is None
    assert rad.metrics["n"] == 300
    assert any("scaled by sqrt(10/256)" in n for n in rad.notes)  # the 256-dim shells adapted to z_dim 10
    ax = axes_section.run(ctx, axes_section.Config())
    assert [f.name for f in ax.figures] == ["all", "chosen"]
    assert ax.metrics["ranked"][0]["axis"] == 3
    assert ax.metrics["chosen"][0] == 3
    assert len(ax.tables[0].rows) >= 1
    pca = pca_section.run(ctx, pca_section.Config())
    assert [f.name for f in pca.figures][:2] == ["variance", "pc1-pc2"]
    assert pca.figures[-1].name.startswith("axes-3-")  # the most off-centre axis in the plane of original axes
    assert any("(1, 18)" in n and "(8, 35)" in n for n in pca.notes)  # planes beyond z_dim 10, skipped
    assert pca.metrics["planes"] == [[1, 2]]
    vae = vae_section.run(ctx, vae_section.Config())
    assert vae.skipped
    assert vae.notes
    assert not vae.figures
    for s in (rad, ax, pca):
        assert s.summary
        assert json.dumps(s.metrics)
        _render(s)


def test_sections_on_vae_latents(tmp_path):
    ctx = Context(latents=_memmapped(_latents(vae=True, z_dim=40), tmp_path))
    vae = vae_section.run(ctx, vae_section.Config())
    assert not vae.skipped
    assert [f.name for f in vae.figures] == ["kl-active", "logvar-hist"]
    assert vae.tables[0].columns == ["quantity", "ours"]  # z_dim 40: the CelebA (z_dim 256) column is left out
    assert "left out" in vae.tables[0].caption
    assert vae.metrics["logvar"]["n_components"] == 300 * 40
    assert vae.metrics["logvar"]["band_count"] == 0  # logvar lies in [-14, -6]: none in [-3, 5]
    assert vae.metrics["heads"] is None  # bare latents: no model, no head norms
    assert vae.metrics["logvar_min"] >= -14
    assert vae.metrics["logvar_max"] <= -6
    assert vae.metrics["radius"]["rel_mean"] < 1e-2
    assert vae.metrics["active_units"] == 40
    assert vae.metrics["kl_weight"] is None
    rad = radius_section.run(ctx, radius_section.Config(fine_width=None))
    assert [f.name for f in rad.figures] == ["radius"]
    assert rad.metrics["mu"]["n"] == 300
    pca = pca_section.run(ctx, pca_section.Config(zooms=(0.0, 1.0), fit_max=100, axis_planes=((0, 1), (0, 40))))
    assert [f.name for f in pca.figures] == ["variance", "pc1-pc2", "pc1-pc18", "pc8-pc35", "axes-0-1"]
    assert pca.metrics["n_fit"] == 100
    assert any("(0, 40)" in n for n in pca.notes)
    json.dumps([vae.metrics, rad.metrics, pca.metrics])
    for s in (vae, rad, pca):
        _render(s)


def test_radius_section_notes_points_beyond_r_max():
    lat = Latents(z=np.array([[3.0, 4.0], [30.0, 40.0]], dtype=np.float32), index=np.arange(2))
    s = radius_section.run(Context(latents=lat), radius_section.Config(r_max=35.0, shells_dim=0))
    assert any("beyond r_max" in n for n in s.notes)
    assert s.metrics["r_max"] == 50.5
    assert s.metrics["counts"][-1] == 1
    with pytest.raises(ConfigError, match="width"):
        radius_section.run(Context(latents=lat), radius_section.Config(width=0.0))


def test_pca_section_skips_points_without_spread():
    lat = Latents(z=np.ones((5, 4), dtype=np.float32), index=np.arange(5))
    s = pca_section.run(Context(latents=lat), pca_section.Config())
    assert s.skipped
    assert "2 distinct points" in s.notes[0]
    with pytest.raises(ValueError, match="distinct"):
        fit_pca(np.ones((5, 4)))


def test_section_configs_reject_bad_values():
    ctx = Context(latents=_latents(vae=True, n=20, z_dim=4))
    with pytest.raises(ConfigError, match="pairs"):
        pca_section.run(ctx, pca_section.Config(planes=((1, 2, 3),)))
    with pytest.raises(ConfigError, match="band"):
        vae_section.run(ctx, vae_section.Config(band=(2.0, 0.05)))
    with pytest.raises(ConfigError, match="tail"):
        axes_section.run(ctx, axes_section.Config(tail=0.6))
