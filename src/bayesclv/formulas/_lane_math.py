"""Exponentials and logarithms of whole arrays, written out so that LLVM vectorises them.

numba's ``math.exp`` and ``math.log`` are scalar libm calls (no SVML here), so a loop that calls them runs one
element at a time and nothing around the call vectorises either. These loops use only arithmetic, ``floor``,
selects and integer operations on the bits of the doubles (bit casts, no memory round trip), which LLVM turns
into vector instructions: the covariate kernels (:mod:`bayesclv.formulas._covariate_summed`) take their rows a
block at a time and call them on each block's lanes (one lane's function is inlined into the loop). Relative
error below 1e-15 for every positive normal double (log) and every argument whose exponential is a normal double
(exp); outside those ranges, see each function.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["FASTMATH", "lane_exp", "lane_log", "lane_tanh"]

_LN2_HI = 0.6931471803691238  # ln 2 in two parts: t ln 2 exact in the first for |t| < 2^20
_LN2_LO = 1.9082149292705877e-10
_SQRT2 = 1.4142135623730951
_EXPONENT = 0x7FF0000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
_SMALLEST = 2.2250738585072014e-308  # below: subnormal, the exponent bits no longer scale the mantissa
# contractions (FMA) only: reassociation would undo the two-part reduction, and the non-finite checks must stay
FASTMATH = {"contract", "nsz"}


@intrinsic
def _bits_of(typingctx, value):  # pragma: no cover - compiled
    """The bits of a double as an int64 (a bit cast: no memory round trip, so loops around it vectorise)."""
    if value != types.float64:
        return None
    return types.int64(types.float64), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(64))


@intrinsic
def _double_of(typingctx, value):  # pragma: no cover - compiled
    """The double whose bits are the int64 ``value`` (the inverse of :func:`_bits_of`)."""
    if value != types.int64:
        return None
    return types.float64(types.int64), lambda context, builder, sig, args: builder.bitcast(args[0], ir.DoubleType())


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_one(v):  # pragma: no cover - compiled
    """``exp(v)`` of one lane, inlined into the caller's loop (which it leaves vectorisable).

    Cody-Waite reduction ``v = t ln 2 + u``, ``|u| <= ln 2 / 2``, a degree-12 Taylor polynomial in ``u`` (the
    remainder below ``0.35^13 / 13! = 1.7e-16``) and ``2^t`` assembled in the exponent bits. Arguments are
    clipped to [-708, 709]: below, the result is ``exp(-708)`` (~3e-308) instead of a subnormal or zero; above,
    ``exp(709)``.
    """
    x = min(max(v, -708.0), 709.0)
    t = np.floor(x * 1.4426950408889634 + 0.5)
    u = x - t * _LN2_HI - t * _LN2_LO
    poly = 1.0 + u * (1.0 + u * (0.5 + u * (1.0 / 6 + u * (1.0 / 24 + u * (1.0 / 120 + u * (
        1.0 / 720 + u * (1.0 / 5040 + u * (1.0 / 40320 + u * (1.0 / 362880 + u * (
            1.0 / 3628800 + u * (1.0 / 39916800 + u * (1.0 / 479001600))))))))))))
    return poly * _double_of((np.int64(t) + 1023) << 52)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _log_one(v):  # pragma: no cover - compiled
    """``log(v)`` of one lane for a positive normal double ``v``, inlined like :func:`_exp_one`.

    ``v = m 2^e`` with ``m`` in [sqrt(1/2), sqrt(2)) from the bits, ``log m = 2 atanh(s)``, ``s = (m-1)/(m+1)``
    (``|s| <= 0.172``) by its odd series to ``s^19`` (the rest below ``s^20 / 21 = 2e-17`` relative). Any other
    ``v`` (zero, subnormal, negative, infinite, NaN) gives a meaningless number: :func:`lane_log` passes those
    to ``math.log``.
    """
    bits = _bits_of(v)
    e = ((bits & _EXPONENT) >> 52) - 1023
    mantissa = _double_of((bits & _MANTISSA) | _ONE_BITS)  # in [1, 2)
    high = mantissa > _SQRT2
    m = mantissa * 0.5 if high else mantissa
    f = np.float64(e + 1 if high else e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = 1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 * (1.0 / 11 + s2 * (
        1.0 / 13 + s2 * (1.0 / 15 + s2 * (1.0 / 17 + s2 * (1.0 / 19)))))))))
    return f * _LN2_HI + (f * _LN2_LO + 2.0 * s * series)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _tanh_one(v):  # pragma: no cover - compiled
    """``tanh(v)`` of one lane, inlined like :func:`_exp_one`: ``-expm1(-2|v|) / (2 + expm1(-2|v|))`` with the sign.

    ``expm1`` by :func:`_exp_one`'s reduction and polynomial with its leading 1 dropped (``2^t (p - 1) + 2^t - 1``),
    so it keeps its relative accuracy near zero (``t = 0`` there) and ``tanh`` does too; beyond ``|v| = 354`` the
    argument is clipped and the result is +-1.
    """
    x = max(-2.0 * abs(v), -708.0)
    t = np.floor(x * 1.4426950408889634 + 0.5)
    u = x - t * _LN2_HI - t * _LN2_LO
    tail = u * (1.0 + u * (0.5 + u * (1.0 / 6 + u * (1.0 / 24 + u * (1.0 / 120 + u * (
        1.0 / 720 + u * (1.0 / 5040 + u * (1.0 / 40320 + u * (1.0 / 362880 + u * (
            1.0 / 3628800 + u * (1.0 / 39916800 + u * (1.0 / 479001600))))))))))))
    scale = _double_of((np.int64(t) + 1023) << 52)
    m = scale * tail + (scale - 1.0)  # expm1(x), in (-1, 0]
    magnitude = -m / (2.0 + m)
    return magnitude if v >= 0.0 else -magnitude


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_exp(v, out, n):  # pragma: no cover - compiled
    """``out[k] = exp(v[k])`` for ``k < n`` (:func:`_exp_one`, clipped to [-708, 709]).

    The clip is kept on purpose: a finite value where the exponential leaves the double range lets an optimiser
    that strays there (the MAP fit's L-BFGS) step back; inf/NaN there stopped the covariate BG/NBD's MAP fit on
    the CDNOW sample at a point 0.18 lower in its purchase coefficient (``docs/guide/groups.md``'s example).
    """
    for k in range(n):
        out[k] = _exp_one(v[k])


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_log(v, out, n):  # pragma: no cover - compiled
    """``out[k] = log(v[k])`` for ``k < n`` (:func:`_log_one`); values that are not positive normal doubles
    (zero, subnormal, negative, infinite, NaN) are passed to ``math.log`` in a second loop, so they keep
    libm's answer."""
    for k in range(n):
        out[k] = _log_one(v[k])
    for k in range(n):
        if not _SMALLEST <= v[k] < np.inf:
            out[k] = np.log(v[k])


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def lane_tanh(v, out, n):  # pragma: no cover - compiled
    """``out[k] = tanh(v[k])`` for ``k < n`` (:func:`_tanh_one`; finite ``v``)."""
    for k in range(n):
        out[k] = _tanh_one(v[k])
