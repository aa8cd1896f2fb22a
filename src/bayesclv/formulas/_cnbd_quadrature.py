"""(M)BG/CNBD-k expectations given alive by quadrature over the dropout probability, for long horizons.

Where the phase count ``M`` spreads over very many values (``t`` far beyond
``alpha + T``), the sums of :mod:`bayesclv.formulas._cnbd_sums` need about
``rho kappa`` terms. Here ``lambda`` is integrated in closed form for each ``p`` and
``p`` numerically. With ``q = 1 - p``, ``omega = q^(1/k)``, ``c_l = omega zeta_l``
(``zeta_l`` the ``k``-th roots of unity) the roots-of-unity filter and the NB
generating function give

``E[q^N | i] = p / (k q) sum_l c_l^(i+1) (1 + kappa (1 - c_l))^-(rho+i) / (1 - c_l)``,

so that, mixed over the phases done ``i``, ``S(p) = E[q^N] = e^(L0) + p T2`` and
``(1 - S(p)) / p = -expm1(L0) / p - T2`` with ``L0`` the log of the ``l = 0`` term
(computed from ``log1p``/``expm1`` so that nothing cancels as ``p -> 0``) and ``T2``
the other terms. Survival is ``E_p[S(p)]``, expected purchases ``E_p[(1 - S(p))/p]``.

- ``p <= 1/2`` (where ``1/q <= 2``): composite Gauss-Legendre in ``z = logit(p)``;
  below ``p_lo``, where ``S`` and ``(1-S)/p`` are constant to ``1e-13``, the Beta
  mass is taken by the incomplete beta function.
- ``p > 1/2``, where the ``l`` terms would cancel to ``q^((k-1)/k)``: the series
  ``sum_n P(N = n) E[q^n; q < 1/2]`` and ``sum_n P(N > n) E[q^n; q < 1/2]``
  (partial Beta moments, ``2^-n`` small after 64 terms).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesclv.formulas._ops import gauss_legendre

__all__ = ["count_probabilities", "given_alive_quadrature"]

_FLAT = 1e-13  # relative change of the integrand's p-factor accepted in the lower tail
_BETA_TAIL = 1e-18  # Beta mass left out beyond the window
_PANEL_WIDTH = 0.5  # most width of a Gauss-Legendre panel in logit(p)
_MIN_PANELS = 48
_NODES = 8
_SERIES_TERMS = 64  # terms of the series over p > 1/2 (each below 2^-n of the first)


def _integrand_factors(z, rho, w, kappa, k):
    """``(S(p), (1 - S(p))/p)`` at the points ``z = logit(p) <= 0`` (see the module docstring)."""
    log_p, log_q = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    p = np.exp(log_p)
    log_omega = log_q / k
    d0 = np.log1p(kappa * -np.expm1(log_omega))
    log_u0 = log_omega - d0
    i = np.arange(1, k)
    deficit = (w[1:] * -np.expm1(np.multiply.outer(log_u0, i))).sum(axis=-1)  # 1 - sum_i w_i u0^i
    mean_inverse = np.expm1(np.multiply.outer(-log_omega, np.arange(k))).mean(axis=-1)  # mean_j omega^-j - 1
    l0 = np.log1p(mean_inverse) - rho * d0 + np.log1p(-deficit)
    zeta = np.exp(2j * np.pi * np.arange(1, k) / k)
    c = np.exp(log_omega)[:, None] * zeta
    dl = 1.0 + kappa * (1.0 - c)
    u = c / dl
    horner = np.full(c.shape, w[-1], dtype=complex)
    for wi in w[-2::-1]:
        horner = horner * u + wi
    rest = (c * np.exp(-rho * np.log(dl)) * horner / (1.0 - c)).sum(axis=-1).real / (k * np.exp(log_q))
    return np.exp(l0) + p * rest, -np.expm1(l0) / p - rest


def _lower_half(rho, w, kappa, a, B, k):
    """``E_p[S; p <= 1/2]`` and ``E_p[(1-S)/p; p <= 1/2]`` for one element."""
    p_flat = _FLAT / (1.0 + kappa * (rho + k + 1.0))
    p_lo = max(p_flat, special.betaincinv(a, B, _BETA_TAIL))
    z_lo = np.log(p_lo) - np.log1p(-p_lo) if p_lo < 0.5 else 0.0
    p_hi = min(special.betaincinv(a, B, 1.0 - _BETA_TAIL), 0.5)
    z_hi = np.log(p_hi) - np.log1p(-p_hi)
    survival = purchases = 0.0
    if p_flat >= p_lo:  # the Beta mass below p_lo is not negligible: constant factor there
        s, e = _integrand_factors(np.array([z_lo]), rho, w, kappa, k)
        mass = special.betainc(a, B, p_lo)
        survival, purchases = s[0] * mass, e[0] * mass
    if z_hi > z_lo:
        panels = max(_MIN_PANELS, int(np.ceil((z_hi - z_lo) / _PANEL_WIDTH)))
        nodes, weights = gauss_legendre(_NODES)
        width = (z_hi - z_lo) / panels
        z = z_lo + width * (np.arange(panels)[:, None] + nodes).ravel()
        density = np.exp(-a * np.logaddexp(0.0, -z) - B * np.logaddexp(0.0, z) - special.betaln(a, B))
        s, e = _integrand_factors(z, rho, w, kappa, k)
        weights = width * np.tile(weights, panels) * density
        survival += weights @ s
        purchases += weights @ e
    return survival, purchases


def _log_nb_pmf(count, shape, log_y, log1m_y):
    """log NB pmf ``Gamma(shape+count)/(Gamma(shape) count!) (1-y)^shape y^count`` (``count >= 0``)."""
    with np.errstate(invalid="ignore"):
        power = np.where(count > 0, count * log_y, 0.0)
    return (special.gammaln(shape + count) - special.gammaln(shape) - special.gammaln(count + 1.0)
            + shape * log1m_y + power)


def count_probabilities(n, rho, w, kappa, k):
    """``P(N = n)`` and ``P(N > n)`` for a customer alive at ``T`` (purchases in ``(T, T+t]`` without dropout).

    ``N = floor((M + i)/k)``, ``M ~ NB(rho + i, kappa/(1+kappa))`` and ``i`` drawn with
    weights ``w`` (last axis): ``P(N > n)`` is a regularised incomplete beta function,
    ``P(N = n)`` a sum of ``k`` NB probabilities (``n k - i <= M <= n k - i + k - 1``).
    """
    with np.errstate(divide="ignore"):
        log_y = np.log(kappa) - np.log1p(kappa)
    log1m_y = -np.log1p(kappa)
    exactly = beyond = 0.0
    for i in range(k):
        shape = rho + i
        beyond = beyond + w[..., i] * special.betainc((n + 1.0) * k - i, shape, np.exp(log_y))
        for j in range(k):
            count = n * k - i + j
            pmf = np.exp(_log_nb_pmf(np.maximum(count, 0.0), shape, log_y, log1m_y))
            exactly = exactly + w[..., i] * np.where(count >= 0, pmf, 0.0)
    return exactly, beyond


def _upper_half(rho, w, kappa, a, B, k):
    """``E_p[S; p > 1/2]`` and ``E_p[(1-S)/p; p > 1/2]`` for one element, by the series in ``q^n``."""
    n = np.arange(_SERIES_TERMS, dtype=float)
    moments = np.exp(special.betaln(a, B + n) - special.betaln(a, B)) * special.betainc(B + n, a, 0.5)
    exactly, beyond = count_probabilities(n, rho, w, kappa, k)
    return exactly @ moments, beyond @ moments


def given_alive_quadrature(rho, w, kappa, a, B, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases and survival given alive (as :func:`~bayesclv.formulas._cnbd_sums.given_alive_sums`).

    Parameters
    ----------
    rho, kappa, a, B : numpy.ndarray
        One entry per element (1-d), as in ``given_alive_sums``.
    w : numpy.ndarray
        Phase weights, shape ``(elements, k)``.
    k : int
        Erlang phases per inter-purchase time (at least 2).

    Returns
    -------
    purchases, survival : numpy.ndarray
    """
    purchases, survival = np.empty(rho.size), np.empty(rho.size)
    with np.errstate(divide="ignore", under="ignore", over="ignore", invalid="ignore"):
        for e in range(rho.size):
            args = (rho[e], w[e], kappa[e], a[e], B[e], k)
            low_s, low_e = _lower_half(*args)
            high_s, high_e = _upper_half(*args)
            survival[e], purchases[e] = low_s + high_s, low_e + high_e
    return purchases, survival
