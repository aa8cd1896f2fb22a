"""Transaction log -> recency/frequency/monetary (RFM) summary, with optional holdout."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.timing import log_interpurchase_time_sum
from bayesclv.data.validation import (
    TIME_UNITS,
    check_columns,
    check_customer_ids,
    check_no_transactions_after,
    check_not_empty,
    check_period,
    check_time_unit,
    check_values,
    parse_dates,
    to_pandas,
)

__all__ = ["COHORT_FREQUENCIES", "TIME_UNITS", "first_purchase_cohort", "purchase_log", "rfm_summary",
           "summarise_purchase_log"]

#: Cohort periods accepted by :func:`first_purchase_cohort` (pandas period aliases).
COHORT_FREQUENCIES = ("W", "M", "Q", "Y")


def check_cohort_frequency(freq: str) -> str:
    """Return ``freq`` if it is one of ``COHORT_FREQUENCIES``; ValueError otherwise."""
    if not isinstance(freq, str) or freq not in COHORT_FREQUENCIES:
        raise ValueError(f"unknown cohort period {freq!r}; allowed: {COHORT_FREQUENCIES} "
                         "(weeks, months, quarters, years)")
    return freq


def cohort_labels(first_day: pd.Series, freq: str) -> pd.Series:
    """Label of the calendar period (``freq``) containing each first-purchase day.

    Labels are pandas period strings: ``"1997-01"`` (month), ``"1997Q1"``
    (quarter), ``"1997"`` (year), ``"1997-01-06/1997-01-12"`` (week, Monday
    to Sunday); they sort chronologically as strings.
    """
    return first_day.dt.to_period(check_cohort_frequency(freq)).astype(str)


def first_purchase_cohort(
    transactions: Any, *, customer_id: str = "customer_id", date: str = "date", freq: str = "M"
) -> pd.Series:
    """Each customer's acquisition cohort: the period of their first purchase.

    Use it as a ``group`` column of the models (``rfm["cohort"] =
    rfm["customer_id"].map(cohorts)``) or let :func:`rfm_summary` add it with
    ``cohort=freq``.

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per transaction.
    customer_id, date : str
        Columns holding the customer identifier and the transaction date.
    freq : {"W", "M", "Q", "Y"}, default "M"
        Cohort period: week, month, quarter or year of the first purchase.

    Returns
    -------
    pandas.Series
        Cohort labels (see :func:`cohort_labels`) indexed by ``customer_id``,
        sorted by it, named ``cohort``.

    Raises
    ------
    ValueError
        Unknown ``freq``.
    bayesclv.errors.DataValidationError
        Empty input, missing columns, missing ids or dates.

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> first_purchase_cohort(load_cdnow(), freq="M").value_counts().sort_index().to_dict()
    {'1997-01': 781, '1997-02': 857, '1997-03': 719}
    """
    check_cohort_frequency(freq)
    tx = to_pandas(transactions)
    check_not_empty(tx)
    check_columns(tx, [customer_id, date])
    work = purchase_log(tx, customer_id=customer_id, date=date, value=None)
    first = work.groupby("customer_id", sort=True)["day"].min()
    out = cohort_labels(first, freq).rename("cohort")
    out.index.name = "customer_id"
    return out


def rfm_summary(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    value: str | None = None,
    time_unit: str = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
    cohort: str | None = None,
    litt: bool = False,
) -> pd.DataFrame:
    """Summarise a transaction log into one RFM row per customer.

    Transactions are first reduced to **purchase days**: all transactions of a
    customer on the same calendar day are merged into a single purchase (their
    values summed; the time of day is ignored). This is the convention of the
    buy-till-you-die (BTYD) literature, and the published CDNOW numbers (Fader,
    Hardie & Lee 2005) are computed this way.

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame or dask.dataframe.DataFrame
        One row per transaction. A dask DataFrame (e.g. on a distributed
        cluster) gives a lazy dask DataFrame of the same rows, computed
        partition by partition (see :func:`bayesclv.scale.rfm_summary_dask`).
    customer_id : str, default "customer_id"
        Column holding the customer identifier. The output column is always
        named ``customer_id``.
    date : str, default "date"
        Column holding the transaction date (datetime, or strings parsed by pandas).
    value : str, optional
        Column holding the (non-negative) transaction value. When given, the
        ``monetary_value`` columns are computed.
    time_unit : {"D", "W", "M", "Y"}, default "W"
        Unit of ``recency``, ``T`` and ``T_holdout``: days, weeks (7 days), months
        (365.25/12 days) or years (365.25 days). See ``TIME_UNITS``.
    calibration_end : date-like, optional
        Inclusive last day of the calibration period. When given, only customers
        whose first purchase is on or before it are kept (the cohort), the RFM
        statistics use transactions up to it, and holdout columns are added.
    observation_end : date-like, optional
        Inclusive last day of observation (the holdout end when ``calibration_end``
        is given). Defaults to the last date in the data. A transaction dated after
        it is an error, not silently dropped.
    cohort : {"W", "M", "Q", "Y"}, optional
        Add a ``cohort`` column: the week, month, quarter or year of each
        customer's first purchase (see :func:`first_purchase_cohort`), ready to
        be a model's ``group``.
    litt : bool, default False
        Add a ``litt`` column: the sum over each customer's repeat purchase days
        (in calibration) of the log of the time since the previous purchase day,
        in ``time_unit`` (0 without repeat purchases). The regularity models
        ((M)BG/CNBD-k) need it.

    Returns
    -------
    pandas.DataFrame
        RangeIndex, sorted by ``customer_id``, columns in this order:

        - ``customer_id``
        - ``frequency`` : number of repeat purchase days (distinct purchase days
          minus one), float64 holding whole numbers.
        - ``recency`` : time from the first to the last purchase day (0 without
          repeat purchases), in ``time_unit``.
        - ``T`` : time from the first purchase day to the end of observation
          (``calibration_end`` if given, else ``observation_end``, else the last
          date in the data), in ``time_unit``.
        - ``monetary_value`` (only with ``value``) : mean value of the *repeat*
          purchase days (first purchase day excluded), 0.0 when ``frequency == 0``,
          as the Gamma-Gamma spend model expects.
        - ``litt`` (only with ``litt=True``) : sum of the log inter-purchase times.
        - with ``calibration_end`` only: ``frequency_holdout`` (number of purchase
          days in ``(calibration_end, observation_end]``), ``monetary_value_holdout``
          (mean value per holdout purchase day, 0.0 if none; only with ``value``),
          ``T_holdout`` (``observation_end - calibration_end`` in ``time_unit``).
        - with ``cohort`` only: ``cohort`` (string label of the first-purchase period).

        ``attrs["time_unit"]`` records the unit, ``attrs["observation_end"]`` the
        end of observation and, with a holdout, ``attrs["calibration_end"]`` its
        start (both :class:`pandas.Timestamp`).

    Raises
    ------
    ValueError
        Unknown ``time_unit``.
    bayesclv.errors.DataValidationError
        Empty input, missing columns, missing customer ids, missing/unparseable
        dates, negative or missing values, ``calibration_end`` outside the data,
        ``observation_end`` before ``calibration_end`` or before some transaction.

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), value="value", calibration_end="1997-09-30")
    >>> int(rfm["frequency"].sum()), int(rfm["frequency_holdout"].sum())
    (2457, 1882)
    """
    if cohort is not None:
        check_cohort_frequency(cohort)
    if is_dask_collection(transactions):  # partitioned data, possibly on a cluster
        if litt:
            raise NotImplementedError("rfm_summary(litt=True) takes pandas or polars data, not a dask DataFrame")
        from bayesclv.scale import rfm_summary_dask

        return rfm_summary_dask(transactions, customer_id=customer_id, date=date, value=value,
                                time_unit=time_unit, calibration_end=calibration_end,
                                observation_end=observation_end, cohort=cohort)
    check_time_unit(time_unit)
    tx = to_pandas(transactions)
    check_not_empty(tx)
    required = [customer_id, date] + ([value] if value is not None else [])
    check_columns(tx, required)
    work = purchase_log(tx, customer_id=customer_id, date=date, value=value)
    cal_end, obs_end = check_period(
        work["day"].min(), work["day"].max(), calibration_end, observation_end, column=date
    )
    return summarise_purchase_log(work, time_unit=time_unit, calibration_end=cal_end,
                                  observation_end=obs_end, date=date, has_value=value is not None,
                                  cohort=cohort, litt=litt)


def is_dask_collection(obj: Any) -> bool:
    """Whether ``obj`` is a dask collection (without importing dask when it is not in use)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def purchase_log(tx: pd.DataFrame, *, customer_id: str, date: str, value: str | None) -> pd.DataFrame:
    """Validated ``customer_id``, calendar ``day`` and ``value`` (0 without ``value``) per transaction."""
    ids = check_customer_ids(tx, customer_id).reset_index(drop=True)
    days = parse_dates(tx[date].reset_index(drop=True), ids, column=date)
    work = pd.DataFrame({"customer_id": ids, "day": days})
    if value is not None:
        work["value"] = check_values(tx[value].reset_index(drop=True), ids, column=value)
    else:
        work["value"] = 0.0
    return work


def summarise_purchase_log(work: pd.DataFrame, *, time_unit: str, calibration_end: pd.Timestamp | None,
                           observation_end: pd.Timestamp, date: str, has_value: bool,
                           cohort: str | None = None, litt: bool = False) -> pd.DataFrame:
    """RFM rows of a :func:`purchase_log` whose period ends are already resolved and checked.

    ``cohort`` (a period of ``COHORT_FREQUENCIES``) adds the first-purchase cohort column,
    ``litt`` the sum of the log inter-purchase times.

    Works on any subset of customers that holds all of each customer's
    transactions (e.g. one partition of a log partitioned by customer).
    """
    days_per_unit = TIME_UNITS[time_unit]
    cal_end, obs_end = calibration_end, observation_end
    check_no_transactions_after(work["day"], work["customer_id"], obs_end, column=date)

    # one row per (customer, purchase day), sorted by customer then day
    daily = work.groupby(["customer_id", "day"], sort=True, as_index=False)["value"].sum()
    first = daily.groupby("customer_id", sort=True)["day"].transform("min")

    end = obs_end if cal_end is None else cal_end
    in_cohort = first <= end
    cal = daily[in_cohort & (daily["day"] <= end)]
    g = cal.groupby("customer_id", sort=True)["day"]
    first_day, last_day, n_days = g.min(), g.max(), g.size()

    out = pd.DataFrame(index=first_day.index)
    out["frequency"] = (n_days - 1).astype("float64")
    out["recency"] = (last_day - first_day).dt.days.astype("float64") / days_per_unit
    out["T"] = (end - first_day).dt.days.astype("float64") / days_per_unit
    if has_value:
        repeat = cal[cal["day"] > first[cal.index]]
        out["monetary_value"] = (
            repeat.groupby("customer_id", sort=True)["value"].mean().reindex(out.index).fillna(0.0)
        )
    if litt:
        out["litt"] = log_interpurchase_time_sum(cal["customer_id"], cal["day"], days_per_unit)

    if cal_end is not None:
        hold = daily[in_cohort & (daily["day"] > cal_end)]
        hg = hold.groupby("customer_id", sort=True)["value"]
        out["frequency_holdout"] = hg.size().reindex(out.index).fillna(0).astype("float64")
        if has_value:
            out["monetary_value_holdout"] = hg.mean().reindex(out.index).fillna(0.0)
        out["T_holdout"] = np.float64((obs_end - cal_end).days) / days_per_unit
    if cohort is not None:
        out["cohort"] = cohort_labels(first_day, cohort)

    out.index.name = "customer_id"
    out = out.reset_index()
    out.attrs["time_unit"] = time_unit
    out.attrs["observation_end"] = obs_end
    if cal_end is not None:
        out.attrs["calibration_end"] = cal_end
    return out
