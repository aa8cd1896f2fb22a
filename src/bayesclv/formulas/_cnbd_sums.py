"""Expectations of an alive (M)BG/CNBD-k customer's future, summed over the count of Erlang phases.

Given alive at ``T`` (see :mod:`bayesclv.formulas.cnbd`), a customer has completed
``i`` phases of the next purchase with probability ``w_i`` (:func:`phase_weights`),
``lambda | i ~ Gamma(rho + i, alpha + T)`` and ``p ~ Beta(a, B)``. In the next ``t``
time units ``M ~ NB(rho + i, y)`` phases occur, ``y = kappa / (1 + kappa)`` with
``kappa = t / (alpha + T)``, so that ``N = floor((M + i) / k)`` purchases would be
made without dropout; the customer drops out after the ``G``-th, ``G ~ Geometric(p)``.
With ``beta_n = E[(1-p)^n] = B(a, B+n) / B(a, B)`` and ``C_n = sum_{j<n} beta_j``:

- survival to ``T + t``: ``E[beta_N]``;
- expected purchases in ``(T, T+t]``: ``E[min(N, G)] = E[C_N]``.

Both are sums of positive terms over ``M``, taken from ``M = 0`` upwards with the
NB probabilities and ``beta_n``, ``C_n`` by recurrence (so no cancellation and no
hypergeometric function), until a geometric bound on the rest is below
``_TAIL_EPS`` of the sum. The work grows with the spread of ``M`` (about
``rho kappa + 10 sqrt(rho kappa (1 + kappa))`` terms, ``40 (1 + kappa)`` for small ``rho``);
elements that would need more than ``_LONGEST_SUM`` go to the quadrature of
:mod:`bayesclv.formulas._cnbd_quadrature`, whose cost does not depend on the horizon.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._cnbd_quadrature import given_alive_quadrature

__all__ = ["given_alive_sums", "phase_count_sums", "phase_weights", "sum_terms"]

_TAIL_EPS = 1e-17  # the sum stops when a bound on the rest is below this fraction of it
_RESCALE = 1e280  # the running NB probability is kept below this, its scale in a separate log
_LOG_RESCALE = math.log(_RESCALE)
_LONGEST_SUM = 20_000.0  # estimated terms beyond which the quadrature is cheaper


def phase_weights(rho, z, k: int) -> np.ndarray:
    """``P(i phases of the next purchase completed | alive)``, ``i = 0 .. k-1``, along a new last axis.

    ``w_i`` is proportional to ``(rho)_i z^i / i!`` with ``z = (T - t_x) / (alpha + T)``.
    """
    rho, z = np.broadcast_arrays(np.asarray(rho, dtype=float), np.asarray(z, dtype=float))
    out = np.empty((rho.size, k))
    _phase_weights_flat(np.ascontiguousarray(rho).ravel(), np.ascontiguousarray(z).ravel(), int(k), out)
    return out.reshape(*rho.shape, k)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _phase_weights_flat(rho, z, k, out):  # pragma: no cover - compiled
    """:func:`phase_weights` of flat arrays into the rows of ``out``."""
    for e in range(rho.size):
        _phase_weights_into(rho[e], z[e], k, out[e])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _phase_weights_into(rho, z, k, out):  # pragma: no cover - compiled
    """:func:`phase_weights` of one element into ``out[:k]``."""
    term = total = out[0] = 1.0
    for i in range(1, k):
        term *= (rho + (i - 1.0)) / i * z
        out[i] = term
        total += term
    for i in range(k):
        out[i] /= total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sum_terms(rho, kappa, k):  # pragma: no cover - compiled
    """About the terms :func:`phase_count_sums` takes (the spread of the phase count ``M``)."""
    return kappa * (rho + k + 40.0) + 10.0 * np.sqrt((rho + k) * kappa * (1.0 + kappa))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def phase_count_sums(rho, w, k, kappa, a, B, q):  # pragma: no cover - compiled
    """``(E[C_N], E[beta_N])`` over the phases done ``i`` (weights ``w``); ``q`` is scratch of length ``k``.

    One pass over ``M``: ``q[i]`` holds ``w_i P(M = m)`` for ``M ~ NB(rho+i, y)``, all on
    one scale ``exp(log_scale)``. With ``m = n k + j``, ``N = n`` for ``i < k - j`` and
    ``n + 1`` otherwise.
    """
    if kappa == 0.0:
        return 0.0, 1.0
    y = kappa / (1.0 + kappa)
    log_scale = -rho * math.log1p(kappa)  # P(M = 0) = (1 - y)^(rho + i) = exp(log_scale) (1 - y)^i
    for i in range(k):
        q[i] = w[i] * (1.0 - y) ** i
    beta_n, beta_next = 1.0, B / (a + B)  # beta_n, beta_(n+1)
    c_n, c_next = 0.0, 1.0  # C_n, C_(n+1)
    n = j = m = 0
    total_c = total_b = 0.0
    while True:
        low = high = 0.0
        for i in range(k - j):
            low += q[i]
        for i in range(k - j, k):
            high += q[i]
        total_c += c_n * low + c_next * high
        total_b += beta_n * low + beta_next * high
        step = y / (m + 1.0)
        bound = max((rho + (k - 1.0) + m) * step, y)  # the NB ratios decrease to y for shapes >= 1, else rise to it
        if bound < 1.0:
            geometric = bound / (1.0 - bound)
            mass = low + high
            rest_b = mass * beta_n * geometric
            rest_c = mass * ((c_next + beta_n) * geometric + beta_n * geometric / ((1.0 - bound) * k))
            if rest_b <= _TAIL_EPS * total_b and rest_c <= _TAIL_EPS * total_c:
                break
        largest = 0.0
        for i in range(k):
            q[i] *= (rho + i + m) * step
            largest = max(largest, q[i])
        m += 1
        j += 1
        if j == k:  # the next purchase: n -> n + 1
            j = 0
            n += 1
            c_n, beta_n = c_next, beta_next
            c_next = c_n + beta_n
            beta_next = beta_n * (B + n) / (a + B + n)
        if largest > _RESCALE:
            for i in range(k):
                q[i] /= _RESCALE
            total_c /= _RESCALE
            total_b /= _RESCALE
            log_scale += _LOG_RESCALE
    c = math.exp(math.log(total_c) + log_scale) if total_c > 0.0 else 0.0
    return c, math.exp(math.log(total_b) + log_scale)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _given_alive_flat(rho, z, kappa, a, B, k, skip, purchases, survival):  # pragma: no cover - compiled
    """:func:`given_alive_sums` on flat arrays of equal length, into ``purchases`` and ``survival``.

    Elements with ``skip`` set are left for the caller.
    """
    w, q = np.empty(k), np.empty(k)
    for e in range(rho.size):
        if skip[e]:
            continue
        if not (rho[e] > 0.0 and z[e] >= 0.0 and kappa[e] >= 0.0 and a[e] > 0.0 and B[e] > 0.0
                and math.isfinite(rho[e] + z[e] + kappa[e] + a[e] + B[e])):
            purchases[e] = survival[e] = np.nan
            continue
        _phase_weights_into(rho[e], z[e], k, w)
        purchases[e], survival[e] = phase_count_sums(rho[e], w, k, kappa[e], a[e], B[e], q)


def given_alive_sums(rho, z, kappa, a, B, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases and survival of a customer alive at ``T``, over the next ``t`` time units.

    Parameters
    ----------
    rho, z, kappa, a, B : array_like
        ``r + k x``, ``(T - t_x) / (alpha + T)``, ``t / (alpha + T)``, ``a`` and
        ``b + x + m`` (broadcast together).
    k : int
        Erlang phases per inter-purchase time.

    Returns
    -------
    purchases, survival : numpy.ndarray
        ``E[purchases in (T, T+t] | alive at T]`` and ``P(alive at T+t | alive at T)``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, z, kappa, a, B)))
    rho, z, kappa, a, B = (np.ascontiguousarray(v).ravel() for v in arrays)
    purchases, survival = np.empty(rho.size), np.empty(rho.size)
    with np.errstate(invalid="ignore"):
        spread = sum_terms(rho, kappa, k)
    long = (spread > _LONGEST_SUM) & (k > 1) & np.isfinite(spread)
    _given_alive_flat(rho, z, kappa, a, B, int(k), long, purchases, survival)
    if long.any():
        purchases[long], survival[long] = given_alive_quadrature(
            rho[long], phase_weights(rho[long], z[long], k), kappa[long], a[long], B[long], k)
    return purchases.reshape(arrays[0].shape), survival.reshape(arrays[0].shape)
