"""The Gamma-Gompertz/NBD lifetime integral: per element, shared between histories, summed likelihood.

A customer who dies at ``tau`` in ``(t_x, T]`` contributes (rates integrated out)::

    J = int_{t_x}^{T} (alpha + tau)^-rho e^(b tau) (beta + e^(b tau) - 1)^-(s+1) dtau,

``rho = r + x``. With ``y = e^(b tau) - 1`` the lifetime factor is the power law
``(beta + y)^-(s+1)`` and the purchase factor ``(alpha + log(1+y)/b)^-rho``; both
fall as ``y`` grows. ``J`` is integrated in ``v = log(1 + y/m)``,
``m = min(alpha b, beta, 1)`` (Pareto/NBD's ``Q = log(m + tau)`` for the
Gompertz clock), where the log-integrand is ``v`` (the Jacobian, increasing) plus
those two logs (decreasing) and its slope lies in ``[-(rho+s), 1]``:
:func:`bayesclv.formulas._adaptive_quadrature.integrate` with ``GGOM_LIFETIME``.
It returns ``log J`` with its partial derivatives (averages over the nodes of
the derivatives of the log-integrand in ``tau``, whose limits do not move).

As for the Pareto/NBD, the histories with one ``x`` share the integrand: it is
integrated once between each pair of neighbouring limits (their ``t_x`` and
``T``) and each ``J`` is a difference of two right-cumulative sums; where that
difference would lose more than ``log10(_MAX_CANCELLATION)`` digits, the row is
integrated on its own.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._adaptive_quadrature import GGOM_LIFETIME, N_GRAD, integrate, offset, workspace
from bayesclv.formulas._special import logaddexp
from bayesclv.formulas._summed import digamma, softplus_and_sigmoid, unique_rows

__all__ = ["log_beta_expm1", "log_lifetime_integral", "log_lifetime_integral_op", "shared_limits",
           "shared_over_draws", "summed_loglik_kernel"]

_MAX_CANCELLATION = 1e4  # R_b / R_a above 1 - 1/_MAX_CANCELLATION: integrate the row on its own
_N_PARAMS = 8


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_beta_expm1(log_beta, bt):  # pragma: no cover - compiled
    """``log(beta + e^bt - 1)`` for ``bt >= 0``, without overflow or cancellation."""
    if not bt > 0.0:
        return log_beta
    return logaddexp(log_beta, bt + math.log(-math.expm1(-bt)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill(rho, alpha, b, s, beta, p):  # pragma: no cover - compiled
    """The parameter vector of ``GGOM_LIFETIME``: ``(rho, alpha, b, s, beta, m, log m, log beta)``."""
    m = min(alpha * b, beta, 1.0)
    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = rho, alpha, b, s, beta, m, math.log(m), math.log(beta)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_density(tau, rho, alpha, b, s, log_beta):  # pragma: no cover - compiled
    """log of the integrand of ``J`` at ``tau``."""
    return -rho * math.log(alpha + tau) + b * tau - (s + 1.0) * log_beta_expm1(log_beta, b * tau)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_integral_at(t0, t1, p, grad, work, with_grad):  # pragma: no cover - compiled
    """``log J`` over ``(t0, t1]`` for the parameters in ``p`` (see :func:`_fill`); partials into ``grad``."""
    b, m, log_m = p[2], p[5], p[6]
    log_i = integrate(GGOM_LIFETIME, p, offset(b * t0, m, log_m), offset(b * t1, m, log_m), with_grad, grad,
                      work)
    return log_i + log_m - math.log(b)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lifetime_kernel(rho, alpha, b, s, beta, t0, t1, out):  # pragma: no cover - compiled
    """``log J`` and its partials in ``rho, alpha, b, s, beta, t0, t1`` -> ``out`` ``(8, n)``, flat inputs."""
    p = np.empty(_N_PARAMS)
    grad = np.empty(N_GRAD)
    work = workspace()
    for i in range(rho.size):
        _fill(rho[i], alpha[i], b[i], s[i], beta[i], p)
        log_j = _log_integral_at(t0[i], t1[i], p, grad, work, True)
        out[0, i] = log_j
        for k in range(N_GRAD):
            out[1 + k, i] = grad[k]
        if log_j == -np.inf or not np.isfinite(log_j):
            out[6, i] = out[7, i] = 0.0
            continue
        out[6, i] = -math.exp(_log_density(t0[i], rho[i], alpha[i], b[i], s[i], p[7]) - log_j)
        out[7, i] = math.exp(_log_density(t1[i], rho[i], alpha[i], b[i], s[i], p[7]) - log_j)


def log_lifetime_integral(rho, alpha, b, s, beta, t0, t1):
    """NumPy front end of :func:`_lifetime_kernel`: ``log J`` and its 7 partials, broadcast."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, alpha, b, s, beta, t0, t1)))
    flat = [np.ascontiguousarray(v).ravel() for v in arrays]
    out = np.empty((8, flat[0].size))
    _lifetime_kernel(*flat, out)
    return tuple(o.reshape(arrays[0].shape) for o in out)


class _LogLifetimeIntegralOp(Op):
    """PyTensor Op for ``log J``; the gradient comes from the same compiled pass."""

    __props__ = ()

    def make_node(self, *inputs):
        inputs = pt.broadcast_arrays(*(pt.as_tensor_variable(v, dtype="float64") for v in inputs))
        return Apply(self, inputs, [inputs[0].type() for _ in range(8)])

    def perform(self, node, inputs, outputs):
        for store, value in zip(outputs, log_lifetime_integral(*inputs), strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[0]] * 8

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]]


log_lifetime_integral_op = _LogLifetimeIntegralOp()


@register_funcify_default_op_cache_key(_LogLifetimeIntegralOp)
def _numba_funcify_log_lifetime_integral(op, node=None, **kwargs):
    """Native numba implementation of the Op, for graphs compiled with numba (nutpie, NUMBA linker)."""

    @numba.njit(nogil=True, error_model="numpy")
    def ggom_log_lifetime_integral(rho, alpha, b, s, beta, t0, t1):  # pragma: no cover - compiled
        shape, n = rho.shape, rho.size
        out = np.empty((8, n))
        _lifetime_kernel(np.ascontiguousarray(rho).reshape(n), np.ascontiguousarray(alpha).reshape(n),
                         np.ascontiguousarray(b).reshape(n), np.ascontiguousarray(s).reshape(n),
                         np.ascontiguousarray(beta).reshape(n), np.ascontiguousarray(t0).reshape(n),
                         np.ascontiguousarray(t1).reshape(n), out)
        return (out[0].reshape(shape), out[1].reshape(shape), out[2].reshape(shape), out[3].reshape(shape),
                out[4].reshape(shape), out[5].reshape(shape), out[6].reshape(shape), out[7].reshape(shape))

    return ggom_log_lifetime_integral, KERNEL_SOURCE_SALT


def shared_limits(x_index, t_x, T):
    """Sorted limits (the ``t_x`` and ``T`` of its histories) of each distinct ``x`` entry, and each row's place.

    Returns ``(limits, start, stop, row_a, row_b)``: entry ``j``'s limits are
    ``limits[start[j]:stop[j]]``; row ``i`` integrates from ``limits[row_a[i]]``
    to ``limits[row_b[i]]``.
    """
    x_index = np.asarray(x_index, dtype=np.int64)
    entry, limits, inverse = unique_rows(np.concatenate([x_index, x_index]),
                                         np.concatenate([t_x, T]).astype(float))
    n_entries = x_index.max(initial=-1) + 1
    start = np.searchsorted(entry, np.arange(n_entries), side="left").astype(np.int64)
    stop = np.searchsorted(entry, np.arange(n_entries), side="right").astype(np.int64)
    return limits, start, stop, inverse[:len(t_x)], inverse[len(t_x):]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shared_limit_integrals(p, limits, start, stop, log_r, d_r, with_grad, work):  # pragma: no cover
    """``log R_k`` (``R_k`` the integral in ``v`` from ``limits[k]`` to the last limit) and its partials.

    Accumulated from the right, ``R_k = I_k + R_(k+1)``; the partials mix those of
    ``I_k`` and ``R_(k+1)`` with weights ``I_k / R_k``. ``p`` as in :func:`_fill`.
    """
    b, m, log_m = p[2], p[5], p[6]
    grad = np.empty(N_GRAD)
    last = stop - 1
    log_r[last] = -np.inf
    d_r[:, last] = 0.0
    v_next = offset(b * limits[last], m, log_m)
    for k in range(last - 1, start - 1, -1):
        v = offset(b * limits[k], m, log_m)
        log_i = integrate(GGOM_LIFETIME, p, v, v_next, with_grad, grad, work)
        v_next = v
        log_r[k] = logaddexp(log_i, log_r[k + 1])
        if not with_grad or log_r[k] == -np.inf:
            d_r[:, k] = 0.0
            continue
        share = math.exp(log_i - log_r[k])
        for j in range(N_GRAD):
            d_r[j, k] = share * grad[j] + (1.0 - share) * d_r[j, k + 1]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row_integral(p, limits, log_r, d_r, a, b_, t_row, T_row, grad, work, with_grad):  # pragma: no cover
    """``log J`` of one row (``J = R_a - R_b`` in ``v``, or on its own where that cancels) and its partials."""
    if log_r[a] == -np.inf:
        for j in range(N_GRAD):
            grad[j] = 0.0
        return -np.inf
    ratio = math.exp(log_r[b_] - log_r[a])
    if ratio > 1.0 - 1.0 / _MAX_CANCELLATION:
        return _log_integral_at(t_row, T_row, p, grad, work, with_grad)
    keep = 1.0 / (1.0 - ratio)
    for j in range(N_GRAD):
        grad[j] = (d_r[j, a] - ratio * d_r[j, b_]) * keep
    return log_r[a] + math.log1p(-ratio) + p[6] - math.log(p[2])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def summed_loglik_kernel(r, alpha, b, s, beta, x_group, x_value, x_weight, x_start, x_stop, T_group, T_value,
                         limits, row_x, row_T, row_a, row_b, row_t, row_weight,
                         group_weight):  # pragma: no cover - compiled
    """Total GGom/NBD log-likelihood of the tables of ``ggomnbd.loglik_tables`` and its gradient ``(5, n_groups)``.

    Each row's log-likelihood is ``gammaln(r+x) - gammaln(r) + r log(alpha) + s log(beta)
    + logaddexp(A, D)`` with the alive branch ``A = -(r+x) log(alpha+T) - s log(beta + e^(bT) - 1)``
    and the dropped branch ``D = log(b) + log(s) + log J``; the first terms are summed per
    group and per distinct ``x``, the branches' derivatives mixed with ``pi = sigmoid(D - A)``.
    """
    n_groups = r.size
    grad = np.zeros((5, n_groups))
    total = 0.0
    for g in range(n_groups):
        n, la, lb = group_weight[g], math.log(alpha[g]), math.log(beta[g])
        total += n * (-math.lgamma(r[g]) + r[g] * la + s[g] * lb)
        grad[0, g] += n * (la - digamma(r[g]))
        grad[1, g] += n * r[g] / alpha[g]
        grad[3, g] += n * lb
        grad[4, g] += n * s[g] / beta[g]
    p = np.empty(_N_PARAMS)
    work = workspace()
    log_r = np.empty(limits.size)
    d_r = np.empty((N_GRAD, limits.size))
    for j in range(x_value.size):
        g = x_group[j]
        total += x_weight[j] * math.lgamma(r[g] + x_value[j])
        grad[0, g] += x_weight[j] * digamma(r[g] + x_value[j])
        _fill(r[g] + x_value[j], alpha[g], b[g], s[g], beta[g], p)
        _shared_limit_integrals(p, limits, x_start[j], x_stop[j], log_r, d_r, True, work)
    log_aT, log_bT, d_bT = np.empty(T_value.size), np.empty(T_value.size), np.empty(T_value.size)
    for k in range(T_value.size):
        g = T_group[k]
        log_aT[k] = math.log(alpha[g] + T_value[k])
        log_bT[k] = log_beta_expm1(math.log(beta[g]), b[g] * T_value[k])
        d_bT[k] = T_value[k] * math.exp(b[g] * T_value[k] - log_bT[k])  # d log(beta + e^bT - 1) / db
    d = np.empty(N_GRAD)
    for i in range(row_x.size):
        jx, jT = row_x[i], row_T[i]
        g = x_group[jx]
        rho = r[g] + x_value[jx]
        alive = -rho * log_aT[jT] - s[g] * log_bT[jT]
        if row_a[i] == row_b[i]:  # t_x == T: no time to die unobserved
            lse = pi = 0.0
            for k in range(N_GRAD):
                d[k] = 0.0
        else:
            _fill(rho, alpha[g], b[g], s[g], beta[g], p)
            log_j = _row_integral(p, limits, log_r, d_r, row_a[i], row_b[i], row_t[i], T_value[jT], d, work,
                                  True)
            lse, pi = softplus_and_sigmoid(math.log(b[g] * s[g]) + log_j - alive)
        w = row_weight[i]
        total += w * (alive + lse)
        stay, drop = w * (1.0 - pi), w * pi
        grad[0, g] += drop * d[0] - stay * log_aT[jT]
        grad[1, g] += drop * d[1] - stay * rho / (alpha[g] + T_value[jT])
        grad[2, g] += drop * (1.0 / b[g] + d[2]) - stay * s[g] * d_bT[jT]
        grad[3, g] += drop * (1.0 / s[g] + d[3]) - stay * log_bT[jT]
        grad[4, g] += drop * d[4] - stay * s[g] * math.exp(-log_bT[jT])
    return total, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def shared_over_draws(r, alpha, b, s, beta, x_value, x_start, x_stop, limits, row_x, row_a, row_b, row_t,
                      T_value, row_T, alive, out):  # pragma: no cover - compiled
    """``log J`` (or, with ``alive``, P(alive at T)) of every draw (parameters of length D) and row -> ``out``.

    Per draw the rows with one ``x`` share their integrals (:func:`_shared_limit_integrals`
    without partials). P(alive) is ``1 / (1 + exp(D - A))`` with the branches of
    :func:`summed_loglik_kernel`.
    """
    p = np.empty(_N_PARAMS)
    work = workspace()
    log_r = np.empty(limits.size)
    d_r = np.zeros((N_GRAD, limits.size))
    grad = np.empty(N_GRAD)
    for dr in range(r.size):
        for j in range(x_value.size):
            _fill(r[dr] + x_value[j], alpha[dr], b[dr], s[dr], beta[dr], p)
            _shared_limit_integrals(p, limits, x_start[j], x_stop[j], log_r, d_r, False, work)
        log_beta = math.log(beta[dr])
        for i in range(row_x.size):
            rho = r[dr] + x_value[row_x[i]]
            T = T_value[row_T[i]]
            if row_a[i] == row_b[i]:
                log_j = -np.inf
            else:
                _fill(rho, alpha[dr], b[dr], s[dr], beta[dr], p)
                log_j = _row_integral(p, limits, log_r, d_r, row_a[i], row_b[i], row_t[i], T, grad, work, False)
            if alive:
                log_alive = -rho * math.log(alpha[dr] + T) - s[dr] * log_beta_expm1(log_beta, b[dr] * T)
                out[dr, i] = 1.0 / (1.0 + math.exp(math.log(b[dr] * s[dr]) + log_j - log_alive))
            else:
                out[dr, i] = log_j
