"""Per-draw expectations of a product rule's rows with the posterior draws in vector lanes.

For one row every posterior draw repeats the same arithmetic on the rule's nodes with other numbers (its
tilt): the factors of the node weights (:func:`~bayesclv.formulas._marginal_terms.factor_exponents`) and
their products with the row's node mass. One draw at a time that is a call per step and loops of the
n = 8-12 nodes of a dimension, too short to vectorise. :func:`lane_node_expectations` takes
:data:`~bayesclv.formulas._marginal_lanes.LANES` draws at once with the draw innermost
(:func:`~bayesclv.formulas._marginal_lanes.lane_factors`), so every step is one contiguous loop over the
lanes: the same sums, cheaper per (row, draw) (``benchmarks/results/hierarchical_marginal_speed.md``,
parts 5 and 6). The node sums take the row's node mass times each quantity's values once per row, and
``f0[a]`` once per row ``a`` of the grid. Draws whose cross term is beyond the factored range, or whose
weights underflow, are summed node by node as in :func:`~bayesclv.formulas._marginal.node_expectations`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._marginal_lanes import LANES, cross_rows, lane_factors, lane_rows
from bayesclv.formulas._marginal_terms import (
    FASTMATH,
    node_by_node,
    normal_constants,
    row_mean,
    row_tilt,
)

__all__ = ["draw_by_nodes", "draw_constants", "lane_node_expectations"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def draw_constants(sigma, rho):  # pragma: no cover - compiled
    """Each draw's ``(P00, P01, P11, log normaliser)`` of the population normal, ``(D, 4)``."""
    constants = np.empty((sigma.shape[0], 4))
    for d in range(sigma.shape[0]):
        p00, p01, p11, log_norm = normal_constants(sigma[d], rho[d])
        constants[d, 0], constants[d, 1], constants[d, 2], constants[d, 3] = p00, p01, p11, log_norm
    return constants


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def draw_by_nodes(i, d, coefficients, offset, constants, X, group, centre, chol, log_terms, top_terms, powers, values,
                  out, s, tilt, bits):  # pragma: no cover - compiled
    """Row ``i``'s expectations under draw ``d`` node by node into ``out[i, d]``; returns the row's log-likelihood
    by the uncorrected rule. ``s``, ``tilt``, ``bits``: scratch (nodes, 5, nodes)."""
    m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
    d0, d1 = centre[i, 0] - m0, centre[i, 1] - m1
    r00, r10, r11, p00, p01, p11 = chol[i, 0], chol[i, 1], chol[i, 2], constants[d, 0], constants[d, 1], constants[d, 2]
    dpd, top, mass = node_by_node(log_terms[i], powers, d0, d1, r00, r10, r11, p00, p01, p11, top_terms[i], s, tilt,
                                  bits)
    for q in range(values.shape[1]):
        total = 0.0
        for k in range(s.size):
            total += s[k] * values[i, q, k]
        out[i, d, q] = total / mass
    return constants[d, 3] - 0.5 * dpd + top + math.log(mass)


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_node_expectations(coefficients, offset, constants, X, group, centre, chol, log_terms, top_terms, powers,
                           values, out, loglik, node_mass):  # pragma: no cover - compiled
    """:func:`~bayesclv.formulas._marginal.node_expectations` for a full product rule, the draws in lanes.

    ``constants`` ``(D, 4)``: each draw's ``(P00, P01, P11, log normaliser)``
    (:func:`~bayesclv.formulas._marginal_terms.normal_constants`); ``node_mass``
    ``exp(a_ik - max_k a_ik)``; the other arguments as there.
    """
    n_draws = coefficients.shape[0]
    n, n_nodes = log_terms.shape
    n_q = values.shape[1]
    side = int(math.sqrt(n_nodes) + 0.5)
    nodes = np.ascontiguousarray(powers[1, :side])
    lanes = LANES
    work = np.empty(lane_rows(side)[3] * lanes)
    bits = np.empty(max(work.size, n_nodes), dtype=np.int64)
    tilts, tilt, s = np.empty((5, lanes)), np.empty(5), np.empty(n_nodes)
    dpd, largest, top0, top1 = np.empty(lanes), np.empty(lanes), np.empty(lanes), np.empty(lanes)
    mass, sums, products = np.empty(lanes), np.empty((n_q, lanes)), np.empty(lanes)
    row_mass, row_sums = np.empty(lanes), np.empty((n_q, lanes))
    weighted = np.empty((n_q, n_nodes))  # the row's node mass times each quantity's values
    factored = np.empty(lanes, dtype=np.bool_)
    cross_row = cross_rows(side, lanes)  # node k's row of cross-factor values in ``work``
    want_loglik = loglik.shape[1] > 0
    for i in range(n):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        for q in range(n_q):
            for k in range(n_nodes):
                weighted[q, k] = node_mass[i, k] * values[i, q, k]
        for start in range(0, n_draws, lanes):
            used = min(lanes, n_draws - start)
            for l in range(lanes):  # lanes past the last draw repeat the last draw (computed, not written)
                d = start + min(l, used - 1)
                m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
                dpd[l] = row_tilt(centre[i, 0] - m0, centre[i, 1] - m1, r00, r10, r11, constants[d, 0],
                                  constants[d, 1], constants[d, 2], tilt)
                for j in range(5):
                    tilts[j, l] = tilt[j]
            lane_factors(nodes, tilts, factored, work, bits, top0, top1, largest)
            for l in range(lanes):
                mass[l] = 0.0
            for q in range(n_q):
                for l in range(lanes):
                    sums[q, l] = 0.0
            # each node's mass and quantities times f1[b] cross[a, b], summed along b, then times f0[a]
            for a in range(side):
                for l in range(lanes):
                    row_mass[l] = 0.0
                for q in range(n_q):
                    for l in range(lanes):
                        row_sums[q, l] = 0.0
                for b in range(side):  # rows of work as views (no negative-index check in the lane loops)
                    k = a * side + b
                    f1, cross, weight = work[(side + b) * lanes:(side + b + 1) * lanes], \
                        work[cross_row[k]:cross_row[k] + lanes], node_mass[i, k]
                    for l in range(lanes):
                        products[l] = f1[l] * cross[l]
                        row_mass[l] += products[l] * weight
                    for q in range(n_q):
                        value, row_sum = weighted[q, k], row_sums[q]
                        for l in range(lanes):
                            row_sum[l] += products[l] * value
                f0 = work[a * lanes:(a + 1) * lanes]
                for l in range(lanes):
                    mass[l] += row_mass[l] * f0[l]
                for q in range(n_q):
                    total, row_sum = sums[q], row_sums[q]
                    for l in range(lanes):
                        total[l] += row_sum[l] * f0[l]
            for l in range(used):
                d = start + l
                top = top_terms[i] + top0[l] + top1[l] + largest[l]
                total = mass[l]
                if factored[l] and total > 1e-250:
                    for q in range(n_q):
                        out[i, d, q] = sums[q, l] / total
                    if want_loglik:
                        loglik[i, d] = constants[d, 3] - 0.5 * dpd[l] + top + math.log(total)
                else:  # far from the reference
                    value = draw_by_nodes(i, d, coefficients, offset, constants, X, group, centre, chol, log_terms,
                                          top_terms, powers, values, out, s, tilt, bits)
                    if want_loglik:
                        loglik[i, d] = value
