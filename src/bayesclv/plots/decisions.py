"""Figures for decisions: CLV distribution with bands, tiers, top customers, targeting curve.

Every function takes posterior draws (or the tables of :mod:`bayesclv.segment`),
draws on ``ax`` (a new figure when omitted) and returns the matplotlib ``Figure``. Bands and
error bars are credible intervals from :func:`bayesclv.intervals`.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.plots.labels import value_label
from bayesclv.summaries import POINT_ESTIMATE, intervals, is_point_estimate

__all__ = ["plot_clv_distribution", "plot_targeting_curve", "plot_tiers", "plot_top_customers"]

_BAND = "#4c72b0"
_POINT = "#1f3a64"


def _axes(ax, figsize):
    if ax is None:
        import matplotlib.pyplot as plt  # only when the caller wants a new figure

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _thousands(ax, axis: str = "x") -> None:
    """Tick labels with thousands separators (1,000,000 rather than 1e6 or 1000000)."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _interval_words(label: str) -> str:
    """``"90% credible (eti)"`` -> ``"90% credible interval"`` (an HDI keeps its name)."""
    words = label.replace(" (eti)", "").replace(" (hdi)", "")
    return f"{words} interval" + (" (HDI)" if label.endswith("(hdi)") else "")




def plot_clv_distribution(clv: xr.DataArray, prob: float = 0.9, ax=None):
    """Customers ranked by posterior mean CLV, with the ``prob`` and 50% credible bands.

    Two panels: each customer's CLV on a symmetric log scale (whose decades hide a band of a
    few per cent) and, beneath it, the same bands as a percentage of the customer's posterior
    mean, where their width can be read. The axis labels take the horizon and the currency
    from ``clv.attrs``. A point estimate (one draw: a MAP fit) is drawn as a line, labelled so,
    without bands.

    Parameters
    ----------
    clv : xarray.DataArray
        CLV draws with dims ``(chain, draw, customer_id)``.
    prob : float, default 0.9
        Probability of the outer band.
    ax : matplotlib.axes.Axes or a pair of them, optional
        Two Axes: both panels; one: the first panel only; default: a new figure with both.

    Returns
    -------
    matplotlib.figure.Figure
    """
    axes = _panels(ax)
    main = axes[0]
    point = is_point_estimate(clv)
    outer = intervals(clv, prob=prob).sort_values("mean", ascending=False)
    bands = [] if point else [(outer, f"{prob:.0%} credible interval", 0.3),
                              (intervals(clv, prob=0.5).loc[outer.index], "50% credible interval", 0.6)]
    rank = 100 * np.arange(1, len(outer) + 1) / len(outer)
    for table, label, alpha in bands:
        main.fill_between(rank, table["lower"], table["upper"], color=_BAND, alpha=alpha, lw=0, label=label)
    main.plot(rank, outer["mean"], color=_POINT, lw=1.2, label=POINT_ESTIMATE if point else "posterior mean")
    main.set_yscale("symlog", linthresh=1.0)
    main.set_ylabel(value_label(clv.attrs))
    main.set_title("CLV per customer")
    main.legend(loc="upper right", frameon=False)
    xlabel = f"customers ranked by {'' if point else 'posterior mean '}CLV (top %)"
    if len(axes) == 1:
        main.set_xlabel(xlabel)
        return main.figure
    relative = axes[1]
    mean = outer["mean"].to_numpy()
    scale = np.where(np.abs(mean) > 1e-9 * np.abs(mean).max(), mean, np.nan)
    for table, label, alpha in bands:  # points: customers of equal mean can differ in how sure they are
        for bound in ("lower", "upper"):
            relative.scatter(rank, 100 * (table[bound].to_numpy() / scale - 1), s=2, lw=0, color=_BAND,
                             alpha=alpha, label=label if bound == "lower" else None, rasterized=True)
    relative.axhline(0.0, color=_POINT, lw=1.2)
    if point:
        relative.text(0.5, 0.5, POINT_ESTIMATE, ha="center", va="center", transform=relative.transAxes)
        relative.set_yticks([])
    else:
        relative.set_ylabel("interval bounds\nvs the mean (%)")
    relative.set_xlabel(xlabel)
    return main.figure


def _panels(ax) -> list:
    """The Axes to draw on: the given one or two, or a new figure with a tall and a short panel."""
    if ax is None:
        import matplotlib.pyplot as plt  # only when the caller wants a new figure

        _, ax = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(2, 1), layout="constrained")
    return list(ax) if np.iterable(ax) else [ax]


def plot_tiers(tier_totals: pd.DataFrame, ax=None):
    """Total CLV of each tier (or any group) with its credible interval and customer count.

    Parameters
    ----------
    tier_totals : pandas.DataFrame
        Output of :func:`bayesclv.segment.group_totals` (``customers, mean,
        lower, upper, share_mean``), e.g. grouped by ``value_tiers(...)["tier"]``;
        its ``attrs`` (horizon, time unit, currency of the values) label the axis.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ax = _axes(ax, (6, 3.5))
    y = np.arange(len(tier_totals))
    mean = tier_totals["mean"].to_numpy()
    lower, upper = tier_totals["lower"].to_numpy(), tier_totals["upper"].to_numpy()
    point = np.allclose(lower, upper, rtol=1e-12, atol=0.0)
    err = None if point else np.vstack([mean - lower, upper - mean])
    ax.barh(y, mean, xerr=err, color=_BAND, alpha=0.8, capsize=4)
    ax.set_yticks(y, [str(i) for i in tier_totals.index])
    ax.invert_yaxis()
    for yi, (_, row) in zip(y, tier_totals.iterrows(), strict=True):
        ax.annotate(f" {row['customers']:,} customers, {row['share_mean']:.0%} of CLV",
                    (row["upper"], yi), va="center", fontsize=8)
    ax.set_xlim(0, tier_totals["upper"].max() * 1.6)
    _thousands(ax)
    ax.set_xlabel(value_label(tier_totals.attrs, "total CLV"))
    label = _interval_words(tier_totals["interval"].iloc[0]) if "interval" in tier_totals else "interval"
    ax.set_title(f"CLV by tier ({POINT_ESTIMATE})" if point else f"CLV by tier (bars: posterior mean; whiskers: {label})",
                 fontsize="medium")
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
    point = is_point_estimate(clv)
    if not point:
        ax.hlines(y, table["lower"], table["upper"], color=_BAND, lw=2,
                  label=_interval_words(table["interval"].iloc[0]))
    ax.plot(table["mean"], y, "o", color=_POINT, ms=4, label=POINT_ESTIMATE if point else "posterior mean")
    ax.set_yticks(y, [str(i) for i in table.index], parse_math=False)  # ids are text, "$" included
    ax.invert_yaxis()
    _thousands(ax)
    ax.set_xlabel(value_label(clv.attrs))
    ax.set_ylabel("customer")
    ax.set_title(f"Top {len(table)} customers by CLV")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return ax.figure


def plot_targeting_curve(gain: xr.DataArray, prob: float = 0.9, ax=None):
    """Total incremental value of targeting the first n customers, with a credible band.

    Parameters
    ----------
    gain : xarray.DataArray
        Output of :func:`bayesclv.offers.cumulative_gain`, dims
        ``(chain, draw, n_targeted)``; its ``attrs`` (horizon, time unit,
        currency) label the value axis.
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
    point = is_point_estimate(gain)
    if not point:
        ax.fill_between(n, table["lower"], table["upper"], color=_BAND, alpha=0.25, lw=0,
                        label=_interval_words(table["interval"].iloc[0]))
    ax.plot(n, table["mean"], color=_POINT, lw=1.5, label=POINT_ESTIMATE if point else "posterior mean")
    best = int(n[np.argmax(table["mean"].to_numpy())])
    ax.axvline(best, color="grey", ls="--", lw=1, label=f"best mean: target {best:,}")
    ax.axhline(0, color="black", lw=0.5)
    _thousands(ax)
    _thousands(ax, "y")
    ax.set_xlabel("customers targeted (in ranked order)")
    ax.set_ylabel(textwrap.fill(value_label(gain.attrs, "total incremental value"), 32))
    ax.set_title("Targeting curve")
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    return ax.figure
