"""Synthetic customer bases, bounded-memory summaries, dask and distributed paths (datasets.synthetic, scale)."""

import copy

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv import scale
from bayesclv.datasets.synthetic import PUBLISHED_PARAMS, iter_synthetic_rfm, synthetic_rfm, synthetic_transactions
from bayesclv.errors import DataValidationError
from bayesclv.formulas import bgnbd, paretonbd
from bayesclv.testing import jittered_posterior

dd = pytest.importorskip("dask.dataframe")
SPEND = PUBLISHED_PARAMS["gammagamma"]


# --------------------------------------------------------------------------- synthetic data
@pytest.mark.parametrize("model, formulas", [("bgnbd", bgnbd), ("paretonbd", paretonbd)])
def test_synthetic_frequency_matches_closed_form(model, formulas):
    # E[X(T)] of a new customer (FHL 2005 eq. 9 / Pareto/NBD) averaged over the simulated T's
    rfm = synthetic_rfm(200_000, model=model, random_seed=1, chunk_customers=70_000)
    expected = formulas.expected_purchases_new_customer(rfm["T"].to_numpy(), **PUBLISHED_PARAMS[model])
    se = rfm["frequency"].std() / np.sqrt(len(rfm))
    assert abs(rfm["frequency"].mean() - expected.mean()) < 4 * se


def test_synthetic_rfm_is_day_resolution_and_chunked():
    chunks = list(iter_synthetic_rfm(25_000, chunk_customers=10_000, random_seed=3, spend_params=SPEND))
    assert [len(c) for c in chunks] == [10_000, 10_000, 5_000]
    rfm = pd.concat(chunks, ignore_index=True)
    np.testing.assert_array_equal(rfm["customer_id"], np.arange(25_000))
    days_T, days_rec = rfm["T"] * 7, rfm["recency"] * 7
    np.testing.assert_allclose(days_T, np.round(days_T), atol=1e-9)
    np.testing.assert_allclose(days_rec, np.round(days_rec), atol=1e-9)
    assert days_T.min() >= 273 - 83 and days_T.max() <= 273
    repeat = rfm["frequency"] > 0
    assert (days_rec[repeat] >= 1).all() and (rfm.loc[~repeat, "recency"] == 0).all()
    assert (rfm.loc[repeat, "monetary_value"] > 0).all() and (rfm.loc[~repeat, "monetary_value"] == 0).all()
    validated = bc.validate_rfm(rfm, require_monetary=True)  # a valid RFM frame
    assert validated.attrs["time_unit"] == "W"
    # day resolution makes identical histories repeat: far fewer distinct rows than customers
    assert len(rfm[["frequency", "recency", "T"]].drop_duplicates()) < len(rfm) / 2
    again = synthetic_rfm(25_000, chunk_customers=10_000, random_seed=3, spend_params=SPEND)
    pd.testing.assert_frame_equal(rfm, again)


def test_synthetic_transactions_summarise_to_the_same_histories():
    tx = synthetic_transactions(3_000, random_seed=5, spend_params=SPEND)
    rfm = bc.rfm_summary(tx, value="value", observation_end=tx.attrs["observation_end"])
    direct = synthetic_rfm(3_000, random_seed=5)
    np.testing.assert_allclose(rfm["T"], direct["T"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rfm["recency"], direct["recency"], rtol=0, atol=1e-12)
    # same-day repeat purchases merge into one purchase day, nothing else differs
    assert (rfm["frequency"] <= direct["frequency"]).all()
    assert (rfm["frequency"] == direct["frequency"]).mean() > 0.95


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_customers"):
        synthetic_rfm(0)
    with pytest.raises(ValueError, match="model"):
        synthetic_rfm(10, model="bgbb")
    with pytest.raises(ValueError, match="acquisition_days"):
        synthetic_rfm(10, acquisition_days=400)


# --------------------------------------------------------------------------- bounded-memory summaries
@pytest.fixture(scope="module")
def sampled(map_models):
    bg = jittered_posterior(copy.deepcopy(map_models["BetaGeoModel"]), chains=2, draws=40, jitter=0.05,
                            random_seed=1)
    gg = jittered_posterior(copy.deepcopy(map_models["GammaGammaModel"]), chains=2, draws=40, jitter=0.05,
                            random_seed=2)
    return bg, gg


def _reference(draws):
    table = bc.intervals(draws)  # both sides follow ArviZ's ci_prob / ci_kind
    return table.assign(sd=draws.std(("chain", "draw")).values)


def _check_summary(summary, draws):
    ref = _reference(draws)
    summary = summary.set_index("customer_id").loc[ref.index]
    for column in scale.SUMMARY_COLUMNS:
        np.testing.assert_allclose(summary[column].to_numpy(), ref[column].to_numpy(), rtol=1e-10, atol=1e-14)


def test_predict_summary_equals_in_memory_path(sampled, cdnow_rfm):
    bg, _ = sampled
    summary = scale.predict_summary(bg, "expected_purchases", cdnow_rfm, t=26.0, block_customers=97,
                                    progressbar=False)
    np.testing.assert_array_equal(summary["customer_id"], cdnow_rfm["customer_id"])  # input order kept
    _check_summary(summary, bg.expected_purchases(26.0, cdnow_rfm))
    assert summary.attrs["interval"] == "89% credible (eti)"  # ArviZ's defaults


def test_clv_summary_equals_customer_lifetime_value(sampled, cdnow_rfm):
    bg, gg = sampled
    args = {"horizon": 6, "time_unit": "M", "discount_rate": 0.01, "margin": 0.3}
    summary = scale.clv_summary(bg, gg, cdnow_rfm, block_customers=500, progressbar=False, **args)
    _check_summary(summary, bc.customer_lifetime_value(bg, gg, cdnow_rfm, **args))


def test_clv_summary_keeps_apart_customers_whose_spend_covariates_differ(sampled, cdnow_rfm):
    # summaries are computed once per distinct history of both models: a spend covariate is part of it
    bg, _ = sampled
    rfm = cdnow_rfm.assign(z=np.where(np.arange(len(cdnow_rfm)) % 2 == 1, 1.0, -1.0))
    gg = bc.GammaGammaModel(covariates=["z"]).fit(rfm, method="map", progressbar=False)
    assert abs(float(gg.posterior["spend_coef"].squeeze())) > 0.01  # the covariate matters in this fit
    args = {"horizon": 6, "time_unit": "M", "discount_rate": 0.01}
    summary = scale.clv_summary(bg, gg, rfm, block_customers=300, progressbar=False, **args)
    _check_summary(summary, bc.customer_lifetime_value(bg, gg, rfm, **args))


def test_thinned_draws_stay_paired(sampled, cdnow_rfm):
    bg, gg = sampled
    args = {"horizon": 3, "time_unit": "M", "discount_rate": 0.0}
    summary = scale.clv_summary(bg, gg, cdnow_rfm, draws=8, progressbar=False, **args)
    keep = np.unique(np.linspace(0, 39, 8).round().astype(int))
    full = bc.customer_lifetime_value(bg, gg, cdnow_rfm, **args).isel(draw=keep)
    _check_summary(summary, full)


def test_lazy_predictions_are_dask_backed_and_exact(sampled, cdnow_rfm):
    bg, _ = sampled
    lazy = scale.predict(bg, "probability_alive", cdnow_rfm, block_customers=500)
    assert lazy.chunks[2][0] == 500 and lazy.attrs["quantity"] == "expectation"
    eager = bg.probability_alive(cdnow_rfm)
    np.testing.assert_allclose(lazy.sel(customer_id=eager["customer_id"]).values, eager.values, rtol=1e-12)
    _check_summary(scale.summarise(lazy).compute(), eager)


def test_dask_dataframe_input_gives_dask_summaries(sampled, cdnow_rfm):
    bg, gg = sampled
    ddf = dd.from_pandas(cdnow_rfm, npartitions=3)
    summary = scale.predict_summary(bg, "expected_purchases", ddf, t=10.0, block_customers=300)
    assert isinstance(summary, dd.DataFrame)
    _check_summary(summary.compute(), bg.expected_purchases(10.0, cdnow_rfm))


def test_summary_errors(sampled, cdnow_rfm):
    bg, _ = sampled
    with pytest.raises(ValueError, match="prob"):
        scale.predict_summary(bg, "probability_alive", cdnow_rfm, prob=1.5)
    with pytest.raises(ValueError, match="no prediction method"):
        scale.predict_summary(bg, "expected_sales", cdnow_rfm, progressbar=False)
    with pytest.raises(ValueError, match="block_customers"):
        scale.predict(bg, "probability_alive", cdnow_rfm, block_customers=0)
    bad = cdnow_rfm.copy()
    bad.loc[5, "recency"] = 99.0  # recency > T
    with pytest.raises(DataValidationError) as err:
        scale.predict_summary(bg, "probability_alive", bad, progressbar=False)
    assert err.value.column == "recency" and bad.loc[5, "customer_id"] in err.value.rows
    with pytest.raises(DataValidationError):  # surfaces when the lazy result is computed
        scale.predict_summary(bg, "probability_alive", dd.from_pandas(bad, npartitions=2)).compute()


# --------------------------------------------------------------------------- RFM on dask
def test_rfm_summary_of_dask_transactions_equals_pandas():
    tx = bc.datasets.load_cdnow("sample")
    expected = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30")
    lazy = bc.rfm_summary(dd.from_pandas(tx.sample(frac=1.0, random_state=0), npartitions=4), value="value",
                          calibration_end="1997-09-30")
    assert isinstance(lazy, dd.DataFrame)
    pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), expected)
    kwargs = {"value": "value", "calibration_end": "1997-09-30", "log_spend": True}  # the joint spend statistics
    lazy = bc.rfm_summary(dd.from_pandas(tx.sample(frac=1.0, random_state=1), npartitions=3), **kwargs)
    pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), bc.rfm_summary(tx, **kwargs))


def test_rfm_summary_of_multi_file_parquet_counts_each_customer_once(tmp_path):
    # Customers' transactions spread over two Parquet files, ids unsorted within each file, a
    # datetime column: the layout in which dask lowered set_index to a per-file sort and the
    # summary counted a customer once per file. The pandas path on the same rows is the reference.
    rng = np.random.default_rng(7)
    files = []
    for i in range(2):
        part = pd.DataFrame({"customer_id": rng.integers(0, 500, size=3_000),
                             "date": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, size=3_000), "D"),
                             "value": np.round(rng.gamma(2.0, 20.0, size=3_000), 2)})
        part.to_parquet(tmp_path / f"part-{i}.parquet", index=False)
        files.append(part)
    both = pd.concat(files, ignore_index=True)
    assert len(set(files[0]["customer_id"]) & set(files[1]["customer_id"])) > 400  # customers span the files
    kwargs = {"value": "value", "calibration_end": "2023-06-30", "time_unit": "D"}
    expected = bc.rfm_summary(both, **kwargs)
    lazy = bc.rfm_summary(dd.read_parquet(str(tmp_path)), **kwargs)
    got = lazy.compute()
    assert got["customer_id"].is_unique and got["customer_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)


def test_rfm_summary_dask_checks_the_whole_period():
    tx = bc.datasets.load_cdnow("sample")
    with pytest.raises(DataValidationError, match="after the last transaction"):
        bc.rfm_summary(dd.from_pandas(tx, npartitions=2), calibration_end="1999-01-01")
    with pytest.raises(DataValidationError) as err:
        bc.rfm_summary(dd.from_pandas(tx.drop(columns="date"), npartitions=2))
    assert err.value.column == "date"


# --------------------------------------------------------------------------- distributed cluster
def test_distributed_cluster_matches_in_memory(sampled, cdnow_rfm):
    distributed = pytest.importorskip("distributed")
    bg, gg = sampled
    tx = bc.datasets.load_cdnow("sample")
    args = {"horizon": 3, "time_unit": "M", "discount_rate": 0.01}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        rfm = bc.rfm_summary(dd.from_pandas(tx, npartitions=4), value="value", calibration_end="1997-09-30")
        rfm_local = rfm.compute()
        clv = scale.clv_summary(bg, gg, rfm, block_customers=400, **args).compute()
        assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(rfm_local.reset_index(drop=True), cdnow_rfm)
    _check_summary(clv, bc.customer_lifetime_value(bg, gg, cdnow_rfm, **args))
