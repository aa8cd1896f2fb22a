"""Bundled data sets: shapes, types and published facts."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayesclv.datasets import load_cdnow, load_donations


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load_cdnow("sample")


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return load_cdnow("full")


def test_package_data_is_small_gzip():
    data = resources.files("bayesclv.datasets").joinpath("data")
    names = sorted(p.name for p in data.iterdir() if p.name.endswith(".gz"))
    assert names == ["cdnow_full.csv.gz", "cdnow_sample.csv.gz", "donations.csv.gz", "retention.csv.gz"]
    total = 0
    for name in names:
        raw = data.joinpath(name).read_bytes()
        total += len(raw)
        assert gzip.decompress(raw)  # really gzip
    assert total < 1_000_000


def test_default_kind_is_sample(sample):
    pd.testing.assert_frame_equal(load_cdnow(), sample)


@pytest.mark.parametrize("kind", ["Sample", "master", "", None, "fulll"])
def test_unknown_kind_names_choices(kind):
    with pytest.raises(ValueError, match="full") as info:
        load_cdnow(kind)
    assert "sample" in str(info.value)


def test_sample_facts(sample):
    assert list(sample.columns) == ["customer_id", "date", "value"]
    assert sample["customer_id"].dtype == np.int64
    assert pd.api.types.is_datetime64_dtype(sample["date"])
    assert sample["value"].dtype == np.float64
    assert len(sample) == 6_919
    assert sample["customer_id"].nunique() == 2_357
    assert sample["customer_id"].min() == 1 and sample["customer_id"].max() == 2_357
    assert sample["date"].min() == pd.Timestamp("1997-01-01")
    assert sample["date"].max() == pd.Timestamp("1998-06-30")
    # same-day lines are not merged by the loader
    assert len(sample.drop_duplicates(["customer_id", "date"])) == 6_696
    assert sample["value"].sum() == pytest.approx(244_091.94, abs=0.005)
    assert (sample["value"] >= 0).all()
    assert isinstance(sample.index, pd.RangeIndex)


def test_sample_first_customer_rows(sample):
    c1 = sample[sample["customer_id"] == 1]
    assert c1["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "1997-01-01",
        "1997-01-18",
        "1997-08-02",
        "1997-12-12",
    ]
    assert c1["value"].tolist() == [29.33, 29.73, 14.96, 26.48]


def test_sorted_by_customer_then_date(sample, full):
    for df in (sample, full):
        key = df[["customer_id", "date"]]
        assert key.equals(key.sort_values(["customer_id", "date"]).reset_index(drop=True))


def test_full_facts(full):
    assert list(full.columns) == ["customer_id", "date", "value"]
    assert full["customer_id"].dtype == np.int64
    assert len(full) == 69_659
    assert full["customer_id"].nunique() == 23_570
    assert full["customer_id"].min() == 1 and full["customer_id"].max() == 23_570
    assert full["date"].min() == pd.Timestamp("1997-01-01")
    assert full["date"].max() == pd.Timestamp("1998-06-30")
    assert full["value"].sum() == pytest.approx(2_500_315.63, abs=0.005)
    # customer 2 bought twice on 1997-01-12 (12.00 and 77.00): two lines kept
    c2 = full[full["customer_id"] == 2]
    assert c2["value"].iloc[:2].tolist() == [12.0, 77.0]
    assert (c2["date"].iloc[:2] == pd.Timestamp("1997-01-12")).all()


def test_donations():
    d = load_donations()
    assert list(d.columns) == ["frequency", "recency", "periods", "weights"]
    assert all(d[c].dtype == np.int64 for c in d.columns)
    assert len(d) == 22
    assert d["weights"].sum() == 11_104
    assert (d["periods"] == 6).all()
    assert (d["recency"] >= d["frequency"]).all()
    assert ((d["frequency"] > 0) | (d["recency"] == 0)).all()
    row0 = d.iloc[0].tolist()
    assert row0 == [0, 0, 6, 3464]
    assert d.iloc[-1].tolist() == [6, 6, 6, 1203]
