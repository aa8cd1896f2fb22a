"""The hierarchical models' pointwise log-likelihood for LOO (latents integrated out) against an independent
2-D integration, and the reference a latent-variable fit's terms are built at. The fitted models' terms (their
sum is the fit's log-likelihood, PSIS is reliable, both fits agree) are in test_marginal_model.py and
test_joint_spend.py, on those files' fits."""

from __future__ import annotations

import numpy as np
import pytest

from bayesclv.formulas import _marginal_rule as rule
from bayesclv.models.integrated_loglik import latent_fit_reference, rule_frames

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference_hierarchical as reference
except ImportError:  # pragma: no cover
    import reference_hierarchical as reference

# extremes included: no repeat purchase, 50 purchases over 1,000 weeks, a last purchase at the end of the window
HISTORIES = np.array([[0.0, 0.0, 39.0], [2.0, 30.0, 39.0], [50.0, 990.0, 1000.0], [1.0, 2.0, 1000.0],
                      [20.0, 38.5, 39.0]])
FAMILIES = [(rule.PARETONBD, reference.PARETONBD, np.array([-2.0, -3.0])),
            (rule.BGNBD, reference.BGNBD, np.array([-2.0, -1.5]))]


@pytest.mark.parametrize(("code", "family", "mean"), FAMILIES, ids=["paretonbd", "bgnbd"])
def test_pointwise_term_equals_a_tensor_grid_integration(code, family, mean):
    """``log int L_i(theta) N(theta; m, Sigma) dtheta`` at a population a little off the frames' reference (as a
    posterior draw is), by the fit's 10 x 10 rule with its correction, to 2e-6 nats against a 300^2-node
    Gauss-Legendre grid in the integrand's own Laplace frame (itself converged: 200^2 nodes agree to 1e-12)."""
    sigma, rho = np.array([1.0, 1.2]), 0.3
    frames = rule_frames(code, HISTORIES, np.tile(mean + 0.05, (len(HISTORIES), 1)), 1.05 * sigma, rho - 0.05, 10)
    n = len(HISTORIES)
    values = frames.loglik(np.arange(n), np.ones((n, 1)), np.zeros(n, dtype=np.int64), mean[None, None, :],
                           np.zeros((1, 1, 2)), sigma[None, :], np.array([rho]))[:, 0]
    off = rho * sigma[0] * sigma[1]
    cov = np.array([[sigma[0] ** 2, off], [off, sigma[1] ** 2]])
    for history, value in zip(HISTORIES, values, strict=True):
        fine = reference.marginal_row_loglik(family, *history, mean, cov, nodes=300)
        assert reference.marginal_row_loglik(family, *history, mean, cov, nodes=200) == pytest.approx(fine, abs=1e-12)
        assert value == pytest.approx(fine, abs=2e-6), history


def test_a_latent_fits_reference_is_its_posterior_mean_with_nodes_for_its_range():
    rng = np.random.default_rng(0)
    sigma = np.abs(1.0 + 0.05 * rng.normal(size=(2, 50, 2)))
    params = {"coefficients": rng.normal(size=(2, 50, 2, 2)), "offset": np.zeros((2, 50, 1, 2)), "sigma": sigma,
              "correlation": 0.2 + 0.01 * rng.normal(size=(2, 50)),
              "sample": np.arange(100).reshape(2, 50)}
    ref = latent_fit_reference(params, 2_000)
    np.testing.assert_allclose(ref["coefficients"], params["coefficients"].mean(axis=(0, 1)))
    np.testing.assert_allclose(ref["sigma"], sigma.mean(axis=(0, 1)))
    assert ref["nodes"] == 10  # a narrow posterior: the smallest rule for 2,000 rows resolves it
    params["sigma"] = sigma * np.exp(rng.normal(scale=0.8, size=(2, 50, 1)))  # a wide one needs more nodes
    assert latent_fit_reference(params, 2_000)["nodes"] > 10
