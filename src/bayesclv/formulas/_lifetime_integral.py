"""The Pareto/NBD lifetime integral ``J`` and its derivatives: quadrature, shared limits, PyTensor Op.

``J = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` is evaluated by
Gauss-Legendre quadrature in ``Q = log(min(alpha, beta) + tau)``, where the
integrand ``exp(g(Q))`` is log-concave with a mode in closed form. The rule is
applied on the window in which ``g`` is within ``_WINDOW_DROP`` of its maximum
(found by Newton steps that approach the window's edges from outside, so the
window is never too narrow); one numba-compiled pass returns ``log J`` with its
exact partial derivatives, which :class:`LogLifetimeIntegralOp` hands to
PyTensor (and, registered with numba, to graphs compiled by numba).

Histories with the same ``x`` (and group) share the integrand: the summed
kernel and the per-draw predictions integrate it once between each pair of
neighbouring limits and take each ``J`` as a difference of right-cumulative
sums (:func:`shared_limit_integrals`). Where the integrand could change by more
than ``_WINDOW_DROP`` over an interval it is first cut to its window and split
at the maximum, so the number of pieces follows the mass, not the slope (a
sampler's stray point with a huge shape would otherwise ask for billions of
pieces). Rows whose difference could lose digits are integrated on their own
window instead (:func:`shared_limits`).
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._ops import NP, PT, gauss_legendre
from bayesclv.formulas._summed import distinct, draw_vectors, unique_rows

__all__ = ["LOG_WEIGHTS", "NODES", "LogLifetimeIntegralOp", "difference_of_shared", "log_lifetime_integral",
           "log_lifetime_integral_at", "log_lifetime_integral_op", "log_piecewise_integral", "shared_limit_integrals", "shared_limits",
           "shared_over_histories"]

_N_NODES = 24
NODES, _WEIGHTS = gauss_legendre(_N_NODES)
LOG_WEIGHTS = np.log(_WEIGHTS)
_WINDOW_DROP = 40.0  # exp(-40) ~ 4e-18: integrand mass ignored outside the window
_NEWTON_STEPS = 8
_TINY = 1e-300
# integrals between neighbouring limits (log_piecewise_integral): a 4-node Gauss-Legendre rule where
# the interval is at most _SHORT_WIDTH wide in Q and the log-integrand changes by at most _SHORT_SLOPE
# over it, else equal pieces, each at most _PIECE_WIDTH wide (the integrand's poles lie pi off the real
# axis) with a change of at most _PIECE_SLOPE, under an 8-node rule. The bounds were calibrated against
# 64-node rules to keep the error in log J below 1e-13 (validation/results/design_measurements.md)
_SHORT_NODES, _SHORT_WEIGHTS = gauss_legendre(4)
_SHORT_LOG_WEIGHTS = np.log(_SHORT_WEIGHTS)
_SHORT_WIDTH = 0.1
_SHORT_SLOPE = 0.25
_PIECE_NODES, _PIECE_WEIGHTS = gauss_legendre(8)
_PIECE_LOG_WEIGHTS = np.log(_PIECE_WEIGHTS)
_PIECE_SLOPE = 3.0
_PIECE_WIDTH = 1.0
_MAX_PIECES = 4096  # a bound for non-finite inputs: windowed intervals need far fewer
# rows whose log J would lose more than log10(_MAX_CANCELLATION) digits as a difference of two
# shared-limit integrals are integrated on their own window instead
_MAX_CANCELLATION = 1e4


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _window(one_minus_p, q, log_d, u0, u1):  # pragma: no cover - compiled
    """Interval of ``Q`` outside which ``exp(g(Q))`` is below ``exp(-_WINDOW_DROP)`` of its maximum.

    ``g(Q) = (1-p) Q - q log(d + e^Q)`` is concave, with its maximum in closed
    form. Newton steps on ``g(Q) = max g - _WINDOW_DROP`` approach each root
    from outside the window (a property of concave functions), so even an
    unconverged step leaves the window wide enough. Clipped to ``[u0, u1]``.
    Returns ``(left, right, mode)``, ``mode`` the maximum's place in ``[u0, u1]``.
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
    return left, right, mode


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_integrand(u, rho, sigma, c_alpha, c_beta):  # pragma: no cover - compiled
    """``g(Q) = Q - rho log(e^Q + c_alpha) - sigma log(e^Q + c_beta)``."""
    e = np.exp(u)
    return u - rho * np.log(e + c_alpha) - sigma * np.log(e + c_beta)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_lifetime_integral_at(rho, sigma, ca, cb, q0, q1, nodes, log_weights, scratch):  # pragma: no cover
    """``log J`` of one element, its partial derivatives in ``rho, sigma, c_alpha, c_beta``, and the window.

    With ``e = exp(Q)`` the log-integrand is ``g(Q) = Q - rho log(e + c_alpha)
    - sigma log(e + c_beta)``; its derivatives in each argument are averaged
    over the quadrature weights ``exp(h_k) / sum exp(h)``. ``scratch`` is a
    ``(5, n_nodes)`` work array. Returns ``(log_j, d_rho, d_sigma, d_c_alpha,
    d_c_beta, lo, hi)``; ``log_j = -inf`` (and zero derivatives) for an empty window.
    """
    h, la, lb, inv_a, inv_b = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    if ca == 0.0:  # alpha is the smaller scale: exponent p = rho sits on the (m + tau) factor
        p, q = rho, sigma
    else:
        p, q = sigma, rho
    lo, hi, _ = _window(1.0 - p, q, np.log(max(ca + cb, _TINY)), q0, q1)
    width = hi - lo
    if not width > 0.0:
        return -np.inf, 0.0, 0.0, 0.0, 0.0, lo, hi
    h_max = -np.inf
    for k in range(nodes.size):
        u = lo + width * nodes[k]
        e = np.exp(u)
        # one of c_alpha, c_beta is 0, and log(e + 0) = u needs no logarithm
        la[k] = u if ca == 0.0 else np.log(e + ca)
        lb[k] = u if cb == 0.0 else np.log(e + cb)
        inv_a[k], inv_b[k] = 1.0 / (e + ca), 1.0 / (e + cb)
        h[k] = u - rho * la[k] - sigma * lb[k] + log_weights[k]
        h_max = max(h_max, h[k])
    total = s_la = s_lb = s_ia = s_ib = 0.0
    for k in range(nodes.size):
        w = np.exp(h[k] - h_max)
        total += w
        s_la += w * la[k]
        s_lb += w * lb[k]
        s_ia += w * inv_a[k]
        s_ib += w * inv_b[k]
    log_j = np.log(width) + h_max + np.log(total)
    return log_j, -s_la / total, -s_lb / total, -rho * s_ia / total, -sigma * s_ib / total, lo, hi


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lifetime_kernel(rho, sigma, c_alpha, c_beta, q0, q1, nodes, log_weights,
                     log_j, d_rho, d_sigma, d_c_alpha, d_c_beta, d_q0, d_q1):  # pragma: no cover - compiled
    """``log J`` and its partial derivatives, one pass per element (flat float64 arrays).

    See :func:`log_lifetime_integral_at`. The limits' partials are
    ``+-exp(g(limit)) / J`` where the window reaches the limit (elsewhere the
    integrand there is below ``exp(-_WINDOW_DROP)`` of its peak: 0).
    """
    scratch = np.empty((5, nodes.size))
    for i in range(rho.size):
        ca, cb = c_alpha[i], c_beta[i]
        log_j[i], d_rho[i], d_sigma[i], d_c_alpha[i], d_c_beta[i], lo, hi = log_lifetime_integral_at(
            rho[i], sigma[i], ca, cb, q0[i], q1[i], nodes, log_weights, scratch)
        if log_j[i] == -np.inf:
            d_q0[i] = d_q1[i] = 0.0
            continue
        d_q0[i] = -np.exp(_log_integrand(lo, rho[i], sigma[i], ca, cb) - log_j[i]) if lo == q0[i] else 0.0
        d_q1[i] = np.exp(_log_integrand(hi, rho[i], sigma[i], ca, cb) - log_j[i]) if hi == q1[i] else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_slope(u, rho, sigma, ca, cb):  # pragma: no cover - compiled
    """``g'(Q)`` of :func:`_log_integrand`: ``1 - rho e/(e + c_alpha) - sigma e/(e + c_beta)``."""
    e = np.exp(u)
    return 1.0 - rho * e / (e + ca) - sigma * e / (e + cb)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_piecewise_integral(rho, sigma, ca, cb, q0, q1, with_grad):  # pragma: no cover - compiled
    """``log int_{q0}^{q1} exp(g(Q)) dQ`` and its partials in ``rho, sigma, c_alpha, c_beta``.

    The partials are 0 unless ``with_grad``.

    A short interval on which ``g`` is nearly flat gets a 4-node Gauss-Legendre
    rule; any other is cut into equal pieces on which ``g`` changes by at most
    ``_PIECE_SLOPE`` (``g'`` is monotone, so its values at the ends bound it)
    and which are at most ``_PIECE_WIDTH`` wide, each under an 8-node rule.
    Where ``g`` could change by more than ``_WINDOW_DROP`` over the interval,
    it is first cut to the window of :func:`_window` (the rest holds less than
    ``exp(-_WINDOW_DROP)`` of the peak) and split at the maximum, so that the
    piece count follows the integrand's mass, not its slope far from it: large
    ``rho`` or ``sigma`` (an integrand that falls by ``sigma`` e-folds per unit
    of ``Q``) would otherwise ask for billions of pieces. An empty window
    (the mass within rounding of one point) gives ``-inf``, as in
    :func:`log_lifetime_integral_at`. The sums run as one log-sum-exp over all nodes.
    """
    change = (q1 - q0) * max(abs(_log_slope(q0, rho, sigma, ca, cb)), abs(_log_slope(q1, rho, sigma, ca, cb)))
    if change > _WINDOW_DROP:
        p, q = (rho, sigma) if ca == 0.0 else (sigma, rho)
        lo, hi, mode = _window(1.0 - p, q, np.log(max(ca + cb, _TINY)), q0, q1)
        if not hi > lo:
            return -np.inf, 0.0, 0.0, 0.0, 0.0
        bounds = ((lo, mode), (mode, hi))
    else:
        bounds = ((q0, q1), (q1, q1))  # one segment: the second is empty
    h_max = -np.inf
    total = s_la = s_lb = s_ia = s_ib = 0.0
    for a, b in bounds:
        width = b - a
        if not width > 0.0:
            continue
        change = width * max(abs(_log_slope(a, rho, sigma, ca, cb)), abs(_log_slope(b, rho, sigma, ca, cb)))
        if width <= _SHORT_WIDTH and change <= _SHORT_SLOPE:
            nodes, log_weights, pieces = _SHORT_NODES, _SHORT_LOG_WEIGHTS, 1
        else:
            nodes, log_weights = _PIECE_NODES, _PIECE_LOG_WEIGHTS
            wanted = max(1.0, np.ceil(max(change / _PIECE_SLOPE, width / _PIECE_WIDTH)))
            pieces = int(wanted) if wanted <= _MAX_PIECES else _MAX_PIECES  # also catches NaN
        step = width / pieces
        log_step = np.log(step)
        for j in range(pieces):
            start = a + j * step
            for k in range(nodes.size):
                u = start + step * nodes[k]
                e = np.exp(u)
                la = u if ca == 0.0 else np.log(e + ca)
                lb = u if cb == 0.0 else np.log(e + cb)
                h = u - rho * la - sigma * lb + log_weights[k] + log_step
                if h > h_max:  # rescale the sums to the new maximum
                    scale = np.exp(h_max - h)
                    total, s_la, s_lb = total * scale, s_la * scale, s_lb * scale
                    s_ia, s_ib = s_ia * scale, s_ib * scale
                    h_max = h
                w = np.exp(h - h_max)
                total += w
                if with_grad:
                    s_la += w * la
                    s_lb += w * lb
                    s_ia += w / (e + ca)
                    s_ib += w / (e + cb)
    if not total > 0.0:
        return -np.inf, 0.0, 0.0, 0.0, 0.0
    log_i = h_max + np.log(total)
    return log_i, -s_la / total, -s_lb / total, -rho * s_ia / total, -sigma * s_ib / total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def shared_limit_integrals(rho, sigma, ca, cb, m, limits, start, stop, log_r, d_r, with_grad):  # pragma: no cover
    """``log R_k`` and its partials for the sorted limits ``limits[start:stop]`` (``tau`` values).

    ``R_k = int_{tau_k}^{tau_last} (alpha+tau)^-rho (beta+tau)^-sigma dtau``, accumulated from the
    right as ``R_k = I_k + R_(k+1)`` with ``I_k`` the integral between neighbouring limits
    (:func:`log_piecewise_integral` in ``Q = log(m + tau)``); the partials of ``log R_k`` in
    ``rho, sigma, alpha, beta`` mix those of ``I_k`` and ``R_(k+1)`` with weights ``I_k/R_k``.
    Every history with this ``x`` then has ``J = R(t_x) - R(T)``. Writes ``log_r[k]`` and
    ``d_r[:, k]`` for ``k`` in ``start..stop-1`` (``-inf`` and 0 at the last limit); ``d_r`` only
    ``with_grad``.
    """
    last = stop - 1
    log_r[last] = -np.inf
    d_r[:, last] = 0.0
    q_next = np.log(m + limits[last])
    for k in range(last - 1, start - 1, -1):
        q = np.log(m + limits[k])
        log_i, d0, d1, d2, d3 = log_piecewise_integral(rho, sigma, ca, cb, q, q_next, with_grad)
        prev = log_r[k + 1]
        top = max(log_i, prev)
        if top == -np.inf:  # limits equal in Q to rounding: no mass yet
            log_r[k] = -np.inf
            d_r[:, k] = 0.0
            q_next = q
            continue
        log_r[k] = top + np.log(np.exp(log_i - top) + np.exp(prev - top))
        q_next = q
        if not with_grad:
            continue
        share = np.exp(log_i - log_r[k])
        d_r[0, k] = share * d0 + (1.0 - share) * d_r[0, k + 1]
        d_r[1, k] = share * d1 + (1.0 - share) * d_r[1, k + 1]
        d_r[2, k] = share * d2 + (1.0 - share) * d_r[2, k + 1]
        d_r[3, k] = share * d3 + (1.0 - share) * d_r[3, k + 1]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def difference_of_shared(log_r, d_r, a, b):  # pragma: no cover - compiled
    """``log J`` and its partials for ``J = R_a - R_b`` (``a < b``), from :func:`shared_limit_integrals`.

    ``J = 0`` (``-inf``, zero partials) where the limits coincide to rounding.
    """
    if log_r[a] == -np.inf:
        return -np.inf, 0.0, 0.0, 0.0, 0.0
    ratio = np.exp(log_r[b] - log_r[a])  # R_b / R_a < 1
    log_j = log_r[a] + np.log1p(-ratio)
    keep = 1.0 / (1.0 - ratio)
    return (log_j, (d_r[0, a] - ratio * d_r[0, b]) * keep, (d_r[1, a] - ratio * d_r[1, b]) * keep,
            (d_r[2, a] - ratio * d_r[2, b]) * keep, (d_r[3, a] - ratio * d_r[3, b]) * keep)


def shared_limits(group_x, t_x, T, x_index):
    """Sorted limits (the ``t_x`` and ``T`` of its histories) of each ``(group, x)``, and each row's place.

    Returns ``(limits, start, stop, row_a, row_b, direct)``: entry ``j``'s limits
    are ``limits[start[j]:stop[j]]``; row ``i`` integrates from ``limits[row_a[i]]``
    to ``limits[row_b[i]]``; ``direct`` marks rows left to their own window, whose
    ``J`` as a difference of shared integrals could lose digits: the integrand
    decreases, so ``R(T)/J <= (last limit - T)/(T - t_x)``.
    """
    entry, limits, inverse = unique_rows(np.concatenate([x_index, x_index]).astype(np.int64),
                                         np.concatenate([t_x, T]).astype(float))
    n_entries = len(group_x)
    start = np.searchsorted(entry, np.arange(n_entries), side="left")
    stop = np.searchsorted(entry, np.arange(n_entries), side="right")
    row_a, row_b = inverse[:len(t_x)], inverse[len(t_x):]
    last = limits[stop[x_index] - 1]
    span = T - t_x
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (span > 0) & ((last - T) > _MAX_CANCELLATION * span)
    return limits, start.astype(np.int64), stop.astype(np.int64), row_a, row_b, direct


def log_lifetime_integral_np(rho, sigma, c_alpha, c_beta, q0, q1):
    """NumPy front end of :func:`_lifetime_kernel`: broadcast, run, reshape.

    Returns
    -------
    tuple of numpy.ndarray
        ``log J`` and its derivatives in ``rho, sigma, c_alpha, c_beta, q0, q1``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, sigma, c_alpha, c_beta, q0, q1)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    outs = [np.empty_like(flat[0]) for _ in range(7)]
    _lifetime_kernel(*flat, NODES, LOG_WEIGHTS, *outs)
    return tuple(o.reshape(arrays[0].shape) for o in outs)


class LogLifetimeIntegralOp(Op):
    """PyTensor Op for ``log J``; the gradient comes from the same compiled pass."""

    __props__ = ()

    def make_node(self, *inputs):
        inputs = pt.broadcast_arrays(*(pt.as_tensor_variable(v, dtype="float64") for v in inputs))
        out = inputs[0].type
        return Apply(self, inputs, [out() for _ in range(7)])

    def perform(self, node, inputs, outputs):
        for store, value in zip(outputs, log_lifetime_integral_np(*inputs), strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[0]] * 7

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]]


log_lifetime_integral_op = LogLifetimeIntegralOp()


@register_funcify_default_op_cache_key(LogLifetimeIntegralOp)
def _numba_funcify_log_lifetime_integral(op, node=None, **kwargs):
    """Native numba implementation of the Op, for graphs compiled with numba (nutpie, NUMBA linker).

    Without it PyTensor would call :meth:`LogLifetimeIntegralOp.perform` in numba
    object mode (a round trip through Python on every gradient).
    """
    nodes, log_weights = NODES, LOG_WEIGHTS

    @numba.njit(nogil=True, error_model="numpy")
    def log_lifetime_integral(rho, sigma, c_alpha, c_beta, q0, q1):  # pragma: no cover - compiled
        shape = rho.shape
        n = rho.size  # one line per input: a comprehension over arrays of mixed layouts does not type
        outs = [np.empty(n) for _ in range(7)]
        _lifetime_kernel(np.ascontiguousarray(rho).reshape(n), np.ascontiguousarray(sigma).reshape(n),
                         np.ascontiguousarray(c_alpha).reshape(n), np.ascontiguousarray(c_beta).reshape(n),
                         np.ascontiguousarray(q0).reshape(n), np.ascontiguousarray(q1).reshape(n), nodes, log_weights,
                         outs[0], outs[1], outs[2], outs[3], outs[4], outs[5], outs[6])
        return (outs[0].reshape(shape), outs[1].reshape(shape), outs[2].reshape(shape),
                outs[3].reshape(shape), outs[4].reshape(shape), outs[5].reshape(shape),
                outs[6].reshape(shape))

    return log_lifetime_integral, KERNEL_SOURCE_SALT


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shared_over_draws(r, alpha, s, beta, x_value, x_start, x_stop, limits, row_x, row_a, row_b, row_direct,
                       row_t, T_value, row_T, alive, out):  # pragma: no cover - compiled
    """``log J`` (or, with ``alive``, P(alive at T)) of every draw (``r, alpha, s, beta`` of length D)
    and row -> ``out`` ``(D, rows)``.

    Per draw, the rows with one ``x`` share their integrand (:func:`shared_limit_integrals`) and
    the rows with one ``T`` their ``log(alpha+T)`` and ``log(1+T/beta)``. P(alive) is
    :func:`probability_alive`'s Bayes' rule on the two likelihood parts, ``1 / (1 + s beta^s J /
    alive part)``, with ``J = R_a (1 - R_b/R_a)``: two exponentials a row and no draws x rows
    temporaries.
    """
    log_r = np.empty(limits.size)
    d_r = np.zeros((4, limits.size))  # partials not computed here
    scratch = np.empty((5, NODES.size))
    log_aT, log_bT = np.empty(T_value.size), np.empty(T_value.size)
    for d in range(r.size):
        m = min(alpha[d], beta[d])
        ca, cb, sigma = alpha[d] - m, beta[d] - m, s[d] + 1.0
        log_s_beta = np.log(s[d]) + s[d] * np.log(beta[d])
        for j in range(x_value.size):
            shared_limit_integrals(r[d] + x_value[j], sigma, ca, cb, m, limits, x_start[j], x_stop[j],
                                    log_r, d_r, False)
        for k in range(T_value.size):
            log_aT[k], log_bT[k] = np.log(alpha[d] + T_value[k]), np.log1p(T_value[k] / beta[d])
        for i in range(row_x.size):
            rho, a, b, k = r[d] + x_value[row_x[i]], row_a[i], row_b[i], row_T[i]
            if row_direct[i]:
                log_j = log_lifetime_integral_at(rho, sigma, ca, cb, np.log(m + row_t[i]), np.log(m + T_value[k]),
                                                  NODES, LOG_WEIGHTS, scratch)[0]
            elif a == b or log_r[a] == -np.inf:  # no time (or, to rounding, no mass) to drop out unobserved
                log_j = -np.inf
            else:
                ratio = np.exp(log_r[b] - log_r[a])  # R_b / R_a
                if alive:
                    log_alive = -rho * log_aT[k] - s[d] * log_bT[k]
                    out[d, i] = 1.0 / (1.0 + np.exp(log_s_beta + log_r[a] - log_alive) * (1.0 - ratio))
                else:
                    out[d, i] = log_r[a] + np.log1p(-ratio)
                continue
            if alive:
                out[d, i] = 1.0 / (1.0 + np.exp(log_s_beta + log_j + rho * log_aT[k] + s[d] * log_bT[k]))
            else:
                out[d, i] = log_j


def shared_over_histories(frequency, recency, T, params, alive):
    """:func:`_shared_over_draws` for draws x histories when the parameters vary only along draws, else None.

    ``frequency, recency, T`` of shape ``(rows,)``; each parameter a scalar or of
    shape ``(..., 1)``. Returns an array ``(..., rows)``.
    """
    x, t_x, T = (np.require(v, float, "C") for v in (frequency, recency, T))  # one layout: one compilation
    by_draw = draw_vectors(params, x, t_x, T)
    if by_draw is None:
        return None
    lead, flat = by_draw
    zeros = np.zeros(x.size, dtype=np.int64)
    xs, Ts = distinct(zeros, x), distinct(zeros, T)
    limits, start, stop, row_a, row_b, direct = shared_limits(xs.group, t_x, T, xs.index)
    out = np.empty((flat[0].size, x.size))
    _shared_over_draws(*flat, xs.value, start, stop, limits, xs.index, row_a, row_b, direct, t_x, Ts.value,
                       Ts.index, alive, out)
    return out.reshape(*lead, x.size)


def log_lifetime_integral(frequency, recency, T, r, alpha, s, beta, xp):
    """``log J`` (see module docstring).

    With NumPy, when the parameters vary along draws only (one set per draw,
    histories along the last axis), the histories with one ``x`` share their
    integrals (:func:`shared_over_histories`). Otherwise each element
    is integrated on its own window by Gauss-Legendre quadrature in ``Q``,
    substituting ``Q = log(m + tau)`` with ``m = min(alpha, beta)``: ``J`` does
    not depend on ``m``, and the Op's gradient is exact whether or not ``m``
    is treated as a constant (graph rewrites may drop ``zero_grad``), because
    it includes the limits' partial derivatives.

    Returns ``(log_j, has_mass)``; ``has_mass`` is False where ``t_x == T``.
    """
    if xp is NP:
        log_j = shared_over_histories(frequency, recency, T, (r, alpha, s, beta), alive=False)
        if log_j is not None:
            return log_j, np.asarray(recency) < np.asarray(T)
    m = xp.zero_grad(xp.minimum(alpha, beta))
    args = (r + frequency, s + 1.0, alpha - m, beta - m, xp.log(m + recency), xp.log(m + T))
    if xp is PT:
        log_j = log_lifetime_integral_op(*args)[0]
    else:
        log_j = log_lifetime_integral_np(*args)[0]
    return log_j, recency < T
