"""Gamma-Gamma spend model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV").

Each transaction value of a customer is ``Gamma(p, rate=nu)`` and the
customer's ``nu ~ Gamma(q, rate=gamma)``. The mean ``mbar`` of a customer's
``x`` repeat-transaction values is then ``Gamma(p x, rate=nu x)`` given ``nu``.
"""

from __future__ import annotations

import numpy as np

from bayesclv.formulas._ops import PT

__all__ = ["expected_spend", "loglik", "population_mean_spend"]


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
