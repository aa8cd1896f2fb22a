"""Exponentials and logarithms of whole arrays, written out so that LLVM vectorises them.

numba's ``math.exp`` and ``math.log`` are scalar libm calls (no SVML here), so a loop that calls them runs one
element at a time and nothing around the call vectorises either. These loops use only arithmetic, ``floor``,
selects and integer operations on the bits of the doubles, which LLVM turns into vector instructions: the
covariate kernels (:mod:`bayesclv.formulas._covariate_summed`) take their rows a block at a time and call them on
each block's lanes. Relative error below 1e-15 for every positive normal double (log) and every argument whose
exponential is a normal double (exp); outside those ranges, see each function.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["lane_exp", "lane_log"]

_LN2_HI = 0.6931471803691238  # ln 2 in two parts: t ln 2 exact in the first for |t| < 2^20
_LN2_LO = 1.9082149292705877e-10
_SQRT2 = 1.4142135623730951
_EXPONENT = 0x7FF0000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
_SMALLEST = 2.2250738585072014e-308  # below: subnormal, the exponent bits no longer scale the mantissa
# contractions (FMA) only: reassociation would undo the two-part reduction, and the non-finite checks must stay
_FASTMATH = {"contract", "nsz"}


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def lane_exp(v, out, bits, n):  # pragma: no cover - compiled
    """``out[k] = exp(v[k])`` for ``k < n``; ``bits`` is an int64 work array of ``out``'s length.

    Cody-Waite reduction ``v = t ln 2 + u``, ``|u| <= ln 2 / 2``, a degree-13 Taylor polynomial in ``u`` and
    ``2^t`` assembled in the exponent bits. Arguments outside [-708, 709] (whose exponential is subnormal, zero
    or infinite) and NaN are passed to ``np.exp`` in a second loop, so they keep libm's answer: a rate beyond
    the double range gives inf or NaN downstream, never a finite wrong value.
    """
    scale = bits.view(np.float64)
    for k in range(n):
        x = min(max(v[k], -708.0), 709.0)
        t = np.floor(x * 1.4426950408889634 + 0.5)
        u = x - t * _LN2_HI - t * _LN2_LO
        out[k] = 1.0 + u * (1.0 + u * (0.5 + u * (1.0 / 6 + u * (1.0 / 24 + u * (1.0 / 120 + u * (
            1.0 / 720 + u * (1.0 / 5040 + u * (1.0 / 40320 + u * (1.0 / 362880 + u * (
                1.0 / 3628800 + u * (1.0 / 39916800 + u * (1.0 / 479001600 + u / 6227020800))))))))))))
        bits[k] = (np.int64(t) + 1023) << 52
    for k in range(n):
        out[k] *= scale[k]
    for k in range(n):
        if not -708.0 <= v[k] <= 709.0:
            out[k] = np.exp(v[k])


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def lane_log(v, out, bits, n):  # pragma: no cover - compiled
    """``out[k] = log(v[k])`` for ``k < n`` and ``v[k]`` a positive normal double; ``bits`` as in :func:`lane_exp`.

    ``v = m 2^e`` with ``m`` in [sqrt(1/2), sqrt(2)) from the bits, ``log m = 2 atanh(s)``, ``s = (m-1)/(m+1)``
    (``|s| <= 0.172``) by its odd series to ``s^23``. Values that are not positive normal doubles (zero,
    subnormal, negative, infinite, NaN) are passed to ``math.log`` in a second loop, so they keep libm's answer.
    """
    for k in range(n):
        out[k] = v[k]
    raw = out.view(np.int64)
    for k in range(n):
        bits[k] = raw[k]
    for k in range(n):
        e = ((bits[k] & _EXPONENT) >> 52) - 1023
        raw[k] = (bits[k] & _MANTISSA) | _ONE_BITS  # m in [1, 2)
        high = out[k] > _SQRT2
        m = out[k] * 0.5 if high else out[k]
        f = np.float64(e + 1 if high else e)
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        series = 1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 * (1.0 / 11 + s2 * (
            1.0 / 13 + s2 * (1.0 / 15 + s2 * (1.0 / 17 + s2 * (1.0 / 19 + s2 * (1.0 / 21 + s2 / 23))))))))))
        out[k] = f * _LN2_HI + (f * _LN2_LO + 2.0 * s * series)
    for k in range(n):
        if not _SMALLEST <= v[k] < np.inf:
            out[k] = np.log(v[k])
