"""Independent reference implementations of the (M)BG/CNBD-k (and so MBG/NBD) quantities.

Written apart from ``bayesclv.formulas.cnbd``. Everything is derived from the
*individual-level* model and integrated numerically over the purchase rate
``lambda ~ Gamma(r, alpha)`` (``log_quad`` over ``log lambda``, ~1e-12 relative), never
through the negative-binomial mixtures and phase sums of the library:

* inter-purchase times are Erlang-k with rate ``lambda``; after each repeat purchase
  (and, for the MBG variant ``m = 1``, after the first one) the customer drops out
  with probability ``p ~ Beta(a, b)``;
* individual likelihood of ``(litt, x, t_x, T)``:
  ``e^{(k-1) litt} / ((k-1)!)^x lambda^{kx} e^{-lambda t_x} [(1-p)^{x+m} Q(k, lambda (T - t_x))
  + [x > 0 or m] p (1-p)^{x+m-1}]`` with ``Q(k, u) = P(Poisson(u) <= k-1)`` the Erlang
  survival function;
* given ``lambda``, ``p`` and alive at ``T`` with ``i`` phases of the next purchase done
  (probability proportional to ``(lambda (T - t_x))^i / i!``), the customer makes
  ``N = floor((M + i)/k)`` purchases in ``(T, T+t]`` before dropout, ``M ~ Poisson(lambda t)``,
  and drops out after purchase ``G ~ Geometric(p)``.

Expectations over ``p`` are Beta moments: numerical (``log_beta_moment``) where a few are
needed, the Beta-function ratio inside the sums over ``n`` (Poisson tails from SciPy); the
expectation over ``lambda`` is always numerical. Functions broadcast NumPy arguments;
scalar results are memoised.
"""

from __future__ import annotations

import math
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
from scipy import special

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference import _vec, log_beta_moment, log_quad
except ImportError:  # pragma: no cover
    from reference import _vec, log_beta_moment, log_quad

__all__ = ["bgcnbd", "mbgcnbd"]

_INF = math.inf
_MOST_TERMS = 20_000  # purchase counts summed per lambda; beyond, a bound (see _poisson_log_sum)


def _log_phase_terms(y, delta, k):
    """log of ``(lambda delta)^i / i!``, ``lambda = e^y``, for ``i = 0 .. k-1`` (only ``i = 0`` when ``delta = 0``)."""
    i = np.arange(k, dtype=float)
    if delta == 0.0:
        return np.where(i == 0, 0.0, -_INF)
    return i * (y + math.log(delta)) - special.gammaln(i + 1.0)


def _log_lambda_integral(inner, x, T, r, alpha, k):
    """log E_lambda[lambda^{kx} e^{-lambda T} exp(inner(log lambda))], lambda ~ Gamma(r, alpha), over y = log lambda."""
    lead = r * math.log(alpha) - math.lgamma(r)
    shape = r + k * x

    def h(y):
        lam = math.exp(y)
        return lead + shape * y - (alpha + T) * lam + inner(y)

    guess = math.log((shape + 0.5) / (alpha + T))
    return log_quad(h, -_INF, _INF, guess, 1.0 / math.sqrt(shape + 1.0), refine=True)


def _poisson_log_sum(y, t, k, delta, terms):
    """log sum_i (lam delta)^i/i! sum_n coef(n) f(n, i) for the per-(n, i) Poisson terms of ``terms``.

    ``terms(y, mu, n, i)`` returns, for ``log lambda = y``, ``mu = lambda t``, purchase
    counts ``n = 1 .. n_max`` (a vector) and phases done ``i``, the vector of
    ``E_p[...] P(...)`` products.
    """
    mu = math.exp(y) * t
    n_max = int((mu + 40.0 * math.sqrt(mu) + 60.0) / k) + 3
    log_phase = _log_phase_terms(y, delta, k)
    if n_max > _MOST_TERMS:
        # far in the tail of the posterior of lambda (log_quad probes it to bracket the peak): every
        # summand is at most 1, so log(n_max) bounds the sum; callers check that the peak is not here
        return float(special.logsumexp(log_phase)) + math.log(n_max)
    n = np.arange(1, n_max, dtype=float)
    parts = [log_phase[i] + math.log(max(terms(y, mu, n, i).sum(), 1e-320)) for i in range(k)
             if log_phase[i] > -_INF]
    return float(special.logsumexp(parts))


# ---------------------------------------------------------------------------------- likelihood
@lru_cache(maxsize=None)
def _log_components(x, tx, T, r, alpha, a, b, k, m):
    """log of the alive and the dropped-out part of the likelihood, without the data constant."""
    delta = T - tx

    def alive_inner(y):  # e^{lambda delta} Q(k, lambda delta): the phase terms
        return float(special.logsumexp(_log_phase_terms(y, delta, k)))

    la = log_beta_moment(0.0, x + m, a, b) + _log_lambda_integral(alive_inner, x, T, r, alpha, k)
    if x > 0 or m:
        ld = log_beta_moment(1.0, x + m - 1.0, a, b) + _log_lambda_integral(
            lambda y: 0.0, x, tx, r, alpha, k)
    else:
        ld = -_INF
    return la, ld


def _loglik(litt, x, tx, T, r, alpha, a, b, k, m):
    la, ld = _log_components(x, tx, T, r, alpha, a, b, int(k), m)
    return (k - 1.0) * litt - x * math.lgamma(k) + float(np.logaddexp(la, ld))


def _palive(x, tx, T, r, alpha, a, b, k, m):
    la, ld = _log_components(x, tx, T, r, alpha, a, b, int(k), m)
    return math.exp(la - float(np.logaddexp(la, ld)))


# ------------------------------------------------------------------------------- predictions
def _log_beta_ratio(shift, a, b):
    """log B(a, b + shift) / B(a, b) for a vector of shifts."""
    return special.betaln(a, b + shift) - special.betaln(a, b)


def _conditional(t, x, tx, T, r, alpha, a, b, k, m, quantity):
    """E[quantity | history] for ``quantity`` in {"purchases", "survival"}."""
    k = int(k)
    if t == 0:
        return 0.0 if quantity == "purchases" else _palive(x, tx, T, r, alpha, a, b, k, m)
    delta = T - tx

    def terms(y, mu, n, i):
        if quantity == "purchases":  # sum_n E(1-p)^{x+m+n-1} P(N >= n) = E[min(N, G)] on the alive branch
            return np.exp(_log_beta_ratio(x + m + n - 1.0, a, b)) * special.pdtrc(n * k - i - 1.0, mu)
        # survival: sum_n E(1-p)^{x+m+n} P(N = n), n = 0 included
        counts = np.arange(0.0, n[-1] * k + k)
        pmf = np.exp(counts * (y + math.log(t)) - mu - special.gammaln(counts + 1.0))
        per_n = np.bincount(((counts + i) // k).astype(int), weights=pmf)
        return np.exp(_log_beta_ratio(x + m + np.arange(per_n.size), a, b)) * per_n

    shape = r + k * x + k
    if (shape + 40.0 * math.sqrt(shape) + 40.0) / (alpha + T) * t / k > _MOST_TERMS:
        raise ValueError("reference: the posterior of lambda t reaches the bounded region; use a shorter horizon")
    log_num = _log_lambda_integral(
        lambda y: _poisson_log_sum(y, t, k, delta, terms), x, T, r, alpha, k)
    la, ld = _log_components(x, tx, T, r, alpha, a, b, k, m)
    return math.exp(log_num - float(np.logaddexp(la, ld)))


def _expected_purchases(t, x, tx, T, r, alpha, a, b, k, m):
    return _conditional(t, x, tx, T, r, alpha, a, b, k, m, "purchases")


def _palive_at(t, x, tx, T, r, alpha, a, b, k, m):
    return _conditional(t, x, tx, T, r, alpha, a, b, k, m, "survival")


def _expected_purchases_new(t, r, alpha, a, b, k, m):
    """A new customer is the history x = t_x = T = 0 (likelihood 1: alive or, for m = 1, dropped at once)."""
    return _conditional(t, 0.0, 0.0, 0.0, r, alpha, a, b, k, m, "purchases")


def _prob_purchases(n, t, x, tx, T, r, alpha, a, b, k, m):
    """P(X(T, T+t] = n | history): on the alive branch ``P(N=n) (1-p)^n + P(N>=n) p (1-p)^{n-1}``,
    p-moments by numerical integration; customers dead at T make 0."""
    k, n = int(k), int(round(n))
    delta = T - tx
    la, ld = _log_components(x, tx, T, r, alpha, a, b, k, m)
    total = float(np.logaddexp(la, ld))

    def branch(y, at_least):
        mu = math.exp(y) * t
        parts = []
        for i, lp in enumerate(_log_phase_terms(y, delta, k)):
            if lp == -_INF:
                continue
            first = n * k - i  # N >= n  <=>  M >= first
            if at_least:
                prob = special.pdtrc(first - 1.0, mu) if first > 0 else 1.0
            else:  # N = n  <=>  first <= M <= first + k - 1
                counts = np.arange(max(first, 0), first + k, dtype=float)
                prob = np.exp(counts * (y + math.log(t)) - mu - special.gammaln(counts + 1.0)).sum()
            parts.append(lp + math.log(max(prob, 1e-320)))
        return float(special.logsumexp(parts))

    terms = [log_beta_moment(0.0, x + m + n, a, b)
             + _log_lambda_integral(lambda y: branch(y, False), x, T, r, alpha, k)]
    if n > 0:
        terms.append(log_beta_moment(1.0, x + m + n - 1.0, a, b)
                     + _log_lambda_integral(lambda y: branch(y, True), x, T, r, alpha, k))
    prob = math.exp(float(np.logaddexp.reduce(terms)) - total)
    if n == 0:
        prob += 1.0 - math.exp(la - total)
    return prob


def _variant(m):
    """The reference functions of one variant (``m = 0``: BG/CNBD-k, ``m = 1``: MBG/CNBD-k); ``k`` comes last."""
    def bind(fun):
        return _vec(lambda *args: fun(*args, m))

    return SimpleNamespace(
        loglik=bind(_loglik),
        probability_alive=bind(_palive),
        expected_purchases=bind(_expected_purchases),
        expected_purchases_new_customer=bind(_expected_purchases_new),
        probability_alive_at=bind(_palive_at),
        probability_of_purchases=bind(_prob_purchases),
    )


bgcnbd = _variant(0)
mbgcnbd = _variant(1)
