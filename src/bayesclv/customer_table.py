"""One call, one row per customer: P(alive), expected purchases, DERT, spend and CLV with their intervals.

The table CLVTools' ``predict()`` gives, built only from the model contract
(:mod:`bayesclv.models.contract`) and :func:`bayesclv.customer_lifetime_value`,
each quantity summarised by :func:`bayesclv.intervals` so that its interval is
named the way every other summary names it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import xarray as xr

from bayesclv.arguments import check_clv_arguments
from bayesclv.clv import customer_lifetime_value
from bayesclv.data.validation import TIME_UNITS, check_time_unit, to_pandas
from bayesclv.errors import ArgumentError
from bayesclv.models.contract import SpendModel, TransactionModel
from bayesclv.summaries import intervals

__all__ = ["DERT_METHOD", "SUMMARY_COLUMNS", "predict"]

#: The contract method a purchase model offers when it can give DERT (its first argument the
#: continuous discount rate per model time unit, its second the data).
DERT_METHOD = "discounted_expected_residual_transactions"
#: Columns of each quantity in the table, after the quantity's name and an underscore.
SUMMARY_COLUMNS = ("mean", "lower", "upper")


def predict(
    transaction_model: TransactionModel,
    data: Any | None = None,
    spend_model: SpendModel | None = None,
    *,
    horizon: int,
    time_unit: str | None = None,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    currency: str | None = None,
    prob: float | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """Per-customer predictions in one table, each with its posterior mean and interval bounds.

    Columns, one group ``<quantity>_mean``, ``<quantity>_lower``, ``<quantity>_upper``
    per quantity, after the customer's history (the purchase model's ``data_columns``,
    and ``monetary_value`` with a spend model):

    - ``p_alive``: P(alive at the end of observation).
    - ``expected_purchases``: expected purchases in the next ``horizon`` periods.
    - ``dert``: discounted expected residual transactions (all future purchases,
      discounted continuously at the rate equivalent to ``discount_rate``); only when
      the purchase model offers :data:`DERT_METHOD` and ``discount_rate > 0``.
    - ``spend``: expected value per purchase (with ``spend_model``).
    - ``clv``: discounted value over ``horizon`` periods,
      :func:`bayesclv.customer_lifetime_value` (with ``spend_model``).

    Parameters
    ----------
    transaction_model : TransactionModel
        Fitted purchase-count model.
    data : DataFrame, optional
        RFM frame in the model's time unit (with ``monetary_value`` for spend and
        CLV); default: the purchase model's fitted data.
    spend_model : SpendModel, optional
        Fitted spend model (Gamma-Gamma); without it the table has no spend or CLV.
    horizon : int
        Number of periods of ``time_unit`` ahead (a whole number >= 1).
    time_unit : {"D", "W", "M", "Y"}, optional
        Length of a period; default: the purchase model's time unit.
    discount_rate : float, default 0
        Discount rate per period, as in :func:`bayesclv.customer_lifetime_value`.
    margin : float, default 1.0
        Share of revenue kept as profit (CLV only).
    currency : str, optional
        Currency of the spend model's values, kept in ``attrs``.
    prob : float, optional
        Probability inside each interval (default: that of :func:`bayesclv.intervals`).
    method : {"eti", "hdi"}, optional
        Interval method (default: that of :func:`bayesclv.intervals`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` in the order of ``data``. ``attrs`` hold
        ``horizon``, ``time_unit``, ``discount_rate``, ``currency`` (when given) and
        ``intervals``: each quantity's interval label, e.g. ``"90% credible (eti)"``.

    Raises
    ------
    bayesclv.errors.ArgumentError
        A setting out of its range (before any work).
    bayesclv.errors.DataValidationError
        Invalid data, naming the column and rows.
    """
    time_unit = transaction_model.time_unit if time_unit is None else time_unit
    check_time_unit(time_unit)
    horizon, discount_rate, margin, _, _ = check_clv_arguments(
        horizon=horizon, discount_rate=discount_rate, margin=margin, acquisition_cost=0.0,
        service_cost_per_period=0.0)
    if spend_model is None and currency is not None:
        raise ArgumentError("a currency needs a spend model (it names the spend's values)", argument="currency")
    summary = {k: v for k, v in (("prob", prob), ("method", method)) if v is not None}
    transaction_model.check_fitted()
    data = transaction_model.prediction_data(None if data is None else to_pandas(data))
    # one period of time_unit in the model's time unit
    period = TIME_UNITS[time_unit] / TIME_UNITS[transaction_model.time_unit]
    both = transaction_model.customer_predictions(horizon * period, data)  # one pass where the model has one
    quantities: dict[str, xr.DataArray] = {"p_alive": both["probability_alive"],
                                           "expected_purchases": both["expected_purchases"]}
    if discount_rate > 0 and hasattr(transaction_model, DERT_METHOD):
        # the continuous rate that discounts one period as (1 + discount_rate)^-1, per model time unit
        delta = math.log1p(discount_rate) / period
        quantities["dert"] = getattr(transaction_model, DERT_METHOD)(delta, data)
    history = list(transaction_model.data_columns)
    if spend_model is not None:
        spend_model.check_fitted()
        quantities["spend"] = spend_model.expected_spend(spend_model.prediction_data(data))
        quantities["clv"] = customer_lifetime_value(
            transaction_model, spend_model, data, horizon=horizon, time_unit=time_unit,
            discount_rate=discount_rate, margin=margin, currency=currency)
        history.append("monetary_value")
    table = data.set_index("customer_id")[history]
    labels = {}
    for name, values in quantities.items():
        summarised = intervals(values, **summary)
        labels[name] = str(summarised["interval"].iloc[0])
        columns = summarised.loc[table.index, list(SUMMARY_COLUMNS)]
        table = table.join(columns.rename(columns=lambda c, n=name: f"{n}_{c}"))
    table.attrs = {"horizon": horizon, "time_unit": time_unit, "discount_rate": discount_rate,
                   "intervals": labels, **({"currency": currency} if currency else {})}
    return table
