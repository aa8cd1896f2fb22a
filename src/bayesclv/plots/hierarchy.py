"""Figures of the hierarchical models: the key-driver forest plot."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_key_drivers"]

# what an effect is additive on, in words (key_drivers' ``latent`` column)
LATENT_WORDS = {"log_lambda": "log purchase rate", "log_mu": "log dropout rate",
                "logit_p": "log-odds of dropping out after a purchase"}


def plot_key_drivers(table: pd.DataFrame, *, axes=None):
    """Forest plot of covariate effects: posterior mean and HDI per covariate, one panel per process.

    Each panel's right-hand axis gives P(effect > 0) of each covariate; long covariate
    names are wrapped, and the layout keeps every label inside the figure.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`bayesclv.drivers.key_drivers`.
    axes : sequence of matplotlib Axes, optional
        One per process (``purchase``, ``dropout``); created when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    required = {"mean", "lower", "upper", "p_positive"}
    if not required <= set(table.columns) or list(table.index.names) != ["covariate", "process"]:
        raise ValueError("table must be the output of bayesclv.drivers.key_drivers")
    processes = list(dict.fromkeys(table.index.get_level_values("process")))
    covariates = list(dict.fromkeys(table.index.get_level_values("covariate")))
    if axes is None:
        _, axes = plt.subplots(1, len(processes), figsize=(5.2 * len(processes), 0.6 * len(covariates) + 1.8),
                               sharey=True, squeeze=False, layout="constrained")
        axes = axes[0]
    fig = axes[0].figure
    y = np.arange(len(covariates))[::-1]
    interval = table.attrs.get("interval", "interval")
    per = "1 sd" if table.attrs.get("per", "sd") == "sd" else "one unit"
    for ax, process in zip(axes, processes, strict=True):
        rows = table.xs(process, level="process").loc[covariates]
        ax.hlines(y, rows["lower"], rows["upper"], color="C0", lw=2)
        ax.plot(rows["mean"], y, "o", color="C0")
        ax.axvline(0.0, color="grey", ls="--", lw=1)
        ax.set_ylim(-0.6, len(covariates) - 0.4)
        right = ax.secondary_yaxis("right")
        right.set_yticks(y, [f"P(>0) = {p:.2f}" for p in rows["p_positive"]], fontsize=8)
        latent = rows["latent"].iloc[0] if "latent" in rows else process
        ax.set_title(f"{process} ({LATENT_WORDS.get(latent, latent)})", fontsize="medium")
        ax.set_xlabel(f"effect of {per} more ({interval})")
    axes[0].set_yticks(y, [textwrap.fill(str(c), 24) for c in covariates])
    if not fig.get_layout_engine():
        fig.tight_layout()
    return fig
