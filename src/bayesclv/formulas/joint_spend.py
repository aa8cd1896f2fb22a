"""The joint spend models' algebra: a customer's log mean spend joins the two latent rates.

Customer ``i`` has ``(theta_i, m_i) ~ N(X_i B, Sigma)`` with ``theta_i`` the two
latent rates of the hierarchical Pareto/NBD or BG/NBD and ``m_i`` the mean of
the log value of their purchase days; the ``n_i`` (= ``frequency``) repeat
purchase days have ``log z_ij ~ N(m_i, sigma_w^2)``. Their sufficient
statistics are ``ybar_i`` (``log_spend_mean``) and the within sum of squares
``S_i`` (``log_spend_ss``). ``m_i`` enters only through a normal in ``m_i``, so::

    p(y_i, z_i) = N(ybar_i; mu_m, Sigma_mm + sigma_w^2 / n_i) W_i
                  * int L_i(theta) N(theta; mu_theta + k_n (ybar_i - mu_m), Sigma_n) dtheta,
    k_n = n Sigma_theta,m / (n Sigma_mm + sigma_w^2),   Sigma_n = Sigma_theta,theta - k_n Sigma_m,theta,
    log W_i = -(n_i - 1)/2 log(2 pi sigma_w^2) - log(n_i)/2 - S_i / (2 sigma_w^2)

(``p(ybar)`` times ``p(theta | ybar)``; a customer without repeat purchases has
``k_0 = 0`` and no spend term). The theta integral is the hierarchical models'
2-D marginal with a conditional population whose mean is linear in
``(X_i, ybar_i)`` and whose covariance depends on ``n_i`` only
(:func:`conditional_population`). Given ``theta`` and the data, ``m`` is normal,
so the expected value of a future purchase day is ``exp`` of a linear function
of ``(X_i, ybar_i, theta)`` (:func:`spend_tilt`).

Every function takes the array module ``xp`` (NumPy or ``pytensor.tensor``)
where it is used in the sampler's graph too; leading axes broadcast (draws).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PAIRS", "conditional_population", "joint_covariance", "spend_loglik", "spend_tilt"]

PAIRS = ("purchase-dropout", "purchase-spend", "dropout-spend")  # order of the three correlations
_LOG_2PI = math.log(2.0 * math.pi)


def joint_covariance(sigma, correlation, xp=np):
    """Entries ``(S00, S01, S11, S02, S12, S22)`` of ``Sigma`` from its sds ``(..., 3)`` and the
    correlations ``(..., 3)`` in :data:`PAIRS` order."""
    s0, s1, s2 = sigma[..., 0], sigma[..., 1], sigma[..., 2]
    r01, r02, r12 = correlation[..., 0], correlation[..., 1], correlation[..., 2]
    return s0 * s0, r01 * s0 * s1, s1 * s1, r02 * s0 * s2, r12 * s1 * s2, s2 * s2


def conditional_population(coefficients, sigma, correlation, spend_sd, n, xp=np):
    """The population of ``theta_i`` given ``ybar_i`` for customers with ``n`` repeat purchase days.

    Parameters
    ----------
    coefficients : array, shape ``(..., P, 3)``
        ``B`` (rows: intercept, then covariates; columns: purchase, dropout, spend).
    sigma, correlation : arrays, shape ``(..., 3)``
        Sds of ``(theta, m)`` and their correlations (:data:`PAIRS`).
    spend_sd : array, shape ``(...)``
        ``sigma_w``, the sd of a purchase day's log value around the customer's ``m``.
    n : float
        Repeat purchase days (0: the unconditional population of ``theta``).

    Returns
    -------
    tuple
        ``(C, sd, rho)``: ``C`` of shape ``(..., P + 1, 2)`` gives the mean
        ``[X_i, ybar_i] C``; ``sd`` ``(..., 2)`` and ``rho`` ``(...)`` the covariance ``Sigma_n``.
    """
    c00, c01, c11, c02, c12, c22 = joint_covariance(sigma, correlation, xp)
    denominator = n * c22 + spend_sd * spend_sd
    k0, k1 = n * c02 / denominator, n * c12 / denominator
    v00, v01, v11 = c00 - k0 * c02, c01 - k0 * c12, c11 - k1 * c12
    k = xp.stack([k0, k1], axis=-1)
    C = xp.concatenate([coefficients[..., :2] - coefficients[..., 2, None] * k[..., None, :], k[..., None, :]],
                       axis=-2)
    sd0, sd1 = xp.sqrt(v00), xp.sqrt(v11)
    return C, xp.stack([sd0, sd1], axis=-1), v01 / (sd0 * sd1)


def spend_loglik(mean_log, ss, n, population_mean, sigma_m, spend_sd, xp=np):
    """Log-density of the log values of the ``n >= 1`` repeat purchase days with ``m`` integrated out.

    ``N(ybar; mu_m, sigma_m^2 + sigma_w^2 / n)`` times the within-customer term
    ``W`` (see the module); ``population_mean`` is ``mu_m = X_i b_m`` per row.
    The log values' density leaves out the Jacobian ``-sum log z`` (a constant of the data).
    """
    variance = sigma_m * sigma_m + spend_sd * spend_sd / n
    between = -0.5 * (_LOG_2PI + xp.log(variance)) - 0.5 * (mean_log - population_mean) ** 2 / variance
    within = (-0.5 * (n - 1.0) * (_LOG_2PI + 2.0 * xp.log(spend_sd)) - 0.5 * xp.log(n)
              - 0.5 * ss / (spend_sd * spend_sd))
    return between + within


def spend_tilt(coefficients, sigma, correlation, spend_sd, n):
    """``log E[exp(m_i + sigma_w^2 / 2) | theta_i, ybar_i]``, the expected value of a purchase day given the
    latents, as a linear function: coefficients of ``[X_i, ybar_i, theta_i0, theta_i1]``, shape ``(..., P + 3)``.

    Given ``theta`` the prior of ``m`` is ``N(mu_m + a . (theta - mu_theta), v)``
    with ``a = Sigma_theta,theta^-1 Sigma_theta,m``, ``v = Sigma_mm - a . Sigma_theta,m``;
    the ``n`` log values (mean ``ybar``, variance ``sigma_w^2 / n``) make it
    ``N(w_p prior mean + w_d ybar, 1 / (1/v + n / sigma_w^2))`` (NumPy only).
    """
    c00, c01, c11, c02, c12, c22 = joint_covariance(sigma, correlation)
    det = c00 * c11 - c01 * c01
    a0, a1 = (c11 * c02 - c01 * c12) / det, (c00 * c12 - c01 * c02) / det
    v = c22 - a0 * c02 - a1 * c12
    data_precision = n / (spend_sd * spend_sd)
    variance = 1.0 / (1.0 / v + data_precision)
    w_prior, w_data = variance / v, variance * data_precision
    a = np.stack([a0, a1], axis=-1)
    on_x = w_prior[..., None] * (coefficients[..., 2] - np.einsum("...pj,...j->...p", coefficients[..., :2], a))
    on_x[..., 0] += 0.5 * (variance + spend_sd * spend_sd)  # the intercept column of X is ones
    return np.concatenate([on_x, w_data[..., None], w_prior[..., None] * a], axis=-1)
