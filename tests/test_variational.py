"""Minibatch ADVI (bayesclv.models.variational) against a model whose posterior is known exactly.

For a Gaussian target every factorised Gaussian approximation at the optimum
of the ELBO has the exact posterior means, and each factor's covariance is
the exact conditional covariance given the other factors' means. The model

    mu ~ N(0, 0.05^2),  a_i ~ N(mu, 1),  b_i ~ N(0, 1),  y_i ~ N(a_i + b_i, 0.5^2)

has a strong prior on ``mu`` (so a wrong ``N/B`` scaling of the batch moves
its mean far off) and a posterior correlation of -0.8 between each
customer's ``a_i`` and ``b_i`` given ``mu`` (so a diagonal local factor
would be wrong).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from bayesclv.models.variational import elbo_converged, fit_minibatch_advi

N, BATCH, PRIOR_SD, NOISE_SD = 2000, 200, 0.05, 0.5


def _model(y_batch):
    with pm.Model(coords={"customer_id": np.arange(len(y_batch))}) as model:
        y = pm.Data("y", y_batch, dims="customer_id")
        mu = pm.Normal("mu", 0.0, PRIOR_SD)
        a = pm.Normal("a", mu, 1.0, dims="customer_id")
        b = pm.Normal("b", 0.0, 1.0, dims="customer_id")
        pm.Normal("obs", a + b, NOISE_SD, observed=y, dims="customer_id")
    return model


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    y = 1.0 + rng.normal(0.0, np.sqrt(2.0 + NOISE_SD**2), size=N)
    approx = fit_minibatch_advi(_model(y[:BATCH]), {"y": y}, steps=20000, batch_size=BATCH, random_seed=4,
                                progressbar=False)
    return y, approx


def test_global_mean_is_the_exact_posterior_mean(fitted):
    y, approx = fitted
    precision = 1.0 / PRIOR_SD**2 + N / (2.0 + NOISE_SD**2)  # y_i ~ N(mu, 2 + noise^2) marginally
    exact = y.sum() / (2.0 + NOISE_SD**2) / precision
    assert exact < 0.75  # the prior pulls it well below the data mean of about 1
    assert float(approx.global_mean["mu"]) == pytest.approx(exact, abs=0.005)  # posterior sd 0.02


def test_local_means_and_covariance_are_exact(fitted):
    y, approx = fitted
    mu = float(approx.global_mean["mu"])
    # given mu: precision of (a, b) is I + 1/noise^2 [[1, 1], [1, 1]]
    noise_precision = 1.0 / NOISE_SD**2
    precision = np.eye(2) + noise_precision
    cov = np.linalg.inv(precision)
    means = np.column_stack([mu + noise_precision * y, noise_precision * y]) @ cov.T
    np.testing.assert_allclose(approx.local_mean, means, atol=0.2)  # local posterior sd 0.75
    assert np.mean(np.abs(approx.local_mean - means)) < 0.045
    diag = np.exp(approx.local_log_diag)
    fitted_cov = np.stack([diag[:, 0] ** 2, diag[:, 0] * approx.local_lower[:, 0],
                           approx.local_lower[:, 0] ** 2 + diag[:, 1] ** 2], axis=1).mean(axis=0)
    np.testing.assert_allclose(fitted_cov, [cov[0, 0], cov[1, 0], cov[1, 1]], atol=0.03)
    assert fitted_cov[1] / np.sqrt(fitted_cov[0] * fitted_cov[2]) == pytest.approx(-0.8, abs=0.05)
    # draws of the approximation have that covariance
    draws = approx.sample(4000, np.random.default_rng(0))
    a, b = draws["a"] - approx.local_mean[:, 0], draws["b"] - approx.local_mean[:, 1]
    sampled = [np.mean(a * a), np.mean(a * b), np.mean(b * b)]
    np.testing.assert_allclose(sampled, fitted_cov, atol=0.01)
    assert draws["mu"].shape == (4000,) and draws["a"].shape == (4000, N)


def test_customers_outside_the_last_tenth_keep_their_fitted_values():
    """15 steps over 10 batches: the last tenth (one step) sees one batch; the others are not reset."""
    rng = np.random.default_rng(5)
    y = rng.normal(1.0, 1.5, size=N)
    approx = fit_minibatch_advi(_model(y[:BATCH]), {"y": y}, steps=15, batch_size=BATCH, random_seed=1,
                                progressbar=False)
    assert np.all(approx.local_mean != 0.0)  # every customer moved from its start (0) in its first visit


def test_elbo_converged_compares_each_batch_with_itself():
    steps = np.arange(1000)
    batches = steps % 10
    composition = 50.0 * batches  # batches differ by far more than the ELBO still rises
    settling = -1000.0 - 1e4 * np.exp(-steps / 50.0)
    assert elbo_converged(settling + composition, batches, 100)[0]
    converged, rise = elbo_converged(-1000.0 + 10.0 * steps + composition, batches, 100)
    assert not converged and rise == pytest.approx(10.0)  # 100 steps x 10 per step / 100 customers
    # a falling ELBO (steps too large) is not convergence either
    assert not elbo_converged(-1000.0 - 10.0 * steps + composition, batches, 100)[0]
    # no batch seen in both windows: not converged
    assert not elbo_converged(np.zeros(20), np.arange(20), 100)[0]


def test_batch_size_must_fit_the_customers():
    with pytest.raises(ValueError, match="batch_size"):
        fit_minibatch_advi(_model(np.zeros(5)), {"y": np.zeros(4)}, steps=1, batch_size=5, progressbar=False)
