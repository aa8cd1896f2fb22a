"""Special functions for the quadrature integrands, compiled with numba.

- :func:`log_tricomi`: ``log U(1, 2-s, z) = log int_0^inf e^(-zu) (1+u)^-s du``, Tricomi's
  confluent hypergeometric function of the DERT (a series and a recurrence in ``s`` for small
  ``z``, the continued fraction for large ``z`` or ``s``, else a marching Gauss-Legendre rule on its
  concave log-integrand);
- :func:`gamma_p`: the regularised lower incomplete gamma function ``P(a, y)`` (series below
  ``y = a + 1``, Legendre's continued fraction for ``Q = 1 - P`` above; Press et al.'s split);
- :func:`logaddexp`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from scipy import special

from bayesclv.formulas._ops import gauss_legendre

__all__ = ["gamma_p", "log_gamma_q", "log_tricomi", "logaddexp"]

_DROP = 40.0
# log_tricomi: a 16-node rule over steps of width times largest slope of its entire log-integrand at
# most _TRICOMI_SLOPE
_LONG_NODES, _LONG_WEIGHTS = gauss_legendre(16)
_LONG_LOG_WEIGHTS = np.log(_LONG_WEIGHTS)
_TRICOMI_SLOPE = 20.0
_TRICOMI_WIDTH = 8.0
_TRICOMI_NEWTON = 8
_FRACTION_TERMS = 100  # log_tricomi: continued fraction where it converges within this many terms
# log_tricomi: the series (alternating, with terms up to e^z) keeps 1e-13 up to _SERIES_Z; its recurrence
# takes about s steps, the continued fraction a few dozen terms above _SERIES_S
_SERIES_Z = 2.0
_SERIES_S = 64.0
_SERIES_TERMS = 200
_EULER = 0.5772156649015329
_ZETA = special.zeta(np.arange(2.0, 42.0))  # lgamma(1 - nu) = EULER nu + sum_k zeta(k) nu^k / k
_GAMMA_TERMS = 100000  # gamma_p: a bound for non-finite inputs
_EPS = 1e-17
_TINY = 1e-300


@numba.njit(cache=True, nogil=True, error_model="numpy")
def logaddexp(a, b):  # pragma: no cover - compiled
    """``log(e^a + e^b)``."""
    top = max(a, b)
    if top == -np.inf:
        return -np.inf
    return top + math.log(math.exp(a - top) + math.exp(b - top))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_series(a, y):  # pragma: no cover - compiled
    """``log P(a, y)`` by the series ``e^-y y^a / Gamma(a+1) sum_n y^n / ((a+1)...(a+n))`` (for ``y < a + 1``)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(_GAMMA_TERMS):
        ap += 1.0
        term *= y / ap
        total += term
        if term < _EPS * total:
            break
    return math.log(total) - y + a * math.log(y) - math.lgamma(a)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_fraction(a, y):  # pragma: no cover - compiled
    """``log Q(a, y)`` by Legendre's continued fraction (modified Lentz; for ``y >= a + 1``)."""
    b = y + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    value = d
    for n in range(1, _GAMMA_TERMS):
        term = -n * (n - a)
        b += 2.0
        d = term * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + term / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        ratio = c * d
        value *= ratio
        if abs(ratio - 1.0) < _EPS:
            break
    return math.log(value) - y + a * math.log(y) - math.lgamma(a)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gamma_p(a, y):  # pragma: no cover - compiled
    """Regularised lower incomplete gamma function ``P(a, y)``, ``a > 0``, ``y >= 0``."""
    if not y > 0.0:
        return 0.0
    if y < a + 1.0:
        return math.exp(_log_gamma_series(a, y))
    return -math.expm1(_log_gamma_fraction(a, y))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_gamma_q(a, y):  # pragma: no cover - compiled
    """``log Q(a, y)`` (regularised upper incomplete gamma), without underflow for ``y >> a``."""
    if not y > 0.0:
        return 0.0
    if y < a + 1.0:
        return math.log1p(-math.exp(_log_gamma_series(a, y)))
    return _log_gamma_fraction(a, y)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_phi(v, one_minus_s, z):  # pragma: no cover - compiled
    return one_minus_s * v - z * math.expm1(v)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_width(a, direction, limit, one_minus_s, z):  # pragma: no cover - compiled
    """A step ``w`` from ``a`` (at most ``limit``) with ``w |phi'(a + direction w)| <= _TRICOMI_SLOPE``.

    ``|phi'|`` grows away from the mode of the concave ``phi``, so the product
    bounds the change of ``phi`` over the step (as for the Pareto/NBD pieces) and
    is convex and increasing in ``w``: Newton steps from a too-wide step stay
    too wide, and the last one scaled by ``_TRICOMI_SLOPE`` / product is valid.
    """
    width = min(_TRICOMI_WIDTH, limit)
    for _ in range(_TRICOMI_NEWTON):
        e = z * math.exp(a + direction * width)
        product = width * abs(one_minus_s - e)
        if product <= _TRICOMI_SLOPE:
            return width
        width -= (product - _TRICOMI_SLOPE) / (abs(one_minus_s - e) + width * e)
    e = z * math.exp(a + direction * width)
    return width * min(1.0, _TRICOMI_SLOPE / (width * abs(one_minus_s - e)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_fraction(z, s):  # pragma: no cover - compiled
    """``U(1, 2-s, z)`` by its continued fraction, or NaN where it needs more than ``_FRACTION_TERMS`` terms.

    ``U(1, 2-s, z) = e^z z^(s-1) Gamma(1-s, z)`` and Legendre's continued fraction of
    the incomplete gamma function give ``1/(z+s - 1 s/(z+s+2 - 2 (s+1)/(z+s+4 - ...)))``,
    evaluated by the modified Lentz method; it converges in a few terms where ``z``
    or ``s`` is large and slowly for small ``z`` and ``s``.
    """
    tiny = 1e-300
    b = z + s
    c = 1.0 / tiny
    d = 1.0 / b
    value = d
    for n in range(1, _FRACTION_TERMS):
        term = -n * (n - 1.0 + s)
        b += 2.0
        d = term * d + b
        d = tiny if abs(d) < tiny else d
        c = b + term / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        ratio = c * d
        value *= ratio
        if abs(ratio - 1.0) < 1e-16:
            return value
    return np.nan


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lgamma_one_minus_over(nu):  # pragma: no cover - compiled
    """``lgamma(1 - nu) / nu`` for ``-1 < nu < 1/2`` (``EULER`` at 0), accurate near 0 by its Taylor series."""
    if abs(nu) > 0.1:
        return math.lgamma(1.0 - nu) / nu
    total, power = _EULER, 1.0
    for k in range(_ZETA.size):
        power *= nu
        term = _ZETA[k] * power / (k + 2.0)
        total += term
        if abs(term) < _EPS * abs(total):
            break
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tricomi_series(z, s):  # pragma: no cover - compiled
    """``U(1, 2-s, z) = e^z z^rho Gamma(-rho, z)`` (``rho = s - 1 > -1``) for ``z <= _SERIES_Z``.

    With ``rho = m + nu``, ``m = max(0, round(rho))``, ``-1 < nu < 1/2``, the series of the
    incomplete gamma function gives ``V_0 = e^z z^nu Gamma(-nu, z)`` as
    ``e^z [(1 - z^nu Gamma(1-nu)) / nu - sum_(n>=1) (-z)^n / (n! (n - nu))]``, whose first term
    (``-log z - EULER`` at ``nu = 0``: the exponential integral) is taken through ``expm1``. The
    recurrence ``V_k = (1 - z V_(k-1)) / (nu + k)`` (``Gamma(a+1, z) = a Gamma(a, z) + z^a e^-z``)
    climbs to ``V_m``; it damps errors once ``nu + k > z``.
    """
    m = max(0.0, math.floor(s - 0.5))
    nu = s - 1.0 - m
    log_z = math.log(z)
    if nu == 0.0:
        total = -(log_z + _EULER)
    else:
        total = -math.expm1(nu * (log_z + _lgamma_one_minus_over(nu))) / nu
    term = 1.0
    for n in range(1, _SERIES_TERMS):
        term *= -z / n
        part = term / (n - nu)
        total -= part
        if abs(part) < _EPS * abs(total):
            break
    value = math.exp(z) * total
    for k in range(1, int(m) + 1):
        value = (1.0 - z * value) / (nu + k)
    return value


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_tricomi(z, s):  # pragma: no cover - compiled
    """``log int_0^inf e^(-z u) (1 + u)^-s du`` for ``z > 0``, ``s > 0``: ``log U(1, 2 - s, z)``.

    Tricomi's confluent hypergeometric function ``U(1, 2-s, z) = z^(s-1) U(s, s, z)``
    (Kummer's transformation). In ``v = log(1 + u)`` the log-integrand
    ``phi(v) = (1-s) v - z (e^v - 1)`` is concave with its maximum at
    ``max(0, log((1-s)/z))``; steps are marched outwards from it, each as
    wide as keeps the change of ``phi`` within ``_TRICOMI_SLOPE`` (at most
    ``_TRICOMI_WIDTH``), under a 16-node rule, until ``phi`` has fallen by
    ``_DROP``. For small ``z`` (and ``s`` not large) the series of :func:`_tricomi_series` is used
    instead, and where the continued fraction (:func:`_tricomi_fraction`) converges quickly, that.
    """
    if not (z > 0.0 and s > 0.0):
        return np.nan
    if z <= _SERIES_Z and s <= _SERIES_S:
        return math.log(_tricomi_series(z, s))
    fraction = _tricomi_fraction(z, s)
    if fraction > 0.0:
        return math.log(fraction)
    one_minus_s = 1.0 - s
    mode = math.log(one_minus_s / z) if one_minus_s > z else 0.0
    floor = _tricomi_phi(mode, one_minus_s, z) - _DROP
    h_max, total = -np.inf, 0.0
    for direction in (1.0, -1.0):
        a = mode
        for _ in range(10000):
            limit = a if direction < 0.0 else np.inf
            if not limit > 0.0:
                break
            width = _tricomi_width(a, direction, limit, one_minus_s, z)
            start = a if direction > 0.0 else a - width
            log_width = math.log(width)
            for k in range(_LONG_NODES.size):
                h = (_tricomi_phi(start + width * _LONG_NODES[k], one_minus_s, z) + _LONG_LOG_WEIGHTS[k]
                     + log_width)
                if h > h_max:
                    total *= math.exp(h_max - h)
                    h_max = h
                total += math.exp(h - h_max)
            a += direction * width
            if _tricomi_phi(a, one_minus_s, z) < floor:
                break
    return h_max + math.log(total)
