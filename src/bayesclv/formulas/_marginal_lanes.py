"""A product rule's factored node weights for many tilts at once, each step one contiguous loop over vector lanes.

The factored sum of a row (:func:`~bayesclv.formulas._marginal_terms.factor_exponents`) has loops over the
n = 8-12 nodes of one axis: too short to vectorise. Where the same steps repeat for many tilts, the tilts go
in lanes with the lane innermost: the posterior draws of one row for the predictions (:data:`LANES` at a
time, :func:`~bayesclv.formulas._marginal_draws.lane_node_expectations`), the rows of one population value
for the fit's gradient (:func:`lane_moments`, used by :func:`~bayesclv.formulas._marginal.marginal_loglik`).
:func:`lane_factors` writes the factors' exponentials of every lane; the callers sum them against their
node masses. Each lane loop has a fixed cost per node (array views, numba's alias checks), so more lanes
amortise it better (``benchmarks/results/hierarchical_marginal_speed.md``, part 6).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from bayesclv.formulas._marginal_terms import _FACTORED_LIMIT, FASTMATH, exp_nonpositive

__all__ = ["LANES", "ROW_LANES", "as_lanes", "cross_rows", "lane_factors", "lane_moments", "lane_rows"]

LANES = 32  # draws per block of the predictions
ROW_LANES = 64  # rows per block of the fit's gradient


def as_lanes(node_mass):
    """The rows' node masses ``(n, K)`` in the fit's lane layout ``(ceil(n / ROW_LANES), K, ROW_LANES)``:
    block ``j`` holds rows ``j ROW_LANES ...`` node-major, rows past the last repeating it. An array
    already in that layout (3-D) is returned as it is; no nodes (``K = 0``) give ``(0, 0, ROW_LANES)``.

    The fit's tables hold this layout (built once per rule, :meth:`~bayesclv.models.marginal.MarginalGraph.adapt`):
    gathered in the kernel for every gradient it cost a third of the kernel.
    """
    node_mass = np.asarray(node_mass, dtype=float)
    if node_mass.ndim == 3:
        return node_mass
    n, k = node_mass.shape
    if n == 0 or k == 0:
        return np.zeros((0, 0, ROW_LANES))
    blocks = -(-n // ROW_LANES)
    index = np.minimum(np.arange(blocks * ROW_LANES), n - 1)
    return np.ascontiguousarray(node_mass[index].reshape(blocks, ROW_LANES, k).transpose(0, 2, 1))


@overload(as_lanes, jit_options={"cache": True, "nogil": True})
def _as_lanes_compiled(node_mass):  # pragma: no cover - compiled
    if node_mass.ndim == 3:
        return lambda node_mass: node_mass

    def gather(node_mass):
        n, k = node_mass.shape
        if n == 0 or k == 0:
            return np.zeros((0, 0, ROW_LANES))
        blocks = (n + ROW_LANES - 1) // ROW_LANES
        out = np.empty((blocks, k, ROW_LANES))
        for j in range(blocks):
            for node in range(k):
                for lane in range(ROW_LANES):
                    out[j, node, lane] = node_mass[min(j * ROW_LANES + lane, n - 1), node]
        return out

    return gather


@numba.njit(cache=True, nogil=True)
def lane_rows(side):  # pragma: no cover - compiled
    """Rows (each as long as the lanes) of :func:`lane_factors`' work array: ``(quarter, floor, mirror, total)``:
    log f0 (``side``), log f1 (``side``), the cross factor's quarter (its ``h (h + 1) / 2`` distinct values,
    ``h = (side + 1) // 2``: ``x_a x_b = x_b x_a``), the floor ``exp(-2 largest)`` (1), exponentiated in one
    call; then the quarter's mirror values (as many)."""
    h = (side + 1) // 2
    pairs = h * (h + 1) // 2
    quarter = 2 * side
    return quarter, quarter + pairs, quarter + pairs + 1, quarter + 2 * pairs + 1


@numba.njit(cache=True, nogil=True)
def _pair(a, b, h):  # pragma: no cover - compiled
    """Position of the unordered pair ``{a, b}`` (``a, b < h``) among :func:`lane_factors`' quarter values."""
    lo, hi = min(a, b), max(a, b)
    return lo * h - lo * (lo - 1) // 2 + hi - lo


@numba.njit(cache=True, nogil=True)
def cross_rows(side, lanes):  # pragma: no cover - compiled
    """Node ``k = a side + b``'s offset of its cross-factor row in :func:`lane_factors`' work array: the
    quarter's value where ``a`` and ``b`` lie in the same half, its mirror value otherwise."""
    h = (side + 1) // 2
    quarter, _, mirror, _ = lane_rows(side)
    rows = np.empty(side * side, dtype=np.int64)
    for a in range(side):
        ia, low_a = (a, True) if a < h else (side - 1 - a, False)
        for b in range(side):
            ib, low_b = (b, True) if b < h else (side - 1 - b, False)
            rows[a * side + b] = ((quarter if low_a == low_b else mirror) + _pair(ia, ib, h)) * lanes
    return rows


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_factors(nodes, tilts, factored, work, bits, top0, top1, largest):  # pragma: no cover - compiled
    """The factors of the tilted node weights ``exp(-t . S(u_k))`` of every lane, into ``work``.

    ``tilts`` ``(5, lanes)``: each lane's ``(b0, b1, A00, A01, A11)``. A lane whose cross term is beyond
    the factored range gets ``factored[l] = False`` and a zero cross term (its numbers stay finite; the
    caller sums it node by node). Writes ``exp(log f - max)`` of both axes, the quarter's cross factor
    ``exp(-A01 x_a x_b - largest)`` and its mirror values ``exp(+A01 x_a x_b - largest)`` to the rows of
    :func:`lane_rows`, each factor's shift to ``top0``, ``top1`` and ``largest``: the weight of node
    ``(a, b)`` is ``f0[a] f1[b] cross[a, b] exp(top0 + top1 + largest)``.
    """
    side, lanes = nodes.size, tilts.shape[1]
    h = (side + 1) // 2
    quarter, floor_row, mirror, _ = lane_rows(side)
    span = nodes[side - 1] * nodes[side - 1]
    b0, b1, a00, a01, a11 = tilts[0], tilts[1], tilts[2], tilts[3], tilts[4]
    for l in range(lanes):
        factored[l] = abs(a01[l]) * span < _FACTORED_LIMIT
        if not factored[l]:
            a01[l] = 0.0
        largest[l] = abs(a01[l]) * span
        top0[l] = top1[l] = -np.inf
    # rows as views: an index computed from offsets takes numba's negative-index check, which makes gathers
    # of the lane loops
    for a in range(side):
        u = nodes[a]
        f0, f1 = work[a * lanes:(a + 1) * lanes], work[(side + a) * lanes:(side + a + 1) * lanes]
        for l in range(lanes):
            e0 = -(b0[l] * u + 0.5 * a00[l] * u * u)
            e1 = -(b1[l] * u + 0.5 * a11[l] * u * u)
            f0[l], f1[l] = e0, e1
            top0[l], top1[l] = max(top0[l], e0), max(top1[l], e1)
    for a in range(side):
        f0, f1 = work[a * lanes:(a + 1) * lanes], work[(side + a) * lanes:(side + a + 1) * lanes]
        for l in range(lanes):
            f0[l] -= top0[l]
            f1[l] -= top1[l]
    for a in range(h):
        for b in range(a, h):
            xx, row = nodes[a] * nodes[b], quarter + _pair(a, b, h)
            cross = work[row * lanes:(row + 1) * lanes]
            for l in range(lanes):
                cross[l] = -a01[l] * xx - largest[l]
    floor = work[floor_row * lanes:(floor_row + 1) * lanes]
    for l in range(lanes):
        floor[l] = -2.0 * largest[l]
    exp_nonpositive(work[:mirror * lanes], 0.0, bits)
    for j in range(floor_row - quarter):  # exp(+A01 x_a x_b - largest): the other two quarters
        value = work[(quarter + j) * lanes:(quarter + j + 1) * lanes]
        back = work[(mirror + j) * lanes:(mirror + j + 1) * lanes]
        for l in range(lanes):
            back[l] = floor[l] / value[l]


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_moments(nodes, mass_lanes, work, rows, moments, rowsum, spread, spread2):  # pragma: no cover - compiled
    """Each lane's ``sum_k m_k f0[a] f1[b] cross[a, b]`` and its unnormalised moments of ``u``.

    ``mass_lanes`` ``(K, lanes)``: each lane's node masses, node-major; ``work`` and ``rows`` from
    :func:`lane_factors` and :func:`cross_rows`; ``rowsum``, ``spread``, ``spread2``: scratch of one lane row each
    (the caller lays them out, docs/ARCHITECTURE.md "A seed repeats a fit bit for bit"). Writes
    ``(sum, E[u0], E[u1], E[u0^2], E[u0 u1], E[u1^2])`` (unnormalised) of lane ``l`` to ``moments[:, l]``:
    divided by the sum, the moments of that row's normalised node weights. Along ``b`` a node's terms are
    summed per row ``a`` (and times ``u_b``, ``u_b^2``), then times ``f0[a]``: five flops per node and lane.
    """
    side, lanes = nodes.size, mass_lanes.shape[1]
    for j in range(6):
        for l in range(lanes):
            moments[j, l] = 0.0
    # per-row views: an index computed from offsets would take numba's negative-index check, which turns
    # the lane loops into gathers
    total, e0, e1, e00, e01, e11 = moments[0], moments[1], moments[2], moments[3], moments[4], moments[5]
    for a in range(side):
        for l in range(lanes):
            rowsum[l] = spread[l] = spread2[l] = 0.0
        for b in range(side):
            k = a * side + b
            u = nodes[b]
            uu = u * u
            mass, f1 = mass_lanes[k], work[(side + b) * lanes:(side + b + 1) * lanes]
            cross = work[rows[k]:rows[k] + lanes]
            for l in range(lanes):
                v = mass[l] * f1[l] * cross[l]
                rowsum[l] += v
                spread[l] += v * u
                spread2[l] += v * uu
        u = nodes[a]
        f0 = work[a * lanes:(a + 1) * lanes]
        for l in range(lanes):
            r, sp = rowsum[l] * f0[l], spread[l] * f0[l]
            total[l] += r
            e0[l] += r * u
            e1[l] += sp
            e00[l] += r * u * u
            e01[l] += sp * u
            e11[l] += spread2[l] * f0[l]
