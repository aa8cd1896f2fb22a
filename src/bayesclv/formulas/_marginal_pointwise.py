"""Each row's marginal log-likelihood per posterior draw: the hierarchical fit's rule, one value per (row, draw).

The integrated fit's NUTS target sums ``w_i log p(y_i | phi)`` over the distinct
rows (:func:`bayesclv.formulas._marginal.marginal_loglik`), each row's
``log p(y_i | phi) = log int L_i(theta) N(theta; m_i, Sigma) dtheta`` by the
fixed rule in the row's frame, less the rule's second-order error correction.
PSIS-LOO needs those terms one by one for every posterior draw: this kernel
evaluates them with the same per-row pieces (:mod:`bayesclv.formulas._marginal_terms`),
without the gradient, so that the terms of one draw sum to the fit's value.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._marginal_terms import (
    FASTMATH,
    factor_width,
    factors,
    node_by_node,
    normal_constants,
    row_mean,
    row_tilt,
    tilt_correction,
)

__all__ = ["pointwise_marginal_loglik"]


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def pointwise_marginal_loglik(coefficients, offset, sigma, rho, X, group, centre, chol, log_terms, top_terms, powers,
                              correction, node_mass, out):  # pragma: no cover - compiled
    """``out[i, d] = log p(y_i | phi_d)`` for every row ``i`` and draw ``d``, as the fit's kernel computes it.

    Parameters
    ----------
    coefficients, offset, sigma, rho : arrays
        The population per draw: ``(D, P, 2)``, ``(D, G, 2)``, ``(D, 2)``, ``(D,)``.
    X, group, centre, chol, log_terms, top_terms, powers, correction : arrays
        The rows' design and rule tables as :func:`~bayesclv.formulas._marginal.marginal_loglik`
        takes them (``correction`` ``(n, 0)`` for the uncorrected rule).
    node_mass : (n, K) array
        ``exp(a_ik - max_k a_ik)`` for a full product rule (summed by factors), ``(n, 0)`` otherwise.
    out : (n, D) array
        Receives the values.
    """
    n_draws = coefficients.shape[0]
    n, n_nodes = log_terms.shape
    s = np.empty(n_nodes)
    tilt, derivative, shift = np.empty(5), np.empty(5), np.empty(5)
    constants = np.empty((n_draws, 4))
    for d in range(n_draws):
        p00, p01, p11, log_norm = normal_constants(sigma[d], rho[d])
        constants[d, 0], constants[d, 1], constants[d, 2], constants[d, 3] = p00, p01, p11, log_norm
    corrected = correction.shape[1] > 0
    factored = node_mass.shape[1] > 0
    side = int(math.sqrt(n_nodes) + 0.5)
    nodes = np.ascontiguousarray(powers[1, :side])
    factor0, factor1 = np.empty(side), np.empty(side)
    cross = np.empty(side * side + factor_width(side))
    bits = np.empty(max(n_nodes, factor_width(side)), dtype=np.int64)
    for i in range(n):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        for d in range(n_draws):
            p00, p01, p11 = constants[d, 0], constants[d, 1], constants[d, 2]
            m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
            d0, d1 = centre[i, 0] - m0, centre[i, 1] - m1
            mass = top = dpd = 0.0
            if factored:
                dpd = row_tilt(d0, d1, r00, r10, r11, p00, p01, p11, tilt)
                available, raised = factors(nodes, tilt, factor0, factor1, cross, bits)
                if available:
                    top = top_terms[i] + raised
                    for a in range(side):
                        for b in range(side):
                            k = a * side + b
                            mass += node_mass[i, k] * factor0[a] * factor1[b] * cross[k]
            if not mass > 1e-250:  # node by node: no product rule, or far from the reference
                dpd, top, mass = node_by_node(log_terms[i], powers, d0, d1, r00, r10, r11, p00, p01, p11, top_terms[i],
                                              s, tilt, bits)
            value = constants[d, 3] - 0.5 * dpd + top + math.log(mass)
            if corrected:
                value -= tilt_correction(tilt, correction[i], derivative, shift)
            out[i, d] = value
