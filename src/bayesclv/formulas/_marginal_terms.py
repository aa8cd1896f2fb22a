"""One row's node sums of the marginal hierarchical likelihood (:mod:`bayesclv.formulas._marginal`).

A row's rule in its fixed frame gives, at a population value, the tilted node
terms ``a_k - t . S(u_k)`` (:func:`row_log_terms`, :func:`row_tilt`); their
``log sum exp`` and the moments of ``S`` are the row's marginal log-likelihood
and its gradient. This module holds those per-row pieces: a vectorised
exponential, the bound that stabilises the sum, the factored sum of a product
rule (:func:`factor_exponents`, :func:`spread_cross`; :func:`factors` for one row, used by the
pointwise log-likelihood; many rows or draws at once in :mod:`~bayesclv.formulas._marginal_lanes`),
the second-order error correction (:func:`tilt_correction`) and the population's normal constants.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["FASTMATH", "exp_nonpositive", "factor_exponents", "factor_width", "factors", "node_by_node",
           "normal_constants", "row_log_terms", "row_mean", "row_tilt", "shift_bound", "spread_cross", "tilt_correction"]

# fast-math lets the node loops vectorise (reductions reordered); their inputs are finite by construction
FASTMATH = {"reassoc", "contract", "arcp", "nsz", "nnan", "ninf"}
_LOG_2PI = math.log(2.0 * math.pi)


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def exp_nonpositive(s, top, bits):  # pragma: no cover - compiled
    """``s[k] <- exp(s[k] - top)`` for ``s[k] <= top``, in place; returns the sum.

    Written out (Cody-Waite reduction, degree-11 Taylor polynomial, the power of
    two assembled in the exponent bits; relative error < 1e-14) because numba's
    ``math.exp`` is a scalar libm call that does not vectorise: this loop runs
    about 15x faster, and the exponentials are most of a gradient's cost.
    """
    scale = bits.view(np.float64)
    n = s.size
    for k in range(n):
        v = max(s[k] - top, -700.0)
        t = math.floor(v * 1.4426950408889634 + 0.5)
        r = v - t * 0.6931471803691238 - t * 1.9082149292705877e-10
        s[k] = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
            1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
                1.0 / 3628800 + r / 39916800))))))))))
        bits[k] = (np.int64(t) + 1023) << 52
    total = 0.0
    for k in range(n):
        s[k] *= scale[k]
        total += s[k]
    return total


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def row_log_terms(a_row, powers, d0, d1, r00, r10, r11, p00, p01, p11, s, tilt):  # pragma: no cover - compiled
    """``s[k] = a_ik - t . S(u_k)``, the node terms without ``d' P d / 2``; returns ``d' P d``.

    ``delta_k = d + R u_k`` gives ``delta_k' P delta_k = d' P d + 2 t . S(u_k)`` with the
    tilt ``t = (R' P d, R' P R)`` written into ``tilt`` as ``(b0, b1, A00, A01, A11)``
    and ``S(u) = (u0, u1, u0^2/2, u0 u1, u1^2/2)``.
    """
    dpd = row_tilt(d0, d1, r00, r10, r11, p00, p01, p11, tilt)
    b0, b1, h00, a01, h11 = tilt[0], tilt[1], 0.5 * tilt[2], tilt[3], 0.5 * tilt[4]
    for k in range(s.size):
        s[k] = a_row[k] - (b0 * powers[0, k] + b1 * powers[1, k] + h00 * powers[2, k] + a01 * powers[3, k]
                           + h11 * powers[4, k])
    return dpd


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def row_tilt(d0, d1, r00, r10, r11, p00, p01, p11, tilt):  # pragma: no cover - compiled
    """The row's tilt ``(b0, b1, A00, A01, A11)`` into ``tilt``: ``b = R' P d``, ``A = R' P R``; returns ``d' P d``."""
    pd0, pd1 = p00 * d0 + p01 * d1, p01 * d0 + p11 * d1
    pr00, pr10 = p00 * r00 + p01 * r10, p01 * r00 + p11 * r10  # first column of P R
    tilt[0], tilt[1] = r00 * pd0 + r10 * pd1, r11 * pd1
    tilt[2], tilt[3], tilt[4] = r00 * pr00 + r10 * pr10, r11 * pr10, r11 * r11 * p11
    return d0 * pd0 + d1 * pd1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def shift_bound(tilt, top_term):  # pragma: no cover - compiled
    """An upper bound of ``max_k s[k]``: ``max_k a_k + max_u (-b . u - u' A u / 2) = max_k a_k + b' A^-1 b / 2``.

    A running maximum over the nodes is a chain of dependent compares that costs
    more than the rest of the row's terms; the bound is exact enough (within a
    few tens of nats of the maximum) for a stable ``log sum exp``.
    """
    b0, b1, a00, a01, a11 = tilt[0], tilt[1], tilt[2], tilt[3], tilt[4]
    det = a00 * a11 - a01 * a01
    if not det > 0.0:
        return np.inf
    return top_term + 0.5 * (a11 * b0 * b0 - 2.0 * a01 * b0 * b1 + a00 * b1 * b1) / det


_FACTORED_LIMIT = 300.0  # nats: largest cross-term exponent the factored row takes (exp(-2 limit) stays normal)


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def factor_exponents(nodes, tilt, out):  # pragma: no cover - compiled
    """The exponents of a product rule's tilted node weights, split into factors: ``exp(-t . S(u_k))``
    ``= f0[i] f1[j] cross[i, j] exp(shift)``.

    With the nodes on a grid ``u_k = (x_i, x_j)``, ``k = i n + j``, the exponent splits into
    ``-(b0 x_i + A00 x_i^2 / 2) - (b1 x_j + A11 x_j^2 / 2) - A01 x_i x_j``: two vectors of
    ``n`` exponentials and a cross factor whose ``n^2`` values follow from a quarter
    of them (the nodes are symmetric: ``x_{n-1-j} = -x_j``; :func:`spread_cross`).
    Writes ``log f0`` to ``out[:n]``, ``log f1`` to ``out[n:2n]`` and the quarter's
    ``h^2`` cross exponents (``h = (n + 1) // 2``) to ``out[2n:]``, each less its
    maximum (so at most 0: the exponentials can be taken for many rows in one
    :func:`exp_nonpositive` call). Returns ``(available, shift)``: not available
    where the cross term is too large for the quarter's reciprocals (the row is
    then summed node by node).
    """
    n = nodes.size
    h = (n + 1) // 2
    b0, b1, a00, a01, a11 = tilt[0], tilt[1], tilt[2], tilt[3], tilt[4]
    largest = abs(a01) * nodes[n - 1] * nodes[n - 1]
    if not largest < _FACTORED_LIMIT:
        return False, 0.0
    top0 = top1 = -np.inf
    for i in range(n):
        u = nodes[i]
        out[i] = -(b0 * u + 0.5 * a00 * u * u)
        out[n + i] = -(b1 * u + 0.5 * a11 * u * u)
        top0 = max(top0, out[i])
        top1 = max(top1, out[n + i])
    for i in range(n):
        out[i] -= top0
        out[n + i] -= top1
    base = 2 * n
    for i in range(h):
        for j in range(h):
            out[base + i * h + j] = -a01 * nodes[i] * nodes[j] - largest
    return True, top0 + top1 + largest


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def spread_cross(quarter, n, largest, cross):  # pragma: no cover - compiled
    """The ``n x n`` cross factor ``exp(-A01 x_i x_j - largest)`` from the exponentials of its quarter
    (:func:`factor_exponents`): the other three quarters are the same values or their reciprocals
    times ``exp(-2 largest)``."""
    h = (n + 1) // 2
    floor = math.exp(-2.0 * largest)
    for i in range(h):
        for j in range(h):
            v = quarter[i * h + j]
            w = floor / v  # exp(+A01 x_i x_j - largest)
            cross[i * n + j] = v
            cross[i * n + n - 1 - j] = w
            cross[(n - 1 - i) * n + j] = w
            cross[(n - 1 - i) * n + n - 1 - j] = v


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def node_by_node(a_row, powers, d0, d1, r00, r10, r11, p00, p01, p11, top_term, s, tilt, bits):  # pragma: no cover - compiled
    """One row's node-by-node sum: ``s[k] <- exp(a_ik - t . S(u_k) - top)``; returns ``(d' P d, top, sum)``.

    ``top`` is :func:`shift_bound`'s bound, or the maximum itself where that bound lies so far above it
    that the sum underflows (a row far from its reference)."""
    dpd = row_log_terms(a_row, powers, d0, d1, r00, r10, r11, p00, p01, p11, s, tilt)
    top = shift_bound(tilt, top_term)
    mass = exp_nonpositive(s, top, bits)
    if not mass > 1e-250:
        row_log_terms(a_row, powers, d0, d1, r00, r10, r11, p00, p01, p11, s, tilt)  # s was overwritten
        top = -np.inf
        for k in range(s.size):
            top = max(top, s[k])
        mass = exp_nonpositive(s, top, bits)
    return dpd, top, mass


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def factors(nodes, tilt, f0, f1, cross, bits):  # pragma: no cover - compiled
    """The factors of :func:`factor_exponents` for one row: ``f0``, ``f1`` (``n`` each, at most 1) and the
    ``n x n`` ``cross`` (``cross[n * n:]`` is scratch for the exponents). Returns ``(available, shift)``."""
    n = nodes.size
    scratch = cross[n * n:]
    available, shift = factor_exponents(nodes, tilt, scratch)
    if not available:
        return False, 0.0
    exp_nonpositive(scratch, 0.0, bits)
    for i in range(n):
        f0[i], f1[i] = scratch[i], scratch[n + i]
    spread_cross(scratch[2 * n:], n, abs(tilt[3]) * nodes[n - 1] * nodes[n - 1], cross)
    return True, shift


@numba.njit(cache=True, nogil=True)
def factor_width(n):  # pragma: no cover - compiled
    """Length of :func:`factor_exponents`' output for ``n`` nodes per dimension."""
    return 2 * n + ((n + 1) // 2) ** 2


_CORRECTION_CAP = 0.1  # nats: largest change of a row's error estimate (the errors near the reference are ~1e-3)


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def tilt_correction(tilt, row, derivative, shift):  # pragma: no cover - compiled
    """The fixed rule's error at ``tilt`` by its second-order Taylor expansion around the reference tilt.

    ``row`` holds the error at the reference tilt, the reference tilt, and the
    error's gradient and Hessian there (:func:`rule_corrections`). Returns the
    error and writes its derivative in the tilt into ``derivative`` (``shift``: scratch of size 5).
    """
    for j in range(5):
        shift[j] = tilt[j] - row[1 + j]
    change = 0.0
    for j in range(5):
        slope = row[6 + j]
        for l in range(5):
            slope += row[11 + 5 * j + l] * shift[l]
        derivative[j] = slope
        change += (row[6 + j] + 0.5 * (slope - row[6 + j])) * shift[j]
    # the expansion holds near the reference; far from it (early warm-up) its quadratic term could
    # grow without bound, so the change is tapered smoothly to at most _CORRECTION_CAP nats
    ratio = change / _CORRECTION_CAP
    taper = 1.0 - math.tanh(ratio) ** 2
    for j in range(5):
        derivative[j] *= taper
    return row[0] + _CORRECTION_CAP * math.tanh(ratio)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def normal_constants(sigma, rho):  # pragma: no cover - compiled
    s0, s1 = sigma[0], sigma[1]
    one = 1.0 - rho * rho
    p00, p01, p11 = 1.0 / (one * s0 * s0), -rho / (one * s0 * s1), 1.0 / (one * s1 * s1)
    return p00, p01, p11, -_LOG_2PI - math.log(s0) - math.log(s1) - 0.5 * math.log(one)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def row_mean(coefficients, offset, X, group, i):  # pragma: no cover - compiled
    m0, m1 = offset[group[i], 0], offset[group[i], 1]
    for p in range(X.shape[1]):
        m0 += X[i, p] * coefficients[p, 0]
        m1 += X[i, p] * coefficients[p, 1]
    return m0, m1
