"""Checks of the arguments users pass: probabilities, interval methods, horizons and counts.

Each rule is written once, with one message, so that every function that takes
a ``prob`` or a horizon fails the same way.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

__all__ = ["INTERVAL_METHODS", "check_count", "check_horizon", "check_interval_method", "check_prob"]

INTERVAL_METHODS = ("eti", "hdi")


def check_prob(prob: Any, name: str = "prob") -> float:
    """``prob`` as a float if it is a number strictly between 0 and 1; ValueError otherwise."""
    if isinstance(prob, bool) or not isinstance(prob, Real) or not 0 < prob < 1:
        raise ValueError(f"{name} must be in (0, 1), got {prob!r}")
    return float(prob)


def check_interval_method(method: Any, name: str = "method") -> str:
    """``method`` if it is an interval kind ArviZ computes (``"eti"`` or ``"hdi"``); ValueError otherwise."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"{name} must be 'eti' or 'hdi', got {method!r}")
    return method


def check_horizon(t: Any) -> None:
    """Every horizon in ``t`` (a number or an array) is finite and >= 0; ValueError otherwise."""
    values = np.asarray(t, dtype=float)
    if not (np.isfinite(values) & (values >= 0)).all():
        raise ValueError(f"horizon t must be finite and >= 0, got {t!r}")


def check_count(value: Any, name: str, unit: str = "") -> int:
    """``value`` as an int if it is a whole number >= 1; ValueError naming ``name`` (and ``unit``) otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive whole number{unit}, got {value!r}")
    return int(value)
