"""Offers and campaigns with uncertainty, computed per posterior draw.

Like :mod:`bayesclv.segment`, every function takes per-customer posterior
draws (dims ``(chain, draw, customer_id)``, e.g. a CLV), works draw by draw
and summarises last:

- :func:`incremental_value` / :func:`targeting` / :func:`cumulative_gain`:
  value of an offer with a cost and an assumed (possibly uncertain) uplift,
  ranked, with the customers worth targeting at a chosen P(positive return).
- :func:`compare_groups`: posterior difference between two customer groups
  (e.g. test and control of a campaign).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.arguments import check_prob
from bayesclv.errors import DataValidationError
from bayesclv.summaries import DIMS, SAMPLE_DIMS, UNIT_ATTRS, check_draws, intervals

__all__ = ["compare_groups", "cumulative_gain", "incremental_value", "targeting"]


def _units(values: xr.DataArray) -> dict[str, Any]:
    """The attrs that say what ``values`` are measured in (horizon, time unit, currency)."""
    return {k: values.attrs[k] for k in UNIT_ATTRS if k in values.attrs}


def _uplift_draws(uplift: Any, values: xr.DataArray, random_seed: int | None) -> Any:
    """The uplift as a number or as a DataArray over (chain, draw) (and optionally customer_id)."""
    if isinstance(uplift, xr.DataArray):
        return uplift
    if hasattr(uplift, "rvs"):  # a frozen scipy.stats distribution: one uplift per posterior draw
        sample = np.asarray(uplift.rvs(size=values.shape[:2], random_state=np.random.default_rng(random_seed)),
                            dtype=float)
        return xr.DataArray(sample, dims=SAMPLE_DIMS, coords={"chain": values["chain"], "draw": values["draw"]})
    array = np.asarray(uplift, dtype=float)
    if array.ndim == 0:
        if not np.isfinite(array):
            raise ValueError(f"uplift must be finite, got {uplift!r}")
        return float(array)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError("uplift draws must be a non-empty 1-d array of finite numbers")
    rng = np.random.default_rng(random_seed)
    n = values.shape[0] * values.shape[1]
    picked = array if array.size == n else rng.choice(array, size=n, replace=True)
    return xr.DataArray(picked.reshape(values.shape[:2]), dims=SAMPLE_DIMS,
                        coords={"chain": values["chain"], "draw": values["draw"]})


def incremental_value(
    value: xr.DataArray,
    *,
    cost: float,
    uplift: Any,
    random_seed: int | None = None,
) -> xr.DataArray:
    """Per draw, the net value of giving each customer an offer: ``uplift * value - cost``.

    Parameters
    ----------
    value : xarray.DataArray
        What the offer lifts, per draw, dims ``(chain, draw, customer_id)``:
        usually CLV (a retention or promotion offer that raises it by a
        share ``uplift``).
    cost : float
        Cost of the offer per customer (same currency as ``value``), >= 0.
    uplift : float, array of draws, scipy.stats frozen distribution or DataArray
        Relative lift of ``value`` caused by the offer (0.1 = +10%). A number
        is taken as known; an array of draws (resampled if its length is not
        chains x draws) or a distribution (one draw per posterior draw) makes
        the uplift uncertain, independently of the posterior; a DataArray
        with dims among ``(chain, draw, customer_id)`` is used as given.
    random_seed : int, optional
        Seed for drawing the uplift.

    Returns
    -------
    xarray.DataArray
        Incremental value, dims ``(chain, draw, customer_id)``; an expectation
        (its intervals are credible intervals), in the units of ``value``
        (its ``horizon``, ``time_unit`` and ``currency`` attrs are kept).
    """
    value = check_draws(value, "value")
    if not np.isfinite(cost) or cost < 0:
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
    lift = _uplift_draws(uplift, value, random_seed)
    if isinstance(lift, xr.DataArray):
        extra = set(lift.dims) - set(DIMS)
        if extra:
            raise ValueError(f"uplift dims must be among {DIMS}, got {lift.dims}")
        lift = lift.assign_coords({d: value[d].to_numpy() for d in lift.dims})
    out = (lift * value - cost).transpose(*DIMS)
    out.name = "incremental_value"
    out.attrs = {**_units(value), "quantity": "expectation", "cost": float(cost)}
    return out


def targeting(incremental: xr.DataArray, *, prob: float = 0.9, min_prob_positive: float = 0.8) -> pd.DataFrame:
    """Customers ranked by expected incremental value, with who is worth targeting.

    Parameters
    ----------
    incremental : xarray.DataArray
        Output of :func:`incremental_value`, dims ``(chain, draw, customer_id)``.
    prob : float, default 0.9
        Probability inside the credible intervals.
    min_prob_positive : float, default 0.8
        A customer is worth targeting when the posterior probability that the
        offer returns more than it costs (incremental value > 0) is at least
        this.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, sorted by ``mean`` (largest first):
        ``rank`` (1 = best), ``mean, median, lower, upper, interval`` of the
        incremental value, ``p_positive`` and ``target`` (bool).
    """
    incremental = check_draws(incremental, "incremental")
    table = intervals(incremental, prob=check_prob(prob), kind="credible")
    table["p_positive"] = (incremental > 0).mean(SAMPLE_DIMS).to_numpy()
    table["target"] = table["p_positive"] >= check_prob(min_prob_positive, "min_prob_positive")
    table = table.sort_values("mean", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def cumulative_gain(incremental: xr.DataArray, order: Sequence) -> xr.DataArray:
    """Per draw, total incremental value of targeting the first ``n`` customers of ``order``.

    Parameters
    ----------
    incremental : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)``.
    order : sequence
        Customer ids in targeting order (e.g. ``targeting(...).index``).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, n_targeted)`` with ``n_targeted = 1..len(order)``;
        the units of ``incremental`` are kept in ``attrs``.
    """
    incremental = check_draws(incremental, "incremental")
    ordered = incremental.sel(customer_id=list(order))
    gain = ordered.cumsum("customer_id").rename(customer_id="n_targeted")
    gain = gain.assign_coords(n_targeted=np.arange(1, len(order) + 1))
    gain.name = "cumulative_incremental_value"
    gain.attrs = {**_units(incremental), "quantity": "expectation"}
    return gain


def compare_groups(
    values: xr.DataArray,
    group_a: Sequence,
    group_b: Sequence,
    *,
    prob: float = 0.9,
    names: tuple[str, str] = ("a", "b"),
) -> pd.DataFrame:
    """Posterior difference of the per-customer mean of ``values`` between two groups.

    Per draw: ``mean over group a - mean over group b``. Use CLV draws to
    compare value, or ``model.expected_purchases(t) / t`` to compare purchase
    rates (e.g. the test and control groups of a campaign, each fitted or
    predicted on its own data).

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)`` covering both groups.
    group_a, group_b : sequence
        Customer ids of each group (disjoint, non-empty).
    prob : float, default 0.9
        Probability inside the credible intervals.
    names : tuple of str, default ("a", "b")
        Row labels of the two groups.

    Returns
    -------
    pandas.DataFrame
        Rows ``names[0]``, ``names[1]`` and ``"difference"`` (a - b); columns
        ``customers, mean, median, lower, upper, interval, p_positive``
        (posterior probability that the row's value is above zero).
    """
    values = check_draws(values)
    customers = pd.Index(values["customer_id"].to_numpy())
    members = []
    for label, group in zip(names, (group_a, group_b), strict=True):
        group = pd.Index(list(group))
        if group.empty:
            raise DataValidationError(f"group {label!r} is empty", column="customer_id")
        absent = ~group.isin(customers)
        if absent.any():
            raise DataValidationError(f"customers of group {label!r} not in values", column="customer_id",
                                      rows=group[absent].tolist())
        members.append(group.unique())
    both = members[0].intersection(members[1])
    if len(both):
        raise DataValidationError("customers in both groups", column="customer_id", rows=both.tolist())
    means = [values.sel(customer_id=list(m)).mean("customer_id") for m in members]
    stacked = xr.concat([means[0], means[1], means[0] - means[1]],
                        dim=xr.DataArray([*names, "difference"], dims="row", name="row"))
    stacked.name = values.name
    stacked.attrs = {"quantity": values.attrs.get("quantity", "expectation")}
    table = intervals(stacked, prob=check_prob(prob))
    table.insert(0, "customers", [len(members[0]), len(members[1]), len(members[0]) + len(members[1])])
    table["p_positive"] = (stacked > 0).mean(SAMPLE_DIMS).to_numpy()
    return table
