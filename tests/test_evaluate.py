"""Holdout evaluation and model comparison (bayesclv.evaluate)."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import hyp2f1

import bayesclv as bc
from bayesclv.errors import DataValidationError, NotFittedError
from bayesclv.evaluate import EvaluationResult, churn_draws, evaluate
from bayesclv.metrics import auc, brier_score, calibration_table, classification_rates, confusion_counts, coverage, mape

HORIZON = 39.0  # weeks from 1997-09-30 to 1998-06-30
# published per-customer holdout MAE on this CDNOW split (maximum likelihood fits)
PEER_MAE = {"BetaGeoModel": 0.7855, "ParetoNBDModel": 0.7545}


# ------------------------------------------------------------------- pure metrics
def test_auc_hand_examples():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tied positive/negative pair counts one half: (1 + 0.5 + 2) / 4
    assert auc([0.2, 0.5, 0.5, 0.9], [False, True, False, True]) == pytest.approx(0.875)
    assert auc([1.0, 2.0, 3.0], [0, 1, 1]) == 1.0
    assert auc([3.0, 2.0, 1.0], [0, 1, 1]) == 0.0
    assert np.isnan(auc([0.1, 0.2], [1, 1]))


def test_auc_equals_brute_force_pair_counting():
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(size=300), 1)  # many ties
    labels = rng.uniform(size=300) < 0.3 + 0.4 * scores
    pos, neg = scores[labels], scores[~labels]
    wins = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg))
    assert auc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_brier_and_coverage_hand_examples():
    assert brier_score([0.9, 0.2, 0.5], [1, 0, 0]) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert brier_score([0.5] * 4, [0, 1, 0, 1]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="probs"):
        brier_score([1.2], [1])
    # bounds are inclusive
    assert coverage([0, 2, 5, 3], [0, 0, 1, 4], [0, 2, 4, 6]) == pytest.approx(0.5)


def test_calibration_table_bins():
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])
    y = np.array([0, 1, 0, 1, 1, 0])
    table = calibration_table(p, y, n_bins=3)
    assert table["n"].tolist() == [2, 2, 2]
    np.testing.assert_allclose(table["mean_predicted"], [0.15, 0.5, 0.85])
    np.testing.assert_allclose(table["observed"], [0.0, 0.5, 1.0])


# ------------------------------------------------------------------- CDNOW, MAP fits
@pytest.fixture(scope="module")
def bg_eval(map_models):
    return evaluate(map_models["BetaGeoModel"], random_seed=1)


@pytest.fixture(scope="module")
def pnbd_eval(map_models):
    return evaluate(map_models["ParetoNBDModel"], prob=0.9, random_seed=2, n_draws=400)


def _fhl_expected_purchases(t, x, tx, T, r, alpha, a, b):
    """Conditional expectation of BG/NBD, equation (10) of Fader, Hardie & Lee (2005)."""
    ratio = (alpha + T) / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1) * (1 - ratio ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)))
    tail = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return head / tail


def test_evaluate_bgnbd_cdnow_values(bg_eval, map_models, cdnow_rfm):
    m = bg_eval.metrics
    assert m["actual_total"] == 1882
    params = map_models["BetaGeoModel"].summary()["mean"]
    predicted = _fhl_expected_purchases(HORIZON, cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"],
                                        *(params[k] for k in ("r", "alpha", "a", "b")))
    actual = cdnow_rfm["frequency_holdout"]
    assert m["mae"] == pytest.approx(np.mean(np.abs(predicted - actual)), rel=1e-8)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - actual) ** 2)), rel=1e-8)
    assert m["predicted_total"] == pytest.approx(predicted.sum(), rel=1e-8)
    assert m["bias"] == pytest.approx((m["predicted_total"] - 1882) / len(cdnow_rfm), rel=1e-10)
    assert m["correlation"] == pytest.approx(np.corrcoef(predicted, actual)[0, 1], rel=1e-8)
    assert m["mae"] == pytest.approx(PEER_MAE["BetaGeoModel"], abs=1e-3)
    assert bg_eval.horizon == HORIZON and bg_eval.time_unit == "W"


def test_evaluate_paretonbd_mae_matches_peer(pnbd_eval):
    assert pnbd_eval.metrics["actual_total"] == 1882
    assert pnbd_eval.metrics["mae"] == pytest.approx(PEER_MAE["ParetoNBDModel"], abs=1e-3)
    assert list(pnbd_eval.to_frame().columns)[-3:] == ["coverage_90", "interval_mass_90", "pit_coverage_90"]


def test_evaluate_customer_frame_is_consistent(bg_eval, cdnow_rfm, map_models):
    c = bg_eval.customers
    assert len(c) == len(cdnow_rfm)
    np.testing.assert_array_equal(c["customer_id"], cdnow_rfm["customer_id"])
    np.testing.assert_array_equal(c["actual"], cdnow_rfm["frequency_holdout"])
    bg = map_models["BetaGeoModel"]
    np.testing.assert_allclose(c["p_alive"], bg.probability_alive().values.ravel())
    np.testing.assert_allclose(c["p_active_holdout"],
                               1 - bg.probability_of_purchases(0, HORIZON).values.ravel())
    assert c["p_active_holdout"].between(0, 1).all()
    for label in ("50", "80", "90"):
        lo, hi = c[f"lower_{label}"], c[f"upper_{label}"]
        assert (lo <= hi).all() and (lo >= 0).all() and (lo == np.floor(lo)).all() and (hi == np.floor(hi)).all()
        np.testing.assert_array_equal(c[f"inside_{label}"], (lo <= c["actual"]) & (c["actual"] <= hi))
    # nested intervals
    assert (c["lower_90"] <= c["lower_50"]).all() and (c["upper_90"] >= c["upper_50"]).all()
    active = c["actual"] > 0
    assert bg_eval.metrics["auc"] == pytest.approx(auc(c["p_active_holdout"], active))
    assert bg_eval.metrics["brier"] == pytest.approx(np.mean((c["p_active_holdout"] - active) ** 2))
    assert 0.6 < bg_eval.metrics["auc"] < 0.9


def test_coverage_in_unit_interval_and_increasing(bg_eval):
    cov = [bg_eval.metrics[f"coverage_{p}"] for p in ("50", "80", "90")]
    assert all(0 <= v <= 1 for v in cov)
    assert cov[0] <= cov[1] <= cov[2] and cov[0] < cov[2]
    # whole-number intervals are inclusive: coverage is at least close to nominal
    assert cov[2] > 0.85


def test_calibration_deciles_and_frame(bg_eval, cdnow_rfm):
    cal = bg_eval.calibration
    assert len(cal) == 10 and cal["n"].sum() == len(cdnow_rfm)
    assert cal["mean_predicted"].is_monotonic_increasing
    c = bg_eval.customers
    overall = (cal["observed"] * cal["n"]).sum() / cal["n"].sum()
    assert overall == pytest.approx((c["actual"] > 0).mean())
    frame = bg_eval.to_frame()
    assert isinstance(bg_eval, EvaluationResult) and frame.shape == (1, len(bg_eval.metrics))
    assert frame.loc[0, "mae"] == bg_eval.metrics["mae"]


# ------------------------------------------------------------------- errors
def test_evaluate_errors(map_models, cdnow_rfm):
    bg = map_models["BetaGeoModel"]
    with pytest.raises(DataValidationError, match="frequency_holdout") as err:
        evaluate(bg, cdnow_rfm.drop(columns="frequency_holdout"))
    assert err.value.column == "frequency_holdout"
    uneven = cdnow_rfm.copy()
    uneven.loc[uneven.index[:2], "T_holdout"] = 20.0
    with pytest.raises(DataValidationError, match="T_holdout") as err:
        evaluate(bg, uneven)
    assert err.value.rows == list(cdnow_rfm["customer_id"].iloc[:2])
    with pytest.raises(ValueError, match="prob"):
        evaluate(bg, prob=(0.9, 1.5))
    with pytest.raises(NotFittedError):
        evaluate(bc.BetaGeoModel())
    with pytest.raises(TypeError, match="purchase-count"):
        evaluate(map_models["GammaGammaModel"])


# ------------------------------------------------------------------- MAPE and churn (issue 19, the seeds' metrics)
def test_mape_hand_examples():
    # |12 - 10| / 10 = 20%, |15 - 20| / 20 = 25%; the period with 0 actual purchases is left out and counted
    assert mape([10, 0, 20], [12, 3, 15]) == (pytest.approx(22.5), 1)
    assert mape([4.0], [5.0]) == (pytest.approx(25.0), 0)
    value, n_zero = mape([0, 0], [1, 2])
    assert np.isnan(value) and n_zero == 2
    with pytest.raises(ValueError, match="shape"):
        mape([1, 2], [1])


def test_confusion_counts_and_rates_by_hand():
    # two sets of predictions of four cases, outcomes yes, no, yes, no
    counts = confusion_counts([[1, 1, 0, 0], [1, 0, 0, 0]], [1, 0, 1, 0])
    assert {k: v.tolist() for k, v in counts.items()} == {"tp": [1, 1], "fp": [1, 0], "fn": [1, 1], "tn": [1, 2]}
    rates = classification_rates(**counts)
    np.testing.assert_allclose(rates["accuracy"], [0.5, 0.75])
    np.testing.assert_allclose(rates["precision"], [0.5, 1.0])
    np.testing.assert_allclose(rates["recall"], [0.5, 0.5])
    # nothing predicted yes: precision undefined; no yes at all: recall undefined
    none = classification_rates(*confusion_counts([0, 0], [1, 0]).values())
    assert np.isnan(none["precision"]) and none["recall"] == 0 and none["accuracy"] == 0.5
    assert np.isnan(classification_rates(0, 1, 0, 1)["recall"])


TINY = pd.DataFrame({
    "customer_id": list("abcdef"),
    "frequency": [0, 1, 5, 2, 0, 3], "recency": [0.0, 2, 27, 5, 0, 35], "T": [40.0, 40, 40, 40, 10, 38],
    "frequency_holdout": [0, 1, 2, 0, 1, 0], "T_holdout": 20.0,
})
TINY_DRAWS = {"r": [0.25, 0.3], "alpha": [4.0, 5.0], "a": [0.8, 1.2], "b": [2.5, 2.0]}


def _bgnbd_p_alive(x, tx, T, r, alpha, a, b):
    """P(alive | x, tx, T) of the BG/NBD, equation (13) of Fader, Hardie & Lee (2005)."""
    odds = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    return 1 / (1 + odds)


@pytest.fixture(scope="module")
def tiny_eval():
    """A BG/NBD with a two-draw posterior set by hand, evaluated on six customers."""
    data = TINY.copy()
    data.attrs["time_unit"] = "W"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = bc.BetaGeoModel().fit(data, method="map", progressbar=False)
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {k: (("chain", "draw"), np.array([v])) for k, v in TINY_DRAWS.items()}, coords={"chain": [0], "draw": [0, 1]})})
    model.fit_method = "nuts"
    return evaluate(model, prob=0.9, random_seed=0, n_draws=20)


def test_churn_per_draw_by_hand(tiny_eval):
    # the reference P(alive): a and e never bought again (1 in the BG/NBD); b and d look gone in both draws;
    # c is alive in draw 0 (0.564) and gone in draw 1 (0.451); f alive in both
    ref = np.array([[_bgnbd_p_alive(TINY["frequency"].to_numpy(), TINY["recency"].to_numpy(), TINY["T"].to_numpy(),
                                     *(TINY_DRAWS[k][d] for k in ("r", "alpha", "a", "b"))) for d in (0, 1)]])
    assert (ref[0, 0] < 0.5).tolist() == [False, True, False, True, False, False]
    assert (ref[0, 1] < 0.5).tolist() == [False, True, True, True, False, False]
    np.testing.assert_allclose(tiny_eval.customers["p_alive"], ref[0].mean(axis=0), rtol=1e-10)
    # churned (no holdout purchase): a, d, f. Draw 0 predicts b, d: tp d; fp b; fn a, f; tn c, e.
    # Draw 1 predicts b, c, d: tp d; fp b, c; fn a, f; tn e.
    churn = tiny_eval.churn
    assert churn["tp"].values.tolist() == [[1, 1]] and churn["fp"].values.tolist() == [[1, 2]]
    assert churn["fn"].values.tolist() == [[2, 2]] and churn["tn"].values.tolist() == [[2, 1]]
    np.testing.assert_allclose(churn["accuracy"], [[3 / 6, 2 / 6]])
    np.testing.assert_allclose(churn["precision"], [[1 / 2, 1 / 3]])
    np.testing.assert_allclose(churn["recall"], [[1 / 3, 1 / 3]])
    m = tiny_eval.metrics
    assert m["churn_accuracy"] == pytest.approx(5 / 12) and m["churn_precision"] == pytest.approx(5 / 12)
    assert m["churn_recall"] == pytest.approx(1 / 3)
    assert (m["churn_tp"], m["churn_fp"], m["churn_fn"], m["churn_tn"]) == (1.0, 1.5, 2.0, 1.5)
    # the 90% equal-tailed interval of the two draws' accuracy, 2/6 and 3/6: the 5% and 95% quantiles
    assert m["churn_accuracy_lower_90"] == pytest.approx(2 / 6 + 0.05 / 6)
    assert m["churn_accuracy_upper_90"] == pytest.approx(2 / 6 + 0.95 / 6)
    assert m["churn_recall_lower_90"] == m["churn_recall_upper_90"] == pytest.approx(1 / 3)
    # the aggregate MAPE is the absolute error of the predicted holdout total (4 purchases happened)
    assert m["actual_total"] == 4
    assert m["mape_total"] == pytest.approx(100 * abs(m["predicted_total"] - 4) / 4)
    # AUC of P(alive) against holdout buyers (b, c, e) vs non-buyers (a, d, f), ties counting half
    assert m["auc_p_alive"] == pytest.approx(auc(ref[0].mean(axis=0), TINY["frequency_holdout"] > 0))


def test_churn_threshold_moves_the_counts(tiny_eval):
    # above every P(alive) below 1 (draw 1's f is 0.724): four predicted churners in each draw
    churn = churn_draws(xr.DataArray(np.array([[[1.0, 0.2, 0.6, 0.1, 1.0, 0.8]]]),
                                     dims=("chain", "draw", "customer_id")), [1, 0, 0, 1, 0, 1], threshold=0.9)
    assert churn["tp"].item() == 2 and churn["fp"].item() == 2 and churn["fn"].item() == 1
    with pytest.raises(ValueError, match="churn_threshold"):
        churn_draws(xr.DataArray(np.ones((1, 1, 2)), dims=("chain", "draw", "customer_id")), [0, 1], threshold=1.5)


def test_churn_interval_is_nan_for_a_point_estimate(bg_eval):
    m = bg_eval.metrics
    assert 0 < m["churn_accuracy"] < 1 and np.isnan(m["churn_accuracy_lower_90"])
    assert m["churn_tp"] + m["churn_fp"] + m["churn_fn"] + m["churn_tn"] == 2357
    assert m["churn_tp"] + m["churn_fn"] == (bg_eval.customers["actual"] == 0).sum()


def test_period_mape_from_tracking(map_models, cdnow_rfm):
    tx = bc.datasets.load_cdnow("sample")
    result = evaluate(map_models["ParetoNBDModel"], prob=0.9, random_seed=0, n_draws=100, transactions=tx)
    tracking = result.tracking
    for part, mask in (("calibration", ~tracking["holdout"].values), ("holdout", tracking["holdout"].values)):
        actual = tracking["actual_incremental"].values[mask]
        predicted = tracking["predicted_incremental"].mean(("chain", "draw")).values[mask]
        kept = actual > 0
        assert result.metrics[f"zero_periods_{part}"] == (~kept).sum()
        assert result.metrics[f"mape_periods_{part}"] == pytest.approx(
            100 * np.mean(np.abs(predicted[kept] - actual[kept]) / actual[kept]))
    # weekly repeat purchases of 2,357 customers are noisy: the weekly error is tens of percent
    assert 5 < result.metrics["mape_periods_holdout"] < 60
