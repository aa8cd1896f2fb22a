"""bc.predict: one per-customer table equal, column by column, to the individual contract functions."""

import copy
import math

import numpy as np
import pytest
from arviz_base import rcParams

import bayesclv as bc
from bayesclv.errors import ArgumentError
from bayesclv.formulas import bgnbd
from bayesclv.testing import jittered_posterior

WEEKS_PER_MONTH = 365.25 / 12 / 7


@pytest.fixture(scope="module")
def sampled(map_models):
    # jittered_posterior changes a model in place: copies, not the session's MAP fits
    bg = jittered_posterior(copy.deepcopy(map_models["BetaGeoModel"]), chains=2, draws=50, jitter=0.05,
                            random_seed=1)
    gg = jittered_posterior(copy.deepcopy(map_models["GammaGammaModel"]), chains=2, draws=50, jitter=0.05,
                            random_seed=2)
    return bg, gg


def _bounds(values, prob=0.9):
    flat = values.transpose("chain", "draw", "customer_id").values.reshape(-1, values.sizes["customer_id"])
    return flat.mean(axis=0), np.quantile(flat, (1 - prob) / 2, axis=0), np.quantile(flat, (1 + prob) / 2, axis=0)


def _assert_columns(table, name, values, prob=None):
    prob = rcParams["stats.ci_prob"] if prob is None else prob  # the default interval is ArviZ's, as for bc.intervals
    mean, lower, upper = _bounds(values, prob)
    np.testing.assert_allclose(table[f"{name}_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(table[f"{name}_lower"], lower, rtol=1e-10)
    np.testing.assert_allclose(table[f"{name}_upper"], upper, rtol=1e-10)


def test_table_equals_the_individual_functions(sampled, cdnow_rfm):
    bg, gg = sampled
    table = bc.predict(bg, spend_model=gg, horizon=6, time_unit="M", discount_rate=0.01, margin=0.3,
                       currency="USD", prob=0.8)
    assert list(table.index) == list(cdnow_rfm["customer_id"])
    assert list(table.columns[:4]) == ["frequency", "recency", "T", "monetary_value"]
    np.testing.assert_array_equal(table["frequency"], cdnow_rfm["frequency"])
    _assert_columns(table, "p_alive", bg.probability_alive(), 0.8)
    _assert_columns(table, "expected_purchases", bg.expected_purchases(6 * WEEKS_PER_MONTH), 0.8)
    _assert_columns(table, "spend", gg.expected_spend(cdnow_rfm), 0.8)  # one-time buyers too
    clv = bc.customer_lifetime_value(bg, gg, horizon=6, time_unit="M", discount_rate=0.01, margin=0.3)
    _assert_columns(table, "clv", clv, 0.8)
    _assert_columns(table, "dert", bg.discounted_expected_residual_transactions(math.log(1.01) / WEEKS_PER_MONTH), 0.8)
    assert table.attrs["intervals"]["clv"] == "80% credible (eti)"
    assert table.attrs["currency"] == "USD" and table.attrs["horizon"] == 6 and table.attrs["time_unit"] == "M"
    # a posterior mean lies inside its 80% interval
    for name in ("p_alive", "expected_purchases", "spend", "clv"):
        assert (table[f"{name}_lower"] <= table[f"{name}_mean"]).all()
        assert (table[f"{name}_mean"] <= table[f"{name}_upper"]).all()


def test_without_spend_model_and_on_new_data_in_its_order(sampled, cdnow_rfm):
    bg, _ = sampled
    rows = cdnow_rfm.iloc[[40, 3, 17]]
    table = bc.predict(bg, rows, horizon=13)  # the model's own unit: weeks
    assert list(table.index) == list(rows["customer_id"])
    assert list(table.columns) == ["frequency", "recency", "T"] + [
        f"{q}_{c}" for q in ("p_alive", "expected_purchases") for c in ("mean", "lower", "upper")]
    _assert_columns(table, "expected_purchases", bg.expected_purchases(13, rows))


def test_dert_where_the_model_offers_it(sampled, cdnow_rfm):
    bg = sampled[0]
    rows = cdnow_rfm.head(20)
    table = bc.predict(bg, rows, horizon=12, time_unit="M", discount_rate=0.01)
    # 1% a month, continuously per week: (1.01)^-1 over one month of weeks; the family formula draw by draw
    delta = math.log(1.01) / WEEKS_PER_MONTH
    values = bgnbd.discounted_expected_residual_transactions(
        delta, *(rows[c].to_numpy() for c in ("frequency", "recency", "T")),
        *(bg.posterior[p].values[..., None] for p in ("r", "alpha", "a", "b")))
    _assert_columns(table, "dert", bg.probability_alive(rows).copy(data=values))
    # all future purchases, discounted, are more than a year's purchases each discounted by a full year
    assert (table["dert_mean"] > table["expected_purchases_mean"] * 1.01**-12).all()
    assert "dert_mean" not in bc.predict(bg, rows, horizon=12, time_unit="M")  # no discounting: no DERT
    mbg = bc.ModifiedBetaGeoModel().fit(rows, method="map", progressbar=False)  # DERT through the contract
    _assert_columns(bc.predict(mbg, rows, horizon=12, time_unit="M", discount_rate=0.01), "dert",
                    mbg.discounted_expected_residual_transactions(delta, rows))


def test_settings_are_checked_before_any_work(sampled):
    bg, gg = sampled
    with pytest.raises(ArgumentError, match="horizon"):
        bc.predict(bg, horizon=0)
    with pytest.raises(ArgumentError, match="discount_rate"):
        bc.predict(bg, horizon=3, discount_rate=5)
    with pytest.raises(ArgumentError, match="currency"):
        bc.predict(bg, horizon=3, currency="EUR")
    with pytest.raises(ValueError, match="fortnight"):
        bc.predict(bg, horizon=3, time_unit="fortnight")
