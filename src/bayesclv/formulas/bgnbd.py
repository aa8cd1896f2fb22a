"""BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Purchases of an alive customer follow a Poisson process with rate
``lambda ~ Gamma(r, rate=alpha)``; after each purchase the customer drops out
with probability ``p ~ Beta(a, b)``. A customer's history is
``(x, t_x, T)`` = (frequency, recency, T): ``x`` repeat purchases, the last at
``t_x``, observed for ``T`` time units since the first purchase.

The log-likelihood is written once against the ``xp`` namespace (PyTensor by
default, NumPy with ``xp=NP``); predictive quantities are NumPy functions that
broadcast over posterior draws and customers.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesclv.formulas._ops import NP, PT

__all__ = [
    "expected_purchases",
    "expected_purchases_new_customer",
    "loglik",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
]


def _log_dropout_ratio(frequency, recency, T, r, alpha, a, b, xp):
    """log of [P(dropped after the last purchase) / P(alive at T)] terms.

    Returns ``d = A4 - A3`` where ``A3 = -(r+x) log(alpha+T)`` is the alive
    branch and ``A4 = log a - log(b+x-1) - (r+x) log(alpha+t_x)`` the branch in
    which the customer dropped out right after the last purchase (only for
    ``x > 0``; callers mask ``x == 0``).
    """
    x_safe = xp.maximum(frequency, 1.0)
    return (
        xp.log(a)
        - xp.log(b + x_safe - 1.0)
        + (r + frequency) * xp.log1p((T - recency) / (alpha + recency))
    )


def loglik(frequency, recency, T, r, alpha, a, b, xp=PT):
    """Per-customer BG/NBD log-likelihood.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T``
        (same time unit as ``alpha``).
    r, alpha, a, b : array_like or TensorVariable
        Population parameters (all positive).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, a, b | x, t_x, T)`` broadcast over the inputs.

    Notes
    -----
    Equation (6) of Fader, Hardie & Lee (2005), evaluated as
    ``A1 + A2 + A3 + softplus(A4 - A3)`` so that neither branch under- or
    overflows for large ``x`` or ``T``.
    """
    x, t_x, T = (xp.asarray(v) for v in (frequency, recency, T))
    a1 = xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha)
    a2 = xp.gammaln(a + b) + xp.gammaln(b + x) - xp.gammaln(b) - xp.gammaln(a + b + x)
    a3 = -(r + x) * xp.log(alpha + T)
    d = _log_dropout_ratio(x, t_x, T, r, alpha, a, b, xp)
    return a1 + a2 + a3 + xp.where(x > 0, xp.softplus(d), 0.0)


def probability_alive(frequency, recency, T, r, alpha, a, b):
    """P(customer is alive at T | history); equation (A10) of FHL (2005).

    Returns 1 for customers without repeat purchases (in the BG/NBD dropout can
    only happen right after a purchase).
    """
    x = np.asarray(frequency, dtype=float)
    d = _log_dropout_ratio(x, recency, T, r, alpha, a, b, NP)
    return np.where(x > 0, special.expit(-d), 1.0)


def _hyp2f1_series_term(r, alpha, a, b, x, T, t, c_shift):
    """``((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x+c_shift; t/(alpha+T+t))``.

    This is ``E[(1 + p t/(alpha+T))^-(r+x)]`` for ``p ~ Beta(a + c_shift, b+x)``
    (Euler's integral after a Pfaff transformation), i.e. the chance that a
    customer with dropout probability ``p`` survives every purchase in ``t``.
    """
    z = t / (alpha + T + t)
    lead = (r + x) * np.log1p(-z)
    return np.exp(lead) * special.hyp2f1(r + x, b + x, a + b + x + c_shift, z)


def expected_purchases(t, frequency, recency, T, r, alpha, a, b):
    """E[X(T, T+t] | history]: expected purchases in the next ``t`` time units.

    Equation (10) of FHL (2005). Requires ``a != 1`` (the expectation of ``1/p``
    appears); at ``a == 1`` the limit is taken by a tiny symmetric offset.
    """
    x = np.asarray(frequency, dtype=float)
    a = np.where(np.abs(np.asarray(a) - 1.0) < 1e-7, 1.0 + 1e-7, a)
    survive = _hyp2f1_series_term(r, alpha, a, b, x, T, t, -1.0)
    per_alive = (a + b + x - 1.0) / (a - 1.0) * (1.0 - survive)
    return per_alive * probability_alive(x, recency, T, r, alpha, a, b)


def expected_purchases_new_customer(t, r, alpha, a, b):
    """E[X(t)] for a customer observed since acquisition for ``t`` time units.

    Equation (9) of FHL (2005).
    """
    a = np.where(np.abs(np.asarray(a) - 1.0) < 1e-7, 1.0 + 1e-7, a)
    survive = _hyp2f1_series_term(r, alpha, a, b, 0.0, 0.0, t, -1.0)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - survive)


def probability_alive_at(t, frequency, recency, T, r, alpha, a, b):
    """P(customer is still alive at ``T + t`` | history).

    A customer alive at ``T`` survives ``t`` more time units when none of the
    purchases in between is followed by dropout:
    ``E[exp(-lambda p t)]`` over the posterior of ``lambda`` and ``p``.
    """
    x = np.asarray(frequency, dtype=float)
    survive = _hyp2f1_series_term(r, alpha, a, b, x, T, t, 0.0)
    return probability_alive(x, recency, T, r, alpha, a, b) * survive


def _log_nbd_pmf(n, shape, log_q, log1m_q):
    """log NBD pmf: ``Gamma(shape+n)/(Gamma(shape) n!) q^shape (1-q)^n``."""
    return (
        special.gammaln(shape + n) - special.gammaln(shape) - special.gammaln(n + 1.0)
        + shape * log_q + n * log1m_q
    )


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, a, b):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``.

    Derivation: given alive at ``T`` the rate ``lambda ~ Gamma(r+x, alpha+T)``
    and ``p ~ Beta(a, b+x)`` are independent. With ``M`` Poisson purchases in
    ``t`` and dropout after purchase ``G ~ Geometric(p)``, ``X = min(M, G)``,
    so ``P(X=n) = P(M=n) E(1-p)^n + P(M>=n) E p(1-p)^(n-1)`` for ``n >= 1``,
    and ``P(X=0) = P(M=0)``. A customer already dead contributes to ``n = 0``.
    """
    n = np.asarray(n, dtype=float)
    x = np.asarray(frequency, dtype=float)
    shape = r + x
    log_q = np.log(alpha + T) - np.log(alpha + T + t)  # NBD success prob. of "no purchase"
    log1m_q = np.log(t) - np.log(alpha + T + t)
    pmf_m = np.exp(_log_nbd_pmf(n, shape, log_q, log1m_q))
    # P(M >= n) = 1 - P(M <= n-1) = I_{1-q}(n, shape): regularised incomplete beta
    tail_m = np.where(n > 0, special.betainc(np.maximum(n, 1.0), shape, np.exp(log1m_q)), 1.0)
    log_beta0 = special.betaln(a, b + x)
    keep = np.exp(special.betaln(a, b + x + n) - log_beta0)
    drop_at_n = np.exp(special.betaln(a + 1.0, b + x + np.maximum(n, 1.0) - 1.0) - log_beta0)
    given_alive = np.where(n > 0, pmf_m * keep + tail_m * drop_at_n, pmf_m)
    p_alive = probability_alive(x, recency, T, r, alpha, a, b)
    return p_alive * given_alive + (1.0 - p_alive) * (n == 0)
