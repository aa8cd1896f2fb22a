"""Rich HTML views of fitted models and evaluation results, for Jupyter.

Jupyter shows an object through its ``_repr_html_`` method; the classes call
the small functions here with plain tables and dicts, so that the markup lives
in one place and this module knows nothing of models. Numbers are formatted
with four significant digits; every string from the data or the user is escaped.
"""

from __future__ import annotations

import html
import math

import pandas as pd

__all__ = ["evaluation_html", "format_number", "model_html", "table_html"]

_STATUS_COLOURS = {True: "#1a7f37", False: "#cf222e"}


def format_number(value: object) -> str:
    """A table cell: floats to 4 significant digits, NaN as an empty cell, others as text.

    Examples
    --------
    >>> format_number(0.242567), format_number(12345.678), format_number(float("nan")), format_number(3)
    ('0.2426', '1.235e+04', '', '3')
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def table_html(frame: pd.DataFrame, index_name: str | None = None) -> str:
    """An HTML ``<table>`` of ``frame`` with its index as the first column."""
    head = [index_name or frame.index.name or ""] + [str(c) for c in frame.columns]
    rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for label, values in frame.iterrows():
        cells = "".join(f"<td>{format_number(v)}</td>" for v in values.tolist())
        rows.append(f"<tr><th>{format_number(label)}</th>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _status(ok: bool, text: str) -> str:
    return f'<span style="color:{_STATUS_COLOURS[bool(ok)]};font-weight:bold">{html.escape(text)}</span>'


def model_html(name: str, *, priors: dict[str, str] | None = None, summary: pd.DataFrame | None = None,
               diagnostics: dict | None = None, fit_method: str | None = None, customers: int = 0,
               time_unit: str | None = None) -> str:
    """HTML view of a model: its state, parameter table with intervals and its diagnostics.

    An unfitted model (no ``summary``) shows its ``priors`` (name -> text). A
    fitted one shows ``summary`` (the model's parameter table: posterior mean,
    sd, interval named by ``summary.attrs``, R-hat and ESS) and the
    convergence line of ``diagnostics``, marked OK or POOR. A point estimate
    (``summary.attrs["point_estimate"]``, a MAP fit) shows its values alone,
    headed "point estimate (no posterior uncertainty)": no interval, never credible.
    """
    name = html.escape(name)
    if summary is None:
        table = pd.DataFrame({"prior": priors or {}})
        return f"<div><strong>{name}</strong> (not fitted)" + table_html(table, "parameter") + "</div>"
    interval = summary.attrs.get("interval", "")
    if summary.attrs.get("point_estimate"):
        table = summary[["mean"]].rename(columns={"mean": "point estimate"})
    else:
        prob, method = summary.attrs.get("prob", 0.9), summary.attrs.get("method", "eti")
        table = summary.rename(columns={"lower": f"{method}_{prob:.0%}_lower", "upper": f"{method}_{prob:.0%}_upper"})
        table = table.loc[:, table.notna().any()]
    diag = diagnostics or {}
    if "max_r_hat" in diag:
        line = _status(diag["ok"], ("OK: " if diag["ok"] else "POOR: ") + str(diag))
    elif diag.get("method") == "map":
        line = _status(diag.get("ok", True), str(diag))
    else:
        line = html.escape(str(diag) if diag else "no diagnostics")
    header = (f"<strong>{name}</strong> fitted by {html.escape(str(fit_method))} to "
              f"{customers:,} customers, time unit {html.escape(repr(time_unit))}")
    caption = f"<p>Parameters: {html.escape(interval)}</p>" if interval else ""
    return f"<div>{header}{caption}{table_html(table)}<p>Diagnostics: {line}</p></div>"


def evaluation_html(metrics: dict[str, float], calibration: pd.DataFrame, customers: int, horizon: float,
                    time_unit: str | None) -> str:
    """HTML view of a holdout evaluation: its ``metrics`` and the ``calibration`` table."""
    unit = html.escape(str(time_unit))
    return (
        f"<div><strong>Holdout evaluation</strong>: {customers:,} customers, "
        f"horizon {format_number(float(horizon))} ({unit})"
        + table_html(pd.DataFrame({"value": metrics}), "metric")
        + "<p>Calibration by decile of P(active in holdout)</p>"
        + table_html(calibration)
        + "</div>"
    )
