"""Independent references for DERT and the expected residual lifetime of the Pareto/NBD and BG/NBD.

Each quantity is a posterior expectation over the individual-level model, computed by numerical
integration over the latent rates (``tests/reference.log_quad``, QUADPACK), never with the
confluent hypergeometric function or the library's quadrature:

* Pareto/NBD: given ``(lambda, mu)``, a customer alive at ``T`` buys ``lambda e^(-mu u)`` per unit of
  time ``u`` later, so DERT is ``E[1{alive} lambda / (delta + mu)]`` and the residual lifetime
  ``E[1{alive} / mu]``; over the posterior ``E[lambda^(x+1) e^(-lambda T)] E[e^(-mu T) / (delta + mu)] / L``,
  with the ``mu`` expectation integrated over ``log(mu)``.
* BG/NBD: given ``(lambda, p)``, ``sum_j (1-p)^(j-1) E[e^(-delta S_j)]`` over the Gamma(j, lambda)
  purchase times ``S_j``, i.e. ``lambda / (delta + p lambda)``; its posterior expectation is a 2-D
  integral over ``logit(p)`` (outer) and ``log(lambda)`` (inner). The residual lifetime is
  ``E[G / lambda]`` for the geometric number ``G`` of purchases up to dropout.

* (M)BG/CNBD-k: alive at ``T`` with ``i`` phases of the next purchase done (weight
  ``(lambda (T - t_x))^i / i!`` on the alive branch ``lambda^(kx) e^(-lambda T) (1-p)^(x+m)``), purchase
  ``j`` comes after ``j k - i`` Erlang phases, discounted by ``(lambda / (lambda + delta))^(jk-i)`` on
  average, and is made with probability ``(1-p)^(j-1)``: the sum ``q^(k-i) / (1 - (1-p) q^k)``, integrated
  over ``logit(p)`` (outer) and ``log(lambda)`` (inner) numerically; the likelihood is that of
  ``tests/reference_cnbd.py``.

The closed form of Fader, Hardie & Lee (2005, eq. 2) with ``mpmath.hyperu`` (50 digits) is a second
reference for the Pareto/NBD DERT.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy.special import betaln, gammaln

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference import _INF, _log_sigmoid, _vec, bgnbd, log_beta_moment, log_gamma_moment, log_quad, paretonbd
    from .reference_cnbd import _log_components as _cnbd_log_components
    from .reference_cnbd import _log_lambda_integral
except ImportError:  # pragma: no cover
    from reference import _INF, _log_sigmoid, _vec, bgnbd, log_beta_moment, log_gamma_moment, log_quad, paretonbd
    from reference_cnbd import _log_components as _cnbd_log_components
    from reference_cnbd import _log_lambda_integral

__all__ = ["bgnbd_residual", "cnbd_residual", "paretonbd_residual"]


def _log_mu_expectation(T, s, beta, extra):
    """log E[e^(-mu T) exp(extra(mu))] for mu ~ Gamma(s, beta), over y = log(mu)."""
    lead = s * math.log(beta) - math.lgamma(s)

    def h(y):
        return lead + s * y - (beta + T) * math.exp(y) + extra(math.exp(y))

    return log_quad(h, -_INF, _INF, math.log(max(s, 1e-3) / (beta + T)), 1.0 / math.sqrt(max(s, 1e-3)))


def _pn_dert(delta, x, tx, T, r, alpha, s, beta):
    log_num = (log_gamma_moment(x + 1.0, T, r, alpha)
               + _log_mu_expectation(T, s, beta, lambda mu: -math.log(delta + mu)))
    return math.exp(log_num - paretonbd.loglik.scalar(x, tx, T, r, alpha, s, beta))


def _pn_dert_mpmath(delta, x, tx, T, r, alpha, s, beta, dps=50):
    """FHL (2005) eq. 2: alpha^r beta^s delta^(s-1) Gamma(r+x+1) Psi(s, s; delta(beta+T)) /
    [Gamma(r) (alpha+T)^(r+x+1) L], with L from the reference likelihood."""
    import mpmath as mp

    with mp.workdps(dps):
        d, x_, T_, r_, a_, s_, b_ = (mp.mpf(float(v)) for v in (delta, x, T, r, alpha, s, beta))
        log_val = (r_ * mp.log(a_) + s_ * mp.log(b_) + (s_ - 1) * mp.log(d) + mp.loggamma(r_ + x_ + 1)
                   + mp.log(mp.hyperu(s_, s_, d * (b_ + T_))) - mp.loggamma(r_) - (r_ + x_ + 1) * mp.log(a_ + T_))
        return float(mp.exp(log_val - paretonbd.loglik.scalar(x, tx, T, r, alpha, s, beta)))


def _pn_residual_lifetime(x, tx, T, r, alpha, s, beta):
    if s <= 1.0:
        return math.inf
    log_num = log_gamma_moment(x, T, r, alpha) + _log_mu_expectation(T, s, beta, lambda mu: -math.log(mu))
    return math.exp(log_num - paretonbd.loglik.scalar(x, tx, T, r, alpha, s, beta))


def _bg_dert(delta, x, tx, T, r, alpha, a, b):
    """E[(1-p)^x lambda^x e^(-lambda T) lambda / (delta + p lambda)] / L: lambda inside p, both numerically."""
    lead_p = -float(betaln(a, b))
    lead_l = r * math.log(alpha) - float(gammaln(r))
    k = r + x + 1.0

    def inner(p):  # log E_lambda[lambda^(x+1) e^(-lambda T) / (delta + p lambda)]
        def h(y):
            return lead_l + k * y - (alpha + T) * math.exp(y) - math.log(delta + p * math.exp(y))

        return log_quad(h, -_INF, _INF, math.log(k / (alpha + T)), 1.0 / math.sqrt(k))

    def h_p(z):
        lp, lq = _log_sigmoid(z), _log_sigmoid(-z)
        return lead_p + a * lp + (b + x) * lq + inner(math.exp(lp))

    log_num = log_quad(h_p, -_INF, _INF, math.log(a / (b + x)), 1.0)
    return math.exp(log_num - bgnbd.loglik.scalar(x, tx, T, r, alpha, a, b))


def _bg_residual_lifetime(x, tx, T, r, alpha, a, b):
    """E[(1-p)^x lambda^x e^(-lambda T) G / lambda] / L, E[G|p] = 1/p: E[p^-1 (1-p)^x] E[lambda^(x-1) e^(-lambda T)]."""
    if a <= 1.0 or r + x <= 1.0:
        return math.inf
    log_num = log_beta_moment(-1.0, x, a, b) + log_gamma_moment(x - 1.0, T, r, alpha)
    return math.exp(log_num - bgnbd.loglik.scalar(x, tx, T, r, alpha, a, b))


def _cnbd_dert(delta, x, tx, T, r, alpha, a, b, k, m, given_alive):
    """E[1{alive} sum_i phase_i(lambda) q^(k-i) / (1 - (1-p) q^k)] / L (or / P(alive) L given alive)."""
    k = int(k)
    lead_p = -float(betaln(a, b))
    gap = T - tx
    log_gap = math.log(gap) if gap > 0.0 else -_INF
    phases = k if gap > 0.0 else 1  # (lambda gap)^i / i! vanishes for i > 0 when gap = 0

    def inner(log1m_p):  # log E_lambda[lambda^(kx) e^(-lambda T) sum_i (lambda gap)^i/i! q^(k-i) / (1 - (1-p) q^k)]
        def extra(y):
            log_q = -math.log1p(delta * math.exp(-y))
            log_den = math.log(-math.expm1(log1m_p + k * log_q))
            terms = [i * (y + log_gap) - math.lgamma(i + 1.0) + (k - i) * log_q if i else k * log_q
                     for i in range(phases)]
            top = max(terms)
            return top + math.log(sum(math.exp(t - top) for t in terms)) - log_den

        return _log_lambda_integral(extra, x, T, r, alpha, k)

    def h_p(z):
        lp, lq = _log_sigmoid(z), _log_sigmoid(-z)
        return lead_p + a * lp + (b + x + m) * lq + inner(lq)

    log_num = log_quad(h_p, -_INF, _INF, math.log(a / (b + x + m)), 1.0)
    la, ld = _cnbd_log_components(x, tx, T, r, alpha, a, b, k, m)
    return math.exp(log_num - (la if given_alive else float(np.logaddexp(la, ld))))


paretonbd_residual = SimpleNamespace(
    discounted_expected_residual_transactions=_vec(_pn_dert),
    dert_mpmath=_vec(_pn_dert_mpmath),
    expected_residual_lifetime=_vec(_pn_residual_lifetime),
)
bgnbd_residual = SimpleNamespace(
    discounted_expected_residual_transactions=_vec(_bg_dert),
    expected_residual_lifetime=_vec(_bg_residual_lifetime),
)
cnbd_residual = SimpleNamespace(discounted_expected_residual_transactions=_vec(_cnbd_dert))
