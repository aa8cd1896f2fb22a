"""Tracking data from the transaction log and its per-draw prediction; PIT coverage of counts."""

import copy

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesclv as bc
import bayesclv.chunks as chunks
from bayesclv.errors import DataValidationError
from bayesclv.evaluate import evaluate, expected_tracking, predictive_draws
from bayesclv.formulas import bgnbd
from bayesclv.metrics import pit_bounds, pit_coverage
from bayesclv.summaries import thin_posterior
from bayesclv.testing import jittered_posterior


# ------------------------------------------------------------------- data layer
def _toy_log():
    return pd.DataFrame({
        "customer_id": ["A", "A", "A", "A", "B", "B", "C", "C"],
        "date": ["2020-01-01", "2020-01-04", "2020-01-04", "2020-01-11",  # A: repeats on days 3 and 10
                 "2020-01-09", "2020-01-16",  # B: acquired day 8, repeat day 15 (holdout)
                 "2020-01-14", "2020-01-18"],  # C: acquired after calibration, not in the cohort
    })


def test_tracking_hand_example():
    track = bc.repeat_purchase_tracking(_toy_log(), calibration_end="2020-01-12", observation_end="2020-01-20")
    # boundaries: whole weeks plus calibration end (day 11 = 11/7 wk) and observation end (day 19)
    np.testing.assert_allclose(track["end"], [1.0, 11 / 7, 2.0, 19 / 7])
    np.testing.assert_allclose(track["start"], [0.0, 1.0, 11 / 7, 2.0])
    assert track["incremental"].tolist() == [1.0, 1.0, 0.0, 1.0]  # same-day transactions merged
    assert track["cumulative"].tolist() == [1.0, 2.0, 2.0, 3.0]
    assert track["holdout"].tolist() == [False, False, True, True]
    assert track.attrs["customers"] == 2 and track.attrs["calibration_end_time"] == pytest.approx(11 / 7)


def test_tracking_totals_match_rfm(cdnow_rfm):
    track = bc.repeat_purchase_tracking(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30")
    assert track.loc[~track["holdout"], "incremental"].sum() == cdnow_rfm["frequency"].sum()
    assert track.loc[track["holdout"], "incremental"].sum() == cdnow_rfm["frequency_holdout"].sum()
    assert track.attrs["customers"] == len(cdnow_rfm)
    # the RFM T is the time from acquisition to the calibration end the tracking uses
    assert cdnow_rfm["T"].max() <= track.attrs["calibration_end_time"] + 1e-12
    assert track["end"].iloc[-1] == pytest.approx(cdnow_rfm["T_holdout"].iloc[0] + track.attrs["calibration_end_time"])


def test_tracking_errors():
    with pytest.raises(DataValidationError) as err:
        bc.repeat_purchase_tracking(_toy_log().rename(columns={"date": "day"}))
    assert err.value.column == "date"


# ------------------------------------------------------------------- prediction
@pytest.fixture(scope="module")
def tracking(cdnow_rfm):
    return bc.repeat_purchase_tracking(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30")


def test_expected_tracking_equals_per_customer_sum(map_models, tracking, cdnow_rfm):
    model = map_models["BetaGeoModel"]
    pred = expected_tracking(model, tracking)
    p = model.summary()["mean"]
    # brute force: every customer on their own, acquired at calibration_end_time - T
    birth = tracking.attrs["calibration_end_time"] - cdnow_rfm["T"].to_numpy()
    lag = np.clip(tracking["end"].to_numpy()[None, :] - birth[:, None], 0.0, None)
    brute = bgnbd.expected_purchases_new_customer(lag, p["r"], p["alpha"], p["a"], p["b"]).sum(axis=0)
    np.testing.assert_allclose(pred["predicted_cumulative"].values[0, 0], brute, rtol=1e-10)
    np.testing.assert_allclose(pred["predicted_incremental"].sum("period"), brute[-1], rtol=1e-10)
    np.testing.assert_array_equal(pred["actual_cumulative"], tracking["cumulative"])
    # the calibration-period fit tracks the cohort within 5% at the end of calibration
    last_cal = int(np.flatnonzero(~tracking["holdout"].to_numpy())[-1])
    assert brute[last_cal] == pytest.approx(tracking["cumulative"].iloc[last_cal], rel=0.05)


def test_expected_tracking_per_draw_over_distinct_lags(map_models, tracking, cdnow_rfm, monkeypatch):
    """Each draw's cohort forecast is the per-customer sum, also when the distinct lags come in many chunks."""
    model = jittered_posterior(copy.copy(map_models["BetaGeoModel"]), chains=2, draws=3, jitter=0.2,
                               random_seed=5)
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 6 * 37)  # 37 lags per chunk
    pred = expected_tracking(model, tracking)
    birth = tracking.attrs["calibration_end_time"] - cdnow_rfm["T"].to_numpy()
    lag = np.clip(tracking["end"].to_numpy()[None, :] - birth[:, None], 0.0, None)
    post = model.posterior
    for c in range(2):
        for d in range(3):
            p = {n: float(post[n][c, d]) for n in ("r", "alpha", "a", "b")}
            brute = bgnbd.expected_purchases_new_customer(lag, **p).sum(axis=0)
            np.testing.assert_allclose(pred["predicted_cumulative"].values[c, d], brute, rtol=1e-10)


def test_predictive_draws_thin_a_long_posterior(map_models, cdnow_rfm):
    """Asked for 20 counts per customer, a 2 x 100-draw posterior simulates from 10 evenly spaced draws a chain."""
    model = jittered_posterior(copy.copy(map_models["BetaGeoModel"]), chains=2, draws=100, random_seed=3)
    draws = predictive_draws(model, 39.0, cdnow_rfm, n_draws=20, random_seed=1)
    assert dict(draws.sizes) == {"chain": 2, "draw": 10, "customer_id": len(cdnow_rfm)}
    assert model.posterior.sizes["draw"] == 100  # the caller's model keeps its posterior
    thinned = copy.copy(model)
    thinned.idata = xr.DataTree.from_dict({"posterior": thin_posterior(model.posterior, 10)})
    np.testing.assert_array_equal(thinned.posterior["draw"], [0, 11, 22, 33, 44, 55, 66, 77, 88, 99])
    seed = int(np.random.SeedSequence(1).spawn(1)[0].generate_state(1)[0])
    np.testing.assert_array_equal(draws.values, thinned.sample_purchases(39.0, cdnow_rfm, random_seed=seed).values)
    # a MAP fit (one draw) is still simulated repeatedly
    assert predictive_draws(map_models["BetaGeoModel"], 39.0, cdnow_rfm, n_draws=20).sizes["draw"] == 20


def test_map_predictive_draws_are_independent_outcomes_with_the_closed_form_distribution(map_models, cdnow_rfm):
    """A MAP fit's one draw is repeated and simulated in one call: each replicate is a fresh outcome.

    For six customers (no repeat purchase, recent or long silent, up to the most frequent buyer), 20,000
    replicates give the holdout count's mean, variance and P(0) of the BG/NBD's closed-form distribution
    (``bgnbd.probability_of_purchases`` summed over n) within 4.5 Monte Carlo standard errors.
    """
    model = map_models["BetaGeoModel"]
    order = cdnow_rfm.sort_values(["frequency", "recency"]).index
    rows = cdnow_rfm.loc[[order[0], order[len(order) // 2], order[-400], order[-120], order[-30], order[-1]]]
    n_sims = 20_000
    draws = predictive_draws(model, 39.0, rows, n_draws=n_sims, random_seed=5)
    assert dict(draws.sizes) == {"chain": 1, "draw": n_sims, "customer_id": len(rows)}
    sims = draws.values[0].astype(float)
    n = np.arange(400.0)[:, None]
    params = {k: float(model.posterior[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b")}
    pmf = bgnbd.probability_of_purchases(n, 39.0, rows["frequency"].to_numpy(), rows["recency"].to_numpy(),
                                         rows["T"].to_numpy(), **params)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-9)  # the reference holds all the mass
    mean = (n * pmf).sum(axis=0)
    var = ((n - mean) ** 2 * pmf).sum(axis=0)
    fourth = ((n - mean) ** 4 * pmf).sum(axis=0)
    assert np.all(var > 0.01)
    assert np.all(np.abs(sims.mean(axis=0) - mean) < 4.5 * np.sqrt(var / n_sims))
    assert np.all(np.abs(sims.var(axis=0) - var) < 4.5 * np.sqrt((fourth - var ** 2) / n_sims))
    p0 = pmf[0]
    assert np.all(np.abs((sims == 0).mean(axis=0) - p0) < 4.5 * np.sqrt(p0 * (1 - p0) / n_sims))
    # the closed-form expectation the model reports agrees with the reference's mean
    np.testing.assert_allclose(model.expected_purchases(39.0, rows).values[0, 0], mean, rtol=1e-8)
    # consecutive replicates are uncorrelated (not one outcome repeated)
    lagged = [np.corrcoef(sims[:-1, j], sims[1:, j])[0, 1] for j in range(len(rows))]
    assert np.all(np.abs(lagged) < 4.5 / np.sqrt(n_sims))
    # the same seed gives the same counts
    np.testing.assert_array_equal(predictive_draws(model, 39.0, rows, n_draws=n_sims, random_seed=5).values,
                                  draws.values)


def test_expected_tracking_rejects_other_cohort(map_models, tracking):
    other = tracking.copy()
    other.attrs = {**tracking.attrs, "customers": 10}
    with pytest.raises(DataValidationError):
        expected_tracking(map_models["BetaGeoModel"], other)


def test_evaluate_with_transactions(map_models, cdnow_rfm):
    res = evaluate(map_models["ParetoNBDModel"], cdnow_rfm, prob=0.9, n_draws=50, random_seed=3,
                   transactions=bc.datasets.load_cdnow("sample"))
    assert res.tracking is not None and res.tracking.sizes["period"] == 79
    m = res.metrics
    final = res.tracking["predicted_cumulative"].isel(period=-1).mean().item()
    assert m["tracking_holdout_error_pct"] == pytest.approx(100 * (final - 4339) / 4339)
    assert abs(m["tracking_calibration_error_pct"]) < 5
    # discrete counts: the inclusive interval holds well over 90% of the predictive mass and
    # covers over 90% of customers, while the randomised PIT covers about 90%
    assert m["interval_mass_90"] > 0.93 and m["coverage_90"] > 0.92
    assert m["pit_coverage_90"] == pytest.approx(0.90, abs=0.03)


# ------------------------------------------------------------------- PIT coverage
def test_pit_bounds_and_coverage_hand_values():
    below, at = pit_bounds(np.array([[0, 1], [0, 0], [1, 2], [0, 1]]), np.array([0, 1]))
    np.testing.assert_allclose(below, [0.0, 0.25])
    np.testing.assert_allclose(at, [0.75, 0.75])
    # u uniform on [0, 0.5] and on [0.5, 1]: half of each inside [0.25, 0.75]
    assert pit_coverage([0.0, 0.5], [0.5, 1.0], 0.5) == pytest.approx(0.5)
    # a point mass inside / outside the central interval
    assert pit_coverage([0.5, 0.99], [0.5, 0.99], 0.9) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pit_coverage([0.1], [0.2], 1.0)


def test_pit_coverage_is_nominal_for_calibrated_counts_where_closed_intervals_overcover():
    rng = np.random.default_rng(7)
    means = rng.gamma(0.3, 1.0, size=5000)  # mostly customers with P(0) > 0.9, as in CDNOW
    draws = rng.poisson(means, size=(2000, means.size))
    actual = rng.poisson(means)  # outcomes from the predictive distribution: calibrated
    below, at = pit_bounds(draws, actual)
    lower = np.floor(np.quantile(draws, 0.05, axis=0))
    upper = np.ceil(np.quantile(draws, 0.95, axis=0))
    closed = np.mean((lower <= actual) & (actual <= upper))
    assert closed > 0.94  # the plain inclusive interval over-covers a calibrated model
    for prob in (0.5, 0.8, 0.9):
        assert pit_coverage(below, at, prob) == pytest.approx(prob, abs=0.015)
