"""The minibatch estimate of I(x; z) and the sweep's latent numbers on constructed encoders with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zspace.analyses.mutual_info import mutual_information
from zspace.studies.kl_sweep import latent_metrics, summarize


def test_a_posterior_equal_to_the_prior_carries_no_information():
    n, d = 2048, 6
    mi = mutual_information(np.zeros((n, d)), np.zeros((n, d)), batch=512, seed=0)
    assert abs(mi.estimate) < 0.05  # q(z|x) = N(0, I) for every x: I = 0, up to sampling noise
    assert mi.ceiling == pytest.approx(math.log(512))
    assert mi.batches == 4


def test_a_gaussian_channel_has_half_log_one_plus_snr():
    """mu ~ N(0, 1), q(z|x) = N(mu, 1/4): I(x; z) = 0.5 log(1 + 1 / 0.25) = 0.805 nats."""
    rng = np.random.default_rng(1)
    mu = rng.standard_normal((8192, 1))
    mi = mutual_information(mu, np.full_like(mu, math.log(0.25)), batch=1024, max_batches=8, seed=2)
    assert mi.estimate == pytest.approx(0.5 * math.log(5.0), abs=0.06)
    assert not mi.at_ceiling


def test_a_deterministic_encoder_reaches_the_ceiling():
    rng = np.random.default_rng(0)
    mi = mutual_information(rng.standard_normal((1024, 4)), np.full((1024, 4), -30.0), batch=256, seed=0)
    assert mi.at_ceiling
    assert mi.estimate == pytest.approx(math.log(256), abs=0.05)  # log B, up to the noise of the own-x term


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        mutual_information(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="shape"):
        mutual_information(np.zeros((5, 3)), np.zeros((5, 2)))


def test_latent_metrics_of_the_prior_and_of_a_known_deterministic_encoder():
    rng = np.random.default_rng(0)
    n, d = 4000, 8
    prior = latent_metrics(rng.standard_normal((n, d)), np.zeros((n, d)), np.zeros((n, d)), mi_batch=256, seed=0)
    assert prior["active_units"] == 0  # mu does not move with x
    assert prior["rate"] == pytest.approx(0.0, abs=1e-12)  # KL(N(0, I) || N(0, I)) = 0
    # mu with standard deviations 2, 1, 0.5, 0.2, 0.11 and three of 0.05 (variance 0.0025 < 0.01): 5 active units
    scales = np.array([2.0, 1.0, 0.5, 0.2, 0.11, 0.05, 0.05, 0.05])
    mu = rng.standard_normal((n, d)) * scales
    logvar = np.full((n, d), -20.0)
    m = latent_metrics(mu, mu, logvar, mi_batch=256, seed=0)
    assert m["active_units"] == 5
    # KL per dimension = 0.5 * (E mu^2 + e^-20 - 1 + 20), largest first
    want = np.sort(0.5 * ((mu**2).mean(axis=0) + math.exp(-20.0) - 1.0 + 20.0))[::-1]
    np.testing.assert_allclose(m["kl_per_dim"], want, atol=1e-5)
    assert m["rate"] == pytest.approx(want.sum(), rel=1e-6)
    ae = latent_metrics(mu, None, None, mi_batch=256, seed=0)
    assert ae["active_units"] == 5
    assert ae["rate"] is None
    assert ae["mi"] is None


def test_the_automatic_summary_reads_the_table():
    rows = [
        {"weight": 0.0, "active_units": 256, "prior_fid": 90.0, "gmm_fid": 15.0},
        {"weight": 1e-3, "active_units": 256, "prior_fid": 80.0, "gmm_fid": 14.0},
        {"weight": 1.0, "active_units": 240, "prior_fid": 30.0, "gmm_fid": 20.0},
        {"weight": 5.0, "active_units": 200, "prior_fid": 21.5, "gmm_fid": 20.0},  # within 10 %: usable
        {"weight": 20.0, "active_units": 100, "prior_fid": 40.0, "gmm_fid": 39.0},
    ]
    assert summarize(rows) == {"prior_usable_from": 5.0, "collapse_from": 5.0}  # 200 < 0.9 * 256
    rows[3]["active_units"] = 250
    assert summarize(rows)["collapse_from"] == 20.0
    assert summarize([{"weight": 1.0, "active_units": 3, "prior_fid": 50.0, "gmm_fid": 10.0}]) == {
        "prior_usable_from": None,
        "collapse_from": None,
    }


@pytest.mark.parametrize("z_dim", [2, 16, 256])
def test_the_estimate_never_exceeds_log_b(z_dim):
    """Near-deterministic posteriors: the estimate is log B up to a hair, from below, whatever z_dim and seed."""
    rng = np.random.default_rng(z_dim)
    mu = rng.standard_normal((1024, z_dim))
    for seed in range(3):
        mi = mutual_information(mu, np.full_like(mu, -14.0), batch=512, seed=seed)
        assert mi.estimate <= mi.ceiling + 1e-9
        assert mi.at_ceiling


def test_the_prior_is_never_usable_at_the_ae_and_an_ae_only_ladder_draws():
    import io

    from zspace.figures.sweep import against_weight

    rows = [{"weight": 0.0, "active_units": 8, "prior_fid": 10.0, "gmm_fid": 10.0}]
    assert summarize(rows)["prior_usable_from"] is None  # an AE has no prior to sample
    fig = against_weight([0.0], {"KL (rate)": [None], "I(x; z)": [None]}, ylabel="nats", title="t", log_y=True)
    fig.savefig(io.BytesIO(), format="png")  # all values missing: no log axis, no error
