"""Every model class against the model contract (bayesclv.models.contract), one row per model.

The idea of scikit-learn's ``check_estimator``: a table of configured models,
each fitted fast on small data (MAP where the model allows it, short ADVI for
the individual-level models), and one set of checks run on every row. Adding a
model family means adding a row to ``ROWS``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import purchase_pmf

import bayesclv as bc
from bayesclv.data.discrete import censor_retention
from bayesclv.errors import NotFittedError
from bayesclv.formulas import paretoggg
from bayesclv.models.contract import FittedModel, ResidualModel, RetentionModel, SpendModel, TransactionModel
from bayesclv.priors import Prior

MAP = {"method": "map", "progressbar": False}
ADVI = {"method": "advi", "tune": 20, "draws": 30, "random_seed": 5, "progressbar": False}
NUTS = {"method": "nuts", "tune": 40, "draws": 30, "chains": 1, "random_seed": 5, "progressbar": False}
GIBBS = {"method": "gibbs", "tune": 100, "draws": 60, "thin": 2, "chains": 1, "random_seed": 5, "progressbar": False}


@dataclass(frozen=True)
class Row:
    """A configured model, the data it is fitted to and how (fast)."""

    name: str
    make: Any
    fit: dict[str, Any] = field(default_factory=lambda: dict(MAP))
    # "rfm": every 8th CDNOW sample customer (295); "small": every 5th of those (59); "donations": the BG/BB
    # table as shipped (22 rows standing for 11,104 donors); "retention": every 4th customer of the two
    # shifted-BG segments, years 1-7 (500); "regular": 60 simulated Pareto/GGG customers (regular timing, k ~ 4)
    data: str = "rfm"


# The Pareto/GGG row: a short NUTS run on a simulated base whose population the priors keep in the region
# the data identify. With its default, wide priors such a run can stop where the population's regularity
# shape is tiny, and new customers drawn from it would make more purchases than a simulation reaches.
REGULAR = {"t": 16.0, "gamma": 4.0, "r": 4.0, "alpha": 16.0, "s": 2.0, "beta": 100.0}
REGULAR_PRIORS = {"k_cv2": Prior("HalfNormal", sigma=0.1), "lam_cv2": Prior("HalfNormal", sigma=0.5),
                  "mu_mean": Prior("HalfNormal", sigma=0.1), "mu_cv2": Prior("HalfNormal", sigma=1.0)}


ROWS = [
    Row("BetaGeoModel", lambda: bc.BetaGeoModel()),
    Row("ParetoNBDModel", lambda: bc.ParetoNBDModel()),
    Row("GammaGammaModel", lambda: bc.GammaGammaModel()),
    Row("BetaGeoModel(group, partial)", lambda: bc.BetaGeoModel(group="cohort")),
    Row("ParetoNBDModel(group, none)", lambda: bc.ParetoNBDModel(group="cohort", pooling="none")),
    Row("ParetoNBDModel(covariates)", lambda: bc.ParetoNBDModel(covariates=["z"])),
    Row("BetaGeoModel(group, covariates)", lambda: bc.BetaGeoModel(group="cohort", covariates=["z"])),
    Row("GammaGammaModel(group, covariates)", lambda: bc.GammaGammaModel(group="cohort", covariates=["z"])),
    Row("HierarchicalParetoNBDModel(covariates)", lambda: bc.HierarchicalParetoNBDModel(covariates=["z"]),
        fit=ADVI, data="small"),
    Row("HierarchicalBetaGeoModel(covariates, group)",
        lambda: bc.HierarchicalBetaGeoModel(covariates=["z"], group="cohort"), fit=ADVI, data="small"),
    Row("ModifiedBetaGeoModel", lambda: bc.ModifiedBetaGeoModel()),
    Row("BetaGeoCNBDModel(k=3, nuts)", lambda: bc.BetaGeoCNBDModel(k=3), fit=NUTS, data="small"),
    Row("ModifiedBetaGeoCNBDModel(k=2, group, partial)", lambda: bc.ModifiedBetaGeoCNBDModel(k=2, group="cohort")),
    Row("GompertzNBDModel", lambda: bc.GompertzNBDModel()),
    Row("GompertzNBDModel(nuts)", lambda: bc.GompertzNBDModel(), fit=NUTS, data="small"),
    Row("ParetoGGGModel(nuts)", lambda: bc.ParetoGGGModel(priors=REGULAR_PRIORS), fit=NUTS, data="regular"),
    Row("ParetoGGGModel(gibbs)", lambda: bc.ParetoGGGModel(priors=REGULAR_PRIORS), fit=GIBBS, data="regular"),
    Row("BetaGeoBetaBinomModel", lambda: bc.BetaGeoBetaBinomModel(), data="donations"),
    Row("ShiftedBetaGeoModel(group, partial)", lambda: bc.ShiftedBetaGeoModel(group="segment"), data="retention"),
]
UNITS = {"rfm": "W", "small": "W", "donations": "opportunity", "retention": "Y", "regular": "W"}
IDS = [row.name for row in ROWS]


@pytest.fixture(scope="module")
def frames(cdnow_rfm):
    cohorts = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30",
                             cohort="M").set_index("customer_id")["cohort"]
    litt = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30",
                          litt=True).set_index("customer_id")["litt"]  # for the CNBD-k rows
    rfm = cdnow_rfm.iloc[::8].reset_index(drop=True)  # every cohort (month of the first purchase)
    rfm["cohort"] = rfm["customer_id"].map(cohorts)
    rfm["litt"] = rfm["customer_id"].map(litt)
    rfm["z"] = (rfm["T"] - rfm["T"].mean()) / rfm["T"].std()
    rfm.attrs = dict(cdnow_rfm.attrs)
    small = rfm.iloc[::5].reset_index(drop=True)
    small.attrs = dict(rfm.attrs)
    retention = censor_retention(bc.datasets.load_retention(), 7).iloc[::4].reset_index(drop=True)
    retention.attrs["time_unit"] = "Y"
    rng = np.random.default_rng(11)
    sim = paretoggg.simulate_population(rng.uniform(30.0, 52.0, 60), *REGULAR.values(), rng=rng)
    regular = pd.DataFrame({"customer_id": np.arange(60),
                            **{c: sim[c] for c in ("frequency", "recency", "T", "litt")}})
    regular.attrs["time_unit"] = "W"
    return {"rfm": rfm, "small": small, "donations": bc.datasets.load_donations(), "retention": retention,
            "regular": regular}


def _customers(model, data: pd.DataFrame) -> pd.DataFrame:
    """One row per customer: a compressed table's rows repeated ``weights`` times."""
    df = model.prediction_data(data)
    if "weights" not in df.columns:
        return df
    out = df.loc[df.index.repeat(df["weights"])].drop(columns="weights").reset_index(drop=True)
    return out.assign(customer_id=np.arange(len(out)))


def _fit(row: Row, data: pd.DataFrame):
    model = row.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits and free repeat buyers warn by design
        fitted = model.fit(data, **row.fit)
    assert fitted is model, "fit returns self"
    return model


@pytest.fixture(scope="module")
def fitted(frames):
    return {row.name: _fit(row, frames[row.data]) for row in ROWS}


def _predictions(model, data: pd.DataFrame) -> dict[str, Any]:
    """Every prediction of the model's contract, on ``data``."""
    if isinstance(model, TransactionModel):
        ends, factors = np.array([4.0, 8.0, 13.0]), np.array([0.99, 0.98, 0.97])
        return {
            "probability_alive": model.probability_alive(data),
            "probability_alive_at": model.probability_alive_at(6.0, data),
            "expected_purchases": model.expected_purchases(13.0, data),
            "discounted_expected_purchases": model.discounted_expected_purchases(ends, factors, data),
            "discounted_probability_alive": model.discounted_probability_alive(ends - 4.0, factors, data),
            "probability_of_purchases": model.probability_of_purchases(1, 13.0, data),
            "sample_purchases": model.sample_purchases(13.0, data, random_seed=3),
            "log_likelihood": model.log_likelihood(data),
        }
    if isinstance(model, RetentionModel):
        return {
            "survival": model.survival(3, data),
            "retention_rate": model.retention_rate(2, data),
            "sample_residual_lifetime": model.sample_residual_lifetime(data, random_seed=3),
            "log_likelihood": model.log_likelihood(data),
        }
    return {"expected_spend": model.expected_spend(data), "log_likelihood": model.log_likelihood(data)}


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_unfitted_model_raises_not_fitted(row):
    model = row.make()
    assert isinstance(model, FittedModel)
    for call in (lambda: model.posterior, model.check_fitted, model.prediction_data, model.log_likelihood,
                 model.summary, lambda: model.save("never-written.nc")):
        with pytest.raises(NotFittedError):
            call()
    for name in ("probability_alive", "expected_spend"):
        if hasattr(model, name):
            with pytest.raises(NotFittedError):
                getattr(model, name)()
    if isinstance(model, RetentionModel):
        for call in (model.survival, model.population_survival):
            with pytest.raises(NotFittedError):
                call(1)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_predictions_have_dims_attrs_and_named_intervals(row, fitted, frames):
    model, data = fitted[row.name], frames[row.data]
    protocols = (TransactionModel, SpendModel, RetentionModel)
    assert sum(isinstance(model, p) for p in protocols) == 1
    assert model.time_unit == UNITS[row.data]
    post = model.posterior
    for name, values in _predictions(model, data).items():
        assert values.dims == ("chain", "draw", "customer_id"), name
        assert values.shape == (post.sizes["chain"], post.sizes["draw"], len(data)), name
        np.testing.assert_array_equal(values["customer_id"].values, model.prediction_data(data)["customer_id"])
        assert values.attrs["time_unit"] == UNITS[row.data], name
        outcome = name.startswith("sample_")
        assert values.attrs["quantity"] == ("outcome" if outcome else "expectation"), name
        # a spend likelihood exists for repeat buyers only
        defined = data["frequency"].to_numpy() > 0 if isinstance(model, SpendModel) and name == "log_likelihood" \
            else slice(None)
        assert np.isfinite(values.values[..., defined]).all(), name
        point = row.fit["method"] == "map"  # a point estimate: marked, and its intervals never credible
        assert values.attrs["point_estimate"] == int(point), name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bc.errors.PointEstimateWarning)
            kind = bc.intervals(values.isel(customer_id=slice(0, 5)), prob=0.8, method="eti")["interval"].iloc[0]
        assert kind == ("point estimate (no posterior uncertainty)" if point else
                        "80% predictive (eti)" if outcome else "80% credible (eti)"), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.PointEstimateWarning)
        table = model.summary()
    assert list(table.columns) == ["mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]
    assert np.isfinite(table["mean"]).all()
    assert table.attrs["point_estimate"] == int(row.fit["method"] == "map")


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_datatree_has_the_groups_arviz_reads(row, fitted, frames):
    model, data = fitted[row.name], frames[row.data]
    weighted = getattr(model, "weight_column", None) in model.data
    if weighted:  # a row of a compressed table stands for several customers: no one simulated history per row
        with pytest.raises(ValueError, match="stand for several customers"):
            model.to_datatree(posterior_predictive=True, random_seed=2)
    tree = model.to_datatree(posterior_predictive=not weighted, random_seed=2)
    assert {"posterior", "observed_data", "constant_data", "log_likelihood"} <= set(tree.children)
    (observed,) = tree["observed_data"].data_vars  # one per customer: ArviZ pairs it with the log-likelihood
    expected = ("monetary_value" if isinstance(model, SpendModel) else
                model.observed_columns[0] if isinstance(model, RetentionModel) else "frequency")
    assert observed == expected
    assert set(tree["log_likelihood"].data_vars) == {observed}
    fitted_data = model.data
    np.testing.assert_array_equal(tree["observed_data"][observed].values, fitted_data[observed].to_numpy())
    if "T" in model.data_columns:
        assert "T" in tree["constant_data"]
    np.testing.assert_array_equal(tree["log_likelihood"][observed].values, model.log_likelihood().values)
    if not weighted:
        replicated = tree["posterior_predictive"][observed]
        assert set(tree["posterior_predictive"].data_vars) == {observed}
        assert replicated.shape == model.log_likelihood().shape and np.isfinite(replicated.values).all()
    assert tree["posterior"].attrs["point_estimate"] == int(row.fit["method"] == "map")


PURCHASE_ROWS = [r for r in ROWS if "GammaGamma" not in r.name and "Shifted" not in r.name]


@pytest.mark.parametrize("row", PURCHASE_ROWS, ids=lambda r: r.name)
def test_purchase_quantities_agree_with_each_other(row, fitted, frames):
    model, data = fitted[row.name], frames[row.data]
    alive = model.probability_alive(data).values
    together = model.customer_predictions(13.0, data)
    np.testing.assert_allclose(together["probability_alive"].values, alive, rtol=1e-12)
    np.testing.assert_allclose(together["expected_purchases"].values, model.expected_purchases(13.0, data).values,
                               rtol=1e-12)
    for method, t in (("expected_purchases", 13.0), ("probability_alive_at", 6.0)):
        given = getattr(model, method)(t, data, given_alive=True).values
        np.testing.assert_allclose(getattr(model, method)(t, data).values, given * alive, rtol=1e-12)
    # a discounted sum is the sum of its discounted increments
    ends, factors = np.array([4.0, 8.0, 13.0]), np.array([0.99, 0.98, 0.97])
    cumulative = [model.expected_purchases(t, data).values for t in ends]
    increments = [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:], strict=False)]
    np.testing.assert_allclose(model.discounted_expected_purchases(ends, factors, data).values,
                               sum(f * x for f, x in zip(factors, increments, strict=True)), rtol=1e-9, atol=1e-12)
    service = sum(f * model.probability_alive_at(t, data).values for t, f in zip(ends - 4.0, factors, strict=True))
    np.testing.assert_allclose(model.discounted_probability_alive(ends - 4.0, factors, data).values, service,
                               rtol=1e-12)
    # the count's pmf sums to one
    np.testing.assert_allclose(purchase_pmf(model, 4.0, data.iloc[:20], n_max=100).sum(axis=0), 1.0, atol=1e-6)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_distinct_histories_give_every_customer_their_predictions(row, fitted, frames):
    model, data = fitted[row.name], frames[row.data]
    df = model.prediction_data(data)
    assert set(model.history_columns) <= set(df.columns)
    histories, codes = model.distinct_histories(df)
    assert codes.shape == (len(df),) and len(histories) <= len(df)
    method = "probability_alive" if isinstance(model, TransactionModel) else "expected_spend"
    if isinstance(model, RetentionModel):
        def method_of(frame):
            return model.survival(2, frame)
    else:
        method_of = getattr(model, method)
    by_history = method_of(histories).values[..., codes]
    np.testing.assert_allclose(by_history, method_of(df).values, rtol=1e-12)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_save_load_round_trip_is_exact(row, fitted, frames, tmp_path):
    model, data = fitted[row.name], frames[row.data]
    model.save(tmp_path / "model.nc")
    loaded = bc.load(tmp_path / "model.nc")
    assert type(loaded) is type(model)
    for name in model.posterior.data_vars:
        np.testing.assert_array_equal(loaded.posterior[name].values, model.posterior[name].values)
    before, after = _predictions(model, data), _predictions(loaded, data)
    for name in before:
        np.testing.assert_array_equal(after[name].values, before[name].values, err_msg=name)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_same_seed_same_fit_and_simulations(row, fitted, frames):
    model, data = fitted[row.name], frames[row.data]
    if "random_seed" in row.fit:  # a MAP fit has no randomness to seed
        again = _fit(row, data)
        for name in model.posterior.data_vars:
            np.testing.assert_array_equal(again.posterior[name].values, model.posterior[name].values, err_msg=name)
    if isinstance(model, TransactionModel):
        first, second = (model.sample_purchases(13.0, data, random_seed=11).values for _ in range(2))
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(first, model.sample_purchases(13.0, data, random_seed=12).values)
    if isinstance(model, RetentionModel):
        first, second = (model.sample_residual_lifetime(data, random_seed=11).values for _ in range(2))
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(first, model.sample_residual_lifetime(data, random_seed=12).values)


@pytest.mark.parametrize("row", [r for r in ROWS if "GammaGamma" not in r.name], ids=lambda r: r.name)
def test_population_simulation_gives_valid_histories(row, fitted, frames):
    model, data = fitted[row.name], _customers(fitted[row.name], frames[row.data])
    n_samples = model.posterior.sizes["chain"] * model.posterior.sizes["draw"]
    sample = np.array([0, n_samples - 1, n_samples - 1, n_samples // 2])
    sim = model.simulate_population(sample, data, random_seed=2)
    if isinstance(model, RetentionModel):  # observed for up to as many periods as the data; churned in the last
        assert set(sim) == {"periods", "churned"} and sim["periods"].shape == (len(sample), len(data))
        assert ((sim["periods"] >= 1) & (sim["periods"] <= data["periods"].to_numpy())).all()
        assert (sim["churned"][sim["periods"] < data["periods"].to_numpy()] == 1).all()
        np.testing.assert_array_equal(model.simulate_population(sample, data, random_seed=2)["periods"],
                                      sim["periods"])
        for i in range(len(sample)):  # every simulated history passes the model's own data check
            model.prediction_data(data.assign(**{c: v[i] for c, v in sim.items()}))
        return
    assert set(sim) == set(model.data_columns) - {"T", "periods"}  # each keeps T (periods); CNBD-k simulates litt
    freq, rec = sim["frequency"], sim["recency"]
    assert freq.shape == rec.shape == (len(sample), len(data))
    T = data["periods" if "periods" in data.columns else "T"].to_numpy()
    assert (freq >= 0).all() and (freq == np.round(freq)).all()
    assert ((rec >= 0) & (rec <= T)).all() and (rec[freq == 0] == 0).all()
    for i in range(len(sample)):  # every simulated history passes the model's own data check
        model.prediction_data(data.assign(**{c: v[i] for c, v in sim.items()}))
    again = model.simulate_population(sample, data, random_seed=2)
    np.testing.assert_array_equal(again["frequency"], freq)
    # the check that uses it: one simulated histogram per posterior draw
    ppc = bc.frequency_ppc(model, data, n_draws=5, random_seed=1)
    assert (ppc["predicted"].sum("frequency") == len(data)).all()


@pytest.mark.parametrize("row", [r for r in ROWS if isinstance(r.make(), ResidualModel)], ids=lambda r: r.name)
def test_residual_predictions_bound_their_finite_horizon_sums(row, fitted, frames):
    """DERT and the residual lifetime are integrals over the whole future: on a grid, the sums that take each
    period's lowest discount factor (or survival) are lower bounds; the alive factor splits off as for the rest."""
    model, data = fitted[row.name], frames[row.data].iloc[:40]
    delta, ends = 0.05, np.arange(4.0, 204.0, 4.0)
    alive = model.probability_alive(data).values
    dert = model.discounted_expected_residual_transactions(delta, data)
    life = model.expected_residual_lifetime(data)
    for values in (dert, life):
        assert values.dims == ("chain", "draw", "customer_id") and values.attrs["quantity"] == "expectation"
    np.testing.assert_allclose(dert.values, alive * model.discounted_expected_residual_transactions(
        delta, data, given_alive=True).values, rtol=1e-12)
    np.testing.assert_allclose(life.values, alive * model.expected_residual_lifetime(data, given_alive=True).values,
                               rtol=1e-12)
    below = model.discounted_expected_purchases(ends, np.exp(-delta * ends), data).values
    assert np.isfinite(dert.values).all() and (below <= dert.values * (1 + 1e-9)).all()
    time_alive = model.discounted_probability_alive(ends, np.full(ends.size, 4.0), data).values
    assert (time_alive <= life.values * (1 + 1e-9)).all()
