"""Posterior summaries of predictions: credible and predictive intervals, per element or streamed.

A prediction keeps its ``chain, draw`` dims until it is summarised here. The
interval bounds come from ArviZ (``arviz_stats`` ETI or HDI), and an interval
is named by what it describes: *credible* for an expected value (parameter
uncertainty only), *predictive* for an outcome (also the outcome's own
randomness), read from ``values.attrs["quantity"]``.

One interval convention for the whole library: the kind (ETI or HDI) and the
probability follow ArviZ's configuration, ``arviz_base.rcParams["stats.ci_kind"]``
and ``["stats.ci_prob"]`` (ETI and 0.89 unless set), wherever a function's
``method``/``prob`` is left as None (:func:`interval_settings`): ``intervals``,
the models' ``summary``, the ``scale`` summaries, the drivers tables and the
plots' bands.

A point estimate (a MAP fit, or any posterior of one draw: ``attrs["point_estimate"]``
or a single draw) has no posterior uncertainty: its "interval" keeps the
table's shape with lower = upper = the value, is labelled
:data:`POINT_ESTIMATE`, never credible, and a
:class:`~bayesclv.errors.PointEstimateWarning` says so (once).
"""

from __future__ import annotations

import warnings
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from bayesclv.arguments import check_interval_method, check_prob
from bayesclv.errors import DataValidationError, PointEstimateWarning

__all__ = ["DIMS", "INTERVAL_KINDS", "POINT_ESTIMATE", "SAMPLE_DIMS", "UNIT_ATTRS", "check_draws", "interval_bounds",
           "collapses", "interval_kind", "interval_label", "interval_settings", "intervals", "is_point_estimate",
           "summary_arrays", "thin_posterior", "warn_point_estimate"]

INTERVAL_KINDS = ("credible", "predictive")
SAMPLE_DIMS = ("chain", "draw")
DIMS = ("chain", "draw", "customer_id")  # of a per-customer prediction
UNIT_ATTRS = ("horizon", "time_unit", "currency")  # what the values are measured in: kept by summaries
#: How every table, plot and report names the "interval" of a point estimate.
POINT_ESTIMATE = "point estimate (no posterior uncertainty)"


def interval_settings(prob: float | None = None, method: str | None = None) -> tuple[float, str]:
    """The probability and kind of an interval: the arguments, or ArviZ's configuration where None.

    ``prob`` defaults to ``arviz_base.rcParams["stats.ci_prob"]`` and ``method``
    to ``rcParams["stats.ci_kind"]``, so that one setting, e.g.
    ``arviz_base.rcParams["stats.ci_kind"] = "hdi"`` or a ``rc_context``,
    changes every summary of the library.

    Examples
    --------
    >>> from arviz_base import rc_context
    >>> with rc_context({"stats.ci_prob": 0.9, "stats.ci_kind": "hdi"}):
    ...     interval_settings(), interval_settings(0.5)
    ((0.9, 'hdi'), (0.5, 'hdi'))
    """
    prob = rcParams["stats.ci_prob"] if prob is None else prob
    method = rcParams["stats.ci_kind"] if method is None else method
    return check_prob(prob), check_interval_method(method)


def is_point_estimate(values: Any) -> bool:
    """Whether draws (a DataArray or Dataset with ``chain, draw``) are a point estimate.

    True when their ``attrs["point_estimate"]`` says so (a MAP fit's
    predictions) or they hold a single draw.
    """
    if getattr(values, "attrs", {}).get("point_estimate"):
        return True
    sizes = getattr(values, "sizes", {})
    return all(d in sizes for d in SAMPLE_DIMS) and sizes["chain"] * sizes["draw"] == 1


def collapses(values: Any, kind: str | None = None) -> bool:
    """Whether the interval of ``values`` collapses to the value: a point estimate that is not an outcome simulated
    several times at it.

    Outcomes (``kind`` "predictive", by default read from ``attrs["quantity"]``)
    simulated many times at a point estimate keep a predictive interval: the
    outcome's own randomness, without the parameters' uncertainty.
    """
    if not is_point_estimate(values):
        return False
    kind = interval_kind(values.attrs.get("quantity")) if kind is None else kind
    sizes = values.sizes
    return kind != "predictive" or sizes["chain"] * sizes["draw"] == 1


def warn_point_estimate(stacklevel: int = 3) -> None:
    """Warn (:class:`~bayesclv.errors.PointEstimateWarning`, once) that intervals were asked of a point estimate."""
    warnings.warn(
        f"{POINT_ESTIMATE}: these values come from a MAP fit (or one draw), so their intervals have "
        "lower = upper = the value and are labelled as a point estimate, not credible. Fit with "
        "method='nuts' for credible intervals.", PointEstimateWarning, stacklevel=stacklevel)


def interval_kind(quantity: str | None) -> str:
    """``"predictive"`` for an outcome, ``"credible"`` for anything else (an expectation)."""
    return "predictive" if quantity == "outcome" else "credible"


def interval_label(prob: float, kind: str, method: str, point_estimate: bool = False,
                   point_estimate_of: str | None = None) -> str:
    """How an interval is labelled in tables, e.g. ``"90% credible (eti)"``.

    :data:`POINT_ESTIMATE` for a point estimate; values that combine a point
    estimate with a posterior (a CLV from a MAP spend model and a sampled
    purchase model, ``point_estimate_of`` the former's name) say whose
    uncertainty is missing.
    """
    if point_estimate:
        return POINT_ESTIMATE
    label = f"{prob:.0%} {kind} ({method})"
    return label + (f", without the uncertainty of {point_estimate_of} ({POINT_ESTIMATE})"
                    if point_estimate_of else "")


def interval_bounds(values: xr.DataArray, prob: float | None = None, method: str | None = None,
                    dims: tuple[str, ...] = SAMPLE_DIMS) -> tuple[xr.DataArray, xr.DataArray]:
    """Lower and upper bounds of the ``prob`` ETI or HDI over ``dims`` (``arviz_stats``; see :func:`interval_settings`)."""
    prob, method = interval_settings(prob, method)
    bounds = (azs.hdi if method == "hdi" else azs.eti)(values, prob=prob, dim=list(dims))
    return bounds.sel(ci_bound="lower", drop=True), bounds.sel(ci_bound="upper", drop=True)


def intervals(
    values: xr.DataArray,
    prob: float | None = None,
    kind: str | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """Tidy per-customer summary of a posterior: ``mean, median, lower, upper``.

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, ...)``, e.g. from ``expected_purchases``
        (an expectation) or ``sample_purchases`` (an outcome).
    prob : float, optional
        Probability inside the interval; default ArviZ's ``rcParams["stats.ci_prob"]``.
    kind : {"credible", "predictive"}, optional
        What the interval is: a *credible* interval of an expected value
        (parameter uncertainty only) or a *predictive* interval of an outcome
        (also the outcome's own randomness). Default: taken from
        ``values.attrs["quantity"]`` ("outcome" -> predictive), else credible.
    method : {"eti", "hdi"}, optional
        Equal-tailed or highest-density interval, computed by ``arviz_stats``;
        default ArviZ's ``rcParams["stats.ci_kind"]``.

    Returns
    -------
    pandas.DataFrame
        One row per element of the non-sample dims, columns ``mean, median,
        lower, upper, interval`` where ``interval`` names the kind, e.g.
        ``"90% credible (eti)"``. ``attrs`` hold ``prob, kind, method, name``
        and ``point_estimate``, and the units of ``values`` (its ``horizon``,
        ``time_unit`` and ``currency`` attrs, where present), for labels.

    Warns
    -----
    PointEstimateWarning
        ``values`` are a point estimate (a MAP fit's, or one draw): then
        ``mean = median = lower = upper`` = the value, ``interval`` reads
        ``"point estimate (no posterior uncertainty)"`` and ``attrs["kind"]``
        is ``"point estimate"``, whatever ``kind`` says. Outcomes simulated
        several times at a point estimate (``kind`` "predictive") keep their
        predictive interval, labelled "without the uncertainty of the
        parameters", and do not warn.
    """
    prob, method = interval_settings(prob, method)
    if kind is None:
        kind = interval_kind(values.attrs.get("quantity"))
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    missing = set(SAMPLE_DIMS) - set(values.dims)
    if missing:
        raise ValueError(f"values need dims chain and draw; missing {sorted(missing)}")
    point, collapsed = is_point_estimate(values), collapses(values, kind)
    mean = values.mean(SAMPLE_DIMS)
    if collapsed:
        warn_point_estimate()
        lower = upper = mean
    else:
        lower, upper = interval_bounds(values.astype(float), prob, method)
    table = xr.Dataset({"mean": mean, "median": values.median(SAMPLE_DIMS), "lower": lower, "upper": upper})
    frame = table.to_dataframe() if table["mean"].ndim else pd.DataFrame([{k: float(v) for k, v in table.items()}])
    missing = "the parameters" if point and not collapsed else values.attrs.get("point_estimate_of")
    frame["interval"] = interval_label(prob, kind, method, collapsed, missing)
    frame.attrs = {"prob": prob, "kind": "point estimate" if collapsed else kind, "method": method,
                   "name": values.name, "point_estimate": int(point),
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


def summary_arrays(values: xr.DataArray, prob: float | None = None, method: str | None = None
                   ) -> dict[str, np.ndarray]:
    """Posterior ``mean``, ``sd`` (of the draws, NaN-propagating) and interval bounds per element.

    The form :mod:`bayesclv.scale` streams block by block; ``values`` has dims
    ``(chain, draw, ...)``. A point estimate (:func:`is_point_estimate`) has
    ``lower = upper = mean`` and ``sd`` NaN (its posterior sd is unknown, not zero).
    """
    values = values.astype(float, copy=False)
    mean = values.mean(SAMPLE_DIMS, skipna=False).values
    if collapses(values):
        return {"mean": mean, "sd": np.full_like(mean, np.nan), "lower": mean, "upper": mean}
    lower, upper = interval_bounds(values, prob, method)
    return {
        "mean": mean,
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
