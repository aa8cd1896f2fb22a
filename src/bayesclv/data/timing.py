"""Timing statistics of a transaction log beyond recency and frequency.

Models with regular purchase timing (the (M)BG/CNBD-k, the Pareto/GGG) need,
besides ``(x, t_x, T)``, the sum over a customer's repeat purchases of the log
of the inter-purchase times, ``litt = sum_j log(t_j - t_(j-1))`` (``t_0`` the
first purchase; 0 without repeat purchases). As for ``recency``, purchases are
purchase days, so every inter-purchase time is at least one day.
``rfm_summary`` adds it to the RFM frame; :func:`validate_timing_rfm`
checks a frame that carries it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import offending_ids
from bayesclv.data.validation import numeric_column, to_pandas, validate_rfm
from bayesclv.errors import DataValidationError

__all__ = ["log_interpurchase_time_sum", "validate_timing_rfm"]

_TOL = 1e-9


def log_interpurchase_time_sum(customer_id: pd.Series, day: pd.Series, days_per_unit: float) -> pd.Series:
    """``litt`` of each customer of a purchase-day log.

    Parameters
    ----------
    customer_id, day : pandas.Series
        One entry per (customer, purchase day), sorted by customer then day,
        each day once per customer.
    days_per_unit : float
        Length of the time unit in days (``TIME_UNITS[time_unit]``).

    Returns
    -------
    pandas.Series
        ``litt`` per customer (sorted ids), named ``litt``.
    """
    gaps = day.diff().dt.days.to_numpy(dtype=float)
    repeat = np.r_[False, customer_id.to_numpy()[1:] == customer_id.to_numpy()[:-1]]
    logs = np.where(repeat, np.log(np.where(repeat, gaps, 1.0) / days_per_unit), 0.0)
    return pd.Series(logs, index=customer_id.to_numpy()).groupby(level=0, sort=True).sum().rename("litt")



def validate_timing_rfm(df: Any, *, time_unit: str | None = None) -> pd.DataFrame:
    """:func:`~bayesclv.data.validation.validate_rfm` plus the ``litt`` column of the regularity models.

    ``litt`` must be a finite number, 0 without repeat purchases and, since the
    ``x`` inter-purchase times add up to ``recency``, at most ``x log(recency / x)``
    (the mean of their logs is at most the log of their mean).

    Parameters
    ----------
    df : pandas.DataFrame or polars.DataFrame
        RFM frame with ``litt`` (``rfm_summary`` adds it).
    time_unit : str, optional
        As for :func:`~bayesclv.data.validation.validate_rfm`.

    Returns
    -------
    pandas.DataFrame
        The checked copy, ``litt`` as float64.

    Raises
    ------
    DataValidationError
        ``litt`` is missing (``column="litt"``), not a finite number, not 0
        without repeat purchases or above ``x log(recency / x)``; or a check of
        :func:`~bayesclv.data.validation.validate_rfm` fails.
    """
    pdf = to_pandas(df)
    if "litt" not in pdf.columns:
        raise DataValidationError(
            "missing column 'litt' (the sum of the log inter-purchase times, which the likelihood of the "
            "regular-timing models needs): build the frame with rfm_summary (its litt column, on by default)", column="litt")
    out = validate_rfm(pdf, time_unit=time_unit)
    ids = out["customer_id"]
    litt = numeric_column(out, "litt", ids).to_numpy()
    x, t_x = out["frequency"].to_numpy(), out["recency"].to_numpy()
    zero = (x == 0) & (np.abs(litt) > _TOL)
    if zero.any():
        raise DataValidationError(f"{int(zero.sum())} customer(s) without repeat purchases but litt != 0",
                                  column="litt", rows=offending_ids(ids, zero))
    with np.errstate(divide="ignore"):
        bound = np.where(x > 0, x * np.log(np.where(x > 0, t_x / np.maximum(x, 1.0), 1.0)), 0.0)
    above = litt > bound + _TOL * np.maximum(1.0, np.abs(bound))
    if above.any():
        raise DataValidationError(
            f"{int(above.sum())} customer(s) with litt above frequency * log(recency / frequency): the "
            "inter-purchase times could not add up to recency", column="litt", rows=offending_ids(ids, above))
    out["litt"] = np.where(x == 0, 0.0, litt)
    return out
