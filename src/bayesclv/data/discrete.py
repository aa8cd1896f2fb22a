"""Data of the discrete-time families: BG/BB opportunity tables and shifted-BG retention tables.

BG/BB (discrete transaction opportunities): one row per customer, or one row per
distinct history with a ``weights`` column counting identical customers (how the
donations data ship): ``frequency`` (opportunities with a transaction after the
acquisition one), ``recency`` (the last of them, counted from acquisition; 0 if
none) and ``periods`` (opportunities observed after acquisition).
:func:`opportunity_summary` builds it from a transaction log and an opportunity
calendar.

Shifted-BG (contractual churn): one row per customer with ``customer_id``,
``periods`` (periods observed, >= 1) and ``churned`` (1 if the customer left in
the last of them). :func:`retention_from_survivors` builds it from a cohort's
survivor counts.

Each check raises :class:`~bayesclv.errors.DataValidationError` naming the column
and the offending customer ids (row labels where there are none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import check_customer_ids, offending_ids
from bayesclv.data.purchases import purchase_log
from bayesclv.data.validation import TIME_UNITS, check_columns, check_not_empty, numeric_column, to_pandas
from bayesclv.errors import DataValidationError, TimeUnitError

__all__ = [
    "OPPORTUNITY",
    "PERIOD",
    "censor_retention",
    "opportunity_frame",
    "opportunity_summary",
    "retention_frame",
    "retention_from_survivors",
    "validate_opportunity_summary",
    "validate_retention",
]

#: Time unit of the BG/BB: its horizons count transaction opportunities, whatever their calendar.
OPPORTUNITY = "opportunity"
#: Time unit of a retention table whose contract period has no calendar length given.
PERIOD = "period"

_OPPORTUNITY_COLUMNS = ("frequency", "recency", "periods")


def _row_ids(df: pd.DataFrame) -> pd.Series:
    """Customer ids where the frame has them, else the row labels (to name offending rows)."""
    if "customer_id" in df.columns:
        return check_customer_ids(df, "customer_id")
    return pd.Series(df.index, index=df.index)


def _whole_numbers(df: pd.DataFrame, col: str, ids: pd.Series, *, minimum: int, what: str) -> pd.Series:
    """Column ``col`` as int64 after checking it holds whole numbers >= ``minimum``."""
    num = numeric_column(df, col, ids)
    frac = (num != np.round(num)).to_numpy()
    if frac.any():
        raise DataValidationError(f"{int(frac.sum())} non-integer value(s); {what}", column=col,
                                  rows=offending_ids(ids, frac))
    low = (num < minimum).to_numpy()
    if low.any():
        raise DataValidationError(f"{int(low.sum())} value(s) below {minimum}; {what}", column=col,
                                  rows=offending_ids(ids, low))
    return num.astype("int64")


def _check_unique_ids(df: pd.DataFrame, ids: pd.Series) -> None:
    if "customer_id" in df.columns:
        dup = df["customer_id"].duplicated(keep=False).to_numpy()
        if dup.any():
            raise DataValidationError(f"{len(offending_ids(ids, dup))} duplicated customer id(s); "
                                      "one row per customer", column="customer_id", rows=offending_ids(ids, dup))


def validate_opportunity_summary(df: Any) -> pd.DataFrame:
    """Validate a BG/BB table, per customer or compressed into weighted rows.

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        Columns ``frequency``, ``recency``, ``periods``; optionally ``weights``
        (customers sharing the row) and ``customer_id`` (unique). Other columns
        are kept.

    Returns
    -------
    pandas.DataFrame
        A checked copy with a RangeIndex and int64 ``frequency``, ``recency``,
        ``periods`` (and ``weights``).

    Raises
    ------
    DataValidationError
        Empty frame, missing columns, missing or non-integer values, negative
        counts, ``recency > periods``, ``frequency > recency``, ``frequency == 0``
        with ``recency != 0`` or the reverse, non-positive weights, duplicated ids.
    """
    pdf = to_pandas(df)
    check_not_empty(pdf)
    check_columns(pdf, list(_OPPORTUNITY_COLUMNS))
    ids = _row_ids(pdf)
    out = pdf.copy()
    for col in _OPPORTUNITY_COLUMNS:
        out[col] = _whole_numbers(pdf, col, ids, minimum=0, what="it counts opportunities")
    if "weights" in pdf.columns:
        out["weights"] = _whole_numbers(pdf, "weights", ids, minimum=1,
                                        what="weights count the customers sharing a row")
    f, r, n = out["frequency"], out["recency"], out["periods"]
    rules = (
        ("recency", (r > n).to_numpy(), "recency > periods (last transaction after the last opportunity)"),
        ("frequency", (f > r).to_numpy(),
         "frequency > recency (more transactions than opportunities up to the last one)"),
        ("recency", ((f == 0) != (r == 0)).to_numpy(),
         ("frequency == 0 but recency != 0, or frequency > 0 but recency == 0 (recency is 0 exactly "
          "without repeat transactions)")),
    )
    for col, bad, what in rules:
        if bad.any():
            raise DataValidationError(f"{int(bad.sum())} row(s) with {what}", column=col,
                                      rows=offending_ids(ids, bad))
    _check_unique_ids(pdf, ids)
    return out.reset_index(drop=True)


def _recorded_unit(df: pd.DataFrame, time_unit: str | None, column: str) -> str | None:
    """The unit the frame records or the caller asks for; TimeUnitError where the two disagree."""
    recorded = df.attrs.get("time_unit")
    if recorded is not None and time_unit is not None and recorded != time_unit:
        raise TimeUnitError(f"the data are in time unit {recorded!r} (df.attrs['time_unit']) but {time_unit!r} "
                            "was requested", column=column)
    return recorded if recorded is not None else time_unit


def opportunity_frame(df: Any, *, time_unit: str | None = None) -> pd.DataFrame:
    """A BG/BB table checked for a model: :func:`validate_opportunity_summary`, row ids, the opportunity unit.

    A compressed table (no ``customer_id``, e.g. ``load_donations()``) gets a
    ``customer_id`` holding the row index 0, 1, ... (``attrs["customer_id"]``
    says so), so that predictions label each row: one prediction per row,
    shared by the ``weights`` customers the row stands for.

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        A BG/BB table (see :func:`validate_opportunity_summary`).
    time_unit : str, optional
        Must be ``"opportunity"`` (:data:`OPPORTUNITY`) if given: horizons count
        opportunities, not calendar time.

    Returns
    -------
    pandas.DataFrame
        The checked table with ``customer_id`` and ``attrs["time_unit"] == "opportunity"``.

    Raises
    ------
    TimeUnitError
        The frame records, or the caller asks for, a calendar unit (an RFM frame
        of :func:`bayesclv.rfm_summary` is not a BG/BB table).
    DataValidationError
        As :func:`validate_opportunity_summary`.
    """
    pdf = to_pandas(df)
    for unit in (pdf.attrs.get("time_unit"), time_unit):
        if unit in (None, OPPORTUNITY):
            continue
        raise TimeUnitError(f"the BG/BB counts transaction opportunities, not time in {unit!r}: frequency, recency "
                            f"and periods count opportunities (build the table with opportunity_summary); "
                            f"its time unit is {OPPORTUNITY!r}", column="periods")
    out = validate_opportunity_summary(pdf)
    if "customer_id" not in out.columns:
        out.insert(0, "customer_id", np.arange(len(out), dtype=np.int64))
        out.attrs["customer_id"] = "row index (the table has no customer_id column)"
    out.attrs["time_unit"] = OPPORTUNITY
    return out


def _calendar(opportunities: Sequence) -> pd.DatetimeIndex:
    """Opportunity edges as day-normalised timestamps, strictly increasing, at least two."""
    try:
        edges = pd.DatetimeIndex(pd.to_datetime(list(opportunities))).normalize()
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"opportunities must be dates ({exc})") from exc
    if edges.size < 2 or not edges.is_monotonic_increasing or not edges.is_unique:
        raise DataValidationError("opportunities must be at least two strictly increasing dates "
                                  "(the edges of the opportunity windows)")
    return edges


def opportunity_summary(
    transactions: Any,
    *,
    opportunities: Sequence,
    customer_id: str = "customer_id",
    date: str = "date",
    calibration_end: Any = None,
    compress: bool = False,
) -> pd.DataFrame:
    """BG/BB table from a transaction log and an opportunity calendar.

    Opportunity ``k`` is the window ``[opportunities[k], opportunities[k+1])``
    (e.g. ``pd.date_range("1995-01-01", "2002-01-01", freq="YS")``: yearly
    opportunities 1995-2001). A window with at least one transaction counts as
    one transaction. A customer is acquired at the window of their first
    transaction (opportunity 0 for them) and observed at every later window.

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per transaction.
    opportunities : sequence of date-like
        Strictly increasing window edges; every transaction must fall in
        ``[opportunities[0], opportunities[-1])`` (nothing is dropped silently).
    customer_id, date : str
        Columns of the customer identifier and the transaction date.
    calibration_end : date-like, optional
        One of the inner edges: windows before it are calibration, the others
        holdout. The customers are those acquired before it; the holdout adds
        ``frequency_holdout`` (windows with a transaction) and ``periods_holdout``.
    compress : bool, default False
        Return one row per distinct history with ``weights`` (no ``customer_id``).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (unless ``compress``), int64 ``frequency``, ``recency``,
        ``periods`` (+ holdout columns), sorted by customer (or by history).

    Raises
    ------
    DataValidationError
        Missing columns, ids or dates; bad calendar; transactions outside it;
        ``calibration_end`` not an inner edge.
    """
    tx = to_pandas(transactions)
    check_not_empty(tx)
    check_columns(tx, [customer_id, date])
    edges = _calendar(opportunities)
    work = purchase_log(tx, customer_id=customer_id, date=date, value=None)
    outside = ((work["day"] < edges[0]) | (work["day"] >= edges[-1])).to_numpy()
    if outside.any():
        raise DataValidationError(
            f"{int(outside.sum())} transaction(s) outside the opportunity calendar "
            f"[{edges[0].date()}, {edges[-1].date()}); filter them out or extend the calendar",
            column=date, rows=offending_ids(work["customer_id"], outside))
    n_windows = edges.size - 1
    if calibration_end is None:
        cut = n_windows
    else:
        cut = int(edges.get_indexer([pd.Timestamp(calibration_end).normalize()])[0])
        if not 1 <= cut < n_windows:
            raise DataValidationError(f"calibration_end={calibration_end!r} must be one of the inner opportunity "
                                      f"edges {[str(e.date()) for e in edges[1:-1]]}", column=date)
    window = np.searchsorted(edges.to_numpy(), work["day"].to_numpy(), side="right") - 1
    windows = pd.DataFrame({"customer_id": work["customer_id"], "window": window}).drop_duplicates()
    acquired = windows.groupby("customer_id")["window"].transform("min")
    windows = windows[acquired < cut].assign(acquired=acquired[acquired < cut])
    later = windows[windows["window"] > windows["acquired"]]
    calib = later[later["window"] < cut]
    by_customer = windows.groupby("customer_id")["acquired"].first()
    last = calib.groupby("customer_id")["window"].max().reindex(by_customer.index)
    out = pd.DataFrame({
        "frequency": calib.groupby("customer_id").size().reindex(by_customer.index, fill_value=0),
        "recency": (last - by_customer).fillna(0),
        "periods": cut - 1 - by_customer,
    }).astype("int64")
    if cut < n_windows:
        hold = later[later["window"] >= cut].groupby("customer_id").size()
        out["frequency_holdout"] = hold.reindex(by_customer.index, fill_value=0).astype("int64")
        out["periods_holdout"] = np.int64(n_windows - cut)
    out = out.rename_axis("customer_id").reset_index()
    if compress:
        keys = [c for c in out.columns if c != "customer_id"]
        out = out.groupby(keys).size().rename("weights").reset_index()
    return out


def validate_retention(df: Any, *, group: str | None = None) -> pd.DataFrame:
    """Validate a shifted-BG table: one row per customer, ``customer_id``, ``periods``, ``churned``.

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        ``periods``: whole periods observed (>= 1); ``churned``: 1 (or True) if
        the customer left in the last of them, else 0. Other columns are kept.
    group : str, optional
        A cohort/group column that must be present and complete.

    Returns
    -------
    pandas.DataFrame
        A checked copy with a RangeIndex, int64 ``periods`` and ``churned``.

    Raises
    ------
    DataValidationError
        Empty frame, missing columns or ids, duplicated ids, ``periods`` not a
        whole number >= 1, ``churned`` not 0/1, missing group labels.
    """
    pdf = to_pandas(df)
    check_not_empty(pdf)
    check_columns(pdf, ["customer_id", "periods", "churned"] + ([group] if group is not None else []))
    ids = check_customer_ids(pdf, "customer_id")
    out = pdf.copy()
    out["periods"] = _whole_numbers(pdf, "periods", ids, minimum=1, what="periods counts the periods observed")
    churned = pdf["churned"].astype("int64") if pd.api.types.is_bool_dtype(pdf["churned"]) else \
        numeric_column(pdf, "churned", ids)
    bad = ~np.isin(churned.to_numpy(), (0, 1))
    if bad.any():
        raise DataValidationError(f"{int(bad.sum())} value(s) other than 0 and 1; churned is 1 if the customer "
                                  "left in the last observed period", column="churned", rows=offending_ids(ids, bad))
    out["churned"] = churned.astype("int64")
    if group is not None:
        missing = pdf[group].isna().to_numpy()
        if missing.any():
            raise DataValidationError(f"{int(missing.sum())} missing group label(s)", column=group,
                                      rows=offending_ids(ids, missing))
    _check_unique_ids(pdf, ids)
    return out.reset_index(drop=True)


def retention_frame(df: Any, *, time_unit: str | None = None) -> pd.DataFrame:
    """A shifted-BG table checked for a model: :func:`validate_retention` and the length of its period.

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        One row per customer: ``customer_id``, ``periods``, ``churned``.
    time_unit : str, optional
        Calendar length of one contract period (``"Y"`` for yearly renewals,
        ``"M"``, ``"W"``, ``"D"``) where the frame does not record it; without
        either the unit is ``"period"`` (:data:`PERIOD`). It only names the
        period: every horizon counts whole periods.

    Returns
    -------
    pandas.DataFrame
        The checked table with ``attrs["time_unit"]`` set.

    Raises
    ------
    TimeUnitError
        The frame records another unit than ``time_unit``, or the unit is unknown.
    DataValidationError
        As :func:`validate_retention`.
    """
    pdf = to_pandas(df)
    unit = _recorded_unit(pdf, time_unit, "periods") or PERIOD
    if unit != PERIOD and unit not in TIME_UNITS:
        raise TimeUnitError(f"unknown time unit {unit!r} of a contract period; use one of {[*TIME_UNITS, PERIOD]}",
                            column="periods")
    out = validate_retention(pdf)
    out.attrs["time_unit"] = unit
    return out


def retention_from_survivors(survivors: Sequence[int], *, first_id: int = 1) -> pd.DataFrame:
    """Shifted-BG table of one cohort from its survivor counts.

    Parameters
    ----------
    survivors : sequence of int
        ``survivors[k]``: customers still there after ``k`` periods
        (``survivors[0]`` the cohort size); non-increasing.
    first_id : int, default 1
        ``customer_id`` of the first row; ids are consecutive.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``periods``, ``churned``: ``survivors[k-1] - survivors[k]``
        customers who left in period ``k``, then ``survivors[-1]`` still there
        after ``len(survivors) - 1`` periods.
    """
    counts = np.asarray(survivors)
    if counts.ndim != 1 or counts.size < 2 or not np.all(np.isfinite(counts)) or np.any(counts != np.round(counts)):
        raise DataValidationError("survivors must be a sequence of at least two whole numbers", column="survivors")
    counts = counts.astype(np.int64)
    rising = np.flatnonzero(np.diff(counts) > 0) + 1
    if counts.min() < 0 or rising.size:
        raise DataValidationError("survivor counts must be non-negative and non-increasing",
                                  column="survivors", rows=rising.tolist())
    horizon = counts.size - 1
    periods = np.concatenate([np.repeat(np.arange(1, horizon + 1), -np.diff(counts)), np.full(counts[-1], horizon)])
    churned = np.concatenate([np.ones(counts[0] - counts[-1], dtype=np.int64), np.zeros(counts[-1], dtype=np.int64)])
    return pd.DataFrame({"customer_id": np.arange(first_id, first_id + periods.size), "periods": periods,
                         "churned": churned})


def censor_retention(df: Any, periods: int) -> pd.DataFrame:
    """The table as it was after ``periods`` periods: later churn is not yet observed.

    Rows observed longer are cut to ``periods`` with ``churned = 0`` (e.g. the
    calibration years 1-7 of a 12-year table); the others are unchanged.
    """
    out = validate_retention(df)
    if not (isinstance(periods, (int, np.integer)) and periods >= 1):
        raise ValueError(f"periods must be a whole number >= 1, got {periods!r}")
    longer = out["periods"] > periods
    out.loc[longer, "periods"] = periods
    out.loc[longer, "churned"] = 0
    return out
