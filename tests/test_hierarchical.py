"""Individual-level hierarchical models: smoke recovery, prediction interface, CLV, errors, save/load,
key drivers. Fits are small latent-variable NUTS runs (``method="latent"``: the prediction interface
on stored per-customer latents; the default fit, latents integrated out, is tests/test_marginal_model.py)
on simulated data (the full recovery study with >= 20 replications is validation/hierarchical_recovery.py)."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from conftest import purchase_pmf

import bayesclv as bc
from bayesclv.errors import DataValidationError
from bayesclv.formulas import individual_bgnbd, individual_paretonbd
from bayesclv.models.latent import centring_weights, customer_arrays, dropout_centring_weights
from bayesclv.plots import plot_key_drivers
from bayesclv.simulate import simulate_gammagamma, simulate_hierarchical_bgnbd, simulate_hierarchical_paretonbd

matplotlib.use("Agg")

B_TRUE = np.array([[-2.3, -3.2], [0.6, -0.5]])  # rows intercept, x; columns purchase, dropout
SD_TRUE = np.array([0.7, 0.6])
COV_TRUE = np.array([[1.0, 0.3], [0.3, 1.0]]) * np.outer(SD_TRUE, SD_TRUE)


def _simulated(simulator, n, seed, coefficients=B_TRUE):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    T = np.round(rng.uniform(30, 52, size=n))
    sim = simulator(T, coefficients, COV_TRUE, covariates=np.column_stack([np.ones(n), x]), rng=rng)
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "frequency": sim["frequency"],
                       "recency": sim["recency"], "T": T, "x": x, "segment": rng.choice(["a", "b"], n)})
    spend = simulate_gammagamma(df["frequency"].to_numpy(), 6.0, 4.0, 15.0, rng=rng)["monetary_value"]
    df["monetary_value"] = spend
    df.attrs["time_unit"] = "W"
    return df


@pytest.fixture(scope="module")
def pareto_fit():
    df = _simulated(simulate_hierarchical_paretonbd, 400, 11)
    model = bc.HierarchicalParetoNBDModel(covariates=["x"])
    with pytest.warns(bc.errors.ConvergenceWarning):  # short chains: ESS below 400 is expected
        model.fit(df, method="latent", draws=200, tune=300, chains=2, random_seed=3, progressbar=False)
    return model, df


@pytest.fixture(scope="module")
def bg_fit():
    df = _simulated(simulate_hierarchical_bgnbd, 150, 12, coefficients=np.array([[-2.0, -1.5], [0.6, -0.5]]))
    model = bc.HierarchicalBetaGeoModel(covariates=["x"], group="segment")
    with pytest.warns(bc.errors.ConvergenceWarning):
        model.fit(df, method="latent", draws=100, tune=150, chains=2, thin=2, random_seed=4, progressbar=False)
    return model, df


def test_smoke_recovery_of_coefficients(pareto_fit):
    model, _ = pareto_fit
    coef = model.posterior["coefficients"]
    mean = coef.mean(("chain", "draw")).values
    sd = coef.std(("chain", "draw")).values
    assert coef.dims == ("chain", "draw", "covariate", "process")
    assert list(coef["covariate"].values) == ["intercept", "x"]
    assert np.all(np.abs(mean - B_TRUE) < 3.5 * sd), (mean, sd)
    assert np.all(sd < 0.5)  # the data inform every coefficient
    assert model.diagnostics["divergences"] == 0


def test_predictions_use_each_customers_rates(pareto_fit):
    model, df = pareto_fit
    rates = model.rates()
    assert set(rates) == {"lam", "mu"} and rates["lam"].dims == ("chain", "draw", "customer_id")
    expected = model.expected_purchases(10.0)
    assert expected.dims == ("chain", "draw", "customer_id")
    assert list(expected["customer_id"].values) == df["customer_id"].tolist()
    row = df.iloc[5]
    direct = individual_paretonbd.expected_purchases(10.0, row["frequency"], row["recency"], row["T"],
                                                     rates["lam"].values[..., 5], rates["mu"].values[..., 5])
    np.testing.assert_allclose(expected.values[..., 5], direct, rtol=1e-12)
    alive = model.probability_alive()
    np.testing.assert_allclose(model.expected_purchases(10.0, given_alive=True) * alive, expected, rtol=1e-12)
    np.testing.assert_allclose(purchase_pmf(model, 10.0, df.iloc[:20], n_max=80).sum(axis=0), 1.0, atol=1e-10)
    sims = model.sample_purchases(10.0, random_seed=1)
    assert sims.attrs["quantity"] == "outcome" and sims.dtype == np.int64
    # the mean simulated count over draws and customers matches the expectation
    assert float(sims.mean()) == pytest.approx(float(expected.mean()), rel=0.1)


def test_clv_with_the_hierarchical_model(pareto_fit):
    model, df = pareto_fit
    spend = bc.GammaGammaModel().fit(df, method="map", progressbar=False)
    clv = bc.customer_lifetime_value(model, spend, horizon=6, time_unit="M", discount_rate=0.01)
    assert clv.dims == ("chain", "draw", "customer_id") and clv.sizes["customer_id"] == len(df)
    assert np.all(np.isfinite(clv.values)) and np.all(clv.values >= 0)
    # zero discount: CLV = spend x expected purchases over the horizon
    flat = bc.customer_lifetime_value(model, spend, df.iloc[:10], horizon=6, time_unit="M", discount_rate=0.0)
    months = 6 * 365.25 / 12 / 7
    purchases = model.expected_purchases(months, df.iloc[:10])
    expected = spend.expected_spend(df.iloc[:10]).isel(chain=0, draw=0, drop=True) * purchases
    np.testing.assert_allclose(flat.values, expected.transpose(*flat.dims).values, rtol=1e-9)
    # discounted: the sum of monthly increments, each discounted at the end of its month
    discounted = bc.customer_lifetime_value(model, spend, df.iloc[:10], horizon=3, time_unit="M",
                                            discount_rate=0.02)
    cum = [model.expected_purchases(k * months / 6, df.iloc[:10]) for k in range(4)]
    by_hand = spend.expected_spend(df.iloc[:10]).isel(chain=0, draw=0, drop=True) * sum(
        (cum[k] - cum[k - 1]) / 1.02**k for k in (1, 2, 3))
    np.testing.assert_allclose(discounted.values, by_hand.transpose(*flat.dims).values, rtol=1e-9)


def test_unknown_customers_and_changed_histories_raise(pareto_fit):
    model, df = pareto_fit
    new = df.iloc[:3].copy()
    new["customer_id"] = ["new1", "new2", "c1"]
    with pytest.raises(DataValidationError) as err:
        model.expected_purchases(5.0, new)
    assert err.value.column == "customer_id" and err.value.rows == ["new1", "new2"]
    changed = df.iloc[:3].copy()
    changed.loc[changed.index[1], "frequency"] += 1
    with pytest.raises(DataValidationError) as err:
        model.probability_alive(changed)
    assert err.value.column == "frequency" and err.value.rows == ["c1"]


def test_save_load_round_trip(pareto_fit, tmp_path):
    model, _ = pareto_fit
    model.save(tmp_path / "hb.nc")
    loaded = bc.load(tmp_path / "hb.nc")
    assert isinstance(loaded, bc.HierarchicalParetoNBDModel) and loaded.covariates == ["x"]
    np.testing.assert_allclose(loaded.expected_purchases(8.0).values, model.expected_purchases(8.0).values)


def test_key_drivers_table_and_forest_plot(pareto_fit):
    model, df = pareto_fit
    table = bc.key_drivers(model, prob=0.9)
    assert list(table.index) == [("x", "purchase"), ("x", "dropout")]
    draws = model.posterior["coefficients"].sel(covariate="x")
    sd_x = df["x"].std()
    purchase = table.loc[("x", "purchase")]
    assert purchase["mean"] == pytest.approx(float(draws.sel(process="purchase").mean()) * sd_x, rel=1e-12)
    assert purchase["lower"] < purchase["mean"] < purchase["upper"]
    assert purchase["p_positive"] > 0.99  # true effect +0.6 on log lambda
    assert table.loc[("x", "dropout"), "p_positive"] < 0.2  # true effect -0.5 on log mu
    per_unit = bc.key_drivers(model, per="unit")
    assert per_unit.loc[("x", "purchase"), "mean"] == pytest.approx(purchase["mean"] / sd_x, rel=1e-12)
    fig = plot_key_drivers(table)
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith("purchase")
    with pytest.raises(ValueError, match="without covariates"):
        bc.key_drivers(_fitted_without_covariates(model))


def _fitted_without_covariates(model):
    other = bc.HierarchicalParetoNBDModel()
    other.idata, other.data, other.time_unit = model.idata, model.data, model.time_unit
    return other


def test_bgnbd_with_groups(bg_fit):
    model, df = bg_fit
    post = model.posterior
    assert post["group_offset"].dims == ("chain", "draw", "group", "process")
    assert list(post["group_offset"]["group"].values) == ["a", "b"]
    assert set(model.rates()) == {"lam", "p"}
    p = model.rates()["p"].values
    assert np.all((p > 0) & (p < 1))
    alive = model.probability_alive()
    assert np.all(alive.sel(customer_id=df.loc[df["frequency"] == 0, "customer_id"].tolist()) == 1.0)
    # new customer at the covariate means: Gauss-Hermite average against Monte Carlo, one draw
    new = model.expected_purchases_new_customer(20.0)
    c, d = 0, 0
    rng = np.random.default_rng(0)
    mu = post["intercept"].values[c, d]
    sd = post["sigma"].values[c, d]
    rho = float(post["correlation"].values[c, d])
    cov = np.array([[1, rho], [rho, 1]]) * np.outer(sd, sd)
    theta = rng.multivariate_normal(mu, cov, size=400_000)
    mc = individual_bgnbd.expected_purchases(20.0, 0.0, 0.0, 0.0, np.exp(theta[:, 0]),
                                             1 / (1 + np.exp(-theta[:, 1])), given_alive=True)
    assert float(new.values[c, d]) == pytest.approx(mc.mean(), abs=4 * mc.std() / np.sqrt(mc.size))


def test_thinning_keeps_every_kth_draw(bg_fit):
    model, _ = bg_fit
    assert model.posterior.sizes["draw"] == 50 and model.idata["sample_stats"].sizes["draw"] == 50
    assert list(model.posterior["draw"].values[:3]) == [0, 2, 4]
    assert model.diagnostics["n_draws"] == 100  # 2 chains x 50 kept draws


def test_centring_weights():
    w = centring_weights(np.array([0.0, 1.0, 4.0, 100.0]), prior_sd=1.5)
    assert w == pytest.approx([0.0, 2.25 / 3.25, 9.0 / 10.0, 225.0 / 226.0])


def test_dropout_centring_weights():
    assert dropout_centring_weights(np.array([0.0, 1.0, 30.0])) == pytest.approx([0.0, 0.5, 0.5])


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")  # the prior is what is tested
@pytest.mark.parametrize("cls", [bc.HierarchicalParetoNBDModel, bc.HierarchicalBetaGeoModel])
def test_partial_centring_leaves_the_population_distribution_unchanged(cls):
    """Prior draws of the latents, standardised with the drawn mean, sds and correlation, are
    independent standard normals for customers with and without repeat purchases."""
    df = _simulated(simulate_hierarchical_paretonbd, 40, 5)
    assert (df["frequency"] == 0).any() and (df["frequency"] >= 3).any()
    prior = pm.sample_prior_predictive(draws=3000, model=cls().build_model(df), random_seed=1)["prior"]
    intercept, sd = prior["intercept"].values[0], prior["sigma"].values[0]
    rho = prior["correlation"].values[0][:, None]
    latent = [prior[n].values[0] for n in cls.latent_names]
    z0 = (latent[0] - intercept[:, :1]) / sd[:, :1]
    z1 = (latent[1] - intercept[:, 1:] - sd[:, 1:] * rho * z0) / (sd[:, 1:] * np.sqrt(1 - rho**2))
    for repeat in (df["frequency"].to_numpy() == 0, df["frequency"].to_numpy() > 0):
        a, b = z0[:, repeat].ravel(), z1[:, repeat].ravel()
        assert abs(a.mean()) < 0.03 and abs(b.mean()) < 0.03
        assert a.std() == pytest.approx(1.0, abs=0.03) and b.std() == pytest.approx(1.0, abs=0.03)
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.03


def test_posterior_keeps_latents_not_sampler_coordinates(pareto_fit):
    model, df = pareto_fit
    post = model.posterior
    assert {"log_lambda", "log_mu", "coefficients", "sigma", "correlation"} <= set(post.data_vars)
    assert not {"purchase_innovation", "dropout_innovation", "chol"} & set(post.data_vars)
    assert post["log_mu"].sizes == {"chain": 2, "draw": 200, "customer_id": len(df)}
    assert np.isfinite(post["log_mu"].values).all()


def test_input_errors():
    df = _simulated(simulate_hierarchical_paretonbd, 20, 1)
    with pytest.raises(ValueError, match="MAP"):
        bc.HierarchicalParetoNBDModel().fit(df, method="map")
    with pytest.raises(ValueError, match="thin"):
        bc.HierarchicalParetoNBDModel().fit(df, draws=10, thin=20)
    with pytest.raises(DataValidationError) as err:
        bc.HierarchicalParetoNBDModel(covariates=["age"]).build_model(df)
    assert err.value.column == "age"
    bad = df.copy()
    bad.loc[[2, 7], "x"] = np.nan
    with pytest.raises(DataValidationError) as err:
        bc.HierarchicalParetoNBDModel(covariates=["x"]).build_model(bad)
    assert err.value.column == "x" and err.value.rows == ["c2", "c7"]
    with pytest.raises(DataValidationError, match="numeric"):
        bc.HierarchicalParetoNBDModel(covariates=["segment"]).build_model(df)
    with pytest.raises(DataValidationError) as err:
        bc.HierarchicalBetaGeoModel(group="region").build_model(df)
    assert err.value.column == "region"


def test_minibatch_advi_recovers_the_population_on_simulated_customers():
    """20,000 customers in batches of 2,000; the full study at 100k and 1M is benchmarks/scale.py."""
    df = _simulated(simulate_hierarchical_paretonbd, 20_000, 21)
    model = bc.HierarchicalParetoNBDModel(covariates=["x"])
    model.fit(df, method="advi", batch_size=2000, tune=1500, draws=50, random_seed=5, progressbar=False)
    diag = model.diagnostics
    assert diag["ok"] and diag["steps"] == 15_000 and diag["elbo_rise"] < 0.005 and 0 < diag["drift"] < 5
    post = model.posterior
    assert post.sizes == {"chain": 1, "draw": 50, "process": 2, "covariate": 2, "slope": 1, "customer_id": 20_000}
    np.testing.assert_allclose(post["coefficients"].mean(("chain", "draw")).values, B_TRUE, atol=0.1)
    sigma = post["sigma"].mean(("chain", "draw")).values
    assert sigma[0] == pytest.approx(SD_TRUE[0], abs=0.07)
    # the approximation is known to shrink the weakly identified dropout sd (0.51 for 0.7 at 100k
    # customers, benchmarks/results/scale.md): only its order of magnitude is asserted
    assert 0.3 < sigma[1] < SD_TRUE[1] + 0.1
    # each customer's own rates, as with NUTS: P(alive) falls with the time since the last purchase
    p_alive = model.probability_alive().mean(("chain", "draw")).values
    recent = (df["T"] - df["recency"]).to_numpy() < 2
    assert p_alive[recent & (df["frequency"] > 0).to_numpy()].mean() > p_alive[~recent].mean() + 0.2


def test_minibatch_advi_with_groups_gives_each_group_its_intercept():
    shift = np.array([0.6, -0.5])  # group "b": purchase intercept +0.6, dropout -0.5
    a = _simulated(simulate_hierarchical_paretonbd, 6000, 23).assign(segment="a")
    b = _simulated(simulate_hierarchical_paretonbd, 6000, 24, coefficients=B_TRUE + [shift, [0, 0]])
    b = b.assign(segment="b", customer_id="b" + b["customer_id"])
    df = pd.concat([b, a], ignore_index=True)  # group "b" first: its codes are not the row order
    df.attrs["time_unit"] = "W"
    model = bc.HierarchicalParetoNBDModel(covariates=["x"], group="segment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # a short run
        model.fit(df, method="advi", batch_size=1000, tune=1000, draws=20, random_seed=6, progressbar=False)
    post = model.posterior
    assert list(post["group"].values) == ["a", "b"]
    group_intercepts = (post["coefficients"].sel(covariate="intercept") + post["group_offset"]).mean(
        ("chain", "draw")).transpose("group", "process").values
    np.testing.assert_allclose(group_intercepts, [B_TRUE[0], B_TRUE[0] + shift], atol=0.15)


def test_group_codes_follow_the_labels_not_their_text():
    df = _simulated(simulate_hierarchical_paretonbd, 40, 25)
    df["cohort"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(np.arange(40) % 3 * 7, unit="D")
    model = bc.HierarchicalParetoNBDModel(group="cohort")
    codes = customer_arrays(model, df, df)["group_code"]
    np.testing.assert_array_equal(codes, np.arange(40) % 3)


def test_batch_size_needs_advi_fits_the_data_and_short_runs_warn():
    df = _simulated(simulate_hierarchical_paretonbd, 50, 22)
    with pytest.raises(ValueError, match="batch_size is for method='advi'"):
        bc.HierarchicalParetoNBDModel().fit(df, batch_size=10)
    with pytest.raises(ValueError, match="batch_size must be from 1"):
        bc.HierarchicalParetoNBDModel().fit(df, method="advi", batch_size=51)
    # 20 steps over 5 batches: no batch in both of the last two tenths, so no evidence of convergence
    with pytest.warns(bc.errors.ConvergenceWarning, match="minibatch ADVI has not converged"):
        bc.HierarchicalParetoNBDModel().fit(df, method="advi", batch_size=10, tune=2, draws=5, progressbar=False)
    # a batch is not validated on its own: one customer has a constant covariate, the population not
    with pytest.warns(bc.errors.ConvergenceWarning):
        fitted = bc.HierarchicalParetoNBDModel(covariates=["x"]).fit(
            df, method="advi", batch_size=1, tune=5, draws=5, random_seed=1, progressbar=False)
    assert fitted.posterior.sizes["customer_id"] == 50


def test_prediction_data_must_keep_the_fitted_group_and_covariates(bg_fit):
    # issue #20: a changed group label or covariate value, or a missing column, was silently ignored
    # (the rates are the fitted customers' own); now refused like a changed history
    model, df = bg_fit
    relabelled = df.copy()
    relabelled.loc[relabelled.index[:2], "segment"] = "catalogue"
    shifted = df.copy()
    shifted.loc[shifted.index[3], "x"] += 5.0
    for data, column, rows in [(relabelled, "segment", ["c0", "c1"]), (shifted, "x", ["c3"]),
                               (df.drop(columns="x"), "x", []), (df.drop(columns="segment"), "segment", [])]:
        with pytest.raises(DataValidationError) as err:
            model.probability_alive(data)
        assert err.value.column == column and err.value.rows == rows
    np.testing.assert_array_equal(model.probability_alive(df.copy()).values, model.probability_alive().values)
