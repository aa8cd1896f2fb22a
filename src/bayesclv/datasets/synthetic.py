"""Synthetic customer bases of any size from the models' own simulators.

Customers are acquired on whole days spread over an acquisition window and
observed until a common end day, as in a real cohort (CDNOW: first purchases in
the first 12 weeks of 1997, calibration to week 39). Their histories are drawn
in continuous time by the families' simulators (:mod:`bayesclv.simulate`) and then recorded at the data's
resolution of one **day**, expressed in ``time_unit``: a repeat purchase at
``tau`` days after the first one lands on day ``ceil(tau)``. So ``recency`` and
``T`` take the same few hundred values that real day-stamped data do, and
identical histories repeat, which is what makes compressing identical rows in
the likelihood and in predictions pay off at scale.

The RFM frame is produced directly, chunk by chunk (memory bounded by the
chunk size, not the number of customers); :func:`synthetic_transactions` gives
the transaction log of the same histories for small sizes, which
:func:`bayesclv.rfm_summary` turns back into (day-merged) RFM rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.validation import check_time_unit
from bayesclv.formulas import bgnbd, gammagamma, paretonbd

__all__ = ["PUBLISHED_PARAMS", "iter_synthetic_rfm", "synthetic_rfm", "synthetic_transactions"]

#: CDNOW estimates (weekly rates) of Fader, Hardie & Lee (2005): the default populations.
PUBLISHED_PARAMS: dict[str, dict[str, float]] = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "paretonbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
    "gammagamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}
_SIMULATORS = {"bgnbd": bgnbd.simulate_population, "paretonbd": paretonbd.simulate_population}


def _check_args(n_customers, model, observation_days, acquisition_days, chunk_customers):
    if int(n_customers) != n_customers or n_customers < 1:
        raise ValueError(f"n_customers must be a positive whole number, got {n_customers!r}")
    if model not in _SIMULATORS:
        raise ValueError(f"model must be one of {sorted(_SIMULATORS)}, got {model!r}")
    if not 1 <= acquisition_days <= observation_days:
        raise ValueError(f"need 1 <= acquisition_days ({acquisition_days}) <= observation_days "
                         f"({observation_days})")
    if int(chunk_customers) != chunk_customers or chunk_customers < 1:
        raise ValueError(f"chunk_customers must be a positive whole number, got {chunk_customers!r}")


def _simulate_histories(rng, n, model, params, days_per_unit, observation_days, acquisition_days):
    """Continuous-time histories of ``n`` new customers plus their whole-day records.

    Returns the first-purchase day, ``T`` in days (whole), the frequency, the
    continuous recency in days and the recorded recency day ``ceil(recency)``.
    """
    first_day = rng.integers(0, acquisition_days, size=n)
    t_days = (observation_days - first_day).astype(float)
    sim = _SIMULATORS[model](t_days / days_per_unit, **params, rng=rng)
    recency_days = sim["recency"] * days_per_unit
    # a repeat purchase at tau > 0 days is on day ceil(tau) <= T (T is whole days)
    recency_day = np.minimum(np.ceil(recency_days), t_days)
    return first_day, t_days, sim["frequency"], recency_days, recency_day


def iter_synthetic_rfm(
    n_customers: int,
    *,
    model: str = "bgnbd",
    params: dict[str, float] | None = None,
    spend_params: dict[str, float] | None = None,
    time_unit: str = "W",
    observation_days: int = 273,
    acquisition_days: int = 84,
    chunk_customers: int = 1_000_000,
    random_seed: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the RFM frame of a simulated customer base in chunks of customers.

    Parameters
    ----------
    n_customers : int
        Number of customers in total.
    model : {"bgnbd", "paretonbd"}, default "bgnbd"
        Purchase process (:func:`bayesclv.simulate.simulate_bgnbd` or
        :func:`~bayesclv.simulate.simulate_paretonbd`).
    params : dict, optional
        Population parameters in rates per ``time_unit``; default
        ``PUBLISHED_PARAMS[model]`` (CDNOW, weekly).
    spend_params : dict, optional
        Gamma-Gamma ``p, q, gamma``; when given, a ``monetary_value`` column
        (mean of the repeat purchases' values, 0 without repeat purchases) is
        simulated by :func:`bayesclv.simulate.simulate_gammagamma`.
    time_unit : {"D", "W", "M", "Y"}, default "W"
        Unit of ``recency`` and ``T``; the resolution is always one day.
    observation_days : int, default 273
        Day of the end of observation, counted from the first acquisition day
        (273 days = 39 weeks).
    acquisition_days : int, default 84
        Customers make their first purchase on a day uniform in
        ``[0, acquisition_days)``, so ``T`` is between
        ``observation_days - acquisition_days + 1`` and ``observation_days`` days.
    chunk_customers : int, default 1,000,000
        Customers per yielded frame (memory is bounded by this, not by ``n_customers``).
    random_seed : int, optional
        Seed; the same seed and ``chunk_customers`` give the same customers.

    Yields
    ------
    pandas.DataFrame
        Columns ``customer_id`` (0, 1, ... across chunks), ``frequency``,
        ``recency``, ``T`` (and ``monetary_value``), ``attrs["time_unit"]``.
    """
    _check_args(n_customers, model, observation_days, acquisition_days, chunk_customers)
    days_per_unit = check_time_unit(time_unit)
    params = dict(PUBLISHED_PARAMS[model] if params is None else params)
    seeds = np.random.SeedSequence(random_seed).spawn(-(-int(n_customers) // int(chunk_customers)))
    for index, seed in enumerate(seeds):
        start = index * int(chunk_customers)
        n = min(int(chunk_customers), int(n_customers) - start)
        rng = np.random.default_rng(seed)
        _, t_days, frequency, _, recency_day = _simulate_histories(
            rng, n, model, params, days_per_unit, observation_days, acquisition_days)
        frame = pd.DataFrame({
            "customer_id": np.arange(start, start + n, dtype=np.int64),
            "frequency": frequency,
            "recency": recency_day / days_per_unit,
            "T": t_days / days_per_unit,
        })
        if spend_params is not None:
            frame["monetary_value"] = gammagamma.simulate_population(frequency, **spend_params, rng=rng)["monetary_value"]
        frame.attrs["time_unit"] = time_unit
        yield frame


def synthetic_rfm(n_customers: int, **kwargs: Any) -> pd.DataFrame:
    """The whole simulated RFM frame (all chunks of :func:`iter_synthetic_rfm` concatenated).

    Parameters
    ----------
    n_customers : int
        Number of customers.
    **kwargs
        As for :func:`iter_synthetic_rfm`.

    Returns
    -------
    pandas.DataFrame
        One row per customer, ``attrs["time_unit"]`` set.
    """
    chunks = list(iter_synthetic_rfm(n_customers, **kwargs))
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    frame.attrs["time_unit"] = chunks[0].attrs["time_unit"]
    return frame


def synthetic_transactions(
    n_customers: int,
    *,
    model: str = "bgnbd",
    params: dict[str, float] | None = None,
    spend_params: dict[str, float] | None = None,
    time_unit: str = "W",
    observation_days: int = 273,
    acquisition_days: int = 84,
    start: Any = "2020-01-01",
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Transaction log of the customers :func:`synthetic_rfm` simulates with the same arguments.

    The histories (first day, number of repeat purchases, last purchase) are
    the same as in the RFM frame for the same seed; the earlier repeat
    purchases are placed uniformly before the last one (exact for both
    models: given their number, Poisson purchase times are uniform order
    statistics). Every purchase is dated ``start + ceil(tau)`` days, so
    :func:`bayesclv.rfm_summary` with ``observation_end = start +
    observation_days`` reproduces ``T`` and ``recency`` exactly and
    ``frequency`` except where two purchases fall on one day (it merges them).
    Meant for small sizes: one row per purchase, built in memory.

    Parameters
    ----------
    n_customers, model, params, spend_params, time_unit, observation_days, acquisition_days, random_seed
        As for :func:`iter_synthetic_rfm` (one chunk).
    start : date-like, default "2020-01-01"
        Calendar date of day 0.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``date`` (and ``value``: each purchase
        ``Gamma(p, rate=nu)`` with the customer's ``nu ~ Gamma(q, rate=gamma)``),
        sorted by customer and date. ``attrs["observation_end"]`` is the last
        day of observation.
    """
    _check_args(n_customers, model, observation_days, acquisition_days, n_customers)
    days_per_unit = check_time_unit(time_unit)
    params = dict(PUBLISHED_PARAMS[model] if params is None else params)
    (seed,) = np.random.SeedSequence(random_seed).spawn(1)
    rng = np.random.default_rng(seed)
    first_day, _, frequency, recency_days, _ = _simulate_histories(
        rng, int(n_customers), model, params, days_per_unit, observation_days, acquisition_days)
    extra = np.random.default_rng(seed.spawn(1)[0])  # event placement: not in the RFM stream
    repeats = frequency.astype(np.int64)
    owner = np.repeat(np.arange(int(n_customers)), repeats)
    last = np.zeros(owner.size, dtype=bool)
    last[np.cumsum(repeats)[repeats > 0] - 1] = True
    tau = np.where(last, recency_days[owner], extra.random(owner.size) * recency_days[owner])
    repeat_day = first_day[owner] + np.maximum(np.ceil(tau), 1.0).astype(np.int64)
    ids = np.concatenate([np.arange(int(n_customers)), owner])
    days = np.concatenate([first_day, repeat_day])
    order = np.lexsort((days, ids))
    day0 = pd.Timestamp(start).normalize()
    out = pd.DataFrame({"customer_id": ids[order].astype(np.int64),
                        "date": day0 + pd.to_timedelta(days[order], unit="D")})
    if spend_params is not None:
        nu = extra.gamma(spend_params["q"], 1.0 / spend_params["gamma"], size=int(n_customers))
        out["value"] = extra.gamma(spend_params["p"], 1.0 / nu[ids[order]])
    out.attrs["observation_end"] = day0 + pd.Timedelta(days=int(observation_days))
    return out
