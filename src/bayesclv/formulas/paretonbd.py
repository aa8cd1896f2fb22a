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

``J`` is evaluated by Gauss-Legendre quadrature in ``Q = log(min(alpha,
beta) + tau)``, where the integrand ``exp(g(Q))`` is log-concave with a mode in
closed form. The rule is applied on the window in which ``g`` is within
``_WINDOW_DROP`` of its maximum (found by a few Newton steps, which approach
the window edge from outside, so the window is never too narrow), which keeps
it accurate for ``x`` in the hundreds, ``T`` in the thousands and parameters
from 1e-3 to 1e3. Gradients are plain reverse-mode derivatives of an
elementwise expression: no slow series loops.
"""

from __future__ import annotations

import numpy as np
from scipy import special

import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from bayesclv.formulas._ops import NP, PT, gauss_legendre

__all__ = [
    "expected_purchases",
    "expected_purchases_new_customer",
    "loglik",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
]

_N_NODES = 32
_WINDOW_DROP = 40.0  # exp(-40) ~ 4e-18: integrand mass ignored outside the window
_NEWTON_STEPS = 8
_TINY = 1e-300


def _quadrature_window(p, q, log_d, q0, q1):
    """Interval of ``Q`` outside which ``exp(g(Q))`` is below ``exp(-_WINDOW_DROP)`` of its maximum.

    ``g(Q) = (1-p) Q - q log(d + e^Q)`` is concave, with its maximum in closed
    form. Newton steps on ``g(Q) = max g - _WINDOW_DROP`` approach each root from
    outside the window (a property of concave functions), so even an
    unconverged step leaves the window wide enough. NumPy; arrays broadcast.

    Returns
    -------
    lo, hi : numpy.ndarray
        Window, clipped to ``[q0, q1]``.
    """
    p, q, log_d, q0, q1 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, log_d, q0, q1)))

    def g(u):
        return (1.0 - p) * u - q * np.logaddexp(log_d, u)

    def dg(u):
        return (1.0 - p) - q * special.expit(u - log_d)

    one_minus_p = 1.0 - p
    interior = one_minus_p > 0.0
    # g'(Q*) = 0  <=>  expit(Q* - log_d) = (1 - p) / q, possible only when p < 1
    safe = np.where(interior, one_minus_p, 1.0)
    mode = np.where(interior, log_d + np.log(safe) - np.log(q - safe + np.where(interior, 0.0, 2.0)), q0)
    mode = np.clip(mode, q0, q1)
    g_mode = g(mode)
    sg = special.expit(mode - log_d)
    step = 1.0 / np.sqrt(np.maximum(q * sg * (1.0 - sg), 1e-12))
    right = np.minimum(mode + np.where(dg(mode) < 0.0, 0.0, step), q1)
    left = np.maximum(mode - step, q0)
    for _ in range(_NEWTON_STEPS):
        right = np.clip(right - (g(right) - g_mode + _WINDOW_DROP) / np.minimum(dg(right), -1e-12), mode, q1)
        left = np.clip(left - (g(left) - g_mode + _WINDOW_DROP) / np.maximum(dg(left), 1e-12), q0, mode)
    return left, right


class _QuadratureWindowOp(Op):
    """PyTensor wrapper of :func:`_quadrature_window` (only the placement of the rule, so no gradient)."""

    __props__ = ()

    def make_node(self, *inputs):
        inputs = pt.broadcast_arrays(*(pt.as_tensor_variable(v, dtype="float64") for v in inputs))
        out = inputs[0].type
        return Apply(self, inputs, [out(), out()])

    def perform(self, node, inputs, outputs):
        lo, hi = _quadrature_window(*inputs)
        outputs[0][0], outputs[1][0] = lo, hi

    def infer_shape(self, node, shapes):
        return [shapes[0], shapes[0]]

    def pullback(self, inputs, outputs, output_grads):
        return [pt.zeros_like(v) for v in inputs]


_window_op = _QuadratureWindowOp()


def _log_lifetime_integral(frequency, recency, T, r, alpha, s, beta, xp):
    """``log J`` (see module docstring), by windowed Gauss-Legendre quadrature in ``Q``.

    The substitution ``Q = log(m + tau)`` uses ``m = min(alpha, beta)`` as a
    constant: ``J`` does not depend on ``m``, so holding it fixed keeps the
    derivatives exact (differentiation under the integral in ``tau``).

    Returns ``(log_j, has_mass)``; ``has_mass`` is False where ``t_x == T``.
    """
    rho = r + frequency
    sigma = s + 1.0
    m = xp.zero_grad(xp.minimum(alpha, beta))
    c_alpha, c_beta = alpha - m, beta - m  # one of them is 0
    q0, q1 = xp.log(m + recency), xp.log(m + T)

    alpha_small = xp.zero_grad(alpha) <= xp.zero_grad(beta)
    p = xp.zero_grad(xp.where(alpha_small, rho, sigma))  # exponent on the (m + tau) factor
    q = xp.zero_grad(xp.where(alpha_small, sigma, rho))
    log_d = xp.zero_grad(xp.log(xp.maximum(c_alpha + c_beta, _TINY)))
    if xp is PT:
        lo, hi = _window_op(p, q, log_d, xp.zero_grad(q0), xp.zero_grad(q1))
    else:
        lo, hi = _quadrature_window(p, q, log_d, q0, q1)
    lo = xp.where(lo > xp.zero_grad(q0), lo, q0)  # at the interval's ends the limits carry gradient
    hi = xp.where(hi < xp.zero_grad(q1), hi, q1)

    width = hi - lo
    has_mass = width > 0.0
    width_safe = xp.where(has_mass, width, 1.0)
    nodes, weights = gauss_legendre(_N_NODES)
    u = lo[..., None] + width_safe[..., None] * nodes
    e_u = xp.exp(u)
    log_terms = (u - rho[..., None] * xp.log(e_u + c_alpha[..., None])
                 - sigma[..., None] * xp.log(e_u + c_beta[..., None]) + np.log(weights))
    log_j = xp.log(width_safe) + xp.logsumexp(log_terms, axis=-1)
    return log_j, has_mass


def _log_alive_and_dropped(frequency, recency, T, r, alpha, s, beta, xp):
    """Log of the alive-at-T and dropped-before-T parts of the likelihood.

    Both omit the common factor ``Gamma(r+x)/Gamma(r) alpha^r``. The dropped
    part is ``-inf`` when ``t_x == T``.
    """
    x, t_x, T, r, alpha, s, beta = (xp.asarray(v) for v in (frequency, recency, T, r, alpha, s, beta))
    shape_like = 0.0 * (x + t_x + T + r + alpha + s + beta)  # broadcast everything to one shape
    x, t_x, T, r, alpha, s, beta = (v + shape_like for v in (x, t_x, T, r, alpha, s, beta))
    log_alive = -(r + x) * xp.log(alpha + T) - s * xp.log1p(T / beta)
    log_j, has_mass = _log_lifetime_integral(x, t_x, T, r, alpha, s, beta, xp)
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


def probability_alive(frequency, recency, T, r, alpha, s, beta):
    """P(customer is alive at T | history), by Bayes' rule on the two likelihood parts."""
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


def expected_purchases(t, frequency, recency, T, r, alpha, s, beta):
    """E[X(T, T+t] | history]: P(alive) x E[lambda] x E[time alive in (T, T+t]].

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and
    ``mu ~ Gamma(s, beta+T)`` independently, and the remaining lifetime is
    exponential (memoryless).
    """
    x = np.asarray(frequency, dtype=float)
    rate = (r + x) / (alpha + T)
    return probability_alive(x, recency, T, r, alpha, s, beta) * rate * _mean_lifetime_within(t, s, beta + T)


def expected_purchases_new_customer(t, r, alpha, s, beta):
    """E[X(t)] for a customer observed since acquisition: ``r/alpha E[min(t, omega)]``."""
    return np.asarray(r) / alpha * _mean_lifetime_within(t, s, beta)


def probability_alive_at(t, frequency, recency, T, r, alpha, s, beta):
    """P(alive at ``T + t`` | history) = P(alive at T) ``((beta+T)/(beta+T+t))^s``."""
    return probability_alive(frequency, recency, T, r, alpha, s, beta) * np.exp(-s * np.log1p(t / (beta + T)))


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
