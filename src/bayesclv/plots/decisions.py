"""Figures for decisions: CLV distribution with bands, tiers, top customers, targeting curve.

Every function takes posterior draws (or the tables of :mod:`bayesclv.segment`),
draws on ``ax`` (a new figure when omitted) and returns the matplotlib ``Figure``. Bands and
error bars are credible intervals from :func:`bayesclv.intervals`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.summaries import intervals

__all__ = ["plot_clv_distribution", "plot_targeting_curve", "plot_tiers", "plot_top_customers"]

_BAND = "#4c72b0"
_POINT = "#1f3a64"


def _axes(ax, figsize):
    if ax is None:
        import matplotlib.pyplot as plt  # only when the caller wants a new figure

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_clv_distribution(clv: xr.DataArray, prob: float = 0.9, ax=None):
    """Customers sorted by posterior mean CLV, with the ``prob`` and 50% credible bands.

    Parameters
    ----------
    clv : xarray.DataArray
        CLV draws with dims ``(chain, draw, customer_id)``.
    prob : float, default 0.9
        Probability of the outer band.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes(ax, (7, 4))
    outer = intervals(clv, prob=prob).sort_values("mean", ascending=False)
    inner = intervals(clv, prob=0.5).loc[outer.index]
    rank = 100 * np.arange(1, len(outer) + 1) / len(outer)
    ax.fill_between(rank, outer["lower"], outer["upper"], color=_BAND, alpha=0.2, lw=0,
                    label=f"{prob:.0%} credible interval")
    ax.fill_between(rank, inner["lower"], inner["upper"], color=_BAND, alpha=0.4, lw=0,
                    label="50% credible interval")
    ax.plot(rank, outer["mean"], color=_POINT, lw=1.5, label="posterior mean")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("customers ranked by posterior mean CLV (top %)")
    ax.set_ylabel("CLV")
    ax.set_title("CLV per customer")
    ax.legend(loc="upper right", frameon=False)
    return ax.figure


def plot_tiers(tier_totals: pd.DataFrame, ax=None):
    """Total CLV of each tier (or any group) with its credible interval and customer count.

    Parameters
    ----------
    tier_totals : pandas.DataFrame
        Output of :func:`bayesclv.segment.group_totals` (``customers, mean,
        lower, upper, share_mean``), e.g. grouped by ``value_tiers(...)["tier"]``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes(ax, (6, 3.5))
    y = np.arange(len(tier_totals))
    mean = tier_totals["mean"].to_numpy()
    err = np.vstack([mean - tier_totals["lower"].to_numpy(), tier_totals["upper"].to_numpy() - mean])
    ax.barh(y, mean, xerr=err, color=_BAND, alpha=0.8, capsize=4)
    ax.set_yticks(y, [str(i) for i in tier_totals.index])
    ax.invert_yaxis()
    for yi, (_, row) in zip(y, tier_totals.iterrows(), strict=True):
        ax.annotate(f" {row['customers']:,} customers, {row['share_mean']:.0%} of CLV",
                    (row["upper"], yi), va="center", fontsize=8)
    ax.set_xlim(0, tier_totals["upper"].max() * 1.6)
    label = tier_totals["interval"].iloc[0] if "interval" in tier_totals else "interval"
    ax.set_xlabel(f"total CLV (bars: posterior mean; whiskers: {label})")
    ax.set_title("CLV by tier")
    return ax.figure


def plot_top_customers(clv: xr.DataArray, n: int = 20, prob: float = 0.9, ax=None):
    """The ``n`` customers with the highest posterior mean CLV, each with its credible interval.

    Parameters
    ----------
    clv : xarray.DataArray
        CLV draws with dims ``(chain, draw, customer_id)``.
    n : int, default 20
    prob : float, default 0.9
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes(ax, (6, 0.25 * n + 1.2))
    table = intervals(clv, prob=prob).sort_values("mean", ascending=False).head(n)
    y = np.arange(len(table))
    ax.hlines(y, table["lower"], table["upper"], color=_BAND, lw=2, label=table["interval"].iloc[0])
    ax.plot(table["mean"], y, "o", color=_POINT, ms=4, label="posterior mean")
    ax.set_yticks(y, [str(i) for i in table.index], parse_math=False)  # ids are text, "$" included
    ax.invert_yaxis()
    ax.set_xlabel("CLV")
    ax.set_ylabel("customer_id")
    ax.set_title(f"Top {len(table)} customers by CLV")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return ax.figure


def plot_targeting_curve(gain: xr.DataArray, prob: float = 0.9, ax=None):
    """Total incremental value of targeting the first n customers, with a credible band.

    Parameters
    ----------
    gain : xarray.DataArray
        Output of :func:`bayesclv.offers.cumulative_gain`, dims
        ``(chain, draw, n_targeted)``.
    prob : float, default 0.9
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The posterior-mean optimum is marked.
    """
    ax = _axes(ax, (7, 4))
    table = intervals(gain, prob=prob)
    n = table.index.to_numpy()
    ax.fill_between(n, table["lower"], table["upper"], color=_BAND, alpha=0.25, lw=0,
                    label=table["interval"].iloc[0])
    ax.plot(n, table["mean"], color=_POINT, lw=1.5, label="posterior mean")
    best = int(n[np.argmax(table["mean"].to_numpy())])
    ax.axvline(best, color="grey", ls="--", lw=1, label=f"best mean: target {best:,}")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("customers targeted (in ranked order)")
    ax.set_ylabel("total incremental value")
    ax.set_title("Targeting curve")
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    return ax.figure
