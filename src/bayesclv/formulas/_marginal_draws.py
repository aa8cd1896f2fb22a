"""Per-draw expectations of a product rule's rows with the posterior draws in vector lanes.

For one row every posterior draw repeats the same arithmetic on the rule's nodes with other numbers (its
tilt): the factors of the node weights (:func:`~bayesclv.formulas._marginal_terms.factor_exponents`) and
their products with the row's node mass. One draw at a time that is a call per step and loops of the
n = 8-12 nodes of a dimension, too short to vectorise. :func:`lane_node_expectations` takes
:data:`LANES` draws at once with the draw innermost, so every step is one contiguous loop over the lanes:
the same sums, several times cheaper per (row, draw) (``benchmarks/results/hierarchical_marginal_speed.md``,
part 5). Draws whose cross term is beyond the factored range, or whose weights underflow, are summed node
by node as in :func:`~bayesclv.formulas._marginal.node_expectations`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._marginal_terms import (
    _FACTORED_LIMIT,
    FASTMATH,
    exp_nonpositive,
    node_by_node,
    normal_constants,
    row_mean,
    row_tilt,
)

__all__ = ["LANES", "draw_by_nodes", "draw_constants", "lane_node_expectations"]

LANES = 16  # draws per block: two AVX-512 (four AVX2) registers of float64


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
    h = (side + 1) // 2
    nodes = np.ascontiguousarray(powers[1, :side])
    span = nodes[side - 1] * nodes[side - 1]
    lanes = LANES
    # rows of ``work``, each ``lanes`` long: log f0 (side), log f1 (side), the cross factor's quarter (h^2), the
    # floor exp(-2 largest) (1), all exponentiated in one call; then the quarter's mirror values (h^2)
    quarter, floor_row, mirror = 2 * side, 2 * side + h * h, 2 * side + h * h + 1
    work = np.empty((mirror + h * h) * lanes)
    bits = np.empty(max(mirror * lanes, n_nodes), dtype=np.int64)
    tilts, tilt, s = np.empty((5, lanes)), np.empty(5), np.empty(n_nodes)
    dpd, largest, top0, top1 = np.empty(lanes), np.empty(lanes), np.empty(lanes), np.empty(lanes)
    mass, sums, products = np.empty(lanes), np.empty((n_q, lanes)), np.empty(lanes)
    factored = np.empty(lanes, dtype=np.bool_)
    cross_row = np.empty(n_nodes, dtype=np.int64)  # node k's row of cross-factor values in ``work``
    for a in range(side):
        ia, low_a = (a, True) if a < h else (side - 1 - a, False)
        for b in range(side):
            ib, low_b = (b, True) if b < h else (side - 1 - b, False)
            cross_row[a * side + b] = ((quarter if low_a == low_b else mirror) + ia * h + ib) * lanes
    want_loglik = loglik.shape[1] > 0
    for i in range(n):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        for start in range(0, n_draws, lanes):
            used = min(lanes, n_draws - start)
            for l in range(lanes):  # lanes past the last draw repeat the last draw (computed, not written)
                d = start + min(l, used - 1)
                m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
                dpd[l] = row_tilt(centre[i, 0] - m0, centre[i, 1] - m1, r00, r10, r11, constants[d, 0],
                                  constants[d, 1], constants[d, 2], tilt)
                for j in range(5):
                    tilts[j, l] = tilt[j]
                factored[l] = abs(tilt[3]) * span < _FACTORED_LIMIT
                if not factored[l]:  # summed node by node below; a zero cross term keeps this lane's numbers finite
                    tilts[3, l] = 0.0
                largest[l] = abs(tilts[3, l]) * span
                top0[l] = top1[l] = -np.inf
            for a in range(side):
                u = nodes[a]
                row0, row1 = a * lanes, (side + a) * lanes
                for l in range(lanes):
                    e0 = -(tilts[0, l] * u + 0.5 * tilts[2, l] * u * u)
                    e1 = -(tilts[1, l] * u + 0.5 * tilts[4, l] * u * u)
                    work[row0 + l], work[row1 + l] = e0, e1
                    top0[l], top1[l] = max(top0[l], e0), max(top1[l], e1)
            for a in range(side):
                row0, row1 = a * lanes, (side + a) * lanes
                for l in range(lanes):
                    work[row0 + l] -= top0[l]
                    work[row1 + l] -= top1[l]
            for a in range(h):
                for b in range(h):
                    xx, row = nodes[a] * nodes[b], (quarter + a * h + b) * lanes
                    for l in range(lanes):
                        work[row + l] = -tilts[3, l] * xx - largest[l]
            for l in range(lanes):
                work[floor_row * lanes + l] = -2.0 * largest[l]
            exp_nonpositive(work[:mirror * lanes], 0.0, bits)
            for j in range(h * h):  # exp(+A01 x_a x_b - largest): the other two quarters (spread_cross)
                row, back = (quarter + j) * lanes, (mirror + j) * lanes
                for l in range(lanes):
                    work[back + l] = work[floor_row * lanes + l] / work[row + l]
            for l in range(lanes):
                mass[l] = 0.0
            for q in range(n_q):
                for l in range(lanes):
                    sums[q, l] = 0.0
            for a in range(side):
                row0 = a * lanes
                for b in range(side):
                    k = a * side + b
                    row1, cross, weight = (side + b) * lanes, cross_row[k], node_mass[i, k]
                    for l in range(lanes):
                        products[l] = weight * work[row0 + l] * work[row1 + l] * work[cross + l]
                        mass[l] += products[l]
                    for q in range(n_q):
                        value = values[i, q, k]
                        for l in range(lanes):
                            sums[q, l] += products[l] * value
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
