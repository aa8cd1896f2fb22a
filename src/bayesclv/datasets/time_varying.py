"""A synthetic customer base with weekly time-varying covariates, drawn from the time-varying Pareto/NBD.

Two covariates per customer and week: ``contact`` (1 in the weeks a customer
was sent a mailing, a 0/1 draw per week) and ``season`` (a yearly sine wave,
the same for everyone). Customers are acquired over the first weeks; their
repeat purchases and lifetimes follow :func:`bayesclv.formulas.paretonbd_dynamic.simulate_purchase_times`
with known parameters, so a fit can be checked against the truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.time_varying import covariate_paths
from bayesclv.formulas import paretonbd_dynamic

__all__ = ["TRUE_PARAMETERS", "synthetic_time_varying"]

#: The parameters :func:`synthetic_time_varying` draws from by default (per week; coefficients per unit).
TRUE_PARAMETERS: dict[str, Any] = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 30.0,
                                   "purchase_coef": {"contact": 0.7, "season": 0.4},
                                   "dropout_coef": {"contact": -0.6, "season": 0.3}}


def synthetic_time_varying(n_customers: int = 1000, *, weeks: int = 52, holdout_weeks: int = 26,
                           acquisition_weeks: int = 12, period_weeks: int = 1, contact_rate: float = 0.3,
                           parameters: dict[str, Any] | None = None, seed: int = 0
                           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Transactions and weekly covariates of a synthetic base.

    Parameters
    ----------
    n_customers : int
        Customers, acquired on days drawn uniformly over the first ``acquisition_weeks``.
    weeks, holdout_weeks : int
        Calibration and holdout length; the covariate table covers both.
    period_weeks : int
        Length of the covariate periods in weeks.
    contact_rate : float
        Share of customer-periods with a mailing.
    parameters : dict, optional
        ``r, alpha, s, beta`` (per week) and ``purchase_coef``/``dropout_coef``
        (``{covariate: effect per unit}``); default :data:`TRUE_PARAMETERS`.
    seed : int

    Returns
    -------
    transactions : pandas.DataFrame
        ``customer_id, date``, one row per purchase (several on one day are possible).
    covariates : pandas.DataFrame
        ``customer_id, period_start, contact, season``, one row per customer and period
        (periods ``f"{7 * period_weeks}D"``).
    calibration_end : pandas.Timestamp
        The last calibration day.
    """
    p = {**TRUE_PARAMETERS, **(parameters or {})}
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp("2020-01-06")
    total = -(-(weeks + holdout_weeks) // period_weeks)  # periods, the last may reach past the holdout
    starts = origin + pd.to_timedelta(7 * period_weeks * np.arange(total), unit="D")
    ids = np.arange(1, n_customers + 1)
    table = pd.DataFrame({"customer_id": np.repeat(ids, total), "period_start": np.tile(starts, n_customers),
                          "contact": (rng.random(n_customers * total) < contact_rate).astype(float),
                          "season": np.tile(np.sin(2 * np.pi * period_weeks * np.arange(total) / 52.0), n_customers)})
    paths = covariate_paths(table, ["contact", "season"], period=f"{7 * period_weeks}D")
    birth = origin + pd.to_timedelta(rng.integers(0, 7 * acquisition_weeks, n_customers), unit="D")
    end = origin + pd.Timedelta(days=7 * (weeks + holdout_weeks) - 1)
    until = (end - birth).days.to_numpy() / 7.0
    cols = ["contact", "season"]
    pieces = paths.pieces(ids, birth, until, "W", cols)
    times = paretonbd_dynamic.simulate_purchase_times(
        pieces.start, pieces.end, pieces.values, pieces.values, until, p["r"], p["alpha"], p["s"], p["beta"],
        np.array([p["purchase_coef"][c] for c in cols]), np.array([p["dropout_coef"][c] for c in cols]), rng)
    counts = np.array([t.size for t in times])
    repeat_ids = np.repeat(ids, counts)
    repeat_days = np.floor(np.concatenate(times) * 7.0).astype(int) if counts.sum() else np.zeros(0, int)
    dates = np.concatenate([birth.to_numpy(), birth.to_numpy()[repeat_ids - 1] + repeat_days.astype("timedelta64[D]")])
    transactions = pd.DataFrame({"customer_id": np.concatenate([ids, repeat_ids]), "date": dates})
    transactions = transactions.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    return transactions, table, origin + pd.Timedelta(days=7 * weeks - 1)
