"""Pareto/NBD given a customer's own rates (Abe 2009): the individual-level likelihood.

An alive customer buys as a Poisson process with rate ``lam`` and stays alive
for an exponential lifetime with rate ``mu``. With the lifetime ``tau``
integrated out analytically, the likelihood of a history ``(x, t_x, T)``
(frequency, recency, T) is::

    L(lam, mu | x, t_x, T) = lam^x / (lam + mu)
                             * [mu exp(-(lam+mu) t_x) + lam exp(-(lam+mu) T)]

(the terms mix the alive and the died-in-``(t_x, T]`` cases; see
:func:`probability_alive`). All
quantities are evaluated in log space with ``softplus`` of the log ratio of
the two terms, so they stay finite for large ``x``, ``T`` and extreme rates.

The functions share the signatures of :mod:`bayesclv.formulas.paretonbd` with
the population parameters replaced by the individual rates ``lam, mu``, so
the models' prediction interface calls either module the same way. The
simulators are those of the hierarchical Pareto/NBD (Abe 2009): its population
draws each customer's ``(log lam, log mu)`` from a bivariate normal.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesclv.formulas._ops import PT, discounted_increments
from bayesclv.formulas._simulate import last_event_time, latent_rates

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


def _log_ratio_of_terms(recency, T, lam, mu, xp):
    """``log[lam exp(-(lam+mu) T)] - log[mu exp(-(lam+mu) t_x)]``: the two terms of the likelihood."""
    return xp.log(lam) - xp.log(mu) - (lam + mu) * (T - recency)


def loglik(frequency, recency, T, lam, mu, xp=PT):
    """Log-likelihood of each history given its purchase and dropout rates.

    Parameters
    ----------
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last one ``t_x``, age ``T``.
    lam, mu : array_like or TensorVariable
        Purchase and dropout rates (per time unit of ``recency``/``T``), positive.
    xp : namespace, default PT
        ``PT`` returns a PyTensor expression, ``NP`` a NumPy array.

    Returns
    -------
    TensorVariable or numpy.ndarray
        ``log L(lam, mu | x, t_x, T)``, the density of the purchase times
        (the same convention as :func:`bayesclv.formulas.paretonbd.loglik`,
        which is its expectation over ``lam ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``).
    """
    x, t_x, T = (xp.asarray(v) for v in (frequency, recency, T))
    d = _log_ratio_of_terms(t_x, T, lam, mu, xp)
    return x * xp.log(lam) - xp.log(lam + mu) + xp.log(mu) - (lam + mu) * t_x + xp.softplus(d)


def probability_alive(frequency, recency, T, lam, mu):
    """P(alive at ``T`` | history, ``lam``, ``mu``) (Abe 2009, equation 6).

    The alive part of the likelihood is ``lam^x exp(-(lam+mu) T)``, the part in
    which the customer died in ``(t_x, T]`` is
    ``lam^x mu/(lam+mu) [exp(-(lam+mu) t_x) - exp(-(lam+mu) T)]``, so
    ``P = 1 / (1 + mu/(lam+mu) (exp((lam+mu)(T - t_x)) - 1))``, evaluated with
    the log of the second term (``log expm1`` switches to ``y + log1p(-e^-y)``
    for large ``y``).
    """
    y = (lam + mu) * (T - np.asarray(recency, dtype=float))
    with np.errstate(divide="ignore", over="ignore"):
        log_expm1 = np.where(y > 30.0, y + np.log1p(-np.exp(-y)), np.log(np.expm1(np.minimum(y, 30.0))))
        log_dead_over_alive = np.log(mu) - np.log(lam + mu) + log_expm1
    return special.expit(-log_dead_over_alive)


def probability_alive_at(t, frequency, recency, T, lam, mu, given_alive=False):
    """P(alive at ``T + t`` | history): ``exp(-mu t)`` given alive at ``T``, times P(alive) otherwise."""
    survive = np.exp(-mu * np.asarray(t, dtype=float))
    return survive if given_alive else survive * probability_alive(frequency, recency, T, lam, mu)


def expected_purchases(t, frequency, recency, T, lam, mu, given_alive=False):
    """E[purchases in ``(T, T+t]`` | history]: ``lam/mu (1 - exp(-mu t))`` for an alive customer.

    With ``given_alive=False`` multiplied by :func:`probability_alive`.
    """
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_alive = np.where(mu * t > 0, lam * -np.expm1(-mu * t) / mu, lam * t)
    return per_alive if given_alive else per_alive * probability_alive(frequency, recency, T, lam, mu)


def discounted_expected_purchases(ends, factors, frequency, recency, T, lam, mu, given_alive=False):
    """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(T + ends[k-1], T + ends[k]]``.

    See :func:`bayesclv.formulas._ops.discounted_increments`; ``given_alive`` as in
    :func:`expected_purchases`.
    """
    return discounted_increments(
        lambda t: expected_purchases(t, frequency, recency, T, lam, mu, given_alive=given_alive), ends, factors)


def probability_of_purchases(n, t, frequency, recency, T, lam, mu):
    """P(exactly ``n`` purchases in ``(T, T+t]`` | history, ``lam``, ``mu``).

    An alive customer either survives the whole window (``exp(-mu t)``, then
    ``Poisson(lam t)`` purchases) or dies at ``s < t`` after ``Poisson(lam s)``
    purchases; the second part integrates to
    ``mu lam^n / (lam+mu)^(n+1) P(n+1, (lam+mu) t)`` (``P`` the regularised
    lower incomplete gamma function). A customer dead at ``T`` makes none.
    """
    n = float(n)
    t = float(t)
    with np.errstate(divide="ignore"):
        log_survived = -mu * t + special.xlogy(n, lam * t) - lam * t - special.gammaln(n + 1.0)
        log_died = (np.log(mu) + n * np.log(lam) - (n + 1.0) * np.log(lam + mu)
                    + np.log(special.gammainc(n + 1.0, (lam + mu) * t)))
    given_alive = np.exp(np.logaddexp(log_survived, log_died))
    p_alive = probability_alive(frequency, recency, T, lam, mu)
    return p_alive * given_alive + (1.0 - p_alive) * float(n == 0)


# --------------------------------------------------------------------------- simulation
def simulate_histories(T, lam, mu, rng=None):
    """Calibration histories of customers with known purchase rates ``lam`` and dropout rates ``mu``.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``mu``, ``alive`` (alive at ``T``).
    """
    rng = np.random.default_rng(rng)
    lifetime = rng.exponential(1.0 / mu)
    window = np.minimum(lifetime, T)
    x = rng.poisson(lam * window)
    return {"frequency": x.astype(float), "recency": last_event_time(rng, x, window),
            "T": np.broadcast_to(T, lam.shape).astype(float), "lambda": lam, "mu": mu,
            "alive": lifetime > T}


def simulate_population(T, coefficients, cov, covariates=None, rng=None):
    """Simulate histories under the hierarchical Pareto/NBD (Abe 2009).

    ``(log lam_i, log mu_i) ~ MvNormal(X_i B, Sigma)``; given the rates the
    customer lives an ``Exp(mu_i)`` lifetime and buys at rate ``lam_i``.

    Parameters
    ----------
    T : array_like
        Observation length of each customer (1-d).
    coefficients : array_like
        ``B``, shape ``(n_covariates, 2)``: columns (purchase, dropout); the
        first covariate is usually the intercept (a column of ones in ``X``).
    cov : array_like
        ``Sigma``, 2x2 covariance of ``(log lam, log mu)``.
    covariates : array_like, optional
        ``X``, shape ``(n_customers, n_covariates)``; default a column of ones.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T``, latent ``lambda``, ``mu``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    theta = latent_rates(rng, covariates, coefficients, cov, T.shape[0])
    return simulate_histories(T, np.exp(theta[:, 0]), np.exp(theta[:, 1]), rng)


def simulate_future_purchases(t, frequency, recency, T, lam, mu, rng=None):
    """Purchase counts in ``(T, T+t]`` given each customer's rates ``lam, mu`` and history.

    Alive at ``T`` with the probability given the history and rates; an alive
    customer lives a further ``Exp(mu)`` (memoryless) and buys at rate ``lam``.
    """
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (frequency, recency, T, lam, mu)))
    p_alive = np.broadcast_to(probability_alive(frequency, recency, T, lam, mu), shape)
    alive = rng.random(shape) < p_alive
    window = np.minimum(rng.exponential(1.0 / np.broadcast_to(mu, shape)), t)
    return np.where(alive, rng.poisson(np.broadcast_to(lam, shape) * window), 0)
