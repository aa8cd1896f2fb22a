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
from 1e-3 to 1e3. One numba-compiled pass returns ``log J`` together with its
exact partial derivatives (averages over the quadrature weights), which a
PyTensor Op hands to NUTS: no slow hypergeometric series loops.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import special

import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._ops import NP, PT, gauss_legendre

__all__ = [
    "expected_purchases",
    "expected_purchases_new_customer",
    "loglik",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
]

_N_NODES = 24
_NODES, _WEIGHTS = gauss_legendre(_N_NODES)
_LOG_WEIGHTS = np.log(_WEIGHTS)
_WINDOW_DROP = 40.0  # exp(-40) ~ 4e-18: integrand mass ignored outside the window
_NEWTON_STEPS = 8
_TINY = 1e-300


@numba.njit(cache=True, nogil=True)
def _window(one_minus_p, q, log_d, u0, u1):  # pragma: no cover - compiled
    """Interval of ``Q`` outside which ``exp(g(Q))`` is below ``exp(-_WINDOW_DROP)`` of its maximum.

    ``g(Q) = (1-p) Q - q log(d + e^Q)`` is concave, with its maximum in closed
    form. Newton steps on ``g(Q) = max g - _WINDOW_DROP`` approach each root
    from outside the window (a property of concave functions), so even an
    unconverged step leaves the window wide enough. Clipped to ``[u0, u1]``.
    """
    a, b, ld = one_minus_p, q, log_d

    def g(u):
        return a * u - b * (max(ld, u) + np.log1p(np.exp(-abs(ld - u))))

    def expit(z):
        return 1.0 / (1.0 + np.exp(-z)) if z >= 0 else np.exp(z) / (1.0 + np.exp(z))

    # g'(Q*) = 0  <=>  expit(Q* - log_d) = (1 - p) / q, possible only when p < 1
    mode = ld + np.log(a) - np.log(b - a) if a > 0.0 else u0
    mode = min(max(mode, u0), u1)
    target = g(mode) - _WINDOW_DROP
    sig = expit(mode - ld)
    step = 1.0 / np.sqrt(max(b * sig * (1.0 - sig), 1e-12))
    right = min(mode + (0.0 if a - b * sig < 0.0 else step), u1)
    left = max(mode - step, u0) if mode > u0 else u0
    for _ in range(_NEWTON_STEPS):
        new = min(max(right - (g(right) - target) / min(a - b * expit(right - ld), -1e-12), mode), u1)
        converged = abs(new - right) < 1e-12
        right = new
        if converged:
            break
    if left > u0:
        for _ in range(_NEWTON_STEPS):
            new = min(max(left - (g(left) - target) / max(a - b * expit(left - ld), 1e-12), u0), mode)
            converged = abs(new - left) < 1e-12
            left = new
            if converged:
                break
    return left, right


@numba.njit(cache=True, nogil=True)
def _log_integrand(u, rho, sigma, c_alpha, c_beta):  # pragma: no cover - compiled
    """``g(Q) = Q - rho log(e^Q + c_alpha) - sigma log(e^Q + c_beta)``."""
    e = np.exp(u)
    return u - rho * np.log(e + c_alpha) - sigma * np.log(e + c_beta)


@numba.njit(cache=True, nogil=True)
def _lifetime_kernel(rho, sigma, c_alpha, c_beta, q0, q1, nodes, log_weights,
                     log_j, d_rho, d_sigma, d_c_alpha, d_c_beta, d_q0, d_q1):  # pragma: no cover - compiled
    """``log J`` and its partial derivatives, one pass per element (flat float64 arrays).

    With ``e = exp(Q)`` the log-integrand is ``g(Q) = Q - rho log(e + c_alpha)
    - sigma log(e + c_beta)``; its derivatives in each argument are averaged
    over the quadrature weights ``exp(h_k) / sum exp(h)``. The limits' partials
    are ``+-exp(g(limit)) / J`` where the window reaches the limit (elsewhere
    the integrand there is below ``exp(-_WINDOW_DROP)`` of its peak: 0).
    """
    h = np.empty(nodes.size)
    la = np.empty(nodes.size)
    lb = np.empty(nodes.size)
    inv_a = np.empty(nodes.size)
    inv_b = np.empty(nodes.size)
    for i in range(rho.size):
        ca, cb = c_alpha[i], c_beta[i]
        if ca == 0.0:  # alpha is the smaller scale: exponent p = rho sits on the (m + tau) factor
            p, q = rho[i], sigma[i]
        else:
            p, q = sigma[i], rho[i]
        lo, hi = _window(1.0 - p, q, np.log(max(ca + cb, _TINY)), q0[i], q1[i])
        width = hi - lo
        if not width > 0.0:
            log_j[i] = -np.inf
            d_rho[i] = d_sigma[i] = d_c_alpha[i] = d_c_beta[i] = d_q0[i] = d_q1[i] = 0.0
            continue
        h_max = -np.inf
        for k in range(nodes.size):
            u = lo + width * nodes[k]
            e = np.exp(u)
            # one of c_alpha, c_beta is 0, and log(e + 0) = u needs no logarithm
            la[k] = u if ca == 0.0 else np.log(e + ca)
            lb[k] = u if cb == 0.0 else np.log(e + cb)
            inv_a[k], inv_b[k] = 1.0 / (e + ca), 1.0 / (e + cb)
            h[k] = u - rho[i] * la[k] - sigma[i] * lb[k] + log_weights[k]
            h_max = max(h_max, h[k])
        total = s_la = s_lb = s_ia = s_ib = 0.0
        for k in range(nodes.size):
            w = np.exp(h[k] - h_max)
            total += w
            s_la += w * la[k]
            s_lb += w * lb[k]
            s_ia += w * inv_a[k]
            s_ib += w * inv_b[k]
        log_j[i] = np.log(width) + h_max + np.log(total)
        d_rho[i] = -s_la / total
        d_sigma[i] = -s_lb / total
        d_c_alpha[i] = -rho[i] * s_ia / total
        d_c_beta[i] = -sigma[i] * s_ib / total
        d_q0[i] = -np.exp(_log_integrand(lo, rho[i], sigma[i], ca, cb) - log_j[i]) if lo == q0[i] else 0.0
        d_q1[i] = np.exp(_log_integrand(hi, rho[i], sigma[i], ca, cb) - log_j[i]) if hi == q1[i] else 0.0


def _log_lifetime_integral_np(rho, sigma, c_alpha, c_beta, q0, q1):
    """NumPy front end of :func:`_lifetime_kernel`: broadcast, run, reshape.

    Returns
    -------
    tuple of numpy.ndarray
        ``log J`` and its derivatives in ``rho, sigma, c_alpha, c_beta, q0, q1``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, sigma, c_alpha, c_beta, q0, q1)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    outs = [np.empty_like(flat[0]) for _ in range(7)]
    _lifetime_kernel(*flat, _NODES, _LOG_WEIGHTS, *outs)
    return tuple(o.reshape(arrays[0].shape) for o in outs)


class _LogLifetimeIntegralOp(Op):
    """PyTensor Op for ``log J``; the gradient comes from the same compiled pass."""

    __props__ = ()

    def make_node(self, *inputs):
        inputs = pt.broadcast_arrays(*(pt.as_tensor_variable(v, dtype="float64") for v in inputs))
        out = inputs[0].type
        return Apply(self, inputs, [out() for _ in range(7)])

    def perform(self, node, inputs, outputs):
        for store, value in zip(outputs, _log_lifetime_integral_np(*inputs), strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[0]] * 7

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]]


_log_lifetime_integral_op = _LogLifetimeIntegralOp()


@register_funcify_default_op_cache_key(_LogLifetimeIntegralOp)
def _numba_funcify_log_lifetime_integral(op, node=None, **kwargs):
    """Native numba implementation of the Op, for graphs compiled with numba (nutpie, NUMBA linker).

    Without it PyTensor would call :meth:`_LogLifetimeIntegralOp.perform` in numba
    object mode (a round trip through Python on every gradient).
    """
    nodes, log_weights = _NODES, _LOG_WEIGHTS

    @numba.njit(nogil=True)
    def log_lifetime_integral(rho, sigma, c_alpha, c_beta, q0, q1):  # pragma: no cover - compiled
        shape = rho.shape
        flat = [np.ascontiguousarray(v).reshape(rho.size) for v in (rho, sigma, c_alpha, c_beta, q0, q1)]
        outs = [np.empty(rho.size) for _ in range(7)]
        _lifetime_kernel(flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], nodes, log_weights,
                         outs[0], outs[1], outs[2], outs[3], outs[4], outs[5], outs[6])
        return (outs[0].reshape(shape), outs[1].reshape(shape), outs[2].reshape(shape),
                outs[3].reshape(shape), outs[4].reshape(shape), outs[5].reshape(shape),
                outs[6].reshape(shape))

    return log_lifetime_integral


def _log_lifetime_integral(frequency, recency, T, r, alpha, s, beta, xp):
    """``log J`` (see module docstring), by windowed Gauss-Legendre quadrature in ``Q``.

    The substitution ``Q = log(m + tau)`` uses ``m = min(alpha, beta)``. ``J``
    does not depend on ``m``; the Op's gradient is exact whether or not ``m``
    is treated as a constant (graph rewrites may drop ``zero_grad``), because
    it includes the limits' partial derivatives.

    Returns ``(log_j, has_mass)``; ``has_mass`` is False where ``t_x == T``.
    """
    m = xp.zero_grad(xp.minimum(alpha, beta))
    args = (r + frequency, s + 1.0, alpha - m, beta - m, xp.log(m + recency), xp.log(m + T))
    if xp is PT:
        log_j = _log_lifetime_integral_op(*args)[0]
    else:
        log_j = _log_lifetime_integral_np(*args)[0]
    return log_j, recency < T


def _log_alive_and_dropped(frequency, recency, T, r, alpha, s, beta, xp):
    """Log of the alive-at-T and dropped-before-T parts of the likelihood.

    Both omit the common factor ``Gamma(r+x)/Gamma(r) alpha^r``. The dropped
    part is ``-inf`` when ``t_x == T``.
    """
    x, t_x, T, r, alpha, s, beta = (xp.asarray(v) for v in (frequency, recency, T, r, alpha, s, beta))
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


def expected_purchases(t, frequency, recency, T, r, alpha, s, beta, given_alive=False):
    """E[X(T, T+t] | history]: P(alive) x E[lambda] x E[time alive in (T, T+t]].

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and
    ``mu ~ Gamma(s, beta+T)`` independently, and the remaining lifetime is
    exponential (memoryless).
    """
    x = np.asarray(frequency, dtype=float)
    per_alive = (r + x) / (alpha + T) * _mean_lifetime_within(t, s, beta + T)
    return per_alive if given_alive else probability_alive(x, recency, T, r, alpha, s, beta) * per_alive


def expected_purchases_new_customer(t, r, alpha, s, beta):
    """E[X(t)] for a customer observed since acquisition: ``r/alpha E[min(t, omega)]``."""
    return np.asarray(r) / alpha * _mean_lifetime_within(t, s, beta)


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
