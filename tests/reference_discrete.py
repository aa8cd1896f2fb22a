"""Independent references for the discrete-time families: BG/BB and shifted-BG.

Written apart from ``bayesclv.formulas`` so that the library can be tested against them.
Every quantity starts from the *individual-level* model and integrates the latent
probabilities numerically (``scipy.integrate.quad`` in logit space, via
``reference.log_quad``), never with the beta-function closed forms of the papers:

* BG/BB (Fader, Hardie & Shang 2010): a customer with transaction probability ``p ~ Beta(alpha,
  beta)`` and dropout probability ``theta ~ Beta(gamma, delta)`` (dropout at the start of an
  opportunity). The likelihood of ``(x, t_x, n)`` is
  ``p^x (1-p)^(n-x) (1-theta)^n + sum_{i=0}^{n-t_x-1} p^x (1-p)^(t_x-x+i) theta (1-theta)^(t_x+i)``;
  each term separates in ``p`` and ``theta``, so its expectation is a product of two
  one-dimensional integrals.
* shifted-BG (Fader & Hardie 2007): the shifted-geometric churn period ``T`` given ``theta`` averaged
  over ``theta ~ Beta(alpha, beta)``: ``P(T = t) = E[theta (1-theta)^(t-1)]``, ``S(t) = E[(1-theta)^t]``;
  sums over future periods (discounted or not) are summed inside the integral.

Functions take NumPy-broadcastable arguments and return float arrays (log-likelihoods on the log
scale); scalar results are memoised.
"""

from __future__ import annotations

import math
from functools import cache
from types import SimpleNamespace

import numpy as np
from scipy.special import betaln

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference import _log1mexp, _loglog1p, _vec, log_beta_moment, log_quad
except ImportError:  # pragma: no cover
    from reference import _log1mexp, _loglog1p, _vec, log_beta_moment, log_quad

__all__ = ["bgbb", "shifted_bg"]


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def _log_beta_expectation(extra, A: float, B: float, a: float, b: float, guess: float) -> float:
    """log E[theta^A' (1-theta)^B' g(theta)] for theta ~ Beta(a, b), by quadrature over z = logit(theta).

    ``A = a + A'`` and ``B = b + B'`` already hold the Beta density's powers and the
    Jacobian ``theta (1 - theta)``; ``extra(log theta, log(1 - theta))`` is ``log g``.
    """
    lead = -float(betaln(a, b))

    def h(z):
        lp, lq = _log_sigmoid(z), _log_sigmoid(-z)
        return lead + A * lp + B * lq + extra(lp, lq)

    return log_quad(h, -math.inf, math.inf, guess, 1.0, refine=True)


# ----------------------------------------------------------------------------------------
# BG/BB
# ----------------------------------------------------------------------------------------
def _bb_terms(x, tx, n, alpha, beta, gamma, delta):
    """log E of the alive term and of each dropout term of the individual likelihood."""
    alive = log_beta_moment(x, n - x, alpha, beta) + log_beta_moment(0.0, n, gamma, delta)
    dead = [log_beta_moment(x, tx - x + i, alpha, beta) + log_beta_moment(1.0, tx + i, gamma, delta)
            for i in range(int(n - tx))]
    return alive, dead


def _bb_loglik(x, tx, n, alpha, beta, gamma, delta):
    alive, dead = _bb_terms(x, tx, n, alpha, beta, gamma, delta)
    return float(np.logaddexp.reduce([alive] + dead))


def _bb_log_history_alive_at(k, x, n, alpha, beta, gamma, delta):
    """log P(history, alive at opportunity n + k)."""
    return log_beta_moment(x, n - x, alpha, beta) + log_beta_moment(0.0, n + k, gamma, delta)


def _bb_palive(x, tx, n, alpha, beta, gamma, delta):
    """P(alive at n + 1 | history)."""
    return math.exp(_bb_log_history_alive_at(1.0, x, n, alpha, beta, gamma, delta)
                    - _bb_loglik(x, tx, n, alpha, beta, gamma, delta))


def _bb_palive_at(t, x, tx, n, alpha, beta, gamma, delta):
    return math.exp(_bb_log_history_alive_at(t, x, n, alpha, beta, gamma, delta)
                    - _bb_loglik(x, tx, n, alpha, beta, gamma, delta))


def _theta_guess(gamma, b):
    return math.log(max(gamma, 1e-3) / b)


def _bb_expected_purchases(t, x, tx, n, alpha, beta, gamma, delta):
    """E[p 1{alive} #(alive among n+1..n+t)]: E[p^(x+1) (1-p)^(n-x)] E[(1-theta)^(n+1) (1 - (1-theta)^t) / theta] / L."""
    if t == 0:
        return 0.0

    def extra(lp, lq):  # (1 - (1-theta)^t) / theta, with -log(1-theta) = log(1 + e^z), z = logit(theta)
        return _log1mexp(math.log(t) + _loglog1p(lp - lq)) - lp

    log_theta = _log_beta_expectation(extra, gamma, delta + n + 1.0, gamma, delta, _theta_guess(gamma, delta + n))
    log_num = log_beta_moment(x + 1.0, n - x, alpha, beta) + log_theta
    return math.exp(log_num - _bb_loglik(x, tx, n, alpha, beta, gamma, delta))


def _bb_expected_purchases_new(t, alpha, beta, gamma, delta):
    return _bb_expected_purchases(t, 0.0, 0.0, 0.0, alpha, beta, gamma, delta)


def _bb_dert(d, x, tx, n, alpha, beta, gamma, delta):
    """sum_{k>=1} E[p 1{alive at n+k}] / (1+d)^k = E[p^(x+1)(1-p)^(n-x)] E[(1-theta)^(n+1) / (d + theta)] / L."""
    def extra(lp, lq):
        return -math.log(d + math.exp(lp))

    log_theta = _log_beta_expectation(extra, gamma, delta + n + 1.0, gamma, delta,
                                      _theta_guess(gamma, delta + n))
    log_num = log_beta_moment(x + 1.0, n - x, alpha, beta) + log_theta
    return math.exp(log_num - _bb_loglik(x, tx, n, alpha, beta, gamma, delta))


def _bb_residual_lifetime(x, tx, n, alpha, beta, gamma, delta):
    """sum_{k>=1} P(alive at n+k | history) = E[p^x (1-p)^(n-x)] E[(1-theta)^(n+1) / theta] / L."""
    if gamma <= 1.0:
        return math.inf
    log_theta = log_beta_moment(-1.0, n + 1.0, gamma, delta)
    log_num = log_beta_moment(x, n - x, alpha, beta) + log_theta
    return math.exp(log_num - _bb_loglik(x, tx, n, alpha, beta, gamma, delta))


def _bb_prob_purchases(k, t, x, tx, n, alpha, beta, gamma, delta):
    """P(X(n, n+t) = k | history): alive at n, then alive at j of the next t opportunities
    (dropout at the start of n+j+1 with prob theta (1-theta)^j, or j = t with (1-theta)^t) and k
    transactions among those j, binomially; inactive before n+1 -> k = 0."""
    k, t = round(k), round(t)
    terms = []
    for j in range(k, t + 1):
        log_choose = math.lgamma(j + 1) - math.lgamma(k + 1) - math.lgamma(j - k + 1)
        log_theta = (log_beta_moment(0.0, n + t, gamma, delta) if j == t
                     else log_beta_moment(1.0, n + j, gamma, delta))
        terms.append(log_choose + log_beta_moment(x + k, n - x + j - k, alpha, beta) + log_theta)
    ll = _bb_loglik(x, tx, n, alpha, beta, gamma, delta)
    prob = math.exp(float(np.logaddexp.reduce(terms)) - ll) if terms else 0.0
    if k == 0:
        _, dead = _bb_terms(x, tx, n, alpha, beta, gamma, delta)
        if dead:
            prob += math.exp(float(np.logaddexp.reduce(dead)) - ll)
    return prob


bgbb = SimpleNamespace(
    loglik=_vec(_bb_loglik),
    probability_alive=_vec(_bb_palive),
    probability_alive_at=_vec(_bb_palive_at),
    expected_purchases=_vec(_bb_expected_purchases),
    expected_purchases_new_customer=_vec(_bb_expected_purchases_new),
    discounted_expected_residual_transactions=_vec(_bb_dert),
    expected_residual_lifetime=_vec(_bb_residual_lifetime),
    probability_of_purchases=_vec(_bb_prob_purchases),
)


# ----------------------------------------------------------------------------------------
# shifted-BG
# ----------------------------------------------------------------------------------------
def _sbg_log_pmf(t, alpha, beta):
    """log P(T = t) = log E[theta (1-theta)^(t-1)]."""
    return log_beta_moment(1.0, t - 1.0, alpha, beta)


def _sbg_log_survival(t, alpha, beta):
    """log S(t) = log E[(1-theta)^t]."""
    return log_beta_moment(0.0, t, alpha, beta)


def _sbg_loglik(periods, churned, alpha, beta):
    return _sbg_log_pmf(periods, alpha, beta) if churned else _sbg_log_survival(periods, alpha, beta)


@cache
def _sbg_survival_by_sum(t, alpha, beta):
    """S(t) = 1 - sum_{k<=t} P(T = k): the geometric pmf summed over the periods (for moderate t)."""
    return 1.0 - math.fsum(math.exp(_sbg_log_pmf(k, alpha, beta)) for k in range(1, int(t) + 1))


def _sbg_survival(t, alpha, beta, periods):
    return math.exp(_sbg_log_survival(periods + t, alpha, beta) - _sbg_log_survival(periods, alpha, beta))


def _sbg_churn(t, alpha, beta, periods):
    return math.exp(_sbg_log_pmf(periods + t, alpha, beta) - _sbg_log_survival(periods, alpha, beta))


def _sbg_residual_lifetime(periods, alpha, beta):
    """E[T - n | T > n] = E[(1-theta)^n / theta] / S(n)."""
    if alpha <= 1.0:
        return math.inf
    return math.exp(log_beta_moment(-1.0, periods, alpha, beta) - _sbg_log_survival(periods, alpha, beta))


def _sbg_derl(d, periods, alpha, beta):
    """sum_{k>=0} S(n+1+k) / S(n) / (1+d)^k = E[(1-theta)^(n+1) / (1 - (1-theta)/(1+d))] / S(n)."""
    def extra(lp, lq):
        return -math.log1p(-math.exp(lq) / (1.0 + d))

    log_num = _log_beta_expectation(extra, alpha, beta + periods + 1.0, alpha, beta, _theta_guess(alpha, beta))
    return math.exp(log_num - _sbg_log_survival(periods, alpha, beta))


def _sbg_del(d, alpha, beta):
    """sum_{t>=0} S(t) / (1+d)^t = E[1 / (1 - (1-theta)/(1+d))]."""
    def extra(lp, lq):
        return -math.log1p(-math.exp(lq) / (1.0 + d))

    return math.exp(_log_beta_expectation(extra, alpha, beta, alpha, beta, _theta_guess(alpha, beta)))


shifted_bg = SimpleNamespace(
    loglik=_vec(_sbg_loglik),
    survival=_vec(_sbg_survival),
    survival_by_sum=_vec(_sbg_survival_by_sum),
    churn_probability=_vec(_sbg_churn),
    expected_residual_lifetime=_vec(_sbg_residual_lifetime),
    discounted_expected_residual_lifetime=_vec(_sbg_derl),
    discounted_expected_lifetime=_vec(_sbg_del),
)
