"""The model comparison of :func:`bayesclv.compare` as a report section, or as a page in the report's style.

The table keeps the library's column names for machines (the CSV); here every
column is a plain label, LOO differences come with their standard errors, and
a paragraph says how to read the table, including why a model has no LOO.
"""

from __future__ import annotations

import html
import math
from importlib import resources
from string import Template

import pandas as pd

from bayesclv.report.tables import Column, words_table

__all__ = ["comparison_page", "comparison_section"]


def _number(value: float, fmt: str) -> str:
    return "-" if pd.isna(value) else format(value, fmt)


def _plus_minus(value: float, se: float, fmt: str = ",.1f") -> str:
    if pd.isna(value):
        return "-"
    return f"{value:{fmt}} ± {se:{fmt}}" if not pd.isna(se) else f"{value:{fmt}}"


def _columns(label: str) -> list[Column]:
    return [
        ("family", lambda r: str(r["family"])),
        ("fitted by", lambda r: str(r["fit_method"]).upper()),
        ("fit time (s), wall / CPU", lambda r: f"{_number(r['fit_seconds'], ',.1f')} / "
                                                f"{_number(r['fit_cpu_seconds'], ',.1f')}"),
        ("LOO rank", lambda r: "-" if pd.isna(r["rank"]) else str(int(r["rank"]) + 1)),
        ("LOO elpd ± se", lambda r: _plus_minus(r["elpd_loo"], r["se"])),
        ("behind the best ± se", lambda r: _plus_minus(r["elpd_diff"], r["se_diff"])),
        ("largest Pareto k", lambda r: _number(r["max_pareto_k"], ".2f")),
        ("holdout MAE per customer", lambda r: _number(r["mae"], ".4f")),
        ("holdout RMSE", lambda r: _number(r["rmse"], ".3f")),
        ("predicted / actual holdout total", lambda r: f"{_number(r['predicted_total'], ',.0f')} / "
                                                        f"{_number(r['actual_total'], ',.0f')} "
                                                        f"({_number(r['total_error_pct'], '+.1f')}%)"),
        (f"customers inside their {label}% predictive interval, by randomised PIT",
         lambda r: _number(r[f"pit_coverage_{label}"], ".1%")),
        ("AUC of P(alive) for buying in the holdout", lambda r: _number(r["auc_p_alive"], ".3f")),
        ("Brier score of P(buys in the holdout)", lambda r: _number(r["brier"], ".4f")),
    ]


def comparison_section(table: pd.DataFrame) -> str:
    """HTML body of a comparison section: the table in words and how to read it.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesclv.compare` (its ``attrs["prob"]`` names the interval).

    Returns
    -------
    str
        HTML (paragraphs, the table, then each model's note as a list), to go inside a ``<section>``.
    """
    prob = float(table.attrs.get("prob", 0.9))
    label = f"{100 * prob:g}"
    reference = table.attrs.get("loo_reference")
    intro = (
        "Each model was scored on the same customers. LOO (leave-one-out cross-validation, PSIS) estimates "
        "how well a model predicts a customer's calibration history it has not seen: higher elpd is better, "
        "and a difference smaller than about twice its standard error does not separate two models. "
        "LOO needs posterior draws (a MAP fit is a point estimate and has none) and the same observations: "
        f"a model fitted to other customers, other values or other columns than {reference!r} gets none, "
        "and its note says why. A Pareto k above 0.7 makes LOO unreliable for that customer.")
    holdout = (
        "The holdout columns score forecasts of the period after calibration: the mean absolute and root "
        "mean squared error of each customer's expected purchases, the predicted against the actual total, "
        f"the share of customers inside their {label}% predictive interval by randomised PIT (a calibrated "
        f"model shows exactly {label}%), how well P(alive) ranks the customers who bought in the holdout "
        "above those who did not (AUC, 0.5 = chance), and the Brier score of the probability of buying in "
        "the holdout (0 = perfect). Fit times are wall-clock and CPU seconds on the machine that fitted.")
    has_holdout = not table["mae"].isna().all()
    shown = words_table(table, _columns(label), "model")
    notes = "".join(f"<li><strong>{html.escape(str(name))}</strong>: {html.escape(str(note))}</li>"
                    for name, note in table["note"].items() if note)
    return (f"<p>{html.escape(intro)}</p>" + (f"<p>{html.escape(holdout)}</p>" if has_holdout else
                                              "<p>No holdout period in the data: holdout columns are empty.</p>")
            + shown + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else ""))


def _unreliable_loo(table: pd.DataFrame) -> str:
    """The headline's caveat when LOO is unreliable for some customers of the ranked models ("" when none).

    The headline is what a reader quotes, so a ranking resting on customers whose Pareto k exceeds 0.7 says
    so there, not only in the notes under the table.
    """
    high = table["n_pareto_k_gt_0_7"].fillna(0) if "n_pareto_k_gt_0_7" in table else pd.Series(dtype=float)
    flagged = high[high > 0]
    if flagged.empty:
        return ""
    best = table.index[0]
    which = (f"{int(high[best]):,} customers of the best model" if high[best] > 0
             else f"some customers of {len(flagged)} other model{'s' if len(flagged) > 1 else ''}")
    return (f" The ranking is provisional: LOO is unreliable for {which} (Pareto k above 0.7; "
            f"{len(flagged)} of {int(table['elpd_loo'].notna().sum())} ranked models "
            f"{'has' if len(flagged) == 1 else 'have'} such customers).")


def comparison_page(table: pd.DataFrame, *, title: str = "Model comparison", subtitle: str = "") -> str:
    """A self-contained HTML document in the report's style holding :func:`comparison_section`.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesclv.compare`.
    title, subtitle : str
        Heading and the line under it (escaped).

    Returns
    -------
    str
        The whole document.
    """
    template = Template(resources.files("bayesclv.report").joinpath("template.html").read_text(encoding="utf-8"))
    n_loo = int(table["elpd_loo"].notna().sum())
    best = table.index[0] if n_loo else None
    lead = (f"Best by LOO: {table.loc[best, 'family']} ({best})." if best is not None and not
            math.isnan(table["elpd_loo"].iloc[0]) else "No LOO: every model is a point estimate or not comparable.")
    if best is not None and "Best by LOO" in lead:
        lead += _unreliable_loo(table)
    if table["mae"].notna().any():
        lowest = table["mae"].idxmin()
        lead += f" Lowest holdout MAE: {lowest} ({table.loc[lowest, 'mae']:.4f} purchases per customer)."
    body = f"<p><strong>{html.escape(lead)}</strong></p>" + comparison_section(table)
    return template.substitute(
        title=html.escape(title), subtitle=html.escape(subtitle), nav='<a href="#comparison">Comparison</a>',
        sections=f'<section id="comparison"><h2>Model comparison</h2>\n{body}\n</section>')
