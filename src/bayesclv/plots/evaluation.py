"""Evaluation figures: tracking, frequency PPC, P(alive) calibration, coverage, frequency/recency maps.

Each ``plot_*`` function draws on ``ax`` (or new axes) and returns the
matplotlib ``Figure``. The numbers come from :mod:`bayesclv.evaluate` and
:mod:`bayesclv.checks`; :func:`frequency_recency_grid` computes the heat-map
values itself, streaming over chunks of grid cells so that memory stays at
``draws x chunk_size`` whatever the grid size.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.data.validation import TIME_UNITS
from bayesclv.evaluate import EvaluationResult
from bayesclv.metrics import pit_coverage
from bayesclv.models.contract import TransactionModel
from bayesclv.plots.labels import duration, unit_name
from bayesclv.summaries import POINT_ESTIMATE, interval_bounds, is_point_estimate

__all__ = [
    "frequency_recency_grid",
    "plot_alive_calibration",
    "plot_coverage",
    "plot_frequency_ppc",
    "plot_frequency_recency",
    "plot_tracking",
]

SAMPLE = ("chain", "draw")
GRID_QUANTITIES = ("probability_alive", "expected_purchases")


def _axes(ax):
    if ax is None:
        ax = plt.subplots(figsize=(7, 4))[1]
    return ax.figure, ax


def _band(values: xr.DataArray, prob: float, dims) -> tuple[np.ndarray, np.ndarray]:
    """The ``prob`` interval over ``dims``, of the kind ArviZ's ``stats.ci_kind`` names (ETI unless set)."""
    lower, upper = interval_bounds(values.astype(float), prob, dims=tuple(dims))
    return lower.to_numpy(), upper.to_numpy()


def _whole_periods(tracking: xr.Dataset) -> tuple[np.ndarray, xr.DataArray, np.ndarray, str | None]:
    """Incremental purchases per whole time unit ``(k-1, k]``, for plotting.

    The tracking's periods are cut at the calibration end, so the unit holding it comes in two
    pieces (e.g. 6 days and 1 day), which are added back together here; a last period shorter
    than one unit (the observation ended mid-week) is left out, and the returned note says so:
    drawn as a full period it would dip.
    """
    start, end = tracking["start"].to_numpy(), tracking["end"].to_numpy()
    unit_end = np.ceil(end - 1e-9)
    ends, first = np.unique(unit_end, return_index=True)
    length = np.add.reduceat(end - start, first)
    keep = length > 1 - 1e-9
    pred = tracking["predicted_incremental"]
    summed = np.add.reduceat(pred.to_numpy(), first, axis=pred.dims.index("period"))
    pred = xr.DataArray(summed, dims=pred.dims).isel(period=keep)
    actual = np.add.reduceat(tracking["actual_incremental"].to_numpy(), first)[keep]
    note = None
    if not keep.all():
        unit = tracking.attrs.get("time_unit")
        dropped = float(length[~keep].sum())
        if unit in TIME_UNITS and unit != "D":  # "6 days" rather than "0.9 weeks"
            dropped, shown_unit = round(dropped * TIME_UNITS[unit], 1), "D"
        else:
            shown_unit = unit
        note = f"last {duration(dropped, shown_unit)} not shown (a partial {unit_name(unit, 1)})"
    return ends[keep], pred, actual, note


def plot_tracking(tracking: xr.Dataset, kind: str = "cumulative", prob: float = 0.9, ax=None):
    """Actual vs predicted repeat purchases of the cohort per period, with a credible band.

    Parameters
    ----------
    tracking : xarray.Dataset
        From :func:`bayesclv.evaluate.expected_tracking` (or ``evaluate(...,
        transactions=...).tracking``).
    kind : {"cumulative", "incremental"}, default "cumulative"
        Cumulative purchases at the end of each period, or purchases per whole time unit:
        the unit cut in two at the calibration end is drawn whole, and a last period shorter
        than one unit is left out (the legend says so), as a partial week drawn as a full one
        would dip.
    prob : float, default 0.9
        Mass of the equal-tailed band of the posterior of the expected count.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in ("cumulative", "incremental"):
        raise ValueError(f"kind must be 'cumulative' or 'incremental', got {kind!r}")
    fig, ax = _axes(ax)
    unit = tracking.attrs.get("time_unit")
    if kind == "incremental":
        end, pred, actual, note = _whole_periods(tracking)
    else:
        end, pred, note = tracking["end"].to_numpy(), tracking["predicted_cumulative"], None
        actual = tracking["actual_cumulative"].to_numpy()
    point = is_point_estimate(pred)
    if not point:
        lower, upper = _band(pred, prob, SAMPLE)
        ax.fill_between(end, lower, upper, alpha=0.3, label=f"{prob:.0%} credible band")
    ax.plot(end, pred.mean(SAMPLE).to_numpy(),
            label=f"predicted ({POINT_ESTIMATE})" if point else "predicted (posterior mean)")
    ax.plot(end, actual, color="black", lw=1.2, label="actual")
    ax.axvline(tracking.attrs["calibration_end_time"], color="grey", ls="--", lw=1, label="end of calibration")
    if note:
        ax.plot([], [], " ", label=note)
    ax.set_xlabel(f"{unit_name(unit)} since the cohort's first purchase")
    ax.set_ylabel("cumulative repeat purchases" if kind == "cumulative" else
                  f"repeat purchases per {unit_name(unit, 1)}")
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_frequency_ppc(ppc: xr.Dataset, prob: float = 0.9, ax=None):
    """Observed vs predicted number of customers by calibration repeat purchases (0, 1, ..., k+).

    Parameters
    ----------
    ppc : xarray.Dataset
        From :func:`bayesclv.checks.frequency_ppc`.
    prob : float, default 0.9
        Mass of the predictive band over simulated data sets.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    bins = ppc["frequency"].to_numpy()
    q = np.quantile(ppc["predicted"].to_numpy(), [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    expected = ppc["expected"].to_numpy()
    width = 0.4
    ax.bar(bins - width / 2, ppc["observed"].to_numpy(), width, label="observed", color="0.3")
    ax.bar(bins + width / 2, expected, width, label="predicted (mean)", alpha=0.7,
           yerr=np.vstack([expected - q[0], q[1] - expected]), capsize=3,
           error_kw={"label": f"{prob:.0%} predictive band"})
    labels = [str(b) for b in bins]
    labels[-1] = f"{bins[-1]}+"
    ax.set_xticks(bins, labels)
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("customers")
    ax.legend(fontsize="small")
    return fig


def plot_alive_calibration(result: EvaluationResult, ax=None):
    """Mean predicted P(active in holdout) vs observed share active, by decile.

    Parameters
    ----------
    result : EvaluationResult
        From :func:`bayesclv.evaluate`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    table = result.calibration
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    ax.plot(table["mean_predicted"], table["observed"], "o-", label="deciles")
    ax.set_xlabel(f"mean predicted P(at least one purchase in the {duration(result.horizon, result.time_unit)} "
                  "holdout)")
    ax.set_ylabel("observed share with a holdout purchase")
    ax.set_title(f"AUC {result.metrics['auc']:.3f}, Brier {result.metrics['brier']:.3f}")
    ax.legend(fontsize="small")
    return fig


def plot_coverage(result: EvaluationResult, ax=None):
    """Coverage of predictive intervals of holdout counts against their nominal level.

    Draws the randomised-PIT coverage over a grid of levels (nominal for a
    calibrated model) and, at the evaluated levels, the share of customers
    inside the inclusive whole-number intervals together with the mass those
    intervals hold (what that share should be for a calibrated model).

    Parameters
    ----------
    result : EvaluationResult
        From :func:`bayesclv.evaluate`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    grid = np.linspace(0.05, 0.95, 19)
    lo, hi = result.customers["pit_lower"], result.customers["pit_upper"]
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="nominal")
    ax.plot(grid, [pit_coverage(lo, hi, p) for p in grid], "-", label="randomised-PIT coverage")
    probs = np.array(result.prob)
    labels = [f"{100 * p:g}" for p in probs]
    ax.plot(probs, [result.metrics[f"coverage_{lb}"] for lb in labels], "o", label="inclusive interval: coverage")
    ax.plot(probs, [result.metrics[f"interval_mass_{lb}"] for lb in labels], "x",
            label="inclusive interval: predictive mass")
    ax.set_xlabel("nominal probability")
    ax.set_ylabel("share of customers covered")
    ax.legend(fontsize="small")
    return fig


def frequency_recency_grid(
    model: TransactionModel,
    quantity: str = "probability_alive",
    *,
    max_frequency: int | None = None,
    T: float | None = None,
    n_recency: int = 40,
    horizon: float | None = None,
    prob: float = 0.9,
    chunk_size: int = 500,
) -> xr.Dataset:
    """Posterior mean and credible-interval width of a prediction over a frequency x recency grid.

    Every cell is a hypothetical customer with that ``frequency`` and
    ``recency`` observed for ``T``. Cells are evaluated ``chunk_size`` at a
    time and each chunk is reduced to its mean and interval at once, so the
    largest array is ``draws x chunk_size`` (never draws x grid).

    Parameters
    ----------
    model : TransactionModel
        Fitted purchase-count model.
    quantity : {"probability_alive", "expected_purchases"}
    max_frequency : int, optional
        Largest frequency on the grid; default: the 99th percentile of the fitted data's.
    T : float, optional
        Observation length of the grid's customers; default: the fitted data's largest ``T``.
    n_recency : int, default 40
        Recency points, evenly from 0 to ``T``.
    horizon : float, optional
        Horizon of ``expected_purchases`` (model time unit); default: ``T``.
    prob : float, default 0.9
        Mass of the equal-tailed credible interval whose width is reported.
    chunk_size : int, default 500
        Grid cells evaluated at once.

    Returns
    -------
    xarray.Dataset
        ``mean`` and ``width`` with dims ``(frequency, recency)``; NaN where
        the cell is impossible (``recency > 0`` without repeat purchases, or
        ``recency == 0`` with some). ``attrs`` hold the settings and ``draws``,
        the posterior draws behind each cell (1 for a point estimate).
    """
    if quantity not in GRID_QUANTITIES:
        raise ValueError(f"quantity must be one of {GRID_QUANTITIES}, got {quantity!r}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
    data = model.prediction_data(None)
    if max_frequency is None:
        max_frequency = int(np.ceil(np.quantile(data["frequency"], 0.99)))
    T = float(data["T"].max()) if T is None else float(T)
    horizon = T if horizon is None else float(horizon)
    freq = np.arange(int(max_frequency) + 1, dtype=float)
    rec = np.linspace(0.0, T, n_recency)
    ff, rr = np.meshgrid(freq, rec, indexing="ij")
    valid = (ff == 0) == (rr == 0)  # recency is 0 exactly without repeat purchases
    cells = pd.DataFrame({"frequency": ff[valid], "recency": rr[valid], "T": T})
    cells.insert(0, "customer_id", np.arange(len(cells)))
    cells.attrs["time_unit"] = model.time_unit
    mean = np.full(len(cells), np.nan)
    width = np.full(len(cells), np.nan)
    n_draws = 0
    for start in range(0, len(cells), int(chunk_size)):
        chunk = cells.iloc[start:start + int(chunk_size)].reset_index(drop=True)
        chunk.attrs = dict(cells.attrs)
        if quantity == "probability_alive":
            draws = model.probability_alive(chunk)
        else:
            draws = model.expected_purchases(horizon, chunk)
        lower, upper = _band(draws, prob, SAMPLE)
        n_draws = draws.sizes["chain"] * draws.sizes["draw"]
        mean[start:start + len(chunk)] = draws.mean(SAMPLE).to_numpy()
        width[start:start + len(chunk)] = upper - lower
    out = {}
    for name, values in (("mean", mean), ("width", width)):
        full = np.full(ff.shape, np.nan)
        full[valid] = values
        out[name] = (("frequency", "recency"), full)
    return xr.Dataset(out, coords={"frequency": freq, "recency": rec},
                      attrs={"quantity": quantity, "T": T, "horizon": horizon, "prob": prob,
                             "time_unit": model.time_unit, "draws": int(n_draws)})


def _grid_titles(grid: xr.Dataset) -> dict[str, tuple[str, str]]:
    """Title and colour-bar label of each heat map, in words."""
    unit = grid.attrs.get("time_unit")
    if grid.attrs["quantity"] == "probability_alive":
        what, scale = "P(alive): chance the customer is still active", "probability"
    else:
        what, scale = f"expected purchases in the next {duration(grid.attrs['horizon'], unit)}", "purchases"
    width = ("no posterior uncertainty (point estimate)" if grid.attrs.get("draws", 2) == 1
             else f"width of its {grid.attrs['prob']:.0%} credible interval")
    return {"mean": (f"{what}\n(posterior mean)", scale), "width": (width, scale)}


def plot_frequency_recency(grid: xr.Dataset, axes: Any = None):
    """Two heat maps: posterior mean and credible-interval width over frequency x recency.

    Parameters
    ----------
    grid : xarray.Dataset
        From :func:`frequency_recency_grid`.
    axes : sequence of two matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    fig = axes[0].figure
    unit = grid.attrs.get("time_unit")
    extent = (0, grid.attrs["T"], grid["frequency"].values[-1] + 0.5, -0.5)
    for ax, (name, (title, scale)) in zip(axes, _grid_titles(grid).items(), strict=True):
        image = ax.imshow(grid[name].to_numpy(), aspect="auto", extent=extent, interpolation="nearest")
        fig.colorbar(image, ax=ax, label=scale)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(f"recency: {unit_name(unit)} from first to last purchase\n"
                      f"(customers observed for {duration(grid.attrs['T'], unit)})")
    axes[0].set_ylabel("frequency (repeat purchases)")
    return fig
