"""Timing statistics of a transaction log beyond recency and frequency.

Models with regular purchase timing (the (M)BG/CNBD-k, the Pareto/GGG) need,
besides ``(x, t_x, T)``, the sum over a customer's repeat purchases of the log
of the inter-purchase times, ``litt = sum_j log(t_j - t_(j-1))`` (``t_0`` the
first purchase; 0 without repeat purchases). As for ``recency``, purchases are
purchase days, so every inter-purchase time is at least one day.
``rfm_summary(..., litt=True)`` adds it to the RFM frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["log_interpurchase_time_sum"]


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

