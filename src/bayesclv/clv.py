"""Customer lifetime value and interval summaries.

CLV combines a purchase-count model and a spend model **draw by draw**: the
``k``-th posterior draw of expected purchases is multiplied by the ``k``-th
draw of expected spend, so the CLV posterior carries the uncertainty of both
(never a spend collapsed to its mean first).
"""

from __future__ import annotations

from typing import Any

import arviz_stats as azs
import numba
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv._arguments import check_clv_arguments
from bayesclv.data import TIME_UNITS
from bayesclv.data.validation import check_time_unit, to_pandas
from bayesclv.models.base import map_chunks
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.transaction import TransactionModel

__all__ = ["customer_lifetime_value", "intervals", "pair_draws"]

INTERVAL_KINDS = ("credible", "predictive")


def pair_draws(first, second):
    """Line up the ``(chain, draw)`` dims of two posteriors so they combine draw by draw.

    A single-draw posterior (a MAP fit) broadcasts against any other. Two
    sampled posteriors must have the same numbers of chains and draws; the
    draws of independently fitted models are paired by position, which is a
    valid joint sample because the two posteriors are independent.

    Parameters
    ----------
    first, second : xarray.DataArray or xarray.Dataset
        Posterior quantities with dims ``chain, draw``.

    Returns
    -------
    tuple
        Both, ready for elementwise arithmetic.

    Raises
    ------
    ValueError
        If the numbers of chains or draws differ and neither is a point estimate.
    """
    def is_point(da):
        return da.sizes["chain"] * da.sizes["draw"] == 1

    if is_point(first) and not is_point(second):
        first = first.isel(chain=0, draw=0, drop=True)
    elif is_point(second) and not is_point(first):
        second = second.isel(chain=0, draw=0, drop=True)
    elif (first.sizes["chain"], first.sizes["draw"]) != (second.sizes["chain"], second.sizes["draw"]):
        raise ValueError(
            f"cannot pair posterior draws: {first.sizes['chain']}x{first.sizes['draw']} vs "
            f"{second.sizes['chain']}x{second.sizes['draw']} (chains x draws); fit both models "
            "with the same chains and draws"
        )
    else:
        second = second.assign_coords(chain=first["chain"].values, draw=first["draw"].values)
    return first, second


_CLV_CHUNK_DRAWS = 100  # draws per thread's pass when combining flows with spend


@numba.njit(cache=True, nogil=True)
def _combine_values(out, purchases, service, codes, spend, spend_codes, margin, acquisition_cost,
                    service_cost, start, stop):  # pragma: no cover - compiled
    """``out[d, i] = margin spend purchases - acquisition_cost - service_cost service`` for draws
    ``start..stop-1``, reading each customer's history (``codes``) and spend history (``spend_codes``).

    ``purchases``/``service`` are ``(draws, histories)``, ``spend`` ``(draws, spend histories)``;
    either may have one draw (a point estimate), which then pairs with every draw of the other.
    A draw's rows are read once for all customers (they stay in cache), so chunks run over draws.
    """
    for d in range(start, stop):
        dp = d if purchases.shape[0] > 1 else 0
        ds = d if spend.shape[0] > 1 else 0
        for i in range(out.shape[1]):
            value = margin * spend[ds, spend_codes[i]] * purchases[dp, codes[i]] - acquisition_cost
            if service_cost != 0.0:
                value -= service_cost * service[dp, codes[i]]
            out[d, i] = value


def _discounted_flows(transaction_model, histories, *, horizon, period, discount_rate,
                      service_cost_per_period) -> xr.Dataset:
    """Discounted expected purchases and alive-periods for each distinct history.

    Given alive at the end of observation the future depends on a history
    through ``(frequency, T)`` only (see :meth:`TransactionModel.expected_purchases`),
    so the whole discounted sum given alive is evaluated once per distinct
    ``(frequency, T)``, inside the model's chunks (no draws x histories array
    per period), and multiplied by P(alive) per history.
    """
    ends = period * np.arange(1, horizon + 1)
    factors = (1.0 + discount_rate) ** -np.arange(1.0, horizon + 1)
    formulas = transaction_model.formulas

    def alive_weight(given_alive, frequency, recency, T, params):
        # pooled models ask for the given-alive value and weight it per history themselves
        return 1.0 if given_alive else formulas.probability_alive(frequency, recency, T, **params)

    def purchases(_, frequency, recency, T, given_alive, **params):
        total = formulas.discounted_expected_purchases(ends, factors, frequency, recency, T, **params,
                                                       given_alive=True)
        return total * alive_weight(given_alive, frequency, recency, T, params)

    def service(_, frequency, recency, T, given_alive, **params):
        total = sum(factor * formulas.probability_alive_at(end - period, frequency, recency, T, **params,
                                                           given_alive=True)
                    for end, factor in zip(ends, factors, strict=True))
        return total * alive_weight(given_alive, frequency, recency, T, params)

    flows = {"purchases": transaction_model._alive_weighted(purchases, histories, "purchases", None, False)}
    if service_cost_per_period:
        flows["service"] = transaction_model._alive_weighted(service, histories, "service", None, False)
    return xr.Dataset(flows)


def customer_lifetime_value(
    transaction_model: TransactionModel,
    spend_model: GammaGammaModel,
    data: Any | None = None,
    *,
    horizon: int,
    time_unit: str,
    discount_rate: float,
    margin: float = 1.0,
    acquisition_cost: float = 0.0,
    service_cost_per_period: float = 0.0,
) -> xr.DataArray:
    """Posterior of each customer's discounted lifetime value over a finite horizon.

    For periods ``k = 1..horizon`` of length one ``time_unit``::

        CLV = sum_k [ margin * spend * (E[X(t_k)] - E[X(t_{k-1})])
                      - service_cost_per_period * P(alive at t_{k-1}) ] / (1 + discount_rate)^k
              - acquisition_cost

    with ``t_k`` the end of period ``k`` after the end of observation, ``E[X(t)]``
    the expected purchases and ``spend`` the expected value per purchase, all
    per posterior draw. Cash flows are discounted at the end of their period.

    Parameters
    ----------
    transaction_model : BetaGeoModel or ParetoNBDModel
        Fitted purchase-count model.
    spend_model : GammaGammaModel
        Fitted spend model (same currency as the result).
    data : DataFrame, optional
        RFM frame with ``monetary_value``; default: the transaction model's data.
    horizon : int
        Number of periods, each one ``time_unit`` long (a whole number >= 1).
    time_unit : {"D", "W", "M", "Y"}
        Length of one period (days, weeks, months = 365.25/12 days, years).
        Independent of the unit the models were fitted in.
    discount_rate : float
        Discount rate **per period** as a fraction, in ``(-1, 1]`` (e.g. 0.01 per
        month; use ``(1 + annual) ** (1/12) - 1`` to convert an annual rate). Above
        1 (100% per period) it is refused as a percentage typed as a number.
    margin : float, default 1.0
        Share of revenue kept as profit, in ``[0, 1]`` (a markup ``k`` on cost is
        the margin ``k / (1 + k)``).
    acquisition_cost : float, default 0
        Subtracted once; finite and >= 0.
    service_cost_per_period : float, default 0
        Cost per period of serving a customer who is still alive; finite and >= 0.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``; ``attrs`` record the settings.

    Raises
    ------
    bayesclv.errors.ArgumentError
        A setting of the wrong type, not finite or out of its range (the rules of
        :func:`bayesclv._arguments.check_clv_arguments`), or an unknown ``time_unit``.
    """
    check_time_unit(time_unit)
    horizon, discount_rate, margin, acquisition_cost, service_cost_per_period = check_clv_arguments(
        horizon=horizon, discount_rate=discount_rate, margin=margin, acquisition_cost=acquisition_cost,
        service_cost_per_period=service_cost_per_period)
    transaction_model._check_fitted()
    spend_model._check_fitted()
    data = transaction_model._data_for_prediction(None if data is None else to_pandas(data))
    period = TIME_UNITS[time_unit] / TIME_UNITS[transaction_model.time_unit]
    # the transaction model's part depends on a customer's history only: once per distinct history
    histories, codes = transaction_model._distinct_histories(data)
    histories.attrs = {"time_unit": transaction_model.time_unit}
    flows = _discounted_flows(transaction_model, histories, horizon=int(horizon), period=period,
                              discount_rate=discount_rate, service_cost_per_period=service_cost_per_period)
    spend, spend_codes = spend_model._spend_by_history(data)
    spend = xr.DataArray(spend, dims=("chain", "draw", "spend_history"),
                         coords={d: spend_model.posterior[d].values for d in ("chain", "draw")})
    purchases, spend = pair_draws(flows["purchases"].transpose("chain", "draw", "customer_id"), spend)
    sampled = purchases if "chain" in purchases.dims else spend
    shape = (sampled.sizes["chain"], sampled.sizes["draw"], len(data))

    def draws_by_rows(da):  # (draws, rows), one draw for a point estimate
        return np.ascontiguousarray(da.values.reshape(-1, da.shape[-1]))

    purchase_rows, spend_rows = draws_by_rows(purchases), draws_by_rows(spend)
    service_rows = draws_by_rows(flows["service"].transpose(*purchases.dims)) if service_cost_per_period \
        else purchase_rows
    out = np.empty((shape[0] * shape[1], shape[2]))
    codes, spend_codes = np.asarray(codes, dtype=np.int64), np.asarray(spend_codes, dtype=np.int64)
    map_chunks(lambda start: _combine_values(out, purchase_rows, service_rows, codes, spend_rows, spend_codes,
                                             float(margin), float(acquisition_cost),
                                             float(service_cost_per_period), start,
                                             min(start + _CLV_CHUNK_DRAWS, len(out))),
               len(out), _CLV_CHUNK_DRAWS)
    clv = xr.DataArray(out.reshape(shape), dims=("chain", "draw", "customer_id"),
                       coords={"chain": sampled["chain"].values, "draw": sampled["draw"].values,
                               "customer_id": data["customer_id"].to_numpy()})
    clv.name = "clv"
    clv.attrs = {"quantity": "expectation", "horizon": int(horizon), "time_unit": time_unit,
                 "discount_rate": discount_rate, "margin": margin,
                 "acquisition_cost": acquisition_cost, "service_cost_per_period": service_cost_per_period}
    return clv


def intervals(
    values: xr.DataArray,
    prob: float = 0.9,
    kind: str | None = None,
    method: str = "eti",
) -> pd.DataFrame:
    """Tidy per-customer summary of a posterior: ``mean, median, lower, upper``.

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, ...)``, e.g. from ``expected_purchases``
        (an expectation) or ``sample_purchases`` (an outcome).
    prob : float, default 0.9
        Probability inside the interval.
    kind : {"credible", "predictive"}, optional
        What the interval is: a *credible* interval of an expected value
        (parameter uncertainty only) or a *predictive* interval of an outcome
        (also the outcome's own randomness). Default: taken from
        ``values.attrs["quantity"]`` ("outcome" -> predictive), else credible.
    method : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density interval, computed by ``arviz_stats``.

    Returns
    -------
    pandas.DataFrame
        One row per element of the non-sample dims, columns ``mean, median,
        lower, upper, interval`` where ``interval`` names the kind, e.g.
        ``"90% credible (eti)"``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    if method not in ("eti", "hdi"):
        raise ValueError(f"method must be 'eti' or 'hdi', got {method!r}")
    if kind is None:
        kind = "predictive" if values.attrs.get("quantity") == "outcome" else "credible"
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    missing = {"chain", "draw"} - set(values.dims)
    if missing:
        raise ValueError(f"values need dims chain and draw; missing {sorted(missing)}")
    sample = ("chain", "draw")
    bounds = (azs.hdi if method == "hdi" else azs.eti)(values.astype(float), prob=prob, dim=list(sample))
    table = xr.Dataset({
        "mean": values.mean(sample),
        "median": values.median(sample),
        "lower": bounds.sel(ci_bound="lower", drop=True),
        "upper": bounds.sel(ci_bound="upper", drop=True),
    })
    frame = table.to_dataframe() if table["mean"].ndim else pd.DataFrame([{k: float(v) for k, v in table.items()}])
    frame["interval"] = f"{prob:.0%} {kind} ({method})"
    frame.attrs = {"prob": prob, "kind": kind, "method": method, "name": values.name}
    return frame
