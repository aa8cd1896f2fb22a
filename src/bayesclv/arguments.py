"""Checks of the arguments users pass: probabilities, interval methods, horizons, counts, CLV settings.

Each rule is written once, with one message, so that every function that takes
a ``prob``, a horizon or a count fails the same way. Every check raises
:class:`~bayesclv.errors.ArgumentError` (a ``ValueError``) naming the argument,
what is allowed and what was given. Strings, booleans and non-finite numbers are
never read as numbers: ``margin="0.3"`` or ``horizon=True`` is a mistake, not a value.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from bayesclv.errors import ArgumentError

__all__ = ["INTERVAL_METHODS", "MAX_DISCOUNT_RATE", "check_clv_arguments", "check_horizon", "check_interval_method",
           "check_prob", "check_real", "check_whole"]

INTERVAL_METHODS = ("eti", "hdi")
#: Largest accepted discount rate per period (100%); above it the rate is taken for a percentage.
MAX_DISCOUNT_RATE = 1.0


def check_prob(prob: Any, name: str = "prob") -> float:
    """``prob`` as a float if it is a number strictly between 0 and 1; ArgumentError otherwise."""
    if not _is_real(prob) or not 0 < prob < 1:
        raise ArgumentError(f"must be in (0, 1), got {prob!r}", argument=name)
    return float(prob)


def check_interval_method(method: Any, name: str = "method") -> str:
    """``method`` if it is an interval kind ArviZ computes (``"eti"`` or ``"hdi"``); ArgumentError otherwise."""
    if method not in INTERVAL_METHODS:
        raise ArgumentError(f"must be 'eti' or 'hdi', got {method!r}", argument=name)
    return method


def check_horizon(t: Any) -> None:
    """Every horizon in ``t`` (a number or an array of numbers) is finite and >= 0; ArgumentError otherwise."""
    try:  # numbers only: numpy would read "12" (and a list of strings) as a float
        raw = np.asarray(t)
        values = raw.astype(float) if raw.dtype.kind in "iuf" else np.array([np.nan])
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if not (np.isfinite(values) & (values >= 0)).all():
        raise ArgumentError(f"horizon must be finite and >= 0 (a number in the model's time unit), got {t!r}",
                            argument="t")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Parameters
    ----------
    name : str
        Argument name quoted in the error.
    value : Any
        What the caller passed.
    low, high : float, optional
        Bounds (inclusive unless ``low_open``); ``None`` for none.
    low_open : bool, default False
        Exclude ``low`` itself.
    hint : str, optional
        Appended to the message (e.g. how to convert a percentage).

    Raises
    ------
    ArgumentError
        Not a real number (strings and booleans included), NaN or infinite, or out of range.
    """
    suffix = f"; {hint}" if hint else ""
    if not _is_real(value):
        raise ArgumentError(f"must be a number, got {value!r} ({type(value).__name__}){suffix}", argument=name)
    number = float(value)
    if not math.isfinite(number):
        raise ArgumentError(f"must be a finite number, got {value!r}{suffix}", argument=name)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        if high is None:
            span = f"{'>' if low_open else '>='} {low:g}"
        elif low is None:
            span = f"<= {high:g}"
        else:
            span = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ArgumentError(f"must be {span}, got {value!r}{suffix}", argument=name)
    return number


def check_whole(name: str, value: Any, *, low: int = 1) -> int:
    """``value`` as an int ``>= low``; whole floats (``12.0``) are accepted, booleans and strings are not.

    Raises
    ------
    ArgumentError
        Not a whole number, or below ``low``.
    """
    what = f"a whole number >= {low}"
    if not _is_real(value):
        raise ArgumentError(f"must be {what}, got {value!r} ({type(value).__name__})", argument=name)
    number = float(value)
    if not math.isfinite(number) or number != math.floor(number) or number < low:
        raise ArgumentError(f"must be {what}, got {value!r}", argument=name)
    return int(value)


def check_clv_arguments(*, horizon: Any, discount_rate: Any, margin: Any, acquisition_cost: Any,
                        service_cost_per_period: Any) -> tuple[int, float, float, float, float]:
    """Check the settings of :func:`bayesclv.customer_lifetime_value` before any work.

    The rules:

    - ``horizon``: a whole number of periods, at least 1.
    - ``discount_rate``: per period, in ``(-1, MAX_DISCOUNT_RATE]``. A rate above 100% per
      period is refused as a percentage typed as a number (``10`` for 10%: pass ``0.10``).
    - ``margin``: the share of revenue kept as profit, in ``[0, 1]``. A markup ``k`` on cost
      is the margin ``k / (1 + k)``; a margin above 1 (or below 0) is refused.
    - ``acquisition_cost``, ``service_cost_per_period``: finite and non-negative.

    Returns
    -------
    tuple
        ``(horizon, discount_rate, margin, acquisition_cost, service_cost_per_period)`` as
        ``int`` and ``float``\\ s.

    Raises
    ------
    ArgumentError
        Naming the first argument at fault.
    """
    horizon = check_whole("horizon", horizon)
    rate = check_real("discount_rate", discount_rate, low=-1.0, low_open=True)
    if rate > MAX_DISCOUNT_RATE:
        raise ArgumentError(
            f"{rate:g} per period is above {MAX_DISCOUNT_RATE:.0%}: the rate is a fraction per period, "
            f"not a percentage (for {rate:g}% pass {rate / 100:g})", argument="discount_rate")
    margin = check_real("margin", margin, low=0.0, high=1.0,
                        hint="the margin is the share of revenue kept as profit (30% is 0.3; "
                             "a markup k on cost is the margin k / (1 + k))")
    acquisition = check_real("acquisition_cost", acquisition_cost, low=0.0)
    service = check_real("service_cost_per_period", service_cost_per_period, low=0.0)
    return horizon, rate, margin, acquisition, service
