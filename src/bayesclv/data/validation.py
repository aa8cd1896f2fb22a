"""Boundary checks for transaction logs and RFM frames.

Each check is a small function that either returns (a cleaned version of) its input
or raises :class:`~bayesclv.errors.DataValidationError` naming the column at fault and
the offending customer ids (row positions where the ids themselves are unusable).
The checks of single columns (customer ids, dates, values) live in
:mod:`bayesclv.data.columns`; this module holds the frame-level checks, the
calibration/observation period and :func:`validate_rfm`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import check_customer_ids, check_values, offending_ids, parse_dates, unique_list
from bayesclv.errors import ArgumentError, DataValidationError, TimeUnitError

__all__ = [
    "TIME_UNITS",
    "check_columns",
    "check_customer_ids",
    "check_no_transactions_after",
    "check_not_empty",
    "numeric_column",
    "check_period",
    "check_time_unit",
    "check_unique_column_names",
    "check_values",
    "parse_dates",
    "to_pandas",
    "validate_rfm",
]

#: Days per unit of each supported time unit.
TIME_UNITS: dict[str, float] = {
    "D": 1.0,
    "W": 7.0,
    "M": 365.25 / 12.0,
    "Y": 365.25,
}

_TOL = 1e-9
_MAX_FREQUENCY = 2.0**53  # beyond it float64 does not hold every whole number


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def to_pandas(df: Any) -> pd.DataFrame:
    """Return ``df`` as a pandas DataFrame (polars and similar via ``.to_pandas()``)."""
    if isinstance(df, pd.DataFrame):
        return df
    if hasattr(df, "to_pandas"):
        out = df.to_pandas()
        if isinstance(out, pd.DataFrame):
            return out
    raise TypeError(
        f"expected a pandas or polars DataFrame, got {type(df).__module__}.{type(df).__name__}"
    )


def check_time_unit(time_unit: str) -> float:
    """Return the number of days per ``time_unit``; ArgumentError (a ValueError) for an unknown unit."""
    if not isinstance(time_unit, str) or time_unit not in TIME_UNITS:
        allowed = ", ".join(
            f"{k!r} ({name})"
            for k, name in zip(TIME_UNITS, ("days", "weeks", "months", "years"), strict=True)
        )
        raise ArgumentError(f"unknown time_unit {time_unit!r}; allowed units are {allowed}",
                            argument="time_unit")
    return TIME_UNITS[time_unit]


# ---------------------------------------------------------------------------
# frame-level checks
# ---------------------------------------------------------------------------
def check_not_empty(df: pd.DataFrame) -> None:
    """Raise if ``df`` has no rows."""
    if len(df) == 0:
        raise DataValidationError(
            f"the input has no rows (columns: {list(df.columns)!r}); nothing to summarise"
        )


def check_columns(df: pd.DataFrame, required: Sequence[str]) -> None:
    """Raise if any of ``required`` is not a column of ``df`` (naming what is there) or is there twice."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing!r}; the input has columns {list(df.columns)!r}",
            column=missing[0],
        )
    check_unique_column_names(df, required)


def check_unique_column_names(df: pd.DataFrame, columns: Sequence[str] | None = None) -> None:
    """Raise if a column name (of ``columns``, default all) appears more than once in ``df``."""
    names = pd.Index(df.columns)
    repeated = unique_list(names[names.duplicated()])
    if columns is not None:
        repeated = [c for c in repeated if c in set(columns)]
    if repeated:
        count = int((names == repeated[0]).sum())
        raise DataValidationError(
            f"the column name appears {count} times (duplicated names: {repeated!r}); "
            "rename or drop the copies so that each column is read from one place",
            column=repeated[0],
        )


def _as_day(when: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(when)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{name}={when!r} is not a date ({exc})") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise DataValidationError(f"{name}={when!r} is not a date")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def check_period(
    first_date: pd.Timestamp,
    last_date: pd.Timestamp,
    calibration_end: Any = None,
    observation_end: Any = None,
    *,
    column: str = "date",
) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """Resolve and check the calibration and observation ends.

    Returns ``(calibration_end, observation_end)`` as day-normalised timestamps
    (``calibration_end`` is ``None`` when not given; ``observation_end`` defaults to
    ``last_date``).
    """
    cal = None if calibration_end is None else _as_day(calibration_end, "calibration_end")
    obs = last_date if observation_end is None else _as_day(observation_end, "observation_end")
    if cal is not None:
        if cal < first_date:
            raise DataValidationError(
                f"calibration_end {cal.date()} is before the first transaction "
                f"({first_date.date()}); no customer would be in the calibration cohort",
                column=column,
            )
        if cal > last_date:
            raise DataValidationError(
                f"calibration_end {cal.date()} is after the last transaction "
                f"({last_date.date()}); the holdout period would contain no data",
                column=column,
            )
        if obs < cal:
            raise DataValidationError(
                f"observation_end {obs.date()} is before calibration_end {cal.date()}",
                column=column,
            )
    return cal, obs


def check_no_transactions_after(
    days: pd.Series, ids: pd.Series, observation_end: pd.Timestamp, *, column: str
) -> None:
    """Raise if any transaction is dated after ``observation_end`` (nothing is dropped)."""
    after = (days > observation_end).to_numpy()
    if after.any():
        raise DataValidationError(
            f"{int(after.sum())} transaction(s) dated after observation_end "
            f"{observation_end.date()} (last one {days[after].max().date()}); "
            "filter them out explicitly or move observation_end",
            column=column,
            rows=offending_ids(ids, after),
        )


# ---------------------------------------------------------------------------
# RFM frames brought by the user
# ---------------------------------------------------------------------------
def numeric_column(df: pd.DataFrame, col: str, ids: pd.Series) -> pd.Series:
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or not (
        pd.api.types.is_numeric_dtype(s) or s.dtype == object
    ):
        raise DataValidationError(f"expected numbers, got dtype {s.dtype}", column=col)
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    bad = (num.isna() | ~np.isfinite(num)).to_numpy()
    if s.dtype == object:  # True among numbers is a mistake, not the count 1
        bad = bad | s.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} missing, non-numeric (booleans included) or infinite value(s)",
            column=col,
            rows=offending_ids(ids, bad),
        )
    return num


def validate_rfm(
    df: Any, *, require_monetary: bool = False, time_unit: str | None = None
) -> pd.DataFrame:
    """Validate an RFM frame (e.g. one a user brings instead of calling ``rfm_summary``).

    A valid frame describes possible histories: per customer (one row each, ids as
    :func:`~bayesclv.data.columns.check_customer_ids` requires) ``frequency`` is a whole
    number of repeat purchases in ``[0, 2**53]``, ``0 <= recency <= T``, and
    ``recency == 0`` exactly when ``frequency == 0`` (a repeat purchase is made some
    time after the first one; :func:`rfm_summary` merges same-day purchases, so its
    frames always comply). Float noise up to 1e-9 is cleaned (frequency rounded,
    recency snapped to 0 or to ``T``).

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        Columns ``customer_id``, ``frequency``, ``recency``, ``T`` (and
        ``monetary_value`` if ``require_monetary``); other columns are kept.
    require_monetary : bool, default False
        Also require and check ``monetary_value`` (finite and non-negative;
        the Gamma-Gamma fit itself leaves out repeat buyers whose mean spend is
        0, with a warning).
    time_unit : str, optional
        Unit the caller expects (one of ``TIME_UNITS``). If the frame records a
        different unit in ``df.attrs["time_unit"]``, :class:`~bayesclv.errors.TimeUnitError`
        is raised; if it records none, the given unit is recorded on the copy.

    Returns
    -------
    pandas.DataFrame
        A checked copy with a RangeIndex, ``frequency``, ``recency``, ``T`` (and
        ``monetary_value``) as float64, ``attrs`` preserved.

    Raises
    ------
    DataValidationError
        Empty frame, missing or duplicated column names, missing/blank/mixed-type or
        duplicated customer ids, NaN or infinite values, negative frequency/recency/T,
        non-integer or huge frequency, ``recency > T``, ``frequency == 0`` with
        ``recency != 0``, ``frequency > 0`` with ``recency == 0``, or negative
        ``monetary_value``.
    TimeUnitError
        ``time_unit`` disagrees with ``df.attrs["time_unit"]``.
    """
    pdf = to_pandas(df)
    attrs = dict(pdf.attrs)
    if time_unit is not None:
        check_time_unit(time_unit)
        recorded = attrs.get("time_unit")
        if recorded is not None and recorded != time_unit:
            raise TimeUnitError(
                f"the data are in time unit {recorded!r} (df.attrs['time_unit']) but "
                f"{time_unit!r} was requested; re-run rfm_summary with time_unit={time_unit!r}",
                column="T",
            )
    check_not_empty(pdf)
    num_cols = ["frequency", "recency", "T"] + (["monetary_value"] if require_monetary else [])
    check_columns(pdf, ["customer_id", *num_cols])
    check_unique_column_names(pdf)  # every column is kept: a repeated name would break its later use

    out = pdf.reset_index(drop=True).copy()
    out.attrs = attrs
    ids = check_customer_ids(out, "customer_id")
    for col in num_cols:
        out[col] = numeric_column(out, col, ids)

    def refuse(mask, message, column):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            raise DataValidationError(f"{int(mask.sum())} {message}", column=column,
                                      rows=offending_ids(ids, mask))

    for col in ("frequency", "recency", "T"):
        refuse(out[col] < 0, "negative value(s)", col)
    f, r, t = (out[c].to_numpy() for c in ("frequency", "recency", "T"))
    refuse(f > _MAX_FREQUENCY, "frequency value(s) above 2**53 (not a count that float64 holds exactly)",
           "frequency")
    refuse(np.abs(f - np.round(f)) > _TOL,
           "non-integer frequency value(s); frequency counts repeat purchases", "frequency")
    f = np.round(f)
    refuse(r > t + _TOL, "customer(s) with recency > T (last purchase after the end of observation)",
           "recency")
    refuse((f == 0) & (r > _TOL), "customer(s) with frequency == 0 but recency != 0 "
           "(recency must be 0 without repeat purchases)", "recency")
    refuse((f > 0) & (r <= _TOL), "customer(s) with frequency > 0 but recency == 0: a repeat purchase "
           "comes after the first one (merge same-day purchases, as rfm_summary does)", "recency")
    out["frequency"] = f
    out["recency"] = np.where(f == 0, 0.0, np.minimum(r, t))
    dup = out["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            f"{len(offending_ids(ids, dup))} duplicated customer id(s); RFM frames need one "
            "row per customer",
            column="customer_id",
            rows=offending_ids(ids, dup),
        )
    if require_monetary:
        refuse(out["monetary_value"] < 0, "customer(s) with negative monetary_value", "monetary_value")
    if time_unit is not None and "time_unit" not in out.attrs:
        out.attrs["time_unit"] = time_unit
    return out
