"""MBG/NBD, BG/CNBD-k and MBG/CNBD-k model classes (bayesclv.models.mbgnbd, .cnbd).

The formulas themselves are checked in test_cnbd.py against numerical integration; here the
model layer: published CDNOW estimates through MAP, predictions equal to the formula module at
the fitted parameters (with recency mattering given alive for k > 1), k = 1 equal to the
BG/NBD, the litt data check, the summed kernel equal to the per-row graph, k saved with the
model, the choice of k on simulated data whose truth is k = 3, CLV and scale through the contract.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.errors import ArgumentError, DataValidationError
from bayesclv.formulas import NP, cnbd, mbgnbd
from bayesclv.scale import predict_summary

MAP = {"method": "map", "progressbar": False}
# BTYDplus' own BG/CNBD-k example (its cbs simulation): regular buyers with k = 3
TRUE_K, TRUTH = 3, {"r": 0.85, "alpha": 1.45, "a": 0.79, "b": 2.42}


@pytest.fixture(scope="module")
def rfm():
    return bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30",
                          litt=True)


@pytest.fixture(scope="module")
def fitted(rfm):
    return {name: make().fit(rfm, **MAP) for name, make in {
        "mbgnbd": bc.ModifiedBetaGeoModel, "bgcnbd1": lambda: bc.BetaGeoCNBDModel(k=1),
        "bgcnbd3": lambda: bc.BetaGeoCNBDModel(k=3), "mbgcnbd2": lambda: bc.ModifiedBetaGeoCNBDModel(k=2),
        "bgnbd": bc.BetaGeoModel}.items()}


def simulated_k3(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = rng.uniform(26.0, 52.0, n)
    sim = cnbd.simulate_population(T, **TRUTH, k=TRUE_K, rng=rng)
    frame = pd.DataFrame({"customer_id": np.arange(n), **{c: sim[c] for c in ("frequency", "recency", "T", "litt")}})
    frame.attrs["time_unit"] = "W"
    return frame


def _params(model) -> dict[str, float]:
    return {n: float(model.posterior[n].values.ravel()[0]) for n in model.parameter_names}


def test_mbgnbd_map_matches_the_published_cdnow_estimates(fitted):
    # lifetimes' and PyMC-Marketing's reference values (close to BTYDplus), CDNOW sample
    published = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    got = fitted["mbgnbd"].summary()["mean"]
    for name, value in published.items():
        assert got[name] == pytest.approx(value, rel=0.01), name
    assert fitted["mbgnbd"].display_name == "MBG/NBD"


def test_predictions_are_the_formula_module_at_the_fitted_parameters(fitted, rfm):
    data = rfm.iloc[::40]
    x, t_x, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    for name, module, options in (("mbgnbd", mbgnbd, {}), ("bgcnbd3", cnbd, {"k": 3}),
                                  ("mbgcnbd2", cnbd, {"k": 2, "modified": True})):
        model, p = fitted[name], {**_params(fitted[name]), **options}
        pairs = [
            (model.probability_alive(data), module.probability_alive(x, t_x, T, **p)),
            (model.expected_purchases(10.0, data), module.expected_purchases(10.0, x, t_x, T, **p)),
            (model.expected_purchases(10.0, data, given_alive=True),
             module.expected_purchases(10.0, x, t_x, T, **p, given_alive=True)),
            (model.probability_alive_at(6.0, data), module.probability_alive_at(6.0, x, t_x, T, **p)),
            (model.probability_of_purchases(2, 10.0, data), module.probability_of_purchases(2, 10.0, x, t_x, T, **p)),
            (model.expected_purchases_new_customer(np.array([5.0, 30.0])),
             module.expected_purchases_new_customer(np.array([5.0, 30.0]), **p)),
        ]
        for got, want in pairs:
            np.testing.assert_allclose(got.values.reshape(-1), np.ravel(want), rtol=1e-12, err_msg=name)
        loglik = model.log_likelihood(data).values.ravel()
        litt = () if module is mbgnbd else (data["litt"].to_numpy(),)
        np.testing.assert_allclose(loglik, module.loglik(*litt, x, t_x, T, **p, xp=NP), rtol=1e-12)


def test_given_alive_recency_matters_for_k_above_1_only(fitted, rfm):
    """Two customers with equal (frequency, T) and different recency: the Erlang phase of the next
    purchase is not memoryless, so the model must not share their futures given alive for k > 1."""
    twins = pd.DataFrame({"customer_id": ["early", "late"], "frequency": [3.0, 3.0], "recency": [5.0, 30.0],
                          "T": [35.0, 35.0], "litt": [np.log(5.0 / 3.0) * 3.0, np.log(10.0) * 3.0]})
    twins.attrs["time_unit"] = "W"
    x, t_x, T = (twins[c].to_numpy() for c in ("frequency", "recency", "T"))
    for name, options in (("bgcnbd3", {"k": 3}), ("mbgcnbd2", {"k": 2, "modified": True})):
        model, p = fitted[name], {**_params(fitted[name]), **options}
        for method in ("expected_purchases", "probability_alive_at"):
            got = getattr(model, method)(8.0, twins, given_alive=True).values.ravel()
            want = getattr(cnbd, method)(8.0, x, t_x, T, **p, given_alive=True)
            np.testing.assert_allclose(got, want, rtol=1e-12)
            assert abs(got[0] - got[1]) > 1e-3 * got.max(), (name, method)  # not shared over (x, T)
    one = fitted["bgcnbd1"]  # k = 1: memoryless, one value for both
    given = one.expected_purchases(8.0, twins, given_alive=True).values.ravel()
    assert given[0] == pytest.approx(given[1], rel=1e-13)
    assert one.alive_stand_ins == {"recency": "T"} and fitted["bgcnbd3"].alive_stand_ins == {}


def test_k1_is_the_bgnbd(fitted, rfm):
    bg, one = fitted["bgnbd"], fitted["bgcnbd1"]
    for name, value in _params(bg).items():
        assert _params(one)[name] == pytest.approx(value, rel=2e-4), name
    np.testing.assert_allclose(one.expected_purchases(39.0).values, bg.expected_purchases(39.0).values, rtol=2e-3)
    np.testing.assert_allclose(one.log_likelihood().values, bg.log_likelihood().values, rtol=1e-4)
    gg = bc.GammaGammaModel().fit(rfm, **MAP)
    clv = {name: bc.customer_lifetime_value(m, gg, horizon=12, time_unit="M", discount_rate=0.01).values
           for name, m in (("bg", bg), ("one", one))}
    np.testing.assert_allclose(clv["one"], clv["bg"], rtol=2e-3)


def test_clv_and_scale_through_the_contract(fitted, rfm):
    model = fitted["bgcnbd3"]
    gg = bc.GammaGammaModel().fit(rfm, **MAP)
    clv = bc.customer_lifetime_value(model, gg, horizon=12, time_unit="M", discount_rate=0.01)
    assert np.isfinite(clv.values).all() and (clv.values >= 0).all() and float(clv.sum()) > 0
    # the same customers' CLV without sharing across distinct histories
    few = rfm.iloc[:50]
    np.testing.assert_allclose(bc.customer_lifetime_value(model, gg, few, horizon=12, time_unit="M",
                                                          discount_rate=0.01).values,
                               clv.values[..., :50], rtol=1e-12)
    summary = predict_summary(model, "expected_purchases", rfm, t=39.0, progressbar=False)
    np.testing.assert_allclose(summary["mean"].to_numpy(),
                               model.expected_purchases(39.0).mean(("chain", "draw")).values, rtol=1e-12)
    assert "litt" not in model.history_columns  # the likelihood's constant does not split histories


def test_missing_or_impossible_litt_is_a_typed_error(rfm):
    model = bc.BetaGeoCNBDModel(k=2)
    with pytest.raises(DataValidationError, match=r"rfm_summary \(its litt column, on by default\)") as info:
        model.fit(rfm.drop(columns="litt"), **MAP)
    assert info.value.column == "litt"
    bad = rfm.copy()
    first_repeat = bad.index[bad["frequency"] > 0][0]
    first_single = bad.index[bad["frequency"] == 0][0]
    for row, value, message in ((first_single, 0.5, "without repeat purchases"),
                                (first_repeat, 1e3, "could not add up"), (first_repeat, np.nan, "missing")):
        broken = bad.copy()
        broken.loc[row, "litt"] = value
        with pytest.raises(DataValidationError, match=message) as info:
            model.fit(broken, **MAP)
        assert info.value.column == "litt" and info.value.rows == [broken.loc[row, "customer_id"]]
    # the MBG/NBD needs no litt
    assert bc.ModifiedBetaGeoModel.data_columns == ("frequency", "recency", "T")


def test_k_must_be_a_positive_whole_number():
    for k in (0, 1.5, "3", True):
        with pytest.raises(ArgumentError):
            bc.BetaGeoCNBDModel(k=k)
    with pytest.raises(TypeError):
        bc.ModifiedBetaGeoCNBDModel()  # k has no default: it is the model's structure


def test_summed_kernel_equals_the_per_row_graph_with_groups(rfm):
    data = rfm.assign(cohort=np.where(rfm["T"] > 32.0, "early", "late"))
    for model in (bc.ModifiedBetaGeoCNBDModel(k=3, group="cohort"), bc.BetaGeoCNBDModel(k=2, group="cohort",
                                                                                     pooling="none")):
        summed, rows = model.build_model(data, summed=True), model.build_model(data, summed=False)
        point = summed.initial_point()
        rng = np.random.default_rng(1)
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in point.items()}
        # each graph's density and gradient compiled together (one compilation per graph)
        (logp_summed, grad_summed), (logp_rows, grad_rows) = (
            graph.compile_fn([graph.logp(), graph.dlogp()])(point) for graph in (summed, rows))
        assert logp_summed == pytest.approx(logp_rows, rel=1e-10)
        np.testing.assert_allclose(grad_summed, grad_rows, rtol=1e-8, atol=1e-8)


def test_saved_model_keeps_k(fitted, rfm, tmp_path):
    model = fitted["mbgcnbd2"]
    model.save(tmp_path / "m.nc")
    loaded = bc.load(tmp_path / "m.nc")
    assert type(loaded) is bc.ModifiedBetaGeoCNBDModel and loaded.k == 2 and loaded.display_name == "MBG/CNBD-2"
    np.testing.assert_array_equal(loaded.expected_purchases(20.0).values, model.expected_purchases(20.0).values)


def test_select_k_by_map_finds_the_true_k_of_simulated_data():
    data = simulated_k3(1500, seed=7)
    table = bc.BetaGeoCNBDModel.select_k(data, k_max=5)
    assert table.attrs == {"best_k": TRUE_K, "criterion": "loglik"}
    assert list(table.index) == [1, 2, 3, 4, 5]
    assert list(table.columns) == ["r", "alpha", "a", "b", "loglik", "loglik_diff"]
    assert table.loc[TRUE_K, "loglik_diff"] == 0.0
    # the neighbours lose clearly (a log-likelihood ratio far beyond chance for one structural integer)
    assert table.loc[[2, 4], "loglik_diff"].min() > 20.0
    assert table.loc[1, "loglik_diff"] > table.loc[2, "loglik_diff"]
    # at the true k, the population parameters are recovered
    for name, value in TRUTH.items():
        assert table.loc[TRUE_K, name] == pytest.approx(value, rel=0.3), name
    # the fitted total equals the formula module's likelihood at the table's estimates
    point = table.loc[TRUE_K, list(TRUTH)].to_dict()
    total = cnbd.loglik(*(data[c].to_numpy() for c in ("litt", "frequency", "recency", "T")), **point, k=TRUE_K,
                        xp=NP).sum()
    assert table.loc[TRUE_K, "loglik"] == pytest.approx(total, rel=1e-10)


def test_select_k_by_loo_of_nuts_fits_prefers_the_true_k():
    data = simulated_k3(400, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = bc.ModifiedBetaGeoCNBDModel.select_k(data, k_max=3, method="nuts", draws=150, tune=150, chains=2,
                                                     random_seed=2)
    assert table.attrs == {"best_k": TRUE_K, "criterion": "elpd_loo"}
    assert {"elpd_loo", "se", "p_loo", "elpd_diff", "se_diff", "max_pareto_k", "max_r_hat"} <= set(table.columns)
    assert table.loc[TRUE_K, ["elpd_diff", "se_diff"]].tolist() == [0.0, 0.0]
    assert (table.loc[[1, 2], "elpd_diff"] > 2.0 * table.loc[[1, 2], "se_diff"]).all()
    with pytest.raises(ValueError, match="method"):
        bc.BetaGeoCNBDModel.select_k(data, method="advi")
