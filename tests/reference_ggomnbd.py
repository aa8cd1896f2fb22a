"""Independent reference for the Gamma-Gompertz/NBD model: numerical integration of the individual-level model.

Customer ``i`` buys at Poisson rate ``lambda ~ Gamma(r, rate alpha)`` while alive; its
Gompertz lifetime ``tau`` has ``P(tau > t | eta) = exp(-eta (e^(bt) - 1))`` with
``eta ~ Gamma(s, rate beta)``. Integrating ``eta`` (the Laplace transform of a gamma
density) gives the population survival ``S(t) = (beta / (beta + e^(bt) - 1))^s`` and density
``f(t) = b s beta^s e^(bt) (beta + e^(bt) - 1)^-(s+1)``; ``lambda`` is integrated the same
way (``E[lambda^k e^(-c lambda)]`` in closed form). Every remaining integral -- over the time
of death, over the future -- is computed with QUADPACK in the original time variable
(``tests/reference.log_quad`` on pieces between the local extrema of the integrand, found on
a grid), never with the library's substitution, bounds or conditional-on-alive forms.

Quantities conditional on a history are ratios of such expectations to the likelihood:
e.g. ``E[X(T, T+t) | data] = E[lambda^(x+1) e^(-lambda T) int_0^t 1{tau > T+u} du] / L``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference import _vec, log_quad
except ImportError:  # pragma: no cover
    from reference import _vec, log_quad

__all__ = ["ggomnbd", "log_quad_pieces"]

_GRID = 1500


def _log_beta_expm1(beta, bt):
    """log(beta + e^bt - 1)."""
    if bt > 30.0:
        return bt + math.log1p((beta - 1.0) * math.exp(-bt))
    return math.log(beta + math.expm1(bt))


def _log_survival(t, b, s, beta):
    """log S(t) of the gamma-Gompertz lifetime."""
    return s * (math.log(beta) - _log_beta_expm1(beta, b * t))


def _log_lifetime_density(t, b, s, beta):
    """log f(t) = log[b s beta^s e^(bt) (beta + e^(bt) - 1)^-(s+1)]."""
    return math.log(b * s) + s * math.log(beta) + b * t - (s + 1.0) * _log_beta_expm1(beta, b * t)


def _log_gamma_moment(k, c, r, alpha):
    """log E[lambda^k e^(-c lambda)] for lambda ~ Gamma(r, alpha), in closed form."""
    return math.lgamma(r + k) - math.lgamma(r) + r * math.log(alpha) - (r + k) * math.log(alpha + c)


def log_quad_pieces(h, lo, hi):
    """log int_lo^hi exp(h(u)) du for a smooth h with a few local maxima.

    ``h`` is evaluated on a grid (linear and geometric from ``lo``; for ``hi = inf`` geometric
    up to a point where it has fallen far); the interval is cut at the grid's local minima and
    each piece integrated by :func:`log_quad` around its highest grid point.
    """
    if not hi > lo:
        return -math.inf
    end = hi
    if math.isinf(hi):
        end = lo + 1.0
        while h(end) > h(lo) - 200.0 and end < lo + 1e12:
            end = lo + 2.0 * (end - lo)
    span = end - lo
    grid = np.unique(np.concatenate([lo + np.linspace(0.0, span, _GRID),
                                     lo + np.geomspace(span * 1e-14, span, _GRID)]))
    values = np.array([h(u) for u in grid])
    cuts = [0] + [i for i in range(1, grid.size - 1)
                  if values[i] <= values[i - 1] and values[i] < values[i + 1]] + [grid.size - 1]
    total = -math.inf
    for i0, i1 in zip(cuts[:-1], cuts[1:]):
        a, c = grid[i0], (grid[i1] if i1 < grid.size - 1 else hi)
        k = i0 + int(np.argmax(values[i0:i1 + 1]))
        total = float(np.logaddexp(total, log_quad(h, a, c, grid[k], max(grid[min(k + 1, i1)] - grid[k], 1e-300))))
    return total


def _log_components(x, tx, T, r, alpha, b, s, beta):
    """log of the alive-at-T and died-in-(t_x, T] parts of the likelihood."""
    la = _log_gamma_moment(x, T, r, alpha) + _log_survival(T, b, s, beta)
    if not T > tx:
        return la, -math.inf

    def h(tau):  # E[lambda^x e^(-lambda tau)] f(tau)
        return _log_gamma_moment(x, tau, r, alpha) + _log_lifetime_density(tau, b, s, beta)

    return la, log_quad_pieces(h, tx, T)


def _loglik(x, tx, T, r, alpha, b, s, beta):
    return float(np.logaddexp(*_log_components(x, tx, T, r, alpha, b, s, beta)))


def _palive(x, tx, T, r, alpha, b, s, beta):
    la, ld = _log_components(x, tx, T, r, alpha, b, s, beta)
    return math.exp(la - float(np.logaddexp(la, ld)))


def _log_future_integral(t, T, b, s, beta, delta=0.0):
    """log int_0^t e^(-delta u) S(T + u) du (t may be inf)."""
    return log_quad_pieces(lambda u: -delta * u + _log_survival(T + u, b, s, beta), 0.0, t)


def _expected_purchases(t, x, tx, T, r, alpha, b, s, beta):
    """E[X(T, T+t) | data] = E[lambda^(x+1) e^(-lambda T)] int_0^t S(T+u) du / L."""
    if t == 0:
        return 0.0
    log_num = _log_gamma_moment(x + 1.0, T, r, alpha) + _log_future_integral(t, T, b, s, beta)
    return math.exp(log_num - _loglik(x, tx, T, r, alpha, b, s, beta))


def _dert(delta, x, tx, T, r, alpha, b, s, beta):
    """DERT = E[lambda^(x+1) e^(-lambda T)] int_0^inf e^(-delta u) S(T+u) du / L."""
    log_num = _log_gamma_moment(x + 1.0, T, r, alpha) + _log_future_integral(math.inf, T, b, s, beta, delta)
    return math.exp(log_num - _loglik(x, tx, T, r, alpha, b, s, beta))


def _residual_lifetime(x, tx, T, r, alpha, b, s, beta):
    """E[(tau - T)^+ | data] = E[lambda^x e^(-lambda T)] int_0^inf S(T+u) du / L."""
    log_num = _log_gamma_moment(x, T, r, alpha) + _log_future_integral(math.inf, T, b, s, beta)
    return math.exp(log_num - _loglik(x, tx, T, r, alpha, b, s, beta))


def _expected_purchases_new(t, r, alpha, b, s, beta):
    """E[X(t)] = E[lambda] int_0^t S(u) du."""
    if t == 0:
        return 0.0
    return r / alpha * math.exp(_log_future_integral(t, 0.0, b, s, beta))


def _palive_at(t, x, tx, T, r, alpha, b, s, beta):
    """P(alive at T+t | data) = E[lambda^x e^(-lambda T)] S(T+t) / L."""
    log_num = _log_gamma_moment(x, T, r, alpha) + _log_survival(T + t, b, s, beta)
    return math.exp(log_num - _loglik(x, tx, T, r, alpha, b, s, beta))


def _prob_purchases(n, t, x, tx, T, r, alpha, b, s, beta):
    """P(X(T, T+t) = n | data): alive through T+t with Poisson(lambda t) purchases, or dead at T+w (w < t)
    after Poisson(lambda w) purchases; customers dead at T make none."""
    n = int(round(n))
    ll = _loglik(x, tx, T, r, alpha, b, s, beta)
    log_fact = math.lgamma(n + 1.0)
    through = (_log_gamma_moment(x + n, T + t, r, alpha) + (n * math.log(t) if n else 0.0) - log_fact
               + _log_survival(T + t, b, s, beta))

    def h(w):
        if n and w == 0.0:
            return -math.inf
        return (_log_gamma_moment(x + n, T + w, r, alpha) + (n * math.log(w) if n else 0.0) - log_fact
                + _log_lifetime_density(T + w, b, s, beta))

    prob = math.exp(float(np.logaddexp(through, log_quad_pieces(h, 0.0, t))) - ll)
    if n == 0:
        prob += 1.0 - _palive(x, tx, T, r, alpha, b, s, beta)
    return prob


ggomnbd = SimpleNamespace(
    loglik=_vec(_loglik),
    probability_alive=_vec(_palive),
    expected_purchases=_vec(_expected_purchases),
    expected_purchases_new_customer=_vec(_expected_purchases_new),
    probability_alive_at=_vec(_palive_at),
    probability_of_purchases=_vec(_prob_purchases),
    discounted_expected_residual_transactions=_vec(_dert),
    expected_residual_lifetime=_vec(_residual_lifetime),
)
