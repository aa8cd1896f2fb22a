"""The report's tables in words: plain column labels with the currency, intervals as "from – to".

Each table is built from the library's frames (whose column names stay in
``Report.tables`` for machines) by a list of columns, each a label and a
function of the row; a point estimate gets no interval columns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from bayesclv.errors import PointEstimateWarning
from bayesclv.plots.labels import money, unit_name
from bayesclv.report.wording import Uncertainty
from bayesclv.summaries import POINT_ESTIMATE, is_point_estimate

__all__ = ["Column", "Words", "between", "convergence_html", "holdout_value", "offer_sentence", "overview_table",
           "parameter_table", "parameters_html", "percent", "top_customers_html", "words_table"]

Column = tuple[str, Callable[[pd.Series], str]]


def words_table(frame: pd.DataFrame, columns: list[Column | None], index: str) -> str:
    """HTML table of ``frame`` in words: each column a label and a function of the row (None: left out)."""
    columns = [c for c in columns if c is not None]
    shown = pd.DataFrame({label: [cell(row) for _, row in frame.iterrows()] for label, cell in columns},
                         index=[str(i) for i in frame.index])
    shown.columns.name = index  # written in the header's first cell: no extra header row for the index name
    return shown.to_html(classes="data", border=0, escape=True)


def between(lower: float, upper: float, fmt: Callable[[float], str]) -> str:
    """An interval as "from – to"."""
    return f"{fmt(lower)} – {fmt(upper)}"


class Words:
    """Cell formats shared by the tables: money in the report's currency, shares, intervals."""

    def __init__(self, uncertainty: Uncertainty, currency: str | None):
        self.uncertainty = uncertainty
        self.currency = currency
        self.unit = f" ({currency})" if currency else ""

    def value(self, label: str, prefix: str = "", decimals: int = 0) -> list[Column | None]:
        """A value column (the posterior mean, or the point estimate) and its interval column."""
        def fmt(v):
            return money(v, None, decimals)

        name = f"{label}{self.unit}" if self.uncertainty.has_intervals else f"{label}{self.unit}, point estimate"
        return [(name, lambda row: fmt(row[f"{prefix}mean"])), self.interval(prefix, fmt)]

    def interval(self, prefix: str, fmt: Callable[[float], str], label: str = "") -> Column | None:
        if not self.uncertainty.has_intervals:
            return None
        return (f"{label}{self.uncertainty.short}",
                lambda row: between(row[f"{prefix}lower"], row[f"{prefix}upper"], fmt))


def percent(v: float) -> str:
    """A share with one decimal, e.g. "57.6%"."""
    return f"{v:.1%}"


# --------------------------------------------------------------------------- tables in words
def overview_table(data: pd.DataFrame, transactions: pd.DataFrame | None, unit: str) -> pd.DataFrame:
    rows = {
        "customers": f"{len(data):,}",
        "repeat purchases (calibration)": f"{int(data['frequency'].sum()):,}",
        "customers with repeat purchases": f"{(data['frequency'] > 0).mean():.1%}",
        f"average time since first purchase ({unit_name(unit)})": f"{data['T'].mean():.1f}",
        "time unit of the model": unit_name(unit),
    }
    if "monetary_value" in data:
        repeat = data.loc[data["frequency"] > 0, "monetary_value"]
        rows["average spend per repeat purchase"] = f"{repeat.mean():,.2f}" if len(repeat) else "-"
    for key in ("calibration_end", "observation_end"):
        if key in data.attrs:
            rows[key.replace("_", " ")] = str(pd.Timestamp(data.attrs[key]).date())
    if "frequency_holdout" in data:
        rows["repeat purchases (holdout)"] = f"{int(data['frequency_holdout'].sum()):,}"
    if transactions is not None:
        rows["transactions (input rows)"] = f"{len(transactions):,}"
    return pd.DataFrame({"value": rows})


def convergence_html(models: list) -> str:
    """The convergence numbers per model, integer ESS; a point estimate or approximation says so."""
    rows = {}
    for model in models:
        diag = dict(model.diagnostics or {})
        sampled = "max_r_hat" in diag
        verdict = ("converged" if diag["ok"] else "not converged") if sampled else \
            POINT_ESTIMATE if is_point_estimate(model.posterior) else "approximation (no sampling diagnostics)"
        rows[model.display_name] = {
            "fitted by": str(model.fit_method).upper(),
            "largest R-hat": f"{diag['max_r_hat']:.3f}" if sampled else "-",
            "smallest bulk ESS": f"{diag['min_ess_bulk']:,.0f}" if sampled else "-",
            "smallest tail ESS": f"{diag['min_ess_tail']:,.0f}" if sampled else "-",
            "divergent transitions": f"{int(diag['divergences']):,}" if sampled else "-",
            "smallest E-BFMI": f"{min(diag['bfmi']):.2f}" if sampled and diag.get("bfmi") else "-",
            "draws at max tree depth": (f"{diag['tree_depth_share']:.1%}"
                                        if sampled and diag.get("tree_depth_share") is not None else "-"),
            "draws": f"{int(diag['n_draws']):,}" if sampled else "1" if is_point_estimate(model.posterior) else "-",
            "verdict": verdict,
        }
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    return table.to_html(classes="data", border=0, escape=True)


def parameter_table(models: list, prob: float) -> pd.DataFrame:
    """Each model's ``summary`` (interval kind after ArviZ's ``stats.ci_kind``), with its ``interval`` label.

    A point estimate's rows say so in ``interval`` (the report words it itself, so its warning is not repeated).
    """
    frames = []
    for model in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PointEstimateWarning)
            summary = model.summary(prob=prob)
        table = summary.reset_index()
        table.insert(0, "model", model.display_name)
        table["interval"] = summary.attrs["interval"]
        table["point_estimate"] = summary.attrs["point_estimate"]
        frames.append(table)
    table = pd.concat(frames, ignore_index=True).set_index(["model", "parameter"])
    table.attrs["method"] = summary.attrs["method"]
    return table


def parameters_html(table: pd.DataFrame, prob: float, uncertainty: Uncertainty) -> str:
    shown = table.reset_index()
    index = [f"{m}: {p}" for m, p in zip(shown["model"], shown["parameter"], strict=True)]
    shown.index = index

    def number(v):
        return "-" if pd.isna(v) else f"{v:.4g}"

    def whole(v):
        return "-" if pd.isna(v) else f"{v:,.0f}"

    point = not uncertainty.has_intervals
    method = str(table.attrs.get("method", "eti")).upper()

    def bounds(r):  # a point-estimate model's row beside a sampled one's: no interval to show
        return "-" if r["point_estimate"] else between(r["lower"], r["upper"], number)

    return words_table(shown, [
        ("point estimate" if point else "posterior mean", lambda r: number(r["mean"])),
        None if point else ("sd", lambda r: number(r["sd"])),
        None if point else (f"{prob:.0%} {method}", bounds),
        None if point else ("R-hat", lambda r: "-" if pd.isna(r["r_hat"]) else f"{r['r_hat']:.3f}"),
        None if point else ("bulk ESS", lambda r: whole(r["ess_bulk"])),
        None if point else ("tail ESS", lambda r: whole(r["ess_tail"])),
    ], "model: parameter")


def holdout_value(metric: str, value: float) -> str:
    if pd.isna(value):
        return "-"
    if metric.startswith(("coverage_", "interval_mass_", "pit_coverage_", "churn_accuracy", "churn_precision",
                          "churn_recall")):
        return f"{value:.1%}"
    if metric.startswith(("churn_", "zero_periods_")):
        return f"{value:,.1f}" if value % 1 else f"{value:,.0f}"
    if metric.startswith("mape_"):
        return f"{value:.1f}%"
    if metric.endswith("_pct"):
        return f"{value:+.1f}%"
    if metric.endswith("_total"):
        return f"{value:,.0f}"
    return f"{value:.3f}"


def top_customers_html(ranked: pd.DataFrame, words: Words, unit: str, short: bool = False) -> str:
    """The customers with the highest CLV, in words (``short``: the first screen's few columns)."""
    columns: list[Column | None] = [
        *words.value("CLV", "clv_", decimals=2),
        ("P(still active)", lambda r: f"{r['p_alive_mean']:.0%}"),
        ("repeat purchases", lambda r: f"{int(r['frequency']):,}"),
    ]
    if not short:
        columns += [
            (f"{unit_name(unit)} from first to last purchase", lambda r: f"{r['recency']:.1f}"),
            (f"{unit_name(unit)} since first purchase", lambda r: f"{r['T']:.1f}"),
            ("P(in top 10%)", lambda r: f"{r['p_top_10']:.0%}"),
            ("tier", lambda r: str(r["tier"])), ("lifecycle stage", lambda r: str(r["stage"])),
            ("RFM segment", lambda r: str(r["rfm_segment"])),
        ]
    return words_table(ranked, columns, "customer")


def offer_sentence(targeted_total: pd.DataFrame, n_chosen: int, words: Words, *, offer_cost: float, uplift: Any,
                    min_prob_positive: float) -> str:
    lift = f"lifts CLV by {uplift:.0%}" if isinstance(uplift, (int, float)) else "has an uncertain uplift"
    offer = (f"An offer costing {money(offer_cost, words.currency, 2)} that {lift} pays for itself with "
             f"probability {min_prob_positive:.0%} or more")
    if not n_chosen:
        return f"{offer} for no customer."
    row = targeted_total.loc["targeted"]
    worth = money(row["mean"], words.currency)
    if words.uncertainty.has_intervals:
        worth += (f" ({words.uncertainty.interval} {money(row['lower'], words.currency)} – "
                  f"{money(row['upper'], words.currency)})")
    return f"{offer} for {n_chosen:,} customers; targeting them is worth {worth} in total."


