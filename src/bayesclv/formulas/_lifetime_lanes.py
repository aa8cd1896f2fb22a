"""The Pareto/NBD lifetime integral of a block of rows at once, each row in a vector lane.

The covariate Pareto/NBD kernel (:func:`bayesclv.formulas._covariate_summed.paretonbd_kernel`) needs one
integral ``J = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` per row, each with its own scales.
Row by row (:func:`bayesclv.formulas._lifetime_integral.log_piecewise_integral`) every node costs scalar libm
calls and a data-dependent loop, which LLVM cannot vectorise. Here a block's rows share one node layout: each
row's interval (in ``Q = log(m + tau)``, ``m`` the smaller scale) is cut into the same number of equal pieces,
the largest number any row of the block needs under the piecewise rule's bounds (so every row's pieces are at
most as wide and as steep as its own rule allows: the same 8-node rule, never a coarser one), and each node is
one loop over the lanes with :mod:`bayesclv.formulas._lane_math`'s exponential and logarithm. A block whose
rows all fit the short rule (narrow and nearly flat) takes its 4 nodes instead.

The sums are taken relative to the log-integrand at the lower limit, ``g(q0)``: over an interval on which
``g`` changes by at most ``_WINDOW_DROP`` every term lies within ``exp(+-_WINDOW_DROP)`` of it, so no running
maximum is needed. Rows whose integrand could change by more (their rule cuts the interval to its window first)
are left to :func:`log_piecewise_integral`, as are intervals that are empty or not finite.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._lane_math import lane_exp, lane_log
from bayesclv.formulas._lifetime_integral import (
    _MAX_PIECES,
    _PIECE_SLOPE,
    _PIECE_WIDTH,
    _SHORT_SLOPE,
    _SHORT_WIDTH,
    _WINDOW_DROP,
    log_piecewise_integral,
)
from bayesclv.formulas._ops import gauss_legendre

__all__ = ["LIFETIME_WORK_ROWS", "lane_lifetime_integral"]

_NODES, _WEIGHTS = gauss_legendre(8)
_SHORT_NODES, _SHORT_WEIGHTS = gauss_legendre(4)
LIFETIME_WORK_ROWS = 15  # rows of the work array of lane_lifetime_integral


@numba.njit(cache=True, nogil=True, error_model="numpy")
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
    pieces, short = 1.0, True
    for lane in range(n):
        width = q1[lane] - q0[lane]
        # g' is monotone, so its values at the ends bound the change of g over the interval
        slope0 = 1.0 - rho[lane] * e0[lane] / (e0[lane] + ca[lane]) - sigma * e0[lane] / (e0[lane] + cb[lane])
        slope1 = 1.0 - rho[lane] * e1[lane] / (e1[lane] + ca[lane]) - sigma * e1[lane] / (e1[lane] + cb[lane])
        change[lane] = width * max(abs(slope0), abs(slope1))
        c[lane] = ca[lane] + cb[lane]
        if change[lane] <= _WINDOW_DROP and width > 0.0:
            pieces = max(pieces, max(change[lane] / _PIECE_SLOPE, width / _PIECE_WIDTH))
            short = short and width <= _SHORT_WIDTH and change[lane] <= _SHORT_SLOPE
    if short:
        nodes, weights, count = _SHORT_NODES, _SHORT_WEIGHTS, 1
    else:
        nodes, weights = _NODES, _WEIGHTS
        count = int(min(math.ceil(pieces), _MAX_PIECES))
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
            for lane in range(n):
                u[lane] = q0[lane] + step[lane] * node
            lane_exp(u, e, n)
            for lane in range(n):
                arg[lane] = e[lane] + c[lane]  # a positive normal double: e >= exp(-708)
            lane_log(arg, lc, n)
            for lane in range(n):
                la[lane] = lc[lane] if ca[lane] != 0.0 else u[lane]  # log(e + 0) = Q needs no logarithm
                lb[lane] = lc[lane] if cb[lane] != 0.0 else u[lane]
                arg[lane] = u[lane] - rho[lane] * la[lane] - sigma * lb[lane] - g0[lane]
            lane_exp(arg, lc, n)
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
