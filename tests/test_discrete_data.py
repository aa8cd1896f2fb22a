"""Data of the discrete-time families: BG/BB opportunity tables, shifted-BG retention tables, bundled data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesclv.data.discrete import (
    censor_retention,
    opportunity_summary,
    retention_from_survivors,
    validate_opportunity_summary,
    validate_retention,
)
from bayesclv.datasets import load_donations, load_retention
from bayesclv.errors import DataValidationError

# Fader & Hardie (2007), survivors after years 0-12 (their Table 1, from Berry & Linoff 2004)
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


def _expanded_donations():
    d = load_donations()
    per_donor = d.loc[d.index.repeat(d["weights"])].drop(columns="weights").reset_index(drop=True)
    return per_donor.assign(customer_id=np.arange(100, 100 + len(per_donor)))


# --------------------------------------------------------------------------------------
# BG/BB tables
# --------------------------------------------------------------------------------------
def test_validate_accepts_compressed_and_per_customer_tables():
    compressed = validate_opportunity_summary(load_donations())
    assert compressed["weights"].sum() == 11_104 and compressed["frequency"].dtype == np.int64
    per_customer = validate_opportunity_summary(_expanded_donations())
    assert len(per_customer) == 11_104 and "weights" not in per_customer
    floats = load_donations().astype(float)
    pd.testing.assert_frame_equal(validate_opportunity_summary(floats), compressed)


@pytest.mark.parametrize("column,value,row,message", [
    ("recency", 7, 3, "recency > periods"),
    ("frequency", 3, 2, "frequency > recency"),
    ("recency", 2, 0, "frequency == 0 but recency != 0"),
    ("frequency", 0, 5, "frequency == 0 but recency != 0"),  # the pair's rule names recency
    ("periods", 2.5, 4, "non-integer"),
    ("frequency", -1, 1, "below 0"),
    ("weights", 0, 6, "below 1"),
    ("weights", np.nan, 7, "missing"),
])
def test_validate_names_column_and_rows(column, value, row, message):
    df = load_donations().astype({column: float})
    df.loc[row, column] = value
    with pytest.raises(DataValidationError, match=message) as info:
        validate_opportunity_summary(df)
    assert info.value.column == (column if "recency != 0" not in message else "recency")
    assert info.value.rows == [row]


def test_validate_per_customer_rows_are_customer_ids():
    df = _expanded_donations()
    df.loc[5000, "recency"] = 9
    with pytest.raises(DataValidationError, match="recency > periods") as info:
        validate_opportunity_summary(df)
    assert info.value.rows == [5100]
    df = _expanded_donations()
    df.loc[3, "customer_id"] = df.loc[4, "customer_id"]
    with pytest.raises(DataValidationError, match="duplicated") as info:
        validate_opportunity_summary(df)
    assert info.value.rows == [104]
    with pytest.raises(DataValidationError, match="missing column") as info:
        validate_opportunity_summary(df.drop(columns="periods"))
    assert info.value.column == "periods"


YEARS = pd.date_range("2010-01-01", "2016-01-01", freq="YS")  # six yearly opportunities 2010-2015


def test_opportunity_summary_from_a_log():
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b", "c", "c", "d", "d"],
        "date": ["2010-03-01", "2010-09-01", "2012-05-05", "2012-06-01", "2011-12-31",
                 "2010-01-01", "2015-12-31", "2014-02-01", "2015-01-01"],
    })
    out = opportunity_summary(log, opportunities=YEARS)
    got = out.set_index("customer_id")[["frequency", "recency", "periods"]]
    # a: acquired 2010, bought in 2012 (twice: one opportunity); b: acquired 2011, nothing after;
    # c: 2010, then 2015; d: 2014, then 2015
    assert got.to_dict("index") == {
        "a": {"frequency": 1, "recency": 2, "periods": 5}, "b": {"frequency": 0, "recency": 0, "periods": 4},
        "c": {"frequency": 1, "recency": 5, "periods": 5}, "d": {"frequency": 1, "recency": 1, "periods": 1}}
    validate_opportunity_summary(out)

    split = opportunity_summary(log, opportunities=YEARS, calibration_end="2013-01-01").set_index("customer_id")
    assert list(split.index) == ["a", "b", "c"]  # d was acquired in the holdout
    assert split.loc["a", ["frequency", "recency", "periods", "frequency_holdout", "periods_holdout"]].tolist() == \
        [1, 2, 2, 0, 3]
    assert split.loc["c", ["frequency", "recency", "periods", "frequency_holdout"]].tolist() == [0, 0, 2, 1]
    compressed = opportunity_summary(log, opportunities=YEARS, compress=True)
    assert compressed["weights"].sum() == 4 and "customer_id" not in compressed


def test_opportunity_summary_reproduces_simulated_histories():
    """A log drawn opportunity by opportunity summarises to the histories counted directly."""
    rng = np.random.default_rng(2)
    rows, want = [], {}
    for customer in range(300):
        start = int(rng.integers(0, 6))
        bought = [k for k in range(start + 1, 6) if rng.random() < 0.4]
        for k in [start] + bought:
            for _ in range(int(rng.integers(1, 3))):  # several transactions in one window count once
                rows.append((customer, YEARS[k] + pd.Timedelta(days=int(rng.integers(0, 365)))))
        want[customer] = (len(bought), bought[-1] - start if bought else 0, 5 - start)
    out = opportunity_summary(pd.DataFrame(rows, columns=["customer_id", "date"]), opportunities=YEARS)
    got = {c: (f, r, n) for c, f, r, n in out[["customer_id", "frequency", "recency", "periods"]].itertuples(index=False)}
    assert got == want


def test_opportunity_summary_refuses_bad_input():
    log = pd.DataFrame({"customer_id": [1, 2], "date": ["2010-05-01", "2016-01-01"]})
    with pytest.raises(DataValidationError, match="outside the opportunity calendar") as info:
        opportunity_summary(log, opportunities=YEARS)
    assert info.value.column == "date" and info.value.rows == [2]
    with pytest.raises(DataValidationError, match="strictly increasing"):
        opportunity_summary(log.iloc[:1], opportunities=YEARS[::-1])
    with pytest.raises(DataValidationError, match="inner opportunity edges"):
        opportunity_summary(log.iloc[:1], opportunities=YEARS, calibration_end="2012-06-01")
    with pytest.raises(DataValidationError, match="missing column"):
        opportunity_summary(log.rename(columns={"date": "day"}), opportunities=YEARS)


# --------------------------------------------------------------------------------------
# shifted-BG tables and the bundled retention data
# --------------------------------------------------------------------------------------
def test_load_retention_reproduces_the_published_survivors():
    df = load_retention()
    assert list(df.columns) == ["customer_id", "segment", "periods", "churned"]
    assert len(df) == 2000 and df["customer_id"].is_unique
    for segment, survivors in (("regular", REGULAR), ("high end", HIGH_END)):
        seg = df[df["segment"] == segment]
        alive = [int(((seg["periods"] > y) | ((seg["periods"] == y) & (seg["churned"] == 0))).sum())
                 for y in range(13)]
        assert alive == survivors
    validate_retention(df, group="segment")


def test_retention_from_survivors_and_censoring():
    table = retention_from_survivors([10, 6, 6, 3])
    assert table["periods"].tolist() == [1] * 4 + [3] * 3 + [3] * 3
    assert table["churned"].tolist() == [1] * 7 + [0] * 3
    cut = censor_retention(table, 2)
    assert cut["periods"].tolist() == [1] * 4 + [2] * 6 and cut["churned"].tolist() == [1] * 4 + [0] * 6
    with pytest.raises(DataValidationError, match="non-increasing") as info:
        retention_from_survivors([10, 6, 7])
    assert info.value.rows == [2]
    with pytest.raises(ValueError, match="whole number"):
        censor_retention(table, 0)


@pytest.mark.parametrize("column,value,message", [
    ("periods", 0, "below 1"),
    ("periods", 1.5, "non-integer"),
    ("churned", 2, "other than 0 and 1"),
    ("churned", np.nan, "missing"),
])
def test_validate_retention_names_column_and_customers(column, value, message):
    df = load_retention().astype({column: float})
    df.loc[10, column] = value
    with pytest.raises(DataValidationError, match=message) as info:
        validate_retention(df)
    assert info.value.column == column and info.value.rows == [11]


def test_validate_retention_ids_groups_and_booleans():
    df = load_retention()
    df.loc[0, "customer_id"] = 2
    with pytest.raises(DataValidationError, match="duplicated") as info:
        validate_retention(df)
    assert info.value.rows == [2]
    df = load_retention().astype({"segment": object})
    df.loc[4, "segment"] = None
    with pytest.raises(DataValidationError, match="missing group") as info:
        validate_retention(df, group="segment")
    assert info.value.rows == [5]
    flags = load_retention().assign(churned=lambda d: d["churned"] > 0)
    assert validate_retention(flags)["churned"].sum() == load_retention()["churned"].sum()


def test_donations_holdout():
    d = load_donations(holdout=True)
    assert d["holdout_donations"].sum() == 13_260 and (d["periods_holdout"] == 5).all()
    by_year = d.attrs["repeat_donations_by_year"]
    assert list(by_year) == list(range(1996, 2007))
    assert sum(by_year[y] for y in range(2002, 2007)) == 13_260
    # the yearly series agrees with the calibration table: 24,615 repeat donations in 1996-2001
    assert sum(by_year[y] for y in range(1996, 2002)) == (d["frequency"] * d["weights"]).sum()
    pd.testing.assert_frame_equal(d[["frequency", "recency", "periods", "weights"]], load_donations())
