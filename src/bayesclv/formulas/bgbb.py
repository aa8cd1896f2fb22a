"""BG/BB model (Fader, Hardie & Shang 2010, "Customer-base analysis in a discrete-time noncontractual setting").

Customers are acquired at opportunity 0 and observed at ``n`` further discrete
transaction opportunities (``periods``). An alive customer transacts at an
opportunity with probability ``p ~ Beta(alpha, beta)`` and becomes inactive at
the start of an opportunity with probability ``theta ~ Beta(gamma, delta)``.
A history is ``(x, t_x, n)`` = (frequency, recency, periods): ``x`` repeat
transactions, the last at opportunity ``t_x`` (0 if ``x == 0``).

"Alive" in this module means alive at the next opportunity ``n + 1``, the first
of any forecast (equation (11) of the paper): ``probability_alive`` is that
probability, ``given_alive=True`` conditions on it, and given it ``p`` and
``theta`` are independent, ``Beta(alpha + x, beta + n - x)`` and
``Beta(gamma, delta + n + 1)``, so the future depends on ``(x, n)`` only.
Horizons ``t`` count future opportunities (whole numbers).

The log-likelihood is written once against the ``xp`` namespace (PyTensor by
default, NumPy with ``xp=NP``); predictive quantities are NumPy functions that
broadcast over posterior draws and customers.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas._beta_geometric import (
    discounted_survival,
    discounted_survival_increments,
    geometric_draws,
    survival_sums,
    whole_horizons,
)
from bayesclv.formulas._ops import NP, PT
from bayesclv.formulas._summed import digamma, lbeta, read_only_tables, summed_loglik_function, weighted_rows

__all__ = [
    "PARAMETERS",
    "discounted_expected_purchases",
    "discounted_expected_residual_transactions",
    "expected_purchases",
    "expected_purchases_new_customer",
    "expected_residual_lifetime",
    "loglik",
    "loglik_tables",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
    "simulate_future_purchases",
    "simulate_population",
    "summed_loglik",
]

PARAMETERS = ("alpha", "beta", "gamma", "delta")

_MASKED = 1e4  # masked likelihood terms sit this far below the alive term: exp(-1e4) is 0 in float64


def _betaln(a, b, xp):
    return xp.gammaln(a) + xp.gammaln(b) - xp.gammaln(a + b)


def _trailing(v, xp):
    """``v`` with a new last axis (for the terms of a finite sum)."""
    return xp.asarray(v)[..., None]


def _dead_terms_count(frequency, recency, periods):
    """Largest ``n - t_x``: the number of terms of the dropout sum of the likelihood.

    Data containers (PyTensor shared variables, e.g. ``pm.Data``) are read by their value.
    """
    def values(v):
        return np.asarray(v.get_value() if hasattr(v, "get_value") else v, dtype=float)

    return int(np.max(values(periods) - values(recency), initial=0.0))


def _log_terms(x, t_x, n, alpha, beta, gamma, delta, xp, n_terms):
    """log of the likelihood's terms times ``B(alpha, beta) B(gamma, delta)``: alive, and dropout (last axis).

    Alive through opportunity ``n``: ``B(alpha+x, beta+n-x) B(gamma, delta+n)``;
    dropout at the start of opportunity ``t_x + i + 1`` (``i = 0 .. n-t_x-1``):
    ``B(alpha+x, beta+t_x-x+i) B(gamma+1, delta+t_x+i)``. Terms with ``i >= n - t_x``
    are set ``_MASKED`` below the alive term, so that they add exactly nothing.
    """
    alive = _betaln(alpha + x, beta + (n - x), xp) + _betaln(gamma, delta + n, xp)
    i = np.arange(n_terms, dtype=float)
    x_, t_, n_ = (_trailing(v, xp) for v in (x, t_x, n))
    a_, b_, g_, d_ = (_trailing(v, xp) for v in (alpha, beta, gamma, delta))
    dead = _betaln(a_ + x_, b_ + (t_ - x_ + i), xp) + _betaln(g_ + 1.0, d_ + t_ + i, xp)
    dead = xp.where((n_ - t_) > i, dead, _trailing(alive, xp) - _MASKED)
    return alive, dead


def _logaddexp(a, b, xp):
    big = xp.maximum(a, b)
    return big + xp.log1p(xp.exp(-xp.abs(a - b)))


def loglik(frequency, recency, periods, alpha, beta, gamma, delta, xp=PT, n_terms=None):
    """Per-customer BG/BB log-likelihood (equation (5) of Fader, Hardie & Shang 2010).

    Parameters
    ----------
    frequency, recency, periods : array_like
        Repeat transactions ``x``, opportunity of the last one ``t_x`` (0 if
        none) and number of opportunities ``n``.
    alpha, beta, gamma, delta : array_like or TensorVariable
        Population parameters (all positive).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.
    n_terms : int, optional
        Length of the dropout sum, at least ``max(periods - recency)``; taken
        from the data when they are arrays (give it for symbolic data).

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(alpha, beta, gamma, delta | x, t_x, n)``.

    Notes
    -----
    The likelihood is a sum of the alive term and ``n - t_x`` dropout terms,
    each a product of two beta functions; it is evaluated as a log-sum-exp of
    log-beta functions, so no term under- or overflows. With ``xp=NP`` the
    same sum runs in the compiled row loop of :func:`summed_loglik`, element by
    element (``n_terms`` is not needed).
    """
    if xp is NP:  # the compiled loop of the summed kernel: no draws x rows x dropout-terms temporaries
        return _loglik_values(frequency, recency, periods, alpha, beta, gamma, delta)
    if n_terms is None:
        n_terms = _dead_terms_count(frequency, recency, periods)
    x, t_x, n = (xp.asarray(v) for v in (frequency, recency, periods))
    alive, dead = _log_terms(x, t_x, n, alpha, beta, gamma, delta, xp, n_terms)
    total = alive if n_terms == 0 else _logaddexp(alive, xp.logsumexp(dead, axis=-1), xp)
    return total - _betaln(alpha, beta, xp) - _betaln(gamma, delta, xp)


@read_only_tables
def loglik_tables(frequency, recency, periods, weight, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik`: distinct ``(group, x, t_x, n)`` rows with their total weights.

    Returns
    -------
    tuple of numpy.ndarray
        Group code, ``x``, ``t_x``, ``n`` and total weight of each distinct
        row, and the total weight of each group.
    """
    g, n, t_x, x, row_weight, group_weight = weighted_rows(weight, group, periods, recency, frequency)
    return g, x, t_x, n, row_weight, group_weight


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row_terms(a, b, c, d, x, t, n, gradient):  # pragma: no cover - compiled
    """log-sum-exp of the alive and dropout terms of one history (:func:`_log_terms`) and its gradient.

    Returns ``(value, d/d alpha, d/d beta, d/d gamma, d/d delta)`` (zeros without
    ``gradient``): the softmax-weighted gradients of the terms, digamma differences.
    Along the dropout sum every argument grows by one per term, so ``lgamma`` and
    ``digamma`` advance by ``log(y)`` and ``1/y``; the running sums are rescaled
    whenever a term exceeds the largest so far.
    """
    lg_ax = math.lgamma(a + x)
    top = (lg_ax + math.lgamma(b + (n - x)) - math.lgamma(a + b + n)
           + math.lgamma(c) + math.lgamma(d + n) - math.lgamma(c + d + n))
    s, ga, gb, gc, gd = 1.0, 0.0, 0.0, 0.0, 0.0
    u, v, sab, scd = b + (t - x), d + t, a + b + t, c + d + 1.0 + t
    lg_u, lg_v, lg_sab, lg_scd = math.lgamma(u), math.lgamma(v), math.lgamma(sab), math.lgamma(scd)
    lg_c1 = math.lgamma(c + 1.0)
    dg_ax = dg_u = dg_v = dg_sab = dg_scd = dg_c1 = 0.0
    if gradient:
        dg_ax, dg_abn, dg_cdn = digamma(a + x), digamma(a + b + n), digamma(c + d + n)
        ga, gb = dg_ax - dg_abn, digamma(b + (n - x)) - dg_abn
        gc, gd = digamma(c) - dg_cdn, digamma(d + n) - dg_cdn
        dg_u, dg_v, dg_sab, dg_scd, dg_c1 = digamma(u), digamma(v), digamma(sab), digamma(scd), digamma(c + 1.0)
    for _ in range(int(n - t)):
        e = lg_ax + lg_u - lg_sab + lg_c1 + lg_v - lg_scd
        if e > top:
            scale = math.exp(top - e)
            s, ga, gb, gc, gd = s * scale, ga * scale, gb * scale, gc * scale, gd * scale
            top = e
        wt = math.exp(e - top)
        s += wt
        lg_u += math.log(u)
        lg_v += math.log(v)
        lg_sab += math.log(sab)
        lg_scd += math.log(scd)
        if gradient:
            ga += wt * (dg_ax - dg_sab)
            gb += wt * (dg_u - dg_sab)
            gc += wt * (dg_c1 - dg_scd)
            gd += wt * (dg_v - dg_scd)
            dg_u += 1.0 / u
            dg_v += 1.0 / v
            dg_sab += 1.0 / sab
            dg_scd += 1.0 / scd
        u, v, sab, scd = u + 1.0, v + 1.0, sab + 1.0, scd + 1.0
    return top + math.log(s), ga / s, gb / s, gc / s, gd / s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(alpha, beta, gamma, delta, row_group, row_x, row_t, row_n, row_weight,
                          group_weight):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(4, n_groups)``.

    Per group, ``-n_g [lbeta(alpha, beta) + lbeta(gamma, delta)]``; per row, its
    weight times :func:`_row_terms`.
    """
    grad = np.zeros((4, alpha.size))
    total = 0.0
    for g in range(alpha.size):
        a, b, c, d, n_g = alpha[g], beta[g], gamma[g], delta[g], group_weight[g]
        dab, dcd = digamma(a + b), digamma(c + d)
        total -= n_g * (lbeta(a, b) + lbeta(c, d))
        grad[0, g] -= n_g * (digamma(a) - dab)
        grad[1, g] -= n_g * (digamma(b) - dab)
        grad[2, g] -= n_g * (digamma(c) - dcd)
        grad[3, g] -= n_g * (digamma(d) - dcd)
    for r in range(row_x.size):
        g, w = row_group[r], row_weight[r]
        value, ga, gb, gc, gd = _row_terms(alpha[g], beta[g], gamma[g], delta[g], row_x[r], row_t[r], row_n[r], True)
        total += w * value
        grad[0, g] += w * ga
        grad[1, g] += w * gb
        grad[2, g] += w * gc
        grad[3, g] += w * gd
    return total, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _loglik_kernel(x, t, n, alpha, beta, gamma, delta, out):  # pragma: no cover - compiled
    for i in range(x.size):
        value = _row_terms(alpha[i], beta[i], gamma[i], delta[i], x[i], t[i], n[i], False)[0]
        out[i] = value - lbeta(alpha[i], beta[i]) - lbeta(gamma[i], delta[i])


def _loglik_values(frequency, recency, periods, alpha, beta, gamma, delta):
    """:func:`loglik` (NumPy) element by element in one compiled loop: no temporaries over the dropout terms.

    The predictions use it; draws x histories x ``n - t_x`` arrays would not fit for long histories.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                   (frequency, recency, periods, alpha, beta, gamma, delta)))
    out = np.empty(arrays[0].shape)
    _loglik_kernel(*(np.ascontiguousarray(v).ravel() for v in arrays), out.reshape(-1))
    return out


summed_loglik = summed_loglik_function(_summed_loglik_kernel, PARAMETERS, "BG/BB")


# ---------------------------------------------------------------------------------------
# predictive quantities
# ---------------------------------------------------------------------------------------
def _log_alive_term(frequency, periods, alpha, beta, gamma, delta, ahead):
    """log P(history, alive at opportunity ``n + ahead``), NumPy."""
    x, n = np.asarray(frequency, dtype=float), np.asarray(periods, dtype=float)
    return (special.betaln(alpha + x, beta + (n - x)) - special.betaln(alpha, beta)
            + special.betaln(gamma, delta + n + ahead) - special.betaln(gamma, delta))


def probability_alive(frequency, recency, periods, alpha, beta, gamma, delta):
    """P(alive at the next opportunity ``n + 1`` | history); equation (11) of FHS (2010)."""
    ll = _loglik_values(frequency, recency, periods, alpha, beta, gamma, delta)
    return np.exp(_log_alive_term(frequency, periods, alpha, beta, gamma, delta, 1.0) - ll)


def probability_alive_at(t, frequency, recency, periods, alpha, beta, gamma, delta, given_alive=False):
    """P(alive at opportunity ``n + t`` | history), ``t = 0, 1, ...``; ``t = 1`` is :func:`probability_alive`.

    With ``given_alive=True``, conditional on being alive at ``n + 1``:
    ``E[(1 - theta)^(t-1)]`` for ``theta ~ Beta(gamma, delta + n + 1)`` (1 at ``t = 0``).
    """
    t = whole_horizons(t)
    n = np.asarray(periods, dtype=float)
    if given_alive:
        ahead = np.maximum(t, 1.0)
        return np.exp(special.betaln(gamma, delta + n + ahead) - special.betaln(gamma, delta + n + 1.0))
    ll = _loglik_values(frequency, recency, periods, alpha, beta, gamma, delta)
    return np.exp(_log_alive_term(frequency, periods, alpha, beta, gamma, delta, t) - ll)


def _purchase_probability(frequency, periods, alpha, beta):
    """E[p | history] = (alpha + x) / (alpha + beta + n)."""
    x, n = np.asarray(frequency, dtype=float), np.asarray(periods, dtype=float)
    return (alpha + x) / (alpha + beta + n)


def expected_purchases(t, frequency, recency, periods, alpha, beta, gamma, delta, given_alive=False):
    """E[X(n, n + t) | history]: expected transactions at the next ``t`` opportunities; equation (13) of FHS (2010).

    Given alive at ``n + 1``: ``E[p] sum_{k<t} E[(1 - theta)^k]``, ``p ~ Beta(alpha+x,
    beta+n-x)``, ``theta ~ Beta(gamma, delta+n+1)``; times :func:`probability_alive`
    unless ``given_alive``.
    """
    n = np.asarray(periods, dtype=float)
    value = _purchase_probability(frequency, n, alpha, beta) * survival_sums(t, gamma, delta + n + 1.0)
    if given_alive:
        return value
    return value * probability_alive(frequency, recency, periods, alpha, beta, gamma, delta)


def discounted_expected_purchases(ends, factors, frequency, recency, periods, alpha, beta, gamma, delta,
                                  given_alive=False):
    """``sum_k factors[k] (E[X(n, n+ends[k])] - E[X(n, n+ends[k-1])])``: present value of the expected transactions.

    ``ends`` are increasing whole numbers of opportunities; one pass over the
    longest horizon per element. ``given_alive`` as in :func:`expected_purchases`.
    """
    n = np.asarray(periods, dtype=float)
    value = (_purchase_probability(frequency, n, alpha, beta)
             * discounted_survival_increments(ends, factors, gamma, delta + n + 1.0))
    if given_alive:
        return value
    return value * probability_alive(frequency, recency, periods, alpha, beta, gamma, delta)


def discounted_expected_residual_transactions(d, frequency, recency, periods, alpha, beta, gamma, delta,
                                              given_alive=False):
    """DERT: ``sum_{k >= 1} P(transaction at n + k | history) / (1 + d)^k``; equation (14) of FHS (2010).

    ``d > 0`` is the discount rate per opportunity (the paper's discrete
    discounting, the first future opportunity discounted once). Given alive at
    ``n + 1`` it is ``E[p] E[sum_{j>=0} (1-theta)^j / (1+d)^j] / (1 + d)``, the paper's
    ``2F1(1, delta+n+1; gamma+delta+n+1; 1/(1+d))`` summed term by term.
    """
    n = np.asarray(periods, dtype=float)
    d = np.asarray(d, dtype=float)
    value = (_purchase_probability(frequency, n, alpha, beta) * discounted_survival(d, gamma, delta + n + 1.0)
             / (1.0 + d))
    if given_alive:
        return value
    return value * probability_alive(frequency, recency, periods, alpha, beta, gamma, delta)


def expected_residual_lifetime(frequency, recency, periods, alpha, beta, gamma, delta, given_alive=False):
    """Expected number of future opportunities ``n + 1, n + 2, ...`` at which the customer is alive.

    Given alive at ``n + 1``: ``E[1/theta] = (gamma + delta + n) / (gamma - 1)`` for
    ``theta ~ Beta(gamma, delta + n + 1)``, infinite for ``gamma <= 1``.
    """
    n = np.asarray(periods, dtype=float)
    gamma_ = np.asarray(gamma, dtype=float)
    with np.errstate(divide="ignore"):
        value = np.where(gamma_ > 1.0, (gamma_ + delta + n) / (gamma_ - 1.0), np.inf)
    if given_alive:
        return value
    alive = probability_alive(frequency, recency, periods, alpha, beta, gamma, delta)
    with np.errstate(invalid="ignore"):  # P(alive) can underflow to 0; the expectation stays infinite
        return np.where(np.isinf(value), np.inf, value * alive)


def expected_purchases_new_customer(t, alpha, beta, gamma, delta):
    """E[X(t)]: expected repeat transactions at the first ``t`` opportunities after acquisition; equation (8) of FHS.

    The customer is alive at opportunity 0: ``E[p] E[1 - theta] sum_{k<t} E[(1-theta)^k]``
    with ``theta ~ Beta(gamma, delta + 1)`` in the sum.
    """
    delta_ = np.asarray(delta, dtype=float)
    return alpha / (alpha + beta) * delta_ / (gamma + delta_) * survival_sums(t, gamma, delta_ + 1.0)


def probability_of_purchases(k, t, frequency, recency, periods, alpha, beta, gamma, delta):
    """P(X(n, n + t) = k | history) for whole ``k >= 0``; equation (12) of FHS (2010).

    Given ``p`` and ``theta`` and alive at ``n``, the customer is alive at ``j``
    of the next ``t`` opportunities (dropout at the start of ``n + j + 1``, or
    ``j = t``) and transacts at ``k`` of them, binomially. Customers inactive
    before ``n + 1`` contribute to ``k = 0``.
    """
    k = whole_horizons(k, "k")
    t = whole_horizons(t)
    x, n = np.asarray(frequency, dtype=float), np.asarray(periods, dtype=float)
    ll = _loglik_values(frequency, recency, periods, alpha, beta, gamma, delta)
    base = -special.betaln(alpha, beta) - special.betaln(gamma, delta) - ll
    # alive at all t opportunities, k transactions among them
    stay = (_log_choose(t, k) + special.betaln(alpha + x + k, beta + (n - x + t - k))
            + special.betaln(gamma, delta + n + t))
    # alive at j = k .. t-1 of them, then dropout
    j = np.arange(int(np.max(t, initial=0.0)), dtype=float)
    k_, t_ = k[..., None], t[..., None]
    x_, n_ = x[..., None], n[..., None]
    a_, b_, g_, d_ = (np.asarray(v, dtype=float)[..., None] for v in (alpha, beta, gamma, delta))
    leave = (_log_choose(j, k_) + special.betaln(a_ + x_ + k_, b_ + n_ - x_ + np.maximum(j - k_, 0.0))
             + special.betaln(g_ + 1.0, d_ + n_ + j))
    leave = np.where((j >= k_) & (j < t_), leave, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.logaddexp(np.where(k <= t, stay, -np.inf), special.logsumexp(leave, axis=-1))
    value = np.exp(terms + base)
    inactive = -np.expm1(_log_alive_term(frequency, periods, alpha, beta, gamma, delta, 0.0) - ll)
    return np.where(k == 0, value + inactive, value)


def _log_choose(n, k):
    """log binomial coefficient, 0 for ``k > n`` (masked by the callers)."""
    return special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(np.maximum(n - k, 0.0) + 1.0)


# ---------------------------------------------------------------------------------------
# simulators
# ---------------------------------------------------------------------------------------
def _binomial(rng, trials, p):
    """Binomial draws with float trial counts (0 where there are none)."""
    return rng.binomial(np.asarray(trials, dtype=np.int64), np.clip(p, 0.0, 1.0)).astype(float)


def simulate_population(periods, alpha, beta, gamma, delta, rng=None):
    """Simulate BG/BB histories of new customers observed for ``periods`` opportunities.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``periods`` and the latent ``p``, ``theta``
        and ``alive`` (alive at opportunity ``n + 1``, as in :func:`probability_alive`).

    Notes
    -----
    The customer is alive at ``m = min(L - 1, n)`` opportunities, ``L`` the
    opportunity of dropout. Counting back from ``m``, the trailing opportunities
    without a transaction are geometric; given the last transaction at
    ``m - G``, the earlier ``m - G - 1`` opportunities are independent
    Bernoulli(p) trials.
    """
    rng = np.random.default_rng(rng)
    n = whole_horizons(periods, "periods")
    shape = np.broadcast_shapes(n.shape, *(np.shape(v) for v in (alpha, beta, gamma, delta)))
    p = rng.beta(alpha, beta, size=shape)
    theta = rng.beta(gamma, delta, size=shape)
    n = np.broadcast_to(n, shape)
    dropout = geometric_draws(theta, rng)
    m = np.minimum(dropout - 1.0, n)
    quiet = geometric_draws(p, rng) - 1.0  # opportunities without a transaction after the last one
    bought = quiet < m
    recency = np.where(bought, m - quiet, 0.0)
    frequency = np.where(bought, 1.0 + _binomial(rng, np.where(bought, recency - 1.0, 0.0), p), 0.0)
    return {"frequency": frequency, "recency": recency, "periods": n.astype(float), "p": p, "theta": theta,
            "alive": dropout > n + 1.0}


def simulate_future_purchases(t, frequency, recency, periods, alpha, beta, gamma, delta, rng=None):
    """Transactions at the next ``t`` opportunities, drawn from the posterior given each history.

    Alive at ``n + 1`` with :func:`probability_alive`; then ``p ~ Beta(alpha+x,
    beta+n-x)``, ``theta ~ Beta(gamma, delta+n+1)``, alive at ``min(L, t)`` of the
    ``t`` opportunities (``P(L > k) = (1 - theta)^k``), Binomial(that, p) transactions.
    """
    rng = np.random.default_rng(rng)
    t = whole_horizons(t)
    x, n = np.asarray(frequency, dtype=float), np.asarray(periods, dtype=float)
    alive_prob = probability_alive(x, recency, n, alpha, beta, gamma, delta)
    shape = np.broadcast_shapes(np.shape(alive_prob), t.shape)
    alive = rng.random(shape) < alive_prob
    p = rng.beta(np.broadcast_to(alpha + x, shape), np.broadcast_to(beta + (n - x), shape))
    theta = rng.beta(np.broadcast_to(gamma, shape), np.broadcast_to(delta + n + 1.0, shape))
    opportunities = np.minimum(geometric_draws(theta, rng), t)
    return np.where(alive, _binomial(rng, np.where(alive, opportunities, 0.0), p), 0.0)
