"""The beta-geometric lifetime shared by the discrete-time families (BG/BB, shifted-BG).

A customer with dropout probability ``theta`` stays at each opportunity (or
renewal) with probability ``1 - theta``; across customers ``theta ~ Beta(a, B)``.
Every predictive quantity of both families is built from the survival moments

    r_k = E[(1 - theta)^k] = B(a, B + k) / B(a, B),    r_{k+1} = r_k (B + k) / (a + B + k),

summed over a horizon or discounted to infinity. The sums are evaluated term by
term with the ratio recurrence (exact up to rounding, no cancellation, also at
``a == 1`` where the closed form of the partial sum divides by ``a - 1``); the
numba loops release the GIL, so prediction threads run them in parallel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["discounted_survival", "discounted_survival_increments", "geometric_draws", "survival_sums",
           "whole_horizons"]

_SERIES_EPS = 1e-17  # relative size of the tail bound at which a discounted series stops


def whole_horizons(t, name: str = "t") -> np.ndarray:
    """``t`` as a float array of whole numbers of opportunities (>= 0); ValueError otherwise."""
    t = np.asarray(t, dtype=float)
    if not (np.all(np.isfinite(t)) and np.all(t >= 0) and np.all(t == np.floor(t))):
        raise ValueError(f"{name} counts opportunities: it must hold whole numbers >= 0, got {t!r}")
    return t


def _flat(*arrays):
    """Broadcast ``arrays`` to one shape; returns the shape and contiguous flat float copies."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in arrays))
    return arrays[0].shape, [np.ascontiguousarray(v).ravel() for v in arrays]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _survival_sums_kernel(t, a, B, out):  # pragma: no cover - compiled
    """``out[i] = sum_{k < t[i]} r_k(a[i], B[i])``."""
    for i in range(t.size):
        term, total = 1.0, 0.0
        for k in range(int(t[i])):
            total += term
            term *= (B[i] + k) / (a[i] + B[i] + k)
            if term == 0.0:  # underflow: every later term is zero too
                break
        out[i] = total


def survival_sums(t, a, B) -> np.ndarray:
    """``sum_{k=0}^{t-1} E[(1 - theta)^k]`` for ``theta ~ Beta(a, B)``, broadcast.

    The expected number of the next ``t`` opportunities at which a customer who
    is there at the first of them is still there. ``t`` holds whole numbers.
    """
    shape, (t, a, B) = _flat(whole_horizons(t), a, B)
    out = np.empty(t.size)
    _survival_sums_kernel(t, a, B, out)
    return out.reshape(shape)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _increments_kernel(ends, factors, a, B, out):  # pragma: no cover - compiled
    """``out[i] = sum_j factors[j] (S_i(ends[j]) - S_i(ends[j-1]))`` with ``S_i`` the survival sums."""
    last = int(ends[ends.size - 1])
    for i in range(a.size):
        term, k, value = 1.0, 0, 0.0
        for j in range(ends.size):
            increment = 0.0
            while k < int(ends[j]):
                increment += term
                term *= (B[i] + k) / (a[i] + B[i] + k)
                k += 1
                if term == 0.0:
                    k = last
            value += factors[j] * increment
        out[i] = value


def discounted_survival_increments(ends, factors, a, B) -> np.ndarray:
    """``sum_j factors[j] (sum_{ends[j-1] <= k < ends[j]} E[(1 - theta)^k])`` for ``theta ~ Beta(a, B)``.

    ``ends`` (whole numbers, increasing, ``ends[-1]`` taken as 0) are horizons
    and ``factors`` their discount factors: one pass over the longest horizon.
    """
    ends = whole_horizons(ends, "ends")
    factors = np.asarray(factors, dtype=float)
    if ends.ndim != 1 or factors.shape != ends.shape or np.any(np.diff(ends) < 0):
        raise ValueError("ends and factors must be 1-d arrays of one length, ends increasing")
    shape, (a, B) = _flat(a, B)
    out = np.empty(a.size)
    if ends.size:
        _increments_kernel(ends, factors, a, B, out)
    else:
        out[:] = 0.0
    return out.reshape(shape)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _discounted_kernel(q, a, B, out):  # pragma: no cover - compiled
    """``out[i] = sum_{j >= 0} r_j q^j``; the terms decrease, so the tail after ``j`` is below ``term / (1 - q)``."""
    for i in range(q.size):
        term, total, j = 1.0, 0.0, 0
        tail = 1.0 / (1.0 - q[i])
        while term * tail > _SERIES_EPS * total:
            total += term
            term *= q[i] * (B[i] + j) / (a[i] + B[i] + j)
            j += 1
        out[i] = total


def discounted_survival(d, a, B) -> np.ndarray:
    """``sum_{j >= 0} E[(1 - theta)^j] / (1 + d)^j`` for ``theta ~ Beta(a, B)``: Gauss' ``2F1(1, B; a + B; 1/(1+d))``.

    ``d > 0`` is the discount rate per opportunity; about ``37 / d`` terms are summed.
    """
    d = np.asarray(d, dtype=float)
    if not np.all(d > 0):
        raise ValueError(f"the discount rate d must be > 0 (the undiscounted sum may diverge), got {d!r}")
    shape, (q, a, B) = _flat(1.0 / (1.0 + d), a, B)
    out = np.empty(q.size)
    _discounted_kernel(q, a, B, out)
    return out.reshape(shape)


def geometric_draws(theta, rng: np.random.Generator) -> np.ndarray:
    """Draws of ``L`` with ``P(L > k) = (1 - theta)^k`` (k = 0, 1, ...): the opportunity of dropout, as floats.

    By inversion, ``L = ceil(log U / log(1 - theta))``, so tiny ``theta`` gives
    huge (``theta == 0``: infinite) lifetimes instead of integer overflow.
    """
    theta = np.asarray(theta, dtype=float)
    u = 1.0 - rng.random(theta.shape)  # in (0, 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # theta -> 0: lifetimes -> inf
        draws = np.ceil(np.log(u) / np.log1p(-theta))
    return np.where(theta > 0.0, np.maximum(draws, 1.0), math.inf)
