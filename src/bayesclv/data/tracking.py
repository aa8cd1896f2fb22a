"""Transaction log -> repeat purchases of a cohort per period (the tracking plot's data).

The tracking plot of Fader, Hardie & Lee (2005) follows a cohort's repeat
purchases week by week through calibration and holdout. It needs the dated
transactions, not just the RFM summary, hence this function next to
:func:`~bayesclv.data.rfm_summary`, sharing its conventions: transactions are
merged into purchase days, the cohort is the customers whose first purchase is
on or before ``calibration_end``, and times are measured in ``time_unit`` with
a purchase on day ``d`` at time ``d`` (so ``T`` of the RFM frame is the time
from a customer's first purchase to ``calibration_end``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.purchases import purchase_log
from bayesclv.data.validation import (
    check_columns,
    check_no_transactions_after,
    check_not_empty,
    check_period,
    check_time_unit,
    to_pandas,
)

__all__ = ["repeat_purchase_tracking"]


def repeat_purchase_tracking(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    time_unit: str = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
) -> pd.DataFrame:
    """Incremental and cumulative repeat purchases of the cohort per period.

    Time runs from the cohort's earliest first purchase day (time 0). Period
    ``k`` is ``(k-1, k]`` time units, except that ``calibration_end`` and
    ``observation_end`` are period boundaries too, so that no period straddles
    the calibration/holdout split and the last period ends at
    ``observation_end`` (such periods are shorter than one unit; ``start`` and
    ``end`` say so). A repeat purchase is every purchase day of a cohort
    customer after their first.

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per transaction.
    customer_id, date : str
        Columns of the customer identifier and the transaction date.
    time_unit : {"D", "W", "M", "Y"}, default "W"
        Unit of the periods.
    calibration_end : date-like, optional
        Inclusive last day of calibration; the cohort is the customers whose
        first purchase is on or before it. Default: every customer, no holdout.
    observation_end : date-like, optional
        Inclusive last day of observation; default: the last date in the data.

    Returns
    -------
    pandas.DataFrame
        One row per period: ``period`` (1, 2, ...), ``start`` and ``end``
        (time since the cohort start, in ``time_unit``), ``incremental``
        (repeat purchases in the period), ``cumulative`` and ``holdout``
        (period after ``calibration_end``). ``attrs`` records ``time_unit``,
        ``cohort_start`` (Timestamp), ``calibration_end_time`` (calibration end
        in units since the cohort start) and ``customers`` (cohort size).

    Raises
    ------
    bayesclv.errors.DataValidationError
        As :func:`~bayesclv.data.rfm_summary` (missing columns or dates,
        periods outside the data, transactions after ``observation_end``).

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> track = repeat_purchase_tracking(load_cdnow(), calibration_end="1997-09-30")
    >>> int(track.loc[~track["holdout"], "incremental"].sum()), int(track.loc[track["holdout"], "incremental"].sum())
    (2457, 1882)
    """
    days_per_unit = check_time_unit(time_unit)
    tx = to_pandas(transactions)
    check_not_empty(tx)
    check_columns(tx, [customer_id, date])
    work = purchase_log(tx, customer_id=customer_id, date=date, value=None)
    days = work["day"]
    cal_end, obs_end = check_period(days.min(), days.max(), calibration_end, observation_end, column=date)
    check_no_transactions_after(days, work["customer_id"], obs_end, column=date)

    daily = work[["customer_id", "day"]].drop_duplicates()
    first = daily.groupby("customer_id")["day"].transform("min")
    cohort = daily[first <= (obs_end if cal_end is None else cal_end)]
    first = first[cohort.index]
    start_day = first.min()
    repeat_times = ((cohort["day"] - start_day).dt.days.to_numpy(dtype=float) / days_per_unit)[
        (cohort["day"] > first).to_numpy()]

    total = (obs_end - start_day).days / days_per_unit
    cal_time = total if cal_end is None else (cal_end - start_day).days / days_per_unit
    ends = np.union1d(np.arange(1, int(np.ceil(total)) + 1, dtype=float), [cal_time, total])
    ends = ends[(ends > 0) & (ends <= total)]
    starts = np.concatenate([[0.0], ends[:-1]])
    # a purchase at time tau belongs to the period (start, end] holding it
    cumulative = np.searchsorted(np.sort(repeat_times), ends, side="right")
    out = pd.DataFrame({
        "period": np.arange(1, ends.size + 1),
        "start": starts,
        "end": ends,
        "incremental": np.diff(cumulative, prepend=0).astype(float),
        "cumulative": cumulative.astype(float),
        "holdout": ends > cal_time + 1e-12,
    })
    out.attrs.update(time_unit=time_unit, cohort_start=start_day, calibration_end_time=float(cal_time),
                     customers=int(cohort["customer_id"].nunique()))
    return out
