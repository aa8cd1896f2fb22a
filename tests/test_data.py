"""rfm_summary and validate_rfm: reference values, hand-computed cases, errors, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesclv.data import TIME_UNITS, rfm_summary, validate_rfm
from bayesclv.datasets import load_cdnow
from bayesclv.errors import DataValidationError, TimeUnitError

# ---------------------------------------------------------------------------
# CDNOW reference values (Fader, Hardie & Lee 2005)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow("sample")


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow) -> pd.DataFrame:
    return rfm_summary(cdnow, value="value", calibration_end="1997-09-30")


def test_cdnow_customer_days(cdnow):
    whole = rfm_summary(cdnow)
    assert len(whole) == 2_357
    # purchase days = one first purchase per customer + repeat purchase days
    assert whole["frequency"].sum() + len(whole) == 6_696


def test_cdnow_calibration_facts(cdnow_rfm):
    rfm = cdnow_rfm
    assert len(rfm) == 2_357
    assert (rfm["frequency"] == 0).sum() == 1_411
    assert rfm["frequency"].sum() == 2_457
    assert rfm["frequency_holdout"].sum() == 1_882
    np.testing.assert_allclose(rfm["T_holdout"], 273 / 7)
    assert list(rfm.columns) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "litt",
        "frequency_holdout",
        "monetary_value_holdout",
        "T_holdout",
    ]
    assert isinstance(rfm.index, pd.RangeIndex)
    assert rfm["customer_id"].is_monotonic_increasing
    assert rfm.attrs["time_unit"] == "W"
    assert rfm.attrs["calibration_end"] == pd.Timestamp("1997-09-30")
    assert rfm.attrs["observation_end"] == pd.Timestamp("1998-06-30")
    # everyone joined in Q1 1997: T between 26 and 39 weeks
    assert rfm["T"].min() >= (pd.Timestamp("1997-09-30") - pd.Timestamp("1997-03-31")).days / 7
    assert rfm["T"].max() == pytest.approx(272 / 7)


def test_cdnow_first_customer(cdnow_rfm):
    # purchases 1997-01-01 (29.33), 01-18 (29.73), 08-02 (14.96) | holdout 12-12 (26.48)
    row = cdnow_rfm.iloc[0]
    assert row["customer_id"] == 1
    assert row["frequency"] == 2
    assert row["recency"] == pytest.approx(213 / 7)
    assert row["T"] == pytest.approx(272 / 7)
    assert row["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert row["frequency_holdout"] == 1
    assert row["monetary_value_holdout"] == pytest.approx(26.48)


def test_cdnow_output_validates(cdnow_rfm):
    out = validate_rfm(cdnow_rfm, require_monetary=True, time_unit="W")
    pd.testing.assert_frame_equal(out, cdnow_rfm)
    assert out.attrs == cdnow_rfm.attrs


# ---------------------------------------------------------------------------
# hand-computed small cases
# ---------------------------------------------------------------------------


def _tiny() -> pd.DataFrame:
    """Three customers, shuffled rows, string dates with times of day.

    customer 3: 01-01 (10 + 5 same day = 15), 01-15 (20), 01-29 (6 + 4 = 10)
    customer 1: 01-08 (7)
    customer 2: 01-03 (3), 02-02 (9)  <- last date in the data
    """
    return pd.DataFrame(
        {
            "cust": [2, 3, 1, 3, 3, 2, 3, 3],
            "when": [
                "2020-02-02 08:00",
                "2020-01-01 09:00",
                "2020-01-08 12:00",
                "2020-01-29 10:00",
                "2020-01-01 18:30",
                "2020-01-03 00:00",
                "2020-01-15 11:11",
                "2020-01-29 23:59",
            ],
            "amount": [9.0, 10.0, 7.0, 6.0, 5.0, 3.0, 20.0, 4.0],
        }
    )


# per customer 1, 2, 3 in days
_TINY_FREQ = [0.0, 1.0, 2.0]
_TINY_REC_DAYS = [0.0, 30.0, 28.0]
_TINY_T_DAYS = [25.0, 30.0, 32.0]  # to 2020-02-02
_TINY_MONETARY = [0.0, 9.0, 15.0]  # mean of repeat days: c2: 9; c3: (20 + 10) / 2
_TINY_GAPS_DAYS = [[], [30.0], [14.0, 14.0]]  # days between consecutive purchase days


def _tiny_litt(per: float) -> list[float]:
    """Sum of the log inter-purchase times in units of ``per`` days."""
    return [float(sum(np.log(g / per) for g in gaps)) for gaps in _TINY_GAPS_DAYS]


@pytest.mark.parametrize("unit", ["D", "W", "M", "Y"])
def test_tiny_by_hand(unit):
    per = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}[unit]
    assert TIME_UNITS[unit] == pytest.approx(per)
    out = rfm_summary(_tiny(), customer_id="cust", date="when", value="amount", time_unit=unit)
    expected = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "frequency": _TINY_FREQ,
            "recency": [d / per for d in _TINY_REC_DAYS],
            "T": [d / per for d in _TINY_T_DAYS],
            "monetary_value": _TINY_MONETARY,
            "litt": _tiny_litt(per),
        }
    )
    pd.testing.assert_frame_equal(out, expected, check_exact=False, rtol=1e-12)
    assert out.attrs["time_unit"] == unit
    assert out.attrs["observation_end"] == pd.Timestamp("2020-02-02")
    assert "calibration_end" not in out.attrs


def test_tiny_without_value_has_no_monetary_column():
    out = rfm_summary(_tiny(), customer_id="cust", date="when", time_unit="D")
    assert list(out.columns) == ["customer_id", "frequency", "recency", "T", "litt"]
    assert out["frequency"].tolist() == _TINY_FREQ
    assert list(rfm_summary(_tiny(), customer_id="cust", date="when", litt=False).columns) == [
        "customer_id", "frequency", "recency", "T"]


def test_tiny_observation_end_extends_T():
    out = rfm_summary(
        _tiny(), customer_id="cust", date="when", time_unit="D", observation_end="2020-02-12"
    )
    assert out["T"].tolist() == [d + 10 for d in _TINY_T_DAYS]
    assert out["recency"].tolist() == _TINY_REC_DAYS


@pytest.mark.parametrize("unit", ["D", "W"])
def test_tiny_calibration_by_hand(unit):
    per = TIME_UNITS[unit]
    tx = pd.concat(
        [_tiny(), pd.DataFrame({"cust": [4], "when": ["2020-01-25"], "amount": [50.0]})],
        ignore_index=True,
    )
    out = rfm_summary(
        tx,
        customer_id="cust",
        date="when",
        value="amount",
        time_unit=unit,
        calibration_end="2020-01-20",
        observation_end=pd.Timestamp("2020-02-09"),
    )
    # customer 4 first bought after calibration_end: not in the cohort
    expected = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "frequency": [0.0, 0.0, 1.0],
            "recency": [0.0, 0.0, 14 / per],
            "T": [12 / per, 17 / per, 19 / per],
            "monetary_value": [0.0, 0.0, 20.0],
            "litt": [0.0, 0.0, np.log(14 / per)],  # c2's second day and c3's third lie in the holdout
            "frequency_holdout": [0.0, 1.0, 1.0],
            "monetary_value_holdout": [0.0, 9.0, 10.0],
            "T_holdout": [20 / per] * 3,
        }
    )
    pd.testing.assert_frame_equal(out, expected, check_exact=False, rtol=1e-12)
    assert out.attrs == {
        "time_unit": unit,
        "observation_end": pd.Timestamp("2020-02-09"),
        "calibration_end": pd.Timestamp("2020-01-20"),
    }


def test_datetime_and_tz_aware_dates_match_strings():
    tx = _tiny()
    ref = rfm_summary(tx, customer_id="cust", date="when", value="amount")
    as_dt = tx.assign(when=pd.to_datetime(tx["when"]))
    pd.testing.assert_frame_equal(
        rfm_summary(as_dt, customer_id="cust", date="when", value="amount"), ref
    )
    as_tz = tx.assign(when=pd.to_datetime(tx["when"]).dt.tz_localize("America/New_York"))
    pd.testing.assert_frame_equal(
        rfm_summary(as_tz, customer_id="cust", date="when", value="amount"), ref
    )


def test_string_customer_ids_sorted_and_renamed():
    tx = _tiny()
    tx["cust"] = tx["cust"].map({1: "b", 2: "c", 3: "a"})
    out = rfm_summary(tx, customer_id="cust", date="when", value="amount", time_unit="D")
    assert out["customer_id"].tolist() == ["a", "b", "c"]
    assert out["frequency"].tolist() == [2.0, 0.0, 1.0]


def test_polars_input_matches_pandas():
    pl = pytest.importorskip("polars")
    tx = _tiny()
    kwargs = dict(customer_id="cust", date="when", value="amount", calibration_end="2020-01-20")
    ref = rfm_summary(tx, **kwargs)
    pl_tx = pl.from_pandas(tx).with_columns(pl.col("when").str.to_datetime("%Y-%m-%d %H:%M"))
    out = rfm_summary(pl_tx, **kwargs)
    pd.testing.assert_frame_equal(out, ref)
    assert out.attrs == ref.attrs
    # and validate_rfm accepts polars too
    checked = validate_rfm(pl.from_pandas(ref), require_monetary=True)
    pd.testing.assert_frame_equal(checked, ref, check_like=False)


def test_unknown_time_unit():
    with pytest.raises(ValueError, match="'W'") as info:
        rfm_summary(_tiny(), customer_id="cust", date="when", time_unit="weeks")
    for unit in TIME_UNITS:
        assert repr(unit) in str(info.value)
    with pytest.raises(ValueError, match="allowed"):
        validate_rfm(rfm_summary(_tiny(), customer_id="cust", date="when"), time_unit="H")


# ---------------------------------------------------------------------------
# rfm_summary validation errors
# ---------------------------------------------------------------------------


def _tx(**overrides) -> pd.DataFrame:
    base = {
        "customer_id": [10, 10, 20, 30],
        "date": ["2021-01-01", "2021-01-05", "2021-01-02", "2021-01-10"],
        "value": [1.0, 2.0, 3.0, 4.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def _raises(match_column, ids, fn, *args, exc=DataValidationError, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    if match_column is not None:
        assert info.value.column == match_column
        assert repr(match_column) in msg
    for i in ids:
        assert i in info.value.rows
        assert repr(i) in msg
    return info.value


def test_error_empty():
    err = _raises(None, [], rfm_summary, _tx().iloc[:0])
    assert "no rows" in str(err)


def test_error_missing_columns():
    err = _raises("amount", [], rfm_summary, _tx(), value="amount")
    assert "'value'" in str(err)  # lists what is there
    _raises("cid", [], rfm_summary, _tx(), customer_id="cid")


def test_error_nan_customer_id_reports_positions():
    tx = _tx(customer_id=[10, None, 20, np.nan])
    err = _raises("customer_id", [1, 3], rfm_summary, tx)
    assert err.rows == [1, 3]


@pytest.mark.parametrize("bad", [None, "not a date", "2021-13-45"])
def test_error_bad_dates_report_customers(bad):
    tx = _tx(date=["2021-01-01", "2021-01-05", bad, "2021-01-10"])
    err = _raises("date", [20], rfm_summary, tx)
    assert err.rows == [20]


def test_error_numeric_dates():
    _raises("date", [], rfm_summary, _tx(date=[20210101, 20210105, 20210102, 20210110]))


@pytest.mark.parametrize("bad", [-1.0, np.nan, None, "abc"])
def test_error_bad_values(bad):
    tx = _tx(value=[1.0, 2.0, 3.0, bad])
    err = _raises("value", [30], rfm_summary, tx, value="value")
    assert err.rows == [30]


def test_zero_values_are_allowed():
    out = rfm_summary(_tx(value=[0.0, 0.0, 0.0, 0.0]), value="value")
    assert out["monetary_value"].tolist() == [0.0, 0.0, 0.0]


def test_error_calibration_end_outside_data():
    err = _raises("date", [], rfm_summary, _tx(), calibration_end="2020-12-31")
    assert "before the first" in str(err)
    err = _raises("date", [], rfm_summary, _tx(), calibration_end="2021-01-11")
    assert "after the last" in str(err)
    # the boundaries themselves are fine
    assert len(rfm_summary(_tx(), calibration_end="2021-01-01")) == 1
    assert len(rfm_summary(_tx(), calibration_end="2021-01-10")) == 3


def test_error_unparseable_calibration_end():
    with pytest.raises(DataValidationError, match="calibration_end"):
        rfm_summary(_tx(), calibration_end="soon")


def test_error_observation_end_before_calibration_end():
    err = _raises(
        "date", [], rfm_summary, _tx(), calibration_end="2021-01-05", observation_end="2021-01-04"
    )
    assert "observation_end" in str(err)


@pytest.mark.parametrize("cal", [None, "2021-01-02"])
def test_error_transactions_after_observation_end(cal):
    err = _raises(
        "date", [10, 30], rfm_summary, _tx(), calibration_end=cal, observation_end="2021-01-04"
    )
    assert err.rows == [10, 30]
    assert "after observation_end" in str(err)


def test_not_a_dataframe():
    with pytest.raises(TypeError):
        rfm_summary([(1, "2021-01-01")])


# ---------------------------------------------------------------------------
# validate_rfm
# ---------------------------------------------------------------------------


def _rfm(**overrides) -> pd.DataFrame:
    base = {
        "customer_id": ["a", "b", "c"],
        "frequency": [0, 2, 1],
        "recency": [0.0, 3.0, 1.5],
        "T": [4.0, 3.0, 5.0],
        "monetary_value": [0.0, 10.0, 2.5],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_validate_rfm_ok_returns_clean_copy():
    df = _rfm()
    df.index = [7, 8, 9]
    df.attrs["time_unit"] = "D"
    out = validate_rfm(df, require_monetary=True, time_unit="D")
    assert out is not df
    assert isinstance(out.index, pd.RangeIndex)
    assert out["frequency"].dtype == np.float64
    assert out["frequency"].tolist() == [0.0, 2.0, 1.0]
    assert out["customer_id"].tolist() == ["a", "b", "c"]
    assert out.attrs == {"time_unit": "D"}
    assert df["frequency"].dtype == np.int64  # input untouched


def test_validate_rfm_records_unit_when_absent():
    out = validate_rfm(_rfm(), time_unit="W")
    assert out.attrs["time_unit"] == "W"
    assert validate_rfm(_rfm()).attrs == {}


def test_validate_rfm_monetary_only_when_required():
    df = _rfm().drop(columns="monetary_value")
    validate_rfm(df)
    _raises("monetary_value", [], validate_rfm, df, require_monetary=True)


@pytest.mark.parametrize(
    ("overrides", "column", "bad_id"),
    [
        ({"frequency": [0, np.nan, 1]}, "frequency", "b"),
        ({"recency": [0.0, 3.0, np.nan]}, "recency", "c"),
        ({"T": [np.nan, 3.0, 5.0]}, "T", "a"),
        ({"monetary_value": [0.0, np.nan, 2.5]}, "monetary_value", "b"),
        ({"frequency": [0, -2, 1]}, "frequency", "b"),
        ({"recency": [0.0, 3.0, -1.0]}, "recency", "c"),
        ({"T": [-4.0, 3.0, 5.0], "recency": [0.0, 3.0, 1.5]}, "T", "a"),
        ({"frequency": [0, 2.5, 1]}, "frequency", "b"),
        ({"recency": [0.0, 3.5, 1.5]}, "recency", "b"),
        ({"recency": [0.5, 3.0, 1.5]}, "recency", "a"),
        ({"customer_id": ["a", "c", "c"]}, "customer_id", "c"),
        ({"monetary_value": [0.0, 10.0, -1.0]}, "monetary_value", "c"),
    ],
)
def test_validate_rfm_errors(overrides, column, bad_id):
    _raises(column, [bad_id], validate_rfm, _rfm(**overrides), require_monetary=True)


def test_validate_rfm_tolerances():
    # recency exceeding T by float noise and near-integer frequency are accepted
    out = validate_rfm(_rfm(recency=[0.0, 3.0 + 1e-12, 1.5], frequency=[0, 2 + 1e-12, 1]))
    assert out["frequency"].tolist() == [0.0, 2.0, 1.0]


def test_validate_rfm_nan_customer_id():
    err = _raises("customer_id", [2], validate_rfm, _rfm(customer_id=["a", "b", None]))
    assert err.rows == [2]


def test_validate_rfm_empty_and_missing():
    _raises(None, [], validate_rfm, _rfm().iloc[:0])
    err = _raises("T", [], validate_rfm, _rfm().drop(columns="T"))
    assert "'recency'" in str(err)


def test_validate_rfm_time_unit_mismatch():
    df = rfm_summary(_tx(), time_unit="D")
    with pytest.raises(TimeUnitError) as info:
        validate_rfm(df, time_unit="W")
    assert "'D'" in str(info.value) and "'W'" in str(info.value)
    assert isinstance(info.value, DataValidationError)
    validate_rfm(df, time_unit="D")


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

_DAY0 = pd.Timestamp("2022-03-01")

transactions = st.lists(
    st.tuples(
        st.integers(0, 6),  # customer
        st.integers(0, 60),  # day offset
        st.integers(0, 23),  # hour
        st.floats(0, 500, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
).map(
    lambda rows: pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "date": [_DAY0 + pd.Timedelta(days=r[1], hours=r[2]) for r in rows],
            "value": [r[3] for r in rows],
        }
    )
)

_PROP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROP
@given(tx=transactions, unit=st.sampled_from(sorted(TIME_UNITS)))
def test_property_rfm_invariants(tx, unit):
    out = rfm_summary(tx, value="value", time_unit=unit)
    f, r, t = out["frequency"], out["recency"], out["T"]
    assert len(out) == tx["customer_id"].nunique()
    assert ((r >= 0) & (r <= t + 1e-12)).all()
    assert ((f >= 0) & (f == np.floor(f))).all()
    assert (r[f == 0] == 0).all()
    assert (out.loc[f == 0, "monetary_value"] == 0).all()
    assert (out["monetary_value"] >= 0).all()
    days = tx.assign(day=tx["date"].dt.normalize()).groupby("customer_id")["day"].nunique()
    np.testing.assert_array_equal(f.to_numpy(), days.sort_index().to_numpy() - 1)
    validate_rfm(out, time_unit=unit)  # our own output always validates


@_PROP
@given(tx=transactions, seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 60))
def test_property_row_order_invariance(tx, seed, cut):
    perm = tx.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    kwargs = dict(value="value", time_unit="D")
    first, last = tx["date"].min().normalize(), tx["date"].max().normalize()
    cal = min(max(_DAY0 + pd.Timedelta(days=cut), first), last)
    for kw in (kwargs, {**kwargs, "calibration_end": cal}):
        a, b = rfm_summary(tx, **kw), rfm_summary(perm, **kw)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@_PROP
@given(tx=transactions, cut=st.integers(0, 60))
def test_property_calibration_holdout_split(tx, cut):
    first, last = tx["date"].min().normalize(), tx["date"].max().normalize()
    cal = min(max(_DAY0 + pd.Timedelta(days=cut), first), last)
    out = rfm_summary(tx, value="value", time_unit="D", calibration_end=cal)
    whole = rfm_summary(tx, value="value", time_unit="D")
    cohort = whole[whole["customer_id"].isin(out["customer_id"])].reset_index(drop=True)
    # every purchase day of a cohort customer is either in calibration or in holdout
    np.testing.assert_array_equal(
        out["frequency"] + out["frequency_holdout"], cohort["frequency"]
    )
    assert (out["T_holdout"] == (last - cal).days).all()
    assert (out["T"] <= whole.set_index("customer_id").loc[out["customer_id"], "T"].to_numpy()).all()
    assert ((out["recency"] >= 0) & (out["recency"] <= out["T"])).all()
