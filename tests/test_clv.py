"""CLV (paired draws, discounting) and interval summaries."""

import copy

import numpy as np
import pytest
import xarray as xr

import bayesclv as bc
import bayesclv.chunks
import bayesclv.formulas._ops
from bayesclv.clv import pair_draws
from bayesclv.testing import jittered_posterior


def test_clv_equals_hand_computation(map_models, cdnow_rfm):
    bg, gg = map_models["BetaGeoModel"], map_models["GammaGammaModel"]
    clv = bc.customer_lifetime_value(bg, gg, horizon=3, time_unit="M", discount_rate=0.02, margin=0.3,
                                     acquisition_cost=5.0)
    assert clv.dims == ("chain", "draw", "customer_id")
    weeks = 365.25 / 12 / 7
    cum = [bg.expected_purchases(k * weeks) for k in range(4)]
    expected = 0.3 * gg.expected_spend(cdnow_rfm) * sum(
        (cum[k] - cum[k - 1]) / 1.02**k for k in (1, 2, 3)) - 5.0
    # the CLV sums one hypergeometric series over the 3 horizons, the hand computation calls scipy's
    # hyp2f1 per horizon: equal to 1e-12, also where the value nearly cancels against the cost of 5
    np.testing.assert_allclose(clv.values, expected.values, rtol=1e-12, atol=1e-12)


def test_clv_service_cost_uses_survival(map_models):
    bg, gg = map_models["ParetoNBDModel"], map_models["GammaGammaModel"]
    base = bc.customer_lifetime_value(bg, gg, horizon=2, time_unit="W", discount_rate=0.0)
    with_cost = bc.customer_lifetime_value(bg, gg, horizon=2, time_unit="W", discount_rate=0.0,
                                           service_cost_per_period=1.0)
    alive = bg.probability_alive_at(0.0) + bg.probability_alive_at(1.0)
    np.testing.assert_allclose((base - with_cost).values, alive.values, rtol=1e-10)


def test_clv_keeps_spend_draws_paired():
    # two sampled posteriors: CLV per draw is the product of same-index draws, not of means
    purchases = xr.DataArray(np.arange(1.0, 7.0).reshape(2, 3, 1), dims=("chain", "draw", "customer_id"))
    spend = xr.DataArray(np.arange(6.0, 0.0, -1).reshape(2, 3, 1), dims=("chain", "draw", "customer_id"))
    a, b = pair_draws(purchases, spend)
    np.testing.assert_array_equal((a * b).values.ravel(), [6, 10, 12, 12, 10, 6])
    with pytest.raises(ValueError, match="cannot pair"):
        pair_draws(purchases, spend.isel(draw=slice(0, 2)))


def test_clv_argument_errors(map_models):
    bg, gg = map_models["BetaGeoModel"], map_models["GammaGammaModel"]
    with pytest.raises(ValueError, match="fortnight"):
        bc.customer_lifetime_value(bg, gg, horizon=3, time_unit="fortnight", discount_rate=0.0)
    with pytest.raises(ValueError, match="horizon"):
        bc.customer_lifetime_value(bg, gg, horizon=0, time_unit="M", discount_rate=0.0)


def test_intervals_match_quantiles_and_name_the_kind():
    rng = np.random.default_rng(0)
    draws = xr.DataArray(rng.normal(size=(4, 500, 3)), dims=("chain", "draw", "customer_id"),
                         coords={"customer_id": [7, 8, 9]}, attrs={"quantity": "outcome"})
    table = bc.intervals(draws, prob=0.8)
    flat = draws.values.reshape(-1, 3)
    np.testing.assert_allclose(table["lower"], np.quantile(flat, 0.1, axis=0), rtol=1e-10)
    np.testing.assert_allclose(table["upper"], np.quantile(flat, 0.9, axis=0), rtol=1e-10)
    np.testing.assert_allclose(table["median"], np.median(flat, axis=0))
    assert list(table.index) == [7, 8, 9]
    assert (table["interval"] == "80% predictive (eti)").all()
    draws.attrs = {}
    assert bc.intervals(draws, method="hdi")["interval"].iloc[0] == "89% credible (hdi)"  # ArviZ's ci_prob
    with pytest.raises(ValueError, match="prob"):
        bc.intervals(draws, prob=1.5)


def test_clv_is_the_same_in_any_chunking(map_models, monkeypatch):
    # jittered_posterior changes a model in place: copies, not the session's MAP fits
    pn = jittered_posterior(copy.deepcopy(map_models["ParetoNBDModel"]), chains=2, draws=7, jitter=0.05,
                            random_seed=3)
    gg_map = map_models["GammaGammaModel"]
    gg_draws = jittered_posterior(copy.deepcopy(gg_map), chains=2, draws=7, jitter=0.05, random_seed=4)
    kwargs = dict(horizon=4, time_unit="M", discount_rate=0.01, service_cost_per_period=0.5)
    for gg in (gg_draws, gg_map):  # paired draws; a point estimate of spend against every draw
        monkeypatch.setattr(bayesclv.chunks, "PASS_DRAWS", 100)
        whole = bc.customer_lifetime_value(pn, gg, **kwargs)
        monkeypatch.setattr(bayesclv.chunks, "PASS_DRAWS", 3)  # 5 chunks of the 14 draws, on every core
        chunked = bc.customer_lifetime_value(pn, gg, **kwargs)
        xr.testing.assert_allclose(whole, chunked, rtol=1e-12)
        # and, draw by draw, spend x discounted purchases - 0.5 x discounted P(alive at each period's start)
        month = 365.25 / 12 / 7
        cum = [pn.expected_purchases(k * month) for k in range(5)]
        value = sum((cum[k] - cum[k - 1]) / 1.01**k for k in range(1, 5))
        service = sum(pn.probability_alive_at((k - 1) * month) / 1.01**k for k in range(1, 5))
        value, spend = pair_draws(value, gg.expected_spend(pn.data))
        expected = (spend * value - 0.5 * service).transpose("chain", "draw", "customer_id")
        assert whole.sizes == {"chain": 2, "draw": 7, "customer_id": len(pn.data)}
        np.testing.assert_allclose(whole.values, expected.values, rtol=1e-10, atol=1e-10)


def test_given_alive_factorises(map_models):
    model = map_models["BetaGeoModel"]
    np.testing.assert_allclose(
        (model.expected_purchases(13.0, given_alive=True) * model.probability_alive()).values,
        model.expected_purchases(13.0).values, rtol=1e-12)


def test_clv_long_horizon_says_what_it_costs_and_keeps_the_per_period_values(map_models, cdnow_rfm):
    """Beyond a century of months the call warns (no silent long run); the BG/NBD's one-pass sums over
    1,201 months equal the per-period closed forms (purchases and the service cost's periods alive)."""
    bg, gg = map_models["BetaGeoModel"], map_models["GammaGammaModel"]
    few = cdnow_rfm.iloc[::300]
    with pytest.warns(UserWarning, match="1,201 periods"):
        clv = bc.customer_lifetime_value(bg, gg, few, horizon=1201, time_unit="M", discount_rate=0.01,
                                         service_cost_per_period=0.5)
    weeks = 365.25 / 12 / 7
    ends = weeks * np.arange(1.0, 1202)
    factors = 1.01 ** -np.arange(1.0, 1202)
    args = [few[c].to_numpy() for c in ("frequency", "recency", "T")]
    params = [float(bg.posterior[n].values.ravel()[0]) for n in ("r", "alpha", "a", "b")]
    formulas = bg.formulas
    purchases = bayesclv.formulas._ops.discounted_increments(
        lambda t: formulas.expected_purchases(t, *args, *params), ends, factors)
    alive = sum(f * formulas.probability_alive_at(t - weeks, *args, *params) for t, f in zip(ends, factors))
    spend = gg.expected_spend(few).values.ravel()
    np.testing.assert_allclose(clv.values.ravel(), spend * purchases - 0.5 * alive, rtol=1e-10)
