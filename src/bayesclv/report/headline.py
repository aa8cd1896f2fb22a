"""The report's first screen: what the customer base is worth, how sure we are, who matters.

:func:`headline_table` computes the three headline figures from the posterior
(each a sum per draw, so each carries its interval); :func:`first_screen` lays
them out with the convergence verdict, the value tiers, the top customers and
the offer sentence, in that order, so that a reader gets the answers before
scrolling.
"""

from __future__ import annotations

import html

import pandas as pd
import xarray as xr

import bayesclv.segment as segment
from bayesclv.plots.labels import money
from bayesclv.report.wording import Uncertainty
from bayesclv.summaries import POINT_ESTIMATE

__all__ = ["first_screen", "headline_table"]

VALUE, ACTIVE, TOP = "value of the customer base", "customers likely still active", "share of value in the top 10%"


def headline_table(clv: xr.DataArray, p_alive: xr.DataArray, tier_totals: pd.DataFrame,
                   prob: float) -> pd.DataFrame:
    """The headline figures with their intervals: ``mean, lower, upper`` and ``customers``.

    - value of the customer base: the sum of every customer's CLV, per draw;
    - customers likely still active: the sum of every customer's P(alive), per draw (the
      expected number of customers who have not left), and the same as a share of all customers;
    - share of value in the top 10%: the share of the total CLV held by the customers of the
      top 10% tier, per draw (as in the tier table), and that tier's total CLV.
    """
    n = clv.sizes["customer_id"]
    total = segment.group_totals(clv, prob=prob).loc["all"]
    active = segment.group_totals(p_alive, prob=prob).loc["all"]
    top = tier_totals.loc["top 10%"]
    rows = {
        VALUE: (total["mean"], total["lower"], total["upper"], n),
        ACTIVE: (active["mean"], active["lower"], active["upper"], n),
        "share of customers likely still active": (active["mean"] / n, active["lower"] / n, active["upper"] / n, n),
        TOP: (top["share_mean"], top["share_lower"], top["share_upper"], top["customers"]),
        "value of the top 10%": (top["mean"], top["lower"], top["upper"], top["customers"]),
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "lower", "upper", "customers"])
    table.index.name = "figure"
    return table


def _card(key: str, label: str, big: str, interval: str, foot: str) -> str:
    return (f'<div class="card" id="headline-{key}"><div class="label">{html.escape(label)}</div>'
            f'<div class="big">{html.escape(big)}</div><div class="range">{html.escape(interval)}</div>'
            f'<div class="foot">{html.escape(foot)}</div></div>')


def _range(uncertainty: Uncertainty, lower: str, upper: str) -> str:
    return f"{uncertainty.interval}: {lower} – {upper}" if uncertainty.has_intervals else POINT_ESTIMATE


def first_screen(headline: pd.DataFrame, *, uncertainty: Uncertainty, verdict: str, currency: str | None,
                 period: str, as_of: str | None, active_note: str, tiers: str, top: str, offer: str) -> str:
    """HTML of the first screen.

    Parameters
    ----------
    headline : DataFrame
        From :func:`headline_table`.
    uncertainty : Uncertainty
    verdict : str
        The convergence sentence (HTML).
    currency : str or None
    period : str
        E.g. "12 months".
    as_of : str or None
        The date the horizon starts from.
    active_note : str
        What the number of customers likely still active counts.
    tiers, top : str
        HTML tables (in words) of the tiers and the top customers.
    offer : str
        The targeting sentence.
    """
    value, active = headline.loc[VALUE], headline.loc[ACTIVE]
    share = headline.loc["share of customers likely still active"]
    top10, top_value = headline.loc[TOP], headline.loc["value of the top 10%"]
    n = int(value["customers"])
    start = f" from {as_of}" if as_of else ""
    cards = [
        _card("value", f"Value of the customer base, next {period}", money(value["mean"], currency),
              _range(uncertainty, money(value["lower"], currency), money(value["upper"], None)),
              f"the sum of all {n:,} customers' CLV over the {period}{start}"),
        _card("active", f"Customers likely still active, of {n:,}", f"{active['mean']:,.0f} ({share['mean']:.1%})",
              _range(uncertainty, f"{active['lower']:,.0f}", f"{active['upper']:,.0f}")
              + (f" ({share['lower']:.1%} – {share['upper']:.1%})" if uncertainty.has_intervals else ""),
              active_note),
        _card("top", "Share of value in the top 10% of customers", f"{top10['mean']:.1%}",
              _range(uncertainty, f"{top10['lower']:.1%}", f"{top10['upper']:.1%}"),
              f"{int(top10['customers']):,} customers worth {money(top_value['mean'], currency)} together"),
    ]
    return (f'<div class="cards">{"".join(cards)}</div>{verdict}'
            f'<div class="who"><div><h3>Who matters: value by tier</h3>{tiers}</div>'
            f'<div><h3>Top customers</h3>{top}</div></div><p class="offer">{html.escape(offer)}</p>')
