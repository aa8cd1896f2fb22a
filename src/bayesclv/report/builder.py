"""Build the self-contained HTML report from fitted models.

The report is one HTML file: figures are embedded as base64 PNG images and the
style sheet is inline, so it opens offline and can be mailed as it is. It is
written for the person who decides: the first screen answers what the customer
base is worth over the horizon, how sure that is and who matters
(:mod:`bayesclv.report.headline`); every table speaks in words, with the
currency and the horizon; a glossary explains the terms
(:mod:`bayesclv.report.wording`); the statistician's details come last.
"""

from __future__ import annotations

import base64
import html
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesclv import segment
from bayesclv.clv import customer_lifetime_value, intervals
from bayesclv.evaluate import evaluate, has_holdout
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.transaction import TransactionModel
from bayesclv.plots import decisions
from bayesclv.plots.evaluation import plot_tracking
from bayesclv.plots.labels import duration, money, unit_name
from bayesclv.report.headline import first_screen, headline_table
from bayesclv.report.wording import (
    POINT,
    Uncertainty,
    active_note,
    convergence_verdict,
    customer_facts,
    glossary,
    holdout_label,
)

__all__ = ["Report", "build_report"]


@dataclass
class Report:
    """A built report: the HTML text and the tables it shows.

    Attributes
    ----------
    html : str
        The whole self-contained document.
    tables : dict of str to pandas.DataFrame
        ``headline`` (the first screen's figures with intervals), ``overview``,
        ``customers`` (per-customer CLV, P(alive), tier, stage, targeting),
        ``tiers``, ``stages``, ``rfm_segments``, ``targeting`` (ranked),
        ``targeted_total`` (total incremental value of the targeted and the rest), ``total``,
        ``parameters`` and, with a holdout, ``holdout``. Their columns keep the
        library's names (for machines); the HTML shows them in words.
    """

    html: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write the HTML to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path


class _Progress:
    """One line per report step with the time it took, on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, step: str) -> None:
        if self.enabled:
            print(f"report [{time.perf_counter() - self.start:6.1f} s] {step}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- HTML pieces
def _figure_html(fig: Figure, caption: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _new_axes(width: float, height: float):
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


Column = tuple[str, Callable[[pd.Series], str]]


def _words_table(frame: pd.DataFrame, columns: list[Column | None], index: str) -> str:
    """HTML table of ``frame`` in words: each column a label and a function of the row (None: left out)."""
    columns = [c for c in columns if c is not None]
    shown = pd.DataFrame({label: [cell(row) for _, row in frame.iterrows()] for label, cell in columns},
                         index=[str(i) for i in frame.index])
    shown.columns.name = index  # written in the header's first cell: no extra header row for the index name
    return shown.to_html(classes="data", border=0, escape=True)


def _between(lower: float, upper: float, fmt: Callable[[float], str]) -> str:
    return f"{fmt(lower)} – {fmt(upper)}"


class _Words:
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
                lambda row: _between(row[f"{prefix}lower"], row[f"{prefix}upper"], fmt))


def _percent(v: float) -> str:
    return f"{v:.1%}"


# --------------------------------------------------------------------------- tables in words
def _overview(data: pd.DataFrame, transactions: pd.DataFrame | None, unit: str) -> pd.DataFrame:
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


def _convergence(models: list) -> str:
    """The convergence numbers per model, integer ESS; a point estimate or approximation says so."""
    rows = {}
    for model in models:
        diag = dict(model.diagnostics or {})
        sampled = "max_r_hat" in diag
        verdict = ("converged" if diag["ok"] else "not converged") if sampled else \
            POINT if model.fit_method == "map" else "approximation (no sampling diagnostics)"
        rows[model.display_name] = {
            "fitted by": str(model.fit_method).upper(),
            "largest R-hat": f"{diag['max_r_hat']:.3f}" if sampled else "-",
            "smallest bulk ESS": f"{diag['min_ess_bulk']:,.0f}" if sampled else "-",
            "smallest tail ESS": f"{diag['min_ess_tail']:,.0f}" if sampled else "-",
            "divergent transitions": f"{int(diag['divergences']):,}" if sampled else "-",
            "draws": f"{int(diag['n_draws']):,}" if sampled else "1" if model.fit_method == "map" else "-",
            "verdict": verdict,
        }
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    return table.to_html(classes="data", border=0, escape=True)


def _parameters(models: list, prob: float) -> pd.DataFrame:
    frames = []
    for model in models:
        table = model.summary(prob=prob).reset_index()
        table.insert(0, "model", model.display_name)
        frames.append(table)
    return pd.concat(frames, ignore_index=True).set_index(["model", "parameter"])


def _parameters_html(table: pd.DataFrame, prob: float, uncertainty: Uncertainty) -> str:
    shown = table.reset_index()
    index = [f"{m}: {p}" for m, p in zip(shown["model"], shown["parameter"], strict=True)]
    shown.index = index

    def number(v):
        return "-" if pd.isna(v) else f"{v:.4g}"

    def whole(v):
        return "-" if pd.isna(v) else f"{v:,.0f}"

    point = not uncertainty.has_intervals
    return _words_table(shown, [
        ("point estimate" if point else "posterior mean", lambda r: number(r["mean"])),
        None if point else ("sd", lambda r: number(r["sd"])),
        None if point else (f"{prob:.0%} HDI", lambda r: _between(r["hdi_lower"], r["hdi_upper"], number)),
        None if point else ("R-hat", lambda r: "-" if pd.isna(r["r_hat"]) else f"{r['r_hat']:.3f}"),
        None if point else ("bulk ESS", lambda r: whole(r["ess_bulk"])),
        None if point else ("tail ESS", lambda r: whole(r["ess_tail"])),
    ], "model: parameter")


def _holdout_value(metric: str, value: float) -> str:
    if pd.isna(value):
        return "-"
    if metric.startswith(("coverage_", "interval_mass_", "pit_coverage_")):
        return f"{value:.1%}"
    if metric.endswith("_pct"):
        return f"{value:+.1f}%"
    if metric.endswith("_total"):
        return f"{value:,.0f}"
    return f"{value:.3f}"


# --------------------------------------------------------------------------- the report
def build_report(
    transaction_model: TransactionModel,
    spend_model: GammaGammaModel,
    data: Any | None = None,
    *,
    transactions: pd.DataFrame | None = None,
    customer_id: str = "customer_id",
    date: str = "date",
    horizon: int = 12,
    horizon_unit: str = "M",
    discount_rate: float = 0.01,
    margin: float = 1.0,
    currency: str | None = None,
    prob: float = 0.9,
    offer_cost: float = 5.0,
    uplift: Any = 0.1,
    min_prob_positive: float = 0.8,
    top: int = 20,
    title: str = "Customer lifetime value report",
    out: str | Path | None = None,
    progressbar: bool = True,
    random_seed: int | None = None,
) -> Report:
    """Build the HTML report: the headline figures first, then the details behind them.

    First screen: the value of the customer base over the horizon, the customers
    likely still active and the share of value in the top 10%, each with its
    ``prob`` interval, a one-sentence convergence verdict, the value tiers, the
    top customers and what an offer would return. Then: a glossary with what the
    model says about the customers; CLV per customer; value tiers; lifecycle
    stages and RFM segments; top customers; targeting of an offer; with a
    holdout in ``data``, the holdout check; the data overview; and, for
    statisticians, convergence numbers, the parameter table and a method note.
    A MAP fit is reported as a point estimate (no posterior uncertainty), never
    with credible intervals.

    Parameters
    ----------
    transaction_model : BetaGeoModel or ParetoNBDModel
        Fitted purchase-count model.
    spend_model : GammaGammaModel
        Fitted spend model.
    data : DataFrame, optional
        RFM frame (with ``monetary_value``); default: the transaction model's data.
    transactions : DataFrame, optional
        The transaction log the RFM frame came from: counted in the overview and,
        with a holdout, drawn as the tracking plot (cumulative repeat purchases
        per period, actual vs predicted).
    customer_id, date : str
        Columns of ``transactions``.
    horizon, horizon_unit, discount_rate, margin
        CLV settings, see :func:`bayesclv.customer_lifetime_value`: ``horizon``
        periods of one ``horizon_unit`` ("D", "W", "M", "Y"), named in every
        headline, table and axis.
    currency : str, optional
        Currency of the spend values (e.g. "USD" or "€"), written with every
        amount; default: amounts without a currency.
    prob : float, default 0.9
        Probability inside every interval.
    offer_cost, uplift, min_prob_positive
        Targeting settings, see :func:`bayesclv.segment.incremental_value`
        (``uplift`` may be a number, draws or a scipy.stats distribution) and
        :func:`bayesclv.segment.targeting`.
    top : int, default 20
        Number of customers in the top-customer and targeting tables.
    title : str
        Heading of the report.
    out : str or Path, optional
        Where to write the HTML.
    progressbar : bool, default True
        Print each step with the elapsed time on stderr.
    random_seed : int, optional
        Seed of the uplift draws and the holdout simulation.

    Returns
    -------
    Report
        The HTML and the tables shown in it.
    """
    progress = _Progress(progressbar)
    data = transaction_model.data if data is None else data
    unit = transaction_model.time_unit
    models = [transaction_model, spend_model]
    uncertainty = Uncertainty.of(models, prob)
    words = _Words(uncertainty, currency)
    period = duration(horizon, horizon_unit)
    tables: dict[str, pd.DataFrame] = {}

    progress(f"CLV over {period} for {len(data):,} customers")
    clv = customer_lifetime_value(transaction_model, spend_model, data, horizon=horizon, time_unit=horizon_unit,
                                  discount_rate=discount_rate, margin=margin, currency=currency)
    p_alive = transaction_model.probability_alive(data)
    tables["total"] = segment.group_totals(clv, prob=prob)

    progress("value tiers, lifecycle stages and RFM segments")
    tiers = segment.value_tiers(clv)
    tier_totals = segment.group_totals(clv, tiers["tier"], prob=prob)
    certainty = tiers.groupby("tier", observed=False)["certainty"].mean()
    tables["tiers"] = tier_totals.assign(**{"mean certainty": certainty.reindex(tier_totals.index).to_numpy()})
    tables["headline"] = headline_table(clv, p_alive, tables["tiers"], prob)
    stages, stage_sizes = segment.stage_summary(segment.lifecycle_stages(p_alive, data), prob=prob)
    stage_clv = segment.group_totals(clv, stages["stage"], prob=prob)
    tables["stages"] = stage_sizes.join(stage_clv[["mean", "lower", "upper"]].add_prefix("clv_"))
    rfm = segment.rfm_scores(data)
    tables["rfm_segments"] = segment.group_totals(clv, rfm["segment"], prob=prob)

    progress("top customers and targeting")
    clv_summary = intervals(clv, prob=prob)
    customers = pd.DataFrame({
        "frequency": data["frequency"].to_numpy(), "recency": data["recency"].to_numpy(),
        "T": data["T"].to_numpy(),
        "clv_mean": clv_summary["mean"].to_numpy(), "clv_lower": clv_summary["lower"].to_numpy(),
        "clv_upper": clv_summary["upper"].to_numpy(),
        "p_alive_mean": p_alive.mean(("chain", "draw")).to_numpy(),
    }, index=pd.Index(clv["customer_id"].to_numpy(), name="customer_id"))
    customers = customers.join(tiers[["p_top_10", "p_top_20", "tier", "certainty"]])
    customers = customers.join(stages[["stage"]])
    customers = customers.join(rfm[["rfm", "segment"]].rename(columns={"segment": "rfm_segment"}))
    ranked = customers.sort_values("clv_mean", ascending=False)
    incremental = segment.incremental_value(clv, cost=offer_cost, uplift=uplift, random_seed=random_seed)
    targets = segment.targeting(incremental, prob=prob, min_prob_positive=min_prob_positive)
    tables["targeting"] = targets
    chosen = targets.index[targets["target"]]
    in_target = pd.Series(np.where(np.isin(clv["customer_id"].to_numpy(), chosen), "targeted", "not targeted"),
                          index=clv["customer_id"].to_numpy())
    tables["targeted_total"] = segment.group_totals(incremental, in_target, prob=prob)
    offer = _offer_sentence(tables["targeted_total"], len(chosen), words, offer_cost=offer_cost, uplift=uplift,
                            min_prob_positive=min_prob_positive)

    sections: list[tuple[str, str, str]] = []
    as_of = next((str(pd.Timestamp(data.attrs[k]).date()) for k in ("calibration_end", "observation_end")
                  if k in data.attrs), None)
    verdict = convergence_verdict(models, uncertainty)
    tier_columns: list[Column | None] = [("customers", lambda r: f"{r['customers']:,}"),
                                         *words.value("total CLV"), ("share of all CLV", lambda r: _percent(r["share_mean"]))]
    glance_tiers = [tier_columns[0], tier_columns[1], tier_columns[3]]  # the first screen: no interval columns
    glance = f"At a glance: the {period} after {as_of}" if as_of else f"At a glance: the next {period}"
    sections.append(("summary", glance, first_screen(
        tables["headline"], uncertainty=uncertainty, verdict=verdict, currency=currency, period=period,
        as_of=as_of, active_note=active_note(transaction_model, data), tiers=_words_table(tables["tiers"], glance_tiers, "tier"),
        top=_top_table(ranked.head(5), words, unit, short=True), offer=offer)))

    facts = customer_facts(transaction_model, spend_model, uncertainty, currency)
    sections.append(("glossary", "What the numbers mean", glossary(
        uncertainty, horizon=horizon, horizon_unit=horizon_unit, discount_rate=discount_rate, margin=margin,
        currency=currency, facts=facts)))

    if uncertainty.has_intervals:  # the bands, and beneath them their width relative to the mean
        fig = Figure(figsize=(7.5, 5.5), layout="constrained")
        decisions.plot_clv_distribution(clv, prob=prob, ax=fig.subplots(2, 1, sharex=True, height_ratios=(2, 1)))
    else:
        fig, ax = _new_axes(7.5, 4)
        decisions.plot_clv_distribution(clv, prob=prob, ax=ax)
    bands = (f"with {prob:.0%} and 50% {'credible ' if uncertainty.kind == 'credible' else ''}intervals; below, "
             "the same intervals as a percentage of each customer's mean" if uncertainty.has_intervals else
             f"a {POINT}")
    total = tables["total"].loc["all"]
    whole = money(total["mean"], currency) + (
        f" ({uncertainty.interval} {money(total['lower'], currency)} – {money(total['upper'], currency)})"
        if uncertainty.has_intervals else f" ({POINT})")
    sections.append(("clv", "Customer lifetime value", _paragraph(
        f"CLV over the next {period}{' from ' + as_of if as_of else ''}, discounted at {discount_rate:.1%} per "
        f"{unit_name(horizon_unit, 1)}, margin {margin:.0%} of revenue. The whole customer base: {whole}.")
        + _figure_html(fig, f"Each customer's CLV, ranked, {bands}.")))

    fig, ax = _new_axes(7, 3)
    decisions.plot_tiers(tables["tiers"], ax=ax)
    tier_text = ("In each posterior draw customers are ranked by CLV; a customer's tier is the band it falls in "
                 "most often, and 'how sure' is the share of draws in which it does (averaged over the tier). Totals "
                 "are summed draw by draw, so they carry the same uncertainty." if uncertainty.has_intervals else
                 f"Customers ranked by CLV, a {POINT}.")
    sections.append(("tiers", "Value tiers", _paragraph(tier_text)
        + _words_table(tables["tiers"], [
            *tier_columns, words.interval("share_", _percent, "share of all CLV, "),
            ("how sure (average)", lambda r: _percent(r["mean certainty"])) if uncertainty.has_intervals else None],
            "tier")
        + _figure_html(fig, f"Total CLV per tier{words.unit}"
                            + (f", {uncertainty.interval}." if uncertainty.has_intervals else f", {POINT}."))))

    sections.append(("segments", "Lifecycle stages and RFM segments", _paragraph(
        "Stages per draw: new (first purchase under 13 weeks ago), lost (P(alive) < 0.3), active "
        "(P(alive) >= 0.7 and a purchase in the last 26 weeks), at risk (the rest).")
        + _words_table(tables["stages"], [
            ("customers (expected)", lambda r: f"{r['mean']:,.0f}"),
            words.interval("", lambda v: f"{v:,.0f}", "customers, "),
            ("customers most likely in this stage", lambda r: f"{int(r['assigned']):,}"),
            *words.value("total CLV", "clv_")], "stage")
        + "<h3>Classic RFM segments (quintile scores) with total CLV</h3>"
        + _words_table(tables["rfm_segments"], [("customers", lambda r: f"{r['customers']:,}"),
                                                *words.value("total CLV"),
                                                ("share of all CLV", lambda r: _percent(r["share_mean"]))],
                       "RFM segment")))

    fig, ax = _new_axes(7, 0.25 * top + 1.4)
    decisions.plot_top_customers(clv, n=top, prob=prob, ax=ax)
    sections.append(("top", "Top customers", _top_table(ranked.head(top), words, unit)
                     + _figure_html(fig, f"Top {top} customers by CLV{words.unit}: posterior mean"
                                         + (f" and {uncertainty.interval}." if uncertainty.has_intervals else
                                            f" ({POINT})."))))

    gain = segment.cumulative_gain(incremental, targets.index)
    gain.attrs.update({k: clv.attrs[k] for k in ("horizon", "time_unit", "currency") if k in clv.attrs})
    fig, ax = _new_axes(7.5, 4)
    decisions.plot_targeting_curve(gain, prob=prob, ax=ax)
    sections.append(("targeting", "Targeting", _paragraph(
        f"Incremental value of an offer = uplift x CLV - cost, per draw. {offer}")
        + _words_table(tables["targeted_total"], [("customers", lambda r: f"{r['customers']:,}"),
                                                  *words.value("total incremental value")], "group")
        + f"<h3>Top {top} by expected incremental value</h3>"
        + _words_table(targets.head(top), [
            ("rank", lambda r: f"{int(r['rank']):,}"), *words.value("expected incremental value", decimals=2),
            ("P(offer pays back)", lambda r: f"{r['p_positive']:.0%}"),
            ("targeted", lambda r: "yes" if r["target"] else "no")], "customer")
        + _figure_html(fig, f"Total incremental value{words.unit} of targeting the first n customers in ranked "
                            "order" + (f", {uncertainty.interval}." if uncertainty.has_intervals else f" ({POINT}).")
                       )))

    if has_holdout(data):
        progress("holdout evaluation and tracking")
        sections.append(("tracking", "Holdout check", _holdout_section(
            transaction_model, data, tables, prob=prob, random_seed=random_seed, transactions=transactions,
            customer_id=customer_id, date=date, uncertainty=uncertainty)))

    tables["overview"] = _overview(data, transactions, unit)
    sections.append(("data", "Data overview", tables["overview"].to_html(classes="data", border=0, escape=True)))
    tables["parameters"] = _parameters(models, prob)
    sections.append(("model", "For statisticians: convergence and parameters", verdict + _convergence(models)
                     + "<h3>Parameters</h3>" + _parameters_html(tables["parameters"], prob, uncertainty)))
    sections.append(("method", "Method note", _method_note(prob, transaction_model, uncertainty)))

    customers["stage"] = customers["stage"].astype(str)
    tables["customers"] = customers.join(targets[["mean", "lower", "upper", "p_positive", "target"]]
                                         .add_prefix("offer_"))
    progress("writing HTML")
    template = Template(resources.files("bayesclv.report").joinpath("template.html").read_text(encoding="utf-8"))
    subtitle = (f"{transaction_model.display_name} + {spend_model.display_name} fitted by "
                f"{'/'.join(dict.fromkeys(str(m.fit_method).upper() for m in models))} · {len(data):,} customers · "
                f"CLV over the next {period}" + (f" in {currency}" if currency else "")
                + f" · built {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC")
    nav = {"summary": "At a glance", "glossary": "Glossary", "clv": "CLV", "tiers": "Tiers",
           "segments": "Segments", "top": "Top customers", "targeting": "Targeting", "tracking": "Holdout check",
           "data": "Data", "model": "Convergence and parameters", "method": "Method"}
    document = template.substitute(
        title=html.escape(title), subtitle=html.escape(subtitle),
        nav="".join(f'<a href="#{anchor}">{html.escape(nav[anchor])}</a>' for anchor, _, _ in sections),
        sections="\n".join(_section(*s) for s in sections))
    report = Report(html=document, tables=tables)
    if out is not None:
        report.write(out)
        progress(f"written to {out}")
    return report


def _top_table(ranked: pd.DataFrame, words: _Words, unit: str, short: bool = False) -> str:
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
    return _words_table(ranked, columns, "customer")


def _offer_sentence(targeted_total: pd.DataFrame, n_chosen: int, words: _Words, *, offer_cost: float, uplift: Any,
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


def _holdout_section(model, data, tables, *, prob, random_seed, transactions, customer_id, date,
                     uncertainty: Uncertainty) -> str:
    result = evaluate(model, data, prob=(prob,), random_seed=random_seed, n_draws=200,
                      transactions=transactions, customer_id=customer_id, date=date)
    tables["holdout"] = result.to_frame().T.rename(columns={0: "value"})
    holdout = duration(result.horizon, result.time_unit)
    metrics = result.metrics
    summary = (f"The model saw only the calibration period. Over the {holdout} after it, it predicted "
               f"{metrics['predicted_total']:,.0f} repeat purchases; {metrics['actual_total']:,.0f} happened "
               f"({metrics['total_error_pct']:+.1f}%).")
    shown = pd.DataFrame({"value": [_holdout_value(k, v) for k, v in metrics.items()]},
                         index=[holdout_label(k) for k in metrics])
    shown.columns.name = "measure"
    band = f"{uncertainty.interval}" if uncertainty.has_intervals else POINT
    tracking = ""
    if result.tracking is not None:
        fig, ax = _new_axes(7.5, 4)
        plot_tracking(result.tracking, kind="cumulative", prob=prob, ax=ax)
        tracking = _figure_html(fig, "Tracking plot: cumulative repeat purchases of the cohort, actual vs "
                                     f"predicted (posterior mean, {band}).")
    fig, ax = _new_axes(7.5, 4)
    _plot_holdout_by_frequency(result.customers, data, ax, holdout)
    return (_paragraph(summary) + _paragraph(
        f"The {prob:.0%} predictive intervals below are of each customer's actual number of purchases "
        "(simulated, so they include the chance in purchasing).")
        + shown.to_html(classes="data", border=0, escape=True) + tracking
        + _figure_html(fig, "Mean holdout purchases per customer, grouped by calibration frequency: "
                            "actual vs the model's prediction."))


def _plot_holdout_by_frequency(customers: pd.DataFrame, data: pd.DataFrame, ax, holdout: str) -> None:
    """Actual vs predicted mean holdout purchases by calibration frequency (7+ pooled)."""
    freq = np.minimum(data["frequency"].to_numpy(), 7).astype(int)
    frame = pd.DataFrame({"frequency": freq, "actual": customers["actual"].to_numpy(),
                          "predicted": customers["predicted"].to_numpy()})
    means = frame.groupby("frequency")[["actual", "predicted"]].mean()
    ax.plot(means.index, means["actual"], "o-", color="black", label="actual")
    ax.plot(means.index, means["predicted"], "s--", color="#4c72b0", label="predicted (mean over the posterior)")
    ax.set_xticks(means.index, [str(i) if i < 7 else "7+" for i in means.index])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel(f"mean purchases in the {holdout} holdout")
    ax.set_title("Holdout: conditional expectations")
    ax.legend(frameon=False)


def _method_note(prob: float, transaction_model, uncertainty: Uncertainty) -> str:
    if not uncertainty.has_intervals:
        notes = (
            f"The models were fitted by {transaction_model.fit_method.upper()}: each is a {POINT}. CLV, P(alive), "
            "the totals and the segments are computed at that single parameter value, so they are shown without "
            "ranges; how far off they may be is not known.",
            "The holdout's predictive intervals hold only the randomness of purchases at the point estimate.",
            "Refit with NUTS (the default) for ranges you can quote.",
        )
    else:
        notes = (
            "Every number with an interval is summarised from posterior draws (one value per chain, draw and "
            f"customer) by bayesclv.intervals; the intervals hold {prob:.0%} of the draws (equal-tailed unless labelled HDI).",
            f"The {uncertainty.interval}s (CLV, P(alive), totals, tier totals, stage sizes, incremental value, "
            "parameter HDIs) describe uncertainty about an expected value: what the model does not know about the "
            "parameters. They do not include the randomness of what a customer will actually do.",
            "Predictive intervals (the holdout purchase counts) describe an outcome: parameter uncertainty plus "
            "the randomness of purchases, so they are wider.",
            "CLV multiplies the purchase model's and the spend model's draws draw by draw; tiers, stages and "
            "totals are computed per draw before they are summarised, so they carry the same uncertainty.",
        )
    return "\n".join(_paragraph(p) for p in notes)
