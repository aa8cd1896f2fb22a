"""The hierarchical models with each customer's latents integrated out (the default fit) against the
latent-variable NUTS (``method="latent"``, the oracle): population parameters and per-customer predictions
on a small simulated problem, pairing of per-draw latents, save/load. The customers buy often and mostly
drop out within the observation period, so that 500 of them pin the population covariance down to the
range the rule resolves (less informative customers need thousands: they fall back to latent NUTS).
The same comparison on 2,000 less informative customers with longer chains is
validation/marginal_vs_latent_simulated.py; on the CDNOW sample, validation/marginal_vs_latent.py."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.simulate import simulate_hierarchical_paretonbd

B_TRUE = np.array([[0.0, -2.5], [0.5, -0.4]])
COV_TRUE = np.array([[0.8**2, 0.3 * 0.8 * 0.7], [0.3 * 0.8 * 0.7, 0.7**2]])


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(21)
    n = 500
    x = rng.normal(size=n)
    T = np.round(rng.uniform(30, 52, size=n))
    sim = simulate_hierarchical_paretonbd(T, B_TRUE, COV_TRUE, covariates=np.column_stack([np.ones(n), x]), rng=rng)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": sim["frequency"], "recency": sim["recency"],
                       "T": T, "x": x})
    df.attrs["time_unit"] = "W"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # short chains
        marginal = bc.HierarchicalParetoNBDModel(covariates=["x"]).fit(
            df, draws=300, tune=200, chains=2, random_seed=1, progressbar=False)
        latent = bc.HierarchicalParetoNBDModel(covariates=["x"]).fit(
            df, method="latent", draws=300, tune=300, chains=2, random_seed=2, progressbar=False)
    return marginal, latent, df


def test_marginal_fit_recovers_the_simulated_population_and_agrees_with_latent_nuts(fits):
    marginal, latent, _ = fits
    assert marginal.fit_method == "nuts" and latent.fit_method == "latent"
    assert marginal.diagnostics["latents"] == "integrated"
    assert marginal.diagnostics["divergences"] == 0 and marginal.diagnostics["max_r_hat"] < 1.02
    coef = marginal.posterior["coefficients"]
    mean, sd = coef.mean(("chain", "draw")).values, coef.std(("chain", "draw")).values
    assert np.all(np.abs(mean - B_TRUE) < 3.5 * sd), (mean, sd)
    for name in ("coefficients", "sigma", "correlation"):
        a, b = marginal.posterior[name], latent.posterior[name]
        gap = np.abs(a.mean(("chain", "draw")).values - b.mean(("chain", "draw")).values)
        # both short runs: their means differ by Monte Carlo error, a small fraction of the posterior sd
        assert np.all(gap < 0.35 * b.std(("chain", "draw")).values), (name, gap)


def test_predictions_equal_the_latent_draws_monte_carlo(fits):
    marginal, latent, df = fits
    for quantity in (lambda m: m.probability_alive(), lambda m: m.expected_purchases(26.0)):
        a = quantity(marginal).mean(("chain", "draw")).values
        b = quantity(latent).mean(("chain", "draw")).values
        scale = np.abs(b).mean()
        assert np.abs(a - b).mean() < 0.03 * scale
        assert abs(a.mean() - b.mean()) < 0.02 * scale


def test_per_draw_latents_are_paired_across_predictions_and_subsets(fits):
    marginal, _, df = fits
    rates = marginal.rates(df.iloc[[3, 40, 7]])
    alive = marginal.probability_alive()
    assert "log_lambda" not in marginal.posterior
    np.testing.assert_array_equal(marginal.probability_alive(df.iloc[[3, 40, 7]]).values,
                                  alive.values[..., [3, 40, 7]])
    np.testing.assert_array_equal(marginal.rates(df.iloc[[40]])["lam"].values[..., 0], rates["lam"].values[..., 1])
    # the draws differ between customers and between posterior draws (the latents are sampled, not a mean)
    assert np.unique(rates["lam"].values[..., 0]).size > 0.9 * rates["lam"].values[..., 0].size


def test_node_expectations_equal_the_sampled_latents_on_average(fits):
    """P(alive) per draw is E[P(alive | rates) | history, population draw] by the rule's nodes: its mean over
    the draws equals that of P(alive) at the sampled latents (importance resampling) within MC error."""
    from bayesclv.formulas import individual_paretonbd

    marginal, _, df = fits
    alive = marginal.probability_alive().values
    rates = marginal.rates()
    sampled = individual_paretonbd.probability_alive(df["frequency"].to_numpy(), df["recency"].to_numpy(),
                                                     df["T"].to_numpy(), rates["lam"].values, rates["mu"].values)
    draws = sampled.shape[0] * sampled.shape[1]
    error = sampled.std(axis=(0, 1)) / np.sqrt(draws)
    gap = np.abs(alive.mean(axis=(0, 1)) - sampled.mean(axis=(0, 1)))
    assert np.all(gap <= 5 * error + 1e-3), gap.max()
    # an expectation has no sampling noise: its spread over draws is the population's, below the latents'
    assert alive.std(axis=(0, 1)).mean() < 0.5 * sampled.std(axis=(0, 1)).mean()


def _population_frame_integrals(row, mean, chol, horizon, nodes):
    """``int g(theta) L(theta) N(theta; mean, Sigma) dtheta`` for g = 1, P(alive), expected purchases by an
    ``nodes x nodes`` Gauss-Legendre product rule on [-12, 12]^2 of the population's frame (standard normal
    coordinates of N(mean, Sigma): no knowledge of the rule's frames), vectorised over the nodes."""
    from bayesclv.formulas import NP
    from bayesclv.formulas import individual_paretonbd as formulas

    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = 12.0 * u, 12.0 * w
    u0, u1 = np.meshgrid(u, u, indexing="ij")
    lam = np.exp(mean[0] + chol[0, 0] * u0)
    mu = np.exp(mean[1] + chol[1, 0] * u0 + chol[1, 1] * u1)
    x, t_x, T = row.frequency, row.recency, row["T"]
    density = np.exp(formulas.loglik(x, t_x, T, lam, mu, xp=NP) - 0.5 * (u0 * u0 + u1 * u1)) * np.outer(w, w)
    return np.array([density.sum(), (density * formulas.probability_alive(x, t_x, T, lam, mu)).sum(),
                     (density * formulas.expected_purchases(horizon, x, t_x, T, lam, mu)).sum()])


def test_node_expectations_equal_brute_force_quadrature(fits):
    """P(alive) and expected purchases (each alone and both in one pass) of a few customers at one posterior draw
    against brute-force quadrature of L(theta) N(theta; m_i, Sigma) g(theta) in the population's frame (a
    400^2-node Gauss-Legendre product rule, its own error bounded by a 600^2-node one) to 1e-6 (relative, or 1e-7
    absolute for the tiny values of customers without repeat purchases); unconditional = given alive x P(alive)."""
    marginal, _, df = fits
    alive, expected = marginal.probability_alive(), marginal.expected_purchases(26.0)
    given = marginal.expected_purchases(26.0, given_alive=True)
    np.testing.assert_allclose(given.values * alive.values, expected.values, rtol=1e-12)
    # both from one pass of the node weights, for all customers and for a subset
    for rows in (slice(None), [40, 3, 7]):
        together = marginal.customer_predictions(26.0, None if rows == slice(None) else df.iloc[rows])
        np.testing.assert_allclose(together["probability_alive"].values, alive.values[..., rows], rtol=1e-12)
        np.testing.assert_allclose(together["expected_purchases"].values, expected.values[..., rows], rtol=1e-12)
    post = marginal.posterior.isel(chain=1, draw=123)
    sd, rho = post["sigma"].values, float(post["correlation"])
    chol = np.linalg.cholesky(np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]]))
    z = (df["x"].to_numpy() - df["x"].mean()) / df["x"].std()
    for i in (0, 3, 7, 100):
        mean = post["intercept"].values + z[i] * post["slopes"].values[0]
        coarse, fine = (_population_frame_integrals(df.iloc[i], mean, chol, 26.0, m) for m in (400, 600))
        np.testing.assert_allclose(coarse[1:] / coarse[0], fine[1:] / fine[0], rtol=1e-9)  # the reference's error
        norm, p, e = fine
        assert alive.values[1, 123, i] == pytest.approx(p / norm, rel=1e-6, abs=1e-7)
        assert expected.values[1, 123, i] == pytest.approx(e / norm, rel=1e-6, abs=1e-7)


def test_a_saved_marginal_fit_predicts_the_same(fits, tmp_path):
    marginal, _, _ = fits
    marginal.save(tmp_path / "m.nc")
    loaded = bc.load(tmp_path / "m.nc")
    # equal up to rounding: the vectorised node sums may associate differently in another process's arrays
    np.testing.assert_allclose(loaded.probability_alive().values, marginal.probability_alive().values, rtol=1e-13)


def test_method_latent_is_only_for_the_individual_level_models(fits):
    _, _, df = fits
    with pytest.raises(ValueError, match="method='latent'"):
        bc.ParetoNBDModel().fit(df, method="latent")
    with pytest.raises(ValueError, match="method='latent' for sampler"):
        bc.HierarchicalParetoNBDModel().fit(df, sampler="pymc")


def test_few_customers_fall_back_to_latent_nuts_with_a_warning():
    """With 60 customers the posterior of Sigma spans more than the largest rule resolves."""
    rng = np.random.default_rng(3)
    n = 60
    T = np.round(rng.uniform(30, 52, size=n))
    sim = simulate_hierarchical_paretonbd(T, B_TRUE[:1], COV_TRUE, covariates=np.ones((n, 1)), rng=rng)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": sim["frequency"], "recency": sim["recency"],
                       "T": T})
    df.attrs["time_unit"] = "W"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = bc.HierarchicalParetoNBDModel().fit(df, draws=30, tune=30, chains=1, random_seed=1,
                                                    progressbar=False)
    assert any("method='latent'" in str(w.message) for w in caught)
    assert model.diagnostics["latents"].startswith("sampled")
    assert model.posterior["log_mu"].sizes["customer_id"] == n
    assert np.isfinite(model.probability_alive().values).all()


class _Stop(Exception):
    pass


def test_the_integrated_fit_has_its_own_sampler_defaults_and_honours_a_users(monkeypatch):
    """The integrated fit's own warm-up (200 steps from 10,000 customers on, 300 below) and target acceptance
    (0.65 from 10,000 customers on, the model's 0.8 below) unless given; a user's settings reach it unchanged
    (nothing is sampled here)."""
    from bayesclv.models import inference
    from bayesclv.models.marginal_settings import marginal_target_accept, marginal_tune

    seen = {}

    def stop(model, df, **kwargs):
        seen.clear()
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(inference, "fit_marginal", stop)
    df = pd.DataFrame({"customer_id": np.arange(4), "frequency": [0, 1, 2, 0], "recency": [0.0, 3.0, 10.0, 0.0],
                       "T": [20.0, 20.0, 30.0, 30.0]})
    df.attrs["time_unit"] = "W"
    model = bc.HierarchicalParetoNBDModel()
    with pytest.raises(_Stop):
        model.fit(df, progressbar=False)
    assert (seen["target_accept"], seen["tune"]) == (None, None)  # resolved by fit_marginal from the rows
    assert model.default_target_accept == 0.8  # the latent-variable fit's (and the fallback's) default
    assert marginal_target_accept(model, 23_570) == 0.65
    assert marginal_target_accept(model, 2_357) == 0.8
    assert marginal_target_accept(model, 23_570, None) == 0.8  # the joint spend models' graph
    assert (marginal_tune(23_570), marginal_tune(2_357), marginal_tune(23_570, None)) == (200, 300, 300)
    with pytest.raises(_Stop):
        model.fit(df, target_accept=0.9, tune=500, progressbar=False)
    assert (seen["target_accept"], seen["tune"]) == (0.9, 500)


def test_loo_terms_integrate_the_latents_out_and_sum_to_the_fits_likelihood(fits):
    """Each customer's term is log p(y_i | population draw), the latents integrated out by the fit's own rule:
    at a draw the terms sum to the fit's kernel total over its rows and frames (priors aside) to 1e-8, and a
    subset of customers gets the same terms."""
    import json

    from bayesclv.formulas import _marginal as kernel
    from bayesclv.models.marginal import REFERENCE_ATTR, LatentPosterior, MarginalGraph

    marginal, _, df = fits
    loglik = marginal.log_likelihood()
    assert loglik.dims == ("chain", "draw", "customer_id")
    reference = json.loads(marginal.posterior.attrs[REFERENCE_ATTR])
    graph = MarginalGraph(marginal, marginal.data, nodes=reference["nodes"])
    graph.adapt(*(np.array(reference[k]) for k in ("coefficients", "offset", "sigma")), reference["rho"])
    tables = [graph.tables[k].get_value()
              for k in ("centre", "chol", "log_terms", "top_terms", "powers", "correction", "node_mass")]
    params = LatentPosterior.population_arrays(marginal.posterior, False)
    for chain, draw in ((0, 0), (1, 123)):
        total = kernel.marginal_loglik(*(params[k][chain, draw] for k in ("coefficients", "offset", "sigma")),
                                       float(params["correlation"][chain, draw]), graph.rows.X, graph.rows.group,
                                       graph.rows.weight, *tables)[0]
        assert loglik.values[chain, draw].sum() == pytest.approx(total, abs=1e-8)
    np.testing.assert_array_equal(marginal.log_likelihood(df.iloc[[40, 3]]).values, loglik.values[..., [40, 3]])


def test_psis_loo_of_the_integrated_terms_is_reliable_and_the_same_for_both_fits(fits):
    """PSIS-LOO with the integrated terms has every Pareto k below 0.7; terms at each draw's sampled latents
    (the old pointwise log-likelihood) leave a third of the customers above it and overstate the elpd. The
    latent-variable fit's terms are the same integrated quantity (frames at its posterior mean): its elpd
    agrees with the integrated fit's within Monte Carlo error."""
    import arviz_stats as azs
    import xarray as xr

    from bayesclv.formulas import NP, individual_paretonbd

    marginal, latent, df = fits
    integrated = azs.loo(marginal.to_datatree(), pointwise=True)
    assert float(integrated.pareto_k.max()) < 0.7
    rates = marginal.rates()
    conditional = individual_paretonbd.loglik(*(df[c].to_numpy(float) for c in ("frequency", "recency", "T")),
                                              rates["lam"].values, rates["mu"].values, xp=NP)
    tree = marginal.to_datatree(log_likelihood=False)
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({"frequency": (rates["lam"].dims, conditional)}))
    old = azs.loo(tree, pointwise=True)
    assert int((old.pareto_k > 0.7).sum()) > 0.3 * len(df)
    assert old.elpd > integrated.elpd + 100  # the customer's own latents flatter their own history
    other = azs.loo(latent.to_datatree(), pointwise=True)
    assert float(other.pareto_k.max()) < 0.7
    assert other.elpd == pytest.approx(integrated.elpd, abs=2.0)


def test_the_reference_search_reaches_the_mode_from_afar(fits):
    """The search's box doubles after a step that ends on its edge: from a start 2.5 units off in the dropout
    intercept it reaches the mode within 6 rounds of boxes that start at 0.2 wide (a box that only shrinks
    moves 1.2 at most; on CDNOW full such a search stopped 31 nats below the HB BG/NBD's mode and the rule's
    range wall then cut into its posterior). The mode: its gradient is zero in the Laplace approximation's
    units, and the density there is no lower than at the default search's point."""
    from bayesclv.models.marginal import MarginalGraph

    marginal, _, _ = fits
    graph = MarginalGraph(marginal, marginal.data)
    x0 = graph.reference_point()
    value0, gradient0 = graph.logp_grad(x0)
    scale = np.sqrt(np.diag(graph.laplace))
    assert np.abs(gradient0 * scale).max() < 1e-2
    start = x0.copy()
    start[1] -= 2.5  # the dropout intercept (intercept[purchase], intercept[dropout], slopes, chol)
    x = graph._optimise(start, 6, 0.2, 2e-3)
    value, gradient = graph.logp_grad(x)
    assert np.abs((x - x0) / scale).max() < 0.05, (x - x0) / scale
    assert np.abs(gradient * scale).max() < 1e-2 and value > value0 - 1e-3
