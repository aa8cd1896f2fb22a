"""Retention figures: a cohort's survival curve with its credible band (contractual models)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from bayesclv.models.contract import RetentionModel
from bayesclv.summaries import interval_bounds

__all__ = ["plot_survival"]

#: The unit of a retention table's period, in words, for axis labels.
PERIOD_WORDS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


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
        Mass of the equal-tailed credible band. A MAP fit has no band.
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
        line = ax.plot(horizons, curve.mean(("chain", "draw")).to_numpy(), label=f"{name}posterior mean")[0]
        if curve.sizes["chain"] * curve.sizes["draw"] > 1:
            lower, upper = interval_bounds(curve, prob, "eti")
            ax.fill_between(horizons, lower.to_numpy(), upper.to_numpy(), color=line.get_color(), alpha=0.25,
                            label=f"{name}{prob:.0%} credible band")
        observed = actual if label is None or actual is None else actual.get(label)
        if observed is not None:
            ax.plot(horizons, np.asarray(observed, dtype=float), "o", color=line.get_color(), ms=4,
                    label=f"{name}actual")
    if calibration_end is not None:
        ax.axvline(calibration_end, color="grey", ls="--", lw=1, label="end of calibration")
    ax.set_xlabel(PERIOD_WORDS.get(model.time_unit, "periods"))
    ax.set_ylabel("share of customers still subscribed")
    ax.set_ylim(0.0, 1.02)
    ax.legend(loc="best", fontsize="small")
    return ax.figure
