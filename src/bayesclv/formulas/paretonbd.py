"""Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

An alive customer buys as a Poisson process with rate ``lambda ~ Gamma(r,
rate=alpha)`` and stays alive for an exponential lifetime with rate
``mu ~ Gamma(s, rate=beta)``.

The likelihood needs no Gauss hypergeometric function. Integrating the rates
out of the individual-level likelihood conditional on the lifetime ``tau``
gives::

    L = Gamma(r+x)/Gamma(r) alpha^r [ (alpha+T)^-(r+x) (beta/(beta+T))^s
                                      + s beta^s J ],
    J = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau.

``J`` and its exact derivatives come from one compiled quadrature pass
(:mod:`bayesclv.formulas._lifetime_integral`), which NUTS gets through a
PyTensor Op: no slow hypergeometric series.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

import bayesclv.formulas.individual_paretonbd as individual_paretonbd
from bayesclv.formulas._covariate_summed import (
    covariate_summed_loglik_function,
    covariate_tables,
    paretonbd_kernel,
)
from bayesclv.formulas._lifetime_integral import (
    LOG_WEIGHTS,
    NODES,
    difference_of_shared,
    log_lifetime_integral,
    log_lifetime_integral_at,
    shared_limit_integrals,
    shared_limits,
    shared_over_histories,
)
from bayesclv.formulas._ops import NP, PT, discounted_increments, gauss_legendre
from bayesclv.formulas._residual import paretonbd_dert_given_alive, paretonbd_residual_lifetime_given_alive
from bayesclv.formulas._simulate import alive_and_purchase_rate
from bayesclv.formulas._summed import digamma, distinct, read_only_tables, softplus_and_sigmoid, summed_total

__all__ = [
    "PARAMETERS",
    "covariate_loglik_tables",
    "covariate_summed_loglik",
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

PARAMETERS = ("r", "alpha", "s", "beta")


def _log_alive_and_dropped(frequency, recency, T, r, alpha, s, beta, xp):
    """Log of the alive-at-T and dropped-before-T parts of the likelihood.

    Both omit the common factor ``Gamma(r+x)/Gamma(r) alpha^r``. The dropped
    part is ``-inf`` when ``t_x == T``.
    """
    x, t_x, T, r, alpha, s, beta = (xp.asarray(v) for v in (frequency, recency, T, r, alpha, s, beta))
    log_alive = -(r + x) * xp.log(alpha + T) - s * xp.log1p(T / beta)
    log_j, has_mass = log_lifetime_integral(x, t_x, T, r, alpha, s, beta, xp)
    log_dropped = xp.where(has_mass, xp.log(s) + s * xp.log(beta) + log_j, -np.inf)
    return log_alive, log_dropped


def loglik(frequency, recency, T, r, alpha, s, beta, xp=PT):
    """Per-customer Pareto/NBD log-likelihood.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x``, age ``T``.
    r, alpha, s, beta : array_like or TensorVariable
        Population parameters (positive).
    xp : namespace, default PT
        ``PT`` for a PyTensor expression, ``NP`` for NumPy.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, s, beta | x, t_x, T)``.
    """
    x, r, alpha = xp.asarray(frequency), xp.asarray(r), xp.asarray(alpha)
    log_alive, log_dropped = _log_alive_and_dropped(x, recency, T, r, alpha, s, beta, xp)
    diff = xp.where(log_dropped > -np.inf, log_dropped - log_alive, -np.inf)
    return xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha) + log_alive + xp.softplus(diff)


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
        Distinct ``x`` per group with their total weights; distinct ``T``
        per group; the sorted limits ``t_x``, ``T`` of each distinct ``x``
        (see :func:`shared_limits`); each row's entries in those tables,
        its own ``t_x`` and weight; and the total weight of each group.
    """
    x, t_x, T, w = (np.asarray(v, dtype=float) for v in (frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    xs, Ts = distinct(g, x), distinct(g, T)
    limits, start, stop, row_a, row_b, direct = shared_limits(xs.group, t_x, T, xs.index)
    return (xs.group, xs.value, xs.total(w), start, stop, Ts.group, Ts.value, limits,
            xs.index, Ts.index, row_a, row_b, direct, t_x, w,
            np.bincount(g, weights=w, minlength=g.max(initial=0) + 1))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(r, alpha, s, beta, x_group, x_value, x_weight, x_start, x_stop, T_group, T_value,
                          limits, row_x, row_T, row_a, row_b, row_direct, row_t, row_weight,
                          group_weight):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(4, n_groups)``.

    Each row's log-likelihood is ``gammaln(r+x) - gammaln(r) + r log(alpha) +
    s log(beta) + logaddexp(A, D)`` with the alive branch ``A = -(r+x)
    log(alpha+T) - s log(beta+T)`` and the dropped branch ``D = log(s) + log J``.
    The first terms are summed per group and per distinct ``x``; the branches'
    derivatives are mixed with ``pi = sigmoid(D - A)``. The histories with one
    ``x`` share the integrand of ``J``: it is integrated once between each pair
    of neighbouring limits (:func:`shared_limit_integrals`) and each row's
    ``J`` is a difference of two of those sums; rows marked ``direct`` use
    :func:`log_lifetime_integral_at`. All work in ``Q = log(m + tau)``,
    ``m = min(alpha, beta)`` (a substitution: no derivative through ``m``).
    """
    n_groups = r.size
    grad = np.zeros((4, n_groups))
    total = 0.0
    m = np.empty(n_groups)
    for g in range(n_groups):
        n, la, lb = group_weight[g], math.log(alpha[g]), math.log(beta[g])
        total += n * (-math.lgamma(r[g]) + r[g] * la + s[g] * lb)
        grad[0, g] += n * (la - digamma(r[g]))
        grad[1, g] += n * r[g] / alpha[g]
        grad[2, g] += n * lb
        grad[3, g] += n * s[g] / beta[g]
        m[g] = min(alpha[g], beta[g])
    log_r = np.empty(limits.size)
    d_r = np.empty((4, limits.size))
    for j in range(x_value.size):
        g = x_group[j]
        total += x_weight[j] * math.lgamma(r[g] + x_value[j])
        grad[0, g] += x_weight[j] * digamma(r[g] + x_value[j])
        shared_limit_integrals(r[g] + x_value[j], s[g] + 1.0, alpha[g] - m[g], beta[g] - m[g], m[g],
                                limits, x_start[j], x_stop[j], log_r, d_r, True)
    log_aT = np.empty(T_value.size)
    log_bT = np.empty(T_value.size)
    for k in range(T_value.size):
        g = T_group[k]
        log_aT[k], log_bT[k] = math.log(alpha[g] + T_value[k]), math.log(beta[g] + T_value[k])
    scratch = np.empty((5, NODES.size))
    for i in range(row_x.size):
        jx, jT = row_x[i], row_T[i]
        g = x_group[jx]
        T = T_value[jT]
        rho, sigma = r[g] + x_value[jx], s[g] + 1.0
        alive = -rho * log_aT[jT] - s[g] * log_bT[jT]
        w = row_weight[i]
        if row_a[i] == row_b[i]:  # t_x == T: no time to drop out unobserved
            d_rho = d_sigma = d_ca = d_cb = lse = pi = 0.0
        else:
            if row_direct[i]:
                log_j, d_rho, d_sigma, d_ca, d_cb, lo, hi = log_lifetime_integral_at(
                    rho, sigma, alpha[g] - m[g], beta[g] - m[g], math.log(m[g] + row_t[i]),
                    math.log(m[g] + T), NODES, LOG_WEIGHTS, scratch)
            else:
                log_j, d_rho, d_sigma, d_ca, d_cb = difference_of_shared(log_r, d_r, row_a[i], row_b[i])
            lse, pi = softplus_and_sigmoid(math.log(s[g]) + log_j - alive)
        total += w * (alive + lse)
        stay = w * (1.0 - pi)
        drop = w * pi
        grad[0, g] += drop * d_rho - stay * log_aT[jT]
        grad[1, g] += drop * d_ca - stay * rho / (alpha[g] + T)
        grad[2, g] += drop * (1.0 / s[g] + d_sigma) - stay * log_bT[jT]
        grad[3, g] += drop * d_cb - stay * s[g] / (beta[g] + T)
    return total, grad


def summed_loglik(tables, r, alpha, s, beta, xp=PT):
    """Total Pareto/NBD log-likelihood of the rows of :func:`loglik_tables`.

    Parameters
    ----------
    tables : tuple of numpy.ndarray
        From :func:`loglik_tables`.
    r, alpha, s, beta : TensorVariable or array_like
        Population parameters: scalars, or vectors over the groups of ``tables``.
    xp : namespace, default PT
        ``PT`` for a PyTensor scalar whose gradient comes from the same
        compiled pass, ``NP`` for a float.

    Returns
    -------
    TensorVariable or float
        ``sum_i weight_i loglik(x_i, t_x_i, T_i)``.
    """
    return summed_total(_summed_loglik_kernel, [r, alpha, s, beta], tables, xp)


covariate_loglik_tables = covariate_tables  # the data tables of :func:`covariate_summed_loglik`


covariate_summed_loglik = covariate_summed_loglik_function(
    paretonbd_kernel, ("r", "alpha", "s", "beta"), ("purchase_coef", "dropout_coef"), "Pareto/NBD",
    "``alpha_i = alpha exp(-purchase_coef . zp_i)``, ``beta_i = beta exp(-dropout_coef . zd_i)``")


def probability_alive(frequency, recency, T, r, alpha, s, beta):
    """P(customer is alive at T | history), by Bayes' rule on the two likelihood parts.

    For draws x histories with parameters varying along draws only, one
    compiled pass per draw shares the integrals of one ``x`` (:func:`shared_over_histories`).
    """
    shared = shared_over_histories(frequency, recency, T, (r, alpha, s, beta), alive=True)
    if shared is not None:
        return shared
    log_alive, log_dropped = _log_alive_and_dropped(frequency, recency, T, r, alpha, s, beta, NP)
    return special.expit(log_alive - log_dropped)


def _mean_lifetime_within(t, shape, rate):
    """``E[min(t, omega)]`` for ``omega ~ Exp(mu)``, ``mu ~ Gamma(shape, rate)``.

    Equals ``rate/(shape-1) [1 - (rate/(rate+t))^(shape-1)]``, with the
    ``shape -> 1`` limit ``rate log(1 + t/rate)`` taken smoothly.
    """
    log_ratio = np.log1p(t / rate)
    k = shape - 1.0
    small = np.abs(k) < 1e-10
    k_safe = np.where(small, 1.0, k)
    return rate * np.where(small, log_ratio, -np.expm1(-k_safe * log_ratio) / k_safe)


def expected_purchases(t, frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """E[X(T, T+t] | history]: P(alive) x E[lambda] x E[time alive in (T, T+t]].

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and
    ``mu ~ Gamma(s, beta+T)`` independently, and the remaining lifetime is
    exponential (memoryless).
    """
    x = np.asarray(frequency, dtype=float)
    per_alive = (r + x) / (alpha + T) * _mean_lifetime_within(t, s, beta + T)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, s, beta) * per_alive


def discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(T + ends[k-1], T + ends[k]]``.

    See :func:`bayesclv.formulas._ops.discounted_increments`; ``given_alive`` as in
    :func:`expected_purchases` (P(alive) is computed once, not per horizon).
    """
    x = np.asarray(frequency, dtype=float)
    per_alive = discounted_increments(
        lambda t: expected_purchases(t, x, recency, T, r, alpha, s, beta, given_alive=True), ends, factors)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, s, beta) * per_alive


def expected_purchases_new_customer(t, r, alpha, s, beta):
    """E[X(t)] for a customer observed since acquisition: ``r/alpha E[min(t, omega)]``."""
    return np.asarray(r) / alpha * _mean_lifetime_within(t, s, beta)


def discounted_expected_residual_transactions(delta, frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """DERT: ``E[int_T^inf e^(-delta (t-T)) dX(t) | history]`` for a continuous discount rate ``delta > 0``.

    P(alive) times the expectation given alive (:mod:`bayesclv.formulas._residual`);
    with ``given_alive=True``, that expectation alone.
    """
    per_alive = paretonbd_dert_given_alive(delta, frequency, T, r, alpha, s, beta)
    return per_alive if given_alive else probability_alive(frequency, recency, T, r, alpha, s, beta) * per_alive


def expected_residual_lifetime(frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """E[remaining lifetime after T | history]: P(alive) times the mean remaining lifetime given alive.

    The mean is infinite for ``s <= 1`` (``E[1/mu]`` diverges).
    """
    per_alive = paretonbd_residual_lifetime_given_alive(T, s, beta)
    return per_alive if given_alive else probability_alive(frequency, recency, T, r, alpha, s, beta) * per_alive


def probability_alive_at(t, frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """P(alive at ``T + t`` | history) = P(alive at T) ``((beta+T)/(beta+T+t))^s``.

    With ``given_alive=True``, conditional on being alive at ``T`` (the second factor).
    """
    survive = np.exp(-s * np.log1p(t / (beta + T)))
    return survive if given_alive else probability_alive(frequency, recency, T, r, alpha, s, beta) * survive


# P(X = n) mixes the NBD count over the remaining lifetime, integrated in u = log(w)
# with w the time alive after T (see _given_alive_count).
_COUNT_NODES = 32  # Gauss-Legendre nodes on each side of the integrand's mode
_COUNT_DROP = 40.0  # integrand mass ignored outside the window: exp(-40) of its maximum
_COUNT_NEWTON_STEPS = 8
_COUNT_CHUNK = 16384  # elements per block of (elements x nodes) evaluations


def _log_count_kernel(u, n, rho, s, log_a, log_c):
    """``log[(w/A)^n (1 + w/A)^-(rho+n) (1 + w/C)^-s]`` at ``w = e^u`` (``log_a = log A``, ``log_c = log C``).

    Up to the factor ``Gamma(rho+n) / (Gamma(rho) n!)``: the NBD probability of
    ``n`` purchases in ``w`` time units for ``lambda ~ Gamma(rho, A)``, times the
    probability ``(1 + w/C)^-s`` of staying alive for ``w`` when ``mu ~ Gamma(s, C)``.
    """
    return (n * (u - log_a) - (rho + n) * np.logaddexp(0.0, u - log_a)
            - s * np.logaddexp(0.0, u - log_c))


def _log_dropout_integrand(u, n, rho, s, log_a, log_c):
    """``log[w x NBD kernel x lifetime density / s]`` at ``w = e^u``; concave in ``u``.

    The lifetime density ``s/C (1 + w/C)^-(s+1)``, less its factor ``s``, and the
    Jacobian ``dw = w du`` turn :func:`_log_count_kernel` into the integrand of the
    customers who drop out after ``w`` time units.
    """
    return u - log_c + _log_count_kernel(u, n, rho, s + 1.0, log_a, log_c)


def _dropout_window(n, rho, s, rate_buy, rate_drop, log_t):
    """Mode and interval of ``u <= log t`` outside which :func:`_log_dropout_integrand` is below ``max - _COUNT_DROP``.

    With ``y = e^u`` the derivative ``(n+1) - (rho+n) y/(A+y) - (s+1) y/(C+y)``
    (``A = rate_buy``, ``C = rate_drop``) vanishes at the positive root of
    ``(rho+s) y^2 - ((n-s) A + (1-rho) C) y - (n+1) A C``: the mode, capped at
    ``log t``. Newton steps for the level ``max - _COUNT_DROP`` started on either
    side of the mode overshoot outwards and then approach the level from outside,
    as for any concave function, so the window is never too narrow.
    """
    log_a, log_c = np.log(rate_buy), np.log(rate_drop)

    def f(u):
        return _log_dropout_integrand(u, n, rho, s, log_a, log_c)

    def df(u):
        return n + 1.0 - (rho + n) * special.expit(u - log_a) - (s + 1.0) * special.expit(u - log_c)

    lin = (n - s) * rate_buy + (1.0 - rho) * rate_drop
    disc = np.sqrt(lin * lin + 4.0 * (rho + s) * (n + 1.0) * rate_buy * rate_drop)
    # the positive root, written without cancellation for either sign of `lin`
    y = np.where(lin >= 0.0, (np.maximum(lin, 0.0) + disc) / (2.0 * (rho + s)),
                 2.0 * (n + 1.0) * rate_buy * rate_drop / (disc - np.minimum(lin, 0.0)))
    mode = np.minimum(np.log(y), log_t)
    level = f(mode) - _COUNT_DROP
    curvature = ((rho + n) * special.expit(mode - log_a) * special.expit(log_a - mode)
                 + (s + 1.0) * special.expit(mode - log_c) * special.expit(log_c - mode))
    step = 1.0 / np.sqrt(curvature)
    left = mode - step
    right = np.minimum(mode + step, log_t)
    for _ in range(_COUNT_NEWTON_STEPS):
        left = np.minimum(left - (f(left) - level) / np.maximum(df(left), 1e-12), mode)
        right = np.clip(right - (f(right) - level) / np.minimum(df(right), -1e-12), mode, log_t)
    return left, mode, right


def _given_alive_count_block(n, t, rho, s, rate_buy, rate_drop):
    """:func:`_given_alive_count` on 1-d arrays of equal length, all ``t > 0``."""
    log_a, log_c, log_t = np.log(rate_buy), np.log(rate_drop), np.log(t)
    log_norm = special.gammaln(rho + n) - special.gammaln(rho) - special.gammaln(n + 1.0)
    alive_through = np.exp(log_norm + _log_count_kernel(log_t, n, rho, s, log_a, log_c))
    left, mode, right = _dropout_window(n, rho, s, rate_buy, rate_drop, log_t)
    # one rule on each side of the mode: Legendre nodes crowd towards the ends of an
    # interval, so the peak is resolved however long the tails are
    nodes, weights = gauss_legendre(_COUNT_NODES)
    starts = np.stack([left, mode], axis=-1)[..., None]
    widths = np.stack([mode - left, right - mode], axis=-1)[..., None]
    u = (starts + widths * nodes).reshape(len(n), -1)
    log_terms = _log_dropout_integrand(u, n[:, None], rho[:, None], s[:, None], log_a[:, None], log_c[:, None])
    peak = log_terms.max(axis=-1)
    dropped = np.sum((widths * weights).reshape(len(n), -1) * np.exp(log_terms - peak[:, None]), axis=-1)
    return alive_through + s * dropped * np.exp(log_norm + peak)


def _given_alive_count(n, t, rho, s, rate_buy, rate_drop):
    """P(``n`` purchases in the next ``t`` | alive now), the NBD count mixed over the remaining lifetime.

    ``lambda ~ Gamma(rho, rate_buy)`` and ``mu ~ Gamma(s, rate_drop)``. A customer who
    stays alive for ``w`` more time units makes NBD(``rho``, ``A/(A+w)``) purchases
    in that time (``A = rate_buy``). The remaining lifetime exceeds ``t`` with
    probability ``(1 + t/C)^-s`` and otherwise has density ``s/C (1 + w/C)^-(s+1)``
    on ``(0, t)`` (``C = rate_drop``). The integral over ``w`` is taken in
    ``u = log w``, where the integrand is log-concave, by Gauss-Legendre rules on the
    window around its mode (:func:`_dropout_window`); this resolves the NBD's time
    scale ``A/rho`` and the lifetime's ``C/s`` however they compare with ``t``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (n, t, rho, s, rate_buy, rate_drop)))
    shape = arrays[0].shape
    n, t, rho, s, rate_buy, rate_drop = (v.ravel() for v in arrays)
    out = np.where(n == 0.0, 1.0, 0.0)  # the value at t == 0
    idx = np.flatnonzero(t > 0.0)
    for start in range(0, idx.size, _COUNT_CHUNK):
        block = idx[start:start + _COUNT_CHUNK]
        out[block] = _given_alive_count_block(n[block], t[block], rho[block], s[block],
                                              rate_buy[block], rate_drop[block])
    return out.reshape(shape)


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, s, beta):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``.

    A customer alive at ``T`` (:func:`probability_alive`) has
    ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)``; the lifetime
    being memoryless, purchases go on for ``min(t, omega)`` more time units with
    ``omega`` Pareto (II) distributed (see :func:`_given_alive_count`). A customer
    already dead makes no purchases.
    """
    x = np.asarray(frequency, dtype=float)
    p_alive = probability_alive(x, recency, T, r, alpha, s, beta)
    given_alive = _given_alive_count(n, t, r + x, s, np.add(alpha, T), np.add(beta, T))
    return p_alive * given_alive + (1.0 - p_alive) * (np.asarray(n) == 0)


# --------------------------------------------------------------------------- simulation
def simulate_population(T, r, alpha, s, beta, rng=None):
    """Simulate Pareto/NBD calibration histories of new customers.

    Parameters
    ----------
    T : array_like
        Observation length of each customer since the first purchase.
    r, alpha, s, beta : float or array_like
        Population parameters (broadcast against ``T``).
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``mu``,
        ``alive`` (alive at ``T``).
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (r, alpha, s, beta)))
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    mu = rng.gamma(s, 1.0 / np.asarray(beta), size=shape)
    return individual_paretonbd.simulate_histories(T, lam, mu, rng)


def simulate_future_purchases(t, frequency, recency, T, r, alpha, s, beta, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]`` under the Pareto/NBD.

    Alive at ``T`` with probability P(alive | history); if alive,
    ``lambda ~ Gamma(r+x, alpha+T)``, ``mu ~ Gamma(s, beta+T)`` and the
    remaining lifetime is ``Exp(mu)``; purchases are Poisson in the part of
    ``(T, T+t]`` that the customer is alive for.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    p_alive = probability_alive(x, recency, T, r, alpha, s, beta)
    alive, lam = alive_and_purchase_rate(rng, p_alive, x, T, r, alpha)
    mu = rng.gamma(s, 1.0 / (beta + np.asarray(T)), size=p_alive.shape)
    window = np.minimum(rng.exponential(1.0 / mu), t)
    return np.where(alive, rng.poisson(lam * window), 0)
