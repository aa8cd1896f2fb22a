"""The Pareto/NBD lifetime integral of a block of rows at once, each row in a vector lane.

The covariate Pareto/NBD kernel (:func:`bayesclv.formulas._covariate_summed.paretonbd_kernel`) needs one
integral ``J = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` per row, each with its own scales.
Row by row (:func:`bayesclv.formulas._lifetime_integral.log_piecewise_integral`) every node costs scalar libm
calls and a data-dependent loop, which LLVM cannot vectorise. Here a block's rows share one node layout: each
row's interval (in ``Q = log(m + tau)``, ``m`` the smaller scale) is cut into the same number of equal pieces
under one Gauss-Legendre rule, and each node is one loop over the lanes with
:mod:`bayesclv.formulas._lane_math`'s exponential and logarithm.

The layout is the cheapest (pieces x nodes) under which every row's pieces lie within a rule's bounds in
:data:`RULES`: a rule of ``n`` nodes takes a piece at most ``width`` wide in ``Q`` on which the log-integrand
changes by at most ``change``. The bounds were calibrated against 480-node references over random shapes
(0.01 to 3,000), scale gaps and widths, to a relative error below 1e-13 in ``J`` and in each derivative's
expectation (``validation/lifetime_rule_calibration.py``, ``validation/results/lifetime_rule_calibration.md``);
the integrand's singularities lie ``pi`` off the real axis in ``Q``, so a wider piece needs more nodes, but fewer
than the same width cut into 8-node pieces of width 1 (the row-by-row rule): a row without repeat purchases on
CDNOW (width 1.3 to 2.7) takes 10 to 14 nodes instead of 16 to 24.

The sums are taken relative to the log-integrand at the lower limit, ``g(q0)``: over an interval on which
``g`` changes by at most ``_WINDOW_DROP`` every term lies within ``exp(+-_WINDOW_DROP)`` of it, so no running
maximum is needed. Rows whose integrand could change by more (their rule cuts the interval to its window first)
are left to :func:`log_piecewise_integral`, as are intervals that are empty or not finite.
"""

from __future__ import annotations

import numba
import numpy as np

from bayesclv.formulas._lane_math import FASTMATH, _exp_one, _log_one, lane_log
from bayesclv.formulas._lifetime_integral import _MAX_PIECES, _WINDOW_DROP, log_piecewise_integral
from bayesclv.formulas._ops import gauss_legendre

__all__ = ["LIFETIME_WORK_ROWS", "RULES", "block_layout", "lane_lifetime_integral"]

#: (nodes, widest piece in Q, largest change of the log-integrand over it) of each Gauss-Legendre rule
RULES = ((4, 0.1, 0.25), (6, 0.5, 1.0), (7, 0.75, 2.0), (8, 1.0, 3.0), (9, 1.25, 4.0), (9, 1.5, 3.0), (10, 1.5, 6.0),
         (10, 2.0, 2.5), (11, 2.0, 6.0), (11, 2.5, 3.0), (12, 2.25, 6.0), (12, 3.0, 2.0), (14, 3.0, 6.0))
_SIZES = np.array([n for n, _, _ in RULES], dtype=np.int64)
_WIDTHS = np.array([w for _, w, _ in RULES])
_CHANGES = np.array([c for _, _, c in RULES])
_NODES, _WEIGHTS = np.zeros((len(RULES), _SIZES.max())), np.zeros((len(RULES), _SIZES.max()))
for _j, _n in enumerate(_SIZES):
    _NODES[_j, :_n], _WEIGHTS[_j, :_n] = gauss_legendre(int(_n))
LIFETIME_WORK_ROWS = 15  # rows of the work array of lane_lifetime_integral


@numba.njit(cache=True, nogil=True, error_model="numpy")
def block_layout(width, change):  # pragma: no cover - compiled
    """``(pieces, rule)`` with the fewest nodes in all (pieces x the rule's nodes) such that an interval
    ``width`` wide over which the log-integrand changes by ``change`` (a block's largest of each), cut into
    equal pieces, has every piece within the rule's bounds (:data:`RULES`)."""
    best, best_pieces, best_rule = np.inf, 1, _SIZES.size - 1
    pieces = 1
    while pieces <= _MAX_PIECES and pieces * _SIZES[0] < best:
        for j in range(_SIZES.size):
            if width <= pieces * _WIDTHS[j] and change <= pieces * _CHANGES[j] and pieces * _SIZES[j] < best:
                best, best_pieces, best_rule = pieces * _SIZES[j], pieces, j
        pieces += 1
    if best == np.inf:  # not finite: the most pieces of the largest rule (such rows are redone row by row)
        return _MAX_PIECES, _SIZES.size - 1
    return best_pieces, best_rule


# contractions (FASTMATH): the node loops' sums and products become fused multiply-adds, and the inlined lane
# functions keep theirs (without, the inlined loops ran slower than the calls)
@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_lifetime_integral(rho, sigma, ca, cb, e0, e1, q0, q1, n, log_j, d_rho, d_sigma, d_ca, d_cb,
                           work):  # pragma: no cover - compiled
    """``log J`` and its partials in ``rho, sigma, c_alpha, c_beta`` for a block's ``n`` lanes.

    Lane ``l`` integrates ``exp(g(Q))``, ``g(Q) = Q - rho_l log(e^Q + ca_l) - sigma log(e^Q + cb_l)``
    (one of ``ca_l, cb_l`` is 0), from ``q0_l = log(e0_l)`` to ``q1_l = log(e1_l)``; the arguments are
    :func:`log_piecewise_integral`'s, with ``e0, e1`` the limits' ``m + tau`` and ``sigma`` shared by the
    block. Writes ``log_j`` and the partials (``-inf`` and 0 for an empty interval); ``work`` is a
    ``(LIFETIME_WORK_ROWS, >= n)`` float array.
    """
    step, g0, c, change, lc, total, s_la, s_lb, s_ia, s_ib, u, e, la, lb, arg = (
        work[0], work[1], work[2], work[3], work[4], work[5], work[6], work[7], work[8], work[9], work[10],
        work[11], work[12], work[13], work[14])
    widest = steepest = 0.0
    for lane in range(n):
        width = q1[lane] - q0[lane]
        # g' is monotone, so its values at the ends bound the change of g over the interval
        slope0 = 1.0 - rho[lane] * e0[lane] / (e0[lane] + ca[lane]) - sigma * e0[lane] / (e0[lane] + cb[lane])
        slope1 = 1.0 - rho[lane] * e1[lane] / (e1[lane] + ca[lane]) - sigma * e1[lane] / (e1[lane] + cb[lane])
        change[lane] = width * max(abs(slope0), abs(slope1))
        c[lane] = ca[lane] + cb[lane]
        if change[lane] <= _WINDOW_DROP and width > 0.0:
            widest, steepest = max(widest, width), max(steepest, change[lane])
    count, rule = block_layout(widest, steepest)
    nodes, weights = _NODES[rule, :_SIZES[rule]], _WEIGHTS[rule, :_SIZES[rule]]
    for lane in range(n):
        lc[lane] = e0[lane] + c[lane]
    lane_log(lc, s_la, n)
    for lane in range(n):
        la_0 = s_la[lane] if ca[lane] != 0.0 else q0[lane]  # log(e + 0) = Q needs no logarithm
        lb_0 = s_la[lane] if cb[lane] != 0.0 else q0[lane]
        g0[lane] = q0[lane] - rho[lane] * la_0 - sigma * lb_0
        step[lane] = (q1[lane] - q0[lane]) / count
        total[lane] = s_la[lane] = s_lb[lane] = s_ia[lane] = s_ib[lane] = 0.0
    for piece in range(count):
        for k in range(nodes.size):
            node, weight = piece + nodes[k], weights[k]
            # the lane functions' bodies written into the loops (no calls, no fallback loop: e + c is a positive
            # normal double, e >= exp(-708)), each its own short loop as lane_exp's and lane_log's, which vectorise
            for lane in range(n):
                u[lane] = q0[lane] + step[lane] * node
                e[lane] = _exp_one(u[lane])
            for lane in range(n):
                lc[lane] = _log_one(e[lane] + c[lane])
            for lane in range(n):
                la[lane] = lc[lane] if ca[lane] != 0.0 else u[lane]  # log(e + 0) = Q needs no logarithm
                lb[lane] = lc[lane] if cb[lane] != 0.0 else u[lane]
                arg[lane] = u[lane] - rho[lane] * la[lane] - sigma * lb[lane] - g0[lane]
            for lane in range(n):
                lc[lane] = _exp_one(arg[lane])
            for lane in range(n):
                v = weight * lc[lane]
                total[lane] += v
                s_la[lane] += v * la[lane]
                s_lb[lane] += v * lb[lane]
                s_ia[lane] += v / (e[lane] + ca[lane])
                s_ib[lane] += v / (e[lane] + cb[lane])
    lane_log(total, lc, n)
    lane_log(step, arg, n)
    for lane in range(n):
        inv = 1.0 / total[lane]
        log_j[lane] = g0[lane] + arg[lane] + lc[lane]
        d_rho[lane] = -s_la[lane] * inv
        d_sigma[lane] = -s_lb[lane] * inv
        d_ca[lane] = -rho[lane] * s_ia[lane] * inv
        d_cb[lane] = -sigma * s_ib[lane] * inv
    for lane in range(n):
        if not (change[lane] <= _WINDOW_DROP and q1[lane] - q0[lane] > 0.0):
            log_j[lane], d_rho[lane], d_sigma[lane], d_ca[lane], d_cb[lane] = log_piecewise_integral(
                rho[lane], sigma, ca[lane], cb[lane], q0[lane], q1[lane], True)
