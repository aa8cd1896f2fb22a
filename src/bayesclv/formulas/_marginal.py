"""Individual-level models with each customer's latent rates integrated out by adaptive quadrature.

Customer ``i`` of a hierarchical model has two latent quantities
``theta_i = (log lam_i, log mu_i)`` (Pareto/NBD) or ``(log lam_i, logit p_i)``
(BG/NBD) with ``theta_i ~ N(m_i, Sigma)``, ``m_i = X_i B`` (plus a group
intercept), and a closed-form likelihood ``L_i(theta)`` given them. The
population parameters' likelihood is ``prod_i p(y_i | phi)`` with::

    p(y_i | phi) = int L_i(theta) N(theta; m_i, Sigma) dtheta
                 ~ sum_k exp(a_ik) N(theta_ik; m_i, Sigma),
    theta_ik = c_i + R_i u_k,   a_ik = log w_k + |u_k|^2 / 2 + log|R_i| + log L_i(theta_ik),

a Gauss-Hermite product rule (nodes ``u_k``, weights ``w_k`` for the weight
``exp(-|u|^2/2)``) in a frame ``(c_i, R_i)`` per distinct row. The frame is the
conditional posterior's mean and Cholesky factor of its covariance at a
reference value of the population parameters
(:func:`bayesclv.formulas._marginal_rule.adapt_rows`: a Laplace step, then
moments by quadrature) and stays FIXED while the population parameters are
sampled, so ``a_ik`` is data: a gradient costs a quadratic form
and an exponential per node and row (:func:`marginal_loglik`, one numba pass,
wrapped by :class:`MarginalLoglikOp`).

The gradient follows from ``d log p(y_i) / d phi = E[d log N(theta; m_i, Sigma) / d phi]``
under the normalised node weights: only the weighted first and second moments
of ``u`` per row are needed.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.chunks import map_chunks
from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._marginal_draws import draw_by_nodes, draw_constants, lane_node_expectations
from bayesclv.formulas._marginal_lanes import ROW_LANES, as_lanes, cross_rows, lane_factors, lane_moments, lane_rows
from bayesclv.formulas._marginal_rows import lane_row_values, row_by_nodes, spaced
from bayesclv.formulas._marginal_rule import latent_loglik
from bayesclv.formulas._marginal_terms import (
    FASTMATH,
    exp_nonpositive,
    normal_constants,
    row_log_terms,
    row_mean,
    row_tilt,
)

__all__ = ["GroupedMarginalLoglikOp", "MarginalLoglikOp", "grouped_marginal_loglik", "marginal_loglik",
           "marginal_loglik_threads", "node_expectations", "sample_latents", "tilted_node_expectations"]


# ------------------------------------------------------------------- the kernel
@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def marginal_loglik(coefficients, offset, sigma, rho, X, group, weight, centre, chol, log_terms, top_terms,
                    powers, correction, node_mass=None):  # pragma: no cover - compiled
    """Total marginal log-likelihood of the rows and its gradient in the population parameters.

    Parameters
    ----------
    coefficients : (P, 2) array
        ``B``: row 0 the intercepts, then one row per (standardised) covariate.
    offset : (G, 2) array
        Group intercepts (one zero row without groups).
    sigma : (2,) array
        Population sds of the latent quantities.
    rho : float
        Their correlation.
    X : (n, P) array
        Each row's design (a leading column of ones).
    group : (n,) int array
        Each row's group code.
    weight : (n,) array
        Customers sharing the row.
    centre, chol, log_terms : arrays
        The rows' frames (:func:`adapt_rows`) and ``a_ik`` (:func:`node_log_terms`).
    top_terms : (n,) array
        ``max_k a_ik`` of each row.
    powers : (5, K) array
        The standard nodes' powers (:func:`product_rule`).
    correction : (n, 36) array
        Each row's second-order model of the rule's error (:func:`rule_corrections`);
        ``(n, 0)`` for the uncorrected rule.
    node_mass : (n, K) array, optional
        ``exp(a_ik - max_k a_ik)``, or the same in the lane layout of
        :func:`~bayesclv.formulas._marginal_lanes.as_lanes` (the fit's tables), where the rule is a full product rule
        (:func:`~bayesclv.formulas._marginal_rule.is_product_rule`): the rows are then summed by factors,
        a block of rows at a time in vector lanes (:func:`~bayesclv.formulas._marginal_lanes.lane_moments`),
        the same sum.

    Returns
    -------
    tuple
        ``(value, d_coefficients, d_offset, d_sigma, d_rho)``.
    """
    if node_mass is None:
        return _marginal_loglik(coefficients, offset, sigma, rho, X, group, weight, centre, chol, log_terms,
                                top_terms, powers, correction, np.zeros((0, 0, ROW_LANES)))
    return _marginal_loglik(coefficients, offset, sigma, rho, X, group, weight, centre, chol, log_terms, top_terms,
                            powers, correction, as_lanes(node_mass))


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _marginal_loglik(coefficients, offset, sigma, rho, X, group, weight, centre, chol, log_terms, top_terms,
                     powers, correction, node_mass):  # pragma: no cover - compiled
    n, n_nodes = log_terms.shape
    p00, p01, p11, log_norm = normal_constants(sigma, rho)
    g_coef, g_offset = np.zeros_like(coefficients), np.zeros_like(offset)
    s, tilt = np.empty(n_nodes), np.empty(5)
    derivative, shift = np.empty(5), np.empty(5)
    n_correction = correction.shape[1]
    factored = node_mass.shape[1] > 0
    side = int(math.sqrt(n_nodes) + 0.5)
    nodes = np.ascontiguousarray(powers[1, :side])  # a product rule's 1-D nodes (used where factored)
    # a block of ROW_LANES rows is summed by factors with the rows in vector lanes (_marginal_lanes), and the
    # rest of each row taken for the block at once (_marginal_rows): one row at a time the factors' loops run
    # over the side's 8-12 nodes and do not vectorise; a lane loop has a fixed cost per node (views, alias
    # checks) that 16 lanes do not amortise
    lanes = ROW_LANES
    block = lanes if factored else 1
    n_work = lane_rows(side)[3] * lanes
    # the lane loops' arrays in one buffer, each followed by a gap as long as itself (and one gap ahead):
    # every call sees the same layout, so their run-time overlap checks take the same path and a fit repeats
    buffer = np.empty(2 * (n_work + (78 + n_correction) * lanes))
    work, at = spaced(buffer, lanes, n_work)
    scratch, at = spaced(buffer, at, 11 * lanes)  # the tilts (rows 0-4), then the correction's slopes
    scratch = scratch.reshape((11, lanes))
    tilts = scratch[:5]
    moments, at = spaced(buffer, at, 6 * lanes)
    moments = moments.reshape((6, lanes))
    frames, at = spaced(buffer, at, 5 * lanes)  # (d0, d1, r00, r10, r11) of each lane's row
    frames = frames.reshape((5, lanes))
    table, at = spaced(buffer, at, n_correction * lanes)
    table = table.reshape((n_correction, lanes))
    out, at = spaced(buffer, at, 6 * lanes)  # (value, E[delta], E[delta delta']) of each lane's row
    out = out.reshape((6, lanes))
    rowsum, at = spaced(buffer, at, lanes)  # lane_moments' running sums along a row of nodes
    spread, at = spaced(buffer, at, lanes)
    spread2, at = spaced(buffer, at, lanes)
    lane_arrays, at = spaced(buffer, at, 9 * lanes)
    lane_arrays = lane_arrays.reshape((9, lanes))
    dpds, top0, top1, largest, tops = lane_arrays[0], lane_arrays[1], lane_arrays[2], lane_arrays[3], lane_arrays[4]
    available, needs, gm0, gm1 = lane_arrays[5], lane_arrays[6], lane_arrays[7], lane_arrays[8]
    bits = np.empty(max(n_nodes, n_work), dtype=np.int64)
    rows = cross_rows(side, lanes)
    total = count = m00 = m01 = m11 = 0.0
    for start in range(0, n, block):
        stop = min(start + block, n)
        for j in range(block):  # lanes past the last row repeat it (computed, not summed)
            i = min(start + j, stop - 1)
            m0, m1 = row_mean(coefficients, offset, X, group, i)
            frames[0, j], frames[1, j] = centre[i, 0] - m0, centre[i, 1] - m1
            frames[2, j], frames[3, j], frames[4, j] = chol[i, 0], chol[i, 1], chol[i, 2]
            if factored:
                dpds[j] = row_tilt(frames[0, j], frames[1, j], chol[i, 0], chol[i, 1], chol[i, 2], p00, p01, p11,
                                   tilt)
                for q in range(5):
                    tilts[q, j] = tilt[q]
                tops[j] = top_terms[i]
                for q in range(n_correction):
                    table[q, j] = correction[i, q]
        if factored:
            lane_factors(nodes, tilts, available, work, bits, top0, top1, largest)
            lane_moments(nodes, node_mass[start // lanes], work, rows, moments, rowsum, spread, spread2)
            for j in range(lanes):
                tops[j] = tops[j] + top0[j] + top1[j] + largest[j]
            lane_row_values(log_norm, moments, available, dpds, tops, frames, table, scratch, out, needs)
        for j in range(stop - start):
            if not factored or needs[j] > 0.0:  # node by node: no product rule, or far from the reference
                i = start + j
                row_by_nodes(log_terms[i], powers, frames[:, j], p00, p01, p11, top_terms[i], log_norm, correction[i],
                             s, tilt, bits, derivative, shift, out, j)
        for j in range(stop - start):
            w = weight[start + j]
            total += w * out[0, j]
            m00 += w * out[3, j]
            m01 += w * out[4, j]
            m11 += w * out[5, j]
            count += w
            gm0[j], gm1[j] = w * (p00 * out[1, j] + p01 * out[2, j]), w * (p01 * out[1, j] + p11 * out[2, j])
        for j in range(stop - start):  # d/dm_i = P E[delta]
            g_offset[group[start + j], 0] += gm0[j]
            g_offset[group[start + j], 1] += gm1[j]
        for p in range(X.shape[1]):
            c0 = c1 = 0.0
            for j in range(stop - start):
                c0 += X[start + j, p] * gm0[j]
                c1 += X[start + j, p] * gm1[j]
            g_coef[p, 0] += c0
            g_coef[p, 1] += c1
    s0, s1 = sigma[0], sigma[1]
    one = 1.0 - rho * rho
    g_sigma = np.empty(2)
    g_sigma[0] = -count / s0 + (m00 / s0**3 - rho * m01 / (s0 * s0 * s1)) / one
    g_sigma[1] = -count / s1 + (m11 / s1**3 - rho * m01 / (s0 * s1 * s1)) / one
    quad = m00 / (s0 * s0) - 2.0 * rho * m01 / (s0 * s1) + m11 / (s1 * s1)
    g_rho = count * rho / one - rho * quad / (one * one) + m01 / (one * s0 * s1)
    return total, g_coef, g_offset, g_sigma, g_rho


_THREAD_ROWS = 2000  # fewest rows per thread worth a thread of their own
_POWERS = 7  # position of ``powers`` (the one table that is not per row) among the kernel's tables; node_mass 9


def marginal_loglik_threads(coefficients, offset, sigma, rho, tables, threads):
    """:func:`marginal_loglik` with the rows split over up to ``threads`` threads (the kernel releases the
    GIL); the total and gradients are sums over rows, so the parts' sums are the same sums (to rounding)."""
    n = len(tables[0])
    parts = min(int(threads), n // _THREAD_ROWS)
    if parts <= 1:
        return marginal_loglik(coefficients, offset, sigma, rho, *tables)
    # whole blocks of the lane layout per part (the node masses may come in it, sliced by blocks)
    bounds = np.minimum(np.round(np.linspace(0, n, parts + 1) / ROW_LANES).astype(np.int64) * ROW_LANES, n)
    bounds[-1] = n
    results = [None] * parts  # summed in part order: the same total for the same split, whichever ends first

    def rows(j, table, lo, hi):
        if j == _POWERS:
            return table
        if j == _POWERS + 2 and table.ndim == 3:
            return table[lo // ROW_LANES:-(-hi // ROW_LANES)]
        return table[lo:hi]

    def part(k):
        lo, hi = bounds[k], bounds[k + 1]
        results[k] = marginal_loglik(coefficients, offset, sigma, rho,
                                     *(rows(j, t, lo, hi) for j, t in enumerate(tables)))

    map_chunks(part, parts, 1)
    return tuple(sum(r[j] for r in results) for j in range(5))


class MarginalLoglikOp(Op):
    """:func:`marginal_loglik` in a PyTensor graph: inputs ``coefficients, offset, sigma, rho`` and the
    row tables ``X, group, weight, centre, chol, log_terms, top_terms, powers, correction`` (and optionally
    ``node_mass``); outputs the total and its gradients.

    ``threads`` (1 unless set) splits the rows over threads (:func:`marginal_loglik_threads`): for a
    search that evaluates one density at a time; while chains sample on every core it stays 1.
    """

    __props__ = ()
    threads = 1

    def make_node(self, coefficients, offset, sigma, rho, *tables):
        params = [pt.as_tensor_variable(v, dtype="float64") for v in (coefficients, offset, sigma, rho)]
        tables = [pt.as_tensor_variable(v) for v in tables]
        return Apply(self, params + tables, [pt.dscalar()] + [p.type() for p in params])

    def perform(self, node, inputs, outputs):
        value, *grads = marginal_loglik_threads(*inputs[:3], float(inputs[3]), inputs[4:], self.threads)
        outputs[0][0] = np.asarray(value)
        for k, g in enumerate(grads):
            outputs[k + 1][0] = np.asarray(g)

    def infer_shape(self, node, shapes):
        return [()] + list(shapes[:4])

    def connection_pattern(self, node):
        return [[True] * 5] * 4 + [[False] * 5] * (len(node.inputs) - 4)

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]] + [disconnected_type() for _ in inputs[4:]]


@register_funcify_default_op_cache_key(MarginalLoglikOp)
def _numba_funcify_marginal_loglik(op, node=None, **kwargs):
    """Native numba implementation for graphs compiled with numba (PyMC's NUTS, ``find_MAP``)."""

    @numba.njit(nogil=True, error_model="numpy")
    def marginal(coefficients, offset, sigma, rho, *tables):  # pragma: no cover - compiled
        value, g_coef, g_offset, g_sigma, g_rho = marginal_loglik(coefficients, offset, sigma, rho.item(), *tables)
        return np.full((), value), g_coef, g_offset, g_sigma, np.full((), g_rho)

    return marginal, KERNEL_SOURCE_SALT


@numba.njit(cache=True, nogil=True, error_model="numpy")
def grouped_marginal_loglik(coefficients, sigma, rho, bounds, X, weight, centre, chol, log_terms, top_terms, powers,
                            correction):  # pragma: no cover - compiled
    """:func:`marginal_loglik` over consecutive blocks of rows, each with its own population.

    Block ``g`` holds rows ``bounds[g]:bounds[g + 1]`` and the population
    ``coefficients[g]`` ``(P, 2)``, ``sigma[g]``, ``rho[g]`` (no groups): the joint
    spend models' rows given their mean log spend, one block per count of repeat
    purchases. Returns the total and its gradients ``(G, P, 2)``, ``(G, 2)``, ``(G,)``.
    """
    n_blocks = bounds.size - 1
    g_coef, g_sigma, g_rho = np.zeros_like(coefficients), np.zeros_like(sigma), np.zeros(n_blocks)
    offset = np.zeros((1, 2))
    group = np.zeros(X.shape[0], dtype=np.int64)
    total = 0.0
    for g in range(n_blocks):
        lo, hi = bounds[g], bounds[g + 1]
        value, gc, _, gs, gr = marginal_loglik(coefficients[g], offset, sigma[g], rho[g], X[lo:hi], group[lo:hi],
                                               weight[lo:hi], centre[lo:hi], chol[lo:hi], log_terms[lo:hi],
                                               top_terms[lo:hi], powers, correction[lo:hi])
        total += value
        g_coef[g], g_sigma[g], g_rho[g] = gc, gs, gr
    return total, g_coef, g_sigma, g_rho


class GroupedMarginalLoglikOp(Op):
    """:func:`grouped_marginal_loglik` in a PyTensor graph: inputs ``coefficients, sigma, rho`` (one population
    per block) and the tables ``bounds, X, weight, centre, chol, log_terms, top_terms, powers, correction``."""

    __props__ = ()

    def make_node(self, coefficients, sigma, rho, *tables):
        params = [pt.as_tensor_variable(v, dtype="float64") for v in (coefficients, sigma, rho)]
        tables = [pt.as_tensor_variable(v) for v in tables]
        return Apply(self, params + tables, [pt.dscalar()] + [p.type() for p in params])

    def perform(self, node, inputs, outputs):
        value, *grads = grouped_marginal_loglik(*(np.ascontiguousarray(v) for v in inputs))
        outputs[0][0] = np.asarray(value)
        for k, g in enumerate(grads):
            outputs[k + 1][0] = np.asarray(g)

    def infer_shape(self, node, shapes):
        return [()] + list(shapes[:3])

    def connection_pattern(self, node):
        return [[True] * 4] * 3 + [[False] * 4] * (len(node.inputs) - 3)

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]] + [disconnected_type() for _ in inputs[3:]]


@register_funcify_default_op_cache_key(GroupedMarginalLoglikOp)
def _numba_funcify_grouped_marginal_loglik(op, node=None, **kwargs):
    """Native numba implementation for graphs compiled with numba."""

    @numba.njit(nogil=True, error_model="numpy")
    def grouped(coefficients, sigma, rho, *tables):  # pragma: no cover - compiled
        value, g_coef, g_sigma, g_rho = grouped_marginal_loglik(coefficients, sigma, rho, *tables)
        return np.full((), value), g_coef, g_sigma, g_rho

    return grouped, KERNEL_SOURCE_SALT


# ------------------------------------------------------------------- predictions
@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def node_expectations(coefficients, offset, sigma, rho, X, group, centre, chol, log_terms, top_terms, powers,
                      values, out, loglik, node_mass=None):  # pragma: no cover - compiled
    """Posterior expectations given each draw of the population parameters, by the rows' node weights.

    For draw ``d`` and row ``i`` the normalised weights ``pi_dik`` of the rule
    (:func:`marginal_loglik`) weigh ``p(theta_ik | y_i, phi_d)``, so
    ``out[i, d, q] = sum_k pi_dik values[i, q, k]`` is ``E[g_q(theta_i) | y_i, phi_d]``
    for ``values[i, q, k] = g_q(theta_ik)``. ``loglik[i, d]`` (when it has
    columns) receives the row's log-likelihood ``log p(y_i | phi_d)`` by the
    uncorrected rule. Parameters carry a leading draw axis: ``coefficients``
    ``(D, P, 2)``, ``offset`` ``(D, G, 2)``, ``sigma`` ``(D, 2)``, ``rho`` ``(D,)``.
    Rows run outermost, so each row's values stay in cache over the draws.
    ``node_mass`` (``exp(a_ik - max_k a_ik)``, a full product rule) sums the weights
    by factors, as :func:`marginal_loglik`, with the draws in vector lanes
    (:func:`~bayesclv.formulas._marginal_draws.lane_node_expectations`).
    """
    constants = draw_constants(sigma, rho)
    if node_mass is not None:
        lane_node_expectations(coefficients, offset, constants, X, group, centre, chol, log_terms, top_terms, powers,
                               values, out, loglik, node_mass)
        return
    n_nodes = log_terms.shape[1]
    s, tilt, bits = np.empty(n_nodes), np.empty(5), np.empty(n_nodes, dtype=np.int64)
    for i in range(log_terms.shape[0]):
        for d in range(coefficients.shape[0]):
            value = draw_by_nodes(i, d, coefficients, offset, constants, X, group, centre, chol, log_terms, top_terms,
                                  powers, values, out, s, tilt, bits)
            if loglik.shape[1] > 0:
                loglik[i, d] = value


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def tilted_node_expectations(coefficients, offset, sigma, rho, X, group, centre, chol, log_terms, top_terms, powers,
                             values, tilted, tilt_coefficients, out):  # pragma: no cover - compiled
    """:func:`node_expectations` where some quantities carry a per-draw factor log-linear in the latents.

    ``out[i, d, q] = sum_k pi_dik values[i, q, k] f_dik`` with ``f_dik = exp(c_d . [X_i, theta_ik])``
    where ``tilted[q]`` (else 1), ``tilt_coefficients`` ``(D, P + 2)``: the joint spend models'
    expected value of a purchase day given the latents. ``theta_ik = centre_i + R_i u_k`` makes the
    exponent ``c_d . [X_i, centre_i] + g . u_k`` with ``g = R_i' c_theta``.
    """
    n_draws = coefficients.shape[0]
    n, n_nodes = log_terms.shape
    n_x = X.shape[1]
    s = np.empty(n_nodes)
    lin = np.empty(n_nodes)
    bits = np.empty(n_nodes, dtype=np.int64)
    tilt = np.empty(5)
    for i in range(n):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        for d in range(n_draws):
            p00, p01, p11, _ = normal_constants(sigma[d], rho[d])
            m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
            d0, d1 = centre[i, 0] - m0, centre[i, 1] - m1
            row_log_terms(log_terms[i], powers, d0, d1, r00, r10, r11, p00, p01, p11, s, tilt)
            top = -np.inf
            for k in range(n_nodes):
                top = max(top, s[k])
            mass = exp_nonpositive(s, top, bits)
            c = tilt_coefficients[d]
            base = c[n_x] * centre[i, 0] + c[n_x + 1] * centre[i, 1]
            for p in range(n_x):
                base += c[p] * X[i, p]
            g0, g1 = r00 * c[n_x] + r10 * c[n_x + 1], r11 * c[n_x + 1]
            high = -np.inf
            for k in range(n_nodes):
                lin[k] = g0 * powers[0, k] + g1 * powers[1, k]
                high = max(high, lin[k])
            exp_nonpositive(lin, high, bits)
            scale = math.exp(base + high)
            for q in range(values.shape[1]):
                total = 0.0
                if tilted[q]:
                    for k in range(n_nodes):
                        total += s[k] * values[i, q, k] * lin[k]
                    out[i, d, q] = scale * total / mass
                else:
                    for k in range(n_nodes):
                        total += s[k] * values[i, q, k]
                    out[i, d, q] = total / mass


_MIX = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mix64(z):  # pragma: no cover - compiled
    """SplitMix64's output function: a well-mixed 64-bit word from a counter."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _uniform(state):  # pragma: no cover - compiled
    """A uniform in (0, 1) from the counter ``state[0]``, which it advances."""
    state[0] += _MIX
    return (np.float64(_mix64(state[0]) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sample_latents(family, coefficients, offset, sigma, rho, X, group, frequency, recency, T, centre, chol,
                   rows, draw_keys, customer_keys, candidates, spread, seed, out):  # pragma: no cover - compiled
    """Draws of ``theta`` from ``p(theta | y_i, phi_d)`` by sampling-importance-resampling, per draw and customer.

    For draw ``d`` and customer ``c`` (row ``rows[c]``) ``candidates`` points are
    drawn from the row's frame widened by ``spread`` (``N(c_i, spread^2 R_i R_i')``)
    and one is kept with probability proportional to its importance weight
    ``L_i(theta) N(theta; m_i, Sigma) / q(theta)``. Writes ``out[d, c, :]``.

    The random numbers of a pair come from a counter-based generator keyed by
    ``(seed, draw_keys[d], customer_keys[c])``: a customer's latents in a
    posterior draw are the same whichever chunk of draws and customers asks
    for them, so predictions made separately stay paired draw by draw.
    """
    n_draws, n_customers = out.shape[0], out.shape[1]
    log_w = np.empty(candidates)
    th = np.empty((candidates, 2))
    state = np.empty(1, dtype=np.uint64)
    for d in range(n_draws):
        p00, p01, p11, _ = normal_constants(sigma[d], rho[d])
        for c in range(n_customers):
            i = rows[c]
            state[0] = _mix64(_mix64(np.uint64(seed) + _MIX * np.uint64(draw_keys[d]))
                              ^ (np.uint64(customer_keys[c]) * np.uint64(0xD1B54A32D192ED03)))
            m0, m1 = row_mean(coefficients[d], offset[d], X, group, i)
            r00, r10, r11 = spread * chol[i, 0], spread * chol[i, 1], spread * chol[i, 2]
            top = -np.inf
            for j in range(candidates):
                # Box-Muller: two standard normals from two uniforms
                radius = math.sqrt(-2.0 * math.log(_uniform(state)))
                angle = 2.0 * math.pi * _uniform(state)
                z0, z1 = radius * math.cos(angle), radius * math.sin(angle)
                a, b = centre[i, 0] + r00 * z0, centre[i, 1] + r10 * z0 + r11 * z1
                th[j, 0], th[j, 1] = a, b
                e0, e1 = a - m0, b - m1
                log_w[j] = (latent_loglik(family, frequency[i], recency[i], T[i], a, b, False)[0]
                            - 0.5 * (p00 * e0 * e0 + 2.0 * p01 * e0 * e1 + p11 * e1 * e1)
                            + 0.5 * (z0 * z0 + z1 * z1))
                top = max(top, log_w[j])
            total = 0.0
            for j in range(candidates):
                log_w[j] = math.exp(log_w[j] - top)
                total += log_w[j]
            pick = _uniform(state) * total
            j = 0
            while j < candidates - 1 and pick > log_w[j]:
                pick -= log_w[j]
                j += 1
            out[d, c, 0], out[d, c, 1] = th[j, 0], th[j, 1]
