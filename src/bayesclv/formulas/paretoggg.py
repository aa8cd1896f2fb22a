"""Pareto/GGG model (Platzer & Reutterer 2016): the individual-level mathematics.

Customer ``i`` makes its first purchase at time 0; while alive, the times between
its purchases are independent ``Gamma(k, rate k lambda)`` (mean ``1/lambda``; the
regularity ``k`` makes them less dispersed than exponential for ``k > 1``), and
it stays alive for an exponential lifetime with rate ``mu``. Across customers
``k ~ Gamma(t, gamma)``, ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``.
At ``k = 1`` this is the Pareto/NBD.

**Likelihood given (k, lambda, mu).** The ``x`` repeat purchases' inter-purchase
times ``d_j`` (``sum d_j = t_x``) have density ``prod g(d_j)``, which depends on
the times only through ``t_x`` and ``litt = sum log d_j``. The customer was alive
at ``t_x`` (``e^(-mu t_x)``) and made no purchase in ``(t_x, T]``: no next purchase
``W ~ Gamma(k, k lambda)`` before both death and ``T``. Since
``P(W < min(death, Delta)) = E[e^(-mu W); W < Delta] = omega^k P(k, (k lambda + mu) Delta)``
with ``omega = k lambda / (k lambda + mu)`` and ``Delta = T - t_x``::

    log L = x k log(k lambda) - x log Gamma(k) + (k-1) litt - (k lambda + mu) t_x
            + log[ (1 - omega^k) + omega^k Q(k, (k lambda + mu) Delta) ]

(``P``, ``Q``: regularised incomplete gamma functions). Both terms in brackets are
positive, so it is evaluated without cancellation, ``log Q`` without underflow.

**Predictions given (k, lambda, mu).** The process is not memoryless: alive at
``T``, the next purchase comes ``W - Delta`` later with ``W`` conditioned on
``W > Delta``, and the renewals after it are killed at the Exp(mu) death. The
expected purchases in ``(T, T+t]`` integrate the next purchase's density against
the killed renewal function (``RENEWAL`` of
:mod:`bayesclv.formulas._adaptive_quadrature`).

The population level (Gamma distributions of ``k, lambda, mu``) has its log
density and simulator here; integrating the latents out is left to the
marginal (per-row Gauss-Hermite) machinery of the hierarchical models.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from scipy import special

from bayesclv.formulas._adaptive_quadrature import (GAMMA_TAIL, RENEWAL, RENEWAL_END, integrate, killed_renewals,
                                                    workspace)
from bayesclv.formulas._ops import NP, PT, discounted_increments, gauss_legendre
from bayesclv.formulas._simulate import gamma_renewals
from bayesclv.formulas._special import log_gamma_q, logaddexp
from bayesclv.formulas._summed import SummedLoglikOp, digamma

__all__ = [
    "LATENTS",
    "PARAMETERS",
    "discounted_expected_purchases",
    "expected_purchases",
    "log_population_density",
    "loglik",
    "loglik_gradient",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
    "simulate_future_purchases",
    "simulate_histories",
    "simulate_population",
    "summed_loglik",
]

PARAMETERS = ("t", "gamma", "r", "alpha", "s", "beta")  # population: k ~ Gamma(t, gamma), ...
LATENTS = ("k", "lam", "mu")
_TAIL_DROP = 40.0
_MAX_PURCHASES = 100_000  # simulated purchases per customer before simulate_histories gives up
_COUNT_NODES = 48  # Gauss-Legendre nodes over the wait for the next purchase (probability_of_purchases)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_q_and_dk(k, y, work):  # pragma: no cover - compiled
    """``log Q(k, y)`` and its derivative in ``k`` at fixed ``y``.

    ``Q(k, y) Gamma(k) = int_y^inf t^(k-1) e^-t dt``; in ``u = log t`` the log-integrand
    ``k u - e^u`` (``GAMMA_TAIL``) is integrated together with the average of ``u = log t``,
    so ``d log Q / dk = E[log t | t > y] - digamma(k)``.
    """
    if not y > 0.0:
        return 0.0, 0.0
    grad = np.empty(5)
    p = np.empty(1)
    p[0] = k
    top = math.log(max(y, k) + 10.0 * math.sqrt(k) + 60.0)
    log_tail = integrate(GAMMA_TAIL, p, math.log(y), top, True, grad, work)
    return log_tail - math.lgamma(k), grad[0] - digamma(k)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _loglik_kernel(x, t_x, T, litt, k, lam, mu, with_grad, out):  # pragma: no cover - compiled
    """Per element: log L (module docstring) and, ``with_grad``, its partials in ``k, lam, mu`` -> ``out`` (4, n)."""
    work = workspace()
    for i in range(x.size):
        ki, li, mi = k[i], lam[i], mu[i]
        rate = ki * li + mi
        delta = T[i] - t_x[i]
        k_log_omega = -ki * math.log1p(mi / (ki * li))
        log_none = math.log(-math.expm1(k_log_omega))  # 1 - omega^k: the next purchase would follow death
        y = rate * delta
        if with_grad:
            log_q, dq_dk = _log_gamma_q_and_dk(ki, y, work)
        else:
            log_q, dq_dk = log_gamma_q(ki, y), 0.0
        log_late = k_log_omega + log_q  # purchase after T although alive at it
        bracket = logaddexp(log_none, log_late)
        out[0, i] = (x[i] * ki * math.log(ki * li) - x[i] * math.lgamma(ki) + (ki - 1.0) * litt[i]
                     - rate * t_x[i] + bracket)
        if not with_grad:
            continue
        late = math.exp(log_late - bracket)
        none_factor = -(1.0 - late) * math.exp(k_log_omega - log_none)  # d log(1 - omega^k) / d(k log omega)
        dkw_dk = k_log_omega / ki + mi / rate  # partials of k log omega
        dkw_dl = ki * mi / (li * rate)
        dkw_dm = -ki / rate
        dq_dy = -math.exp((ki - 1.0) * math.log(y) - y - math.lgamma(ki) - log_q) if y > 0.0 else 0.0
        factor = none_factor + late
        out[1, i] = (x[i] * (math.log(ki * li) + 1.0 - digamma(ki)) + litt[i] - li * t_x[i]
                     + factor * dkw_dk + late * (dq_dk + dq_dy * li * delta))
        out[2, i] = x[i] * ki / li - ki * t_x[i] + factor * dkw_dl + late * dq_dy * ki * delta
        out[3, i] = -t_x[i] + factor * dkw_dm + late * dq_dy * delta


def _run_loglik(litt, frequency, recency, T, k, lam, mu, with_grad):
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T, litt, k, lam, mu)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty((4, flat[0].size))
    _loglik_kernel(*flat, with_grad, out)
    return [o.reshape(arrays[0].shape) for o in out]


def loglik(litt, frequency, recency, T, k, lam, mu, xp=PT):
    """Log-likelihood of each history given its regularity ``k``, purchase rate ``lam`` and dropout rate ``mu``.

    Parameters
    ----------
    litt : array_like
        Sum over the repeat purchases of the log inter-purchase times (0 for ``x = 0``).
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last one ``t_x``, age ``T``.
    k, lam, mu : array_like or TensorVariable
        Individual parameters (positive).
    xp : namespace, default PT
        ``PT``: a PyTensor graph with ``pt.gammaincc``, differentiated by PyTensor
        (``Q`` underflows to 0 beyond ``(k lam + mu) Delta ~ 700 + k``, harmless unless
        ``mu`` is also tiny); ``NP``: compiled, ``log Q`` without underflow (the
        gradient in one pass: :func:`loglik_gradient`).

    Returns
    -------
    numpy.ndarray or TensorVariable
        ``log L(k, lam, mu | x, t_x, T, litt)``, the density of the purchase times.
    """
    if xp is NP:
        return _run_loglik(litt, frequency, recency, T, k, lam, mu, False)[0]
    x, t_x, T, litt = (xp.asarray(v) for v in (frequency, recency, T, litt))
    rate = k * lam + mu
    k_log_omega = -k * xp.log1p(mu / (k * lam))
    log_none = xp.log(-xp.expm1(k_log_omega))
    log_late = k_log_omega + xp.log(pt.gammaincc(k, rate * (T - t_x)))
    top = xp.maximum(log_none, log_late)
    bracket = top + xp.log(xp.exp(log_none - top) + xp.exp(log_late - top))
    return x * k * xp.log(k * lam) - x * xp.gammaln(k) + (k - 1.0) * litt - rate * t_x + bracket


def loglik_gradient(litt, frequency, recency, T, k, lam, mu):
    """:func:`loglik` and its partial derivatives in ``k, lam, mu`` (compiled, one pass).

    The derivative of ``log Q(k, y)`` in ``k`` is an integral (see
    :func:`_log_gamma_q_and_dk`); the others are in closed form.

    Returns
    -------
    tuple of numpy.ndarray
        ``(loglik, d_k, d_lam, d_mu)``.
    """
    return tuple(_run_loglik(litt, frequency, recency, T, k, lam, mu, True))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_kernel(k, lam, mu, litt, x, t_x, T):  # pragma: no cover - compiled
    """Total log-likelihood of every customer given their own ``k, lam, mu``, and its partials (3, n)."""
    out = np.empty((4, x.size))
    _loglik_kernel(x, t_x, T, litt, k, lam, mu, True, out)
    return out[0].sum(), out[1:].copy()


def summed_loglik(litt, frequency, recency, T, k, lam, mu, xp=PT):
    """Sum of :func:`loglik` over the customers, each with their own ``k, lam, mu`` (vectors of one length).

    ``xp=PT``: a PyTensor scalar whose gradient comes from the same compiled pass
    (:func:`loglik_gradient`), for NUTS on the customers' latents; ``xp=NP``: a float.
    """
    data = [np.ascontiguousarray(v, dtype=float) for v in (litt, frequency, recency, T)]
    if xp is PT:
        return SummedLoglikOp(_summed_kernel, 3)(k, lam, mu, *data)[0]
    return float(np.sum(loglik(*data, k, lam, mu, xp=NP)))


def _log_alive_and_bracket(frequency, recency, T, k, lam, mu):
    """``log`` of the alive-at-T part and of the whole bracket, both after the factor ``e^(-mu t_x)``."""
    delta = np.asarray(T, dtype=float) - np.asarray(recency, dtype=float)
    x = np.zeros_like(delta)
    bracket = _run_loglik(x, x, x, delta, k, lam, mu, False)[0]  # x = t_x = 0: the bracket alone
    log_q = _log_gamma_q(k, np.multiply(np.multiply(k, lam), delta))
    return -np.multiply(mu, delta) + log_q, bracket


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_q_kernel(a, y, out):  # pragma: no cover - compiled
    for i in range(a.size):
        out[i] = log_gamma_q(a[i], y[i])


def _log_gamma_q(a, y):
    arrays = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(y, dtype=float))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty(flat[0].size)
    _log_gamma_q_kernel(*flat, out)
    return out.reshape(arrays[0].shape)


def probability_alive(frequency, recency, T, k, lam, mu):
    """P(alive at T | history, k, lam, mu): ``e^(-mu Delta) Q(k, k lam Delta)`` over the bracket of :func:`loglik`.

    Only ``Delta = T - t_x`` matters: the purchases before ``t_x`` say nothing more
    about the present given the individual parameters.
    """
    log_alive, bracket = _log_alive_and_bracket(frequency, recency, T, k, lam, mu)
    return np.exp(log_alive - bracket)


def probability_alive_at(t, frequency, recency, T, k, lam, mu, given_alive=False):
    """P(alive at ``T + t``): ``e^(-mu t)`` given alive at ``T``, times P(alive) otherwise."""
    survive = np.exp(-np.multiply(mu, t))
    return survive if given_alive else survive * probability_alive(frequency, recency, T, k, lam, mu)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _renewal_kernel(t, delta, k, lam, mu, out):  # pragma: no cover - compiled
    """E[purchases in (T, T+t] | alive at T, Delta since the last one] per element (see :func:`expected_purchases`).

    The next purchase time ``w`` (after ``T``) is integrated in ``log(Delta + w)`` up to
    ``t/2`` (``RENEWAL``: resolves the Gamma density's ``w^(k-1)`` at ``Delta = 0``) and in
    ``log(t - w)`` beyond (``RENEWAL_END``: the renewal function left, ``1 + c (t-w)^k + ...``,
    is smooth there); with ``Delta = 0`` the part below ``e^lo`` is ``e^(k lo)/k`` times the
    renewal function at ``t`` (constant there to ``e^-40``).
    """
    p = np.empty(7)
    grad = np.empty(5)
    work = workspace()
    for i in range(t.size):
        if not t[i] > 0.0:
            out[i] = 0.0
            continue
        kl = k[i] * lam[i]
        rate = kl + mu[i]
        p[0], p[1], p[2], p[3], p[4] = k[i], kl, mu[i], delta[i], t[i]
        p[5], p[6] = -k[i] * math.log1p(mu[i] / kl), rate
        # density of the next purchase time W (> Delta): (k lam)^k W^(k-1) e^(-k lam W) / (Gamma(k) Q(k, k lam Delta))
        log_norm = k[i] * math.log(kl) - math.lgamma(k[i]) - log_gamma_q(k[i], kl * delta[i])
        half = math.log(0.5 * t[i])
        log_i = integrate(RENEWAL_END, p, half - _TAIL_DROP, half, False, grad, work)
        mid = math.log(delta[i] + 0.5 * t[i])
        if delta[i] > 0.0:
            log_i = logaddexp(log_i, integrate(RENEWAL, p, math.log(delta[i]), mid, False, grad, work))
        else:
            lo = math.log(min(0.5 * t[i], 1.0 / rate)) - _TAIL_DROP
            log_i = logaddexp(log_i, integrate(RENEWAL, p, lo, mid, False, grad, work))
            tail = (k[i] * lo - rate * math.exp(lo) - math.log(k[i])
                    + math.log(killed_renewals(t[i], k[i], p[5], rate)))
            log_i = logaddexp(log_i, tail)
        out[i] = math.exp(log_norm + log_i)


def expected_purchases(t, frequency, recency, T, k, lam, mu, given_alive=False):
    """E[purchases in ``(T, T+t]`` | history, k, lam, mu].

    Alive at ``T`` with ``Delta = T - t_x`` since the last purchase, the next one
    comes at ``W - Delta`` with ``W ~ Gamma(k, k lam)`` conditioned on ``W > Delta``;
    from it on, the renewals in the remaining time before the Exp(mu) death number
    ``sum_n omega^(nk) P(nk, (k lam + mu) v)`` in expectation (``v`` the time left,
    the first one included), each discounted by its survival ``e^(-mu (W - Delta))``.
    The integral over ``W`` is taken in ``log W``. At ``k = 1`` this is
    ``lam/mu (1 - e^(-mu t))``. With ``given_alive=False`` multiplied by
    :func:`probability_alive`.
    """
    delta = np.asarray(T, dtype=float) - np.asarray(recency, dtype=float)
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, delta, k, lam, mu)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty(flat[0].size)
    _renewal_kernel(*flat, out)
    per_alive = out.reshape(arrays[0].shape)
    return per_alive if given_alive else per_alive * probability_alive(frequency, recency, T, k, lam, mu)


def discounted_expected_purchases(ends, factors, frequency, recency, T, k, lam, mu, given_alive=False):
    """Present value of the expected purchases: ``sum_j factors[j]`` times those in ``(T + ends[j-1], T + ends[j]]``.

    See :func:`bayesclv.formulas._ops.discounted_increments`; ``given_alive`` as in
    :func:`expected_purchases`.
    """
    return discounted_increments(
        lambda t: expected_purchases(t, frequency, recency, T, k, lam, mu, given_alive=given_alive), ends, factors)


def _count_tail(n, t, delta, k, lam, mu):
    """P(at least ``n >= 1`` purchases in ``(T, T+t]`` | alive at ``T``, ``Delta`` since the last one).

    The ``n``-th purchase comes at ``V + G`` with ``V = W - Delta`` the wait for the next
    one and ``G ~ Gamma((n-1) k, k lam)`` the ``n - 1`` gaps after it; it is seen when it
    precedes both death and ``t``: ``E[e^(-mu V) omega^((n-1)k) P((n-1)k, (k lam + mu)(t - V)); V < t]``
    (as for the bracket of :func:`loglik`). The expectation over ``V`` is taken in its log
    survival ``y = log P(V > v)`` (Gauss-Legendre on ``[log P(V > t), 0]``, weight ``e^y``):
    ``V`` is nearly linear in ``y`` for any ``k``, so the integrand is smooth where the
    probability scale would crowd its variation into the upper end.
    """
    kl = k * lam
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        tail_delta = special.gammaincc(k, kl * delta)  # P(W > Delta)
        low = np.log(special.gammaincc(k, kl * (delta + t))) - np.log(tail_delta)  # log P(V > t)
        low = np.where(tail_delta > 0.0, np.maximum(np.nan_to_num(low, nan=0.0), -_TAIL_DROP), 0.0)
        nodes, weights = gauss_legendre(_COUNT_NODES)
        y = low[..., None] * (1.0 - nodes)
        wait = special.gammainccinv(k[..., None], np.exp(y) * tail_delta[..., None]) / kl[..., None] - delta[..., None]
        wait = np.clip(np.nan_to_num(wait, nan=t), 0.0, t)
        value = np.exp(y - mu[..., None] * wait)
        if n > 1:
            m = (n - 1) * k[..., None]
            value = value * np.exp(-m * np.log1p(mu / kl)[..., None]) * special.gammainc(
                m, (kl + mu)[..., None] * (t - wait))
    return -low * (value @ weights)


def probability_of_purchases(n, t, frequency, recency, T, k, lam, mu):
    """P(exactly ``n`` purchases in ``(T, T+t]`` | history, k, lam, mu).

    Alive at ``T`` (:func:`probability_alive`), the count is at least ``n`` with the
    probability of :func:`_count_tail`; the difference of two such tails is the
    probability of exactly ``n``. A customer dead at ``T`` makes none. At ``k = 1``
    this is the Pareto/NBD's.
    """
    n, t = int(n), float(t)
    delta = np.asarray(T, dtype=float) - np.asarray(recency, dtype=float)
    delta, k, lam, mu = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(delta, k, lam, mu))
    at_least = 1.0 if n == 0 else _count_tail(n, t, delta, k, lam, mu)
    exactly = at_least - _count_tail(n + 1, t, delta, k, lam, mu)
    p_alive = probability_alive(frequency, recency, T, k, lam, mu)
    return p_alive * np.clip(exactly, 0.0, 1.0) + (1.0 - p_alive) * float(n == 0)


def log_population_density(k, lam, mu, t, gamma, r, alpha, s, beta, xp=NP):
    """Log density of the latents: ``k ~ Gamma(t, gamma)``, ``lam ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``."""
    def log_gamma(v, shape, rate):
        return shape * xp.log(rate) - xp.gammaln(shape) + (shape - 1.0) * xp.log(v) - rate * v

    return log_gamma(k, t, gamma) + log_gamma(lam, r, alpha) + log_gamma(mu, s, beta)


def simulate_histories(T, k, lam, mu, rng=None, times=False):
    """Simulate the histories of customers with known ``k, lam, mu``, observed for ``T`` since their first purchase.

    Inter-purchase times are ``Gamma(k, k lam)`` and the lifetime ``Exp(mu)``;
    purchases are recorded while alive and up to ``T``.

    Parameters
    ----------
    T, k, lam, mu : array_like
        Broadcast to one shape (one entry per customer).
    rng : numpy.random.Generator or int, optional
    times : bool, default False
        Also return each customer's repeat purchase times (a list of arrays).

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T``, ``litt`` (sum of log inter-purchase times),
        ``k``, ``lambda``, ``mu``, ``alive`` (at ``T``)[, ``times``].
    """
    rng = np.random.default_rng(rng)
    T, k, lam, mu = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(T, k, lam, mu))
    shape = T.shape
    T_, k_, lam_, mu_ = (v.ravel() for v in (T, k, lam, mu))
    end = np.minimum(rng.exponential(1.0 / mu_), T_)
    x, t_x, litt, log = gamma_renewals(rng, np.zeros(T_.size), end, k_, k_ * lam_, _MAX_PURCHASES, times)
    out = {"frequency": x.reshape(shape), "recency": t_x.reshape(shape), "T": T, "litt": litt.reshape(shape),
           "k": k, "lambda": lam, "mu": mu, "alive": ((end == T_) & (end > 0)).reshape(shape)}
    if times:
        out["times"] = log
    return out


def simulate_population(T, t, gamma, r, alpha, s, beta, rng=None):
    """Simulate calibration histories of new customers: latents from the population, then :func:`simulate_histories`."""
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (t, gamma, r, alpha, s, beta)))
    k = rng.gamma(t, 1.0 / np.asarray(gamma), size=shape)
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    mu = rng.gamma(s, 1.0 / np.asarray(beta), size=shape)
    return simulate_histories(np.broadcast_to(T, shape), k, lam, mu, rng)


def simulate_future_purchases(t, frequency, recency, T, k, lam, mu, rng=None):
    """Purchase counts in ``(T, T+t]`` given the history and ``k, lam, mu``.

    Alive at ``T`` with :func:`probability_alive`; an alive customer's next purchase
    comes at ``W - Delta`` with ``W ~ Gamma(k, k lam) | W > Delta`` (drawn by
    inverting ``Q(k, k lam W) = U Q(k, k lam Delta)``), the later ones after further
    ``Gamma(k, k lam)`` times, until the ``Exp(mu)`` death or ``T + t``.
    """
    rng = np.random.default_rng(rng)
    delta = np.asarray(T, dtype=float) - np.asarray(recency, dtype=float)
    t, delta, k, lam, mu = (np.array(v, dtype=float) for v in np.broadcast_arrays(t, delta, k, lam, mu))
    alive = rng.random(delta.shape) < probability_alive(0.0, 0.0, delta, k, lam, mu)  # only Delta matters
    end = np.minimum(rng.exponential(1.0 / mu), t)
    tail = special.gammaincc(k, k * lam * delta) * rng.random(delta.shape)
    clock = special.gammainccinv(k, tail) / (k * lam) - delta
    count = np.zeros(delta.size, dtype=np.int64)
    seen = np.flatnonzero(alive & (clock <= end))  # the next purchase falls inside the horizon
    clock, end, k, lam = (v.ravel()[seen] for v in (clock, end, k, lam))
    count[seen] = 1 + gamma_renewals(rng, clock, end, k, k * lam, _MAX_PURCHASES)[0].astype(np.int64)
    return count.reshape(delta.shape)
