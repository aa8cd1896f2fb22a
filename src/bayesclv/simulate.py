"""Simulators of the models' generative processes (NumPy, vectorised).

Two kinds of simulation:

* ``simulate_*``: calibration-period histories ``(frequency, recency)`` of new
  customers observed for ``T`` time units, drawing each customer's latent
  rates from the population distribution. Used for synthetic data, parameter
  recovery and simulation-based calibration.
* ``future_purchases_*``: purchase counts in ``(T, T+t]`` for customers with a
  known history, drawing the latent state from its posterior given the
  history and the population parameters (posterior predictive simulation).
"""

from __future__ import annotations

import numpy as np

from bayesclv.formulas import bgnbd, individual_bgnbd, individual_paretonbd, paretonbd

__all__ = [
    "future_purchases_bgnbd",
    "future_purchases_individual_bgnbd",
    "future_purchases_individual_paretonbd",
    "future_purchases_paretonbd",
    "simulate_hierarchical_bgnbd",
    "simulate_hierarchical_paretonbd",
    "simulate_bgnbd",
    "simulate_gammagamma",
    "simulate_paretonbd",
]


def _last_event_time(rng, count, window):
    """Time of the last of ``count`` uniform events in ``[0, window]`` (0 if none).

    The maximum of ``k`` uniforms on ``[0, w]`` is ``w U^(1/k)``.
    """
    u = rng.random(np.shape(count))
    with np.errstate(divide="ignore"):
        return np.where(count > 0, window * u ** (1.0 / np.maximum(count, 1)), 0.0)


def simulate_paretonbd(T, r, alpha, s, beta, rng=None):
    """Simulate Pareto/NBD calibration histories.

    Parameters
    ----------
    T : array_like
        Observation length of each customer since the first purchase.
    r, alpha, s, beta : float or array_like
        Population parameters (broadcast against ``T``).
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``mu``,
        ``alive`` (alive at ``T``).
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (r, alpha, s, beta)))
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    mu = rng.gamma(s, 1.0 / np.asarray(beta), size=shape)
    return _paretonbd_given_rates(rng, T, lam, mu)


def _paretonbd_given_rates(rng, T, lam, mu):
    """Histories of customers with known purchase rates ``lam`` and dropout rates ``mu``."""
    lifetime = rng.exponential(1.0 / mu)
    window = np.minimum(lifetime, T)
    x = rng.poisson(lam * window)
    return {"frequency": x.astype(float), "recency": _last_event_time(rng, x, window),
            "T": np.broadcast_to(T, lam.shape).astype(float), "lambda": lam, "mu": mu,
            "alive": lifetime > T}


def simulate_bgnbd(T, r, alpha, a, b, rng=None):
    """Simulate BG/NBD calibration histories.

    Repeat purchases arrive as a Poisson process with rate ``lambda``; after
    each one the customer drops out with probability ``p``, so the number of
    repeat purchases is ``min(M, G)`` with ``M ~ Poisson(lambda T)`` and
    ``G ~ Geometric(p)``; the ``k``-th of ``M`` uniform events in ``[0, T]`` is
    ``T Beta(k, M - k + 1)``.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``p``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    shape = np.broadcast_shapes(T.shape, *(np.shape(v) for v in (r, alpha, a, b)))
    lam = rng.gamma(r, 1.0 / np.asarray(alpha), size=shape)
    p = rng.beta(a, b, size=shape)
    return _bgnbd_given_rates(rng, T, lam, p)


def _bgnbd_given_rates(rng, T, lam, p):
    """Histories of customers with known purchase rates ``lam`` and dropout probabilities ``p``."""
    T_full = np.broadcast_to(T, lam.shape)
    m = rng.poisson(lam * T_full)
    g = rng.geometric(np.clip(p, 1e-300, 1.0))
    x = np.minimum(m, g)
    k = np.maximum(x, 1)
    recency = np.where(x > 0, T_full * rng.beta(k, np.maximum(m - k + 1, 1)), 0.0)
    return {"frequency": x.astype(float), "recency": recency, "T": T_full.astype(float),
            "lambda": lam, "p": p, "alive": g > m}


def simulate_gammagamma(frequency, p, q, gamma, rng=None):
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


def _alive_and_purchase_rate(rng, p_alive, frequency, T, r, alpha):
    """Draw alive-at-``T`` flags and posterior purchase rates ``Gamma(r+x, alpha+T)``."""
    alive = rng.random(p_alive.shape) < p_alive
    lam = rng.gamma(r + frequency, 1.0 / (alpha + np.asarray(T)), size=p_alive.shape)
    return alive, lam


def future_purchases_paretonbd(t, frequency, recency, T, r, alpha, s, beta, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]`` under the Pareto/NBD.

    Alive at ``T`` with probability P(alive | history); if alive,
    ``lambda ~ Gamma(r+x, alpha+T)``, ``mu ~ Gamma(s, beta+T)`` and the
    remaining lifetime is ``Exp(mu)``; purchases are Poisson in the part of
    ``(T, T+t]`` that the customer is alive for.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    p_alive = paretonbd.probability_alive(x, recency, T, r, alpha, s, beta)
    alive, lam = _alive_and_purchase_rate(rng, p_alive, x, T, r, alpha)
    mu = rng.gamma(s, 1.0 / (beta + np.asarray(T)), size=p_alive.shape)
    window = np.minimum(rng.exponential(1.0 / mu), t)
    return np.where(alive, rng.poisson(lam * window), 0)


def future_purchases_bgnbd(t, frequency, recency, T, r, alpha, a, b, rng=None):
    """Posterior predictive purchase counts in ``(T, T+t]`` under the BG/NBD.

    Alive at ``T`` with probability P(alive | history); if alive,
    ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``; the count is
    ``min(Poisson(lambda t), Geometric(p))``.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(frequency, dtype=float)
    p_alive = bgnbd.probability_alive(x, recency, T, r, alpha, a, b)
    alive, lam = _alive_and_purchase_rate(rng, p_alive, x, T, r, alpha)
    p = rng.beta(a, b + x, size=p_alive.shape)
    count = np.minimum(rng.poisson(lam * t), rng.geometric(np.clip(p, 1e-300, 1.0)))
    return np.where(alive, count, 0)


def _latent_rates(rng, covariates, coefficients, cov, n_customers):
    """Rows of ``MvNormal(X B, Sigma)``: each customer's two latent log/logit rates."""
    X = np.ones((n_customers, 1)) if covariates is None else np.asarray(covariates, dtype=float)
    if X.ndim != 2 or X.shape[0] != n_customers:
        raise ValueError(f"covariates must have shape (n_customers, n_covariates) = ({n_customers}, k); "
                         f"got {X.shape}")
    B = np.asarray(coefficients, dtype=float)
    if B.shape != (X.shape[1], 2):
        raise ValueError(f"coefficients must have shape (n_covariates, 2) = ({X.shape[1]}, 2); got {B.shape}")
    return X @ B + rng.multivariate_normal(np.zeros(2), np.asarray(cov, dtype=float), size=n_customers)


def simulate_hierarchical_paretonbd(T, coefficients, cov, covariates=None, rng=None):
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
    theta = _latent_rates(rng, covariates, coefficients, cov, T.shape[0])
    return _paretonbd_given_rates(rng, T, np.exp(theta[:, 0]), np.exp(theta[:, 1]))


def simulate_hierarchical_bgnbd(T, coefficients, cov, covariates=None, rng=None):
    """Simulate histories under the hierarchical BG/NBD.

    ``(log lam_i, logit p_i) ~ MvNormal(X_i B, Sigma)``; the arguments are as in
    :func:`simulate_hierarchical_paretonbd`.

    Returns
    -------
    dict of numpy.ndarray
        ``frequency``, ``recency``, ``T``, latent ``lambda``, ``p``, ``alive``.
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=float)
    theta = _latent_rates(rng, covariates, coefficients, cov, T.shape[0])
    return _bgnbd_given_rates(rng, T, np.exp(theta[:, 0]), 1.0 / (1.0 + np.exp(-theta[:, 1])))


def future_purchases_individual_paretonbd(t, frequency, recency, T, lam, mu, rng=None):
    """Purchase counts in ``(T, T+t]`` given each customer's rates ``lam, mu`` and history.

    Alive at ``T`` with the probability given the history and rates; an alive
    customer lives a further ``Exp(mu)`` (memoryless) and buys at rate ``lam``.
    """
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (frequency, recency, T, lam, mu)))
    p_alive = np.broadcast_to(individual_paretonbd.probability_alive(frequency, recency, T, lam, mu), shape)
    alive = rng.random(shape) < p_alive
    window = np.minimum(rng.exponential(1.0 / np.broadcast_to(mu, shape)), t)
    return np.where(alive, rng.poisson(np.broadcast_to(lam, shape) * window), 0)


def future_purchases_individual_bgnbd(t, frequency, recency, T, lam, p, rng=None):
    """Purchase counts in ``(T, T+t]`` given each customer's ``lam, p`` and history.

    Alive at ``T`` with the probability given the history and rates; an alive
    customer's count is ``min(Poisson(lam t), Geometric(p))``.
    """
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (frequency, recency, T, lam, p)))
    p_alive = np.broadcast_to(individual_bgnbd.probability_alive(frequency, recency, T, lam, p), shape)
    alive = rng.random(shape) < p_alive
    count = np.minimum(rng.poisson(np.broadcast_to(lam, shape) * t),
                       rng.geometric(np.clip(np.broadcast_to(p, shape), 1e-300, 1.0)))
    return np.where(alive, count, 0)
