"""BG/NBD given a customer's own rates: the individual-level likelihood.

An alive customer buys as a Poisson process with rate ``lam``; right after
each repeat purchase they drop out with probability ``p``. The likelihood of a
history ``(x, t_x, T)`` (frequency, recency, T) is (Fader, Hardie & Lee 2005,
equation 3)::

    L(lam, p | x, t_x, T) = (1-p)^x lam^x exp(-lam T)
                            + [x > 0] p (1-p)^(x-1) lam^x exp(-lam t_x)

(the first term: alive at ``T``; the second: dropped out after the last
purchase). Evaluated in log space with ``softplus`` of the log ratio of the
two terms, so it stays finite for large ``x`` and ``T`` and ``p`` near 0 or 1.

The functions share the signatures of :mod:`bayesclv.formulas.bgnbd` with the
population parameters replaced by the individual ``lam, p``. The simulators are
those of the hierarchical BG/NBD: its population draws each customer's
``(log lam, logit p)`` from a bivariate normal.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesclv.formulas._ops import NP, PT, discounted_increments
from bayesclv.formulas._simulate import latent_rates

__all__ = [
    "discounted_expected_purchases",
    "expected_purchases",
    "loglik",
    "probability_alive",
    "probability_alive_at",
    "probability_of_purchases",
    "simulate_future_purchases",
    "simulate_histories",
    "simulate_population",
]


_P_MAX = 1.0 - 2.0**-53  # largest double below 1: keeps log(1 - p) finite when p rounds to 1


def _log_dropout_ratio(recency, T, lam, p, xp):
    """``log[p/(1-p) exp(lam (T - t_x))]``: dropped after the last purchase vs alive."""
    return xp.log(p) - xp.log1p(-p) + lam * (T - recency)


def _clip(p, xp):
    """``p`` with values that round to 1 (e.g. ``expit`` of a logit above 37) moved just below it."""
    return xp.minimum(p, _P_MAX)


def loglik(frequency, recency, T, lam, p, xp=PT):
    """Log-likelihood of each history given its purchase rate and dropout probability.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last one ``t_x``, age ``T``.
    lam : array_like or TensorVariable
        Purchase rate per time unit, positive.
    p : array_like or TensorVariable
        Dropout probability after each repeat purchase, in (0, 1).
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(lam, p | x, t_x, T)``; its expectation over ``lam ~ Gamma(r, alpha)``
        and ``p ~ Beta(a, b)`` is :func:`bayesclv.formulas.bgnbd.loglik`.
    """
    x, t_x, T = (xp.asarray(v) for v in (frequency, recency, T))
    p = _clip(p, xp)
    d = _log_dropout_ratio(t_x, T, lam, p, xp)
    return x * (xp.log1p(-p) + xp.log(lam)) - lam * T + xp.where(x > 0, xp.softplus(d), 0.0)


def probability_alive(frequency, recency, T, lam, p):
    """P(alive at ``T`` | history, ``lam``, ``p``); 1 without repeat purchases."""
    x = np.asarray(frequency, dtype=float)
    with np.errstate(divide="ignore"):
        d = _log_dropout_ratio(np.asarray(recency, dtype=float), T, lam, _clip(p, NP), NP)
    return np.where(x > 0, special.expit(-d), 1.0)


def probability_alive_at(t, frequency, recency, T, lam, p, given_alive=False):
    """P(alive at ``T + t`` | history): ``exp(-lam p t)`` given alive at ``T``.

    Dropout happens at the purchases that are followed by dropout, a thinned
    Poisson process with rate ``lam p``.
    """
    survive = np.exp(-lam * p * np.asarray(t, dtype=float))
    return survive if given_alive else survive * probability_alive(frequency, recency, T, lam, p)


def expected_purchases(t, frequency, recency, T, lam, p, given_alive=False):
    """E[purchases in ``(T, T+t]`` | history]: ``(1 - exp(-lam p t)) / p`` for an alive customer."""
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_alive = np.where(p * t > 0, -np.expm1(-lam * p * t) / p, lam * t)
    return per_alive if given_alive else per_alive * probability_alive(frequency, recency, T, lam, p)


def discounted_expected_purchases(ends, factors, frequency, recency, T, lam, p, given_alive=False):
    """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(T + ends[k-1], T + ends[k]]``.

    See :func:`bayesclv.formulas._ops.discounted_increments`; ``given_alive`` as in
    :func:`expected_purchases`.
    """
    return discounted_increments(
        lambda t: expected_purchases(t, frequency, recency, T, lam, p, given_alive=given_alive), ends, factors)


def probability_of_purchases(n, t, frequency, recency, T, lam, p):
    """P(exactly ``n`` purchases in ``(T, T+t]`` | history, ``lam``, ``p``).

    An alive customer makes ``n`` purchases when either exactly ``n`` Poisson
    events fall in the window and none is followed by dropout,
    ``(1-p)^n Poisson(n; lam t)``, or at least ``n`` fall in it and the ``n``-th
    is the first followed by dropout, ``p (1-p)^(n-1) P(n, lam t)`` (``P`` the
    regularised lower incomplete gamma function, ``n >= 1``). A customer who
    dropped out before ``T`` makes none.
    """
    n = float(n)
    t = float(t)
    p = _clip(p, NP)
    with np.errstate(divide="ignore"):
        log_kept = n * np.log1p(-p) + special.xlogy(n, lam * t) - lam * t - special.gammaln(n + 1.0)
        if n >= 1:
            log_stopped = np.log(p) + (n - 1.0) * np.log1p(-p) + np.log(special.gammainc(n, lam * t))
            given_alive = np.exp(np.logaddexp(log_kept, log_stopped))
        else:
            given_alive = np.exp(log_kept)
    p_alive = probability_alive(frequency, recency, T, lam, p)
    return p_alive * given_alive + (1.0 - p_alive) * float(n == 0)


# --------------------------------------------------------------------------- simulation
def simulate_histories(T, lam, p, rng=None):
    """Calibration histories of customers with known purchase rates ``lam`` and dropout probabilities ``p``.

    The number of repeat purchases is ``min(M, G)`` with ``M ~ Poisson(lam T)``
    and ``G ~ Geometric(p)``; the ``k``-th of ``M`` uniform events in ``[0, T]``
    is ``T Beta(k, M - k + 1)``.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``p``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T_full = np.broadcast_to(T, lam.shape)
    m = rng.poisson(lam * T_full)
    g = rng.geometric(np.clip(p, 1e-300, 1.0))
    x = np.minimum(m, g)
    k = np.maximum(x, 1)
    recency = np.where(x > 0, T_full * rng.beta(k, np.maximum(m - k + 1, 1)), 0.0)
    return {"frequency": x.astype(float), "recency": recency, "T": T_full.astype(float),
            "lambda": lam, "p": p, "alive": g > m}


def simulate_population(T, coefficients, cov, covariates=None, rng=None):
    """Simulate histories under the hierarchical BG/NBD.

    ``(log lam_i, logit p_i) ~ MvNormal(X_i B, Sigma)``; the arguments are as in
    :func:`bayesclv.formulas.individual_paretonbd.simulate_population`.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T``, latent ``lambda``, ``p``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    theta = latent_rates(rng, covariates, coefficients, cov, T.shape[0])
    return simulate_histories(T, np.exp(theta[:, 0]), 1.0 / (1.0 + np.exp(-theta[:, 1])), rng)


def simulate_future_purchases(t, frequency, recency, T, lam, p, rng=None):
    """Purchase counts in ``(T, T+t]`` given each customer's ``lam, p`` and history.

    Alive at ``T`` with the probability given the history and rates; an alive
    customer's count is ``min(Poisson(lam t), Geometric(p))``.
    """
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (frequency, recency, T, lam, p)))
    p_alive = np.broadcast_to(probability_alive(frequency, recency, T, lam, p), shape)
    alive = rng.random(shape) < p_alive
    count = np.minimum(rng.poisson(np.broadcast_to(lam, shape) * t),
                       rng.geometric(np.clip(np.broadcast_to(p, shape), 1e-300, 1.0)))
    return np.where(alive, count, 0)
