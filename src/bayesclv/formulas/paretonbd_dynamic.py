"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Naf 2021).

While alive, customer ``i`` buys as a Poisson process with rate
``lambda_i exp(gamma . x_i(t))`` and has the dropout hazard
``mu_i exp(delta . z_i(t))``, with ``lambda_i ~ Gamma(r, alpha)``,
``mu_i ~ Gamma(s, beta)`` and covariates constant on each period ``k``
(``a_k = exp(gamma . x_k)``, ``b_k = exp(delta . z_k)``). With the cumulative
rates ``A(t) = int_0^t a``, ``B(t) = int_0^t b`` and purchases at ``t_1..t_x``
in ``(0, T]``, given the rates::

    L(lambda, mu) = lambda^x prod_j a(t_j) [ exp(-lambda A(T) - mu B(T))
                    + int_{t_x}^T mu b(tau) exp(-lambda A(tau) - mu B(tau)) dtau ].

Integrating ``lambda`` and ``mu`` out under their gamma distributions::

    L = Gamma(r+x)/Gamma(r) alpha^r beta^s exp(gamma . sum_j x(t_j))
        [ (alpha+A(T))^-(r+x) (beta+B(T))^-s
          + s sum_k b_k int_{piece k of (t_x, T]} (alpha+A(tau))^-(r+x) (beta+B(tau))^-(s+1) dtau ].

On piece ``k`` (from ``tau_k``, length ``L_k``) ``A`` and ``B`` are linear, so
with ``alpha_k = (alpha + A(tau_k)) / a_k`` and ``beta_k = (beta + B(tau_k)) / b_k``
the piece's integral is ``a_k^-(r+x) b_k^-(s+1) int_0^{L_k} (alpha_k+u)^-(r+x)
(beta_k+u)^-(s+1) du``: the static Pareto/NBD's lifetime integral ``J`` with
shifted scales, evaluated (with exact gradients) by
:mod:`bayesclv.formulas._lifetime_integral`. The data enter through the
per-customer sum of the purchase covariates at the purchase times and each
period's overlap with ``[0, t_x]`` and ``(t_x, T]``.

With one constant covariate vector per customer this is the static-covariate
Pareto/NBD with ``alpha_i = alpha exp(-gamma . x_i)``, ``beta_i = beta exp(-delta . z_i)``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from scipy import special

from bayesclv.formulas._lifetime_integral import log_lifetime_integral_np, log_lifetime_integral_op
from bayesclv.formulas._ops import NP, PT

__all__ = ["PARAMETERS", "expected_purchases", "log_rates", "loglik", "overlap", "probability_alive",
           "probability_alive_at", "simulate_purchase_times"]

PARAMETERS = ("r", "alpha", "s", "beta")


def overlap(start, end, lo, hi):
    """Length of each piece ``[start, end)`` inside ``[lo, hi]`` (``lo``, ``hi`` per customer, shape ``(N,)``)."""
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    lo, hi = np.asarray(lo, dtype=float)[..., None], np.asarray(hi, dtype=float)[..., None]
    return np.maximum(0.0, np.minimum(end, hi) - np.maximum(start, lo))


def log_rates(values, coef, xp=NP):
    """``coef . values`` per piece: ``values`` ``(N, K, P)``, ``coef`` ``(P,)`` (or ``(D, P)`` with NumPy)
    -> ``(N, K)`` (``(D, N, K)``); 0 without covariates."""
    values = np.asarray(values, dtype=float)
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1])
    if xp is PT:
        return pt.tensordot(pt.as_tensor_variable(values), coef, axes=[[2], [0]])
    return np.einsum("nkp,...p->...nk", values, np.asarray(coef, dtype=float))


def _cumulative(lengths, rate, xp):
    """``(total, at_start)``: ``sum_k lengths rate`` and the sum over the pieces before each piece."""
    seg = lengths * rate
    mod = pt if xp is PT else np
    total = mod.sum(seg, axis=-1)
    return total, mod.cumsum(seg, axis=-1) - seg


def _log_piece_integrals(p, q, scale_a, scale_b, lengths, xp):
    """``log int_0^{L} (scale_a+u)^-p (scale_b+u)^-q du`` per piece ``(..., N, K)``; ``-inf`` for an empty piece.

    Substituting ``Q = log(m + u)`` with ``m = min(scale_a, scale_b)`` gives the
    static lifetime integral's form; its quadrature windows the integrand to
    where it has mass, so a large ``p`` costs nothing extra. Only the pieces
    with a length (known from the data) are integrated: most periods of a
    customer who bought recently lie before ``t_x``.
    """
    lengths = np.asarray(lengths, dtype=float)
    full = scale_a + 0.0 * (p + scale_b)  # every argument at the pieces' shape
    shape = lengths.shape
    idx = np.flatnonzero(lengths.reshape(-1) > 0.0)
    if xp is PT:
        def take(v):
            return (v + 0.0 * full).reshape((-1,))[idx]
    else:
        def take(v):
            v = np.broadcast_to(v, np.broadcast_shapes(np.shape(v), np.shape(full)))
            return v.reshape(*v.shape[:-2], -1)[..., idx]
    a, b = take(scale_a), take(scale_b)
    m = xp.zero_grad(xp.minimum(a, b))
    args = (take(p), take(q), a - m, b - m, xp.log(m), xp.log(m + lengths.reshape(-1)[idx]))
    if xp is PT:
        values = log_lifetime_integral_op(*args)[0]
        empty = pt.full((int(np.prod(shape)),), -np.inf, dtype="float64")  # float64: a bare -inf would be float32
        return pt.set_subtensor(empty[idx], values).reshape(shape)
    values = log_lifetime_integral_np(*args)[0]
    out = np.full((*np.shape(full)[:-2], int(np.prod(shape))), -np.inf)
    out[..., idx] = values
    return out.reshape(*np.shape(full)[:-2], *shape)


def _param(v, xp):
    """A population parameter ready to broadcast against ``(..., N, K)`` arrays."""
    v = xp.asarray(v)
    return v[..., None, None] if xp is PT else np.asarray(v, dtype=float)[..., None, None]


def _log_parts(frequency, before, within, purchase_values, dropout_values, r, alpha, s, beta,
               purchase_coef, dropout_coef, xp):
    """Log of the alive-at-T part and of each piece's dropped-in-piece part, both without the common factor
    ``Gamma(r+x)/Gamma(r) alpha^r beta^s exp(gamma . sum_j x(t_j))``; also ``A(T)``, ``B(T)``."""
    x = np.asarray(frequency, dtype=float)
    r2, alpha2, s2, beta2 = (_param(v, xp) for v in (r, alpha, s, beta))
    log_a = log_rates(purchase_values, purchase_coef, xp)
    log_b = log_rates(dropout_values, dropout_coef, xp)
    a, b = xp.exp(log_a), xp.exp(log_b)
    a_tx, _ = _cumulative(before, a, xp)
    b_tx, _ = _cumulative(before, b, xp)
    a_win, a_start = _cumulative(within, a, xp)
    b_win, b_start = _cumulative(within, b, xp)
    a_T, b_T = a_tx + a_win, b_tx + b_win
    p = r2 + x[:, None]  # (..., N, 1)
    log_alive = -p[..., 0] * xp.log(alpha2[..., 0] + a_T) - s2[..., 0] * xp.log(beta2[..., 0] + b_T)
    scale_a = (alpha2 + a_tx[..., None] + a_start) / a
    scale_b = (beta2 + b_tx[..., None] + b_start) / b
    log_j = _log_piece_integrals(p, s2 + 1.0, scale_a, scale_b, within, xp)
    log_pieces = xp.log(s2) - p * log_a - s2 * log_b + log_j
    return log_alive, log_pieces, a_T, b_T


def loglik(frequency, purchase_sum, before, within, purchase_values, dropout_values,
           r, alpha, s, beta, purchase_coef, dropout_coef, xp=PT):
    """Per-customer log-likelihood of the Pareto/NBD with time-varying covariates.

    Parameters
    ----------
    frequency : array_like, shape (N,)
        Repeat purchases ``x``.
    purchase_sum : array_like, shape (N, P)
        Sum over the repeat purchases of the purchase covariates at their times.
    before, within : array_like, shape (N, K)
        Each covariate period's overlap with ``[0, t_x]`` and with ``(t_x, T]``
        (:func:`overlap`); padding periods have 0 in both.
    purchase_values, dropout_values : array_like, shape (N, K, P) and (N, K, Q)
        The covariates of each period.
    r, alpha, s, beta : float or TensorVariable
        Population parameters (NumPy: also arrays ``(D,)`` of draws).
    purchase_coef, dropout_coef : array_like, shape (P,) and (Q,)
        Effects on the log purchase rate and the log dropout rate (NumPy: also ``(D, P)``).
    xp : namespace, default PT
        ``PT`` for a PyTensor expression, ``NP`` for NumPy.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L`` per customer, shape ``(N,)`` (``(D, N)`` with draws).
    """
    x = np.asarray(frequency, dtype=float)
    log_alive, log_pieces, _, _ = _log_parts(x, before, within, purchase_values, dropout_values,
                                             r, alpha, s, beta, purchase_coef, dropout_coef, xp)
    r0, alpha0, s0, beta0 = (xp.asarray(v) if xp is PT else np.asarray(v, dtype=float)[..., None]
                             for v in (r, alpha, s, beta))
    purchase_term = _purchase_term(purchase_sum, purchase_coef, xp)
    return (xp.gammaln(r0 + x) - xp.gammaln(r0) + r0 * xp.log(alpha0) + s0 * xp.log(beta0)
            + purchase_term + _log_total(log_alive, log_pieces, xp))


def _log_total(log_alive, log_pieces, xp):
    """``log(exp(log_alive) + sum_k exp(log_pieces))``, shifted by the largest term.

    Written out rather than PyTensor's ``logsumexp``, an OpFromGraph whose inner
    function the copies of a compiled function share: nutpie's chains call their
    copies from parallel threads.
    """
    mod = pt if xp is PT else np
    parts = mod.concatenate([log_alive[..., None], log_pieces], axis=-1)
    top = xp.zero_grad(mod.max(parts, axis=-1, keepdims=True))  # finite: the alive part always is
    return top[..., 0] + xp.log(mod.sum(xp.exp(parts - top), axis=-1))


def _purchase_term(purchase_sum, coef, xp):
    """``gamma . sum_j x(t_j)`` per customer."""
    sums = np.asarray(purchase_sum, dtype=float)
    if sums.shape[-1] == 0:
        return 0.0
    if xp is PT:
        return pt.dot(sums, coef)
    return np.einsum("np,...p->...n", sums, np.asarray(coef, dtype=float))


def probability_alive(frequency, before, within, purchase_values, dropout_values,
                      r, alpha, s, beta, purchase_coef, dropout_coef):
    """P(alive at ``T``) given the history (NumPy; draws along a leading axis): Bayes' rule on the parts."""
    log_alive, log_pieces, _, _ = _log_parts(frequency, before, within, purchase_values, dropout_values,
                                             r, alpha, s, beta, purchase_coef, dropout_coef, NP)
    parts = np.concatenate([log_alive[..., None], log_pieces], axis=-1)
    return np.exp(log_alive - special.logsumexp(parts, axis=-1))


def _future(frequency, before, within, future, purchase_values, dropout_values,
            r, alpha, s, beta, purchase_coef, dropout_coef):
    """Shared pieces of the predictions: ``(P(alive at T), a, b, A(T), B(T))`` with ``a, b`` per piece."""
    log_alive, log_pieces, a_T, b_T = _log_parts(frequency, before, within, purchase_values, dropout_values,
                                                 r, alpha, s, beta, purchase_coef, dropout_coef, NP)
    parts = np.concatenate([log_alive[..., None], log_pieces], axis=-1)
    alive = np.exp(log_alive - special.logsumexp(parts, axis=-1))
    a = np.exp(log_rates(purchase_values, purchase_coef)) + 0.0 * future
    b = np.exp(log_rates(dropout_values, dropout_coef)) + 0.0 * future
    return alive, a, b, a_T, b_T


def probability_alive_at(frequency, before, within, future, purchase_values, dropout_values,
                         r, alpha, s, beta, purchase_coef, dropout_coef, given_alive=False):
    """P(alive at ``T + t``), ``future`` the periods' overlaps with ``(T, T + t]``.

    Given alive at ``T``, ``mu ~ Gamma(s, beta + B(T))``, so the survival to
    ``T + t`` is ``((beta + B(T)) / (beta + B(T + t)))^s``.
    """
    alive, _, b, _, b_T = _future(frequency, before, within, future, purchase_values, dropout_values,
                                  r, alpha, s, beta, purchase_coef, dropout_coef)
    s_, beta_ = (np.asarray(v, dtype=float)[..., None] for v in (s, beta))
    added = np.sum(future * b, axis=-1)
    survive = np.exp(-s_ * np.log1p(added / (beta_ + b_T)))
    return survive if given_alive else alive * survive


def expected_purchases(frequency, before, within, future, purchase_values, dropout_values,
                       r, alpha, s, beta, purchase_coef, dropout_coef, given_alive=False):
    """Expected purchases in ``(T, T + t]``, ``future`` the periods' overlaps with that window.

    Given alive at ``T``: ``lambda ~ Gamma(r + x, alpha + A(T))`` and ``mu ~
    Gamma(s, beta + B(T))`` independently, so the expectation is
    ``(r+x)/(alpha+A(T)) sum_k a_k int_{piece} ((beta+B(T))/(beta+B(u)))^s du``;
    on piece ``k`` (``B`` starts at ``c_k`` and rises at ``b_k``)
    ``int_0^L (c_k + b_k v)^-s dv = c_k^(1-s) y exprel((1-s) y) / b_k`` with ``y = log(1 + b_k L / c_k)``.
    """
    x = np.asarray(frequency, dtype=float)
    alive, a, b, a_T, b_T = _future(x, before, within, future, purchase_values, dropout_values,
                                    r, alpha, s, beta, purchase_coef, dropout_coef)
    r_, alpha_, s_, beta_ = (np.asarray(v, dtype=float)[..., None] for v in (r, alpha, s, beta))
    base = beta_ + b_T  # (..., N)
    seg = future * b
    c = base[..., None] + np.cumsum(seg, axis=-1) - seg  # B at each future piece's start, plus beta
    y = np.log1p(seg / c)
    integral = np.exp(s_[..., None] * np.log(base[..., None] / c)) * c * y * special.exprel((1.0 - s_[..., None]) * y)
    given = (r_ + x) / (alpha_ + a_T) * np.sum(a / b * integral, axis=-1)
    return given if given_alive else alive * given


def simulate_purchase_times(start, end, purchase_values, dropout_values, T, r, alpha, s, beta,
                            purchase_coef, dropout_coef, rng=None):
    """Draw each customer's repeat purchase times in ``(0, T]`` (piecewise-constant rates).

    The lifetime is drawn by inverting the cumulative hazard ``mu B(tau)``
    (piecewise linear) at an ``Exp(1)`` draw; purchases are a Poisson count per
    period at rate ``lambda a_k`` over the alive part, placed uniformly in it.

    Parameters
    ----------
    start, end : numpy.ndarray, shape (N, K)
        The periods in customer time, covering ``[0, T]`` (padding: ``start == end``).
    purchase_values, dropout_values, T, r, alpha, s, beta, purchase_coef, dropout_coef
        As in :func:`loglik` (scalars for the parameters).
    rng : numpy.random.Generator, optional

    Returns
    -------
    list of numpy.ndarray
        Sorted purchase times per customer.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    a = np.exp(log_rates(purchase_values, purchase_coef))
    b = np.exp(log_rates(dropout_values, dropout_coef))
    lengths = overlap(start, end, np.zeros(n), T)
    hazard = np.cumsum(lengths * b, axis=1)  # B at each period's end
    target = rng.exponential(1.0, n) / mu
    out = []
    for i in range(n):
        k = int(np.searchsorted(hazard[i], target[i]))
        if k >= hazard.shape[1]:  # survives past T
            death = np.inf
        else:
            before = hazard[i, k - 1] if k > 0 else 0.0
            death = max(start[i, k], 0.0) + (target[i] - before) / b[i, k]
        times = []
        for j in range(hazard.shape[1]):
            lo, hi = max(start[i, j], 0.0), min(end[i, j], T[i], death)
            if hi > lo:
                times.append(rng.uniform(lo, hi, rng.poisson(lam[i] * a[i, j] * (hi - lo))))
        out.append(np.sort(np.concatenate(times)) if times else np.empty(0))
    return out
