"""Pieces shared by the families' simulators (NumPy, vectorised; every draw from the generator passed in)."""

from __future__ import annotations

import numpy as np

__all__ = ["alive_and_purchase_rate", "last_event_time", "latent_rates"]


def last_event_time(rng, count, window):
    """Time of the last of ``count`` uniform events in ``[0, window]`` (0 if none).

    The maximum of ``k`` uniforms on ``[0, w]`` is ``w U^(1/k)``.
    """
    u = rng.random(np.shape(count))
    with np.errstate(divide="ignore"):
        return np.where(count > 0, window * u ** (1.0 / np.maximum(count, 1)), 0.0)


def alive_and_purchase_rate(rng, p_alive, frequency, T, r, alpha):
    """Draw alive-at-``T`` flags and posterior purchase rates ``Gamma(r+x, alpha+T)``."""
    alive = rng.random(p_alive.shape) < p_alive
    lam = rng.gamma(r + frequency, 1.0 / (alpha + np.asarray(T)), size=p_alive.shape)
    return alive, lam


def latent_rates(rng, covariates, coefficients, cov, n_customers):
    """Rows of ``MvNormal(X B, Sigma)``: each customer's two latent log/logit rates."""
    X = np.ones((n_customers, 1)) if covariates is None else np.asarray(covariates, dtype=float)
    if X.ndim != 2 or X.shape[0] != n_customers:
        raise ValueError(f"covariates must have shape (n_customers, n_covariates) = ({n_customers}, k); "
                         f"got {X.shape}")
    B = np.asarray(coefficients, dtype=float)
    if B.shape != (X.shape[1], 2):
        raise ValueError(f"coefficients must have shape (n_covariates, 2) = ({X.shape[1]}, 2); got {B.shape}")
    return X @ B + rng.multivariate_normal(np.zeros(2), np.asarray(cov, dtype=float), size=n_customers)
