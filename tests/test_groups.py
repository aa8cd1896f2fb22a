"""Group partial pooling, spend covariates, cohorts and the key-driver table."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.data import first_purchase_cohort
from bayesclv.drivers import spend_drivers
from bayesclv.errors import ConvergenceWarning, DataValidationError
from bayesclv.formulas import bgnbd
from bayesclv.simulate import simulate_bgnbd, simulate_gammagamma


# ----------------------------------------------------------------- cohorts
def test_cohort_column_is_the_first_purchase_period():
    tx = bc.datasets.load_cdnow("sample")
    rfm = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30", cohort="M")
    # CDNOW's cohort first bought in Q1 1997
    assert rfm["cohort"].value_counts().sort_index().to_dict() == {"1997-01": 781, "1997-02": 857, "1997-03": 719}
    first = pd.to_datetime(tx["date"]).groupby(tx["customer_id"]).min()
    expected = first.dt.strftime("%Y-%m").reindex(rfm["customer_id"]).to_numpy()
    assert (rfm["cohort"].to_numpy() == expected).all()
    assert first_purchase_cohort(tx, freq="Q").unique().tolist() == ["1997Q1"]
    weekly = first_purchase_cohort(tx, freq="W")
    assert weekly.nunique() == 13 and weekly.value_counts().min() == 63
    with pytest.raises(ValueError, match="cohort period"):
        bc.rfm_summary(tx, cohort="fortnight")


# ------------------------------------------------------------ configuration
def test_pooling_arguments_are_checked():
    with pytest.raises(ValueError, match="needs a group column"):
        bc.BetaGeoModel(pooling="partial")
    with pytest.raises(ValueError, match="pooling must be one of"):
        bc.BetaGeoModel(group="cohort", pooling="some")
    assert bc.BetaGeoModel(group="cohort").pooling == "partial"
    assert bc.BetaGeoModel().pooling == "complete"
    # hyperpriors exist only under partial pooling
    bc.ParetoNBDModel(group="g", priors={"log_dropout_mean_sd": bc.Prior("HalfNormal", sigma=0.5)})
    with pytest.raises(ValueError, match="no parameter"):
        bc.ParetoNBDModel(group="g", pooling="none", priors={"log_r_sd": bc.Prior("HalfNormal", sigma=0.5)})
    with pytest.raises(ValueError, match="no parameter"):
        bc.GammaGammaModel(priors={"spend_coef": bc.Prior("Normal", sigma=1.0)})


def test_group_column_errors_name_column_and_rows(cdnow_rfm):
    rfm = cdnow_rfm.head(300).copy()
    with pytest.raises(DataValidationError, match="missing group column") as err:
        bc.BetaGeoModel(group="cohort").fit(rfm, method="map", progressbar=False)
    assert err.value.column == "cohort"
    rfm["cohort"] = np.where(rfm.index % 2, "odd", "even")
    rfm.loc[[3, 8], "cohort"] = None
    with pytest.raises(DataValidationError, match="without a group label") as err:
        bc.BetaGeoModel(group="cohort").fit(rfm, method="map", progressbar=False)
    assert err.value.rows == rfm.loc[[3, 8], "customer_id"].tolist()


# ------------------------------------------------------ CDNOW weekly cohorts
@pytest.fixture(scope="module")
def cohort_rfm():
    # CDNOW's customers were acquired in Jan-Mar 1997: monthly cohorts are three groups of
    # ~800; weekly cohorts are 13 groups of 63-226 customers, two of them small (63, 100)
    return bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30",
                          cohort="W")


@pytest.fixture(scope="module")
def cohort_fits(cohort_rfm):
    return {pooling: bc.BetaGeoModel(group="cohort", pooling=pooling).fit(cohort_rfm, method="map",
                                                                          progressbar=False)
            for pooling in ("complete", "none", "partial")}


def test_grouped_posterior_summary_and_predictions(cohort_fits, cohort_rfm):
    model = cohort_fits["partial"]
    labels = sorted(cohort_rfm["cohort"].unique())
    assert model.groups == labels
    assert model.posterior["r"].dims == ("chain", "draw", "group")
    assert model.posterior["group"].values.tolist() == labels
    table = model.summary()
    assert f"alpha[{labels[0]}]" in table.index and "log_alpha_mean" in table.index and "log_b_sd" in table.index
    assert len(table) == 4 * len(labels) + 8
    # each customer is predicted with their own group's parameters
    ep = model.expected_purchases(39.0)
    post = model.posterior.isel(chain=0, draw=0)
    for i in (0, 1500, 2300):
        row = cohort_rfm.iloc[i]
        params = [float(post[p].sel(group=row["cohort"])) for p in ("r", "alpha", "a", "b")]
        direct = bgnbd.expected_purchases(39.0, row["frequency"], row["recency"], row["T"], *params)
        assert float(ep.isel(chain=0, draw=0, customer_id=i)) == pytest.approx(direct, rel=1e-12)
    # identical histories in different groups are different rows of the compressed likelihood
    twins = cohort_rfm[(cohort_rfm["frequency"] == 0) & (cohort_rfm["T"] == cohort_rfm["T"].iloc[0])]
    assert twins["cohort"].nunique() == 1 or ep.sel(customer_id=twins["customer_id"].to_numpy()).std() > 0
    new = model.expected_purchases_new_customer([10.0, 20.0])
    assert new.dims == ("chain", "draw", "group", "t") and new.sizes["group"] == len(labels)
    with pytest.raises(DataValidationError, match="not in the fitted groups") as err:
        model.expected_purchases(39.0, cohort_rfm.assign(cohort="2001-01-01/2001-01-07").head(4))
    assert err.value.column == "cohort" and err.value.rows == cohort_rfm["customer_id"].head(4).tolist()


def test_partial_pooling_shrinks_small_groups_toward_the_population(cohort_fits, cohort_rfm):
    """Shrinkage on CDNOW: a cohort's partial-pooling estimate of its mean purchase rate
    ``r/alpha`` lies between its unpooled (no-pooling) estimate and the population
    (complete-pooling) estimate.

    Checked wherever the unpooled and population estimates differ by more than 5% (where
    they agree, "between" is an interval narrower than the estimates' noise); the
    100-customer cohort, the smallest but one, is among them. (A quantity that mixes the
    separately pooled purchase and dropout parameters, such as a new customer's expected
    purchases, need not lie between: its parts shrink towards different population values.)
    """
    sizes = cohort_rfm["cohort"].value_counts().sort_index()

    def rate(model):
        post = model.posterior.isel(chain=0, draw=0)
        values = post["r"] / post["alpha"]
        if "group" not in values.dims:
            return pd.Series(float(values), index=sizes.index)
        return pd.Series(values.values, index=values["group"].values).reindex(sizes.index)

    none, partial, complete = (rate(cohort_fits[k]) for k in ("none", "partial", "complete"))
    table = pd.DataFrame({"n": sizes, "none": none, "partial": partial, "complete": complete})
    distinct = (none - complete).abs() > 0.05 * complete
    lo, hi = np.minimum(none, complete), np.maximum(none, complete)
    between = (partial > lo) & (partial < hi)
    assert between[distinct].all(), table[distinct & ~between]
    assert distinct.sum() >= 8 and distinct[sizes == 100].all()
    # the shrinkage is real: on average a visible fraction of the way to the population
    moved = ((partial - none).abs() / (complete - none).abs())[distinct]
    assert moved.mean() > 0.03


# -------------------------------------------------------------- simulations
def test_partial_pooling_recovers_simulated_group_parameters():
    """Three groups simulated by the library's BG/NBD simulator with known parameters (one
    small): the partial-pooling fit recovers each group's mean purchase rate and mean
    dropout probability, including the small group's, which differs from the others."""
    rng = np.random.default_rng(11)
    truth = {"A": (0.5, 5.0, 0.8, 2.5, 3000), "B": (0.5, 2.5, 0.8, 2.5, 3000), "C": (0.5, 10.0, 1.5, 1.5, 400)}
    frames = []
    for label, (r, alpha, a, b, n) in truth.items():
        sim = simulate_bgnbd(rng.uniform(30.0, 40.0, n), r, alpha, a, b, rng=rng)
        frames.append(pd.DataFrame({"frequency": sim["frequency"], "recency": sim["recency"],
                                    "T": sim["T"], "segment": label}))
    rfm = pd.concat(frames, ignore_index=True)
    rfm.insert(0, "customer_id", np.arange(len(rfm)))
    model = bc.BetaGeoModel(group="segment").fit(rfm, method="map", progressbar=False, time_unit="W")
    post = model.posterior.isel(chain=0, draw=0)
    for label, (r, alpha, a, b, n) in truth.items():
        g = post.sel(group=label)
        rate_tol = 0.1 if n > 1000 else 0.25
        assert float(g["r"] / g["alpha"]) == pytest.approx(r / alpha, rel=rate_tol), label
        assert float(g["a"] / (g["a"] + g["b"])) == pytest.approx(a / (a + b), abs=0.12), label


@pytest.fixture(scope="module")
def spend_data():
    """Gamma-Gamma spend with a known covariate effect: log gamma_i = log 20 + 0.5 z_i, in two groups."""
    rng = np.random.default_rng(5)
    n = 3000
    z = rng.normal(size=n)
    freq = rng.integers(1, 8, size=n).astype(float)
    sim = simulate_gammagamma(freq, 6.0, 4.0, 20.0 * np.exp(0.5 * (z - z.mean())), rng=rng)
    rfm = pd.DataFrame({"customer_id": np.arange(n), "frequency": freq, "recency": freq, "T": 40.0,
                        "monetary_value": sim["monetary_value"], "z": z,
                        "channel": np.where(np.arange(n) % 3 == 0, "web", "store")})
    rfm.attrs["time_unit"] = "W"
    return rfm


def test_spend_covariate_effect_recovered_and_tabulated(spend_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = bc.GammaGammaModel(covariates=["z"]).fit(spend_data, draws=200, tune=200, chains=2,
                                                         random_seed=3, progressbar=False)
    table = spend_drivers(model, prob=0.9)
    assert list(table.index) == ["z"] and table.attrs["prob"] == 0.9
    row = table.loc["z"]
    assert row["mean"] == pytest.approx(0.5, abs=4 * row["sd"])
    assert 0.003 < row["sd"] < 0.05 and row["lower"] < row["mean"] < row["upper"]
    assert row["p_positive"] == 1.0
    draws = model.posterior["spend_coef"].sel(covariate="z").values
    assert row["ratio_mean"] == pytest.approx(np.exp(draws).mean(), rel=1e-12)
    # expected spend of a customer uses their covariate: gamma_i = gamma exp((z_i - zbar) coef)
    post = model.posterior.isel(chain=0, draw=3)
    i = 17
    x, m, zi = spend_data.loc[i, ["frequency", "monetary_value", "z"]]
    gamma_i = float(post["gamma"]) * np.exp((zi - model.covariate_means[0]) * float(post["spend_coef"][0]))
    direct = float(post["p"]) * (gamma_i + x * m) / (float(post["p"]) * x + float(post["q"]) - 1.0)
    assert float(model.expected_spend().isel(chain=0, draw=3, customer_id=i)) == pytest.approx(direct, rel=1e-10)
    with pytest.raises(ValueError, match="no covariates"):
        spend_drivers(bc.GammaGammaModel())
    with pytest.raises(DataValidationError) as err:
        model.expected_spend(spend_data.assign(z=np.where(spend_data.index == 4, np.nan, spend_data["z"])))
    assert err.value.column == "z" and err.value.rows == [4]


def test_grouped_spend_model_with_covariates_saves_and_loads(spend_data, tmp_path):
    model = bc.GammaGammaModel(group="channel", covariates=["z"]).fit(spend_data, method="map", progressbar=False)
    assert model.posterior["gamma"].dims == ("chain", "draw", "group")
    assert float(model.posterior["spend_coef"].squeeze()) == pytest.approx(0.5, abs=0.06)
    pms = model.population_mean_spend()
    assert pms.dims == ("chain", "draw", "group")
    post = model.posterior.sel(group="web").isel(chain=0, draw=0)
    assert float(pms.sel(group="web").squeeze()) == pytest.approx(
        float(post["p"] * post["gamma"] / (post["q"] - 1)), rel=1e-12)
    model.save(tmp_path / "gg.nc")
    loaded = bc.load(tmp_path / "gg.nc")
    assert (loaded.group, loaded.pooling, loaded.covariates) == ("channel", "partial", ["z"])
    assert loaded.groups == ["store", "web"] and loaded.covariate_means == model.covariate_means
    np.testing.assert_allclose(loaded.expected_spend().values, model.expected_spend().values, rtol=1e-12)
    assert loaded.summary().index.tolist() == model.summary().index.tolist()


def test_grouped_clv_uses_each_customers_group(cohort_fits, cohort_rfm):
    """One undiscounted period of CLV = E[purchases in the period] x E[spend], per customer and draw."""
    model = cohort_fits["partial"]
    spend = bc.GammaGammaModel().fit(cohort_rfm, method="map", progressbar=False)
    clv = bc.customer_lifetime_value(model, spend, horizon=1, time_unit="W", discount_rate=0.0)
    expected = model.expected_purchases(1.0) * spend.expected_spend(cohort_rfm)
    np.testing.assert_allclose(clv.values, expected.transpose(*clv.dims).values, rtol=1e-10)
