"""MBG/NBD model (Batislam, Denizel & Filiztekin 2007; Hoppe & Wagner 2007).

The BG/NBD in which a customer can also drop out right after the first
purchase: an alive customer buys at Poisson rate ``lambda ~ Gamma(r, rate=alpha)``
and after every purchase, the first included, drops out with probability
``p ~ Beta(a, b)``. A history is ``(x, t_x, T)`` as for the BG/NBD.

The likelihood is

``L = Gamma(r+x) alpha^r / Gamma(r) [B(a, b+x+1)/B(a, b) (alpha+T)^-(r+x)
      + B(a+1, b+x)/B(a, b) (alpha+t_x)^-(r+x)]``

(with the second branch for every ``x``, also ``x = 0``: the customer may have
left at the first purchase), so ``P(alive at T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``.
Given alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x+1)``: the
customer's future is a BG/NBD customer's with ``b + 1`` for ``b``.

The MBG/NBD is the MBG/CNBD-k with ``k = 1``; its functions are those of
:mod:`bayesclv.formulas.cnbd` with ``k=1, modified=True`` (whose ``k = 1`` path
evaluates the BG/NBD closed forms of :mod:`bayesclv.formulas.bgnbd`).
"""

from __future__ import annotations

import numpy as np

from bayesclv.formulas import cnbd
from bayesclv.formulas._ops import PT

__all__ = [
    "PARAMETERS",
    "discounted_expected_purchases",
    "discounted_probability_alive",
    "expected_purchases",
    "expected_purchases_new_customer",
    "expected_residual_lifetime",
    "loglik",
    "loglik_tables",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
    "simulate_future_purchases",
    "simulate_population",
    "summed_loglik",
]

PARAMETERS = cnbd.PARAMETERS
_MBG = {"k": 1, "modified": True}


def loglik(frequency, recency, T, r, alpha, a, b, xp=PT):
    """Per-customer MBG/NBD log-likelihood (see the module docstring).

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T``.
    r, alpha, a, b : array_like or TensorVariable
        Population parameters (all positive).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(r, alpha, a, b | x, t_x, T)``.
    """
    return cnbd.loglik(0.0, frequency, recency, T, r, alpha, a, b, xp=xp, **_MBG)


def loglik_tables(frequency, recency, T, weight, group=None) -> tuple[np.ndarray, ...]:
    """Data tables of :func:`summed_loglik` (see :func:`bayesclv.formulas.cnbd.loglik_tables`)."""
    return cnbd.loglik_tables(0.0, frequency, recency, T, weight, group=group, **_MBG)


def summed_loglik(tables, r, alpha, a, b, xp=PT):
    """Total MBG/NBD log-likelihood of the rows of :func:`loglik_tables`, value and gradient in one pass."""
    return cnbd.summed_loglik(tables, r, alpha, a, b, xp=xp)


def probability_alive(frequency, recency, T, r, alpha, a, b):
    """P(customer is alive at T | history); below 1 also without repeat purchases."""
    return cnbd.probability_alive(frequency, recency, T, r, alpha, a, b, **_MBG)


def probability_alive_at(t, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """P(customer is still alive at ``T + t`` | history); ``given_alive``: conditional on alive at ``T``."""
    return cnbd.probability_alive_at(t, frequency, recency, T, r, alpha, a, b, given_alive=given_alive, **_MBG)


def expected_purchases(t, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """E[X(T, T+t] | history]; ``given_alive``: conditional on alive at ``T``."""
    return cnbd.expected_purchases(t, frequency, recency, T, r, alpha, a, b, given_alive=given_alive, **_MBG)


def discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """Present value ``sum_j factors[j] (E[X(T + ends[j])] - E[X(T + ends[j-1])])`` of the expected purchases."""
    return cnbd.discounted_expected_purchases(ends, factors, frequency, recency, T, r, alpha, a, b,
                                              given_alive=given_alive, **_MBG)


def discounted_probability_alive(times, factors, frequency, recency, T, r, alpha, a, b, given_alive=False):
    """``sum_j factors[j] P(alive at T + times[j] | history)``, in one pass over the horizons."""
    return cnbd.discounted_probability_alive(times, factors, frequency, recency, T, r, alpha, a, b,
                                             given_alive=given_alive, **_MBG)


def probability_of_purchases(n, t, frequency, recency, T, r, alpha, a, b):
    """P(X(T, T+t] = n | history) for integer ``n >= 0``."""
    return cnbd.probability_of_purchases(n, t, frequency, recency, T, r, alpha, a, b, **_MBG)


def expected_purchases_new_customer(t, r, alpha, a, b):
    """E[X(t)] for a customer observed since acquisition: ``b/(a+b)`` times a BG/NBD customer's with ``b + 1``."""
    return cnbd.expected_purchases_new_customer(t, r, alpha, a, b, **_MBG)


def expected_residual_lifetime(frequency, recency, T, r, alpha, a, b, given_alive=False):
    """E[remaining lifetime after ``T`` | history]: ``(a+b+x)/(a-1) (alpha+T)/(r+x-1)`` given alive (infinite for ``a <= 1`` or ``r+x <= 1``)."""
    return cnbd.expected_residual_lifetime(frequency, recency, T, r, alpha, a, b, given_alive=given_alive, **_MBG)


def simulate_population(T, r, alpha, a, b, rng=None):
    """Simulate MBG/NBD calibration histories.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``p``, ``alive``.
    """
    out = cnbd.simulate_population(T, r, alpha, a, b, rng=rng, **_MBG)
    del out["litt"]  # not a statistic of the MBG/NBD
    return out


def simulate_future_purchases(t, frequency, recency, T, r, alpha, a, b, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]``."""
    return cnbd.simulate_future_purchases(t, frequency, recency, T, r, alpha, a, b, rng=rng, **_MBG)
