"""BG/CNBD-k and MBG/CNBD-k models (Reutterer, Platzer & Schroder 2021).

The BG/NBD with regular purchase timing: an alive customer's inter-purchase
times are Erlang-k with rate ``lambda ~ Gamma(r, rate=alpha)`` (``k`` phases,
each exponential with rate ``lambda``); after each repeat purchase the customer
drops out with probability ``p ~ Beta(a, b)``. ``modified=True`` gives the
MBG/CNBD-k: the customer can also drop out right after the first purchase
(Batislam, Denizel & Filiztekin 2007). ``k`` is a fixed positive integer of the
model; ``k = 1`` is the BG/NBD (MBG/NBD).

A history is ``(litt, x, t_x, T)``: ``x`` repeat purchases, the last at ``t_x``,
observation for ``T`` time units since the first purchase, and ``litt`` the sum
of the logs of the ``x`` inter-purchase times (which only enters the likelihood
as a constant, so predictions depend on ``(x, t_x, T)`` alone).

With ``rho = r + k x``, ``m = 1`` for the MBG variant (else 0) and ``Delta = T - t_x``,
integrating ``lambda`` and ``p`` out of the individual likelihood gives

``L = e^{(k-1) litt} / ((k-1)!)^x  Gamma(rho) alpha^r / (Gamma(r) (alpha+t_x)^rho)
      [B(a, b+x+m)/B(a, b) F + [x > 0 or m] B(a+1, b+x+m-1)/B(a, b)]``

where ``F = P(NB(rho, (alpha+t_x)/(alpha+T)) <= k-1)`` is the probability that
fewer than ``k`` Erlang phases of the next purchase fell in ``(t_x, T]``:
``F = ((alpha+t_x)/(alpha+T))^rho S``, ``S = sum_{i<k} (rho)_i / i! z^i`` with
``z = Delta/(alpha+T)``. At ``k = 1``, ``S = 1`` and ``L`` is the BG/NBD (MBG/NBD)
likelihood. Given alive at ``T``, ``p ~ Beta(a, b+x+m)`` and, jointly, the number
``i`` of phases completed since the last purchase and ``lambda``: ``P(i) = (rho)_i
z^i / (i! S)``, ``lambda | i ~ Gamma(rho+i, alpha+T)``; the next purchase comes
after ``k - i`` more phases.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas import bgnbd
from bayesclv.formulas._cnbd_horizons import over_horizons
from bayesclv.formulas._cnbd_quadrature import count_probabilities
from bayesclv.formulas._cnbd_sums import given_alive_sums, phase_weights
from bayesclv.formulas._mle import maximum_likelihood
from bayesclv.formulas._ops import NP, PT
from bayesclv.formulas._residual import cnbd_dert_given_alive
from bayesclv.formulas._summed import digamma, distinct, read_only_tables, softplus_and_sigmoid, summed_loglik_function

__all__ = [
    "PARAMETERS",
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
    "select_k",
    "simulate_future_purchases",
    "simulate_population",
    "summed_loglik",
]

PARAMETERS = ("r", "alpha", "a", "b")


def _check_k(k) -> int:
    """``k`` as a Python int; ValueError unless it is a positive integer."""
    if isinstance(k, bool) or not float(k).is_integer() or k < 1:
        raise ValueError(f"k must be a positive integer (the number of Erlang phases); got {k!r}")
    return int(k)


def _phase_sum(rho, z, k):
    """``S = sum_{i<k} (rho)_i / i! z^i`` by Horner's rule (1 for ``k = 1``); any array namespace."""
    s = 1.0
    for i in range(k - 1, 0, -1):
        s = 1.0 + s * z * ((rho + (i - 1.0)) / i)
    return s


def _alive_and_dropout_logs(x, t_x, T, r, alpha, a, b, k, modified, xp):
    """``(u, v)``: log of the alive branch ``F`` and of the dropped-out branch, relative to each other.

    The bracket of the likelihood is ``B(a, b+x+m)/B(a, b) (e^u + e^v)`` with
    ``u = log F`` and ``v = log(a / (b+x+m-1))`` (``x`` replaced by 1 where the
    BG variant has no dropped-out branch, ``x = 0``; callers mask it).
    """
    m = 1.0 if modified else 0.0
    rho = r + k * x
    delta = T - t_x
    u = -rho * xp.log1p(delta / (alpha + t_x))
    if k > 1:
        u = u + xp.log(_phase_sum(rho, delta / (alpha + T), k))
    x_safe = x if modified else xp.maximum(x, 1.0)
    v = xp.log(a) - xp.log(b + x_safe + (m - 1.0))
    return u, v


def loglik(litt, frequency, recency, T, r, alpha, a, b, *, k, modified=False, xp=PT):
    """Per-customer (M)BG/CNBD-k log-likelihood.

    Parameters
    ----------
    litt : array_like
        Sum over the customer's repeat purchases of the log inter-purchase
        times (same time unit as ``T``; 0 without repeat purchases).
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T``.
    r, alpha, a, b : array_like or TensorVariable
        Population parameters (all positive).
    k : int
        Erlang phases per inter-purchase time (1: BG/NBD, MBG/NBD).
    modified : bool, default False
        MBG/CNBD-k (dropout possible right after the first purchase).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, a, b | litt, x, t_x, T)``.

    Notes
    -----
    Evaluated as ``const + log Gamma terms - rho log(alpha+t_x) + u + softplus(v - u)``
    (see :func:`_alive_and_dropout_logs`), finite for large ``x``, ``T`` and ``rho``.
    """
    k = _check_k(k)
    litt, x, t_x, T = (xp.asarray(v) for v in (litt, frequency, recency, T))
    m = 1.0 if modified else 0.0
    rho = r + k * x
    const = (k - 1.0) * litt - x * math.lgamma(k) if k > 1 else 0.0
    a1 = xp.gammaln(rho) - xp.gammaln(r) + r * xp.log(alpha) - rho * xp.log(alpha + t_x)
    a2 = xp.gammaln(a + b) + xp.gammaln(b + x + m) - xp.gammaln(b) - xp.gammaln(a + b + x + m)
    u, v = _alive_and_dropout_logs(x, t_x, T, r, alpha, a, b, k, modified, xp)
    dropped = xp.softplus(v - u) if modified else xp.where(x > 0, xp.softplus(v - u), 0.0)
    return const + a1 + a2 + u + dropped


@read_only_tables
def loglik_tables(litt, frequency, recency, T, weight, group=None, *, k, modified=False) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik` for rows ``(litt, x, t_x, T)`` with multiplicities ``weight``.

    Parameters
    ----------
    litt, frequency, recency, T, weight : array_like
        One entry per row. A row of ``w`` customers with different ``litt``
        may carry their mean ``litt`` (it enters the total as ``w (k-1) litt``).
    group : array_like of int, optional
        Group code of each row (0 .. n_groups-1); all 0 by default.
    k : int
        Erlang phases per inter-purchase time.
    modified : bool, default False
        MBG/CNBD-k.

    Returns
    -------
    tuple of numpy.ndarray
        Distinct ``x`` per group with their weights; distinct ``T`` per group
        with their weights and ``x`` weights; distinct ``t_x`` per group; the
        rows that need a term of their own (those with a dropped-out branch,
        and for ``k > 1`` those with ``t_x < T``), sorted by group, with their
        entries in those tables, ``T - t_x`` and weight; the total weight of
        each group; and ``[k, m, data constant]``.
    """
    k = _check_k(k)
    litt, x, t_x, T, w = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(litt, frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    xs, Ts, ts = distinct(g, x), distinct(g, T), distinct(g, t_x)
    delta = T - t_x
    needs_row = (x > 0) | modified | ((k > 1) & (delta > 0))
    rows = np.flatnonzero(needs_row)
    rows = rows[np.argsort(g[rows], kind="stable")]  # by group: row_start[j] is group j's first
    n_groups = g.max(initial=0) + 1
    row_start = np.searchsorted(g[rows], np.arange(n_groups + 1))
    constant = float(np.sum(w * ((k - 1.0) * litt - x * math.lgamma(k)))) if k > 1 else 0.0
    return (xs.group, xs.value, xs.total(w), Ts.group, Ts.value, Ts.total(w), Ts.total(w * x),
            ts.group, ts.value, row_start, xs.index[rows], Ts.index[rows], ts.index[rows], delta[rows],
            w[rows], ((x > 0) | modified)[rows], np.bincount(g, weights=w, minlength=n_groups),
            np.array([float(k), 1.0 if modified else 0.0, constant]))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_phase_sum_and_grad(rho, z, k):  # pragma: no cover - compiled
    """``log S`` and its derivatives in ``rho`` and ``z`` (see :func:`_phase_sum`)."""
    term = total = 1.0
    d_z = d_rho = harmonic = 0.0
    for i in range(1, k):
        f = (rho + (i - 1.0)) / i
        harmonic += 1.0 / (rho + (i - 1.0))
        d_z += i * term * f  # i c_i z^(i-1)
        term *= f * z
        total += term
        d_rho += term * harmonic  # c_i z^i sum_(j<i) 1/(rho+j)
    return math.log(total), d_rho / total, d_z / total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(r, alpha, a, b, x_group, x_value, x_weight, T_group, T_value, T_weight, T_xweight,
                          t_group, t_value, row_start, row_x, row_T, row_t, row_delta, row_weight, row_dropped,
                          group_weight, structure):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(4, n_groups)``.

    With ``rho = r + k x`` the total is the data constant plus

    - ``sum_g n_g [-gammaln(r) + r log(alpha) + gammaln(a+b) - gammaln(b)]``;
    - ``sum_(g,x) w [gammaln(rho) + gammaln(b+x+m) - gammaln(a+b+x+m)]`` over the distinct ``x``;
    - ``-sum_(g,T) (r w + k sum x w) log(alpha+T)`` over the distinct ``T``;
    - per row, ``log S + [dropped branch] softplus(v - u)`` with ``u = -rho [log(alpha+T) -
      log(alpha+t_x)] + log S`` and ``v = log a - log(b+x+m-1)``, whose derivative is
      ``dlog S + sigmoid(v - u) (dv - du)``.
    """
    k, m, constant = int(structure[0]), structure[1], structure[2]
    grad = np.zeros((4, r.size))
    total = constant
    for g in range(r.size):
        n, la, dab = group_weight[g], math.log(alpha[g]), digamma(a[g] + b[g])
        total += n * (-math.lgamma(r[g]) + r[g] * la + math.lgamma(a[g] + b[g]) - math.lgamma(b[g]))
        grad[0, g] += n * (la - digamma(r[g]))
        grad[1, g] += n * r[g] / alpha[g]
        grad[2, g] += n * dab
        grad[3, g] += n * (dab - digamma(b[g]))
    log_b = np.empty(x_value.size)  # log(b + x + m - 1), for the rows with a dropped-out branch
    inv_b = np.empty(x_value.size)
    for j in range(x_value.size):
        g, x, w = x_group[j], x_value[j], x_weight[j]
        bx, abx = b[g] + x + m, a[g] + b[g] + x + m
        total += w * (math.lgamma(r[g] + k * x) + math.lgamma(bx) - math.lgamma(abx))
        dabx = digamma(abx)
        grad[0, g] += w * digamma(r[g] + k * x)
        grad[2, g] -= w * dabx
        grad[3, g] += w * (digamma(bx) - dabx)
        bx1 = b[g] + max(x + m, 1.0) - 1.0
        log_b[j], inv_b[j] = math.log(bx1), 1.0 / bx1
    log_T = np.empty(T_value.size)
    inv_T = np.empty(T_value.size)
    for j in range(T_value.size):
        g = T_group[j]
        log_T[j], inv_T[j] = math.log(alpha[g] + T_value[j]), 1.0 / (alpha[g] + T_value[j])
        c = r[g] * T_weight[j] + k * T_xweight[j]
        total -= c * log_T[j]
        grad[0, g] -= T_weight[j] * log_T[j]
        grad[1, g] -= c * inv_T[j]
    log_t = np.empty(t_value.size)
    inv_t = np.empty(t_value.size)
    for j in range(t_value.size):
        alpha_t = alpha[t_group[j]] + t_value[j]
        log_t[j], inv_t[j] = math.log(alpha_t), 1.0 / alpha_t
    for g in range(r.size):  # rows sorted by group (see loglik_tables)
        log_a, inv_a = math.log(a[g]), 1.0 / a[g]
        sum_total = sum_r = sum_alpha = sum_a = sum_b = 0.0
        for i in range(row_start[g], row_start[g + 1]):
            jx, jT, jt, w = row_x[i], row_T[i], row_t[i], row_weight[i]
            rho = r[g] + k * x_value[jx]
            spread = log_T[jT] - log_t[jt]
            if k > 1:
                z = row_delta[i] * inv_T[jT]
                log_s, ds_rho, ds_z = _log_phase_sum_and_grad(rho, z, k)
                ds_alpha = -ds_z * z * inv_T[jT]
            else:
                log_s = ds_rho = ds_alpha = 0.0
            u = log_s - rho * spread
            term, share = log_s, 0.0  # share: sigmoid(v - u), the weight of the dropped-out branch
            if row_dropped[i]:
                sp, share = softplus_and_sigmoid(log_a - log_b[jx] - u)
                term += sp
            sum_total += w * term
            sum_r += w * ((1.0 - share) * ds_rho + share * spread)
            sum_alpha += w * ((1.0 - share) * ds_alpha + share * rho * (inv_T[jT] - inv_t[jt]))
            sum_a += w * share
            sum_b += w * share * inv_b[jx]
        total += sum_total
        grad[0, g] += sum_r
        grad[1, g] += sum_alpha
        grad[2, g] += sum_a * inv_a
        grad[3, g] -= sum_b
    return total, grad


summed_loglik = summed_loglik_function(_summed_loglik_kernel, PARAMETERS, "(M)BG/CNBD-k")


def probability_alive(frequency, recency, T, r, alpha, a, b, *, k, modified=False):
    """P(customer is alive at T | history): the alive branch's share ``e^u / (e^u + e^v)`` of the likelihood.

    The BG variant gives 1 without repeat purchases (dropout only after a repeat purchase).
    """
    k = _check_k(k)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    u, v = _alive_and_dropout_logs(x, t_x, T, r, alpha, a, b, k, modified, NP)
    alive = special.expit(u - v)
    return alive if modified else np.where(x > 0, alive, 1.0)


def _given_alive(t, frequency, recency, T, r, alpha, a, b, k, modified):
    """(expected purchases, survival) over ``(T, T+t]`` of a customer alive at ``T`` (any ``k``, by summation)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    m = 1.0 if modified else 0.0
    return given_alive_sums(r + k * x, (T - t_x) / (alpha + T), np.asarray(t, dtype=float) / (alpha + T), a,
                            b + x + m, k)


def expected_purchases(t, frequency, recency, T, r, alpha, a, b, *, k, modified=False, given_alive=False):
    """E[X(T, T+t] | history]: expected purchases in the next ``t`` time units.

    For ``k = 1`` the BG/NBD closed form (:func:`bayesclv.formulas.bgnbd.expected_purchases`
    with ``b + m`` for ``b``: given alive, the MBG variant is the BG one with one more
    survived purchase); for ``k > 1`` the sum over the phase count of
    :mod:`bayesclv.formulas._cnbd_sums`. With ``given_alive=True``, conditional on
    being alive at ``T`` (the factor :func:`probability_alive` is left out).
    """
    k = _check_k(k)
    m = 1.0 if modified else 0.0
    if k == 1:
        per_alive = bgnbd.expected_purchases(t, frequency, recency, T, r, alpha, a, b + m, given_alive=True)
    else:
        per_alive = _given_alive(t, frequency, recency, T, r, alpha, a, b, k, modified)[0]
    if given_alive:
        return per_alive
    return per_alive * probability_alive(frequency, recency, T, r, alpha, a, b, k=k, modified=modified)


def probability_alive_at(t, frequency, recency, T, r, alpha, a, b, *, k, modified=False, given_alive=False):
    """P(customer is still alive at ``T + t`` | history): no purchase in ``(T, T+t]`` was followed by dropout.

    ``E[beta_N]`` of :mod:`bayesclv.formulas._cnbd_sums` (the BG/NBD closed form for
    ``k = 1``); ``given_alive`` as in :func:`expected_purchases`.
    """
    k = _check_k(k)
    m = 1.0 if modified else 0.0
    if k == 1:
        survive = bgnbd.probability_alive_at(t, frequency, recency, T, r, alpha, a, b + m, given_alive=True)
    else:
        survive = _given_alive(t, frequency, recency, T, r, alpha, a, b, k, modified)[1]
    if given_alive:
        return survive
    return survive * probability_alive(frequency, recency, T, r, alpha, a, b, k=k, modified=modified)


def _over_horizons(times, weights, frequency, recency, T, r, alpha, a, b, k, modified, purchases):
    """``sum_j weights[j]`` times the expected purchases in ``(T, T + times[j]]`` (``purchases``) or the
    survival to ``T + times[j]`` of a customer alive at ``T``, all horizons in one pass (``k > 1``)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    m = 1.0 if modified else 0.0
    return over_horizons(times, weights, r + k * x, (T - t_x) / (alpha + T), 1.0 / (alpha + T), a, b + x + m, k,
                         purchases=purchases)


def discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, a, b, *, k, modified=False,
                                  given_alive=False):
    """Present value of the expected purchases: ``sum_j factors[j]`` times those in ``(T + ends[j-1], T + ends[j]]``.

    For ``k = 1`` :func:`bayesclv.formulas.bgnbd.discounted_expected_purchases` (one
    hypergeometric series for all horizons); for ``k > 1`` the one-pass ODE of
    :mod:`bayesclv.formulas._cnbd_horizons` over the cumulative purchases, each weighted
    by ``factors[j] - factors[j+1]`` (the same sum, summed by parts), so that the cost
    grows in proportion to the number of horizons. ``given_alive`` as in :func:`expected_purchases`.
    """
    k = _check_k(k)
    m = 1.0 if modified else 0.0
    if k == 1:
        per_alive = bgnbd.discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, a, b + m,
                                                        given_alive=True)
    else:
        factors = np.asarray(factors, dtype=float).ravel()
        by_parts = factors - np.append(factors[1:], 0.0)
        per_alive = _over_horizons(ends, by_parts, frequency, recency, T, r, alpha, a, b, k, modified, True)
    if given_alive:
        return per_alive
    return per_alive * probability_alive(frequency, recency, T, r, alpha, a, b, k=k, modified=modified)


def discounted_probability_alive(times, factors, frequency, recency, T, r, alpha, a, b, *, k, modified=False,
                                 given_alive=False):
    """``sum_j factors[j]`` :func:`probability_alive_at` ``(times[j])``, all horizons in one pass (for ``k = 1``
    :func:`bayesclv.formulas.bgnbd.discounted_probability_alive`, for ``k > 1`` the ODE of
    :mod:`bayesclv.formulas._cnbd_horizons`)."""
    k = _check_k(k)
    if k == 1:
        per_alive = bgnbd.discounted_probability_alive(times, factors, frequency, recency, T, r, alpha, a,
                                                       b + (1.0 if modified else 0.0), given_alive=True)
    else:
        per_alive = _over_horizons(times, factors, frequency, recency, T, r, alpha, a, b, k, modified, False)
    if given_alive:
        return per_alive
    return per_alive * probability_alive(frequency, recency, T, r, alpha, a, b, k=k, modified=modified)


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, a, b, *, k, modified=False):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``.

    Given alive at ``T`` with ``i`` phases done (weights :func:`~bayesclv.formulas._cnbd_sums.phase_weights`),
    ``N = floor((M + i)/k)`` purchases would be made, ``M ~ NB(rho + i, t/(alpha+T+t))``;
    with dropout after purchase ``G ~ Geometric(p)``, ``X = min(N, G)``, so
    ``P(X=n) = P(N=n) E(1-p)^n + P(N>=n) E p(1-p)^(n-1)`` for ``n >= 1`` and ``P(X=0) = P(N=0)``
    (:func:`~bayesclv.formulas._cnbd_quadrature.count_probabilities`). A customer already
    dead contributes to ``n = 0``.
    """
    k = _check_k(k)
    n = np.asarray(n, dtype=float)
    x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    m = 1.0 if modified else 0.0
    rho = r + k * x
    w = phase_weights(rho, (T_ - t_x) / (alpha + T_), k)
    exactly, beyond = count_probabilities(n, rho, w, np.asarray(t, dtype=float) / (alpha + T_), k)
    at_least = exactly + beyond
    B = b + x + m
    log_beta0 = special.betaln(a, B)
    keep = np.exp(special.betaln(a, B + n) - log_beta0)
    drop_at_n = np.exp(special.betaln(a + 1.0, B + np.maximum(n, 1.0) - 1.0) - log_beta0)
    given_alive = np.where(n > 0, exactly * keep + at_least * drop_at_n, exactly)
    p_alive = probability_alive(x, t_x, T_, r, alpha, a, b, k=k, modified=modified)
    return p_alive * given_alive + (1.0 - p_alive) * (n == 0)


def expected_purchases_new_customer(t, r, alpha, a, b, *, k, modified=False):
    """E[X(t)] for a customer observed since acquisition for ``t`` time units.

    A new customer has just purchased (no phase done, ``lambda ~ Gamma(r, alpha)``);
    in the MBG variant it survives that purchase with probability ``b/(a+b)``, after
    which ``p ~ Beta(a, b+1)``.
    """
    k = _check_k(k)
    t = np.asarray(t, dtype=float)
    if k == 1:
        per_alive = bgnbd.expected_purchases_new_customer(t, r, alpha, a, b + 1.0 if modified else b)
    else:
        per_alive = given_alive_sums(r, 0.0, t / alpha, a, b + 1.0 if modified else b, k)[0]
    return per_alive * (b / (a + b)) if modified else per_alive


def expected_residual_lifetime(frequency, recency, T, r, alpha, a, b, *, k, modified=False, given_alive=False):
    """E[remaining lifetime after ``T`` | history]: the time to the purchase that ends the relationship.

    Alive at ``T`` with ``i`` phases done, the customer drops out at purchase ``G``
    (``E[G] = (a+B-1)/(a-1)``, ``B = b+x+m``), made ``G k - i`` phases later at rate
    ``lambda ~ Gamma(rho+i, alpha+T)`` (``E[1/lambda] = (alpha+T)/(rho+i-1)``); ``G`` and
    ``lambda`` are independent, so the mean is ``sum_i w_i (k E[G] - i) (alpha+T)/(rho+i-1)``.
    It is infinite where ``a <= 1`` (heavy-tailed purchases before dropout) or
    ``rho + i <= 1``. A customer already dead has none left; ``given_alive`` as in
    :func:`expected_purchases`.
    """
    k = _check_k(k)
    x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    m = 1.0 if modified else 0.0
    rho = r + k * x
    w = phase_weights(rho, (T_ - t_x) / (alpha + T_), k)
    i = np.arange(k, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        purchases = np.where(a > 1.0, (a + b + x + m - 1.0) / (a - 1.0), np.inf)
        shape = rho[..., None] + i - 1.0 if np.ndim(rho) else rho + i - 1.0
        wait = np.where(shape > 0.0, np.asarray(alpha + T_)[..., None] / shape, np.inf)
        terms = np.where(w > 0.0, w * (k * np.asarray(purchases)[..., None] - i) * wait, 0.0)
    per_alive = terms.sum(axis=-1)
    if given_alive:
        return per_alive
    return per_alive * probability_alive(x, t_x, T_, r, alpha, a, b, k=k, modified=modified)


def discounted_expected_residual_transactions(delta, frequency, recency, T, r, alpha, a, b, *, k, modified=False,
                                              given_alive=False):
    """DERT: ``E[int_T^inf e^(-delta (t-T)) dX(t) | history]`` for a continuous discount rate ``delta > 0``.

    P(alive) times the expectation given alive (:func:`bayesclv.formulas._residual.cnbd_dert_given_alive`:
    the BG/NBD's with ``b + m`` for ``k = 1``, a quadrature over ``lambda`` and ``p`` for ``k > 1``);
    ``given_alive`` as in :func:`expected_purchases`.
    """
    k = _check_k(k)
    per_alive = cnbd_dert_given_alive(delta, frequency, recency, T, r, alpha, a, b, k, modified)
    if given_alive:
        return per_alive
    return per_alive * probability_alive(frequency, recency, T, r, alpha, a, b, k=k, modified=modified)


def simulate_population(T, r, alpha, a, b, *, k, modified=False, rng=None):
    """Simulate (M)BG/CNBD-k calibration histories, inter-purchase times and all.

    Each customer draws ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)``; the
    MBG variant drops out at the first purchase with probability ``p``. Purchases
    follow at ``Gamma(k, rate=lambda)`` intervals; each one up to ``T`` counts, and
    after each the customer drops out with probability ``p``.

    Parameters
    ----------
    T : array_like
        Observation length of each customer since the first purchase.
    r, alpha, a, b : float or array_like
        Population parameters (broadcast against ``T``).
    k : int
        Erlang phases per inter-purchase time.
    modified : bool, default False
        MBG/CNBD-k.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T``, ``litt`` and the latent ``lambda``, ``p``,
        ``alive`` (alive at ``T``).
    """
    k = _check_k(k)
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(np.shape(T), *(np.shape(v) for v in (r, alpha, a, b)))
    T = np.broadcast_to(np.asarray(T, dtype=float), shape).ravel()
    lam = rng.gamma(np.broadcast_to(r, shape), 1.0 / np.broadcast_to(alpha, shape)).ravel()
    p = rng.beta(np.broadcast_to(a, shape), np.broadcast_to(b, shape)).ravel()
    alive = ~(rng.random(T.size) < p) if modified else np.ones(T.size, dtype=bool)
    x, last, litt = np.zeros(T.size), np.zeros(T.size), np.zeros(T.size)
    active = np.flatnonzero(alive)  # customers whose next purchase may still fall before T
    while active.size:
        gap = rng.gamma(k, 1.0 / lam[active])
        inside = last[active] + gap <= T[active]
        buyers = active[inside]
        x[buyers] += 1.0
        last[buyers] += gap[inside]
        litt[buyers] += np.log(gap[inside])
        dropped = rng.random(buyers.size) < p[buyers]
        alive[buyers[dropped]] = False
        active = buyers[~dropped]
    return {"frequency": x.reshape(shape), "recency": last.reshape(shape), "T": T.reshape(shape),
            "litt": litt.reshape(shape), "lambda": lam.reshape(shape), "p": p.reshape(shape),
            "alive": alive.reshape(shape)}


def simulate_future_purchases(t, frequency, recency, T, r, alpha, a, b, *, k, modified=False, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]``.

    Alive at ``T`` with :func:`probability_alive`; if alive, the phases done ``i``
    are drawn from :func:`~bayesclv.formulas._cnbd_sums.phase_weights`, then
    ``lambda ~ Gamma(rho+i, alpha+T)`` and ``p ~ Beta(a, b+x+m)``; the count is
    ``min(floor((Poisson(lambda t) + i)/k), Geometric(p))``.
    """
    k = _check_k(k)
    rng = np.random.default_rng(rng)
    x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    m = 1.0 if modified else 0.0
    p_alive = probability_alive(x, t_x, T_, r, alpha, a, b, k=k, modified=modified)
    shape = np.shape(p_alive)
    alive = rng.random(shape) < p_alive
    cumulative = np.cumsum(phase_weights(r + k * x, (T_ - t_x) / (alpha + T_), k), axis=-1)
    done = np.broadcast_to((rng.random(shape)[..., None] > cumulative[..., :-1]).sum(axis=-1), shape)
    lam = rng.gamma(r + k * x + done, 1.0 / (alpha + T_), size=shape)
    p = rng.beta(a, b + x + m, size=shape)
    count = np.minimum((rng.poisson(lam * t) + done) // k, rng.geometric(np.clip(p, 1e-300, 1.0)))
    return np.where(alive, count, 0)


def select_k(litt, frequency, recency, T, weight=None, *, k_max=12, modified=False, start=(1.0, 3.0, 1.0, 3.0)):
    """Maximum-likelihood fits for ``k = 1 .. k_max``: the table to choose the regularity ``k`` by.

    The likelihoods of different ``k`` are comparable because each includes the
    inter-purchase-time constant ``(k-1) litt - x log((k-1)!)``.

    Parameters
    ----------
    litt, frequency, recency, T : array_like
        One entry per customer (or per row with ``weight``).
    weight : array_like, optional
        Customers per row (default 1).
    k_max : int, default 12
        Largest ``k`` fitted.
    modified : bool, default False
        MBG/CNBD-k.
    start : sequence of float
        Starting ``(r, alpha, a, b)`` for ``k = 1``; each further ``k`` starts from
        the previous estimate with ``alpha`` scaled by ``(k-1)/k`` (the phase rate
        ``lambda`` grows with ``k`` at a given purchase rate).

    Returns
    -------
    dict of numpy.ndarray
        ``k``, ``r``, ``alpha``, ``a``, ``b`` and ``loglik``, one entry per ``k``.
    """
    k_max = _check_k(k_max)
    weight = np.ones(np.shape(frequency)) if weight is None else weight
    rows = {name: [] for name in ("k", *PARAMETERS, "loglik")}
    point = np.asarray(start, dtype=float)
    for k in range(1, k_max + 1):
        tables = loglik_tables(litt, frequency, recency, T, weight, k=k, modified=modified)
        point, value = maximum_likelihood(_summed_loglik_kernel, tables, point)
        for name, v in zip(("k", *PARAMETERS, "loglik"), (k, *point, value), strict=True):
            rows[name].append(v)
        point = point * np.array([1.0, k / (k + 1.0), 1.0, 1.0])
    return {name: np.asarray(v) for name, v in rows.items()}
