"""The pandas core of the RFM summary: a validated purchase log and its summary per customer.

:func:`purchase_log` merges nothing yet: one row per transaction with its
calendar day; :func:`summarise_purchase_log` reduces it to purchase days and
one RFM row per customer. Both work on any subset of customers that holds all
of each customer's transactions, which is what lets the dask version run them
partition by partition (:mod:`bayesclv.data.dask`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesclv.data.validation import (
    TIME_UNITS,
    check_customer_ids,
    check_no_transactions_after,
    check_values,
    parse_dates,
    unique_list,
)
from bayesclv.data.timing import log_interpurchase_time_sum
from bayesclv.errors import ArgumentError, DataValidationError

__all__ = ["COHORT_FREQUENCIES", "LOG_SPEND_ZERO", "check_cohort_frequency", "check_log_spend_argument", "cohort_labels",
           "purchase_log", "summarise_purchase_log"]

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


LOG_SPEND_ZERO = "repeat purchase days of value 0 have no log spend: drop them or leave log_spend out"


def check_log_spend_argument(log_spend: bool, value: str | None) -> None:
    """``log_spend=True`` needs the transaction values."""
    if log_spend and value is None:
        raise ArgumentError("log_spend=True needs the transaction values: pass value=", argument="log_spend")


def log_spend_statistics(repeat: pd.DataFrame, customers: pd.Index, *, column: str = "value") -> pd.DataFrame:
    """Per customer, the mean and the within sum of squares of the log values of the repeat purchase days.

    Given ``n_i = frequency`` log day values with a normal law around the customer's own mean, these two
    numbers are sufficient statistics (the joint spend models' likelihood needs nothing else). Both are 0
    without repeat purchases. A repeat day worth 0 has no logarithm: a typed error names its customers
    and the value ``column`` of the user's log.
    """
    zero = (repeat["value"] <= 0).to_numpy()
    if zero.any():
        raise DataValidationError(LOG_SPEND_ZERO, column=column, rows=unique_list(repeat.loc[zero, "customer_id"]))
    logs = pd.DataFrame({"customer_id": repeat["customer_id"].to_numpy(),
                         "log_value": np.log(repeat["value"].to_numpy(dtype=float))})
    grouped = logs.groupby("customer_id", sort=True)["log_value"]
    mean = grouped.mean()
    squares = (logs["log_value"] - logs["customer_id"].map(mean)).pow(2).groupby(logs["customer_id"]).sum()
    return pd.DataFrame({"log_spend_mean": mean, "log_spend_ss": squares}).reindex(customers).fillna(0.0)


def summarise_purchase_log(work: pd.DataFrame, *, time_unit: str, calibration_end: pd.Timestamp | None,
                           observation_end: pd.Timestamp, date: str, value: str | None,
                           cohort: str | None = None, litt: bool = False,
                           log_spend: bool = False) -> pd.DataFrame:
    """RFM rows of a :func:`purchase_log` whose period ends are already resolved and checked.

    ``date`` and ``value`` name the user's columns (``value`` None: no values) for errors.
    ``cohort`` (a period of ``COHORT_FREQUENCIES``) adds the first-purchase cohort column,
    ``litt`` the sum of the log inter-purchase times, ``log_spend`` the spend sufficient
    statistics of the repeat purchase days (:func:`log_spend_statistics`).

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
    if value is not None:
        repeat = cal[cal["day"] > first[cal.index]]
        out["monetary_value"] = (
            repeat.groupby("customer_id", sort=True)["value"].mean().reindex(out.index).fillna(0.0)
        )
    if log_spend:
        out = out.join(log_spend_statistics(repeat, out.index, column=value))
    if litt:
        out["litt"] = log_interpurchase_time_sum(cal["customer_id"], cal["day"], days_per_unit)

    if cal_end is not None:
        hold = daily[in_cohort & (daily["day"] > cal_end)]
        hg = hold.groupby("customer_id", sort=True)["value"]
        out["frequency_holdout"] = hg.size().reindex(out.index).fillna(0).astype("float64")
        if value is not None:
            out["monetary_value_holdout"] = hg.mean().reindex(out.index).fillna(0.0)
        out["T_holdout"] = np.float64((obs_end - cal_end).days) / days_per_unit
    if cohort is not None:
        out["cohort"] = cohort_labels(first_day, cohort)

    for column in ("monetary_value", "monetary_value_holdout"):
        overflow = column in out and not np.isfinite(out[column].to_numpy()).all()
        if overflow:  # finite values whose daily sums leave float64
            bad = ~np.isfinite(out[column].to_numpy())
            raise DataValidationError(
                f"{int(bad.sum())} customer(s) whose purchase values add up beyond the float64 range",
                column=column, rows=out.index[bad].tolist())

    out.index.name = "customer_id"
    out = out.reset_index()
    out.attrs["time_unit"] = time_unit
    out.attrs["observation_end"] = obs_end
    if cal_end is not None:
        out.attrs["calibration_end"] = cal_end
    return out
