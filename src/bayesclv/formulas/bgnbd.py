"""BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Purchases of an alive customer follow a Poisson process with rate
``lambda ~ Gamma(r, rate=alpha)``; after each purchase the customer drops out
with probability ``p ~ Beta(a, b)``. A customer's history is
``(x, t_x, T)`` = (frequency, recency, T): ``x`` repeat purchases, the last at
``t_x``, observed for ``T`` time units since the first purchase.

The log-likelihood is written once against the ``xp`` namespace (PyTensor by
default, NumPy with ``xp=NP``); predictive quantities are NumPy functions that
broadcast over posterior draws and customers.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

import bayesclv.formulas.individual_bgnbd as individual_bgnbd
from bayesclv.formulas._covariate_summed import bgnbd_kernel, covariate_summed_loglik_function, covariate_tables
from bayesclv.formulas._beta_expectations import (
    over_horizons,
    over_horizons_shared,
    purchases_given_alive,
    survival_given_alive,
)
from bayesclv.formulas._ops import NP, PT, discounted_increments
from bayesclv.formulas._residual import bgnbd_dert_given_alive, bgnbd_residual_lifetime_given_alive
from bayesclv.formulas._simulate import alive_and_purchase_rate
from bayesclv.formulas._summed import (
    digamma,
    distinct,
    draw_vectors,
    read_only_tables,
    softplus_and_sigmoid,
    summed_loglik_function,
)

__all__ = [
    "PARAMETERS",
    "covariate_loglik_tables",
    "covariate_summed_loglik",
    "discounted_expected_purchases",
    "discounted_expected_residual_transactions",
    "discounted_probability_alive",
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

PARAMETERS = ("r", "alpha", "a", "b")


def _log_dropout_ratio(frequency, recency, T, r, alpha, a, b, xp):
    """log of [P(dropped after the last purchase) / P(alive at T)] terms.

    Returns ``d = A4 - A3`` where ``A3 = -(r+x) log(alpha+T)`` is the alive
    branch and ``A4 = log a - log(b+x-1) - (r+x) log(alpha+t_x)`` the branch in
    which the customer dropped out right after the last purchase (only for
    ``x > 0``; callers mask ``x == 0``).
    """
    x_safe = xp.maximum(frequency, 1.0)
    return (
        xp.log(a)
        - xp.log(b + x_safe - 1.0)
        + (r + frequency) * xp.log1p((T - recency) / (alpha + recency))
    )


def loglik(frequency, recency, T, r, alpha, a, b, xp=PT):
    """Per-customer BG/NBD log-likelihood.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T``
        (same time unit as ``alpha``).
    r, alpha, a, b : array_like or TensorVariable
        Population parameters (all positive).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, a, b | x, t_x, T)`` broadcast over the inputs.

    Notes
    -----
    Equation (6) of Fader, Hardie & Lee (2005), evaluated as
    ``A1 + A2 + A3 + softplus(A4 - A3)`` so that neither branch under- or
    overflows for large ``x`` or ``T``.
    """
    x, t_x, T = (xp.asarray(v) for v in (frequency, recency, T))
    a1 = xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha)
    a2 = xp.gammaln(a + b) + xp.gammaln(b + x) - xp.gammaln(b) - xp.gammaln(a + b + x)
    a3 = -(r + x) * xp.log(alpha + T)
    d = _log_dropout_ratio(x, t_x, T, r, alpha, a, b, xp)
    return a1 + a2 + a3 + xp.where(x > 0, xp.softplus(d), 0.0)


@read_only_tables
def loglik_tables(frequency, recency, T, weight, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik` for rows ``(x, t_x, T)`` with multiplicities ``weight``.

    Parameters
    ----------
    frequency, recency, T, weight : array_like
        One entry per row (distinct histories and their counts).
    group : array_like of int, optional
        Group code of each row (0 .. n_groups-1); all 0 by default.

    Returns
    -------
    tuple of numpy.ndarray
        Distinct ``x`` per group with their total weights; distinct ``T`` per
        group with their total weights and total ``x`` weights; distinct
        ``t_x`` of repeat buyers; each repeat buyer's entries in those
        tables and weight; and the total weight of each group.
    """
    x, t_x, T, w = (np.asarray(v, dtype=float) for v in (frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    xs, Ts = distinct(g, x), distinct(g, T)
    rep = np.flatnonzero(x > 0)
    rep = rep[np.argsort(g[rep], kind="stable")]  # repeat buyers by group: row_start[k] is group k's first
    ts = distinct(g[rep], t_x[rep])
    n_groups = g.max(initial=0) + 1
    row_start = np.searchsorted(g[rep], np.arange(n_groups + 1))
    return (xs.group, xs.value, xs.total(w), Ts.group, Ts.value, Ts.total(w), Ts.total(w * x),
            ts.group, ts.value, row_start, xs.index[rep], Ts.index[rep], ts.index, w[rep],
            np.bincount(g, weights=w, minlength=n_groups))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(r, alpha, a, b, x_group, x_value, x_weight, T_group, T_value, T_weight,
                          T_xweight, t_group, t_value, row_start, row_x, row_T, row_t, row_weight,
                          group_weight):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(4, n_groups)``.

    With ``A1..A4`` as in :func:`loglik`, the total is

    - ``sum_g n_g [-gammaln(r) + r log(alpha) + gammaln(a+b) - gammaln(b)]``
      (``n_g``: total weight of group ``g``);
    - ``sum_(g,x) w [gammaln(r+x) + gammaln(b+x) - gammaln(a+b+x)]`` over the distinct ``x``;
    - ``-sum_(g,T) (r w + sum x w) log(alpha+T)`` over the distinct ``T``;
    - ``sum_i w_i softplus(d_i)`` over the repeat buyers, ``d_i = log a - log(b+x-1) +
      (r+x)[log(alpha+T) - log(alpha+t_x)]``, whose derivative is ``sigmoid(d_i)`` times that of ``d_i``.
    """
    grad = np.zeros((4, r.size))
    total = 0.0
    for g in range(r.size):
        n, la, dab = group_weight[g], math.log(alpha[g]), digamma(a[g] + b[g])
        total += n * (-math.lgamma(r[g]) + r[g] * la + math.lgamma(a[g] + b[g]) - math.lgamma(b[g]))
        grad[0, g] += n * (la - digamma(r[g]))
        grad[1, g] += n * r[g] / alpha[g]
        grad[2, g] += n * dab
        grad[3, g] += n * (dab - digamma(b[g]))
    log_b = np.empty(x_value.size)  # log(b + x - 1), for the repeat buyers
    inv_b = np.empty(x_value.size)
    for j in range(x_value.size):
        g, x, w = x_group[j], x_value[j], x_weight[j]
        total += w * (math.lgamma(r[g] + x) + math.lgamma(b[g] + x) - math.lgamma(a[g] + b[g] + x))
        dabx = digamma(a[g] + b[g] + x)
        grad[0, g] += w * digamma(r[g] + x)
        grad[2, g] -= w * dabx
        grad[3, g] += w * (digamma(b[g] + x) - dabx)
        bx = b[g] + max(x, 1.0) - 1.0
        log_b[j], inv_b[j] = math.log(bx), 1.0 / bx
    log_T = np.empty(T_value.size)
    inv_T = np.empty(T_value.size)
    for k in range(T_value.size):
        g = T_group[k]
        log_T[k], inv_T[k] = math.log(alpha[g] + T_value[k]), 1.0 / (alpha[g] + T_value[k])
        c = r[g] * T_weight[k] + T_xweight[k]
        total -= c * log_T[k]
        grad[0, g] -= T_weight[k] * log_T[k]
        grad[1, g] -= c * inv_T[k]
    log_t = np.empty(t_value.size)
    inv_t = np.empty(t_value.size)
    for k in range(t_value.size):
        alpha_t = alpha[t_group[k]] + t_value[k]
        log_t[k], inv_t[k] = math.log(alpha_t), 1.0 / alpha_t
    for g in range(r.size):  # the repeat buyers, sorted by group (see loglik_tables)
        log_a, inv_a = math.log(a[g]), 1.0 / a[g]
        sum_sp = sum_ws = sum_delta = sum_alpha = sum_b = 0.0
        for i in range(row_start[g], row_start[g + 1]):
            jx, jT, jt = row_x[i], row_T[i], row_t[i]
            rho, delta = r[g] + x_value[jx], log_T[jT] - log_t[jt]
            sp, sg = softplus_and_sigmoid(log_a - log_b[jx] + rho * delta)
            ws = row_weight[i] * sg
            sum_sp += row_weight[i] * sp
            sum_ws += ws
            sum_delta += ws * delta
            sum_alpha += ws * rho * (inv_T[jT] - inv_t[jt])
            sum_b += ws * inv_b[jx]
        total += sum_sp
        grad[0, g] += sum_delta
        grad[1, g] += sum_alpha
        grad[2, g] += sum_ws * inv_a
        grad[3, g] -= sum_b
    return total, grad


summed_loglik = summed_loglik_function(_summed_loglik_kernel, PARAMETERS, "BG/NBD")


covariate_loglik_tables = covariate_tables  # the data tables of :func:`covariate_summed_loglik`


covariate_summed_loglik = covariate_summed_loglik_function(
    bgnbd_kernel, ("r", "alpha", "a", "b"), ("purchase_coef", "dropout_coef_a", "dropout_coef_b"), "BG/NBD",
    "``alpha_i = alpha exp(-purchase_coef . zp_i)``, ``a_i = a exp(dropout_coef_a . zd_i)``, "
    "``b_i = b exp(dropout_coef_b . zd_i)``")


def probability_alive(frequency, recency, T, r, alpha, a, b):
    """P(customer is alive at T | history); equation (A10) of FHL (2005).

    Returns 1 for customers without repeat purchases (in the BG/NBD dropout can
    only happen right after a purchase).
    """
    x = np.asarray(frequency, dtype=float)
    d = _log_dropout_ratio(x, recency, T, r, alpha, a, b, NP)
    return np.where(x > 0, special.expit(-d), 1.0)


def _given_alive_over_horizons(times, factors, frequency, T, r, alpha, a, b, survival):
    """Present value over ``times`` of the purchases (or, ``survival``, of P(alive)) given alive at ``T``.

    One series and continuation per element for all horizons (:func:`over_horizons`),
    shared across the rows of one ``x`` and draw when the parameters vary along
    draws only and the histories along the last axis (:func:`over_horizons_shared`);
    elements it declines go through the closed forms horizon by horizon.
    """
    x = np.asarray(frequency, dtype=float)
    times, factors = np.asarray(times, dtype=float), np.asarray(factors, dtype=float)
    T_ = np.asarray(T, dtype=float)
    by_draw = draw_vectors((r, alpha, a, b), x, T_)
    if by_draw is not None:
        lead, draws = by_draw
        order = np.argsort(x, kind="stable")
        zeros = np.zeros(x.size, dtype=np.int64)
        xs, Ts = distinct(zeros, x[order]), distinct(zeros, T_[order])
        x_start = np.searchsorted(xs.index, np.arange(xs.value.size + 1))
        by_x = np.empty((draws[0].size, x.size))
        ok_by_x = np.ones(by_x.shape, dtype=bool)
        over_horizons_shared(*draws, xs.value, x_start, Ts.value, Ts.index, times, factors, by_x, ok_by_x,
                             survival)
        out, ok = np.empty_like(by_x), np.empty_like(ok_by_x)
        out[:, order], ok[:, order] = by_x, ok_by_x
        out, ok = out.reshape(*lead, x.size), ok.reshape(*lead, x.size)
    else:
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r + x, a, b + x, 1.0 / (alpha + T))))
        flat = [np.ascontiguousarray(v).ravel() for v in arrays]
        out, ok = np.empty(flat[0].size), np.ones(flat[0].size, dtype=bool)
        over_horizons(*flat, times, factors, out, ok, survival)
        out, ok = out.reshape(arrays[0].shape), ok.reshape(arrays[0].shape)
    if not ok.all():
        bad = ~ok
        views = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, a, b, x, T)))
        r_, alpha_, a_, b_, x_, T_b = (v[bad] for v in views)
        if survival:
            out[bad] = sum(f * survival_given_alive(r_ + x_, a_, b_ + x_, t / (alpha_ + T_b))
                           for t, f in zip(times, factors, strict=True))
        else:
            out[bad] = discounted_increments(
                lambda t: purchases_given_alive(r_ + x_, a_, b_ + x_, t / (alpha_ + T_b)), times, factors)
    return out


def discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(T + ends[k-1], T + ends[k]]``.

    Equals :func:`bayesclv.formulas._ops.discounted_increments` of
    :func:`expected_purchases` over the horizons ``ends`` (increasing), at a
    cost linear in their number (:func:`_given_alive_over_horizons`).
    ``given_alive`` as in :func:`expected_purchases` (P(alive) is computed once, not per horizon).
    """
    out = _given_alive_over_horizons(ends, factors, frequency, T, r, alpha, a, b, survival=False)
    return out if given_alive else out * probability_alive(frequency, recency, T, r, alpha, a, b)


def discounted_probability_alive(times, factors, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """``sum_k factors[k] P(alive at T + times[k])`` for increasing ``times``, at a cost linear in their number.

    Equals the discounted sum of :func:`probability_alive_at`; ``given_alive`` as there.
    """
    out = _given_alive_over_horizons(times, factors, frequency, T, r, alpha, a, b, survival=True)
    return out if given_alive else out * probability_alive(frequency, recency, T, r, alpha, a, b)


def expected_purchases(t, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """E[X(T, T+t] | history]: expected purchases in the next ``t`` time units.

    Given alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``
    independently; a customer with dropout probability ``p`` makes Poisson
    purchases until the first one followed by dropout, ``(1 - exp(-lambda p t))/p``
    in expectation, which over ``lambda`` is ``(1 - (1 + p t/(alpha+T))^-(r+x))/p``.
    Its expectation over ``p`` (equation (10) of FHL 2005 in hypergeometric form) is
    computed stably for every ``a``, including ``a == 1``; see
    :func:`purchases_given_alive`. With ``given_alive=True`` the expectation is
    conditional on being alive at ``T`` (the factor P(alive) is left out).
    """
    x = np.asarray(frequency, dtype=float)
    k = np.asarray(t, dtype=float) / (alpha + T)
    per_alive = purchases_given_alive(r + x, a, b + x, k)
    return per_alive if given_alive else per_alive * probability_alive(x, recency, T, r, alpha, a, b)


def expected_purchases_new_customer(t, r, alpha, a, b):
    """E[X(t)] for a customer observed since acquisition for ``t`` time units.

    Equation (9) of FHL (2005): the expectation of :func:`expected_purchases` for
    ``x = T = 0``, where the customer is alive.
    """
    return purchases_given_alive(r, a, b, np.asarray(t, dtype=float) / alpha)


def discounted_expected_residual_transactions(delta, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """DERT: ``E[int_T^inf e^(-delta (t-T)) dX(t) | history]`` for a continuous discount rate ``delta > 0``.

    P(alive) times the expectation given alive (:mod:`bayesclv.formulas._residual`);
    with ``given_alive=True``, that expectation alone.
    """
    per_alive = bgnbd_dert_given_alive(delta, frequency, T, r, alpha, a, b)
    return per_alive if given_alive else probability_alive(frequency, recency, T, r, alpha, a, b) * per_alive


def expected_residual_lifetime(frequency, recency, T, r, alpha, a, b, given_alive=False):
    """E[remaining lifetime after T | history]: P(alive) times the mean remaining lifetime given alive.

    The mean is infinite unless ``a > 1`` and ``r + x > 1``.
    """
    per_alive = bgnbd_residual_lifetime_given_alive(frequency, T, r, alpha, a, b)
    return per_alive if given_alive else probability_alive(frequency, recency, T, r, alpha, a, b) * per_alive


def probability_alive_at(t, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """P(customer is still alive at ``T + t`` | history).

    A customer alive at ``T`` survives ``t`` more time units when none of the
    purchases in between is followed by dropout: ``E[exp(-lambda p t)]`` over the
    posterior of ``lambda`` and ``p``, i.e. ``E[(1 + p t/(alpha+T))^-(r+x)]`` for
    ``p ~ Beta(a, b+x)`` (see :func:`survival_given_alive`). With
    ``given_alive=True``, conditional on being alive at ``T``.
    """
    x = np.asarray(frequency, dtype=float)
    k = np.asarray(t, dtype=float) / (alpha + T)
    survive = survival_given_alive(r + x, a, b + x, k)
    return survive if given_alive else probability_alive(x, recency, T, r, alpha, a, b) * survive


def _log_nbd_pmf(n, shape, log_q, log1m_q):
    """log NBD pmf: ``Gamma(shape+n)/(Gamma(shape) n!) q^shape (1-q)^n``."""
    return (
        special.gammaln(shape + n) - special.gammaln(shape) - special.gammaln(n + 1.0)
        + shape * log_q + n * log1m_q
    )


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, a, b):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``.

    Derivation: given alive at ``T`` the rate ``lambda ~ Gamma(r+x, alpha+T)``
    and ``p ~ Beta(a, b+x)`` are independent. With ``M`` Poisson purchases in
    ``t`` and dropout after purchase ``G ~ Geometric(p)``, ``X = min(M, G)``,
    so ``P(X=n) = P(M=n) E(1-p)^n + P(M>=n) E p(1-p)^(n-1)`` for ``n >= 1``,
    and ``P(X=0) = P(M=0)``. A customer already dead contributes to ``n = 0``.
    """
    n = np.asarray(n, dtype=float)
    x = np.asarray(frequency, dtype=float)
    shape = r + x
    log_q = np.log(alpha + T) - np.log(alpha + T + t)  # NBD success prob. of "no purchase"
    log1m_q = np.log(t) - np.log(alpha + T + t)
    pmf_m = np.exp(_log_nbd_pmf(n, shape, log_q, log1m_q))
    # P(M >= n) = 1 - P(M <= n-1) = I_{1-q}(n, shape): regularised incomplete beta
    tail_m = np.where(n > 0, special.betainc(np.maximum(n, 1.0), shape, np.exp(log1m_q)), 1.0)
    log_beta0 = special.betaln(a, b + x)
    keep = np.exp(special.betaln(a, b + x + n) - log_beta0)
    drop_at_n = np.exp(special.betaln(a + 1.0, b + x + np.maximum(n, 1.0) - 1.0) - log_beta0)
    given_alive = np.where(n > 0, pmf_m * keep + tail_m * drop_at_n, pmf_m)
    p_alive = probability_alive(x, recency, T, r, alpha, a, b)
    return p_alive * given_alive + (1.0 - p_alive) * (n == 0)


# --------------------------------------------------------------------------- simulation
def simulate_population(T, r, alpha, a, b, rng=None):
    """Simulate BG/NBD calibration histories of new customers.

    Each customer's purchase rate is ``lambda ~ Gamma(r, alpha)`` and dropout
    probability ``p ~ Beta(a, b)``; given them, the history is simulated by
    :func:`bayesclv.formulas.individual_bgnbd.simulate_histories`.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``p``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (r, alpha, a, b)))
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    p = rng.beta(a, b, size=shape)
    return individual_bgnbd.simulate_histories(T, lam, p, rng)


def simulate_future_purchases(t, frequency, recency, T, r, alpha, a, b, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]`` under the BG/NBD.

    Alive at ``T`` with probability P(alive | history); if alive,
    ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``; the count is
    ``min(Poisson(lambda t), Geometric(p))``.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    p_alive = probability_alive(x, recency, T, r, alpha, a, b)
    alive, lam = alive_and_purchase_rate(rng, p_alive, x, T, r, alpha)
    p = rng.beta(a, b + x, size=p_alive.shape)
    count = np.minimum(rng.poisson(lam * t), rng.geometric(np.clip(p, 1e-300, 1.0)))
    return np.where(alive, count, 0)
