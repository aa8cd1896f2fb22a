"""A synthetic customer base with weekly time-varying covariates, drawn from the time-varying Pareto/NBD.

Two covariates per customer and week: ``contact`` (1 in the weeks a customer
was sent a mailing, a 0/1 draw per week) and ``season`` (a yearly sine wave,
the same for everyone). Customers are acquired over the first weeks; their
repeat purchases and lifetimes follow :func:`bayesclv.formulas.paretonbd_dynamic.simulate_purchase_times`
with known parameters, so a fit can be checked against the truth.

The purchases are drawn in continuous time. :func:`synthetic_time_varying_summary`
records them as the model sees them (every purchase, at its time), so a fit
recovers the parameters; :func:`synthetic_time_varying` writes them to a
transaction log of calendar days, which :func:`bayesclv.time_varying_summary`
reduces to purchase days: two purchases on one day become one, more often where
the rate is high (a mailing week), which pulls the purchase effects towards 0
(``validation/results/tv_covariates_recovery.md`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.time_varying import SUM_PREFIX, CovariatePaths, covariate_paths
from bayesclv.formulas import paretonbd_dynamic

__all__ = ["TRUE_PARAMETERS", "synthetic_time_varying", "synthetic_time_varying_summary"]

#: The parameters the synthetic bases are drawn from by default (per week; coefficients per unit).
TRUE_PARAMETERS: dict[str, Any] = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 30.0,
                                   "purchase_coef": {"contact": 0.7, "season": 0.4},
                                   "dropout_coef": {"contact": -0.6, "season": 0.3}}

_COVARIATES = ["contact", "season"]


@dataclass(frozen=True)
class _Base:
    """One simulated base: the covariate table and paths, acquisition days, repeat purchase times
    (weeks after the first purchase, through the holdout) and the calibration end."""

    table: pd.DataFrame
    paths: CovariatePaths
    birth: pd.DatetimeIndex
    times: list[np.ndarray]
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp


def _draw(n_customers, weeks, holdout_weeks, acquisition_weeks, period_weeks, contact_rate, parameters, seed):
    p = {**TRUE_PARAMETERS, **(parameters or {})}
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp("2020-01-06")
    total = -(-(weeks + holdout_weeks) // period_weeks)  # periods, the last may reach past the holdout
    starts = origin + pd.to_timedelta(7 * period_weeks * np.arange(total), unit="D")
    ids = np.arange(1, n_customers + 1)
    table = pd.DataFrame({"customer_id": np.repeat(ids, total), "period_start": np.tile(starts, n_customers),
                          "contact": (rng.random(n_customers * total) < contact_rate).astype(float),
                          "season": np.tile(np.sin(2 * np.pi * period_weeks * np.arange(total) / 52.0), n_customers)})
    paths = covariate_paths(table, _COVARIATES, period=f"{7 * period_weeks}D")
    birth = origin + pd.to_timedelta(rng.integers(0, 7 * acquisition_weeks, n_customers), unit="D")
    end = origin + pd.Timedelta(days=7 * (weeks + holdout_weeks) - 1)
    until = (end - birth).days.to_numpy() / 7.0
    pieces = paths.pieces(ids, birth, until, "W", _COVARIATES)
    times = paretonbd_dynamic.simulate_purchase_times(
        pieces.start, pieces.end, pieces.values, pieces.values, until, p["r"], p["alpha"], p["s"], p["beta"],
        np.array([p["purchase_coef"][c] for c in _COVARIATES]),
        np.array([p["dropout_coef"][c] for c in _COVARIATES]), rng)
    return _Base(table, paths, birth, times, origin + pd.Timedelta(days=7 * weeks - 1), end)


def synthetic_time_varying(n_customers: int = 1000, *, weeks: int = 52, holdout_weeks: int = 26,
                           acquisition_weeks: int = 12, period_weeks: int = 1, contact_rate: float = 0.3,
                           parameters: dict[str, Any] | None = None, seed: int = 0
                           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Transactions and weekly covariates of a synthetic base, as a log of calendar days.

    A purchase at ``t`` weeks after the first one is dated on day ``floor(7 t)``
    after it, the day whose covariate period holds ``t``. Purchases on one day
    (also on the first purchase's day) are one purchase day for
    :func:`bayesclv.time_varying_summary`, so the log holds fewer purchases
    than were drawn; :func:`synthetic_time_varying_summary` gives the model's
    data of the same base without that loss.

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
    base = _draw(n_customers, weeks, holdout_weeks, acquisition_weeks, period_weeks, contact_rate, parameters, seed)
    counts = np.array([t.size for t in base.times])
    ids = np.arange(1, n_customers + 1)
    repeat_ids = np.repeat(ids, counts)
    repeat_days = np.floor(np.concatenate(base.times) * 7.0).astype(int) if counts.sum() else np.zeros(0, int)
    born = base.birth.to_numpy()
    dates = np.concatenate([born, born[repeat_ids - 1] + repeat_days.astype("timedelta64[D]")])
    transactions = pd.DataFrame({"customer_id": np.concatenate([ids, repeat_ids]), "date": dates})
    transactions = transactions.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    return transactions, base.table, base.calibration_end


def synthetic_time_varying_summary(n_customers: int = 1000, *, weeks: int = 52, holdout_weeks: int = 26,
                                   acquisition_weeks: int = 12, period_weeks: int = 1, contact_rate: float = 0.3,
                                   parameters: dict[str, Any] | None = None, seed: int = 0
                                   ) -> tuple[pd.DataFrame, CovariatePaths]:
    """The same base as :func:`synthetic_time_varying` (same arguments and seed), as the model's data.

    Every drawn purchase counts, at its exact time: ``recency`` is the last
    calibration purchase's time (not a whole day) and ``purchase_sum:<covariate>``
    sums the covariates of the periods holding the purchase times. This is the
    model's own data, so a fit of it recovers the parameters without the
    day-merging loss of the log.

    Returns
    -------
    data : pandas.DataFrame
        :func:`bayesclv.time_varying_summary`'s columns (``customer_id``,
        ``frequency``, ``recency``, ``T``, ``frequency_holdout``, ``T_holdout``,
        ``first_purchase``, ``purchase_sum:contact``, ``purchase_sum:season``) and attrs
        (``time_unit`` ``"W"``, ``calibration_end``, ``observation_end``).
    paths : CovariatePaths
        The covariate periods, through the holdout.
    """
    base = _draw(n_customers, weeks, holdout_weeks, acquisition_weeks, period_weeks, contact_rate, parameters, seed)
    ids = np.arange(1, n_customers + 1)
    T = (base.calibration_end - base.birth).days.to_numpy() / 7.0
    holdout = (base.observation_end - base.calibration_end).days / 7.0
    pieces = base.paths.pieces(ids, base.birth, T + holdout, "W", _COVARIATES)
    frequency, recency, holdout_count = (np.zeros(n_customers) for _ in range(3))
    sums = np.zeros((n_customers, len(_COVARIATES)))
    for i, t in enumerate(base.times):
        cal = t[t <= T[i]]
        frequency[i], holdout_count[i] = cal.size, t.size - cal.size
        if cal.size:
            recency[i] = cal[-1]
            period = np.searchsorted(pieces.start[i], cal, side="right") - 1  # periods hold their start
            sums[i] = pieces.values[i, period].sum(axis=0)
    data = pd.DataFrame({"customer_id": ids, "frequency": frequency, "recency": recency, "T": T,
                         "frequency_holdout": holdout_count, "T_holdout": holdout,
                         "first_purchase": base.birth.to_numpy()})
    for j, col in enumerate(_COVARIATES):
        data[SUM_PREFIX + col] = sums[:, j]
    data.attrs = {"time_unit": "W", "observation_end": base.observation_end, "calibration_end": base.calibration_end}
    return data, base.paths
