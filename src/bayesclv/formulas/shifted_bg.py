"""Shifted-beta-geometric (sBG) model of contract duration (Fader & Hardie 2007, "How to project customer retention").

In a contractual setting a customer renews at the end of each period with
probability ``1 - theta`` and leaves with probability ``theta``; across customers
``theta ~ Beta(alpha, beta)``. The period in which a customer leaves, ``T``
(1, 2, ...), is shifted-geometric given ``theta``:

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta),    S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta).

A customer is one row ``(periods, churned)``: observed for ``periods`` periods
(>= 1), and ``churned = 1`` if they left in the last of them (``T = periods``),
else 0 (``T > periods``: alive at the end of observation, having renewed
``periods`` times). Given ``T > n``, ``theta ~ Beta(alpha, beta + n)``, so every
conditional quantity is the unconditional one with ``beta + n`` for ``beta``.

The log-likelihood is written once against the ``xp`` namespace (PyTensor by
default, NumPy with ``xp=NP``); the fit uses its summed kernel (:func:`summed_loglik`,
the total over distinct ``(group, periods, churned)`` rows and its gradient in one
compiled pass, as for the other families). The other functions are NumPy and
broadcast over posterior draws and customers. It is a retention model, not a
purchase model.
"""

from __future__ import annotations


import numba
import numpy as np
from scipy import special

from bayesclv.formulas._beta_geometric import discounted_survival, geometric_draws, whole_horizons
from bayesclv.formulas._ops import PT
from bayesclv.formulas._summed import digamma, lbeta, read_only_tables, summed_loglik_function, weighted_rows

__all__ = [
    "PARAMETERS",
    "churn_probability",
    "discounted_expected_lifetime",
    "discounted_expected_residual_lifetime",
    "expected_residual_lifetime",
    "loglik",
    "loglik_tables",
    "retention_rate",
    "simulate_population",
    "simulate_residual_lifetime",
    "summed_loglik",
    "survival",
]

PARAMETERS = ("alpha", "beta")


def _betaln(a, b, xp):
    return xp.gammaln(a) + xp.gammaln(b) - xp.gammaln(a + b)


def loglik(periods, churned, alpha, beta, xp=PT):
    """Per-customer sBG log-likelihood: ``log P(T = n)`` if churned, else ``log S(n)``.

    Parameters
    ----------
    periods : array_like
        Periods observed, ``n >= 1``.
    churned : array_like
        1 where the customer left in period ``n``, 0 where still a customer after it.
    alpha, beta : array_like or TensorVariable
        Population parameters (positive).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.
    """
    n, c = xp.asarray(periods), xp.asarray(churned)
    left = _betaln(alpha + 1.0, beta + n - 1.0, xp)
    stayed = _betaln(alpha, beta + n, xp)
    return xp.where(c > 0, left, stayed) - _betaln(alpha, beta, xp)


@read_only_tables
def loglik_tables(periods, churned, weight, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik`: distinct ``(group, periods, churned)`` rows with their total weights.

    Returns
    -------
    tuple of numpy.ndarray
        Group code, ``n``, ``churned`` (0 or 1) and total weight of each
        distinct row, and the total weight of each group.
    """
    return weighted_rows(weight, group, periods, np.asarray(churned, dtype=float) > 0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _summed_loglik_kernel(alpha, beta, row_group, row_n, row_churned, row_weight,
                          group_weight):  # pragma: no cover - compiled
    """Total of :func:`loglik` over the rows of :func:`loglik_tables`, and its gradient ``(2, n_groups)``.

    Per group, ``-n_g lbeta(alpha, beta)``; per row ``lbeta(alpha + 1, beta + n - 1)`` (churned) or
    ``lbeta(alpha, beta + n)`` (still a customer), whose derivatives are digamma differences
    (``d lbeta(x, y) / dx = psi(x) - psi(x + y)``).
    """
    grad = np.zeros((2, alpha.size))
    total = 0.0
    for g in range(alpha.size):
        a, b, n_g = alpha[g], beta[g], group_weight[g]
        dab = digamma(a + b)
        total -= n_g * lbeta(a, b)
        grad[0, g] -= n_g * (digamma(a) - dab)
        grad[1, g] -= n_g * (digamma(b) - dab)
    for r in range(row_n.size):
        g, w, n = row_group[r], row_weight[r], row_n[r]
        a, b = alpha[g], beta[g]
        if row_churned[r] > 0.0:
            x, y = a + 1.0, b + n - 1.0
        else:
            x, y = a, b + n
        dxy = digamma(x + y)
        total += w * lbeta(x, y)
        grad[0, g] += w * (digamma(x) - dxy)
        grad[1, g] += w * (digamma(y) - dxy)
    return total, grad


summed_loglik = summed_loglik_function(_summed_loglik_kernel, PARAMETERS, "shifted-BG")


def survival(t, alpha, beta, periods=0):
    """``P(T > periods + t | T > periods)``: still a customer ``t`` periods after ``periods`` (``S(t)`` at 0)."""
    t = whole_horizons(t)
    b = beta + whole_horizons(periods, "periods")
    return np.exp(special.betaln(alpha, b + t) - special.betaln(alpha, b))


def retention_rate(t, alpha, beta):
    """``r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``: share of period ``t - 1``'s customers renewing, ``t >= 1``."""
    t = whole_horizons(t)
    if np.any(t < 1):
        raise ValueError(f"retention_rate is defined for periods t >= 1, got {t!r}")
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def churn_probability(t, alpha, beta, periods=0):
    """``P(T = periods + t | T > periods)``: leaving in the ``t``-th period after ``periods``, ``t >= 1``."""
    t = whole_horizons(t)
    if np.any(t < 1):
        raise ValueError(f"churn_probability is defined for t >= 1 periods ahead, got {t!r}")
    b = beta + whole_horizons(periods, "periods")
    return np.exp(special.betaln(alpha + 1.0, b + t - 1.0) - special.betaln(alpha, b))


def expected_residual_lifetime(periods, alpha, beta):
    """``E[T - n | T > n]``: expected further periods of a customer who renewed ``n = periods`` times.

    The periods ``n + 1 .. T`` are counted: ``E[1/theta]`` for ``theta ~ Beta(alpha, beta + n)``,
    ``(alpha + beta + n - 1) / (alpha - 1)``, infinite for ``alpha <= 1``. At ``periods = 0``
    it is the expected lifetime ``E[T] = sum_{t>=0} S(t)`` of a new customer.
    """
    n = whole_horizons(periods, "periods")
    alpha_ = np.asarray(alpha, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(alpha_ > 1.0, (alpha_ + beta + n - 1.0) / (alpha_ - 1.0), np.inf)


def discounted_expected_lifetime(d, alpha, beta):
    """DEL: ``sum_{t>=0} S(t) / (1 + d)^t = 2F1(1, beta; alpha + beta; 1/(1+d))``, discount rate ``d > 0`` per period.

    The expected discounted number of payments of a new customer, one at
    acquisition (undiscounted) and one at each renewal (Fader & Hardie 2010,
    "Customer-base valuation in a contractual setting").
    """
    return discounted_survival(d, alpha, beta)


def discounted_expected_residual_lifetime(d, periods, alpha, beta):
    """DERL: expected discounted number of future renewals of a customer who has renewed ``n = periods`` times.

    ``sum_{t >= n+1} S(t | T > n) / (1 + d)^(t-n-1)``: the next renewal (at the end of
    period ``n + 1``) undiscounted, as in Fader & Hardie (2010, equation (6), with
    their ``n - 1`` renewals our ``periods``); equals
    ``(beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))``.
    """
    n = whole_horizons(periods, "periods")
    b = beta + n
    return (b / (alpha + b)) * discounted_survival(d, alpha, b + 1.0)


def simulate_population(periods, alpha, beta, rng=None):
    """Simulate customers observed for ``periods`` periods from acquisition.

    Returns
    -------
    dict of numpy.ndarray
        ``periods`` (observed: ``min(T, periods)``), ``churned`` (``T <= periods``),
        and the latent ``theta`` and ``lifetime`` ``T``.
    """
    rng = np.random.default_rng(rng)
    n = whole_horizons(periods, "periods")
    shape = np.broadcast_shapes(n.shape, np.shape(alpha), np.shape(beta))
    theta = rng.beta(alpha, beta, size=shape)
    lifetime = geometric_draws(theta, rng)
    churned = lifetime <= n
    return {"periods": np.where(churned, lifetime, np.broadcast_to(n, shape)), "churned": churned.astype(float),
            "theta": theta, "lifetime": lifetime}


def simulate_residual_lifetime(periods, alpha, beta, rng=None):
    """Draws of ``T - n`` for customers who renewed ``n = periods`` times: ``theta ~ Beta(alpha, beta + n)``, then geometric."""
    rng = np.random.default_rng(rng)
    n = whole_horizons(periods, "periods")
    shape = np.broadcast_shapes(n.shape, np.shape(alpha), np.shape(beta))
    theta = rng.beta(np.broadcast_to(alpha, shape), np.broadcast_to(beta + n, shape))
    return geometric_draws(theta, rng)
