"""Figures of the hierarchical models: the key-driver forest plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_key_drivers"]


def plot_key_drivers(table: pd.DataFrame, *, axes=None):
    """Forest plot of covariate effects: posterior mean and HDI per covariate, one panel per process.

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
        fig, axes = plt.subplots(1, len(processes), figsize=(4.5 * len(processes), 0.6 * len(covariates) + 1.5),
                                 sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    y = np.arange(len(covariates))[::-1]
    interval = table.attrs.get("interval", "interval")
    per = table.attrs.get("per", "sd")
    for ax, process in zip(axes, processes, strict=True):
        rows = table.xs(process, level="process").loc[covariates]
        ax.hlines(y, rows["lower"], rows["upper"], color="C0", lw=2)
        ax.plot(rows["mean"], y, "o", color="C0")
        ax.axvline(0.0, color="grey", ls="--", lw=1)
        for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
            ax.annotate(f"P(>0)={row['p_positive']:.2f}", (row["upper"], yi), xytext=(4, 4),
                        textcoords="offset points", fontsize=8)
        latent = rows["latent"].iloc[0] if "latent" in rows else process
        ax.set_title(f"{process} ({latent})")
        ax.set_xlabel(f"effect per {'1 sd' if per == 'sd' else 'unit'} ({interval})")
    axes[0].set_yticks(y, covariates)
    fig.tight_layout()
    return fig
