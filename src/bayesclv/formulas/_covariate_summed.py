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
  piecewise rule (:func:`log_piecewise_integral`: 4 nodes on a short flat
  interval, 8 per piece elsewhere, calibrated to 1e-13 in ``log J``), about
  half the work of the per-row formula's windowed 24-node rule.

Parameters are vectors over groups (length 1 without groups); the
coefficients are vectors over their process's covariates (length 0 when the
process has none).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._lifetime_integral import log_piecewise_integral
from bayesclv.formulas._ops import PT
from bayesclv.formulas._summed import SummedLoglikOp, digamma, distinct, softplus_and_sigmoid

__all__ = ["CovariateLoglikOp", "bgnbd_kernel", "covariate_summed_loglik_function", "covariate_tables", "covariate_total",
           "paretonbd_kernel"]

_PRODUCT_TERMS = 32  # up to this many repeat purchases the beta ratio is a product of x factors
_RESCALE = 1e-200  # a running product below this is moved into the logarithm (no underflow)


def covariate_tables(frequency, recency, T, weight, z_purchase, z_dropout, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of the covariate kernels for rows ``(x, t_x, T)`` with multiplicities ``weight``.

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
        Each row's group, ``x``, ``t_x``, ``T``, weight and covariates; the
        distinct ``(group, x)`` with their total weights; and the total
        weight of each group.
    """
    x, t_x, T, w = (np.ascontiguousarray(v, dtype=float) for v in (frequency, recency, T, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.ascontiguousarray(group, dtype=np.int64)
    zp, zd = (np.ascontiguousarray(np.reshape(z, (x.size, -1)), dtype=float) for z in (z_purchase, z_dropout))
    xs = distinct(g, x)
    return (g, x, t_x, T, w, zp, zd, xs.group, xs.value, xs.total(w),
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
    """``coef . z[i]``."""
    eta = 0.0
    for k in range(coef.size):
        eta += coef[k] * z[i, k]
    return eta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_scaled(grad, z, i, value):  # pragma: no cover - compiled
    """``grad += value * z[i]`` (a coefficient's share of a row's derivative)."""
    for k in range(grad.size):
        grad[k] += value * z[i, k]


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
def bgnbd_kernel(r, alpha, a, b, purchase_coef, dropout_coef_a, dropout_coef_b, row_group, frequency, recency, T,
                 weight, z_purchase, z_dropout, x_group, x_value, x_weight, group_weight):  # pragma: no cover
    """Total BG/NBD log-likelihood of the rows of :func:`covariate_tables` and its gradient.

    Row ``i`` has ``alpha_i = alpha exp(-purchase_coef . zp_i)``, ``a_i = a
    exp(dropout_coef_a . zd_i)``, ``b_i = b exp(dropout_coef_b . zd_i)`` and
    the log-likelihood of :func:`bayesclv.formulas.bgnbd.loglik` there:
    ``gammaln(r+x) - gammaln(r) + r log(alpha_i) - (r+x) log(alpha_i+T) +
    log B(a_i, b_i+x) - log B(a_i, b_i) + [x>0] softplus(d_i)`` with ``d_i =
    log a_i - log(b_i+x-1) + (r+x) log1p((T-t_x)/(alpha_i+t_x))``. Each row's
    derivatives in ``log alpha_i, log a_i, log b_i`` go to the group's
    parameters (divided by them) and to the coefficients (times ``-+z_i``).

    Returns
    -------
    tuple
        ``(total, (d_r, d_alpha, d_a, d_b, d_purchase_coef, d_dropout_coef_a, d_dropout_coef_b))``.
    """
    d_r, d_alpha, d_a, d_b = np.zeros(r.size), np.zeros(r.size), np.zeros(r.size), np.zeros(r.size)
    d_pc, d_ca, d_cb = np.zeros(purchase_coef.size), np.zeros(dropout_coef_a.size), np.zeros(dropout_coef_b.size)
    total = _count_terms(r, x_group, x_value, x_weight, group_weight, d_r)
    log_alpha = np.log(alpha)
    log_a = np.log(a)
    for i in range(frequency.size):
        g, x, w, age = row_group[i], frequency[i], weight[i], T[i]
        eta = _linear(purchase_coef, z_purchase, i)
        scale = alpha[g] * math.exp(-eta)
        log_scale, log_scale_T = log_alpha[g] - eta, math.log(scale + age)
        rho = r[g] + x
        loglik = r[g] * log_scale - rho * log_scale_T
        dr = log_scale - log_scale_T
        dl_alpha = r[g] - rho * scale / (scale + age)
        if x > 0.0:
            eta_a, eta_b = _linear(dropout_coef_a, z_dropout, i), _linear(dropout_coef_b, z_dropout, i)
            a_i, b_i = a[g] * math.exp(eta_a), b[g] * math.exp(eta_b)
            ratio, dl_a, dl_b = log_beta_ratio(a_i, b_i, x)
            t = recency[i]
            delta = math.log1p((age - t) / (scale + t))
            sp, sg = softplus_and_sigmoid(log_a[g] + eta_a - math.log(b_i + x - 1.0) + rho * delta)
            loglik += ratio + sp
            dr += sg * delta
            dl_alpha += sg * rho * (scale / (scale + age) - scale / (scale + t))
            dl_a += sg
            dl_b -= sg * b_i / (b_i + x - 1.0)
            d_a[g] += w * dl_a
            d_b[g] += w * dl_b
            _add_scaled(d_ca, z_dropout, i, w * dl_a)
            _add_scaled(d_cb, z_dropout, i, w * dl_b)
        total += w * loglik
        d_r[g] += w * dr
        d_alpha[g] += w * dl_alpha
        _add_scaled(d_pc, z_purchase, i, -w * dl_alpha)
    return total, (d_r, d_alpha / alpha, d_a / a, d_b / b, d_pc, d_ca, d_cb)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def paretonbd_kernel(r, alpha, s, beta, purchase_coef, dropout_coef, row_group, frequency, recency, T, weight,
                     z_purchase, z_dropout, x_group, x_value, x_weight, group_weight):  # pragma: no cover
    """Total Pareto/NBD log-likelihood of the rows of :func:`covariate_tables` and its gradient.

    Row ``i`` has ``alpha_i = alpha exp(-purchase_coef . zp_i)`` and ``beta_i
    = beta exp(-dropout_coef . zd_i)`` and the log-likelihood of
    :func:`bayesclv.formulas.paretonbd.loglik` there: ``gammaln(r+x) -
    gammaln(r) + r log(alpha_i) + s log(beta_i) + logaddexp(A_i, log s + log
    J_i)`` with the alive branch ``A_i = -(r+x) log(alpha_i+T) - s
    log(beta_i+T)`` and ``J_i`` the lifetime integral from ``t_x`` to ``T``
    (:func:`log_piecewise_integral`, in ``Q = log(m + tau)``, ``m =
    min(alpha_i, beta_i)``, a substitution: no derivative through ``m``).

    Returns
    -------
    tuple
        ``(total, (d_r, d_alpha, d_s, d_beta, d_purchase_coef, d_dropout_coef))``.
    """
    d_r, d_alpha, d_s, d_beta = np.zeros(r.size), np.zeros(r.size), np.zeros(r.size), np.zeros(r.size)
    d_pc, d_dc = np.zeros(purchase_coef.size), np.zeros(dropout_coef.size)
    total = _count_terms(r, x_group, x_value, x_weight, group_weight, d_r)
    log_alpha, log_beta, log_s = np.log(alpha), np.log(beta), np.log(s)
    for i in range(frequency.size):
        g, w, age, t = row_group[i], weight[i], T[i], recency[i]
        eta_p, eta_d = _linear(purchase_coef, z_purchase, i), _linear(dropout_coef, z_dropout, i)
        a_i, b_i = alpha[g] * math.exp(-eta_p), beta[g] * math.exp(-eta_d)
        log_a_i, log_b_i = log_alpha[g] - eta_p, log_beta[g] - eta_d
        rho = r[g] + frequency[i]
        log_aT, log_bT = math.log(a_i + age), math.log(b_i + age)
        alive = -rho * log_aT - s[g] * log_bT
        lse = pi = d_rho = d_sigma = d_ca = d_cb = 0.0
        if t < age:
            m = min(a_i, b_i)
            log_j, d_rho, d_sigma, d_ca, d_cb = log_piecewise_integral(
                rho, s[g] + 1.0, a_i - m, b_i - m, math.log(m + t), math.log(m + age), True)
            lse, pi = softplus_and_sigmoid(log_s[g] + log_j - alive)
        stay = 1.0 - pi
        total += w * (r[g] * log_a_i + s[g] * log_b_i + alive + lse)
        d_r[g] += w * (log_a_i + pi * d_rho - stay * log_aT)
        d_s[g] += w * (log_b_i + pi * (1.0 / s[g] + d_sigma) - stay * log_bT)
        dl_alpha = r[g] + a_i * (pi * d_ca - stay * rho / (a_i + age))
        dl_beta = s[g] + b_i * (pi * d_cb - stay * s[g] / (b_i + age))
        d_alpha[g] += w * dl_alpha
        d_beta[g] += w * dl_beta
        _add_scaled(d_pc, z_purchase, i, -w * dl_alpha)
        _add_scaled(d_dc, z_dropout, i, -w * dl_beta)
    return total, (d_r, d_alpha / alpha, d_s, d_beta / beta, d_pc, d_dc)


class CovariateLoglikOp(SummedLoglikOp):
    """:class:`SummedLoglikOp` of a covariate kernel: the group parameters, then the coefficient vectors."""


@register_funcify_default_op_cache_key(CovariateLoglikOp)
def _numba_funcify_covariate_loglik(op, node=None, **kwargs):
    """Native numba implementation, for graphs compiled with numba (PyMC's NUTS, ``find_MAP``)."""
    kernel = op.kernel
    if op.n_params == 6:
        @numba.njit(nogil=True, error_model="numpy")
        def covariate_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(*inputs)
            return (np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy(), grad[3].copy(),
                    grad[4].copy(), grad[5].copy())
    elif op.n_params == 7:
        @numba.njit(nogil=True, error_model="numpy")
        def covariate_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(*inputs)
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
    arrays = [np.atleast_1d(np.asarray(p, dtype=float)) for p in params]
    return kernel(*arrays, *(np.asarray(c, dtype=float).reshape(-1) for c in coefs), *tables)[0]


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
