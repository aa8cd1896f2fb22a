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

The closed form of Fader, Hardie & Lee (2005, eq. 2) with ``mpmath.hyperu`` (50 digits) is a second
reference for the Pareto/NBD DERT.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from scipy.special import betaln, gammaln

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference import _INF, _log_sigmoid, _vec, bgnbd, log_beta_moment, log_gamma_moment, log_quad, paretonbd
except ImportError:  # pragma: no cover
    from reference import _INF, _log_sigmoid, _vec, bgnbd, log_beta_moment, log_gamma_moment, log_quad, paretonbd

__all__ = ["bgnbd_residual", "paretonbd_residual"]


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


paretonbd_residual = SimpleNamespace(
    discounted_expected_residual_transactions=_vec(_pn_dert),
    dert_mpmath=_vec(_pn_dert_mpmath),
    expected_residual_lifetime=_vec(_pn_residual_lifetime),
)
bgnbd_residual = SimpleNamespace(
    discounted_expected_residual_transactions=_vec(_bg_dert),
    expected_residual_lifetime=_vec(_bg_residual_lifetime),
)
