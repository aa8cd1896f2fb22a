"""Build the self-contained HTML report from fitted models.

The report is one HTML file: figures are embedded as base64 PNG images and the
style sheet is inline, so it opens offline and can be mailed as it is. It is
written for the person who decides: the first screen answers what the customer
base is worth over the horizon, how sure that is and who matters
(:mod:`bayesclv.report.headline`); every table speaks in words, with the
currency and the horizon (:mod:`bayesclv.report.tables`); a glossary explains
the terms (:mod:`bayesclv.report.wording`); the statistician's details come last.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

import bayesclv.offers as offers
import bayesclv.plots.decisions as decisions
import bayesclv.segment as segment
from bayesclv.clv import customer_lifetime_value
from bayesclv.evaluate import evaluate, has_holdout
from bayesclv.models.contract import SpendModel, TransactionModel
from bayesclv.plots.evaluation import plot_tracking
from bayesclv.plots.labels import duration, money, unit_name
from bayesclv.progress import Progress
from bayesclv.report.headline import first_screen, headline_table
from bayesclv.report.tables import (
    Column,
    Words,
    convergence_html,
    holdout_value,
    offer_sentence,
    overview_table,
    parameter_table,
    parameters_html,
    percent,
    top_customers_html,
    words_table,
)
from bayesclv.report.wording import (
    Uncertainty,
    active_note,
    convergence_verdict,
    customer_facts,
    glossary,
    holdout_label,
)
from bayesclv.summaries import POINT_ESTIMATE, intervals

__all__ = ["Report", "build_report"]

_NAV = {"summary": "At a glance", "glossary": "Glossary", "clv": "CLV", "tiers": "Tiers", "segments": "Segments",
        "top": "Top customers", "targeting": "Targeting", "tracking": "Holdout check", "data": "Data",
        "model": "Convergence and parameters", "method": "Method"}


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


@dataclass
class _Parts:
    """What the sections are drawn from: the posterior quantities, the tables and the wording."""

    clv: xr.DataArray
    tables: dict[str, pd.DataFrame]
    customers: pd.DataFrame  # per customer, ranked by CLV
    incremental: xr.DataArray
    words: Words
    prob: float
    period: str
    as_of: str | None
    top: int

    @property
    def uncertainty(self) -> Uncertainty:
        return self.words.uncertainty

    def caption_interval(self, lead: str = ", ") -> str:
        """``", 90% credible interval."`` or ``" (point estimate (no posterior uncertainty))."``."""
        return f"{lead}{self.uncertainty.interval}." if self.uncertainty.has_intervals else f" ({POINT_ESTIMATE})."


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


# --------------------------------------------------------------------------- the report
def build_report(
    transaction_model: TransactionModel,
    spend_model: SpendModel,
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
    transaction_model : TransactionModel
        Fitted purchase-count model.
    spend_model : SpendModel
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
        Targeting settings, see :func:`bayesclv.offers.incremental_value`
        (``uplift`` may be a number, draws or a scipy.stats distribution) and
        :func:`bayesclv.offers.targeting`.
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
    progress = Progress("report", progressbar)
    data = transaction_model.data if data is None else data
    unit = transaction_model.time_unit
    models = [transaction_model, spend_model]
    uncertainty = Uncertainty.of(models, prob)
    words = Words(uncertainty, currency)
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
    incremental = offers.incremental_value(clv, cost=offer_cost, uplift=uplift, random_seed=random_seed)
    targets = offers.targeting(incremental, prob=prob, min_prob_positive=min_prob_positive)
    tables["targeting"] = targets
    chosen = targets.index[targets["target"]]
    in_target = pd.Series(np.where(np.isin(clv["customer_id"].to_numpy(), chosen), "targeted", "not targeted"),
                          index=clv["customer_id"].to_numpy())
    tables["targeted_total"] = segment.group_totals(incremental, in_target, prob=prob)
    offer = offer_sentence(tables["targeted_total"], len(chosen), words, offer_cost=offer_cost, uplift=uplift,
                           min_prob_positive=min_prob_positive)

    as_of = next((str(pd.Timestamp(data.attrs[k]).date()) for k in ("calibration_end", "observation_end")
                  if k in data.attrs), None)
    parts = _Parts(clv=clv, tables=tables, customers=customers.sort_values("clv_mean", ascending=False),
                   incremental=incremental, words=words, prob=prob, period=period, as_of=as_of, top=top)
    glance = f"At a glance: the {period} after {as_of}" if as_of else f"At a glance: the next {period}"
    sections = [
        ("summary", glance, first_screen(
            tables["headline"], uncertainty=uncertainty, verdict=convergence_verdict(models, uncertainty),
            currency=currency, period=period, as_of=as_of, active_note=active_note(transaction_model, data),
            tiers=words_table(tables["tiers"], _tier_columns(words, glance=True), "tier"),
            top=top_customers_html(parts.customers.head(5), words, unit, short=True), offer=offer)),
        ("glossary", "What the numbers mean", glossary(
            uncertainty, horizon=horizon, horizon_unit=horizon_unit, discount_rate=discount_rate, margin=margin,
            currency=currency, facts=customer_facts(transaction_model, spend_model, uncertainty, currency))),
        ("clv", "Customer lifetime value", _clv_section(parts, discount_rate=discount_rate, margin=margin,
                                                        horizon_unit=horizon_unit)),
        ("tiers", "Value tiers", _tiers_section(parts)),
        ("segments", "Lifecycle stages and RFM segments", _segments_section(parts)),
        ("top", "Top customers", _top_section(parts, unit)),
        ("targeting", "Targeting", _targeting_section(parts, offer)),
    ]
    if has_holdout(data):
        progress("holdout evaluation and tracking")
        sections.append(("tracking", "Holdout check", _holdout_section(
            transaction_model, data, tables, prob=prob, random_seed=random_seed, transactions=transactions,
            customer_id=customer_id, date=date, uncertainty=uncertainty)))
    tables["overview"] = overview_table(data, transactions, unit)
    tables["parameters"] = parameter_table(models, prob)
    sections += [
        ("data", "Data overview", tables["overview"].to_html(classes="data", border=0, escape=True)),
        ("model", "For statisticians: convergence and parameters", convergence_html(models)
         + "<h3>Parameters</h3>" + parameters_html(tables["parameters"], prob, uncertainty)),
        ("method", "Method note", _method_note(prob, transaction_model, uncertainty)),
    ]

    customers["stage"] = customers["stage"].astype(str)
    tables["customers"] = customers.join(targets[["mean", "lower", "upper", "p_positive", "target"]]
                                         .add_prefix("offer_"))
    progress("writing HTML")
    template = Template(resources.files("bayesclv.report").joinpath("template.html").read_text(encoding="utf-8"))
    methods = "/".join(dict.fromkeys(str(m.fit_method).upper() for m in models))
    subtitle = (f"{transaction_model.display_name} + {spend_model.display_name} fitted by {methods} · "
                f"{len(data):,} customers · CLV over the next {period}" + (f" in {currency}" if currency else "")
                + f" · built {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC")
    document = template.substitute(
        title=html.escape(title), subtitle=html.escape(subtitle),
        nav="".join(f'<a href="#{anchor}">{html.escape(_NAV[anchor])}</a>' for anchor, _, _ in sections),
        sections="\n".join(_section(*s) for s in sections))
    report = Report(html=document, tables=tables)
    if out is not None:
        report.write(out)
        progress(f"written to {out}")
    return report


# --------------------------------------------------------------------------- sections
def _tier_columns(words: Words, glance: bool = False) -> list[Column | None]:
    """Tier table columns; the first screen's (``glance``) without intervals or certainty."""
    count: Column = ("customers", lambda r: f"{r['customers']:,}")
    value, value_interval = words.value("total CLV")
    share: Column = ("share of all CLV", lambda r: percent(r["share_mean"]))
    if glance:
        return [count, value, share]
    sure = ("how sure (average)", lambda r: percent(r["mean certainty"])) if words.uncertainty.has_intervals \
        else None
    return [count, value, value_interval, share, words.interval("share_", percent, "share of all CLV, "), sure]


def _clv_section(parts: _Parts, *, discount_rate: float, margin: float, horizon_unit: str) -> str:
    uncertainty, currency = parts.uncertainty, parts.words.currency
    if uncertainty.has_intervals:  # the bands, and beneath them their width relative to the mean
        fig = Figure(figsize=(7.5, 5.5), layout="constrained")
        decisions.plot_clv_distribution(parts.clv, prob=parts.prob,
                                        ax=fig.subplots(2, 1, sharex=True, height_ratios=(2, 1)))
        credible = "credible " if uncertainty.kind == "credible" else ""
        bands = (f"with {parts.prob:.0%} and 50% {credible}intervals; below, the same intervals as a percentage "
                 "of each customer's mean")
    else:
        fig, ax = _new_axes(7.5, 4)
        decisions.plot_clv_distribution(parts.clv, prob=parts.prob, ax=ax)
        bands = f"a {POINT_ESTIMATE}"
    total = parts.tables["total"].loc["all"]
    whole = money(total["mean"], currency) + (
        f" ({uncertainty.interval} {money(total['lower'], currency)} – {money(total['upper'], currency)})"
        if uncertainty.has_intervals else f" ({POINT_ESTIMATE})")
    start = f" from {parts.as_of}" if parts.as_of else ""
    return (_paragraph(f"CLV over the next {parts.period}{start}, discounted at {discount_rate:.1%} per "
                       f"{unit_name(horizon_unit, 1)}, margin {margin:.0%} of revenue. The whole customer base: "
                       f"{whole}.")
            + _figure_html(fig, f"Each customer's CLV, ranked, {bands}."))


def _tiers_section(parts: _Parts) -> str:
    fig, ax = _new_axes(7, 3)
    decisions.plot_tiers(parts.tables["tiers"], ax=ax)
    text = ("In each posterior draw customers are ranked by CLV; a customer's tier is the band it falls in most "
            "often, and 'how sure' is the share of draws in which it does (averaged over the tier). Totals are "
            "summed draw by draw, so they carry the same uncertainty." if parts.uncertainty.has_intervals else
            f"Customers ranked by CLV, a {POINT_ESTIMATE}.")
    return (_paragraph(text) + words_table(parts.tables["tiers"], _tier_columns(parts.words), "tier")
            + _figure_html(fig, f"Total CLV per tier{parts.words.unit}" + parts.caption_interval()))


def _segments_section(parts: _Parts) -> str:
    words, tables = parts.words, parts.tables
    return (_paragraph("Stages per draw: new (first purchase under 13 weeks ago), lost (P(alive) < 0.3), active "
                       "(P(alive) >= 0.7 and a purchase in the last 26 weeks), at risk (the rest).")
            + words_table(tables["stages"], [
                ("customers (expected)", lambda r: f"{r['mean']:,.0f}"),
                words.interval("", lambda v: f"{v:,.0f}", "customers, "),
                ("customers most likely in this stage", lambda r: f"{int(r['assigned']):,}"),
                *words.value("total CLV", "clv_")], "stage")
            + "<h3>Classic RFM segments (quintile scores) with total CLV</h3>"
            + words_table(tables["rfm_segments"], [("customers", lambda r: f"{r['customers']:,}"),
                                                   *words.value("total CLV"),
                                                   ("share of all CLV", lambda r: percent(r["share_mean"]))],
                          "RFM segment"))


def _top_section(parts: _Parts, unit: str) -> str:
    fig, ax = _new_axes(7, 0.25 * parts.top + 1.4)
    decisions.plot_top_customers(parts.clv, n=parts.top, prob=parts.prob, ax=ax)
    mean = "posterior mean" if parts.uncertainty.has_intervals else "CLV"
    return (top_customers_html(parts.customers.head(parts.top), parts.words, unit)
            + _figure_html(fig, f"Top {parts.top} customers by CLV{parts.words.unit}: {mean}"
                                + parts.caption_interval(" and ")))


def _targeting_section(parts: _Parts, offer: str) -> str:
    words, tables = parts.words, parts.tables
    gain = offers.cumulative_gain(parts.incremental, tables["targeting"].index)
    fig, ax = _new_axes(7.5, 4)
    decisions.plot_targeting_curve(gain, prob=parts.prob, ax=ax)
    return (_paragraph(f"Incremental value of an offer = uplift x CLV - cost, per draw. {offer}")
            + words_table(tables["targeted_total"], [("customers", lambda r: f"{r['customers']:,}"),
                                                     *words.value("total incremental value")], "group")
            + f"<h3>Top {parts.top} by expected incremental value</h3>"
            + words_table(tables["targeting"].head(parts.top), [
                ("rank", lambda r: f"{int(r['rank']):,}"), *words.value("expected incremental value", decimals=2),
                ("P(offer pays back)", lambda r: f"{r['p_positive']:.0%}"),
                ("targeted", lambda r: "yes" if r["target"] else "no")], "customer")
            + _figure_html(fig, f"Total incremental value{words.unit} of targeting the first n customers in ranked "
                                "order" + parts.caption_interval()))


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
    shown = pd.DataFrame({"value": [holdout_value(k, v) for k, v in metrics.items()]},
                         index=[holdout_label(k) for k in metrics])
    shown.columns.name = "measure"
    band = f"{uncertainty.interval}" if uncertainty.has_intervals else POINT_ESTIMATE
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
            f"The models were fitted by {transaction_model.fit_method.upper()}: each is a {POINT_ESTIMATE}. CLV, P(alive), "
            "the totals and the segments are computed at that single parameter value, so they are shown without "
            "ranges; how far off they may be is not known.",
            "The holdout's predictive intervals hold only the randomness of purchases at the point estimate.",
            "Refit with NUTS (the default) for ranges you can quote.",
        )
    else:
        notes = (
            "Every number with an interval is summarised from posterior draws (one value per chain, draw and "
            f"customer) by bayesclv.intervals; the intervals hold {prob:.0%} of the draws (equal-tailed unless "
            "labelled HDI).",
            f"The {uncertainty.interval}s (CLV, P(alive), totals, tier totals, stage sizes, incremental value, "
            "parameter HDIs) describe uncertainty about an expected value: what the model does not know about the "
            "parameters. They do not include the randomness of what a customer will actually do.",
            "Predictive intervals (the holdout purchase counts) describe an outcome: parameter uncertainty plus "
            "the randomness of purchases, so they are wider.",
            "CLV multiplies the purchase model's and the spend model's draws draw by draw; tiers, stages and "
            "totals are computed per draw before they are summarised, so they carry the same uncertainty.",
        )
    return "\n".join(_paragraph(p) for p in notes)
