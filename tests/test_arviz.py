"""ArviZ 1.x takes a fitted model directly: ``model.to_datatree()`` for loo, compare, summary and the PPC plots;
convergence judged through arviz-stats (R-hat, ESS, E-BFMI) and the sampler's tree depth; one interval convention."""

from __future__ import annotations

import arviz as az
import matplotlib
import numpy as np
import pytest
import xarray as xr
from arviz_base import rc_context

import bayesclv as bc
from bayesclv import scale
from bayesclv.errors import ConvergenceWarning, PointEstimateWarning
from bayesclv.models.diagnostics import compute_diagnostics, report_fit

matplotlib.use("Agg")

# Fader, Hardie & Lee (2005), CDNOW sample (2,357 customers): log-likelihood at the MLE
PUBLISHED_LL = {"BetaGeoModel": -9582.4, "ParetoNBDModel": -9595.0}


@pytest.fixture(scope="module")
def sampled(nuts_models):
    return {name: nuts_models[name] for name in PUBLISHED_LL}


def test_datatree_has_every_group_arviz_reads(sampled, cdnow_rfm):
    bg = sampled["BetaGeoModel"]
    tree = bg.to_datatree()
    assert {"posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"} <= set(tree.children)
    assert "log_likelihood" not in bg.idata.children  # built on demand, not carried by every fitted model
    np.testing.assert_array_equal(tree["observed_data"]["frequency"].values, cdnow_rfm["frequency"].to_numpy())
    np.testing.assert_array_equal(tree["constant_data"]["T"].values, cdnow_rfm["T"].to_numpy())
    assert set(tree["constant_data"].data_vars) == {"recency", "T"}
    # the pointwise log-likelihood sums to the data's: never above the published maximum, close to it
    total = tree["log_likelihood"]["frequency"].sum("customer_id")
    assert float(total.max()) <= PUBLISHED_LL["BetaGeoModel"] + 0.05
    assert float(total.mean()) == pytest.approx(PUBLISHED_LL["BetaGeoModel"] - 2, abs=2)  # ~ p/2 below the max


def test_loo_and_compare_take_the_models_directly(sampled):
    loo = az.loo(sampled["BetaGeoModel"].to_datatree(), pointwise=True)
    # PSIS-LOO: effective number of parameters near the model's four, every Pareto k fine
    assert 2.5 < float(loo.p) < 6.5
    assert float(loo.elpd) == pytest.approx(PUBLISHED_LL["BetaGeoModel"] - float(loo.p), abs=4)
    assert float(np.max(loo.pareto_k)) < 0.7
    table = az.compare({name: model.to_datatree() for name, model in sampled.items()}, round_to="none")
    # the BG/NBD fits CDNOW better: 12.6 log-likelihood points at the MLEs, both with four parameters
    assert list(table.index) == ["BetaGeoModel", "ParetoNBDModel"]
    assert table.loc["ParetoNBDModel", "elpd_diff"] == pytest.approx(-12.6, abs=4)  # ArviZ 1.x: negative


def test_summary_through_arviz_matches_the_models(sampled):
    bg = sampled["BetaGeoModel"]
    arviz_table = az.summary(bg.to_datatree(), var_names=["r", "alpha", "a", "b"], ci_prob=0.9, round_to="none")
    ours = bg.summary(prob=0.9)
    np.testing.assert_allclose(arviz_table["mean"].astype(float), ours["mean"], rtol=1e-12)
    np.testing.assert_allclose(arviz_table["eti90_lb"].astype(float), ours["lower"], rtol=1e-12)
    assert ours.attrs["interval"] == "90% credible (eti)"


def test_ppc_and_loo_pit_plots_take_the_models_directly(sampled, cdnow_rfm):
    tree = sampled["BetaGeoModel"].to_datatree(posterior_predictive=True, random_seed=3)
    replicated = tree["posterior_predictive"]["frequency"]
    assert replicated.dims == ("chain", "draw", "customer_id")
    # the replicated data look like the data: mean repeat purchases and share of zeros within a few per cent
    assert float(replicated.mean()) == pytest.approx(cdnow_rfm["frequency"].mean(), rel=0.06)
    assert float((replicated == 0).mean()) == pytest.approx((cdnow_rfm["frequency"] == 0).mean(), abs=0.03)
    for plot in (az.plot_ppc_dist, az.plot_loo_pit, az.plot_ppc_rootogram):
        collection = plot(tree, backend="matplotlib")
        assert collection.viz.children, plot.__name__
    matplotlib.pyplot.close("all")


def _stats_tree(energy: np.ndarray, maxdepth: np.ndarray) -> xr.DataTree:
    rng = np.random.default_rng(0)
    post = xr.Dataset({"r": (("chain", "draw"), 0.25 + 0.01 * rng.standard_normal(energy.shape))},
                      coords={"chain": np.arange(energy.shape[0]), "draw": np.arange(energy.shape[1])})
    stats = xr.Dataset({"energy": (("chain", "draw"), energy), "maxdepth_reached": (("chain", "draw"), maxdepth),
                        "diverging": (("chain", "draw"), np.zeros(energy.shape, bool))}, coords=post.coords)
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_convergence_warning_names_low_ebfmi_and_tree_depth_saturation():
    rng = np.random.default_rng(1)
    shape = (2, 2000)
    # independent energies: E-BFMI = E[(E_n - E_{n-1})^2] / Var(E) = 2
    healthy = compute_diagnostics(_stats_tree(rng.standard_normal(shape), np.zeros(shape, bool)), ["r"])
    assert healthy["bfmi"] == pytest.approx([2.0, 2.0], abs=0.15)
    assert healthy["tree_depth_share"] == 0.0 and healthy["ok"]
    # a random walk in energy (the sampler barely moves between levels) and 5% of draws at the maximum depth
    walk = np.cumsum(rng.standard_normal(shape), axis=1)
    maxdepth = rng.random(shape) < 0.05
    poor = compute_diagnostics(_stats_tree(walk, maxdepth), ["r"])
    assert max(poor["bfmi"]) < 0.05
    assert poor["tree_depth_share"] == pytest.approx(maxdepth.mean(), rel=1e-12)
    assert not poor["ok"]
    with pytest.warns(ConvergenceWarning, match=r"E-BFMI .* < 0.3.*maximum tree depth"):
        report_fit("BG/NBD", poor, progressbar=False)


def test_nuts_fit_records_ebfmi_and_tree_depth(sampled):
    diag = sampled["BetaGeoModel"].diagnostics
    assert len(diag["bfmi"]) == 2 and min(diag["bfmi"]) > 0.3
    assert diag["tree_depth_share"] == 0.0
    assert "E-BFMI" in str(diag)


def test_one_interval_convention_follows_arviz(sampled):
    bg = sampled["BetaGeoModel"]
    alive = bg.probability_alive().isel(customer_id=slice(0, 20))
    with rc_context({"stats.ci_prob": 0.8, "stats.ci_kind": "hdi"}):
        table, summary = bc.intervals(alive), bg.summary()
        scaled = scale.summarise(alive)
    assert table["interval"].iloc[0] == "80% credible (hdi)" and summary.attrs["interval"] == "80% credible (hdi)"
    assert scaled.attrs["interval"] == "80% credible (hdi)"
    hdi = az.hdi(alive, prob=0.8, dim=["chain", "draw"])
    np.testing.assert_allclose(table["lower"], hdi.sel(ci_bound="lower"), rtol=1e-12)
    np.testing.assert_allclose(scaled["upper"], hdi.sel(ci_bound="upper"), rtol=1e-12)
    default = bc.intervals(alive)  # ArviZ's defaults: 89% ETI
    assert default["interval"].iloc[0] == "89% credible (eti)"


def test_point_estimate_never_called_credible(map_models, cdnow_rfm):
    bg, gg = map_models["BetaGeoModel"], map_models["GammaGammaModel"]
    assert bg.posterior.attrs["point_estimate"] == 1 and bg.posterior.attrs["fit_method"] == "map"
    alive = bg.probability_alive()
    assert alive.attrs["point_estimate"] == 1
    with pytest.warns(PointEstimateWarning, match="no posterior uncertainty"):
        table = bc.intervals(alive, prob=0.9)
    assert set(table["interval"]) == {"point estimate (no posterior uncertainty)"}
    assert table.attrs["kind"] == "point estimate"
    np.testing.assert_array_equal(table["lower"], table["upper"])
    np.testing.assert_array_equal(table["lower"], alive.isel(chain=0, draw=0).values)
    with pytest.warns(PointEstimateWarning):
        summary = bg.summary(prob=0.9)
    assert summary.attrs["interval"] == "point estimate (no posterior uncertainty)"
    assert summary["sd"].isna().all() and (summary["lower"] == summary["mean"]).all()
    with pytest.warns(PointEstimateWarning):
        scaled = scale.clv_summary(bg, gg, cdnow_rfm, horizon=12, time_unit="M", discount_rate=0.01,
                                   progressbar=False)
    assert scaled.attrs["interval"] == "point estimate (no posterior uncertainty)" and scaled["sd"].isna().all()


def test_clv_of_one_point_estimate_says_whose_uncertainty_is_missing(sampled, map_models, cdnow_rfm):
    clv = bc.customer_lifetime_value(sampled["BetaGeoModel"], map_models["GammaGammaModel"], cdnow_rfm,
                                     horizon=12, time_unit="M", discount_rate=0.01)
    assert clv.attrs["point_estimate"] == 0 and clv.attrs["point_estimate_of"] == "Gamma-Gamma"
    label = bc.intervals(clv.isel(customer_id=slice(0, 3)), prob=0.9)["interval"].iloc[0]
    assert label == ("90% credible (eti), without the uncertainty of Gamma-Gamma "
                     "(point estimate (no posterior uncertainty))")
