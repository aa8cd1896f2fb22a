"""Maximum likelihood on a summed log-likelihood kernel (value and gradient from one compiled pass).

For point estimates outside a PyMC model: published maximum-likelihood
estimates, and choices of a structural constant (CNBD-k's ``k``) by likelihood.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

__all__ = ["maximum_likelihood"]


def maximum_likelihood(kernel, tables, start) -> tuple[np.ndarray, float]:
    """Ungrouped maximum of ``kernel(*params, *tables)`` over positive parameters.

    Parameters
    ----------
    kernel : numba dispatcher
        A summed log-likelihood kernel: ``kernel(*params, *tables) -> (total, grad)``
        with each parameter a length-1 vector and ``grad`` of shape ``(n_params, 1)``.
    tables : tuple of numpy.ndarray
        The kernel's data tables (one group).
    start : sequence of float
        Starting point (positive).

    Returns
    -------
    params : numpy.ndarray
        The maximising parameters.
    loglik : float
        The total log-likelihood there.

    Raises
    ------
    RuntimeError
        The optimiser stopped with a gradient (in the log parameters) above 1e-4.
    """
    def negative(theta):
        params = np.exp(theta)
        value, grad = kernel(*(np.array([p]) for p in params), *tables)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -grad[:, 0] * params

    res = optimize.minimize(negative, np.log(np.asarray(start, dtype=float)), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000})
    # at ftol 1e-15 the line search can stop on rounding ("ABNORMAL") at the optimum: judge by the gradient
    if not (res.success or np.max(np.abs(res.jac)) < 1e-4):
        raise RuntimeError(f"maximum likelihood did not converge: {res.message} (gradient {res.jac})")
    return np.exp(res.x), float(-res.fun)
