"""Summed log-likelihoods of the population models with static covariates, in one compiled pass.

With covariates every customer has their own rate scales (``alpha_i = alpha
exp(-purchase_coef . z_i)`` and the dropout scales, see
:mod:`bayesclv.models.covariates`), so the pooled models' tables of shared
terms (:mod:`bayesclv.formulas._summed`) do not apply: each distinct
(history, covariates, group) row has its own terms. These kernels still give
NUTS the total and its exact gradient in one pass, without per-row
temporaries in a PyTensor graph:

- the scaled parameters are formed inside the kernel from the linear
  predictors, and the gradient in each coefficient is the chain rule done
  there, ``sum_i w_i dL_i/d(log scale_i) * (+-z_i)``, so the graph sees one
  vector per coefficient, not one entry per row;
- ``gammaln(r + x) - gammaln(r)`` depends on a row through ``x`` only and is
  summed over the distinct ``(group, x)``;
- BG/NBD's beta-function ratio ``B(a_i, b_i + x) / B(a_i, b_i)`` is a product
  of ``x`` factors for a small ``x`` (no log-gamma or digamma per row), the
  log-gamma form beyond;
- a customer without repeat purchases needs only the purchase scale (BG/NBD);
  Pareto/NBD's lifetime integral of each row is the pooled kernel's
  piecewise rule (4 nodes on a short flat interval, 8 per piece elsewhere,
  calibrated to 1e-13 in ``log J``), with one piece count for a block's rows
  (:mod:`bayesclv.formulas._lifetime_lanes`);
- both kernels take their rows a block of vector lanes at a time, with
  :mod:`bayesclv.formulas._lane_math`'s exponential and logarithm (numba's
  scalar libm calls would stop LLVM vectorising the loops).

Parameters are vectors over groups (length 1 without groups); the
coefficients are vectors over their process's covariates (length 0 when the
process has none).
"""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._lane_math import lane_exp, lane_log
from bayesclv.formulas._lifetime_lanes import LIFETIME_WORK_ROWS, lane_lifetime_integral
from bayesclv.formulas._ops import PT
from bayesclv.formulas._summed import (
    SummedLoglikOp,
    digamma,
    distinct,
    kernel_arguments,
    read_only_tables,
    softplus_and_sigmoid,
)

__all__ = ["CovariateLoglikOp", "bgnbd_kernel", "covariate_summed_loglik_function", "covariate_tables", "covariate_total",
           "paretonbd_kernel"]

_PRODUCT_TERMS = 32  # up to this many repeat purchases the beta ratio is a product of x factors
LANES = 64  # rows per block of the BG/NBD kernel
_RESCALE = 1e-200  # a running product below this is moved into the logarithm (no underflow)


@read_only_tables
def covariate_tables(frequency, recency, T, weight, z_purchase, z_dropout, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of the covariate kernels for rows ``(x, t_x, T)`` with multiplicities ``weight``.

    The rows are reordered by group, kind (no repeat purchase, ``x`` up to
    :data:`_PRODUCT_TERMS`, beyond), ``x``, ``t_x`` and the first dropout (else purchase)
    covariate, and cut into blocks of at most :data:`LANES` rows of one group and kind,
    so that the kernels take a block's rows in vector lanes with one branch per block
    (``t_x`` and the covariate last: a Pareto/NBD block's rows then need similar node
    layouts for their lifetime integrals, which the block shares); the covariates are
    stored covariate-major (each covariate's values of a block contiguous).

    Parameters
    ----------
    frequency, recency, T, weight : array_like
        One entry per row (distinct histories with covariates, and their counts).
    z_purchase, z_dropout : array_like
        ``(rows, k)`` standardised covariates of each process (``k`` may be 0).
    group : array_like of int, optional
        Group code of each row (0 .. n_groups-1); all 0 by default.

    Returns
    -------
    tuple of numpy.ndarray
        Each row's group, ``x``, ``t_x``, ``T``, weight, the covariates
        ``(k, rows)`` of each process and the blocks' first rows (with the end);
        the distinct ``(group, x)`` with their total weights; and the total
        weight of each group.
    """
    x, t_x, T, w = (np.asarray(v, dtype=float).reshape(-1) for v in (frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64).reshape(-1)
    zp, zd = (np.reshape(np.asarray(z, dtype=float), (x.size, -1)) for z in (z_purchase, z_dropout))
    kind = np.where(x == 0.0, 0, np.where(x <= _PRODUCT_TERMS, 1, 2))
    # rows of one (x, t_x), mostly those without repeat purchases, by their first covariate: neighbours then have
    # similar scales, so a Pareto/NBD block's lifetime integrals need similar node layouts
    first = zd[:, 0] if zd.shape[1] else zp[:, 0] if zp.shape[1] else np.zeros(x.size)
    order = np.lexsort((first, t_x, x, kind, g))
    x, t_x, T, w, g, kind = (np.ascontiguousarray(v[order]) for v in (x, t_x, T, w, g, kind))
    zp, zd = (np.ascontiguousarray(z[order].T) for z in (zp, zd))
    change = np.flatnonzero((np.diff(g) != 0) | (np.diff(kind) != 0)) + 1
    runs = np.concatenate([[0], change, [x.size]])
    starts = [np.arange(lo, hi, LANES) for lo, hi in itertools.pairwise(runs) if hi > lo]
    block_start = np.concatenate([*starts, [x.size]]).astype(np.int64)
    xs = distinct(g, x)
    return (g, x, t_x, T, w, zp, zd, block_start, xs.group, xs.value, xs.total(w),
            np.bincount(g, weights=w, minlength=g.max(initial=0) + 1))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _count_terms(r, x_group, x_value, x_weight, group_weight, grad_r):  # pragma: no cover - compiled
    """``sum w [gammaln(r+x) - gammaln(r)]`` over the distinct ``(group, x)``; its ``r``-gradient into ``grad_r``."""
    total = 0.0
    for g in range(r.size):
        total -= group_weight[g] * math.lgamma(r[g])
        grad_r[g] -= group_weight[g] * digamma(r[g])
    for j in range(x_value.size):
        g = x_group[j]
        total += x_weight[j] * math.lgamma(r[g] + x_value[j])
        grad_r[g] += x_weight[j] * digamma(r[g] + x_value[j])
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _linear(coef, z, i):  # pragma: no cover - compiled
    """``coef . z[:, i]``."""
    eta = 0.0
    for k in range(coef.size):
        eta += coef[k] * z[k, i]
    return eta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_scaled(grad, z, i, value):  # pragma: no cover - compiled
    """``grad += value * z[:, i]`` (a coefficient's share of a row's derivative)."""
    for k in range(grad.size):
        grad[k] += value * z[k, i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_beta_ratio(a, b, x):  # pragma: no cover - compiled
    """``log B(a, b+x) - log B(a, b)`` and its derivatives in ``log a`` and ``log b``.

    ``B(a, b+x) / B(a, b) = prod_{k<x} (b+k) / (a+b+k)``: for ``x <=
    _PRODUCT_TERMS`` the product itself and sums of reciprocals (derivatives
    ``-a sum 1/(a+b+k)`` and ``b sum [1/(b+k) - 1/(a+b+k)]``), beyond it
    log-gamma and digamma functions.
    """
    ab = a + b
    if x > _PRODUCT_TERMS:
        dab = digamma(ab) - digamma(ab + x)
        value = math.lgamma(ab) + math.lgamma(b + x) - math.lgamma(b) - math.lgamma(ab + x)
        return value, a * dab, b * (dab + digamma(b + x) - digamma(b))
    value, product, inv_b, inv_ab = 0.0, 1.0, 0.0, 0.0
    for k in range(int(x)):
        product *= (b + k) / (ab + k)
        if product < _RESCALE:
            value += math.log(product)
            product = 1.0
        inv_b += 1.0 / (b + k)
        inv_ab += 1.0 / (ab + k)
    return value + math.log(product), -a * inv_ab, b * (inv_b - inv_ab)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lane_dot(grad, z, i0, values, n):  # pragma: no cover - compiled
    """``grad[k] += sum_l values[l] z[k, i0 + l]`` over a block's ``n`` lanes."""
    for k in range(grad.size):
        zk = z[k, i0:i0 + n]
        acc = 0.0
        for lane in range(n):
            acc += values[lane] * zk[lane]
        grad[k] += acc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lane_linear(out, base, coef, sign, z, i0, n):  # pragma: no cover - compiled
    """``out[l] = base + sign * coef . z[:, i0 + l]`` over a block's ``n`` lanes."""
    for lane in range(n):
        out[lane] = base
    for k in range(coef.size):
        c = sign * coef[k]
        zk = z[k, i0:i0 + n]
        for lane in range(n):
            out[lane] += c * zk[lane]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lane_beta_ratio(a, b, x, n, ratio, dl_a, dl_b, work):  # pragma: no cover - compiled
    """:func:`log_beta_ratio` of a block's lanes (``x`` ascending, ``1 <= x <= _PRODUCT_TERMS``): the
    product of ``x`` factors and the sums of reciprocals lane by lane up to the block's largest ``x``, the
    lanes past their own ``x`` multiplying by 1. A lane whose product fell below ``_RESCALE`` is redone by
    :func:`log_beta_ratio` (its running rescaling)."""
    product, inv_b, inv_ab = work[0], work[1], work[2]
    for lane in range(n):
        product[lane], inv_b[lane], inv_ab[lane] = 1.0, 0.0, 0.0
    for k in range(int(x[n - 1])):
        for lane in range(n):
            on = k < x[lane]
            u = 1.0 / (a[lane] + b[lane] + k)
            v = 1.0 / (b[lane] + k)
            product[lane] *= (b[lane] + k) * u if on else 1.0
            inv_b[lane] += v if on else 0.0
            inv_ab[lane] += u if on else 0.0
    lane_log(product, ratio, n)
    for lane in range(n):
        dl_a[lane] = -a[lane] * inv_ab[lane]
        dl_b[lane] = b[lane] * (inv_b[lane] - inv_ab[lane])
        if not product[lane] >= _RESCALE:
            ratio[lane], dl_a[lane], dl_b[lane] = log_beta_ratio(a[lane], b[lane], x[lane])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bgnbd_kernel(r, alpha, a, b, purchase_coef, dropout_coef_a, dropout_coef_b, row_group, frequency, recency, T,
                 weight, z_purchase, z_dropout, block_start, x_group, x_value, x_weight,
                 group_weight):  # pragma: no cover
    """Total BG/NBD log-likelihood of the rows of :func:`covariate_tables` and its gradient.

    Row ``i`` has ``alpha_i = alpha exp(-purchase_coef . zp_i)``, ``a_i = a
    exp(dropout_coef_a . zd_i)``, ``b_i = b exp(dropout_coef_b . zd_i)`` and
    the log-likelihood of :func:`bayesclv.formulas.bgnbd.loglik` there:
    ``gammaln(r+x) - gammaln(r) + r log(alpha_i) - (r+x) log(alpha_i+T) +
    log B(a_i, b_i+x) - log B(a_i, b_i) + [x>0] softplus(d_i)`` with ``d_i =
    log a_i - log(b_i+x-1) + (r+x) [log(alpha_i+T) - log(alpha_i+t_x)]``. Each row's
    derivatives in ``log alpha_i, log a_i, log b_i`` go to the group's
    parameters (divided by them) and to the coefficients (times ``-+z_i``).

    The rows come a block at a time (one group, one kind: see
    :func:`covariate_tables`) and every step is a loop over the block's lanes,
    with the exponentials and logarithms of :mod:`bayesclv.formulas._lane_math`,
    so the loops vectorise; a block without repeat purchases needs only the
    purchase terms.

    Returns
    -------
    tuple
        ``(total, (d_r, d_alpha, d_a, d_b, d_purchase_coef, d_dropout_coef_a, d_dropout_coef_b))``.
    """
    d_r, d_alpha, d_a, d_b = np.zeros(r.size), np.zeros(r.size), np.zeros(r.size), np.zeros(r.size)
    d_pc, d_ca, d_cb = np.zeros(purchase_coef.size), np.zeros(dropout_coef_a.size), np.zeros(dropout_coef_b.size)
    total = _count_terms(r, x_group, x_value, x_weight, group_weight, d_r)
    log_alpha, log_a, log_b = np.log(alpha), np.log(a), np.log(b)
    work = np.empty((23, LANES))  # one row per lane quantity, the last three for _lane_beta_ratio
    log_scale, scale, log_scale_T, shifted, loglik, dr, dl_alpha, eta_a, eta_b, a_i, b_i = (
        work[0], work[1], work[2], work[3], work[4], work[5], work[6], work[7], work[8], work[9], work[10])
    ratio, dl_a, dl_b, log_scale_t, log_b_x, d, exp_d, tail, softplus_tail = (
        work[11], work[12], work[13], work[14], work[15], work[16], work[17], work[18], work[19])
    for j in range(block_start.size - 1):
        i0, n = block_start[j], block_start[j + 1] - block_start[j]
        g, rg = row_group[i0], r[row_group[i0]]
        x, age, t, w = frequency[i0:i0 + n], T[i0:i0 + n], recency[i0:i0 + n], weight[i0:i0 + n]
        _lane_linear(log_scale, log_alpha[g], purchase_coef, -1.0, z_purchase, i0, n)
        lane_exp(log_scale, scale, n)
        for lane in range(n):
            shifted[lane] = scale[lane] + age[lane]
        lane_log(shifted, log_scale_T, n)
        for lane in range(n):
            rho = rg + x[lane]
            loglik[lane] = rg * log_scale[lane] - rho * log_scale_T[lane]
            dr[lane] = log_scale[lane] - log_scale_T[lane]
            dl_alpha[lane] = rg - rho * scale[lane] / shifted[lane]
        if x[0] > 0.0:
            _lane_linear(eta_a, log_a[g], dropout_coef_a, 1.0, z_dropout, i0, n)
            _lane_linear(eta_b, log_b[g], dropout_coef_b, 1.0, z_dropout, i0, n)
            lane_exp(eta_a, a_i, n)
            lane_exp(eta_b, b_i, n)
            if x[n - 1] <= _PRODUCT_TERMS:
                _lane_beta_ratio(a_i, b_i, x, n, ratio, dl_a, dl_b, work[20:])
            else:
                for lane in range(n):
                    ratio[lane], dl_a[lane], dl_b[lane] = log_beta_ratio(a_i[lane], b_i[lane], x[lane])
            for lane in range(n):
                shifted[lane] = scale[lane] + t[lane]
            lane_log(shifted, log_scale_t, n)
            for lane in range(n):
                tail[lane] = b_i[lane] + x[lane] - 1.0
            lane_log(tail, log_b_x, n)
            for lane in range(n):
                d[lane] = eta_a[lane] - log_b_x[lane] + (rg + x[lane]) * (log_scale_T[lane] - log_scale_t[lane])
                softplus_tail[lane] = -abs(d[lane])
            lane_exp(softplus_tail, exp_d, n)  # exp(-|d|)
            for lane in range(n):
                tail[lane] = 1.0 + exp_d[lane]
            lane_log(tail, softplus_tail, n)  # softplus(d) = max(d, 0) + log(1 + exp(-|d|))
            for lane in range(n):
                sg = (1.0 if d[lane] > 0.0 else exp_d[lane]) / tail[lane]  # sigmoid(d)
                rho = rg + x[lane]
                loglik[lane] += ratio[lane] + max(d[lane], 0.0) + softplus_tail[lane]
                dr[lane] += sg * (log_scale_T[lane] - log_scale_t[lane])
                dl_alpha[lane] += sg * rho * (scale[lane] / (scale[lane] + age[lane]) - scale[lane] / shifted[lane])
                dl_a[lane] = w[lane] * (dl_a[lane] + sg)
                dl_b[lane] = w[lane] * (dl_b[lane] - sg * b_i[lane] / (b_i[lane] + x[lane] - 1.0))
            sum_a = sum_b = 0.0
            for lane in range(n):
                sum_a += dl_a[lane]
                sum_b += dl_b[lane]
            d_a[g] += sum_a
            d_b[g] += sum_b
            _lane_dot(d_ca, z_dropout, i0, dl_a, n)
            _lane_dot(d_cb, z_dropout, i0, dl_b, n)
        sum_l = sum_r = sum_alpha = 0.0
        for lane in range(n):
            sum_l += w[lane] * loglik[lane]
            sum_r += w[lane] * dr[lane]
            dl_alpha[lane] *= -w[lane]
            sum_alpha -= dl_alpha[lane]
        total += sum_l
        d_r[g] += sum_r
        d_alpha[g] += sum_alpha
        _lane_dot(d_pc, z_purchase, i0, dl_alpha, n)
    return total, (d_r, d_alpha / alpha, d_a / a, d_b / b, d_pc, d_ca, d_cb)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def paretonbd_kernel(r, alpha, s, beta, purchase_coef, dropout_coef, row_group, frequency, recency, T, weight,
                     z_purchase, z_dropout, block_start, x_group, x_value, x_weight, group_weight):  # pragma: no cover
    """Total Pareto/NBD log-likelihood of the rows of :func:`covariate_tables` and its gradient.

    Row ``i`` has ``alpha_i = alpha exp(-purchase_coef . zp_i)`` and ``beta_i
    = beta exp(-dropout_coef . zd_i)`` and the log-likelihood of
    :func:`bayesclv.formulas.paretonbd.loglik` there: ``gammaln(r+x) -
    gammaln(r) + r log(alpha_i) + s log(beta_i) + logaddexp(A_i, log s + log
    J_i)`` with the alive branch ``A_i = -(r+x) log(alpha_i+T) - s
    log(beta_i+T)`` and ``J_i`` the lifetime integral from ``t_x`` to ``T``
    (in ``Q = log(m + tau)``, ``m = min(alpha_i, beta_i)``, a substitution: no
    derivative through ``m``).

    The rows come a block at a time, as in :func:`bgnbd_kernel`, every step a
    loop over the block's lanes; the block's integrals share one node layout
    (:func:`bayesclv.formulas._lifetime_lanes.lane_lifetime_integral`).

    Returns
    -------
    tuple
        ``(total, (d_r, d_alpha, d_s, d_beta, d_purchase_coef, d_dropout_coef))``.
    """
    d_r, d_alpha, d_s, d_beta = np.zeros(r.size), np.zeros(r.size), np.zeros(r.size), np.zeros(r.size)
    d_pc, d_dc = np.zeros(purchase_coef.size), np.zeros(dropout_coef.size)
    total = _count_terms(r, x_group, x_value, x_weight, group_weight, d_r)
    log_alpha, log_beta, log_s = np.log(alpha), np.log(beta), np.log(s)
    work = np.empty((20 + LIFETIME_WORK_ROWS, LANES))
    log_a, log_b, a_i, b_i, rho, ca, cb, e0, e1, q0, q1, log_aT, log_bT, log_j, d_rho, d_sigma, d_ca, d_cb = (
        work[0], work[1], work[2], work[3], work[4], work[5], work[6], work[7], work[8], work[9], work[10],
        work[11], work[12], work[13], work[14], work[15], work[16], work[17])
    d, tail = work[18], work[19]
    for j in range(block_start.size - 1):
        i0, n = block_start[j], block_start[j + 1] - block_start[j]
        g = row_group[i0]
        rg, sg = r[g], s[g]
        x, age, t, w = frequency[i0:i0 + n], T[i0:i0 + n], recency[i0:i0 + n], weight[i0:i0 + n]
        _lane_linear(log_a, log_alpha[g], purchase_coef, -1.0, z_purchase, i0, n)
        _lane_linear(log_b, log_beta[g], dropout_coef, -1.0, z_dropout, i0, n)
        lane_exp(log_a, a_i, n)
        lane_exp(log_b, b_i, n)
        for lane in range(n):
            m = min(a_i[lane], b_i[lane])
            rho[lane] = rg + x[lane]
            ca[lane], cb[lane] = a_i[lane] - m, b_i[lane] - m
            e0[lane], e1[lane] = m + t[lane], m + age[lane]
            d[lane] = max(a_i[lane], b_i[lane]) + age[lane]
        lane_log(e0, q0, n)
        lane_log(e1, q1, n)
        lane_log(d, tail, n)
        for lane in range(n):  # the smaller scale's log(scale + T) is the upper limit q1 (one logarithm less)
            log_aT[lane] = q1[lane] if ca[lane] == 0.0 else tail[lane]
            log_bT[lane] = q1[lane] if cb[lane] == 0.0 else tail[lane]
        lane_lifetime_integral(rho, sg + 1.0, ca, cb, e0, e1, q0, q1, n, log_j, d_rho, d_sigma, d_ca, d_cb,
                               work[20:])
        alive, exp_d, softplus_tail = e0, e1, q0  # the limits are spent: their lanes hold the rest
        for lane in range(n):
            alive[lane] = -rho[lane] * log_aT[lane] - sg * log_bT[lane]
            d[lane] = log_s[g] + log_j[lane] - alive[lane]
            log_j[lane] = -abs(d[lane])
        lane_exp(log_j, exp_d, n)
        for lane in range(n):
            exp_d[lane] = 0.0 if d[lane] == -np.inf else exp_d[lane]  # no lifetime mass (lane_exp stops at e^-708)
            tail[lane] = 1.0 + exp_d[lane]
        lane_log(tail, softplus_tail, n)  # softplus(d) = max(d, 0) + log(1 + exp(-|d|))
        sum_l = sum_r = sum_s = sum_alpha = sum_beta = 0.0
        for lane in range(n):
            pi = (1.0 if d[lane] > 0.0 else exp_d[lane]) / tail[lane]  # sigmoid(d): the share of the dropout branch
            stay = 1.0 - pi
            sum_l += w[lane] * (rg * log_a[lane] + sg * log_b[lane] + alive[lane] + max(d[lane], 0.0)
                             + softplus_tail[lane])
            sum_r += w[lane] * (log_a[lane] + pi * d_rho[lane] - stay * log_aT[lane])
            sum_s += w[lane] * (log_b[lane] + pi * (1.0 / sg + d_sigma[lane]) - stay * log_bT[lane])
            ca[lane] = -w[lane] * (rg + a_i[lane] * (pi * d_ca[lane] - stay * rho[lane] / (a_i[lane] + age[lane])))
            cb[lane] = -w[lane] * (sg + b_i[lane] * (pi * d_cb[lane] - stay * sg / (b_i[lane] + age[lane])))
            sum_alpha -= ca[lane]
            sum_beta -= cb[lane]
        total += sum_l
        d_r[g] += sum_r
        d_s[g] += sum_s
        d_alpha[g] += sum_alpha
        d_beta[g] += sum_beta
        _lane_dot(d_pc, z_purchase, i0, ca, n)
        _lane_dot(d_dc, z_dropout, i0, cb, n)
    return total, (d_r, d_alpha / alpha, d_s, d_beta / beta, d_pc, d_dc)


class CovariateLoglikOp(SummedLoglikOp):
    """:class:`SummedLoglikOp` of a covariate kernel: the group parameters, then the coefficient vectors."""


@register_funcify_default_op_cache_key(CovariateLoglikOp)
def _numba_funcify_covariate_loglik(op, node=None, **kwargs):
    """Native numba implementation, for graphs compiled with numba (PyMC's NUTS, ``find_MAP``)."""
    kernel = op.kernel
    c = np.ascontiguousarray  # as the summed Op's: one layout for the graph and the Python callers
    if op.n_params == 6:
        @numba.njit(nogil=True, error_model="numpy")
        def covariate_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), c(inputs[2]), c(inputs[3]), c(inputs[4]), c(inputs[5]),
                                 *inputs[6:])
            return (np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy(), grad[3].copy(),
                    grad[4].copy(), grad[5].copy())
    elif op.n_params == 7:
        @numba.njit(nogil=True, error_model="numpy")
        def covariate_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), c(inputs[2]), c(inputs[3]), c(inputs[4]), c(inputs[5]),
                                 c(inputs[6]), *inputs[7:])
            return (np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy(), grad[3].copy(),
                    grad[4].copy(), grad[5].copy(), grad[6].copy())
    else:  # pragma: no cover - BG/NBD has 7 parameter inputs, Pareto/NBD 6
        raise NotImplementedError(f"no numba implementation for {op.n_params} parameters")
    return covariate_loglik, KERNEL_SOURCE_SALT


def covariate_total(kernel, params: list, coefs: list, tables: tuple, xp):
    """Total log-likelihood from a covariate ``kernel``: ``params`` (scalars, or vectors over groups),
    ``coefs`` (vectors, one per coefficient), ``tables`` from :func:`covariate_tables`.

    ``xp=PT``: a PyTensor scalar (:class:`CovariateLoglikOp`) whose gradient
    comes from the same compiled pass; ``xp=NP``: a float.
    """
    if xp is PT:
        if params[0].ndim == 0:
            params = [pt.reshape(p, (1,)) for p in params]
        inputs = [*params, *(pt.as_tensor_variable(c, dtype="float64") for c in coefs)]
        return CovariateLoglikOp(kernel, len(inputs))(*inputs, *tables)[0]
    arrays, tables = kernel_arguments([*(np.atleast_1d(p) for p in params),
                                       *(np.asarray(c, dtype=float).reshape(-1) for c in coefs)], tables)
    return kernel(*arrays, *tables)[0]


def covariate_summed_loglik_function(kernel, names: tuple[str, ...], coef_names: tuple[str, ...], family: str,
                                     effects: str):
    """A family's ``covariate_summed_loglik(tables, *params, *coefs, xp=PT)``: :func:`covariate_total` of ``kernel``.

    The covariate counterpart of :func:`bayesclv.formulas._summed.summed_loglik_function`:
    the same call for every family, written once, with the docstring naming the
    family's parameters, coefficients and how they act (``effects``).

    Parameters
    ----------
    kernel : numba function
        ``kernel(*params, *coefs, *tables) -> (total, gradient)``.
    names, coef_names : tuple of str
        The population parameters and the coefficient vectors, in the kernel's order.
    family : str
        Name of the family in the docstring.
    effects : str
        The row's parameters in terms of the population and the covariates, for the docstring.

    Returns
    -------
    callable
    """
    listed, coefs_listed = ", ".join(names), ", ".join(coef_names)
    order = (*names, *coef_names)

    def covariate_summed_loglik(tables, *args, xp=PT, **named):
        values = dict(zip(order, args))
        if set(values) & set(named) or len(args) > len(order):
            raise TypeError(f"covariate_summed_loglik takes ({listed}, {coefs_listed}) once each")
        values.update(named)
        if set(values) != set(order):
            raise TypeError(f"covariate_summed_loglik needs {', '.join(n for n in order if n not in values)}")
        return covariate_total(kernel, [values[n] for n in names], [values[n] for n in coef_names], tables, xp)

    covariate_summed_loglik.__doc__ = f"""Total {family} log-likelihood of rows with static covariates, each at its own parameters.

    Row ``i`` of ``tables`` (:func:`covariate_loglik_tables`) contributes
    ``weight_i loglik(x_i, t_x_i, T_i)`` at {effects}
    (see :mod:`bayesclv.models.covariates`).

    Parameters
    ----------
    tables : tuple of numpy.ndarray
        From :func:`covariate_loglik_tables`.
    {listed} : TensorVariable or array_like
        Population parameters: scalars, or vectors over the groups of ``tables``.
    {coefs_listed} : TensorVariable or array_like
        Coefficient vectors, one entry per covariate of the process (length 0 without covariates).
    xp : namespace, default PT
        ``PT`` for a PyTensor scalar whose gradient comes from the same
        compiled pass, ``NP`` for a float.

    Returns
    -------
    TensorVariable or float
    """
    return covariate_summed_loglik
