"""Retention figures: a cohort's survival curve with its credible band (contractual models)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from bayesclv.models.contract import RetentionModel
from bayesclv.plots.labels import UNIT_NAMES, is_point_estimate, unit_name
from bayesclv.summaries import interval_bounds

__all__ = ["plot_survival"]


def plot_survival(model: RetentionModel, t: Any, *, actual: Any = None, calibration_end: float | None = None,
                  prob: float = 0.9, ax=None):
    """Share of a cohort still subscribed after ``t`` periods: posterior mean and credible band, per group.

    Parameters
    ----------
    model : RetentionModel
        A fitted contractual model (:class:`~bayesclv.ShiftedBetaGeoModel`),
        grouped or not; its :meth:`population_survival` is drawn.
    t : array_like of int
        Periods since acquisition (0 included gives the cohort's start at 1).
    actual : array_like or dict, optional
        Observed shares still subscribed at ``t``: an array (ungrouped model),
        or a dict from group label to array.
    calibration_end : float, optional
        Period up to which the model was fitted, drawn as a dashed line
        (what lies after it is a projection).
    prob : float, default 0.9
        Mass of the equal-tailed credible band. A MAP fit has no band: its
        curve is labelled a point estimate.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(model, RetentionModel):
        raise TypeError(f"plot_survival needs a retention model, got {type(model).__name__}")
    if ax is None:
        ax = plt.subplots(figsize=(7, 4))[1]
    horizons = np.atleast_1d(np.asarray(t, dtype=float))
    curves = model.population_survival(horizons)
    groups = curves["group"].values.tolist() if "group" in curves.dims else [None]
    for label in groups:
        curve = curves if label is None else curves.sel(group=label)
        name = "" if label is None else f"{label}: "
        point = is_point_estimate(curve)
        line = ax.plot(horizons, curve.mean(("chain", "draw")).to_numpy(),
                       label=f"{name}{'point estimate (MAP)' if point else 'posterior mean'}")[0]
        if not point:
            lower, upper = interval_bounds(curve, prob, "eti")
            ax.fill_between(horizons, lower.to_numpy(), upper.to_numpy(), color=line.get_color(), alpha=0.25,
                            label=f"{name}{prob:.0%} credible band")
        observed = actual if label is None or actual is None else actual.get(label)
        if observed is not None:
            ax.plot(horizons, np.asarray(observed, dtype=float), "o", color=line.get_color(), ms=4,
                    label=f"{name}actual")
    if calibration_end is not None:
        ax.axvline(calibration_end, color="grey", ls="--", lw=1, label="end of calibration")
    unit = unit_name(model.time_unit) if model.time_unit in UNIT_NAMES else "periods"
    ax.set_xlabel(f"{unit} since acquisition")
    ax.set_ylabel("share of customers still subscribed")
    ax.set_ylim(0.0, 1.02)
    ax.legend(loc="best", fontsize="small")
    return ax.figure
