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
  transformation; Tricomi's ``U`` is evaluated as ``int_0^inf e^(-zu)(1+u)^-s du``
  (:func:`bayesclv.formulas._special.log_tricomi`). The residual
  lifetime is ``E[1/mu] = (beta+T)/(s-1)`` (infinite for ``s <= 1``).
- **BG/NBD** (``p ~ Beta(a, b+x)``): dropout happens at a purchase, so the
  future is the purchase process itself. Purchase ``j`` (after ``T``) is made if
  none of the ``j-1`` before it ended the relationship, probability
  ``(1-p)^(j-1)``, and happens at a Gamma(j, lambda) time, whose discount factor has
  expectation ``(lambda/(lambda+delta))^j``; summing the geometric series,
  DERT given ``(lambda, p)`` is ``lambda / (delta + p lambda)``, the ``k = 1`` case of
  the (M)BG/CNBD-k's ``q^(k-i) / (1 - c + c p)``; its expectation over ``lambda`` and
  ``p`` is the product Gauss-Legendre rule of :mod:`bayesclv.formulas._cnbd_residual`
  (which agrees with an adaptive rule over ``p`` of the closed-form ``lambda``
  expectation ``(rho/p) U(1, 1-rho, delta A/p)`` to 1e-12, at a quarter of its cost).
  The residual lifetime is the time to the purchase that ends it,
  ``E[G / lambda] = (a+b+x-1)/(a-1) A/(rho-1)`` (``G`` geometric; infinite for
  ``a <= 1`` or ``rho <= 1``).

This module holds the expectations given alive; the family modules
(:mod:`~bayesclv.formulas.paretonbd`, :mod:`~bayesclv.formulas.bgnbd`) multiply them by
P(alive) in their ``discounted_expected_residual_transactions`` and
``expected_residual_lifetime``.
"""

from __future__ import annotations

import numba
import numpy as np

from bayesclv.formulas._cnbd_residual import cnbd_dert_quadrature
from bayesclv.formulas._distinct import per_distinct
from bayesclv.formulas._special import log_tricomi

__all__ = ["bgnbd_dert_given_alive", "bgnbd_residual_lifetime_given_alive", "cnbd_dert_given_alive",
           "paretonbd_dert_given_alive", "paretonbd_residual_lifetime_given_alive"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_kernel(z, s, out):  # pragma: no cover - compiled
    for i in range(z.size):
        out[i] = log_tricomi(z[i], s[i])


def _log_tricomi(z, s):
    """:func:`log_tricomi` broadcast over arrays."""
    arrays = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(s, dtype=float))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
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


def bgnbd_dert_given_alive(delta, frequency, T, r, alpha, a, b):
    """BG/NBD DERT given alive at ``T``: ``E[lambda / (delta + p lambda)]`` (module docstring)."""
    x = np.asarray(frequency, dtype=float)

    def given_alive(x, T, delta, r, alpha, a, b):
        big_a = np.add(alpha, T)
        return cnbd_dert_quadrature(r + x, 0.0, np.multiply(delta, big_a), a, b + x, 1)

    return per_distinct(given_alive, [x, np.broadcast_to(T, x.shape)], [delta, r, alpha, a, b])


def bgnbd_residual_lifetime_given_alive(frequency, T, r, alpha, a, b):
    """BG/NBD residual lifetime given alive: ``(a+b+x-1)/(a-1) (alpha+T)/(r+x-1)``, infinite unless ``a, r+x > 1``."""
    x = np.asarray(frequency, dtype=float)
    rho, a_ = np.broadcast_arrays(np.asarray(r + x, dtype=float), np.asarray(a, dtype=float))
    finite = (rho > 1.0) & (a_ > 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(finite, (a_ + b + x - 1.0) / np.where(finite, a_ - 1.0, 1.0)
                        * np.add(alpha, T) / np.where(finite, rho - 1.0, 1.0), np.inf)


def cnbd_dert_given_alive(delta, frequency, recency, T, r, alpha, a, b, k, modified):
    """(M)BG/CNBD-k DERT given alive at ``T``.

    Given alive, an MBG customer is a BG one with one more purchase survived (``b + 1``
    for ``b``), so ``k = 1`` is :func:`bgnbd_dert_given_alive` with ``b + m``; for
    ``k > 1`` the phases done since the last purchase make it depend on ``T - t_x`` too
    (:mod:`bayesclv.formulas._cnbd_residual`).
    """
    m = 1.0 if modified else 0.0
    x = np.asarray(frequency, dtype=float)
    if k == 1:  # the phases done do not matter: share the rows of one (x, T)
        return bgnbd_dert_given_alive(delta, x, T, r, alpha, a, np.add(b, m))

    def given_alive(x, t_x, T, delta, r, alpha, a, b):
        big_a = np.add(alpha, T)
        return cnbd_dert_quadrature(r + k * x, (T - t_x) / big_a, np.multiply(delta, big_a), a, b + x + m, k)

    return per_distinct(given_alive, [x, np.broadcast_to(recency, x.shape), np.broadcast_to(T, x.shape)],
                        [delta, r, alpha, a, b])
