"""Independent reference for the hierarchical models' per-customer marginal likelihood.

``log p(y | m, Sigma) = log int L(theta) N(theta; m, Sigma) dtheta`` over the two latent
quantities ``theta = (log lambda, log mu)`` (Pareto/NBD) or ``(log lambda, logit p)``
(BG/NBD), with the individual likelihoods written out here from the models' definitions
(not from ``bayesclv.formulas``):

* Pareto/NBD: ``lambda^x mu/(lambda+mu) e^{-(lambda+mu) t_x} + lambda^{x+1}/(lambda+mu) e^{-(lambda+mu) T}``;
* BG/NBD: ``(1-p)^x lambda^x e^{-lambda T} + [x>0] p (1-p)^{x-1} lambda^x e^{-lambda t_x}``.

The integral is a tensor Gauss-Legendre grid over +-12 sds of the integrand's own
Laplace approximation (mode by SciPy's optimiser, Hessian by central differences),
so it knows nothing of the library's frames or rule.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

PARETONBD, BGNBD = "paretonbd", "bgnbd"


def individual_loglik(family: str, x: float, t_x: float, T: float, th0, th1):
    """Log-likelihood of one history given the latents (arrays broadcast)."""
    log_lam = np.asarray(th0, dtype=float)
    lam = np.exp(log_lam)
    if family == PARETONBD:
        log_mu = np.asarray(th1, dtype=float)
        log_sum = np.logaddexp(log_lam, log_mu)
        total = lam + np.exp(log_mu)
        alive_at_tx = x * log_lam + log_mu - log_sum - total * t_x
        alive_at_T = (x + 1.0) * log_lam - log_sum - total * T
        return np.logaddexp(alive_at_tx, alive_at_T)
    log_p, log_q = -np.logaddexp(0.0, -th1), -np.logaddexp(0.0, th1)  # log p, log(1 - p)
    survive = x * log_q + x * log_lam - lam * T
    if x == 0:
        return survive
    return np.logaddexp(survive, log_p + (x - 1.0) * log_q + x * log_lam - lam * t_x)


def minimum_and_hessian(negative, start, h: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """The minimum of ``negative`` (Nelder-Mead, tight tolerances) and its Hessian there by central differences:
    the centre and the frame of a reference rule."""
    mode = optimize.minimize(negative, start, method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000}).x
    step = np.eye(mode.size) * h
    hess = np.empty((mode.size, mode.size))
    for j in range(mode.size):
        for k in range(mode.size):
            hess[j, k] = (negative(mode + step[j] + step[k]) - negative(mode + step[j] - step[k])
                          - negative(mode - step[j] + step[k]) + negative(mode - step[j] - step[k])) / (4.0 * h * h)
    return mode, hess


def _log_integrand(family, x, t_x, T, mean, precision, log_norm, th0, th1):
    d0, d1 = th0 - mean[0], th1 - mean[1]
    quad = precision[0, 0] * d0 * d0 + 2.0 * precision[0, 1] * d0 * d1 + precision[1, 1] * d1 * d1
    return individual_loglik(family, x, t_x, T, th0, th1) + log_norm - 0.5 * quad


def marginal_row_loglik(family: str, x: float, t_x: float, T: float, mean, cov, nodes: int = 200,
                        width: float = 12.0) -> float:
    """``log int L(theta) N(theta; mean, cov) dtheta`` by an ``nodes x nodes`` Gauss-Legendre grid."""
    mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
    precision = np.linalg.inv(cov)
    log_norm = -np.log(2.0 * np.pi) - 0.5 * np.log(np.linalg.det(cov))

    def negative(theta):
        return -float(_log_integrand(family, x, t_x, T, mean, precision, log_norm, theta[0], theta[1]))

    mode, hess = minimum_and_hessian(negative, mean)
    frame = np.linalg.cholesky(np.linalg.inv(hess))
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = width * u, width * w
    u0, u1 = np.meshgrid(u, u, indexing="ij")
    th0 = mode[0] + frame[0, 0] * u0
    th1 = mode[1] + frame[1, 0] * u0 + frame[1, 1] * u1
    log_f = _log_integrand(family, x, t_x, T, mean, precision, log_norm, th0, th1) + np.log(np.outer(w, w))
    return float(special.logsumexp(log_f) + np.log(frame[0, 0] * frame[1, 1]))
