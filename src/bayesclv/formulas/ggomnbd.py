"""Gamma-Gompertz/NBD model (Bemmaor & Glady 2012).

An alive customer buys as a Poisson process with rate ``lambda ~ Gamma(r,
rate=alpha)``. Lifetimes are Gompertz with a common shape ``b`` and a
customer's own scale ``eta ~ Gamma(s, rate=beta)``: ``P(alive at tau | eta) =
exp(-eta (e^(b tau) - 1))``, so across customers ``S(tau) = (beta / (beta +
e^(b tau) - 1))^s``. The lifetime density can have an interior mode, which the
Pareto/NBD's cannot.

With the rates integrated out, the likelihood of a history ``(x, t_x, T)`` is::

    L = Gamma(r+x)/Gamma(r) alpha^r beta^s [ (alpha+T)^-(r+x) (beta + e^(bT) - 1)^-s
                                            + b s J ],
    J = int_{t_x}^{T} (alpha+tau)^-(r+x) e^(b tau) (beta + e^(b tau) - 1)^-(s+1) dtau,

computed by adaptive quadrature (:mod:`bayesclv.formulas._ggom_integral`).

**Pareto/NBD limit.** With ``beta = b beta_P`` and ``b -> 0``,
``beta + e^(b tau) - 1 = b (beta_P + tau + O(b tau^2))``: ``S(tau) -> (beta_P /
(beta_P + tau))^s`` and ``b s beta^s J -> s beta_P^s J_P``, so ``L`` tends to the
Pareto/NBD likelihood with ``beta = beta_P`` (tested to 1e-8).

**Given alive at T** the posterior rates are independent, ``lambda ~ Gamma(r+x,
alpha+T)`` and ``eta ~ Gamma(s, beta + e^(bT) - 1)``, and the remaining
lifetime survives ``u`` more time units with probability
``S_T(u) = (1 + c (e^(bu) - 1))^-s``, ``c = e^(bT) / (beta + e^(bT) - 1)``. Every
expectation over the future is then ``E[lambda]`` times a discounted integral of
``S_T``; with ``y = e^(bu) - 1``,
``int_0^t e^(-delta u) S_T(u) du = (1/b) int_0^(e^(bt)-1) (1+y)^-(1+delta/b) (1+cy)^-s dy``,
a Pareto/NBD-type integral (``SURVIVAL`` in :mod:`bayesclv.formulas._adaptive_quadrature`).
This is the corrected conditional expectation (Adler 2022), not the one printed in
Bemmaor & Glady (2012).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas import _ggom_integral as gi
from bayesclv.formulas._adaptive_quadrature import GGOM_COUNT, SURVIVAL, integrate, log_y, offset, workspace
from bayesclv.formulas._distinct import per_distinct
from bayesclv.formulas._ops import NP, PT
from bayesclv.formulas._special import logaddexp
from bayesclv.formulas._summed import distinct, draw_vectors, read_only_tables, summed_loglik_function

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

PARAMETERS = ("r", "alpha", "b", "s", "beta")
_TAIL_MARGIN = 40.0  # SURVIVAL to infinity: pure power law beyond e^40 times the larger scale


def _log_beta_expm1(beta, bt, xp):
    """``log(beta + e^bt - 1)``: directly for ``bt <= 30``, else ``bt + log1p((beta - 1) e^-bt)``."""
    small = xp.minimum(bt, 30.0)
    return xp.where(bt <= 30.0, xp.log(beta + xp.expm1(small)),
                    bt + xp.log1p((beta - 1.0) * xp.exp(-xp.maximum(bt, 30.0))))


def _shared_over_histories(frequency, recency, T, params, alive):
    """:func:`_ggom_integral.shared_over_draws` for draws x histories when the parameters vary along draws only.

    Returns an array ``(..., rows)``, or None where the arrays are not laid out so.
    """
    x, t_x, T = (np.require(v, float, "C") for v in (frequency, recency, T))  # one layout: one compilation
    by_draw = draw_vectors(params, x, t_x, T)
    if by_draw is None:
        return None
    lead, flat = by_draw
    zeros = np.zeros(x.size, dtype=np.int64)
    xs, Ts = distinct(zeros, x), distinct(zeros, T)
    limits, start, stop, row_a, row_b = gi.shared_limits(xs.index, t_x, T)
    out = np.empty((flat[0].size, x.size))
    gi.shared_over_draws(*flat, xs.value, start, stop, limits, xs.index, row_a, row_b, t_x, Ts.value, Ts.index,
                         alive, out)
    return out.reshape(*lead, x.size)


def _log_lifetime_integral(frequency, recency, T, r, alpha, b, s, beta, xp):
    """``log J`` (module docstring): shared between histories over draws with NumPy where possible."""
    if xp is NP:
        log_j = _shared_over_histories(frequency, recency, T, (r, alpha, b, s, beta), alive=False)
        if log_j is not None:
            return log_j
        return gi.log_lifetime_integral(r + frequency, alpha, b, s, beta, recency, T)[0]
    return gi.log_lifetime_integral_op(r + frequency, alpha, b, s, beta, recency, T)[0]


def loglik(frequency, recency, T, r, alpha, b, s, beta, xp=PT):
    """Per-customer GGom/NBD log-likelihood.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x``, age ``T``.
    r, alpha, b, s, beta : array_like or TensorVariable
        Population parameters (positive).
    xp : namespace, default PT
        ``PT`` for a PyTensor expression (the lifetime integral is an Op whose
        gradient comes from the same compiled pass), ``NP`` for NumPy.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, b, s, beta | x, t_x, T)``.
    """
    x, t_x, T = (xp.asarray(v) for v in (frequency, recency, T))
    r, alpha, b, s, beta = (xp.asarray(v) for v in (r, alpha, b, s, beta))
    alive = -(r + x) * xp.log(alpha + T) - s * _log_beta_expm1(beta, b * T, xp)
    log_j = _log_lifetime_integral(x, t_x, T, r, alpha, b, s, beta, xp)
    dropped = xp.where(t_x < T, xp.log(b) + xp.log(s) + log_j, -np.inf)
    diff = xp.where(dropped > -np.inf, dropped - alive, -np.inf)
    return (xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha) + s * xp.log(beta) + alive
            + xp.softplus(diff))


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
        Distinct ``x`` per group with their total weights and sorted limits
        (the ``t_x`` and ``T`` of its histories); distinct ``T`` per group;
        each row's entries in those tables, its own ``t_x`` and weight; and the
        total weight of each group.
    """
    x, t_x, T, w = (np.asarray(v, dtype=float) for v in (frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    xs, Ts = distinct(g, x), distinct(g, T)
    limits, start, stop, row_a, row_b = gi.shared_limits(xs.index, t_x, T)
    return (xs.group, xs.value, xs.total(w), start, stop, Ts.group, Ts.value, limits, xs.index, Ts.index,
            row_a, row_b, t_x, w, np.bincount(g, weights=w, minlength=g.max(initial=0) + 1))


summed_loglik = summed_loglik_function(gi.summed_loglik_kernel, PARAMETERS, "GGom/NBD")


def probability_alive(frequency, recency, T, r, alpha, b, s, beta):
    """P(customer is alive at T | history), by Bayes' rule on the two likelihood parts."""
    shared = _shared_over_histories(frequency, recency, T, (r, alpha, b, s, beta), alive=True)
    if shared is not None:
        return shared
    x, t_x = np.asarray(frequency, dtype=float), np.asarray(recency, dtype=float)
    alive = -(r + x) * np.log(alpha + T) - s * _log_beta_expm1(beta, np.multiply(b, T), NP)
    log_j = gi.log_lifetime_integral(r + x, alpha, b, s, beta, t_x, T)[0]
    with np.errstate(invalid="ignore"):
        return special.expit(alive - np.where(t_x < T, np.log(b) + np.log(s) + log_j, -np.inf))


def _log_c(T, b, beta):
    """``log c``, ``c = e^(bT) / (beta + e^(bT) - 1)``: the remaining lifetime survives with ``(1 + c y)^-s``."""
    bt = np.multiply(b, T)
    return bt - _log_beta_expm1(beta, bt, NP)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _survival_frame(s, sigma, log_c, p):  # pragma: no cover - compiled
    """Fill ``p`` with the SURVIVAL integrand's parameters; return ``log(1/c)``, ``m = min(1/c, 1)``, ``log m``."""
    log_ic = -log_c
    log_m = min(log_ic, 0.0)
    m = math.exp(log_m)
    p[0], p[1], p[2], p[3], p[4] = s, sigma, log_ic, m, log_m
    return log_ic, m, log_m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _survival_integral_kernel(s, sigma, log_c, b, t, out):  # pragma: no cover - compiled
    """``log int_0^t (1 + c (e^(bu) - 1))^-s e^(-(sigma-1) b u) du`` per element (``t`` may be ``inf``).

    In ``y = e^(bu) - 1`` it is ``(1/b) c^-s int (1/c + y)^-s (1 + y)^-sigma dy``, integrated in
    ``v = log(1 + y/m)``, ``m = min(1/c, 1)``; to infinity, beyond ``m + y = e^40`` times
    ``max(1/c, 1) (s + sigma)`` the integrand is the power law ``y^-(s+sigma)`` to rounding, whose
    tail is added in closed form.
    """
    p = np.empty(5)
    grad = np.empty(5)
    work = workspace()
    for i in range(s.size):
        log_ic, m, log_m = _survival_frame(s[i], sigma[i], log_c[i], p)
        if np.isinf(t[i]):
            top = max(log_ic, 0.0) - log_m + _TAIL_MARGIN + math.log(s[i] + sigma[i])
            log_i = integrate(SURVIVAL, p, 0.0, top, False, grad, work)
            ly, l1 = log_y(top, m, log_m)
            log_tail = top - s[i] * logaddexp(log_ic, ly) - sigma[i] * l1 - math.log(s[i] + sigma[i] - 1.0)
            log_i = logaddexp(log_i, log_tail)
        else:
            log_i = integrate(SURVIVAL, p, 0.0, offset(b[i] * t[i], m, log_m), False, grad, work)
        out[i] = log_i + log_m - s[i] * log_c[i] - math.log(b[i])


def _log_survival_integral(t, s, b, log_c, delta=0.0):
    """``log int_0^t e^(-delta u) S_T(u) du`` broadcast (``t = inf`` for the infinite horizon)."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s, 1.0 + np.divide(delta, b), log_c, b, t)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty(flat[0].size)
    _survival_integral_kernel(*flat, out)
    return out.reshape(arrays[0].shape)


def probability_alive_at(t, frequency, recency, T, r, alpha, b, s, beta, given_alive=False):
    """P(alive at ``T + t`` | history) = P(alive at T) ``(1 + c (e^(bt) - 1))^-s``.

    With ``given_alive=True``, conditional on being alive at ``T`` (the second factor).
    """
    bt = np.multiply(b, t)
    with np.errstate(divide="ignore"):
        log_expm1 = np.where(bt > 0, bt + np.log(-np.expm1(-np.maximum(bt, 1e-300))), -np.inf)
    survive = np.exp(-s * np.logaddexp(0.0, _log_c(T, b, beta) + log_expm1))
    return survive if given_alive else probability_alive(frequency, recency, T, r, alpha, b, s, beta) * survive


def _time_alive(T, t, b, s, beta, delta=0.0):
    """``int_0^t e^(-delta u) S_T(u) du`` (``t = inf``: infinite horizon), once per distinct ``T`` where possible."""
    def value(T, t, b, s, beta, delta):
        return np.exp(_log_survival_integral(t, s, b, _log_c(T, b, beta), delta))

    if np.ndim(t) == 0:
        return per_distinct(value, [T], [t, b, s, beta, delta])
    return value(T, t, b, s, beta, delta)


def expected_purchases(t, frequency, recency, T, r, alpha, b, s, beta, given_alive=False):
    """E[X(T, T+t] | history]: P(alive) x E[lambda] x E[time alive in (T, T+t]]."""
    x = np.asarray(frequency, dtype=float)
    per_alive = (r + x) / np.add(alpha, T) * _time_alive(T, t, b, s, beta)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, b, s, beta) * per_alive


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _discounted_time_alive_kernel(s, log_c, b, ends, factors, out):  # pragma: no cover - compiled
    """``sum_j factors[j] int_(ends[j-1])^(ends[j]) S_T(u) du`` per element (``ends[-1] = 0``).

    Each period's piece is integrated on its own (as in :func:`_survival_integral_kernel`,
    ``sigma = 1``), so a period costs the same however far out it lies; a piece with
    ``ends[j] < ends[j-1]`` counts negatively.
    """
    p = np.empty(5)
    grad = np.empty(5)
    work = workspace()
    for i in range(s.size):
        _, m, log_m = _survival_frame(s[i], 1.0, log_c[i], p)
        scale = log_m - s[i] * log_c[i] - math.log(b[i])
        total, lo = 0.0, 0.0
        for j in range(ends.size):
            hi = offset(b[i] * ends[j], m, log_m)
            if hi >= lo:
                total += factors[j] * math.exp(integrate(SURVIVAL, p, lo, hi, False, grad, work) + scale)
            else:
                total -= factors[j] * math.exp(integrate(SURVIVAL, p, hi, lo, False, grad, work) + scale)
            lo = hi
        out[i] = total


def _discounted_time_alive(ends, factors, T, b, s, beta):
    """``sum_j factors[j]`` times the time alive in ``(T + ends[j-1], T + ends[j]]``, once per distinct ``T``."""
    ends, factors = (np.ascontiguousarray(np.asarray(v, dtype=float).ravel()) for v in (ends, factors))

    def value(T, b, s, beta):
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s, _log_c(T, b, beta), b)))
        flat = [np.ascontiguousarray(v).ravel() for v in arrays]
        out = np.empty(flat[0].size)
        _discounted_time_alive_kernel(*flat, ends, factors, out)
        return out.reshape(arrays[0].shape)

    return per_distinct(value, [T], [b, s, beta])


def discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, b, s, beta, given_alive=False):
    """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(T + ends[k-1], T + ends[k]]``.

    ``E[lambda]`` times the discounted time alive, each period's survival integral
    taken on its own (:func:`_discounted_time_alive_kernel`), so the cost grows in
    proportion to the number of periods; P(alive) is computed once.
    """
    x = np.asarray(frequency, dtype=float)
    per_alive = (r + x) / np.add(alpha, T) * _discounted_time_alive(ends, factors, T, b, s, beta)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, b, s, beta) * per_alive


def expected_purchases_new_customer(t, r, alpha, b, s, beta):
    """E[X(t)] for a customer observed since acquisition: ``r/alpha int_0^t S(u) du`` (``c = 1/beta``)."""
    return np.asarray(r) / alpha * np.exp(_log_survival_integral(t, s, b, -np.log(beta)))


def discounted_expected_residual_transactions(delta, frequency, recency, T, r, alpha, b, s, beta, given_alive=False):
    """DERT: ``E[int_T^inf e^(-delta (t-T)) dX(t) | history]`` for a continuous discount rate ``delta > 0``.

    ``P(alive) (r+x)/(alpha+T) int_0^inf e^(-delta u) S_T(u) du``; with
    ``given_alive=True``, without the P(alive) factor.
    """
    x = np.asarray(frequency, dtype=float)
    per_alive = (r + x) / np.add(alpha, T) * _time_alive(T, np.inf, b, s, beta, delta)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, b, s, beta) * per_alive


def expected_residual_lifetime(frequency, recency, T, r, alpha, b, s, beta, given_alive=False):
    """E[remaining lifetime after T | history]: ``P(alive) int_0^inf S_T(u) du`` (finite for every ``s > 0``).

    With ``given_alive=True``, without the P(alive) factor.
    """
    per_alive = _time_alive(T, np.inf, b, s, beta)
    return per_alive if given_alive else probability_alive(frequency, recency, T, r, alpha, b, s, beta) * per_alive


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _count_kernel(n, t, rho, big_a, s, log_c, b, out):  # pragma: no cover - compiled
    """P(``n`` purchases in the next ``t`` | alive now) per element (see :func:`probability_of_purchases`)."""
    p = np.empty(8)
    grad = np.empty(5)
    work = workspace()
    for i in range(n.size):
        log_norm = math.lgamma(rho[i] + n[i]) - math.lgamma(rho[i]) - math.lgamma(n[i] + 1.0)
        if not t[i] > 0.0:
            out[i] = 1.0 if n[i] == 0.0 else 0.0
            continue
        bt = b[i] * t[i]
        log_expm1 = bt + math.log(-math.expm1(-bt))
        through = (log_norm - rho[i] * math.log1p(t[i] / big_a[i])
                   + (n[i] * (math.log(t[i]) - math.log(big_a[i] + t[i])) if n[i] > 0.0 else 0.0)
                   - s[i] * logaddexp(0.0, log_c[i] + log_expm1))
        log_m = min(math.log(b[i] * big_a[i]), -log_c[i], 0.0)
        m = math.exp(log_m)
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = n[i], rho[i], big_a[i], s[i], log_c[i], b[i], m, log_m
        log_i = integrate(GGOM_COUNT, p, 0.0, offset(bt, m, log_m), False, grad, work)
        died = log_norm + math.log(s[i]) + log_c[i] + log_m + log_i
        out[i] = math.exp(logaddexp(through, died))


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, b, s, beta):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``.

    Alive at ``T`` (:func:`probability_alive`), the customer buys NBD(``r+x``,
    ``(alpha+T)/(alpha+T+w)``) purchases while alive for ``w = min(t, remaining
    lifetime)`` more time units; the remaining lifetime exceeds ``t`` with
    probability ``S_T(t)`` and has density ``-S_T'`` before (the second part is
    integrated with ``GGOM_COUNT``). A customer already dead makes none.
    """
    x = np.asarray(frequency, dtype=float)
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (
        n, t, r + x, np.add(alpha, T), s, _log_c(T, b, beta), b)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty(flat[0].size)
    _count_kernel(*flat, out)
    given_alive = out.reshape(arrays[0].shape)
    p_alive = probability_alive(x, recency, T, r, alpha, b, s, beta)
    return p_alive * given_alive + (1.0 - p_alive) * (np.asarray(n) == 0)


def _last_event_time(rng, count, window):
    """Time of the last of ``count`` uniform events in ``[0, window]`` (0 if none): ``window U^(1/count)``."""
    u = rng.random(np.shape(count))
    return np.where(count > 0, window * u ** (1.0 / np.maximum(count, 1)), 0.0)


def _gompertz_lifetime(exponential, eta, b):
    """``log(1 + E / eta) / b``: the lifetime with survival ``exp(-eta (e^(b tau) - 1))`` at ``E ~ Exp(1)``.

    A gamma draw of ``eta`` with a small shape underflows to 0: that customer's dropout rate is below
    anything a horizon can show, and the infinite lifetime it gives is the right limit, not an error.
    """
    with np.errstate(divide="ignore", over="ignore"):
        return np.log1p(exponential / eta) / b


def simulate_population(T, r, alpha, b, s, beta, rng=None):
    """Simulate calibration histories of new customers observed for ``T`` time units.

    ``lambda ~ Gamma(r, alpha)``, ``eta ~ Gamma(s, beta)``; the Gompertz lifetime is
    ``log(1 + E/eta) / b`` with ``E ~ Exp(1)`` (inverting ``exp(-eta (e^(b tau) - 1))``).

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``eta``, ``alive`` (at ``T``).
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (r, alpha, b, s, beta)))
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    eta = rng.gamma(s, 1.0 / np.asarray(beta), size=shape)
    lifetime = _gompertz_lifetime(rng.exponential(size=shape), eta, b)
    window = np.minimum(lifetime, T)
    x = rng.poisson(lam * window)
    return {"frequency": x.astype(float), "recency": _last_event_time(rng, x, window),
            "T": np.broadcast_to(T, shape).astype(float), "lambda": lam, "eta": eta, "alive": lifetime > T}


def simulate_future_purchases(t, frequency, recency, T, r, alpha, b, s, beta, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]``.

    Alive at ``T`` with P(alive | history); if alive, ``lambda ~ Gamma(r+x,
    alpha+T)`` and ``eta e^(bT) ~ Gamma(s, rate 1/c)``, the remaining lifetime is
    ``log(1 + E / (eta e^(bT))) / b`` and purchases are Poisson over the part of
    ``(T, T+t]`` the customer is alive for.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    p_alive = np.asarray(probability_alive(x, recency, T, r, alpha, b, s, beta))
    alive = rng.random(p_alive.shape) < p_alive
    lam = rng.gamma(r + x, 1.0 / np.add(alpha, T), size=p_alive.shape)
    scaled_eta = rng.gamma(s, np.exp(_log_c(T, b, beta)), size=p_alive.shape)
    remaining = _gompertz_lifetime(rng.exponential(size=p_alive.shape), scaled_eta, b)
    return np.where(alive, rng.poisson(lam * np.minimum(remaining, t)), 0)
