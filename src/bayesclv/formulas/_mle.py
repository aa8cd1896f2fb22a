"""Maximum likelihood on a summed log-likelihood kernel (value and gradient from one compiled pass).

For point estimates outside a PyMC model: published maximum-likelihood
estimates, and choices of a structural constant (CNBD-k's ``k``) by likelihood.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from bayesclv.formulas._summed import kernel_arguments

__all__ = ["maximum_likelihood"]

_RESTARTS = 3


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
        The optimiser stopped with a gradient (in the log parameters) above
        ``1e-7 (1 + |loglik|)``.
    """
    _, tables = kernel_arguments([], tables)  # the layout the graphs use: one compilation of the kernel

    def negative(theta):
        params = np.exp(theta)
        value, grad = kernel(*(np.array([p]) for p in params), *tables)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -grad[:, 0] * params

    theta = np.log(np.asarray(start, dtype=float))
    for _ in range(_RESTARTS):  # a line search stopped by rounding ("ABNORMAL") resumes from its point
        res = optimize.minimize(negative, theta, jac=True, method="L-BFGS-B",
                                options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000})
        theta = res.x
        if res.success:
            break
    # near the optimum the gradient is rounding noise of the terms, a few 1e-16 of the total each
    if not (res.success or np.max(np.abs(res.jac)) <= 1e-7 * (1.0 + abs(res.fun))):
        raise RuntimeError(f"maximum likelihood did not converge: {res.message} (gradient {res.jac})")
    return np.exp(res.x), float(-res.fun)
