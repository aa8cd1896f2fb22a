"""Words for units, durations and money, shared by the figures and the report.

A prediction carries its settings in ``DataArray.attrs`` (``horizon``, ``time_unit``,
``currency`` for CLV); these helpers turn them into the labels a reader sees, e.g.
"CLV over the next 12 months (USD)" or "38.9 weeks".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["duration", "money", "unit_name", "value_label"]

UNIT_NAMES = {"D": ("day", "days"), "W": ("week", "weeks"), "M": ("month", "months"), "Y": ("year", "years")}


def unit_name(unit: str | None, count: float = 2) -> str:
    """``"weeks"`` for ``"W"`` (``"week"`` when ``count`` is 1); unknown units as given, or "time units"."""
    if unit not in UNIT_NAMES:
        return "time units" if unit is None else str(unit)
    return UNIT_NAMES[unit][0 if count == 1 else 1]


def duration(value: float, unit: str | None) -> str:
    """``"12 months"``, ``"1 week"``, ``"38.9 weeks"`` (whole numbers without decimals, else one)."""
    whole = math.isclose(value, round(value), abs_tol=1e-9)
    number = f"{round(value):,d}" if whole else f"{value:,.1f}"
    return f"{number} {unit_name(unit, 1 if whole and round(value) == 1 else 2)}"


def money(value: float, currency: str | None = None, decimals: int = 0) -> str:
    """``"USD 1,234"``, ``"$1,234"`` (a one-character symbol is written before the number), or ``"1,234"``."""
    number = f"{abs(value):,.{decimals}f}"
    sign = "-" if round(value, decimals) < 0 else ""
    if not currency:
        return f"{sign}{number}"
    if len(currency) == 1 and not currency.isalnum():
        return f"{sign}{currency}{number}"
    return f"{sign}{currency} {number}"


def value_label(attrs: Mapping[str, Any], name: str = "CLV") -> str:
    """Axis label of a value from its attrs: ``"CLV over the next 12 months (USD)"``.

    ``horizon`` and ``time_unit`` give the period, ``currency`` the unit; either part is left out
    when the attrs do not hold it.
    """
    label = name
    if "horizon" in attrs and attrs.get("time_unit") in UNIT_NAMES:
        label += f" over the next {duration(float(attrs['horizon']), attrs['time_unit'])}"
    if attrs.get("currency"):
        label += f" ({attrs['currency']})"
    return label

