"""Words for the report's reader: how sure the numbers are, plain labels, the glossary.

Everything a marketing manager reads in the report is phrased here: the kind of
uncertainty behind the numbers (credible, approximate, or none for a point
estimate), the one-sentence convergence verdict, the labels of the holdout
metrics and what the model's parameters say about the customers, computed
draw by draw from the posterior.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bayesclv.data import TIME_UNITS
from bayesclv.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from bayesclv.models.diagnostics import ESS_MIN, RHAT_MAX, TREE_DEPTH_SHARE_MAX, bfmi_min
from bayesclv.plots.labels import duration, money, unit_name
from bayesclv.summaries import POINT_ESTIMATE, is_point_estimate

__all__ = ["Uncertainty", "active_note", "convergence_verdict", "customer_facts", "glossary", "holdout_label"]


@dataclass(frozen=True)
class Uncertainty:
    """What the report's intervals are, given how the models were fitted.

    ``kind`` is ``"credible"`` (every model sampled by NUTS), ``"approximate"``
    (an ADVI fit), ``"partial"`` (some models are point estimates, so the
    intervals hold only the others' uncertainty) or ``"point"`` (every model a
    point estimate: no intervals at all).
    """

    kind: str
    prob: float
    point_models: tuple[str, ...] = ()

    @classmethod
    def of(cls, models: list, prob: float) -> Uncertainty:
        methods = [model.fit_method for model in models]
        points = tuple(model.display_name for model in models if is_point_estimate(model.posterior))
        if len(points) == len(models):
            return cls("point", prob, points)
        if points:
            return cls("partial", prob, points)
        return cls("approximate" if "advi" in methods else "credible", prob)

    @property
    def has_intervals(self) -> bool:
        return self.kind != "point"

    @property
    def interval(self) -> str:
        """Name of an interval of an expected value, e.g. "90% credible interval"."""
        share = f"{self.prob:.0%}"
        return {"credible": f"{share} credible interval",
                "approximate": f"{share} interval (ADVI approximation)",
                "partial": f"{share} interval (without the uncertainty of {' and '.join(self.point_models)})",
                "point": POINT_ESTIMATE}[self.kind]

    @property
    def short(self) -> str:
        """Column header of such an interval, e.g. "90% credible interval" or "90% interval"."""
        return f"{self.prob:.0%} credible interval" if self.kind == "credible" else f"{self.prob:.0%} interval"


# --------------------------------------------------------------------------- convergence
def _sampler_health(diag: dict) -> str:
    """E-BFMI and tree-depth saturation, where the sampler recorded them (``FitDiagnostics``)."""
    text = ""
    if diag.get("bfmi"):
        text += f", smallest E-BFMI {min(diag['bfmi']):.2f} (needs &ge; {bfmi_min():g})"
    if diag.get("tree_depth_share") is not None:
        text += (f", {diag['tree_depth_share']:.1%} of draws at the maximum tree depth (needs &le; "
                 f"{TREE_DEPTH_SHARE_MAX:.0%})")
    return text


def _numbers(models: list) -> str:
    """The diagnostics behind the verdict, one line per model (for a details element)."""
    lines = []
    for model in models:
        diag = dict(model.diagnostics or {})
        name = html.escape(model.display_name)
        if "max_r_hat" in diag:
            lines.append(
                f"{name}: largest R-hat {diag['max_r_hat']:.3f} (needs &lt; {RHAT_MAX:g}), smallest effective "
                f"sample size {diag['min_ess_bulk']:,.0f} bulk / {diag['min_ess_tail']:,.0f} tail (needs "
                f"&ge; {ESS_MIN:,.0f}), {int(diag['divergences']):,} divergent transitions in "
                f"{int(diag['n_draws']):,} draws{_sampler_health(diag)}.")
        else:
            lines.append(f"{name}: fitted by {html.escape(str(model.fit_method).upper())}, no sampling diagnostics.")
    return "<br>".join(lines)


def convergence_verdict(models: list, uncertainty: Uncertainty) -> str:
    """One plain sentence on whether the numbers can be quoted, its numbers in a details element.

    Green only when every model was sampled by NUTS and passed the checks; a point
    estimate or an approximation is never green.
    """
    poor = [m.display_name for m in models if "max_r_hat" in (m.diagnostics or {}) and not m.diagnostics["ok"]]
    if poor:
        css, text = "poor", (f"Not reliable yet: the sampler did not converge for {' and '.join(poor)}. Do not "
                             "quote these numbers; refit with more tuning steps and draws.")
    elif uncertainty.kind == "point":
        css, text = "note", ("These are point estimates (no posterior uncertainty): the models were fitted by "
                             "MAP, so no ranges are shown; refit with NUTS (the default) for intervals you can "
                             "quote.")
    elif uncertainty.kind == "partial":
        css, text = "note", (f"{' and '.join(uncertainty.point_models)} is a point estimate (no posterior "
                             "uncertainty), so the ranges shown are too narrow. Refit every model with NUTS "
                             "before quoting them.")
    elif uncertainty.kind == "approximate":
        css, text = "note", ("The models were fitted by ADVI, an approximation whose ranges are usually too "
                             "narrow. Refit with NUTS before quoting them.")
    else:
        css, text = "ok", ("The sampler converged for every model, so the ranges below can be quoted "
                           f"({uncertainty.prob:.0%} credible intervals).")
    return (f'<div class="verdict {css}"><p>{html.escape(text)}</p>'
            f"<details><summary>the numbers behind this</summary><p>{_numbers(models)}</p></details></div>")


def active_note(transaction_model, data) -> str:
    """What the number of customers likely still active is (and, for BG/NBD, whom it includes)."""
    note = "the expected number who have not silently stopped buying"
    never = int((data["frequency"] == 0).sum())
    if isinstance(transaction_model, BetaGeoModel) and never:
        note += f"; BG/NBD counts the {never:,} who never bought again as active"
    return note


# --------------------------------------------------------------------------- holdout labels
_HOLDOUT_LABELS = {
    "mae": "mean absolute error per customer (purchases)",
    "rmse": "root mean squared error per customer (purchases)",
    "bias": "mean of predicted minus actual purchases per customer",
    "predicted_total": "predicted repeat purchases, all customers",
    "actual_total": "actual repeat purchases, all customers",
    "total_error_pct": "error of the predicted total (%)",
    "correlation": "correlation of predicted and actual purchases",
    "auc": "AUC: how well P(buys again) ranks buyers above non-buyers (0.5 = chance, 1 = perfect)",
    "brier": "Brier score of P(buys again) (0 = perfect, 0.25 = always 50%)",
    "tracking_calibration_error_pct": "cumulative repeat purchases at the end of calibration: error (%)",
    "tracking_holdout_error_pct": "cumulative repeat purchases at the end of the holdout: error (%)",
    "mape_total": "absolute error of the predicted total (%)",
    "auc_p_alive": "AUC: how well P(alive) ranks buyers above non-buyers (0.5 = chance, 1 = perfect)",
    "churn_accuracy": "churn call at the P(alive) threshold: share of customers called right",
    "churn_precision": "churn call: share of customers called churned who bought nothing",
    "churn_recall": "churn call: share of non-buyers the model called churned",
    "churn_tp": "customers called churned who bought nothing",
    "churn_fp": "customers called churned who bought again",
    "churn_fn": "customers called active who bought nothing",
    "churn_tn": "customers called active who bought again",
    "mape_periods_calibration": "mean absolute error per period, calibration (% of actual)",
    "mape_periods_holdout": "mean absolute error per period, holdout (% of actual)",
    "zero_periods_calibration": "calibration periods without purchases (left out of that error)",
    "zero_periods_holdout": "holdout periods without purchases (left out of that error)",
}
_HOLDOUT_PREFIXES = {
    "coverage_": "share of customers whose actual purchases lie inside their {p}% predictive interval",
    "interval_mass_": "share a calibrated model would show (whole-number intervals hold more than {p}%)",
    "pit_coverage_": "the same share by randomised PIT (a calibrated model shows exactly {p}%)",
}
_INTERVAL_SUFFIXES = {"_lower_": "lower", "_upper_": "upper"}


def holdout_label(metric: str) -> str:
    """Plain label of a holdout metric of :func:`bayesclv.evaluate` (unknown names without underscores)."""
    if metric in _HOLDOUT_LABELS:
        return _HOLDOUT_LABELS[metric]
    for infix, end in _INTERVAL_SUFFIXES.items():
        base, _, p = metric.rpartition(infix)
        if base in _HOLDOUT_LABELS:
            return f"{_HOLDOUT_LABELS[base]}: {end} end of the {p}% interval"
    for prefix, text in _HOLDOUT_PREFIXES.items():
        if metric.startswith(prefix):
            return text.format(p=metric[len(prefix):])
    return metric.replace("_", " ")


# --------------------------------------------------------------------------- what the parameters say
def _per_draw(model, names: list[str]) -> dict[str, np.ndarray] | None:
    """Each parameter's draws as a flat array; None when a parameter varies by group or customer."""
    post = model.posterior
    if any(set(post[n].dims) - {"chain", "draw"} for n in names):
        return None
    return {n: post[n].to_numpy().ravel() for n in names}


def _summary(values: np.ndarray, prob: float, fmt, uncertainty: Uncertainty) -> str:
    """``"2.7 (90% credible interval 2.6 - 2.8)"`` or the point value for a point estimate."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "not finite"
    if values.size == 1:
        return f"{fmt(values[0])} (point estimate, no posterior uncertainty)"
    lo, hi = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2])
    return f"{fmt(np.mean(values))} ({uncertainty.short} {fmt(lo)} – {fmt(hi)})"


def customer_facts(transaction_model, spend_model, uncertainty: Uncertainty, currency: str | None) -> list[str]:
    """What the population parameters say about the customers, one plain sentence each.

    Computed from every posterior draw (BG/NBD, Pareto/NBD, Gamma-Gamma without groups or
    covariates): the average and median purchase rate per year of an active customer
    (Gamma(r, alpha) rates), the dropout chance after a purchase (BG/NBD: mean of Beta(a, b)),
    the chance that a new customer is still active after a year (Pareto/NBD:
    (beta / (beta + t))^s) and the average spend per purchase (Gamma-Gamma: p gamma / (q - 1)).
    """
    prob = uncertainty.prob
    unit = transaction_model.time_unit
    per_year = TIME_UNITS["Y"] / TIME_UNITS[unit]  # model time units in a year
    facts = []
    kind = type(transaction_model)
    names = ["r", "alpha", "a", "b"] if kind is BetaGeoModel else ["r", "alpha", "s", "beta"] \
        if kind is ParetoNBDModel else None
    draws = _per_draw(transaction_model, names) if names else None
    if draws is not None:
        r, alpha = draws["r"], draws["alpha"]
        facts.append("While active, a customer buys on average "
                     + _summary(per_year * r / alpha, prob, lambda v: f"{v:.2f}", uncertainty)
                     + " times a year (model parameters r and alpha).")
        facts.append("Customers differ a lot: half of them buy less often than "
                     + _summary(per_year * stats.gamma.ppf(0.5, r, scale=1 / alpha), prob,
                                lambda v: f"{v:.2f}", uncertainty) + " times a year while active.")
        if kind is BetaGeoModel:
            facts.append("After each purchase, a customer stops buying for good with probability "
                         + _summary(draws["a"] / (draws["a"] + draws["b"]), prob, lambda v: f"{v:.1%}",
                                    uncertainty) + " (parameters a and b).")
            facts.append("In this model a customer can stop only right after a purchase, so customers who never "
                         "bought again count as still active (P(alive) = 1); they are expected to buy little all "
                         "the same.")
        else:
            facts.append("A newly acquired customer is still active a year later with probability "
                         + _summary((draws["beta"] / (draws["beta"] + per_year)) ** draws["s"], prob,
                                    lambda v: f"{v:.1%}", uncertainty) + " (parameters s and beta).")
    if type(spend_model) is GammaGammaModel and not getattr(spend_model, "covariates", None):
        spend = _per_draw(spend_model, ["p", "q", "gamma"])
        if spend is not None:
            q = spend["q"]
            mean_spend = np.where(q > 1, spend["p"] * spend["gamma"] / np.where(q > 1, q - 1, 1.0), np.inf)
            facts.append("An average customer spends "
                         + _summary(mean_spend, prob, lambda v: money(v, currency, 2), uncertainty)
                         + " per purchase (parameters p, q and gamma).")
    if not facts:
        facts.append(f"{transaction_model.display_name}: see the parameter table in the statistician's section.")
    return facts


# --------------------------------------------------------------------------- glossary
def glossary(uncertainty: Uncertainty, *, horizon: int, horizon_unit: str, discount_rate: float, margin: float,
             currency: str | None, facts: list[str]) -> str:
    """The short glossary: CLV, P(alive), the intervals, tiers and stages, and what the model says."""
    period = unit_name(horizon_unit, 1)
    unit = f" in {currency}" if currency else ""
    terms = [
        ("Customer lifetime value (CLV)",
         f"What a customer is expected to bring{unit} over the next {duration(horizon, horizon_unit)}: expected "
         f"purchases times expected spend per purchase, times the margin ({margin:.0%} of revenue), discounted "
         f"at {discount_rate:.1%} per {period}. The value of the customer base is the sum over all customers."),
        ("Still active, P(alive)",
         "Customers rarely say when they stop buying. P(alive) is the model's probability that a customer "
         "has not silently left, from how often and how recently they bought. The number of customers likely "
         "still active is the sum of these probabilities."),
    ]
    if uncertainty.has_intervals:
        terms.append((uncertainty.interval[0].upper() + uncertainty.interval[1:],
                      f"Given the data and the model, the value lies in this range with {uncertainty.prob:.0%} "
                      "probability. It covers what the data leave unknown about customer behaviour, not the "
                      "chance in what each customer will actually do."))
    else:
        terms.append(("Point estimate (no posterior uncertainty)",
                      "The single most likely value of the model's parameters (a MAP fit). It comes with no range: "
                      "how far off it may be is unknown until the model is refitted with NUTS."))
    terms += [
        (f"{uncertainty.prob:.0%} predictive interval",
         "The range in which an actual outcome (say, a customer's number of purchases next quarter) falls with "
         f"{uncertainty.prob:.0%} probability: what the model does not know plus the chance in what customers "
         "do, so it is wider. Used in the holdout check."),
        ("Value tiers",
         "Customers ranked by CLV: the top 10%, the next 10% and the rest. How sure is the probability that "
         "a customer belongs to the tier shown."),
        ("Lifecycle stages",
         "new (first purchase less than 13 weeks ago), active (P(alive) at least 0.7 and a purchase in the last "
         "26 weeks), at risk (in between), lost (P(alive) below 0.3)."),
    ]
    items = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in terms)
    said = "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
    return (f'<dl class="glossary">{items}</dl><h3>What the model says about your customers</h3>'
            f'<ul class="facts">{said}</ul>')
