"""The mutual information between x and z of a VAE, estimated from its encoder outputs (minibatch estimator).

I(x; z) = E_x[KL(q(z|x) || q(z))], with q(z) the aggregate posterior. It is the part of the KL term (the rate)
that carries information about x: KL = I(x; z) + KL(q(z) || p(z)) (Hoffman & Johnson 2016, "ELBO surgery").
Posterior collapse shows as I(x; z) -> 0 with active units -> 0 (He et al. 2019, "Lagging inference networks";
their ``calc_mi`` is the estimator used here, its first term taken at the sampled z: see ``_batch_mi``). Over a
batch of B points, one z_i ~ q(z|x_i) each:

    I ~ mean_i [ log q(z_i | x_i) - log( 1/B sum_j q(z_i | x_j) ) ]

The aggregate density is a mixture of the batch's B posteriors, so the estimate is at most log B: a posterior so
narrow that each z_i is far more likely under its own x_i than any other (a tiny-KL VAE, logvar ~ -14) gives
log B, the estimator's ceiling, not the true (much larger) information. Batches are averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from zspace.analyses.vae import check_pair


@dataclass
class MutualInformation:
    """``estimate`` in nats (mean over batches), its ``ceiling`` log(batch), and ``batches`` used."""

    estimate: float
    ceiling: float
    batch: int
    batches: int

    @property
    def at_ceiling(self) -> bool:
        """Whether the estimate is within 1 % of log(batch): the true value may be far larger."""
        return self.estimate >= 0.99 * self.ceiling


def _batch_mi(mu: np.ndarray, logvar: np.ndarray, z: np.ndarray) -> float:
    """The estimator on one batch: mu, logvar, z of shape (B, d), float64.

    E log q(z_i | x_i) is taken at the sampled z_i (He et al. take its expectation, the negative entropy): the same
    mean, but the noise of the sample, 0.5 |eps|^2 - d / 2, then cancels against the aggregate term, so the
    estimate never exceeds log B."""
    b, d = mu.shape
    log_2pi = math.log(2 * math.pi)
    var = np.exp(logvar)  # (B, d)
    log_q = np.empty((b, b))  # log q(z_i | x_j)
    for i in range(b):
        dev = z[i][None, :] - mu  # (B, d)
        log_q[i] = -0.5 * (dev**2 / var).sum(axis=1) - 0.5 * (d * log_2pi + logvar.sum(axis=1))
    log_qz = logsumexp(log_q, axis=1) - math.log(b)  # (B,) log of the aggregate posterior at z_i
    return float(np.mean(np.diag(log_q) - log_qz))


def mutual_information(
    mu: np.ndarray, logvar: np.ndarray, *, batch: int = 512, max_batches: int = 20, seed: int = 0
) -> MutualInformation:
    """Minibatch estimate of I(x; z) from encoder outputs.

    Parameters
    ----------
    mu, logvar : ndarray of shape (n_samples, z_dim)
    batch : points per batch (the estimate's ceiling is log(batch)); at most n_samples.
    max_batches : batches drawn (random, disjoint); the estimate is their mean.
    seed : seeds the batches and the draws z ~ q(z|x).
    """
    mu, logvar = check_pair(mu, logvar, "logvar")
    n = len(mu)
    if n < 2:
        raise ValueError(f"mutual information needs at least 2 points, got {n}")
    if batch < 2 or max_batches < 1:
        raise ValueError(f"batch must be >= 2 and max_batches >= 1, got {batch} and {max_batches}")
    b = min(batch, n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    k = max(1, min(max_batches, n // b))
    values = []
    for i in range(k):
        rows = np.sort(order[i * b : (i + 1) * b])
        m = np.asarray(mu[rows], dtype=np.float64)
        lv = np.asarray(logvar[rows], dtype=np.float64)
        z = m + np.exp(0.5 * lv) * rng.standard_normal(m.shape)
        values.append(_batch_mi(m, lv, z))
    return MutualInformation(float(np.mean(values)), math.log(b), b, k)
