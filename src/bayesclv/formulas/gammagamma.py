"""Gamma-Gamma spend model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV").

Each transaction value of a customer is ``Gamma(p, rate=nu)`` and the
customer's ``nu ~ Gamma(q, rate=gamma)``. The mean ``mbar`` of a customer's
``x`` repeat-transaction values is then ``Gamma(p x, rate=nu x)`` given ``nu``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._ops import PT
from bayesclv.formulas._summed import digamma, distinct, read_only_tables, summed_total

__all__ = ["PARAMETERS", "expected_spend", "loglik", "loglik_tables", "population_mean_spend", "simulate_population",
           "summed_loglik"]

PARAMETERS = ("p", "q", "gamma")


def loglik(frequency, monetary_value, p, q, gamma, xp=PT):
    """Per-customer log density of the observed mean spend.

    Parameters
    ----------
    frequency : array_like
        Number of repeat transactions ``x`` (> 0).
    monetary_value : array_like
        Mean value ``mbar`` of those transactions (> 0).
    p, q, gamma : array_like or TensorVariable
        Population parameters (positive).
    xp : namespace, default PT
        ``PT`` for a PyTensor expression, ``NP`` for NumPy.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log f(mbar | x, p, q, gamma)``, with ``nu`` integrated out:
        ``Gamma(px+q)/(Gamma(px)Gamma(q)) gamma^q mbar^(px-1) x^(px) / (gamma + mbar x)^(px+q)``.
    """
    x, m = xp.asarray(frequency), xp.asarray(monetary_value)
    px = p * x
    return (
        xp.gammaln(px + q) - xp.gammaln(px) - xp.gammaln(q)
        + q * xp.log(gamma) + (px - 1.0) * xp.log(m) + px * xp.log(x)
        - (px + q) * xp.log(gamma + m * x)
    )


@read_only_tables
def loglik_tables(frequency, monetary_value, weight, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik` for rows ``(x, mbar)`` with multiplicities ``weight``.

    Parameters
    ----------
    frequency, monetary_value, weight : array_like
        One entry per row (distinct spend histories of repeat buyers and their counts).
    group : array_like of int, optional
        Group code of each row (0 .. n_groups-1); all 0 by default.

    Returns
    -------
    tuple of numpy.ndarray
        Distinct ``x`` per group with their total weights and their sums of
        ``w x log(mbar)``; the rows sorted by group (the first row of each
        group), their ``x`` entries, ``x mbar`` and weights; the total weight of
        each group; and the data-only term ``-sum w log(mbar)``.
    """
    x, m, w = (np.asarray(v, dtype=float) for v in (frequency, monetary_value, weight))
    g = np.zeros(x.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    order = np.argsort(g, kind="stable")
    x, m, w, g = x[order], m[order], w[order], g[order]
    xs = distinct(g, x)
    n_groups = g.max(initial=0) + 1
    return (xs.group, xs.value, xs.total(w), xs.total(w * x * np.log(m)),
            np.searchsorted(g, np.arange(n_groups + 1)), xs.index, x * m, w,
            np.bincount(g, weights=w, minlength=n_groups), np.array(-np.sum(w * np.log(m))))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(p, q, gamma, x_group, x_value, x_weight, x_logm, row_start, row_x, row_xm, row_weight,
                          group_weight, constant):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(3, n_groups)``.

    ``gammaln(px+q) - gammaln(px) + px log(x) + p x log(mbar)`` are summed per
    distinct ``x``, ``-gammaln(q) + q log(gamma)`` per group; only
    ``-(px+q) log(gamma + x mbar)`` is evaluated per row (one logarithm).
    """
    grad = np.zeros((3, p.size))
    total = constant[()]
    for g in range(p.size):
        n, lg = group_weight[g], math.log(gamma[g])
        total += n * (-math.lgamma(q[g]) + q[g] * lg)
        grad[1, g] += n * (lg - digamma(q[g]))
        grad[2, g] += n * q[g] / gamma[g]
    for j in range(x_value.size):
        g, x, w = x_group[j], x_value[j], x_weight[j]
        px = p[g] * x
        d_pq = digamma(px + q[g])
        total += w * (math.lgamma(px + q[g]) - math.lgamma(px) + px * math.log(x)) + p[g] * x_logm[j]
        grad[0, g] += w * x * (d_pq - digamma(px) + math.log(x)) + x_logm[j]
        grad[1, g] += w * d_pq
    for g in range(p.size):
        sum_log = sum_xlog = sum_ratio = 0.0
        for i in range(row_start[g], row_start[g + 1]):
            x, w = x_value[row_x[i]], row_weight[i]
            spend = gamma[g] + row_xm[i]
            log_spend = math.log(spend)
            total -= w * (p[g] * x + q[g]) * log_spend
            sum_log += w * log_spend
            sum_xlog += w * x * log_spend
            sum_ratio += w * (p[g] * x + q[g]) / spend
        grad[0, g] -= sum_xlog
        grad[1, g] -= sum_log
        grad[2, g] -= sum_ratio
    return total, grad


def summed_loglik(tables, p, q, gamma, xp=PT):
    """Total Gamma-Gamma log-likelihood of the rows of :func:`loglik_tables`.

    Parameters
    ----------
    tables : tuple of numpy.ndarray
        From :func:`loglik_tables`.
    p, q, gamma : TensorVariable or array_like
        Population parameters: scalars, or vectors over the groups of ``tables``.
    xp : namespace, default PT
        ``PT`` for a PyTensor scalar whose gradient comes from the same
        compiled pass, ``NP`` for a float.

    Returns
    -------
    TensorVariable or float
        ``sum_i weight_i loglik(x_i, mbar_i)``.
    """
    return summed_total(_summed_loglik_kernel, [p, q, gamma], tables, xp)


def population_mean_spend(p, q, gamma):
    """Mean transaction value of a randomly chosen customer, ``p gamma / (q - 1)``.

    Infinite when ``q <= 1`` (the mixing distribution has no mean).
    """
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(q > 1.0, p * np.asarray(gamma) / np.where(q > 1.0, q - 1.0, 1.0), np.inf)


def expected_spend(frequency, monetary_value, p, q, gamma):
    """E[mean transaction value | x, mbar] = ``p (gamma + x mbar) / (p x + q - 1)``.

    The posterior of ``nu`` is ``Gamma(px + q, gamma + x mbar)`` and
    ``E[Z | nu] = p / nu``. Customers with ``x = 0`` get the population mean.
    This is a weighted average of the population mean and the observed mean,
    with weight ``p x / (p x + q - 1)`` on the customer's own data.
    """
    x = np.asarray(frequency, dtype=float)
    m = np.where(x > 0, np.asarray(monetary_value, dtype=float), 0.0)
    denom = p * x + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * m) / denom
    return np.where(denom > 0, value, np.inf)


def simulate_population(frequency, p, q, gamma, rng=None):
    """Simulate mean repeat-transaction values for customers with ``frequency > 0``.

    ``nu ~ Gamma(q, rate=gamma)``; the mean of ``x`` values ``Gamma(p, rate=nu)``
    is ``Gamma(p x, rate=nu x)``. Customers with ``x = 0`` get 0.

    Returns
    -------
    dict of numpy.ndarray
        ``monetary_value`` and the latent ``nu``.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    shape = np.broadcast_shapes(x.shape, *(np.shape(v) for v in (p, q, gamma)))
    nu = rng.gamma(q, 1.0 / np.asarray(gamma), size=shape)
    xs = np.maximum(np.broadcast_to(x, shape), 1.0)
    mean = rng.gamma(np.asarray(p) * xs, 1.0 / (nu * xs))
    return {"monetary_value": np.where(np.broadcast_to(x, shape) > 0, mean, 0.0), "nu": nu}
