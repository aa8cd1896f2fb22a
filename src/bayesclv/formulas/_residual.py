"""Infinite-horizon quantities of the Pareto/NBD and BG/NBD: DERT and expected residual lifetime.

DERT (discounted expected residual transactions, Fader, Hardie & Lee 2005, "RFM
and CLV") is ``E[int_T^inf e^(-delta (t - T)) dX(t) | history]`` for a continuous
discount rate ``delta > 0`` per time unit; the expected residual lifetime is
``E[(omega - T)^+ | history]`` for the lifetime ``omega``. Both are P(alive) times
an expectation over the posterior of the rates given alive at ``T``
(``lambda ~ Gamma(r+x, A)``, ``A = alpha + T``):

- **Pareto/NBD** (``mu ~ Gamma(s, beta+T)``, exponential lifetime): DERT given
  alive is ``E[lambda] E[1/(delta + mu)] = (r+x)/A (beta+T) U(1, 2-s, delta(beta+T))``,
  FHL's ``Psi(s, s; delta(beta+T)) (delta(beta+T))^(s-1)`` by Kummer's
  transformation; Tricomi's ``U(1, 2-s, z) = int_0^inf e^(-zu)(1+u)^-s du`` is evaluated by
  :func:`bayesclv.formulas._special.log_tricomi` (a series for small ``z``, a continued fraction
  for large ``z``). The residual
  lifetime is ``E[1/mu] = (beta+T)/(s-1)`` (infinite for ``s <= 1``).
- **BG/NBD** (``p ~ Beta(a, b+x)``): dropout happens at a purchase, so the
  future is the purchase process itself. Purchase ``j`` (after ``T``) is made if
  none of the ``j-1`` before it ended the relationship, probability
  ``(1-p)^(j-1)``, and happens at a Gamma(j, lambda) time, whose discount factor has
  expectation ``(lambda/(lambda+delta))^j``; summing the geometric series,
  DERT given ``(lambda, p)`` is ``lambda / (delta + p lambda)``. Over ``lambda``
  this is ``(rho/p) U(1, 1-rho, delta A / p)`` (``rho = r+x``), and its
  expectation over ``p`` is taken by adaptive quadrature in ``logit(p)``
  (``BETA_DISCOUNT``, a few hundred evaluations of ``U``, which is why ``log_tricomi`` has no
  inner quadrature where ``z = delta A / p`` is small) between two tails where the integrand is linear (near 0:
  ``rho/(delta A) (1 - (rho+1) p/(delta A))``) or constant (near 1) to rounding,
  whose Beta moments are regularised incomplete beta functions.
  The residual lifetime is the time to the purchase that ends it,
  ``E[G / lambda] = (a+b+x-1)/(a-1) A/(rho-1)`` (``G`` geometric; infinite for
  ``a <= 1`` or ``rho <= 1``).

This module holds the expectations given alive; the family modules
(:mod:`~bayesclv.formulas.paretonbd`, :mod:`~bayesclv.formulas.bgnbd`) multiply them by
P(alive) in their ``discounted_expected_residual_transactions`` and
``expected_residual_lifetime``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas._adaptive_quadrature import BETA_DISCOUNT, integrate, workspace
from bayesclv.formulas._distinct import per_distinct
from bayesclv.formulas._special import log_tricomi

__all__ = ["bgnbd_dert_given_alive", "bgnbd_residual_lifetime_given_alive", "paretonbd_dert_given_alive",
           "paretonbd_residual_lifetime_given_alive"]

# BG/NBD: the integrand of the Beta expectation is completely monotone in p, so below
# p_lo = _LINEAR delta A / (rho + 2) its first-order Taylor expansion at 0 is exact to
# (rho+1)(rho+2) p^2 / (delta A)^2 < 1e-16; above 1 - _FLAT / 2 it is constant to 1e-17 (relative
# slope at most 2)
_LINEAR = 1e-8
_FLAT = 1e-17


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_kernel(z, s, out):  # pragma: no cover - compiled
    for i in range(z.size):
        out[i] = log_tricomi(z[i], s[i])


def _log_tricomi(z, s):
    """:func:`log_tricomi` broadcast over arrays."""
    arrays = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(s, dtype=float))
    flat = [np.array(v, dtype=float).ravel() for v in arrays]
    out = np.empty(flat[0].size)
    _tricomi_kernel(*flat, out)
    return out.reshape(arrays[0].shape)


def paretonbd_dert_given_alive(delta, frequency, T, r, alpha, s, beta):
    """Pareto/NBD DERT given alive at ``T``: ``(r+x)/(alpha+T) (beta+T) U(1, 2-s, delta (beta+T))``."""
    def mean_discount(T, delta, s, beta):  # E[1 / (delta + mu)], mu ~ Gamma(s, beta + T)
        return np.add(beta, T) * np.exp(_log_tricomi(np.multiply(delta, np.add(beta, T)), s))

    x = np.asarray(frequency, dtype=float)
    return (r + x) / np.add(alpha, T) * per_distinct(mean_discount, [np.broadcast_to(T, x.shape)], [delta, s, beta])


def paretonbd_residual_lifetime_given_alive(T, s, beta):
    """Pareto/NBD expected residual lifetime given alive at ``T``: ``(beta+T)/(s-1)``, infinite for ``s <= 1``."""
    s = np.asarray(s, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(s > 1.0, np.add(beta, T) / np.where(s > 1.0, s - 1.0, 1.0), np.inf)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_rate_discount(p, rho, delta_a):  # pragma: no cover - compiled
    """``log E[lambda / (delta + p lambda)]``, ``lambda ~ Gamma(rho, A)``: ``log[(rho/p) U(1, 1-rho, delta A/p)]``."""
    return math.log(rho) - math.log(p) + log_tricomi(delta_a / p, rho + 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bgnbd_dert_kernel(rho, a, big_b, delta_a, p_lo, q_hi, window, flat_hi):  # pragma: no cover
    """Per element: the log Beta-weighted integral over ``(p_lo, 1 - q_hi)`` in ``logit(p)`` (not
    normalised) and the log integrand's constant value above it."""
    par = np.empty(5)
    grad = np.empty(5)
    work = workspace()
    for i in range(rho.size):
        par[0], par[1], par[2], par[3], par[4] = a[i], big_b[i], math.log(rho[i]), delta_a[i], rho[i] + 1.0
        lo = math.log(p_lo[i]) - math.log1p(-p_lo[i])
        hi = math.log1p(-q_hi[i]) - math.log(q_hi[i])
        window[i] = integrate(BETA_DISCOUNT, par, lo, hi, False, grad, work)
        flat_hi[i] = _log_rate_discount(1.0 - q_hi[i], rho[i], delta_a[i])


def _bgnbd_rate_discount(rho, a, big_b, delta_a):
    """``E[lambda / (delta + p lambda)]`` for ``lambda ~ Gamma(rho, A)``, ``p ~ Beta(a, B)``, broadcast."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, a, big_b, delta_a)))
    rho, a, big_b, delta_a = (np.array(v, dtype=float).ravel() for v in arrays)
    p_lo = np.minimum(_LINEAR * delta_a / (rho + 2.0), 0.25)
    q_hi = np.full(rho.size, _FLAT / 2.0)
    window, flat_hi = np.empty(rho.size), np.empty(rho.size)
    _bgnbd_dert_kernel(rho, a, big_b, delta_a, p_lo, q_hi, window, flat_hi)
    # below p_lo: g(p) = rho/(delta A) (1 - (rho+1) p/(delta A)), and E[p; p < p_lo] = a/(a+B) I_p_lo(a+1, B)
    low = rho / delta_a * (special.betainc(a, big_b, p_lo)
                           - (rho + 1.0) / delta_a * a / (a + big_b) * special.betainc(a + 1.0, big_b, p_lo))
    with np.errstate(divide="ignore"):
        terms = np.stack([window - special.betaln(a, big_b), np.log(low),
                          flat_hi + np.log(special.betainc(big_b, a, q_hi))])
    return np.exp(special.logsumexp(terms, axis=0)).reshape(arrays[0].shape)


def bgnbd_dert_given_alive(delta, frequency, T, r, alpha, a, b):
    """BG/NBD DERT given alive at ``T``: ``E[lambda / (delta + p lambda)]`` (module docstring)."""
    x = np.asarray(frequency, dtype=float)

    def given_alive(x, T, delta, r, alpha, a, b):
        return _bgnbd_rate_discount(r + x, a, b + x, np.multiply(delta, np.add(alpha, T)))

    return per_distinct(given_alive, [x, np.broadcast_to(T, x.shape)], [delta, r, alpha, a, b])


def bgnbd_residual_lifetime_given_alive(frequency, T, r, alpha, a, b):
    """BG/NBD residual lifetime given alive: ``(a+b+x-1)/(a-1) (alpha+T)/(r+x-1)``, infinite unless ``a, r+x > 1``."""
    x = np.asarray(frequency, dtype=float)
    rho, a_ = np.broadcast_arrays(np.asarray(r + x, dtype=float), np.asarray(a, dtype=float))
    finite = (rho > 1.0) & (a_ > 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(finite, (a_ + b + x - 1.0) / np.where(finite, a_ - 1.0, 1.0)
                        * np.add(alpha, T) / np.where(finite, rho - 1.0, 1.0), np.inf)
