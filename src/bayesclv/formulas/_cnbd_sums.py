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
``rho kappa + 10 sqrt(rho kappa (1 + kappa))`` terms, ``40 (1 + kappa)`` for small ``rho``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["given_alive_sums", "phase_weights"]

_TAIL_EPS = 1e-17  # the sum stops when a bound on the rest is below this fraction of it
_RESCALE = 1e280  # the running NB probability is kept below this, its scale in a separate log
_LOG_RESCALE = math.log(_RESCALE)


def phase_weights(rho, z, k: int) -> np.ndarray:
    """``P(i phases of the next purchase completed | alive)``, ``i = 0 .. k-1``, along a new last axis.

    ``w_i`` is proportional to ``(rho)_i z^i / i!`` with ``z = (T - t_x) / (alpha + T)``.
    """
    rho, z = np.broadcast_arrays(np.asarray(rho, dtype=float), np.asarray(z, dtype=float))
    terms = [np.ones(rho.shape)]
    for i in range(1, k):
        terms.append(terms[-1] * ((rho + (i - 1.0)) / i) * z)
    w = np.stack(terms, axis=-1)
    return w / w.sum(axis=-1, keepdims=True)


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
def _one_phase(s, i, k, kappa, a, B):  # pragma: no cover - compiled
    """``(E[C_N], E[beta_N])`` for ``M ~ NB(s, kappa/(1+kappa))``, ``N = floor((M + i) / k)``."""
    if kappa == 0.0:
        return 0.0, 1.0
    y = kappa / (1.0 + kappa)
    log_scale = -s * math.log1p(kappa)  # the NB probability of M = 0 is exp(log_scale) * v
    v = 1.0
    beta, cumulative, n, phase = 1.0, 0.0, 0, i
    total_c = total_b = 0.0
    m = 0
    while True:
        total_c += v * cumulative
        total_b += v * beta
        ratio = (s + m) / (m + 1.0) * y
        bound = max(ratio, y)  # the NB ratios decrease to y for s >= 1 and increase to it for s < 1
        if bound < 1.0:
            geometric = bound / (1.0 - bound)
            rest_b = v * beta * geometric
            rest_c = v * ((cumulative + beta) * geometric + beta * geometric / ((1.0 - bound) * k))
            if rest_b <= _TAIL_EPS * total_b and rest_c <= _TAIL_EPS * total_c:
                break
        v *= ratio
        m += 1
        phase += 1
        if phase == k:  # the (n+1)-th purchase: beta_(n+1) = beta_n (B+n)/(a+B+n)
            phase = 0
            cumulative += beta
            beta *= (B + n) / (a + B + n)
            n += 1
        if v > _RESCALE:
            v /= _RESCALE
            total_c /= _RESCALE
            total_b /= _RESCALE
            log_scale += _LOG_RESCALE
    c = math.exp(math.log(total_c) + log_scale) if total_c > 0.0 else 0.0
    return c, math.exp(math.log(total_b) + log_scale)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _given_alive_flat(rho, z, kappa, a, B, k, purchases, survival):  # pragma: no cover - compiled
    """:func:`given_alive_sums` on flat arrays of equal length, into ``purchases`` and ``survival``."""
    w = np.empty(k)
    for e in range(rho.size):
        if not (rho[e] > 0.0 and z[e] >= 0.0 and kappa[e] >= 0.0 and a[e] > 0.0 and B[e] > 0.0
                and math.isfinite(rho[e] + z[e] + kappa[e] + a[e] + B[e])):
            purchases[e] = survival[e] = np.nan
            continue
        _phase_weights_into(rho[e], z[e], k, w)
        total_c = total_b = 0.0
        for i in range(k):
            if w[i] > 0.0:
                c, b = _one_phase(rho[e] + i, i, k, kappa[e], a[e], B[e])
                total_c += w[i] * c
                total_b += w[i] * b
        purchases[e], survival[e] = total_c, total_b


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
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    purchases, survival = np.empty(flat[0].size), np.empty(flat[0].size)
    _given_alive_flat(*flat, int(k), purchases, survival)
    return purchases.reshape(arrays[0].shape), survival.reshape(arrays[0].shape)
