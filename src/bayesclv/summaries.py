"""Posterior summaries of predictions: credible and predictive intervals, per element or streamed.

A prediction keeps its ``chain, draw`` dims until it is summarised here. The
interval bounds come from ArviZ (``arviz_stats`` ETI or HDI), and an interval
is named by what it describes: *credible* for an expected value (parameter
uncertainty only), *predictive* for an outcome (also the outcome's own
randomness), read from ``values.attrs["quantity"]``.
"""

from __future__ import annotations

from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.arguments import check_interval_method, check_prob
from bayesclv.errors import DataValidationError

__all__ = ["DIMS", "INTERVAL_KINDS", "SAMPLE_DIMS", "UNIT_ATTRS", "check_draws", "thin_posterior", "interval_bounds",
           "interval_kind", "interval_label", "intervals", "summary_arrays"]

INTERVAL_KINDS = ("credible", "predictive")
SAMPLE_DIMS = ("chain", "draw")
DIMS = ("chain", "draw", "customer_id")  # of a per-customer prediction
UNIT_ATTRS = ("horizon", "time_unit", "currency")  # what the values are measured in: kept by summaries


def interval_kind(quantity: str | None) -> str:
    """``"predictive"`` for an outcome, ``"credible"`` for anything else (an expectation)."""
    return "predictive" if quantity == "outcome" else "credible"


def interval_label(prob: float, kind: str, method: str) -> str:
    """How an interval is labelled in tables, e.g. ``"90% credible (eti)"``."""
    return f"{prob:.0%} {kind} ({method})"


def interval_bounds(values: xr.DataArray, prob: float, method: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Lower and upper bounds of the ``prob`` ETI or HDI over ``chain, draw`` (``arviz_stats``)."""
    bounds = (azs.hdi if method == "hdi" else azs.eti)(values, prob=prob, dim=list(SAMPLE_DIMS))
    return bounds.sel(ci_bound="lower", drop=True), bounds.sel(ci_bound="upper", drop=True)


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
        ``"90% credible (eti)"``. ``attrs`` hold ``prob, kind, method, name``
        and the units of ``values`` (its ``horizon``, ``time_unit`` and
        ``currency`` attrs, where present), for labels.
    """
    check_prob(prob)
    check_interval_method(method)
    if kind is None:
        kind = interval_kind(values.attrs.get("quantity"))
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    missing = set(SAMPLE_DIMS) - set(values.dims)
    if missing:
        raise ValueError(f"values need dims chain and draw; missing {sorted(missing)}")
    lower, upper = interval_bounds(values.astype(float), prob, method)
    table = xr.Dataset({
        "mean": values.mean(SAMPLE_DIMS),
        "median": values.median(SAMPLE_DIMS),
        "lower": lower,
        "upper": upper,
    })
    frame = table.to_dataframe() if table["mean"].ndim else pd.DataFrame([{k: float(v) for k, v in table.items()}])
    frame["interval"] = interval_label(prob, kind, method)
    frame.attrs = {"prob": prob, "kind": kind, "method": method, "name": values.name,
                   **{k: values.attrs[k] for k in UNIT_ATTRS if k in values.attrs}}
    return frame


def thin_posterior(posterior: xr.Dataset, draws: int) -> xr.Dataset:
    """``draws`` evenly spaced draws of each chain of ``posterior`` (all of them when it has no more).

    Two posteriors thinned to the same number of draws keep their draws paired by position.
    """
    n = posterior.sizes["draw"]
    if draws >= n:
        return posterior
    return posterior.isel(draw=np.unique(np.linspace(0, n - 1, int(draws)).round().astype(int)))


def summary_arrays(values: xr.DataArray, prob: float, method: str) -> dict[str, np.ndarray]:
    """Posterior ``mean``, ``sd`` (of the draws, NaN-propagating) and interval bounds per element.

    The form :mod:`bayesclv.scale` streams block by block; ``values`` has dims
    ``(chain, draw, ...)``.
    """
    values = values.astype(float, copy=False)
    lower, upper = interval_bounds(values, prob, method)
    return {
        "mean": values.mean(SAMPLE_DIMS, skipna=False).values,
        "sd": values.std(SAMPLE_DIMS, skipna=False).values,
        "lower": lower.values,
        "upper": upper.values,
    }


def check_draws(values: Any, name: str = "values") -> xr.DataArray:
    """``values`` is a finite DataArray with dims exactly ``(chain, draw, customer_id)``."""
    if not isinstance(values, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.DataArray with dims {DIMS}, got {type(values).__name__}")
    if set(values.dims) != set(DIMS):
        raise ValueError(f"{name} must have dims {DIMS}, got {values.dims}")
    values = values.transpose(*DIMS)
    bad = ~np.isfinite(values.to_numpy()).all(axis=(0, 1))
    if bad.any():
        raise DataValidationError("has non-finite draws", column=values.name or name,
                                  rows=values["customer_id"].to_numpy()[bad].tolist())
    return values
