"""bc.compare: fit or take models on the same data, one table of LOO, holdout accuracy and fit cost."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.comparison import compare, observation_difference
from bayesclv.evaluate import evaluate
from bayesclv.testing import jittered_posterior

# published per-customer holdout MAE on this CDNOW split (maximum likelihood fits), as in test_evaluate
PEER_MAE = {"BG/NBD": 0.7855, "Pareto/NBD": 0.7545}


@pytest.fixture(scope="module")
def map_table(cdnow_rfm, map_models):
    """A fitted BG/NBD given as it is and a Pareto/NBD class fitted by compare (MAP)."""
    return compare({"BG/NBD": map_models["BetaGeoModel"], "Pareto/NBD": bc.ParetoNBDModel}, cdnow_rfm,
                   fit_kwargs={"method": "map"}, n_draws=300, random_seed=3)


def test_table_on_cdnow_sample_with_map_fits(map_table, map_models, cdnow_rfm):
    t = map_table
    assert list(t.index) == ["BG/NBD", "Pareto/NBD"] and t.index.name == "model"
    assert t["family"].tolist() == ["BG/NBD", "Pareto/NBD"] and (t["fit_method"] == "map").all()
    for name, mae in PEER_MAE.items():
        assert t.loc[name, "mae"] == pytest.approx(mae, abs=1e-3)
    assert (t["actual_total"] == 1882).all()
    np.testing.assert_allclose(t["total_error_pct"], 100 * (t["predicted_total"] - 1882) / 1882)
    # MAP fits: no LOO, and the table says why
    assert t[["elpd_loo", "elpd_diff", "max_pareto_k"]].isna().all().all() and t["rank"].isna().all()
    assert t["note"].str.contains("MAP fit").all()
    # fit cost comes from each fit's diagnostics, for the model fitted before compare and by it alike
    assert (t["fit_seconds"] > 0).all() and (t["fit_cpu_seconds"] > 0).all()
    assert t.loc["BG/NBD", "fit_seconds"] == map_models["BetaGeoModel"].diagnostics["fit_seconds"]
    # the holdout columns are evaluate()'s metrics with the same seed and draws
    bg = evaluate(map_models["BetaGeoModel"], cdnow_rfm, prob=0.9, n_draws=300, random_seed=3).metrics
    for col in ("rmse", "pit_coverage_90", "coverage_90", "interval_mass_90", "auc", "brier", "auc_p_alive"):
        assert t.loc["BG/NBD", col] == pytest.approx(bg[col], rel=1e-12)
    # randomised-PIT coverage of a calibrated model is exactly 90%: these fits are close
    assert t["pit_coverage_90"].between(0.85, 0.93).all()
    # the BG/NBD puts P(alive) = 1 on customers who never bought again, most of whom stay silent in the
    # holdout: its P(alive) ranks holdout buyers below chance, the Pareto/NBD's above
    assert t.loc["BG/NBD", "auc_p_alive"] < 0.5 < 0.65 < t.loc["Pareto/NBD", "auc_p_alive"]
    assert t.attrs == {"prob": 0.9, "loo_reference": "BG/NBD"}


@pytest.fixture(scope="module")
def sampled(map_models):
    """BG/NBD and Pareto/NBD with 2 x 150 draws jittered around their MAP estimates (LOO needs draws)."""
    return {name: jittered_posterior(copy.copy(map_models[cls]), chains=2, draws=150, jitter=0.03, random_seed=1)
            for name, cls in (("bg", "BetaGeoModel"), ("pnbd", "ParetoNBDModel"))}


def test_loo_ranks_models_on_the_same_observations(sampled):
    t = compare(sampled)  # both fitted: no data needed; no holdout columns asked for, LOO only
    assert np.isfinite(t[["elpd_loo", "p_loo", "se", "max_pareto_k"]].to_numpy(float)).all()
    assert t["rank"].tolist() == [0, 1] and t["elpd_diff"].iloc[0] == 0 < t["elpd_diff"].iloc[1]
    assert t["elpd_loo"].iloc[0] > t["elpd_loo"].iloc[1] and t["se_diff"].iloc[1] > 0
    # a few population parameters: p_loo small; a few thousand log-units for 2,357 customers
    assert (t["p_loo"] < 20).all() and t["elpd_loo"].between(-11000, -8000).all()


def test_loo_refused_when_observations_differ(sampled, cdnow_rfm):
    bg = sampled["bg"]
    fewer = copy.copy(bg)
    fewer.data = bg.data.iloc[:100]
    shifted = copy.copy(bg)
    shifted.data = bg.data.assign(T=bg.data["T"] + 1.0)
    t = compare({"all": bg, "fewer": fewer, "shifted": shifted}, holdout=cdnow_rfm, n_draws=100, random_seed=0)
    assert np.isfinite(t.loc["all", "elpd_loo"]) and t.loc["all", "rank"] == 0
    for name, reason in (("fewer", "other customers (0 not in the reference's data, 2,257 of its customers "
                                   "missing)"),
                         ("shifted", "other values of T (2,357 customers differ)")):
        row = t.loc[name]
        assert np.isnan(row["elpd_loo"]) and np.isnan(row["elpd_diff"]) and pd.isna(row["rank"])
        assert row["note"] == f"LOO refused: not the same observations as 'all', fitted to {reason}"
        # the holdout metrics still come: they score predictions on the holdout frame, not the fit
        assert np.isfinite(row["mae"])
    assert list(t.index) == ["all", "fewer", "shifted"]


def test_observation_difference_reads_the_likelihood_columns(map_models):
    bg = map_models["BetaGeoModel"]
    assert observation_difference(bg, map_models["ParetoNBDModel"]) is None
    discrete = copy.copy(bg)
    discrete.data_columns = ("frequency", "recency", "periods")  # a family observing purchase opportunities
    assert observation_difference(discrete, bg) == ("its likelihood observes frequency, recency, periods, "
                                                    "the reference's frequency, recency, T")
    # a statistic of the same purchase times entering the likelihood as a constant (the CNBD-k's litt)
    # leaves the observations as they are
    timing = copy.copy(bg)
    timing.data_columns, timing.likelihood_only_columns = ("litt", "frequency", "recency", "T"), ("litt",)
    assert observation_difference(timing, bg) is None


def test_specs_checked_before_any_fit(cdnow_rfm, map_models):
    first = bc.BetaGeoModel()
    with pytest.raises(ValueError, match="cannot be fitted by 'map'"):
        compare([first, bc.HierarchicalBetaGeoModel], cdnow_rfm, fit_kwargs={"method": "map"})
    assert first.idata is None  # refused before the first fit
    with pytest.raises(TypeError, match="purchase-count models"):
        compare([bc.BetaGeoModel, map_models["GammaGammaModel"]], cdnow_rfm)
    with pytest.raises(ValueError, match="not fitted: pass data"):
        compare([bc.BetaGeoModel])
    with pytest.raises(ValueError, match="empty"):
        compare({})
    with pytest.raises(TypeError, match="spec pair"):
        compare([(bc.BetaGeoModel, "map")], cdnow_rfm)
    with pytest.raises(ValueError, match="prob"):
        compare([map_models["BetaGeoModel"]], prob=1.5)
    with pytest.raises(ValueError, match="'BG/NBD \\(2\\)' is not fitted"):
        compare([map_models["BetaGeoModel"], bc.BetaGeoModel()])


def test_list_names_and_own_fit_arguments(cdnow_rfm, map_models):
    small = cdnow_rfm.iloc[:300].copy()
    small.attrs = dict(cdnow_rfm.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short ADVI run
        t = compare([(bc.BetaGeoModel, {"method": "advi", "draws": 100, "tune": 50, "random_seed": 2}),
                     bc.BetaGeoModel()], small, fit_kwargs={"method": "map"}, n_draws=100, random_seed=0)
    assert set(t.index) == {"BG/NBD", "BG/NBD (2)"}
    assert t.loc["BG/NBD", "fit_method"] == "advi" and t.loc["BG/NBD (2)", "fit_method"] == "map"
    assert np.isfinite(t.loc["BG/NBD", "elpd_loo"]) and "ADVI" in t.loc["BG/NBD", "note"]
    assert (t["actual_total"] == small["frequency_holdout"].sum()).all()


def test_compare_sampled_and_map_fits(cdnow_rfm, map_models):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny fits: convergence warnings expected
        nuts = bc.BetaGeoModel().fit(cdnow_rfm, draws=100, tune=100, chains=2, random_seed=5, progressbar=False)
        advi = bc.BetaGeoModel().fit(cdnow_rfm, method="advi", draws=200, tune=100, random_seed=5,
                                     progressbar=False)
        table = compare({"map": map_models["BetaGeoModel"], "advi": advi, "nuts": nuts}, random_seed=0)
    assert list(table.index[2:]) == ["map"]
    sampled = table.loc[["advi", "nuts"]]
    assert np.isfinite(sampled[["elpd_loo", "p_loo", "se", "max_pareto_k"]].to_numpy(float)).all()
    assert sorted(sampled["rank"].tolist()) == [0, 1]
    assert table["elpd_loo"].iloc[0] >= table["elpd_loo"].iloc[1]
    assert table["elpd_diff"].iloc[0] == 0 and table["elpd_diff"].iloc[1] >= 0
    # a 4-parameter population model: few effective parameters, a few thousand log-units for 2357 customers
    assert 1 < table.loc["nuts", "p_loo"] < 20 and -11000 < table.loc["nuts", "elpd_loo"] < -8000
    assert table.loc["nuts", "n_pareto_k_gt_0_7"] == 0
    assert "ADVI" in table.loc["advi", "note"]
    mp = table.loc["map"]
    assert pd.isna(mp["rank"]) and np.isnan(mp["elpd_loo"]) and "MAP" in mp["note"]
    # holdout columns are evaluate()'s metrics
    assert mp["mae"] == pytest.approx(PEER_MAE["BG/NBD"], abs=1e-3)
    assert (table["actual_total"] == 1882).all()
    assert table.loc["nuts", "coverage_90"] == pytest.approx(
        evaluate(nuts, prob=0.9, random_seed=0).metrics["coverage_90"])


def test_comparison_page_in_words(map_table):
    from bayesclv.report.comparison import comparison_page

    page = comparison_page(map_table, title="CDNOW <sample>", subtitle="MAP & more")
    assert "CDNOW &lt;sample&gt;" in page and "MAP &amp; more" in page  # user text escaped
    assert "No LOO: every model is a point estimate or not comparable." in page
    assert f"Lowest holdout MAE: Pareto/NBD ({map_table.loc['Pareto/NBD', 'mae']:.4f}" in page
    assert "1,654 / 1,882 (-12.1%)" in page or "1,653 / 1,882 (-12.1%)" in page  # BG/NBD's predicted total
    assert page.count("MAP fit: a point estimate has no posterior draws") == 2  # each model's note, listed
    assert "customers inside their 90% predictive interval, by randomised PIT" in page


def test_note_says_when_nuts_did_not_converge(sampled):
    poor = copy.copy(sampled["bg"])
    poor.diagnostics = {**sampled["bg"].diagnostics, "max_r_hat": 1.06, "min_ess_bulk": 92.0, "divergences": 3,
                        "ok": False}
    gibbs = copy.copy(poor)
    gibbs.fit_method = "gibbs"  # the Pareto/GGG's sweeps are not NUTS: the note names no sampler it did not use
    # one table (each row's LOO costs seconds); the notes only: a frame without the holdout columns skips the
    # holdout simulation, which the notes do not read
    calibration = sampled["bg"].data.drop(columns=["frequency_holdout", "T_holdout"])
    t = compare({"ok": sampled["bg"], "poor": poor, "gibbs": gibbs}, holdout=calibration)
    assert t.loc["poor", "note"].startswith("NUTS not converged (max R-hat 1.060, min bulk ESS 92, 3 divergences): "
                                            "its numbers are provisional")
    assert "not converged" not in t.loc["ok", "note"]
    assert t.loc["gibbs", "note"].startswith("MCMC not converged (max R-hat")


def test_page_headline_carries_the_loo_caveat():
    from bayesclv.report.comparison import comparison_page

    cols = dict(family=["A", "B"], fit_method=["nuts", "nuts"], fit_seconds=[1.0, 1.0], fit_cpu_seconds=[1.0, 1.0],
                rank=[0, 1], elpd_loo=[-100.0, -110.0], se=[5.0, 5.0], elpd_diff=[0.0, 10.0], se_diff=[0.0, 3.0],
                max_pareto_k=[0.9, 0.5], n_pareto_k_gt_0_7=[1162.0, 0.0], mae=[0.8, 0.7], rmse=[1.0, 1.0],
                predicted_total=[10.0, 11.0], actual_total=[12.0, 12.0], total_error_pct=[-16.7, -8.3],
                pit_coverage_90=[0.9, 0.9], auc_p_alive=[0.7, 0.7], brier=[0.2, 0.2], note=["", ""])
    table = pd.DataFrame(cols, index=["a", "b"])
    page = comparison_page(table)
    assert ("Best by LOO: A (a). The ranking is provisional: LOO is unreliable for 1,162 customers of the best "
            "model (Pareto k above 0.7; 1 of 2 ranked models has such customers).") in page
    table["n_pareto_k_gt_0_7"] = [0.0, 3.0]
    assert "unreliable for some customers of 1 other model (Pareto k above 0.7; 1 of 2" in comparison_page(table)
    table["n_pareto_k_gt_0_7"] = 0.0
    assert "provisional" not in comparison_page(table)
