"""Segmentation and decisions: every function on tiny arrays whose answer is known by hand."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import bayesclv as bc
import bayesclv.offers as offers
from bayesclv import segment as sg
from bayesclv.errors import DataValidationError


def draws(rows, ids=None, name="clv"):
    """DataArray (chain=1, draw=len(rows), customer_id) from a list of per-draw rows."""
    data = np.asarray(rows, dtype=float)[None]
    ids = list(ids) if ids is not None else list("abcdefghij"[: data.shape[2]])
    return xr.DataArray(data, dims=("chain", "draw", "customer_id"),
                        coords={"chain": [0], "draw": np.arange(data.shape[1]), "customer_id": ids}, name=name)


# two draws of 5 customers: the order reverses between draws
CLV = draws([[50, 40, 30, 20, 10], [10, 20, 30, 40, 50]])


# --------------------------------------------------------------------------- tiers
def test_top_membership_counts_and_ties():
    top = sg.top_membership(CLV, 0.2)  # ceil(0.2 * 5) = 1 customer per draw
    np.testing.assert_array_equal(top.values[0], [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]])
    top40 = sg.top_membership(CLV, 0.4)
    np.testing.assert_array_equal(top40.values[0], [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]])
    # three customers tied for 2 places: each gets 2/3 of a place; the draw still holds exactly 2
    tied = sg.top_membership(draws([[5, 5, 5, 1]]), 0.5)
    np.testing.assert_allclose(tied.values[0, 0], [2 / 3, 2 / 3, 2 / 3, 0])
    # 0.3 * 10 must give 3 places, not ceil(3.0000000000000004) = 4
    assert sg.top_membership(draws([np.arange(10)]), 0.3).values.sum() == 3


def test_value_tiers_probabilities_and_certainty():
    # 3 draws of 5 customers; top two per draw: (a, c), (a, b), (b, a)
    clv = draws([[9, 0, 1, 0.5, 0.2], [9, 8, 0, 0.5, 0.2], [8, 9, 0, 0.5, 0.2]])
    table = sg.value_tiers(clv, top=(0.2, 0.4))
    assert table.loc["a", "p_top_20"] == pytest.approx(2 / 3)
    assert table.loc["b", "p_top_20"] == pytest.approx(1 / 3)
    assert table.loc["a", "p_top_40"] == pytest.approx(1.0)  # a in top two in every draw
    assert table.loc["b", "p_top_40"] == pytest.approx(2 / 3)
    assert table.loc["c", "p_top_40"] == pytest.approx(1 / 3)
    assert table.loc["a", "tier"] == "top 20%" and table.loc["a", "certainty"] == pytest.approx(2 / 3)
    # b: top 20% in 1/3, 20-40% in 1/3, rest in 1/3 -> first of the tied bands, certainty 1/3
    assert table.loc["b", "certainty"] == pytest.approx(1 / 3)
    assert table.loc["d", "tier"] == "rest" and table.loc["d", "certainty"] == 1.0
    assert list(table.index) == ["a", "b", "d", "c", "e"]  # sorted by mean CLV
    assert list(table["tier"].cat.categories) == ["top 20%", "top 20%-40%", "rest"]
    # expected number in the top 20% is exactly one customer
    assert table["p_top_20"].sum() == pytest.approx(1.0)


def test_value_tiers_rejects_bad_input():
    with pytest.raises(ValueError, match="increasing"):
        sg.value_tiers(CLV, top=(0.2, 0.1))
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        sg.value_tiers(CLV, top=(0.2, 1.0))
    with pytest.raises(ValueError, match="dims"):
        sg.value_tiers(CLV.isel(chain=0))
    with pytest.raises(TypeError):
        sg.value_tiers(CLV.values)
    bad = CLV.copy()
    bad[0, 1, 3] = np.nan
    with pytest.raises(DataValidationError) as err:
        sg.value_tiers(bad)
    assert err.value.column == "clv" and err.value.rows == ["d"]


# --------------------------------------------------------------------------- group totals
def test_group_totals_sum_per_draw():
    groups = pd.Series({"a": "x", "b": "x", "c": "y", "d": "y", "e": "y"})
    table = sg.group_totals(CLV, groups)
    # per draw: x = 90, 30; y = 60, 120; grand total 150 in both draws
    assert table.loc["x", "customers"] == 2 and table.loc["y", "customers"] == 3
    assert table.loc["x", "mean"] == pytest.approx(60.0)
    assert table.loc["y", "mean"] == pytest.approx(90.0)
    assert table.loc["x", "share_mean"] == pytest.approx((90 / 150 + 30 / 150) / 2)
    # 90% equal-tailed interval of the two values {30, 90}: 5th and 95th percentiles
    assert table.loc["x", "lower"] == pytest.approx(30 + 0.05 * 60)
    assert table.loc["x", "upper"] == pytest.approx(30 + 0.95 * 60)
    whole = sg.group_totals(CLV)
    assert whole.loc["all", "mean"] == 150.0 and whole.loc["all", "lower"] == 150.0
    assert whole.loc["all", "share_mean"] == 1.0
    # an array in customer order gives the same; categorical order and empty categories are kept
    same = sg.group_totals(CLV, np.array(["x", "x", "y", "y", "y"]))
    pd.testing.assert_frame_equal(same, table)
    cats = pd.Series(pd.Categorical(groups, categories=["y", "z", "x"]), index=groups.index)
    ordered = sg.group_totals(CLV, cats)
    assert list(ordered.index) == ["y", "z", "x"] and ordered.loc["z", "customers"] == 0


def test_group_totals_names_unlabelled_customers():
    with pytest.raises(DataValidationError) as err:
        sg.group_totals(CLV, pd.Series({"a": "x", "b": "x"}))
    assert err.value.column == "groups" and err.value.rows == ["c", "d", "e"]
    with pytest.raises(ValueError, match="2 labels for 5 customers"):
        sg.group_totals(CLV, ["x", "y"])


# --------------------------------------------------------------------------- lifecycle
RFM = pd.DataFrame({
    "customer_id": list("abcde"),
    "frequency": [0, 3, 3, 5, 1],
    "recency": [0.0, 10.0, 30.0, 38.0, 2.0],
    "T": [5.0, 40.0, 40.0, 40.0, 40.0],
})
RFM.attrs["time_unit"] = "W"


def test_lifecycle_stages_by_hand():
    p = draws([[0.9, 0.9, 0.9, 0.8, 0.2], [0.9, 0.5, 0.9, 0.8, 0.1]], name="p_alive")
    stages = sg.lifecycle_stages(p, RFM)
    labels = np.asarray(sg.STAGES)[stages.values[0]]
    # a: tenure 5 < 13 -> new; b: silent 30 > 26 -> at risk (draw 1 P=0.5 also at risk)
    # c: silent 10 -> active; d: silent 2 -> active; e: P < 0.3 -> lost
    assert labels.tolist() == [["new", "at risk", "active", "active", "lost"],
                               ["new", "at risk", "active", "active", "lost"]]
    # looser silence threshold (in months: 30 weeks < 12 months) makes b active in draw 0
    loose = sg.lifecycle_stages(p, RFM, new_within=3, inactive_after=12, unit="M")
    assert np.asarray(sg.STAGES)[loose.values[0, :, 1]].tolist() == ["active", "at risk"]
    customers, sizes = sg.stage_summary(loose)
    assert customers.loc["b", "p_active"] == 0.5 and customers.loc["b", "p_at_risk"] == 0.5
    assert customers.loc["b", "certainty"] == 0.5
    assert customers.loc["e", "stage"] == "lost" and customers.loc["e", "certainty"] == 1.0
    assert sizes.loc["active", "mean"] == pytest.approx(2.5)  # 3 in draw 0, 2 in draw 1
    assert sizes.loc["new", "mean"] == 1 and sizes["mean"].sum() == 5
    assert sizes["assigned"].sum() == 5


def test_lifecycle_stages_rejects_bad_input():
    p = draws([[0.9, 0.9, 0.9, 0.8, 0.2]], name="p_alive")
    with pytest.raises(ValueError, match="lost_below <= active_from"):
        sg.lifecycle_stages(p, RFM, active_from=0.2, lost_below=0.5)
    with pytest.raises(ValueError, match="unknown time_unit"):
        sg.lifecycle_stages(p, RFM, unit="fortnight")
    with pytest.raises(DataValidationError) as err:
        sg.lifecycle_stages(draws([[0.9, 1.2, 0.9, 0.8, 0.2]], name="p_alive"), RFM)
    assert err.value.rows == ["b"]
    with pytest.raises(DataValidationError) as err:
        sg.lifecycle_stages(p, RFM.iloc[:3])
    assert err.value.column == "customer_id" and err.value.rows == ["d", "e"]
    with pytest.raises(DataValidationError) as err:
        sg.lifecycle_stages(p, RFM.drop(columns="recency"))
    assert err.value.column == "recency"


# --------------------------------------------------------------------------- RFM scores
def test_rfm_scores_by_hand():
    rfm = pd.DataFrame({
        "customer_id": list("abcde"),
        "frequency": [0.0, 1, 2, 3, 4],
        "recency": [0.0, 1, 2, 3, 4],
        "T": [5.0, 5, 5, 5, 20],  # time since last purchase: 5, 4, 3, 2, 16
        "monetary_value": [5.0, 4, 3, 2, 1],
    })
    table = sg.rfm_scores(rfm)
    assert table["R"].tolist() == [2, 3, 4, 5, 1]
    assert table["F"].tolist() == [1, 2, 3, 4, 5]
    assert table["M"].tolist() == [5, 4, 3, 2, 1]
    assert table.loc["d", "rfm"] == "542"
    assert table["segment"].tolist() == ["hibernating", "needs attention", "loyal", "champions", "slipping away"]
    # ties share a score: four zeros of ten have average rank 2.5 -> ceil(5 * 2.5 / 10) = 2
    ten = pd.DataFrame({"customer_id": range(10), "frequency": [0.0] * 4 + list(range(1, 7)),
                        "recency": 0.0, "T": 1.0})
    scores = sg.rfm_scores(ten)
    assert scores["F"].tolist()[:4] == [2, 2, 2, 2] and "M" not in scores
    assert scores["R"].nunique() == 1  # everyone equally recent


def test_rfm_scores_rejects_bad_input():
    with pytest.raises(DataValidationError) as err:
        sg.rfm_scores(RFM.drop(columns="frequency"))
    assert err.value.column == "frequency"
    bad = RFM.copy()
    bad.loc[2, "recency"] = np.nan
    with pytest.raises(DataValidationError) as err:
        sg.rfm_scores(bad)
    assert err.value.column == "recency" and err.value.rows == ["c"]


# --------------------------------------------------------------------------- targeting
def test_incremental_value_and_targeting_by_hand():
    inc = offers.incremental_value(CLV, cost=12.0, uplift=0.5)
    # 0.5 * CLV - 12: draw 0 -> 13, 8, 3, -2, -7; draw 1 -> -7, -2, 3, 8, 13
    np.testing.assert_allclose(inc.values[0], [[13, 8, 3, -2, -7], [-7, -2, 3, 8, 13]])
    table = offers.targeting(inc, min_prob_positive=0.9)
    assert table.loc["c", "p_positive"] == 1.0 and table.loc["a", "p_positive"] == 0.5
    assert table.index.tolist() == list("abcde")  # every mean is 3; the stable sort keeps the order
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table.index[table["target"]].tolist() == ["c"]
    assert table.loc["b", "mean"] == pytest.approx(3.0)
    assert table.loc["a", "lower"] == pytest.approx(-7 + 0.05 * 20)


def test_targeting_ranks_by_expected_value():
    value = draws([[10, 100, 30], [20, 300, 50]])
    table = offers.targeting(offers.incremental_value(value, cost=4, uplift=0.1), min_prob_positive=0.5)
    # means: a 0.1*15-4 = -2.5, b 20-4 = 16, c 4-4 = 0 (p_positive 0.5: 3-4 < 0, 5-4 > 0)
    assert table.index.tolist() == ["b", "c", "a"]
    assert table["mean"].tolist() == pytest.approx([16.0, 0.0, -2.5])
    assert table["target"].tolist() == [True, True, False]
    gain = offers.cumulative_gain(offers.incremental_value(value, cost=4, uplift=0.1), table.index)
    np.testing.assert_allclose(gain.values[0], [[6, 5, 2], [26, 27, 25]])
    assert gain["n_targeted"].values.tolist() == [1, 2, 3]


def test_uncertain_uplift():
    value = draws([[100.0, 0.0]] * 4000)
    # uniform(0, 0.2) uplift on 100 at cost 5: positive when uplift > 0.05 -> P = 0.75
    inc = offers.incremental_value(value, cost=5, uplift=stats.uniform(0, 0.2), random_seed=1)
    table = offers.targeting(inc)
    assert table.loc["a", "p_positive"] == pytest.approx(0.75, abs=0.03)
    assert table.loc["a", "mean"] == pytest.approx(5.0, abs=0.3)
    assert table.loc["b", "p_positive"] == 0.0  # nothing to lift
    # uplift draws of the right length are used as given, in draw order
    exact = offers.incremental_value(value.isel(draw=slice(0, 2)), cost=0, uplift=[0.1, 0.3])
    np.testing.assert_allclose(exact.values[0, :, 0], [10, 30])
    # draws of another length are resampled
    resampled = offers.incremental_value(value, cost=0, uplift=[0.1, 0.3], random_seed=2)
    assert set(np.unique(resampled.values[0, :, 0])) == {10.0, 30.0}
    # per-customer uplift as a DataArray
    per = xr.DataArray([0.1, 0.5], dims="customer_id", coords={"customer_id": ["a", "b"]})
    assert offers.incremental_value(value, cost=1, uplift=per).values[0, 0].tolist() == [9.0, -1.0]


def test_targeting_rejects_bad_input():
    with pytest.raises(ValueError, match="cost"):
        offers.incremental_value(CLV, cost=-1, uplift=0.1)
    with pytest.raises(ValueError, match="uplift"):
        offers.incremental_value(CLV, cost=1, uplift=[[0.1]])
    with pytest.raises(ValueError, match="uplift"):
        offers.incremental_value(CLV, cost=1, uplift=float("nan"))
    with pytest.raises(ValueError, match="min_prob_positive"):
        offers.targeting(CLV, min_prob_positive=1.5)


# --------------------------------------------------------------------------- campaigns
def test_compare_groups_by_hand():
    table = offers.compare_groups(CLV, ["a", "b"], ["e"], names=("test", "control"))
    # draw 0: test mean 45, control 10 -> +35; draw 1: test 15, control 50 -> -35
    assert table.loc["test", "mean"] == pytest.approx(30.0)
    assert table.loc["control", "mean"] == pytest.approx(30.0)
    assert table.loc["difference", "mean"] == pytest.approx(0.0)
    assert table.loc["difference", "p_positive"] == 0.5
    assert table.loc["difference", "lower"] == pytest.approx(-35 + 0.05 * 70)
    assert table["customers"].tolist() == [2, 1, 3]
    one_sided = offers.compare_groups(draws([[3, 1], [4, 2]]), ["a"], ["b"])
    assert one_sided.loc["difference", "mean"] == 2.0 and one_sided.loc["difference", "p_positive"] == 1.0


def test_compare_groups_rejects_bad_groups():
    with pytest.raises(DataValidationError) as err:
        offers.compare_groups(CLV, ["a", "b"], ["b", "c"])
    assert err.value.rows == ["b"]
    with pytest.raises(DataValidationError) as err:
        offers.compare_groups(CLV, ["a", "zz"], ["c"])
    assert err.value.rows == ["zz"]
    with pytest.raises(DataValidationError, match="empty"):
        offers.compare_groups(CLV, [], ["c"])


# --------------------------------------------------------------------------- on a real posterior
def test_decisions_on_a_fitted_model(map_models, cdnow_rfm):
    """The functions accept model output as it comes: a MAP posterior (one draw) of CDNOW customers."""
    bg, gg = map_models["BetaGeoModel"], map_models["GammaGammaModel"]
    clv = bc.customer_lifetime_value(bg, gg, horizon=12, time_unit="M", discount_rate=0.01)
    tiers = sg.value_tiers(clv)
    n = len(cdnow_rfm)
    # one draw: ties aside, membership is certain and the top 10% holds ceil(0.1 n) customers
    assert tiers["p_top_10"].sum() == pytest.approx(np.ceil(0.1 * n))
    totals = sg.group_totals(clv, tiers["tier"])
    assert totals["customers"].sum() == n
    assert totals["mean"].sum() == pytest.approx(float(clv.sum()))
    stages, sizes = sg.stage_summary(sg.lifecycle_stages(bg.probability_alive(), cdnow_rfm))
    assert sizes["mean"].sum() == n and set(stages["stage"].unique()) <= set(sg.STAGES)
