"""The series' logvar numbers: every component counted, and the two heads' kernel norms."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.analyses.vae import head_weight_norms, logvar_distribution


def test_logvar_distribution_counts_by_hand():
    logvar = np.array([[-24.6, -13.0, -2.9], [-3.0, 5.0, 5.1], [-0.2, -10.0, -10.1], [0.0, 1.0, -5.0]])
    d = logvar_distribution(logvar, width=1.0, band=(-3.0, 5.0), thresholds=(-10.0, -3.0, 0.0), chunk=2)
    assert d.n_components == 12
    assert d.band_count == 6  # -2.9, -3.0, 5.0, -0.2, 0.0, 1.0 (both ends included)
    assert d.above == {-10.0: 8, -3.0: 6, 0.0: 3}  # > -10: all but -24.6, -13.0, -10.0, -10.1; > 0: 5.0, 5.1, 1.0
    assert d.edges[0] == -25.0
    assert d.edges[-1] >= 5.1
    assert d.counts.sum() == 12
    assert d.counts[0] == 1  # [-25, -24): -24.6
    assert d.counts[int(-10.1 - -25.0)] == 1  # [-11, -10): -10.1
    assert d.counts[int(5.0 - -25.0)] == 2  # [5, 6): 5.0 and 5.1


def test_a_far_outlier_widens_the_intervals_instead_of_allocating():
    logvar = np.array([[-1e9, 0.0], [1.0, 2.0]])
    d = logvar_distribution(logvar, width=0.5)
    assert len(d.counts) <= 10_001
    assert d.counts.sum() == 4


def test_head_weight_norms():
    got = head_weight_norms(np.array([[3.0, 4.0]]), np.array([[0.0, 10.0], [0.0, 0.0]]))
    assert got["mu_head_norm"] == pytest.approx(5.0)
    assert got["logvar_head_norm"] == pytest.approx(10.0)
    assert got["logvar_over_mu"] == pytest.approx(2.0)
