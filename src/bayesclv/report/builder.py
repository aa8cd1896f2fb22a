"""Build the self-contained HTML report from fitted models.

The report is one HTML file: figures are embedded as base64 PNG images and the
style sheet is inline, so it opens offline and can be mailed as it is.
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
from matplotlib.figure import Figure

import bayesclv.offers as offers
import bayesclv.plots.decisions as decisions
import bayesclv.segment as segment
from bayesclv.clv import customer_lifetime_value
from bayesclv.evaluate import evaluate, has_holdout
from bayesclv.models.contract import SpendModel, TransactionModel
from bayesclv.plots.evaluation import plot_tracking
from bayesclv.progress import Progress
from bayesclv.summaries import intervals

__all__ = ["Report", "build_report"]

_UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


@dataclass
class Report:
    """A built report: the HTML text and the tables it shows.

    Attributes
    ----------
    html : str
        The whole self-contained document.
    tables : dict of str to pandas.DataFrame
        ``overview``, ``customers`` (per-customer CLV, P(alive), tier, stage, targeting),
        ``tiers``, ``stages``, ``rfm_segments``, ``targeting`` (ranked),
        ``targeted_total`` (total incremental value of the targeted and the rest), ``total``,
        ``parameters`` and, with a holdout, ``holdout``.
    """

    html: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write the HTML to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path


def _figure_html(fig: Figure, caption: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _new_axes(width: float, height: float):
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _table_html(frame: pd.DataFrame, digits: int = 2, index: bool = True) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if str(column).startswith("share_") or column in ("certainty", "mean certainty"):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:,.{digits}f}")
    return shown.to_html(classes="data", border=0, index=index, escape=True)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _overview(data: pd.DataFrame, transactions: pd.DataFrame | None, unit: str) -> pd.DataFrame:
    rows = {
        "customers": f"{len(data):,}",
        "repeat purchases (calibration)": f"{int(data['frequency'].sum()):,}",
        "customers with repeat purchases": f"{(data['frequency'] > 0).mean():.1%}",
        f"mean T ({_UNIT_NAMES[unit]})": f"{data['T'].mean():.1f}",
        "time unit": _UNIT_NAMES[unit],
    }
    if "monetary_value" in data:
        repeat = data.loc[data["frequency"] > 0, "monetary_value"]
        rows["mean spend per repeat purchase"] = f"{repeat.mean():,.2f}" if len(repeat) else "-"
    for key in ("calibration_end", "observation_end"):
        if key in data.attrs:
            rows[key.replace("_", " ")] = str(pd.Timestamp(data.attrs[key]).date())
    if "frequency_holdout" in data:
        rows["repeat purchases (holdout)"] = f"{int(data['frequency_holdout'].sum()):,}"
    if transactions is not None:
        rows["transactions (input rows)"] = f"{len(transactions):,}"
    return pd.DataFrame({"value": rows})


def _diagnostics(models: list) -> pd.DataFrame:
    rows = {}
    for model in models:
        diag = dict(model.diagnostics or {})
        rows[model.display_name] = {
            "fit": model.fit_method,
            "max R-hat": diag.get("max_r_hat", np.nan),
            "min bulk ESS": diag.get("min_ess_bulk", np.nan),
            "min tail ESS": diag.get("min_ess_tail", np.nan),
            "divergences": diag.get("divergences", np.nan),
            "draws": diag.get("n_draws", 1 if model.fit_method == "map" else np.nan),
            "converged": "OK" if diag.get("ok", True) else "POOR",
        }
    table = pd.DataFrame(rows).T
    for column in ("max R-hat", "min bulk ESS", "min tail ESS"):
        table[column] = table[column].astype(float)
    table["max R-hat"] = table["max R-hat"].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    for column in ("min bulk ESS", "min tail ESS", "divergences", "draws"):
        table[column] = table[column].map(lambda v: "-" if pd.isna(v) else f"{float(v):,.0f}")
    return table


def _parameters(models: list, prob: float) -> pd.DataFrame:
    frames = []
    for model in models:
        summary = model.summary(prob=prob)
        table = summary.reset_index()
        table.insert(0, "model", model.display_name)
        table["interval"] = summary.attrs["interval"]  # e.g. "90% credible (eti)", or a point estimate
        frames.append(table)
    return pd.concat(frames, ignore_index=True).set_index(["model", "parameter"])


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
    """Build the HTML report: data, fit, parameters, CLV, tiers, segments, targeting.

    Sections: data overview; model and convergence diagnostics; parameter
    table with ``prob`` HDIs; CLV of the whole base and per customer with
    credible bands; value tiers (top 10% / 10-20% / rest) with tier totals;
    lifecycle stages and classic RFM segments with CLV totals; top customers;
    targeting of an offer; the holdout tracking figure and metrics when
    ``data`` has a holdout; and a method note on which interval is which.

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
        CLV settings, see :func:`bayesclv.customer_lifetime_value`.
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
    tables: dict[str, pd.DataFrame] = {}
    sections: list[tuple[str, str, str]] = []

    progress("data overview")
    tables["overview"] = _overview(data, transactions, unit)
    sections.append(("data", "Data overview", _table_html(tables["overview"])))

    progress("diagnostics and parameters")
    diagnostics = _diagnostics(models)
    tables["parameters"] = _parameters(models, prob)
    poor = diagnostics["converged"].eq("POOR").any()
    verdict = ('<p class="poor">Convergence is POOR: do not quote these numbers before refitting.</p>' if poor
               else '<p class="ok">Convergence checks passed (R-hat &lt; 1.01, ESS &ge; 400, no divergences) '
               "or the fit is a point estimate.</p>")
    sections.append(("model", "Model and convergence", verdict + _table_html(diagnostics)
                     + "<h3>Parameters</h3>" + _table_html(tables["parameters"], digits=4)))

    progress(f"CLV over {horizon} x {horizon_unit} for {len(data):,} customers")
    clv = customer_lifetime_value(transaction_model, spend_model, data, horizon=horizon, time_unit=horizon_unit,
                                  discount_rate=discount_rate, margin=margin)
    p_alive = transaction_model.probability_alive(data)
    tables["total"] = segment.group_totals(clv, prob=prob)
    fig, ax = _new_axes(7.5, 4)
    decisions.plot_clv_distribution(clv, prob=prob, ax=ax)
    clv_body = (_paragraph(f"CLV over {horizon} periods of one {_UNIT_NAMES[horizon_unit][:-1]}, discounted at "
                           f"{discount_rate:g} per period, margin {margin:g}. Total over all customers:")
                + _table_html(tables["total"], digits=0)
                + _figure_html(fig, f"Each customer's CLV, sorted by posterior mean, with {prob:.0%} and 50% "
                                    "credible bands (symmetric log scale)."))
    sections.append(("clv", "Customer lifetime value", clv_body))

    progress("value tiers")
    tiers = segment.value_tiers(clv)
    tables["tiers"] = segment.group_totals(clv, tiers["tier"], prob=prob)
    certainty = tiers.groupby("tier", observed=False)["certainty"].mean().rename("mean certainty")
    tier_table = tables["tiers"].join(certainty)
    fig, ax = _new_axes(7, 3)
    decisions.plot_tiers(tables["tiers"], ax=ax)
    sections.append(("tiers", "Value tiers", _paragraph(
        "In each posterior draw customers are ranked by CLV; p_top_10 / p_top_20 are the shares of draws in "
        "which a customer is in the top 10% / 20%. Each customer's tier is the most probable band; "
        "'mean certainty' is the average probability of the assigned band. Totals are sums per draw.")
        + _table_html(tier_table, digits=1) + _figure_html(fig, f"Total CLV per tier, {prob:.0%} credible intervals.")))

    progress("lifecycle stages and RFM segments")
    stages, stage_sizes = segment.stage_summary(segment.lifecycle_stages(p_alive, data), prob=prob)
    stage_clv = segment.group_totals(clv, stages["stage"], prob=prob)
    tables["stages"] = stage_sizes.join(stage_clv[["mean", "lower", "upper"]].add_prefix("clv_"))
    rfm = segment.rfm_scores(data)
    tables["rfm_segments"] = segment.group_totals(clv, rfm["segment"], prob=prob)
    sections.append(("segments", "Lifecycle stages and RFM segments", _paragraph(
        "Stages per draw: new (first purchase under 13 weeks ago), lost (P(alive) < 0.3), active "
        "(P(alive) >= 0.7 and a purchase in the last 26 weeks), at risk (the rest). 'mean'/'lower'/'upper' are "
        "the number of customers in the stage across draws; 'assigned' counts customers whose most probable "
        "stage it is; clv_* is the stage's total CLV.")
        + _table_html(tables["stages"], digits=1)
        + "<h3>Classic RFM segments (quintile scores) with total CLV</h3>"
        + _table_html(tables["rfm_segments"], digits=1)))

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
    top_table = customers.sort_values("clv_mean", ascending=False).head(top)[
        ["frequency", "recency", "T", "clv_mean", "clv_lower", "clv_upper", "p_alive_mean", "p_top_10", "tier",
         "stage", "rfm_segment"]]
    fig, ax = _new_axes(7, 0.25 * top + 1.4)
    decisions.plot_top_customers(clv, n=top, prob=prob, ax=ax)
    sections.append(("top", "Top customers", _table_html(top_table)
                     + _figure_html(fig, f"Top {top} customers: posterior mean and {prob:.0%} credible interval.")))

    incremental = offers.incremental_value(clv, cost=offer_cost, uplift=uplift, random_seed=random_seed)
    targets = offers.targeting(incremental, prob=prob, min_prob_positive=min_prob_positive)
    tables["targeting"] = targets
    chosen = targets.index[targets["target"]]
    in_target = pd.Series(np.where(np.isin(clv["customer_id"].to_numpy(), chosen), "targeted", "not targeted"),
                          index=clv["customer_id"].to_numpy())
    target_total = segment.group_totals(incremental, in_target, prob=prob)
    tables["targeted_total"] = target_total
    gain = offers.cumulative_gain(incremental, targets.index)
    fig, ax = _new_axes(7.5, 4)
    decisions.plot_targeting_curve(gain, prob=prob, ax=ax)
    uplift_text = f"{uplift:g}" if isinstance(uplift, (int, float)) else "uncertain (one draw per posterior draw)"
    sections.append(("targeting", "Targeting", _paragraph(
        f"Offer costing {offer_cost:g} per customer with relative CLV uplift {uplift_text}: incremental value "
        f"= uplift x CLV - cost, per draw. {len(chosen):,} customers have P(incremental value > 0) >= "
        f"{min_prob_positive:g}; the total incremental value of targeting them (and of the rest):")
        + _table_html(target_total[["customers", "mean", "lower", "upper", "interval"]], digits=0)
        + f"<h3>Top {top} by expected incremental value</h3>" + _table_html(targets.head(top))
        + _figure_html(fig, f"Total incremental value of targeting the first n customers in ranked order, "
                            f"{prob:.0%} credible band.")))

    if has_holdout(data):
        progress("holdout evaluation and tracking")
        result = evaluate(transaction_model, data, prob=(prob,), random_seed=random_seed, n_draws=200,
                          transactions=transactions, customer_id=customer_id, date=date)
        tables["holdout"] = result.to_frame().T.rename(columns={0: "value"})
        tracking = ""
        if result.tracking is not None:
            fig, ax = _new_axes(7.5, 4)
            plot_tracking(result.tracking, kind="cumulative", prob=prob, ax=ax)
            tracking = _figure_html(fig, f"Tracking plot: cumulative repeat purchases of the cohort, actual vs "
                                         f"predicted (posterior mean and {prob:.0%} credible band).")
        fig, ax = _new_axes(7.5, 4)
        _plot_holdout_by_frequency(result.customers, data, ax)
        sections.append(("tracking", "Holdout tracking", _paragraph(
            f"The model saw only the calibration period; these compare its predictions of the "
            f"{result.horizon:g} {_UNIT_NAMES[unit]} of holdout with what happened. coverage_{round(100 * prob)} "
            f"is the share of customers whose actual holdout count lies inside their {prob:.0%} predictive "
            "interval (simulated purchases, so it includes the randomness of purchasing).")
            + _table_html(tables["holdout"], digits=4) + tracking
            + _figure_html(fig, "Mean holdout purchases per customer, grouped by calibration frequency: "
                                "actual vs the model's posterior-mean prediction.")))

    sections.append(("method", "Method note", _method_note(prob, transaction_model, spend_model)))
    customers["stage"] = customers["stage"].astype(str)
    tables["customers"] = customers.join(targets[["mean", "lower", "upper", "p_positive", "target"]]
                                         .add_prefix("offer_"))
    progress("writing HTML")
    template = Template(resources.files("bayesclv.report").joinpath("template.html").read_text(encoding="utf-8"))
    subtitle = (f"{transaction_model.display_name} + {spend_model.display_name}, "
                f"{len(data):,} customers, built {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC")
    document = template.substitute(
        title=html.escape(title), subtitle=html.escape(subtitle),
        nav="".join(f'<a href="#{anchor}">{html.escape(name)}</a>' for anchor, name, _ in sections),
        sections="\n".join(_section(*s) for s in sections))
    report = Report(html=document, tables=tables)
    if out is not None:
        report.write(out)
        progress(f"written to {out}")
    return report


def _plot_holdout_by_frequency(customers: pd.DataFrame, data: pd.DataFrame, ax) -> None:
    """Actual vs predicted mean holdout purchases by calibration frequency (7+ pooled)."""
    freq = np.minimum(data["frequency"].to_numpy(), 7).astype(int)
    frame = pd.DataFrame({"frequency": freq, "actual": customers["actual"].to_numpy(),
                          "predicted": customers["predicted"].to_numpy()})
    means = frame.groupby("frequency")[["actual", "predicted"]].mean()
    ax.plot(means.index, means["actual"], "o-", color="black", label="actual")
    ax.plot(means.index, means["predicted"], "s--", color="#4c72b0", label="predicted (posterior mean)")
    ax.set_xticks(means.index, [str(i) if i < 7 else "7+" for i in means.index])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title("Holdout: conditional expectations")
    ax.legend(frameon=False)


def _method_note(prob: float, transaction_model, spend_model) -> str:
    sampled = transaction_model.fit_method == "nuts"
    return "\n".join(_paragraph(p) for p in (
        f"Every number with an interval is summarised from posterior draws (dims chain, draw, customer_id) "
        f"by bayesclv.intervals; the intervals hold {prob:.0%} of the draws (equal-tailed unless labelled HDI).",
        "Credible intervals (CLV, P(alive), totals, tier totals, stage sizes, incremental value, parameter HDIs) "
        "describe uncertainty about an expected value: what the model does not know about the parameters. "
        "They do not include the randomness of what a customer will actually do.",
        "Predictive intervals (the holdout purchase counts in the tracking section) describe an outcome: "
        "parameter uncertainty plus the randomness of purchases, so they are wider.",
        "CLV multiplies the purchase model's and the spend model's draws draw by draw; tiers, stages and "
        "totals are computed per draw before they are summarised, so they carry the same uncertainty.",
        ("The models were fitted by NUTS; the convergence table lists R-hat, ESS and divergences."
         if sampled else
         f"The models were fitted by {transaction_model.fit_method.upper()}: a point estimate (or approximation)"
         " has no parameter uncertainty worth quoting, so credible intervals collapse; refit with NUTS for "
         "intervals you can quote."),
    ))
