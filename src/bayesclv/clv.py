"""Customer lifetime value from a purchase-count model and a spend model.

CLV combines a purchase-count model and a spend model **draw by draw**: the
``k``-th posterior draw of expected purchases is multiplied by the ``k``-th
draw of expected spend, so the CLV posterior carries the uncertainty of both
(never a spend collapsed to its mean first).
"""

from __future__ import annotations

import warnings
from typing import Any

import numba
import numpy as np
import xarray as xr

import bayesclv.chunks as chunks
from bayesclv.arguments import check_clv_arguments
from bayesclv.data.validation import TIME_UNITS, check_time_unit, to_pandas
from bayesclv.errors import ArgumentError, TimeUnitError
from bayesclv.models.contract import SpendModel, TransactionModel
from bayesclv.summaries import is_point_estimate

__all__ = ["customer_lifetime_value", "pair_draws"]

_LONG_HORIZON = 1200  # periods beyond which the call says what it will cost (a century of months)


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


def customer_lifetime_value(
    transaction_model: TransactionModel,
    spend_model: SpendModel,
    data: Any | None = None,
    *,
    horizon: int,
    time_unit: str,
    discount_rate: float,
    margin: float = 1.0,
    acquisition_cost: float = 0.0,
    service_cost_per_period: float = 0.0,
    currency: str | None = None,
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
    transaction_model : TransactionModel
        Fitted purchase-count model (BG/NBD, Pareto/NBD, grouped or hierarchical).
    spend_model : SpendModel
        Fitted spend model (Gamma-Gamma; same currency as the result).
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
    currency : str, optional
        Currency of the spend model's values (e.g. "USD"); recorded in ``attrs``
        so that figures and reports can name it. Does not change the values.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``; ``attrs`` record the settings
        (``horizon``, ``time_unit``, ``discount_rate``, ..., and ``currency`` when given),
        ``point_estimate`` (1 when both models are point estimates) and, when
        one of them is, ``point_estimate_of`` (its display name: the intervals
        then hold the other model's uncertainty only).

    Raises
    ------
    bayesclv.errors.ArgumentError
        A setting of the wrong type, not finite or out of its range (the rules of
        :func:`bayesclv.arguments.check_clv_arguments`), an unknown ``time_unit``, or one
        joint spend model given as both models (its own ``customer_lifetime_value`` keeps
        the purchases' and the spend's covariance).
    bayesclv.errors.TimeUnitError
        The purchase model has no calendar time (the BG/BB counts transaction
        opportunities): value its customers per opportunity instead (see the message).
    """
    check_time_unit(time_unit)
    if currency is not None and not isinstance(currency, str):
        raise ArgumentError(f"must be a string such as 'USD', got {type(currency).__name__}", argument="currency")
    horizon, discount_rate, margin, acquisition_cost, service_cost_per_period = check_clv_arguments(
        horizon=horizon, discount_rate=discount_rate, margin=margin, acquisition_cost=acquisition_cost,
        service_cost_per_period=service_cost_per_period)
    if transaction_model is spend_model:  # a joint spend model: purchases and spend correlated per customer
        raise ArgumentError(
            f"the {transaction_model.display_name} model gives both purchases and spend, and they are correlated "
            "within a customer: this function multiplies their two expectations and would drop that covariance. "
            "Use the model's own model.customer_lifetime_value(horizon, discount_rate, margin=...)",
            argument="spend_model")
    transaction_model.check_fitted()
    spend_model.check_fitted()
    data = transaction_model.prediction_data(None if data is None else to_pandas(data))
    if transaction_model.time_unit not in TIME_UNITS:
        raise TimeUnitError(
            f"customer_lifetime_value counts periods of calendar time (time_unit={time_unit!r}), but the "
            f"{transaction_model.display_name} model counts {transaction_model.time_unit!r}s, which have no calendar "
            "length: its CLV's period is one opportunity. Value its customers with "
            "model.discounted_expected_purchases(ends, factors) (ends = 1, 2, ..., H opportunities, factors = "
            "(1 + d) ** -ends) times the value of a transaction", column="T")
    if horizon > _LONG_HORIZON:
        warnings.warn(
            f"customer_lifetime_value: {horizon:,} periods of {time_unit!r}; the cost grows with the number of "
            "periods (in proportion for the BG/NBD, Pareto/NBD, GGom/NBD and (M)BG/CNBD-k families, "
            f"{horizon / 12:,.0f}x that of 12), which can take minutes for many customers and draws. A longer "
            "period (e.g. time_unit='Y' with the annual discount rate) needs fewer.",
            UserWarning, stacklevel=2)
    period = TIME_UNITS[time_unit] / TIME_UNITS[transaction_model.time_unit]
    ends = period * np.arange(1, int(horizon) + 1)
    factors = (1.0 + discount_rate) ** -np.arange(1.0, int(horizon) + 1)
    # each model's part depends on a customer's history only: once per distinct history of each
    histories, codes = transaction_model.distinct_histories(data)
    purchases = transaction_model.discounted_expected_purchases(ends, factors, histories)
    service = (transaction_model.discounted_probability_alive(ends - period, factors, histories)
               if service_cost_per_period else None)
    spend_histories, spend_codes = spend_model.distinct_histories(spend_model.prediction_data(data))
    spend = spend_model.expected_spend(spend_histories)
    points = [model.display_name for model, part in ((transaction_model, purchases), (spend_model, spend))
              if is_point_estimate(part)]
    purchases, spend = pair_draws(purchases.transpose("chain", "draw", "customer_id"), spend)
    sampled = purchases if "chain" in purchases.dims else spend
    shape = (sampled.sizes["chain"], sampled.sizes["draw"], len(data))

    def draws_by_rows(da):  # (draws, rows), one draw for a point estimate
        return np.ascontiguousarray(da.values.reshape(-1, da.shape[-1]))

    purchase_rows, spend_rows = draws_by_rows(purchases), draws_by_rows(spend)
    service_rows = draws_by_rows(service.transpose(*purchases.dims)) if service is not None else purchase_rows
    out = np.empty((shape[0] * shape[1], shape[2]))
    codes, spend_codes = np.asarray(codes, dtype=np.int64), np.asarray(spend_codes, dtype=np.int64)
    costs = float(margin), float(acquisition_cost), float(service_cost_per_period)
    chunks.map_chunks(lambda start: _combine_values(out, purchase_rows, service_rows, codes, spend_rows, spend_codes,
                                                    *costs, start,
                                                    min(start + chunks.PASS_DRAWS, len(out))),
                      len(out), chunks.PASS_DRAWS)
    clv = xr.DataArray(out.reshape(shape), dims=("chain", "draw", "customer_id"),
                       coords={"chain": sampled["chain"].values, "draw": sampled["draw"].values,
                               "customer_id": data["customer_id"].to_numpy()})
    clv.name = "clv"
    clv.attrs = {"quantity": "expectation", "horizon": int(horizon), "time_unit": time_unit,
                 "discount_rate": discount_rate, "margin": margin,
                 "acquisition_cost": acquisition_cost, "service_cost_per_period": service_cost_per_period,
                 "point_estimate": int(len(points) == 2)}
    if len(points) == 1:  # its intervals hold the other model's uncertainty only
        clv.attrs["point_estimate_of"] = points[0]
    if currency:
        clv.attrs["currency"] = currency
    return clv
