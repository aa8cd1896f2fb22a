"""Boundary checks for transaction logs and RFM frames.

Each check is a small function that either returns (a cleaned version of) its input
or raises :class:`~bayesclv.errors.DataValidationError` naming the column at fault and
the offending customer ids (row positions where the ids themselves are unusable).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.errors import DataValidationError, TimeUnitError

__all__ = [
    "TIME_UNITS",
    "check_columns",
    "check_customer_ids",
    "check_no_transactions_after",
    "check_not_empty",
    "check_period",
    "check_time_unit",
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


def _unique_list(values: Iterable) -> list:
    """Unique values in order of first appearance, as plain Python objects."""
    if isinstance(values, (pd.Series, pd.Index, np.ndarray)):
        values = values.tolist()
    seen: dict = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def _offending_ids(ids: pd.Series, mask: np.ndarray | pd.Series) -> list:
    mask = np.asarray(mask, dtype=bool)
    return _unique_list(ids[mask])


def check_time_unit(time_unit: str) -> float:
    """Return the number of days per ``time_unit``; ValueError for an unknown unit."""
    if not isinstance(time_unit, str) or time_unit not in TIME_UNITS:
        allowed = ", ".join(
            f"{k!r} ({name})"
            for k, name in zip(TIME_UNITS, ("days", "weeks", "months", "years"), strict=True)
        )
        raise ValueError(f"unknown time_unit {time_unit!r}; allowed units are {allowed}")
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
    """Raise if any of ``required`` is not a column of ``df``, naming what is there."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing!r}; the input has columns {list(df.columns)!r}",
            column=missing[0],
        )


def check_customer_ids(df: pd.DataFrame, column: str) -> pd.Series:
    """Return the customer-id column; raise on missing ids (rows = row positions)."""
    ids = df[column]
    bad = ids.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            "missing (NaN/None) customer ids at the listed row positions",
            column=column,
            rows=np.flatnonzero(bad).tolist(),
        )
    return ids


def parse_dates(dates: pd.Series, ids: pd.Series, *, column: str) -> pd.Series:
    """Parse ``dates`` to calendar days (datetime64, time of day dropped).

    Strings are parsed by pandas with ``errors="coerce"``; timezone-aware stamps keep
    their local wall-clock date. Missing or unparseable dates raise, naming the
    customers whose dates failed. Numeric columns are refused rather than read as
    epoch nanoseconds.
    """
    if pd.api.types.is_bool_dtype(dates) or pd.api.types.is_numeric_dtype(dates):
        raise DataValidationError(
            f"dates are numeric (dtype {dates.dtype}); convert them to datetimes or "
            "date strings first (e.g. pd.to_datetime(col.astype(str), format='%Y%m%d'))",
            column=column,
            rows=_unique_list(ids.iloc[:1]),
        )
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        parsed = dates.dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dates):
        parsed = dates
    else:
        try:
            parsed = pd.to_datetime(dates, errors="coerce")
            # pandas infers one format from the first date; give the rest
            # (e.g. "2020-01-25" among "2020-01-25 10:00") a per-element try
            retry = (parsed.isna() & dates.notna()).to_numpy()
            if retry.any():
                again = pd.to_datetime(dates[retry], errors="coerce", format="mixed")
                if isinstance(again.dtype, pd.DatetimeTZDtype) != isinstance(
                    parsed.dtype, pd.DatetimeTZDtype
                ):
                    raise ValueError("dates mix time-zone-aware and naive values")
                parsed = parsed.copy()
                parsed[retry] = again.astype(parsed.dtype)
        except (TypeError, ValueError) as exc:  # e.g. mixed time zones
            raise DataValidationError(
                f"could not parse the dates ({exc})", column=column
            ) from exc
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna().to_numpy()
    if bad.any():
        n_missing = int(dates.isna().to_numpy()[bad].sum())
        what = "missing" if n_missing == bad.sum() else "missing or unparseable"
        raise DataValidationError(
            f"{int(bad.sum())} {what} date(s) for the listed customers",
            column=column,
            rows=_offending_ids(ids, bad),
        )
    return parsed.dt.normalize()


def check_values(values: pd.Series, ids: pd.Series, *, column: str) -> pd.Series:
    """Return ``values`` as float; raise on non-numeric, NaN or negative values."""
    if pd.api.types.is_bool_dtype(values):
        raise DataValidationError("values are booleans, expected amounts", column=column)
    num = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy())
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} missing, non-numeric or infinite value(s) for the listed customers",
            column=column,
            rows=_offending_ids(ids, bad),
        )
    neg = (num < 0).to_numpy()
    if neg.any():
        raise DataValidationError(
            f"{int(neg.sum())} negative value(s) for the listed customers "
            "(returns/refunds must be netted out before summarising)",
            column=column,
            rows=_offending_ids(ids, neg),
        )
    return num


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
            rows=_offending_ids(ids, after),
        )


# ---------------------------------------------------------------------------
# RFM frames brought by the user
# ---------------------------------------------------------------------------
def _numeric_column(df: pd.DataFrame, col: str, ids: pd.Series) -> pd.Series:
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or not (
        pd.api.types.is_numeric_dtype(s) or s.dtype == object
    ):
        raise DataValidationError(f"expected numbers, got dtype {s.dtype}", column=col)
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    bad = (num.isna() | ~np.isfinite(num)).to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} missing, non-numeric or infinite value(s)",
            column=col,
            rows=_offending_ids(ids, bad),
        )
    return num


def validate_rfm(
    df: Any, *, require_monetary: bool = False, time_unit: str | None = None
) -> pd.DataFrame:
    """Validate an RFM frame (e.g. one a user brings instead of calling ``rfm_summary``).

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
        Empty frame, missing columns, NaN, negative frequency/recency/T, non-integer
        frequency, ``recency > T``, ``frequency == 0`` with ``recency != 0``, duplicate
        customer ids, or negative ``monetary_value``.
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

    out = pdf.reset_index(drop=True).copy()
    out.attrs = attrs
    ids = check_customer_ids(out, "customer_id")
    for col in num_cols:
        out[col] = _numeric_column(out, col, ids)

    f, r, t = out["frequency"], out["recency"], out["T"]
    for col in ("frequency", "recency", "T"):
        neg = (out[col] < 0).to_numpy()
        if neg.any():
            raise DataValidationError(
                f"{int(neg.sum())} negative value(s)", column=col, rows=_offending_ids(ids, neg)
            )
    frac = (np.abs(f - np.round(f)) > _TOL).to_numpy()
    if frac.any():
        raise DataValidationError(
            f"{int(frac.sum())} non-integer frequency value(s); frequency counts repeat purchases",
            column="frequency",
            rows=_offending_ids(ids, frac),
        )
    out["frequency"] = np.round(f)
    f = out["frequency"]
    late = (r > t + _TOL).to_numpy()
    if late.any():
        raise DataValidationError(
            f"{int(late.sum())} customer(s) with recency > T (last purchase after the end "
            "of observation)",
            column="recency",
            rows=_offending_ids(ids, late),
        )
    lone = ((f == 0) & (np.abs(r) > _TOL)).to_numpy()
    if lone.any():
        raise DataValidationError(
            f"{int(lone.sum())} customer(s) with frequency == 0 but recency != 0 "
            "(recency must be 0 without repeat purchases)",
            column="recency",
            rows=_offending_ids(ids, lone),
        )
    dup = out["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            f"{len(_offending_ids(ids, dup))} duplicated customer id(s); RFM frames need one "
            "row per customer",
            column="customer_id",
            rows=_offending_ids(ids, dup),
        )
    if require_monetary:
        bad = (out["monetary_value"] < 0).to_numpy()
        if bad.any():
            raise DataValidationError(
                f"{int(bad.sum())} customer(s) with negative monetary_value",
                column="monetary_value",
                rows=_offending_ids(ids, bad),
            )
    if time_unit is not None and "time_unit" not in out.attrs:
        out.attrs["time_unit"] = time_unit
    return out
