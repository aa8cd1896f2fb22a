"""Model classes: published estimates, NUTS, predictions, diagnostics, persistence, errors."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import PUBLISHED, purchase_pmf

import bayesclv as bc
from bayesclv.errors import ArgumentError, ConvergenceWarning, DataValidationError, NotFittedError, TimeUnitError
from bayesclv.formulas import bgnbd, paretonbd
from bayesclv.models import inference
from bayesclv.simulate import (
    future_purchases_bgnbd,
    future_purchases_paretonbd,
    simulate_bgnbd,
    simulate_gammagamma,
    simulate_paretonbd,
)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_map_matches_published_mle_within_one_percent(map_models, name):
    table = map_models[name].summary()
    for param, published in PUBLISHED[name].items():
        assert table.loc[param, "mean"] == pytest.approx(published, rel=0.01), param


def test_summary_columns_and_map_diagnostics(map_models):
    model = map_models["BetaGeoModel"]
    table = model.summary(prob=0.8)
    assert list(table.columns) == ["mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]
    assert table.attrs["prob"] == 0.8
    assert model.diagnostics["ok"] is True and model.diagnostics["method"] == "map"


@pytest.fixture(scope="module")
def nuts_bgnbd(nuts_models):
    return nuts_models["BetaGeoModel"]


def test_nuts_posterior_centres_on_mle(nuts_bgnbd):
    table = nuts_bgnbd.summary(prob=0.9)
    # r and alpha are well identified: the 90% HDI contains the published MLE
    for param in ("r", "alpha"):
        lo, hi = table.loc[param, ["lower", "upper"]]
        assert lo < PUBLISHED["BetaGeoModel"][param] < hi
    assert table["r_hat"].max() < 1.05
    diag = nuts_bgnbd.diagnostics
    assert set(diag) >= {"max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences", "ok"}
    assert diag["divergences"] == 0


def test_poor_convergence_warns_with_numbers(cdnow_rfm):
    with pytest.warns(ConvergenceWarning, match=r"ESS \d+ < 400"):
        bc.BetaGeoModel().fit(cdnow_rfm, draws=30, tune=30, chains=2, random_seed=1, progressbar=False)


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_chains_run_on_every_available_core(cdnow_rfm, monkeypatch, sampler):
    # PyMC's default (half the CPUs) would put every nutpie chain on one thread on a 2-core machine
    seen = {}

    def stop(*args, **kwargs):
        seen.clear()
        seen.update(kwargs, route="pm.sample" if "nuts_sampler" in kwargs else "sample_nutpie")
        raise RuntimeError("stop before sampling")

    monkeypatch.setattr(inference.pm, "sample", stop)
    monkeypatch.setattr(inference, "sample_nutpie", stop)
    monkeypatch.setattr(inference, "available_cpus", lambda: 3)
    for chains, cores in ((4, 3), (2, 2)):
        with pytest.raises(RuntimeError, match="stop"):
            bc.BetaGeoModel().fit(cdnow_rfm, chains=chains, sampler=sampler, progressbar=False)
        assert seen["cores"] == cores
        # nutpie samples the C-compiled summed likelihood itself; PyMC's sampler goes through pm.sample
        assert seen["route"] == {"nutpie": "sample_nutpie", "pymc": "pm.sample"}[sampler]
    with pytest.raises(RuntimeError, match="stop"):
        bc.BetaGeoModel().fit(cdnow_rfm, chains=4, cores=1, sampler=sampler, progressbar=False)
    assert seen["cores"] == 1


def test_predictions_have_posterior_dims_and_match_formulas(nuts_bgnbd, cdnow_rfm):
    ep = nuts_bgnbd.expected_purchases(39)
    assert ep.dims == ("chain", "draw", "customer_id")
    assert ep.shape == (2, 300, len(cdnow_rfm))
    assert ep.attrs["quantity"] == "expectation"
    post = nuts_bgnbd.posterior.isel(chain=1, draw=5)
    row = cdnow_rfm.iloc[10]
    direct = bgnbd.expected_purchases(39.0, row["frequency"], row["recency"], row["T"],
                                      *(float(post[p]) for p in ("r", "alpha", "a", "b")))
    assert float(ep.isel(chain=1, draw=5, customer_id=10)) == pytest.approx(direct, rel=1e-12)
    pa = nuts_bgnbd.probability_alive()
    assert float(pa.min()) >= 0 and float(pa.max()) <= 1


def test_holdout_total_close_to_actual(map_models, cdnow_rfm):
    # 39-week holdout of the CDNOW sample: 1,882 actual repeat purchases; both models
    # under-forecast it (FHL 2005 fig. 4); the fitted forecast equals the one at the published MLE
    actual = cdnow_rfm["frequency_holdout"].sum()
    assert actual == 1882
    cols = (cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"])
    for name, formulas in (("BetaGeoModel", bgnbd), ("ParetoNBDModel", paretonbd)):
        total = float(map_models[name].expected_purchases(39).sum())
        at_mle = formulas.expected_purchases(39.0, *cols, *PUBLISHED[name].values()).sum()
        assert total == pytest.approx(at_mle, rel=0.005)
        assert 0.8 * actual < total < actual


@pytest.mark.parametrize("name", ["BetaGeoModel", "ParetoNBDModel"])
def test_purchase_pmf_sums_to_one_and_mean_matches(map_models, cdnow_rfm, name):
    model = map_models[name]
    data = cdnow_rfm.iloc[:50]
    pmf = purchase_pmf(model, 20.0, data, n_max=150)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-8)
    mean = (np.arange(len(pmf))[:, None, None, None] * pmf).sum(axis=0)
    np.testing.assert_allclose(mean, model.expected_purchases(20.0, data).values, rtol=1e-6)


@pytest.mark.parametrize(("simulator", "formulas", "params"), [
    (future_purchases_bgnbd, bgnbd, (0.5, 5.0, 0.8, 2.5)),
    (future_purchases_paretonbd, paretonbd, (0.5, 10.0, 0.6, 12.0)),
])
def test_posterior_predictive_simulation_matches_expectation(simulator, formulas, params):
    n = 200_000
    history = (np.full(n, 3.0), np.full(n, 20.0), np.full(n, 39.0))
    counts = simulator(26.0, *history, *params, rng=np.random.default_rng(3))
    expected = formulas.expected_purchases(26.0, 3.0, 20.0, 39.0, *params)
    se = counts.std() / np.sqrt(n)
    assert abs(counts.mean() - expected) < 4 * se
    p0 = formulas.probability_of_purchases(0, 26.0, 3.0, 20.0, 39.0, *params)
    assert abs((counts == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / n)


@pytest.mark.parametrize(("cls", "simulator", "truth"), [
    (bc.BetaGeoModel, simulate_bgnbd, {"r": 0.6, "alpha": 8.0, "a": 0.9, "b": 3.0}),
    (bc.ParetoNBDModel, simulate_paretonbd, {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 12.0}),
])
def test_parameter_recovery_from_simulated_data(cls, simulator, truth):
    rng = np.random.default_rng(11)
    T = rng.uniform(26, 78, size=20_000)
    sim = simulator(T, *truth.values(), rng=rng)
    rfm = pd.DataFrame({"customer_id": np.arange(T.size), "frequency": sim["frequency"],
                        "recency": sim["recency"], "T": sim["T"]})
    rfm.attrs["time_unit"] = "W"
    fitted = cls().fit(rfm, method="map", progressbar=False).summary()["mean"]
    for param, value in truth.items():
        # well-identified rate parameters within 10%, dropout parameters within 30%
        tol = 0.1 if param in ("r", "alpha") else 0.3
        assert fitted[param] == pytest.approx(value, rel=tol), param


def test_new_customer_expectation(map_models):
    model = map_models["ParetoNBDModel"]
    values = model.expected_purchases_new_customer([10.0, 52.0])
    assert values.dims == ("chain", "draw", "t")
    p = {k: float(v) for k, v in model.summary()["mean"].items()}
    assert values.sel(t=52.0).item() == pytest.approx(
        paretonbd.expected_purchases_new_customer(52.0, **p), rel=1e-12)
    assert model.expected_purchases_new_customer(52.0).dims == ("chain", "draw")


def test_save_load_roundtrip_is_exact(nuts_bgnbd, tmp_path):
    path = tmp_path / "bg.nc"
    nuts_bgnbd.save(path)
    loaded = bc.load(path)
    assert type(loaded) is bc.BetaGeoModel
    xr.testing.assert_identical(loaded.posterior[["r", "alpha", "a", "b"]],
                                nuts_bgnbd.posterior[["r", "alpha", "a", "b"]])
    pd.testing.assert_frame_equal(loaded.data[["customer_id", "frequency", "recency", "T"]],
                                  nuts_bgnbd.data[["customer_id", "frequency", "recency", "T"]])
    assert loaded.time_unit == "W" and loaded.priors == nuts_bgnbd.priors
    xr.testing.assert_allclose(loaded.expected_purchases(10), nuts_bgnbd.expected_purchases(10))


def test_prediction_on_new_data_checks_time_unit(map_models, cdnow_rfm):
    model = map_models["BetaGeoModel"]
    new = cdnow_rfm.iloc[:3].copy()
    assert model.probability_alive(new).sizes["customer_id"] == 3
    daily = bc.rfm_summary(bc.datasets.load_cdnow("sample"), time_unit="D", calibration_end="1997-09-30")
    with pytest.raises(TimeUnitError, match="'D'"):
        model.expected_purchases(4, daily)


def test_errors_are_typed(cdnow_rfm):
    with pytest.raises(NotFittedError):
        bc.BetaGeoModel().expected_purchases(1)
    with pytest.raises(ValueError, match="no parameter"):
        bc.BetaGeoModel(priors={"s": bc.Prior("HalfNormal", sigma=1)})
    with pytest.raises(ValueError, match="unknown PyMC distribution"):
        bc.Prior("NotADistribution")
    bad = cdnow_rfm[["customer_id", "frequency", "recency", "T"]].copy()
    bad.loc[5, "recency"] = bad.loc[5, "T"] + 1
    with pytest.raises(DataValidationError, match="recency"):
        bc.BetaGeoModel().fit(bad, method="map", progressbar=False)
    unitless = cdnow_rfm[["customer_id", "frequency", "recency", "T"]].copy()
    unitless.attrs = {}
    with pytest.raises(TimeUnitError, match="time unit"):
        bc.BetaGeoModel().fit(unitless, method="map", progressbar=False)
    # fit arguments a model cannot use: typed errors naming the argument
    for arguments, name in (({"method": "gibbs"}, "method"), ({"method": "nut"}, "method"),
                            ({"sampler": "stan"}, "sampler"), ({"thin": 0}, "thin"),
                            ({"method": "advi", "batch_size": 100}, "batch_size")):
        with pytest.raises(ArgumentError, match=f"argument '{name}'") as raised:
            bc.BetaGeoModel().fit(cdnow_rfm, **arguments)
        assert raised.value.argument == name


def test_custom_prior_changes_map(cdnow_rfm):
    tight = bc.BetaGeoModel(priors={"r": bc.Prior("Gamma", alpha=400.0, beta=400.0)})  # r ~ 1 +- 0.05
    r = tight.fit(cdnow_rfm, method="map", progressbar=False).summary().loc["r", "mean"]
    assert r > 0.4  # the MLE is 0.24; the prior pulls towards 1


def test_spend_model_uses_repeat_buyers_only(map_models, cdnow_rfm):
    gg = map_models["GammaGammaModel"]
    assert len(gg.data) == int((cdnow_rfm["frequency"] > 0).sum()) == 946
    spend = gg.expected_spend(cdnow_rfm)
    p = {k: float(v) for k, v in gg.summary()["mean"].items()}
    zero = cdnow_rfm.index[cdnow_rfm["frequency"] == 0][0]
    assert spend.isel(customer_id=zero).item() == pytest.approx(p["p"] * p["gamma"] / (p["q"] - 1))


def test_advi_fit_gives_draws_near_map(map_models, cdnow_rfm):
    model = bc.BetaGeoModel().fit(cdnow_rfm, method="advi", draws=200, tune=1000, random_seed=3,
                                  progressbar=False)
    assert model.posterior.sizes["draw"] == 200 and model.diagnostics["method"] == "advi"
    fitted, at_map = model.summary()["mean"], map_models["BetaGeoModel"].summary()["mean"]
    for param in ("r", "alpha"):
        assert fitted[param] == pytest.approx(at_map[param], rel=0.1), param
    assert model.probability_alive().dims == ("chain", "draw", "customer_id")


@pytest.mark.parametrize("cls", [bc.BetaGeoModel, bc.ParetoNBDModel, bc.GammaGammaModel])
def test_model_gradient_matches_finite_differences(cls, cdnow_rfm):
    # the compiled PyMC graph (after PyMC's own rewrites) must differentiate the likelihood exactly
    model = cls().build_model(cdnow_rfm)
    # the density and its gradient compiled together: one compilation (seconds) instead of two
    logp_dlogp = model.compile_fn([model.logp(jacobian=False), model.dlogp(jacobian=False)])
    point = {k: np.log(0.5 + i) for i, k in enumerate(model.initial_point())}
    grad = logp_dlogp(point)[1]
    for i, name in enumerate(point):
        up, down = dict(point), dict(point)
        up[name] = point[name] + 1e-5
        down[name] = point[name] - 1e-5
        assert grad[i] == pytest.approx((logp_dlogp(up)[0] - logp_dlogp(down)[0]) / 2e-5, rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize("cls", [bc.BetaGeoModel, bc.ParetoNBDModel, bc.GammaGammaModel])
def test_prior_predictive_simulates_valid_data(cls, cdnow_rfm):
    data = cdnow_rfm.iloc[:200]
    ds = cls().sample_prior_predictive(data, draws=50, random_seed=4)
    # the spend model keeps only repeat buyers
    n = int((data["frequency"] > 0).sum()) if cls is bc.GammaGammaModel else 200
    assert dict(ds.sizes) == {"draw": 50, "customer_id": n}
    for name in cls.parameter_names:
        assert ds[name].dims == ("draw",) and bool((ds[name] > 0).all())
    if cls is bc.GammaGammaModel:
        assert ds["monetary_value"].dims == ("draw", "customer_id")
        assert bool((ds["monetary_value"] > 0).all())
    else:
        T = cdnow_rfm["T"].to_numpy()[:200]
        assert bool(((ds["recency"] >= 0) & (ds["recency"] <= T)).all())
        assert bool((ds["frequency"] == np.round(ds["frequency"])).all())
        assert bool(((ds["frequency"] == 0) == (ds["recency"] == 0)).all())


def test_spend_fit_leaves_out_free_repeat_buyers_with_a_warning(cdnow_rfm):
    data = cdnow_rfm.copy()
    free_id = data.loc[data["frequency"] > 0, "customer_id"].iloc[0]
    data.loc[data["customer_id"] == free_id, "monetary_value"] = 0.0
    with pytest.warns(UserWarning, match=rf"mean spend 0 left out.*\[{free_id}\]"):
        model = bc.GammaGammaModel().fit(data, method="map", progressbar=False)
    assert len(model.data) == 945 and free_id not in set(model.data["customer_id"])
    # predictions still cover that customer, shrunk towards zero spend
    assert model.expected_spend(data).sel(customer_id=free_id).item() > 0


def test_gammagamma_sampling_coordinates_keep_the_declared_priors():
    """NUTS moves p, q on a log-then-linear scale and gamma as mean_log_spend = log p + log gamma - digamma(q);
    the model's density in those coordinates is the declared priors' (SciPy) times the Jacobian, and without
    the Jacobian (what MAP optimises) the priors' density of (p, q, gamma) itself."""
    import pymc as pm
    from scipy import special, stats

    model = bc.GammaGammaModel(priors={"gamma": bc.Prior("Gamma", alpha=2.0, beta=0.01)})
    with pm.Model() as graph:
        model._spend_parameters()
    w_p, w_q, centre = 1.3, -0.4, 2.5
    p, q = (50.0 * np.logaddexp(0.0, w - np.log(50.0)) for w in (w_p, w_q))
    gamma = np.exp(centre - np.log(p) + special.digamma(q))
    point = {"p_log_then_linear__": w_p, "q_log_then_linear__": w_q, "gamma_mean_log_spend__": centre}
    prior = (stats.halfnorm(scale=50.0).logpdf(p) + stats.halfnorm(scale=50.0).logpdf(q)
             + stats.gamma(2.0, scale=100.0).logpdf(gamma))
    jacobian = sum(np.log(50.0) - np.logaddexp(0.0, np.log(50.0) - w) for w in (w_p, w_q)) + np.log(gamma)
    # abs: PyMC rounds the half-normal's normalising constant to ~1e-7
    assert graph.compile_logp()(point) == pytest.approx(prior + jacobian, abs=1e-6)
    assert graph.compile_logp(jacobian=False)(point) == pytest.approx(prior, abs=1e-6)


def test_gammagamma_nuts_without_divergences_where_spend_is_heavy_tailed():
    """q = 0.5 (no mean spend across customers) and p = 15: a case where NUTS on (log p, log q, log gamma)
    diverged (validation/results/sbc_gammagamma.md); the truth lies inside the 94% intervals."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"customer_id": np.arange(300), "frequency": np.resize([1.0, 2, 3, 4, 6, 10], 300),
                       "recency": 13.0, "T": 39.0})
    df["monetary_value"] = simulate_gammagamma(df["frequency"].to_numpy(), 15.0, 0.5, 80.0,
                                               rng=rng)["monetary_value"]
    df.attrs["time_unit"] = "W"
    model = bc.GammaGammaModel().fit(df, draws=500, tune=500, chains=2, random_seed=4, progressbar=False)
    assert model.diagnostics["divergences"] == 0
    post = model.posterior
    for name, truth in (("p", 15.0), ("q", 0.5), ("gamma", 80.0)):
        lo, hi = np.quantile(post[name].values, [0.03, 0.97])
        assert lo < truth < hi, name
