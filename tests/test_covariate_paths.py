"""The long table of time-varying covariates and the RFM rows that go with it: values and typed errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.data.time_varying import SUM_PREFIX, CovariatePaths, validate_time_varying
from bayesclv.datasets.time_varying import synthetic_time_varying
from bayesclv.errors import ArgumentError, DataValidationError, DataWarning


def _table(weeks=6, customers=("a", "b"), start="2021-01-04"):
    starts = pd.date_range(start, periods=weeks, freq="7D")
    rows = [{"customer_id": c, "period_start": d, "mail": float(k % 2), "price": 1.0 + k}
            for c in customers for k, d in enumerate(starts)]
    return pd.DataFrame(rows)


def _log():
    return pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "b"],
                         "date": pd.to_datetime(["2021-01-05", "2021-01-12", "2021-01-12", "2021-01-27",
                                                 "2021-01-20", "2021-02-09"])})  # b's last: holdout


def test_summary_sums_the_covariates_over_repeat_purchase_days():
    paths = bc.covariate_paths(_table(), ["mail", "price"])
    with pytest.warns(DataWarning, match=r"1 of 5 calibration transactions \(20.0%\)"):  # a's two on 01-12
        out = bc.time_varying_summary(_log(), paths, calibration_end="2021-02-07", time_unit="W")
    a = out.set_index("customer_id").loc["a"]
    # repeat days 01-12 (week 1: mail 1, price 2; two transactions, one purchase day) and 01-27 (week 3: 1, 4)
    assert a["frequency"] == 2 and a[SUM_PREFIX + "mail"] == 2.0 and a[SUM_PREFIX + "price"] == 6.0
    assert a["first_purchase"] == pd.Timestamp("2021-01-05")
    b = out.set_index("customer_id").loc["b"]
    assert b["frequency"] == 0 and b[SUM_PREFIX + "price"] == 0.0
    assert out.attrs["time_unit"] == "W"


def test_pieces_are_clipped_to_the_customer_window():
    paths = bc.covariate_paths(_table(), ["mail", "price"])
    pieces = paths.pieces(["a"], pd.to_datetime(["2021-01-05"]), np.array([2.0]), "W", ["price"])
    # first period starts a day before the first purchase; two weeks need three periods
    np.testing.assert_allclose(pieces.start[0], [0.0, 6 / 7, 13 / 7])
    np.testing.assert_allclose(pieces.end[0], [6 / 7, 13 / 7, 2.0])
    np.testing.assert_allclose(pieces.values[0, :, 0], [1.0, 2.0, 3.0])


def test_gaps_and_overlaps_name_the_customers():
    table = _table()
    gap = table.drop(index=2)  # customer a loses week 2
    with pytest.raises(DataValidationError, match="gap") as info:
        bc.covariate_paths(gap, ["mail"])
    assert info.value.column == "period_start" and info.value.rows == ["a"]
    shifted = table.copy()
    shifted.loc[8, "period_start"] = shifted.loc[8, "period_start"] - pd.Timedelta(days=3)  # b's week 2 early
    with pytest.raises(DataValidationError, match="overlap") as info:
        bc.covariate_paths(shifted, ["mail"])
    assert info.value.rows == ["b"]
    twice = pd.concat([table, table.iloc[[7]]])
    with pytest.raises(DataValidationError, match="overlap") as info:
        bc.covariate_paths(twice, ["mail"])
    assert info.value.rows == ["b"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, "high"])
def test_bad_covariate_values_name_column_and_customer(bad):
    table = _table().astype({"price": object})
    table.loc[9, "price"] = bad
    with pytest.raises(DataValidationError) as info:
        bc.covariate_paths(table, ["mail", "price"])
    assert info.value.column == "price" and info.value.rows == ["b"]


def test_table_and_argument_errors():
    with pytest.raises(DataValidationError) as info:
        bc.covariate_paths(_table(), ["mail", "email"])
    assert "email" in str(info.value)
    with pytest.raises(ArgumentError):
        bc.covariate_paths(_table(), ["mail"], period="fortnightly")
    table = _table()
    table.loc[3, "period_start"] = None
    with pytest.raises(DataValidationError) as info:
        bc.covariate_paths(table, ["mail"])
    assert info.value.column == "period_start" and info.value.rows == ["a"]


def test_cover_errors_name_the_customers():
    paths = bc.covariate_paths(_table(customers=("a",)), ["mail"])
    with pytest.raises(DataValidationError, match="no covariate periods") as info:
        bc.time_varying_summary(_log(), paths, calibration_end="2021-02-07")
    assert info.value.column == "customer_id" and info.value.rows == ["b"]
    late = bc.covariate_paths(_table(start="2021-01-11"), ["mail"])
    with pytest.raises(DataValidationError, match="start after") as info:
        bc.time_varying_summary(_log(), late, calibration_end="2021-02-07")
    assert info.value.rows == ["a"]
    short = bc.covariate_paths(_table(weeks=3), ["mail"])  # ends 2021-01-25
    with pytest.raises(DataValidationError, match="end before") as info:
        bc.time_varying_summary(_log(), short, calibration_end="2021-02-07")
    assert info.value.column == "period_start" and set(info.value.rows) == {"a", "b"}


def test_model_data_checks():
    paths = bc.covariate_paths(_table(), ["mail"])
    out = bc.time_varying_summary(_log(), paths, calibration_end="2021-02-07")
    wrong = out.copy()
    wrong.loc[wrong["customer_id"] == "b", SUM_PREFIX + "mail"] = 1.0
    with pytest.raises(DataValidationError, match="zero sum") as info:
        validate_time_varying(wrong, covariates=["mail"])
    assert info.value.rows == ["b"]
    with pytest.raises(DataValidationError):
        validate_time_varying(out.drop(columns="first_purchase"), covariates=["mail"])


def test_json_round_trip():
    paths = bc.covariate_paths(_table(), ["mail", "price"], period="7D")
    back = CovariatePaths.from_json(paths.to_json())
    pd.testing.assert_frame_equal(back.table, paths.table)
    assert back.period == "7D" and back.covariates == ("mail", "price")


def test_same_day_warning_counts_only_calibration_transactions():
    paths = bc.covariate_paths(_table(), ["mail"])
    log = _log().drop(index=2)  # no two transactions of a customer on one day in calibration
    late = pd.DataFrame({"customer_id": ["b", "b"], "date": pd.to_datetime(["2021-02-09", "2021-02-09"])})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the holdout's same-day pair does not count
        bc.time_varying_summary(pd.concat([log, late]), paths, calibration_end="2021-02-07")
    tx, table, end = synthetic_time_varying(400, seed=3)
    with pytest.warns(DataWarning) as record:  # the synthetic day log: a few percent merged
        bc.time_varying_summary(tx, bc.covariate_paths(table, ["contact", "season"]), calibration_end=end)
    share = float(str(record[0].message).split("(")[1].split("%")[0])
    assert 1.0 < share < 10.0
