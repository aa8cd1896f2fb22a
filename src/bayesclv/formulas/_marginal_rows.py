"""Each row's value and moments of the marginal hierarchical likelihood from its node sums, a block of rows at a time.

After the node sums of a block of rows (:func:`~bayesclv.formulas._marginal_lanes.lane_moments`) the rest of
a row is a few dozen flops: normalise the moments, ``log`` of the sum, the rule's error correction (a
second-order Taylor expansion in the tilt, tapered by ``tanh``) and the moments of ``delta = theta - m``.
One row at a time those steps were about half the gradient's cost (two libm calls per row, 5 x 5 loops
that do not vectorise); :func:`lane_row_values` takes them for every row of the block at once, the row in
the vector lane, with the vectorisable ``log`` and ``tanh`` of :mod:`~bayesclv.formulas._lane_math`.
:func:`row_by_nodes` is the same for one row summed node by node (no product rule, or a row beyond the
factored range), with libm. Both write a row's ``(value, E[delta], E[delta delta'])`` to one column of
``out``; :func:`~bayesclv.formulas._marginal.marginal_loglik` sums the columns with the rows' weights.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._lane_math import FASTMATH as LANE_FASTMATH
from bayesclv.formulas._lane_math import _log_one, _tanh_one
from bayesclv.formulas._marginal_terms import _CORRECTION_CAP, FASTMATH, node_by_node, tilt_correction

__all__ = ["lane_row_values", "row_by_nodes", "spaced"]

_MASS_FLOOR = 1e-250  # a smaller node sum is summed again node by node (node_by_node's own bound)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def spaced(buffer, start, size):  # pragma: no cover - compiled
    """``buffer[start:start + size]`` and the offset past it and a gap of ``size`` unused slots: scratch of
    vectorised loops in one buffer, so that their run-time overlap checks see the same layout on every call
    (docs/ARCHITECTURE.md, "A seed repeats a fit bit for bit")."""
    return buffer[start:start + size], start + 2 * size


@numba.njit(inline="always", error_model="numpy")
def _delta_moments(d0, d1, r00, r10, r11, e0, e1, e00, e01, e11):  # pragma: no cover - compiled
    """``E[delta]`` and ``E[delta delta']`` of ``delta = d + R u`` from the normalised moments of ``u``."""
    ru0, ru1 = r00 * e0, r10 * e0 + r11 * e1
    q00 = r00 * r00 * e00
    q01 = r00 * (r10 * e00 + r11 * e01)
    q11 = r10 * r10 * e00 + 2.0 * r10 * r11 * e01 + r11 * r11 * e11
    return (d0 + ru0, d1 + ru1, d0 * d0 + 2.0 * d0 * ru0 + q00, d0 * d1 + d0 * ru1 + d1 * ru0 + q01,
            d1 * d1 + 2.0 * d1 * ru1 + q11)


@numba.njit(cache=True, nogil=True, fastmath=LANE_FASTMATH, error_model="numpy")
def lane_row_values(log_norm, moments, available, dpds, tops, frames, table, scratch, out,
                    needs):  # pragma: no cover - compiled
    """Every lane's row value and moments of ``delta`` from its factored node sums, into ``out`` ``(6, lanes)``.

    ``moments`` ``(6, lanes)``: :func:`~bayesclv.formulas._marginal_lanes.lane_moments`' sums (normalised in
    place); ``dpds``: ``d' P d``; ``tops``: the sums' shifts; ``frames`` ``(5, lanes)``: ``(d0, d1, r00, r10,
    r11)``; ``table`` ``(36, lanes)``: the rows' corrections
    (:func:`~bayesclv.formulas._marginal_rule.rule_corrections`, a column per lane), no rows for the
    uncorrected rule, with ``scratch`` ``(11, lanes)``: the tilts in rows 0-4 (as
    :func:`~bayesclv.formulas._marginal_lanes.lane_factors` took them), then room for the correction's slopes.
    ``needs[l]``: the lane's row is to be summed node by node (:func:`row_by_nodes`; its column of ``out`` is
    then meaningless). Contractions only (the lane's own arithmetic, no sums
    across lanes): the ``log`` and ``tanh`` inlined here keep their two-part reductions.
    """
    lanes = out.shape[1]
    total = moments[0]
    value = out[0]
    for l in range(lanes):
        ok = available[l] and total[l] > _MASS_FLOOR
        needs[l] = not ok
        mass = total[l] if ok else 1.0
        value[l] = log_norm - 0.5 * dpds[l] + tops[l] + _log_one(mass)
        total[l] = 1.0 / mass
    for j in range(1, 6):
        e = moments[j]
        for l in range(lanes):
            e[l] *= total[l]
    if table.shape[0] > 0:
        _lane_correction(table, scratch, moments, value)
    d0, d1, r00, r10, r11 = frames[0], frames[1], frames[2], frames[3], frames[4]
    e0, e1, e00, e01, e11 = moments[1], moments[2], moments[3], moments[4], moments[5]
    f0, f1, s00, s01, s11 = out[1], out[2], out[3], out[4], out[5]
    for l in range(lanes):
        f0[l], f1[l], s00[l], s01[l], s11[l] = _delta_moments(d0[l], d1[l], r00[l], r10[l], r11[l], e0[l], e1[l],
                                                              e00[l], e01[l], e11[l])


@numba.njit(inline="always", fastmath=LANE_FASTMATH, error_model="numpy")
def _lane_correction(table, scratch, moments, value):  # pragma: no cover - compiled
    """:func:`~bayesclv.formulas._marginal_terms.tilt_correction` of every lane: the tilt's shift from the
    reference (``scratch[0:5]``, in place of the tilts), the expansion's slopes (``scratch[5:10]``) and
    change (``scratch[10]``); the error is taken from ``value``, its derivative added to the moments."""
    lanes = value.size
    for j in range(5):
        shift, reference = scratch[j], table[1 + j]
        for l in range(lanes):
            shift[l] -= reference[l]
    change = scratch[10]
    for l in range(lanes):
        change[l] = 0.0
    for j in range(5):
        slope, first, shift = scratch[5 + j], table[6 + j], scratch[j]
        row = 11 + 5 * j  # the Hessian's row j
        h0, h1, h2, h3, h4 = table[row], table[row + 1], table[row + 2], table[row + 3], table[row + 4]
        s0, s1, s2, s3, s4 = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
        for l in range(lanes):
            s = first[l] + h0[l] * s0[l] + h1[l] * s1[l] + h2[l] * s2[l] + h3[l] * s3[l] + h4[l] * s4[l]
            slope[l] = s
            change[l] += (first[l] + 0.5 * (s - first[l])) * shift[l]
    # as tilt_correction: the change tapered smoothly to at most _CORRECTION_CAP nats
    error = table[0]
    for l in range(lanes):
        tanh = _tanh_one(change[l] / _CORRECTION_CAP)
        change[l] = 1.0 - tanh * tanh
        value[l] -= error[l] + _CORRECTION_CAP * tanh
    for j in range(5):  # d(value)/d(tilt) = -(E[u0], E[u1], E[u0^2]/2, E[u0 u1], E[u1^2]/2) - derivative
        slope, e, factor = scratch[5 + j], moments[1 + j], 2.0 if j == 2 or j == 4 else 1.0
        for l in range(lanes):
            e[l] += factor * slope[l] * change[l]


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def row_by_nodes(a_row, powers, frame, p00, p01, p11, top_term, log_norm, correction_row, s, tilt, bits, derivative,
                 shift, out, j):  # pragma: no cover - compiled
    """One row summed node by node (:func:`~bayesclv.formulas._marginal_terms.node_by_node`), its value and
    moments of ``delta`` into ``out[:, j]`` as :func:`lane_row_values`; ``frame``: ``(d0, d1, r00, r10, r11)``,
    ``correction_row`` empty for the uncorrected rule."""
    d0, d1, r00, r10, r11 = frame[0], frame[1], frame[2], frame[3], frame[4]
    dpd, top, mass = node_by_node(a_row, powers, d0, d1, r00, r10, r11, p00, p01, p11, top_term, s, tilt, bits)
    e0 = e1 = e00 = e01 = e11 = 0.0
    for k in range(s.size):
        e0 += s[k] * powers[0, k]
        e1 += s[k] * powers[1, k]
        e00 += s[k] * powers[2, k]
        e01 += s[k] * powers[3, k]
        e11 += s[k] * powers[4, k]
    e0, e1, e00, e01, e11 = e0 / mass, e1 / mass, e00 / mass, e01 / mass, e11 / mass
    value = log_norm - 0.5 * dpd + top + math.log(mass)
    if correction_row.size > 0:
        value -= tilt_correction(tilt, correction_row, derivative, shift)
        e0 += derivative[0]
        e1 += derivative[1]
        e00 += 2.0 * derivative[2]
        e01 += derivative[3]
        e11 += 2.0 * derivative[4]
    out[0, j] = value
    out[1, j], out[2, j], out[3, j], out[4, j], out[5, j] = _delta_moments(d0, d1, r00, r10, r11, e0, e1, e00, e01,
                                                                           e11)
