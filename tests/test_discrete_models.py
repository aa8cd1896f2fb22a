"""The BG/BB and shifted-BG model classes: published estimates by MAP, data paths, predictions, curves, plots.

Published values:

* BG/BB on the donations data (Fader, Hardie & Shang 2010, Table 2): alpha 1.204, beta 0.750,
  gamma 0.657, delta 2.783; the 2002-2006 holdout donations of the 11,104 donors (13,260).
* shifted-BG (Fader & Hardie 2007), years 1-7 of each segment: regular alpha 0.704, beta 1.182;
  high end alpha 0.668, beta 3.806; survivors in years 8-12 (``load_retention``).

The formulas themselves are tested against quadrature references in test_discrete_formulas.py;
here the models must hand them the right data, weights, groups and histories.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.data.discrete import censor_retention, opportunity_summary, retention_from_survivors
from bayesclv.datasets import load_donations, load_retention
from bayesclv.errors import DataValidationError, TimeUnitError
from bayesclv.formulas import NP, bgbb
from bayesclv.formulas import shifted_bg as sbg

try:  # tests/ as a package or as a plain directory on sys.path
    from .test_plots_units import assert_no_clipped_text
except ImportError:  # pragma: no cover
    from test_plots_units import assert_no_clipped_text

matplotlib.use("Agg")

MAP = {"method": "map", "progressbar": False}
BGBB_PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
SBG_PUBLISHED = {"regular": {"alpha": 0.704, "beta": 1.182}, "high end": {"alpha": 0.668, "beta": 3.806}}
SURVIVORS_8_12 = {"regular": [223, 207, 194, 183, 173], "high end": [468, 445, 427, 409, 394]}
YEARS = pd.date_range("2000-01-01", periods=9, freq="YS")  # 8 yearly opportunities


@pytest.fixture(scope="module")
def donations_map():
    return bc.BetaGeoBetaBinomModel().fit(load_donations(), **MAP)


@pytest.fixture(scope="module")
def years_1_7():
    return censor_retention(load_retention(), 7)


@pytest.fixture(scope="module")
def segments_map(years_1_7):
    return bc.ShiftedBetaGeoModel(group="segment", pooling="none").fit(years_1_7, **MAP)


@pytest.fixture(scope="module")
def segments_nuts(years_1_7):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains
        return bc.ShiftedBetaGeoModel(group="segment", pooling="none").fit(
            years_1_7, draws=500, tune=500, chains=2, random_seed=3, progressbar=False)


def _expand(table: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of a compressed table."""
    out = table.loc[table.index.repeat(table["weights"])].drop(columns="weights").reset_index(drop=True)
    return out.assign(customer_id=np.arange(len(out)))


def _simulated_log(params: dict, n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """A transaction log of the BG/BB process on the yearly calendar ``YEARS``, customers acquired in years 0-3.

    Drawn opportunity by opportunity: dropout at the start of an opportunity with
    probability theta, then a transaction with probability p (several on one day
    count once, as on the calendar).
    """
    p = rng.beta(params["alpha"], params["beta"], n_customers)
    theta = rng.beta(params["gamma"], params["delta"], n_customers)
    start = rng.integers(0, 4, n_customers)
    alive = np.ones(n_customers, dtype=bool)
    rows = [(np.arange(n_customers), start)]
    for k in range(1, len(YEARS) - 1):
        later = start < k
        alive &= ~(later & (rng.random(n_customers) < theta))
        buys = later & alive & (rng.random(n_customers) < p)
        rows.append((np.flatnonzero(buys), np.full(buys.sum(), k)))
    ids, windows = (np.concatenate(v) for v in zip(*rows, strict=True))
    days = rng.integers(0, 365, ids.size)
    return pd.DataFrame({"customer_id": ids, "date": YEARS[windows] + pd.to_timedelta(days, unit="D")})


# --------------------------------------------------------------------------------------
# BG/BB
# --------------------------------------------------------------------------------------
def test_bgbb_map_on_the_donations_table_as_shipped(donations_map):
    """The compressed table (22 rows, weights) reproduces Table 2 of FHS (2010) within 1% (we get
    1.2035, 0.7497, 0.6567, 2.7833) and its likelihood."""
    got = donations_map.summary()["mean"]
    for name, value in BGBB_PUBLISHED.items():
        assert got[name] == pytest.approx(value, rel=1e-2), name
        assert got[name] == pytest.approx(value, abs=1e-3), name  # the published values have 3 decimals
    params = {n: float(got[n]) for n in bgbb.PARAMETERS}
    assert donations_map.log_likelihood().values.shape == (1, 1, 22)
    weights = load_donations()["weights"].to_numpy()
    assert (weights * donations_map.log_likelihood().values[0, 0]).sum() == pytest.approx(-33225.6, abs=0.05)
    d = load_donations()
    direct = bgbb.loglik(d["frequency"], d["recency"], d["periods"], **params, xp=NP)
    np.testing.assert_allclose(donations_map.log_likelihood().values[0, 0], direct, rtol=1e-12)


def test_bgbb_weights_count_customers_in_every_graph():
    """Weights are customers: the compressed table's log density equals that of the per-customer table,
    in the summed kernel and in the per-row graph (JAX's), at any point."""
    compressed, per_customer = load_donations(), _expand(load_donations())
    model = bc.BetaGeoBetaBinomModel()
    graphs = [model.build_model(df, summed=summed) for df in (compressed, per_customer) for summed in (True, False)]
    # the sampler's coordinates: each pair of shapes as (log a - log b, log(a + b)) (models/mean_concentration.py)
    point = {"alpha_beta_mean_concentration__": [0.5, np.logaddexp(0.3, -0.2)],
             "gamma_delta_mean_concentration__": [-1.6, np.logaddexp(-0.5, 1.1)]}
    values = [g.compile_logp()(point) for g in graphs]
    np.testing.assert_allclose(values, values[0], rtol=1e-11)
    # a frame whose weights are 1 fits as the per-customer table
    ones = per_customer.assign(weights=1)
    assert model.build_model(ones).compile_logp()(point) == pytest.approx(values[0], rel=1e-11)


def test_bgbb_predictions_label_the_rows_of_a_compressed_table(donations_map):
    """No customer_id: one prediction per row, labelled by the row index; weighted totals give the holdout
    forecast of FHS (2010) (12,882 by the conditional expectations, 13,260 actual)."""
    d = load_donations(holdout=True)
    expected = donations_map.expected_purchases(5)
    assert expected.dims == ("chain", "draw", "customer_id")
    np.testing.assert_array_equal(expected["customer_id"].values, np.arange(len(d)))
    assert donations_map.data.attrs["customer_id"].startswith("row index")
    assert expected.attrs["time_unit"] == "opportunity"
    total = (expected * d["weights"].to_numpy()).sum("customer_id").values.item()
    assert total == pytest.approx(d["holdout_donations"].sum(), rel=3e-2)
    params = {n: float(donations_map.posterior[n].values.ravel()[0]) for n in bgbb.PARAMETERS}
    np.testing.assert_allclose(expected.values[0, 0], bgbb.expected_purchases(
        5, d["frequency"], d["recency"], d["periods"], **params), rtol=1e-12)
    # the alive convention: alive at the next opportunity, the same with a per-customer table
    alive = donations_map.probability_alive(_expand(load_donations()))
    np.testing.assert_allclose(alive.values[0, 0, :3464], donations_map.probability_alive().values[0, 0, 0])


def test_bgbb_from_a_transaction_log_recovers_the_process():
    """A log on an opportunity calendar, summarised by opportunity_summary, fits back to the parameters it
    was drawn from (20,000 customers; every estimate within 12% and 3 posterior sds)."""
    truth = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}
    log = _simulated_log(truth, 20_000, np.random.default_rng(11))
    table = opportunity_summary(log, opportunities=YEARS)
    model = bc.BetaGeoBetaBinomModel().fit(table, **MAP)
    got = model.summary()["mean"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = bc.BetaGeoBetaBinomModel().fit(opportunity_summary(log, opportunities=YEARS, compress=True),
                                              draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    sd = nuts.summary()["sd"]
    for name, value in truth.items():
        assert got[name] == pytest.approx(value, rel=0.12), name
        assert abs(got[name] - value) < 3 * sd[name], name
    # the per-customer and the compressed summary are one data set
    compressed = bc.BetaGeoBetaBinomModel().fit(opportunity_summary(log, opportunities=YEARS, compress=True), **MAP)
    np.testing.assert_allclose(compressed.summary()["mean"], got, rtol=1e-5)


def test_bgbb_groups_get_their_own_parameters():
    """Unpooled groups fit as each group alone, and recover the parameters they were drawn from (within 20%).
    The grouped optimiser's line search once reached alpha, beta ~ 1e-17, where the likelihood was NaN."""
    rng = np.random.default_rng(5)
    truths = {"a": {"alpha": 2.0, "beta": 1.0, "gamma": 0.4, "delta": 3.0},
              "b": {"alpha": 0.5, "beta": 2.0, "gamma": 0.8, "delta": 4.0}}
    frames = []
    for label, truth in truths.items():
        sim = bgbb.simulate_population(np.full(6000, 8.0), **truth, rng=rng)
        frames.append(pd.DataFrame({k: sim[k] for k in ("frequency", "recency", "periods")}).assign(segment=label))
    data = pd.concat(frames, ignore_index=True).assign(customer_id=lambda df: np.arange(len(df)))
    model = bc.BetaGeoBetaBinomModel(group="segment", pooling="none").fit(data, **MAP)
    got = model.summary()["mean"]
    for label, truth in truths.items():
        for name, value in truth.items():
            assert got[f"{name}[{label}]"] == pytest.approx(value, rel=0.2), (label, name)
        alone = bc.BetaGeoBetaBinomModel().fit(data[data["segment"] == label], **MAP).summary()["mean"]
        np.testing.assert_allclose([got[f"{n}[{label}]"] for n in bgbb.PARAMETERS], alone.to_numpy(), rtol=1e-3)
    # each customer is predicted with the group's parameters
    alive = model.probability_alive(data.iloc[[0, 6000]]).values[0, 0]
    for value, (label, row) in zip(alive, (("a", 0), ("b", 6000)), strict=True):
        params = {n: float(model.posterior[n].sel(group=label).values.ravel()[0]) for n in bgbb.PARAMETERS}
        cols = data.loc[row, ["frequency", "recency", "periods"]].to_numpy(dtype=float)
        assert value == pytest.approx(float(bgbb.probability_alive(*cols, **params)), rel=1e-12)


def test_bgbb_time_units_and_clv_refusal(donations_map, cdnow_rfm):
    with pytest.raises(TimeUnitError, match="opportunities"):
        bc.BetaGeoBetaBinomModel().fit(load_donations(), time_unit="W", **MAP)
    rfm_like = load_donations()
    rfm_like.attrs["time_unit"] = "W"
    with pytest.raises(TimeUnitError, match="opportunity_summary"):
        donations_map.expected_purchases(1, rfm_like)
    with pytest.raises(ValueError, match="whole numbers"):
        donations_map.expected_purchases(2.5)
    spend = bc.GammaGammaModel().fit(cdnow_rfm, **MAP)
    with pytest.raises(TimeUnitError, match="one opportunity"):
        bc.customer_lifetime_value(donations_map, spend, horizon=10, time_unit="Y", discount_rate=0.1)
    # what the message offers instead: the discounted expected transactions of the next opportunities
    ends = np.arange(1.0, 11.0)
    value = donations_map.discounted_expected_purchases(ends, 1.1 ** -ends).values[0, 0]
    increments = np.diff([donations_map.expected_purchases(t).values[0, 0] for t in range(11)], axis=0)
    np.testing.assert_allclose(value, (1.1 ** -ends[:, None] * increments).sum(axis=0), rtol=1e-10)


def test_bgbb_population_simulation_needs_one_row_per_customer(donations_map):
    with pytest.raises(ValueError, match="expand it to one row per customer"):
        donations_map.simulate_population(np.array([0]))
    sim = donations_map.simulate_population(np.array([0, 0]), _expand(load_donations()), random_seed=1)
    assert set(sim) == {"frequency", "recency"} and sim["frequency"].shape == (2, 11_104)
    # the simulated repeat-donation distribution is the fitted one (within sampling error)
    share_none = (sim["frequency"] == 0).mean()
    assert share_none == pytest.approx(3464 / 11_104, abs=0.02)


# --------------------------------------------------------------------------------------
# shifted-BG
# --------------------------------------------------------------------------------------
def test_sbg_map_reproduces_both_segments(segments_map, years_1_7):
    """Fader & Hardie (2007), years 1-7: within 1% (we get 0.7041, 1.1820 and 0.6680, 3.8051)."""
    got = segments_map.summary()["mean"]
    for segment, published in SBG_PUBLISHED.items():
        for name, value in published.items():
            assert got[f"{name}[{segment}]"] == pytest.approx(value, rel=1e-2), (segment, name)
        alone = bc.ShiftedBetaGeoModel().fit(years_1_7[years_1_7["segment"] == segment], **MAP)
        np.testing.assert_allclose(alone.summary()["mean"].to_numpy(),
                                   [got[f"alpha[{segment}]"], got[f"beta[{segment}]"]], rtol=1e-4)
    assert segments_map.time_unit == "Y"


def test_sbg_projects_years_8_to_12(segments_nuts, years_1_7):
    """The customers still there after year 7, projected with the posterior: within 2% of the projection of
    the published estimates (FH 2007: regular 222..171, high end 462..380 of the year-7 survivors), within
    5% of the actual survivors of years 8-12, which lie inside the 95% predictive interval of every year."""
    for segment, actual in SURVIVORS_8_12.items():
        customers = years_1_7[years_1_7["segment"] == segment]
        expected = segments_nuts.survival(np.arange(1, 6), customers).sum("customer_id")
        assert expected.dims == ("chain", "draw", "t")
        published = SBG_PUBLISHED[segment]
        paper = (customers["churned"] == 0).sum() * sbg.survival(np.arange(1, 6), **published, periods=7.0)
        np.testing.assert_allclose(expected.mean(("chain", "draw")).values, paper, rtol=2e-2)
        np.testing.assert_allclose(expected.mean(("chain", "draw")).values, actual, rtol=5e-2)
        lifetimes = segments_nuts.sample_residual_lifetime(customers, random_seed=4).values
        survivors = (lifetimes[..., None] > np.arange(1, 6)).sum(axis=2)  # (chain, draw, year)
        low, high = np.quantile(survivors.reshape(-1, 5), [0.025, 0.975], axis=0)
        assert np.all((low <= actual) & (actual <= high)), (segment, low, high)
        # the cohort curve from acquisition agrees with the conditional projection of the survivors
        cohort = 1000 * segments_nuts.population_survival(np.arange(8, 13)).sel(group=segment)
        np.testing.assert_allclose(cohort.mean(("chain", "draw")).values, expected.mean(("chain", "draw")).values,
                                   rtol=2e-2)


def test_sbg_curves_are_probabilities_that_fit_together(segments_map, years_1_7):
    t = np.arange(0, 15)
    population = segments_map.population_survival(t)
    assert population.dims == ("chain", "draw", "group", "t")
    np.testing.assert_allclose(population.sel(t=0).values, 1.0)
    rate = segments_map.population_retention_rate(t[1:])
    np.testing.assert_allclose(rate.values, population.values[..., 1:] / population.values[..., :-1], rtol=1e-12)
    assert np.all(np.diff(rate.values, axis=-1) > 0)  # rising: the likeliest to leave leave first
    per_customer = segments_map.survival(t, years_1_7)
    churned = years_1_7["churned"].to_numpy() == 1
    assert np.all(per_customer.values[:, :, churned] == 0)
    alive = per_customer.values[:, :, ~churned]
    assert np.all((alive > 0) & (alive <= 1)) and np.all(np.diff(alive, axis=-1) < 0)
    renewal = segments_map.retention_rate(t[1:], years_1_7).values[:, :, ~churned]
    np.testing.assert_allclose(renewal, alive[..., 1:] / alive[..., :-1], rtol=1e-12)


def test_sbg_residual_lifetime_and_derl(segments_map, years_1_7):
    """DERL is the discounted sum of the survival curve after observation (next renewal undiscounted);
    the undiscounted expected lifetime is infinite at the published alpha < 1."""
    d = 0.1
    derl = segments_map.discounted_expected_residual_lifetime(d, years_1_7)
    there = years_1_7[years_1_7["churned"] == 0]
    ends = there.groupby("segment", sort=False).head(1)  # a regular and a high-end customer still there
    assert ends["segment"].tolist() == ["regular", "high end"] and (ends["periods"] == 7).all()
    positions = years_1_7.index.get_indexer(ends.index)
    t = np.arange(1, 1200)
    for i, segment in enumerate(("regular", "high end")):
        params = {n: float(segments_map.posterior[n].sel(group=segment).values.ravel()[0]) for n in sbg.PARAMETERS}
        curve = sbg.survival(t, **params, periods=7.0)  # the model's own curve at a few horizons is checked below
        np.testing.assert_allclose(segments_map.survival([1, 5, 40], ends).values[0, 0, i], curve[[0, 4, 39]],
                                   rtol=1e-12)
        assert derl.values[0, 0, positions[i]] == pytest.approx((curve / (1 + d) ** (t - 1)).sum(), rel=1e-9)
    churned = years_1_7["churned"].to_numpy() == 1
    assert np.all(derl.values[..., churned] == 0)
    lifetime = segments_map.expected_residual_lifetime(years_1_7).values
    assert np.all(np.isinf(lifetime[..., ~churned])) and np.all(lifetime[..., churned] == 0)
    params = {n: float(segments_map.posterior[n].sel(group="regular").values.ravel()[0]) for n in sbg.PARAMETERS}
    assert float(segments_map.discounted_expected_lifetime(d).sel(group="regular").values.ravel()[0]) == \
        pytest.approx(float(sbg.discounted_expected_lifetime(d, **params)), rel=1e-12)


def test_sbg_data_and_units():
    table = retention_from_survivors([100, 60, 40, 30])
    model = bc.ShiftedBetaGeoModel().fit(table, **MAP)
    assert model.time_unit == "period"
    with pytest.raises(TimeUnitError, match="'Y'"):
        model.survival(1, load_retention())
    with pytest.raises(TimeUnitError):
        bc.ShiftedBetaGeoModel().fit(load_retention(), time_unit="M", **MAP)
    with pytest.raises(DataValidationError) as err:
        bc.ShiftedBetaGeoModel().fit(table.assign(churned=2), **MAP)
    assert err.value.column == "churned"
    with pytest.raises(DataValidationError) as err:
        bc.ShiftedBetaGeoModel(group="cohort").fit(table, **MAP)
    assert err.value.column == "cohort"


def test_plot_survival_draws_bands_and_labels_in_words(segments_nuts, segments_map, tmp_path):
    after_7 = {"regular": 241, "high end": 491}
    shares = {s: np.array([1000, after_7[s], *SURVIVORS_8_12[s]]) / 1000 for s in after_7}
    fig = bc.plots.plot_survival(segments_nuts, [0, 7, 8, 9, 10, 11, 12], actual=shares, calibration_end=7)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "years since acquisition" and ax.get_ylabel() == "share of customers still subscribed"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "regular: 90% credible band" in labels and "high end: actual" in labels
    band = next(c for c in ax.collections if c.get_label() == "regular: 90% credible band")
    lower = band.get_paths()[0].vertices[:, 1]
    assert lower.min() > 0.1 and lower.max() <= 1.0 + 1e-12
    assert_no_clipped_text(fig)
    fig.savefig(tmp_path / "survival.png")
    assert (tmp_path / "survival.png").stat().st_size > 10_000
    # a MAP fit is a point estimate: no band, and its curve says so
    ax = bc.plots.plot_survival(segments_map, np.arange(13)).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["high end: point estimate (MAP)", "regular: point estimate (MAP)"] and not ax.collections
    with pytest.raises(TypeError, match="retention model"):
        bc.plots.plot_survival(bc.BetaGeoModel(), [1, 2])


# --------------------------------------------------------------------------------------
# SBC (the full run: validation/sbc_discrete.py)
# --------------------------------------------------------------------------------------
def test_sbc_script_smoke(tmp_path, monkeypatch):
    """Two replications per model with tiny chains: prior draws simulate valid data that NUTS fits, and the
    ranks of the truth among L = 19 thinned draws land in 0..19."""
    path = Path(__file__).parents[1] / "validation" / "sbc_discrete.py"
    spec = importlib.util.spec_from_file_location("sbc_discrete_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sys, "argv", ["sbc_discrete.py", "--sims", "2", "--customers", "60", "--draws", "60",
                                      "--tune", "60", "--chains", "1", "--ranks", "19", "--workers", "1",
                                      "--out", str(tmp_path)])
    script.main()
    ranks = pd.read_csv(tmp_path / "sbc_discrete_ranks.csv")
    assert ranks["error"].isna().all() and len(ranks) == 4
    for name in (*bgbb.PARAMETERS, *sbg.PARAMETERS):
        values = ranks[f"rank_{name}"].dropna()
        assert len(values) >= 2 and values.between(0, 19).all(), name
    summary = json.loads((tmp_path / "sbc_discrete_summary.json").read_text())
    assert set(summary["models"]) == {"bgbb", "shifted_bg"}
    assert (tmp_path / "sbc_discrete_summary.md").read_text().startswith("# SBC")
