"""Expectations over a BG/NBD customer's dropout probability ``p ~ Beta(a, B)``: the predictive quantities' core.

Given alive at ``T``, the BG/NBD's predictions reduce to two expectations over
``p ~ Beta(a, B)`` (``B = b + x``), for ``rho = r + x`` and ``k = t/(alpha+T)``:

- survival ``E[(1 + k p)^-rho]`` (no dropout among the purchases in ``t``);
- purchases ``E[(1 - (1 + k p)^-rho) / p]`` (expected purchases before dropout).

Both have closed forms in Gauss' hypergeometric function; ``scipy.special.hyp2f1``
is used where it is reliable (:func:`_closed_form_error`), a Taylor series for
small ``k``, and a quadrature in ``logit(p)`` everywhere else. For a discounted
sum over many horizons the closed form's parameters do not depend on the
horizon: :func:`over_horizons` builds its series once per element (and
:func:`over_horizons_shared` once per draw and ``x``), evaluates the horizons
with ``z <= 1/2`` by Horner's rule and continues the function to the later
ones through its differential equation, step by step, so the cost stays
linear in the number of horizons however close ``z`` comes to 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas._ops import gauss_legendre

__all__ = ["over_horizons", "over_horizons_shared", "purchases_given_alive", "survival_given_alive"]

_SERIES_LIMIT = 0.05  # (rho+1) k up to which the purchases use their Taylor series
_SERIES_EPS = 1e-17  # relative size of the last term summed
_CLOSED_FORM_TOL = 1e-8  # largest relative error accepted from the closed forms
_TAIL_EPS = 1e-17  # relative change of the integrand's p-factor within a tail
_WINDOW_DROP = 40.0  # quadrature window: integrand within exp(-40) of its maximum
_MODE_BISECTIONS = 24  # bracket of width <= ~120 to 1e-5
_EDGE_BISECTIONS = 16  # window edges to ~2e-3 (rounded outwards)
_QUAD_PANELS = 32
_QUAD_NODES = 12
_QUAD_CHUNK = 4096  # elements per quadrature block (bounds the memory of the nodes)
_HORIZON_TERMS = 400  # most terms of the series at 0 up to _ANCHOR (over_horizons)
_ANCHOR = 0.5  # z up to which over_horizons sums the series at 0; beyond, it continues the function
_STEP = 0.5  # largest continuation step, as a share of the distance 1 - z to the singular point
_STEP_TERMS = 400  # most Taylor terms of one continuation step


def _survival_closed_form(rho, c, B, k):
    """``E[(1 + k p)^-rho]`` for ``p ~ Beta(c, B)``, via Gauss' hypergeometric function.

    The expectation is Euler's integral for ``2F1(rho, c; c+B; -k)``. Both Pfaff
    transformations map it to the argument ``z = k/(1+k)`` in [0, 1); the one whose
    series converges at ``z = 1`` is used, ``(1+k)^-rho 2F1(rho, B; c+B; z)`` when
    ``c >= rho`` and ``(1+k)^-c 2F1(c, c+B-rho; c+B; z)`` otherwise, so neither factor
    overflows for large ``k`` and ``rho``. The formula continues analytically to
    ``c`` in (-1, 0], where it is no longer an expectation.
    """
    first = c >= rho
    lead = np.where(first, rho, c)
    second = np.where(first, B, c + B - rho)
    return np.exp(-lead * np.log1p(k)) * special.hyp2f1(lead, second, c + B, k / (1.0 + k))


def _closed_form_error(rho, a, B, k):
    """Relative error to expect from ``scipy.special.hyp2f1`` in the closed forms (``inf``: unreliable).

    Found by comparison with ``mpmath`` over ``rho``, ``B`` up to 2000, ``a`` up to 1000
    and ``k`` up to 1e6: near 1e-13 for ``k < 100``; for larger ``k`` (argument near 1)
    up to 1e-10 while ``a + B < 60`` and much worse beyond; and it degrades when the
    series alternates over many terms, ``rho - a - B > 50``.
    """
    error = np.where(k < 100.0, 1e-13, np.where(a + B < 60.0, 1e-10, np.inf))
    return np.where(rho - a - B > 50.0, np.inf, error)


def _purchases_series(rho, a, B, k):
    """``E[(1 - (1 + k p)^-rho) / p]`` for ``p ~ Beta(a, B)``, by its Taylor series in ``k``.

    Expanding ``(1 - (1 + k p)^-rho) / p = rho k sum_m (rho+1)_m (-k p)^m / (m+1)!``
    and taking the moments ``E[p^m] = (a)_m / (a+B)_m`` term by term gives an
    alternating series. The ratio of consecutive terms is at most
    ``q = max((rho+1) k / 2, k)`` in size, so ``log(_SERIES_EPS) / log(q)`` terms
    suffice. Unlike the closed form it has no ``1/(a-1)`` and no cancellation for
    small ``k``.
    """
    q = np.max(np.maximum(0.5 * (rho + 1.0) * k, k), initial=0.0)
    n_terms = int(np.ceil(np.log(_SERIES_EPS) / np.log(q))) if q > 0.0 else 0
    minus_k = -k
    term = np.ones(np.shape(rho * a * B * k))
    total = term.copy()
    for m in range(n_terms):
        term *= (rho + (1.0 + m)) * (a + m) / (a + B + m) * (minus_k / (m + 2.0))
        total += term
    return rho * k * total


def _log_integrand(z, rho, a, B, k, survival):
    """log of the integrand of ``B(a, B) E[g(p)]`` in ``z = logit(p)``.

    ``g(p) = (1 + k p)^-rho`` (``survival``) or ``(1 - (1 + k p)^-rho) / p``. With
    ``dp = p (1-p) dz`` the integrand is ``p^a (1-p)^B g(p)``; for the purchases one
    power of ``p`` moves from ``a`` into ``g``, which keeps ``log g`` finite at ``p = 0``.
    """
    log_p = -np.logaddexp(0.0, -z)
    log_q = -np.logaddexp(0.0, z)
    log1p_kp = np.log1p(k * np.exp(log_p))
    if survival:
        return a * log_p + B * log_q - rho * log1p_kp
    return (a - 1.0) * log_p + B * log_q + np.log(-np.expm1(-rho * log1p_kp))


def _slope_sign(z, rho, a, B, k, survival):
    """A function with the sign of the derivative of :func:`_log_integrand` in ``z``.

    The derivative divided by ``1-p`` is ``a' - B e^z + p g'(p)/g(p)`` (``a' = a`` or
    ``a - 1``); every term decreases in ``z``, so the integrand is unimodal.
    """
    kp = k * special.expit(z)
    if survival:
        return a - B * np.exp(z) - rho * kp / (1.0 + kp)
    return a - 1.0 - B * np.exp(z) + rho * kp / ((1.0 + kp) * np.expm1(rho * np.log1p(kp)))


def _bisect(before, lo, hi, steps):
    """Bracket ``[lo, hi]`` after ``steps`` bisections for the point where ``before`` turns False.

    ``before(z)`` is True left of that point and False right of it, elementwise.
    """
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        go_right = before(mid)
        lo, hi = np.where(go_right, mid, lo), np.where(go_right, hi, mid)
    return lo, hi


def _beta_quadrature_block(rho, a, B, k, survival):
    """:func:`_beta_quadrature` on 1-d arrays of equal length."""
    if survival:
        g0, g1 = 1.0, np.exp(-rho * np.log1p(k))
    else:
        g0, g1 = rho * k, -np.expm1(-rho * np.log1p(k))
    # tails in which g changes by less than _TAIL_EPS: |g'/g| <= (rho+1) k near p = 0
    # and <= 2 (rho+2) near p = 1
    log_p_lo = np.minimum(np.log(_TAIL_EPS) - np.log((rho + 1.0) * k), np.log(0.5))
    log_q_hi = np.log(_TAIL_EPS) - np.log(2.0 * (rho + 2.0))
    z_lo = log_p_lo - np.log1p(-np.exp(log_p_lo))
    z_hi = np.log1p(-np.exp(log_q_hi)) - log_q_hi
    tails = g0 * special.betainc(a, B, np.exp(log_p_lo)) + g1 * special.betainc(B, a, np.exp(log_q_hi))

    def log_f(z):
        return _log_integrand(z, rho, a, B, k, survival)

    mode = np.mean(_bisect(lambda z: _slope_sign(z, rho, a, B, k, survival) > 0.0,
                           z_lo, z_hi, _MODE_BISECTIONS), axis=0)
    level = log_f(mode) - _WINDOW_DROP
    left = _bisect(lambda z: log_f(z) < level, z_lo, mode, _EDGE_BISECTIONS)[0]
    right = _bisect(lambda z: log_f(z) >= level, mode, z_hi, _EDGE_BISECTIONS)[1]

    nodes, weights = gauss_legendre(_QUAD_NODES)
    panel = np.arange(_QUAD_PANELS)[:, None]
    nodes = ((panel + nodes) / _QUAD_PANELS).ravel()
    weights = np.tile(weights / _QUAD_PANELS, _QUAD_PANELS)
    width = right - left
    z = left[:, None] + width[:, None] * nodes
    log_terms = _log_integrand(z, rho[:, None], a[:, None], B[:, None], k[:, None], survival)
    peak = log_terms.max(axis=-1)
    middle = width * np.sum(weights * np.exp(log_terms - peak[:, None]), axis=-1)
    return middle * np.exp(peak - special.betaln(a, B)) + tails


def _beta_quadrature(rho, a, B, k, survival):
    """``E[g(p)]`` for ``p ~ Beta(a, B)`` by quadrature: the fallback of the closed forms.

    In ``z = logit(p)`` the integrand is unimodal (see :func:`_slope_sign`). Near
    ``p = 0`` and ``p = 1``, where ``g`` is constant to ``_TAIL_EPS``, the Beta mass
    is integrated exactly (regularised incomplete beta); in between,
    ``_QUAD_PANELS`` Gauss-Legendre panels cover the window around the mode
    (found by bisection) in which the integrand is within ``exp(-_WINDOW_DROP)`` of
    its maximum. Accurate to ~1e-10 for shapes and ``rho`` from 1e-3 to 2000
    and any ``k > 0``, also where the Beta density is singular at 0 or 1.
    """
    rho, a, B, k = (np.asarray(v, dtype=float) for v in (rho, a, B, k))
    out = np.empty(rho.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
        for start in range(0, rho.size, _QUAD_CHUNK):
            block = slice(start, start + _QUAD_CHUNK)
            out[block] = _beta_quadrature_block(rho[block], a[block], B[block], k[block], survival)
    return out


def survival_given_alive(rho, a, B, k):
    """``E[(1 + k p)^-rho]``, ``p ~ Beta(a, B)``: closed form, quadrature where it is unreliable."""
    rho, a, B, k = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, a, B, k)))
    with np.errstate(all="ignore"):
        out = np.array(_survival_closed_form(rho, a, B, k), dtype=float)
        bad = ~(np.isfinite(out) & (_closed_form_error(rho, a, B, k) <= _CLOSED_FORM_TOL))
    out[bad] = _beta_quadrature(rho[bad], a[bad], B[bad], k[bad], survival=True)
    return np.maximum(out, 0.0, out=out)  # rounding can leave -1e-30 where the value underflows


def purchases_given_alive(rho, a, B, k):
    """``E[(1 - (1 + k p)^-rho) / p]``, ``p ~ Beta(a, B)``: expected purchases of an alive customer.

    For small ``k`` the Taylor series (:func:`_purchases_series`). Otherwise the closed
    form: moving ``1/p`` into the Beta density, the expectation is
    ``(a+B-1)/(a-1) (1 - E[(1 + k p)^-rho])`` with ``p ~ Beta(a-1, B)``. The
    subtraction amplifies the error of ``hyp2f1`` by ``S/(1-S)`` (``S`` the
    expectation subtracted), without bound as ``a -> 1``; where the amplified error
    exceeds ``_CLOSED_FORM_TOL`` the quadrature (:func:`_beta_quadrature`) is used.
    """
    rho, a, B, k = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, a, B, k)))
    out = np.empty(rho.shape)
    series = (rho + 1.0) * k <= _SERIES_LIMIT
    out[series] = _purchases_series(rho[series], a[series], B[series], k[series])
    rho, a, B, k = rho[~series], a[~series], B[~series], k[~series]
    with np.errstate(all="ignore"):
        survive = _survival_closed_form(rho, a - 1.0, B, k)
        closed = (a + B - 1.0) / (a - 1.0) * (1.0 - survive)
        amplification = np.abs(survive / (1.0 - survive))
        bad = ~(np.isfinite(closed)
                & (amplification * _closed_form_error(rho, a, B, k) <= _CLOSED_FORM_TOL))
    closed[bad] = _beta_quadrature(rho[bad], a[bad], B[bad], k[bad], survival=False)
    out[~series] = closed
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _horizon_branch(rho, c, B):  # pragma: no cover - compiled
    """``(lead, second, c3)`` of the closed form's ``2F1`` (:func:`_survival_closed_form` with shape ``c``)."""
    if c >= rho:
        return rho, B, c + B
    return c, c + B - rho, c + B


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _series_coefficients(lead, second, c3, z_last, coef):  # pragma: no cover - compiled
    """Power-series coefficients of ``2F1(lead, second; c3; z)`` into ``coef[0..n]``, enough for ``z <= z_last``.

    Summed at ``z_last`` until the tail after a term is below ``_SERIES_EPS`` of
    the sum: for ``m >= n`` (and ``c3 + n > 0``) the terms' ratio is at most
    ``z`` times ``max(1, (|lead|+n)/(n+1)) max(1, (|second|+n)/(c3+n))`` (each
    factor is monotone in ``m``), a geometric bound. Returns ``(n,
    rounding)``, ``rounding = n eps sum|terms| / |sum|`` the relative error of
    the sums; ``n = -1`` where the series does not converge in ``_HORIZON_TERMS``
    terms or rounding is above 1e-3.
    """
    coef[0] = 1.0
    power = total = total_abs = 1.0
    n = 0
    while n < _HORIZON_TERMS:
        coef[n + 1] = coef[n] * (lead + n) * (second + n) / ((c3 + n) * (n + 1.0))
        n += 1
        power *= z_last
        term = coef[n] * power
        total += term
        total_abs += abs(term)
        ratio = z_last * max(1.0, (abs(lead) + n) / (n + 1.0)) * max(1.0, (abs(second) + n) / (c3 + n))
        if c3 + n > 0.0 and ratio < 1.0 and abs(term) * ratio <= _SERIES_EPS * (1.0 - ratio) * abs(total):
            rounding = 2.2e-16 * (n + 1) * total_abs / abs(total)
            return (n, rounding) if rounding < 1e-3 else (-1, rounding)
    return -1, np.inf


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _series_at(coef, n, z):  # pragma: no cover - compiled
    """The series of ``coef[0..n]`` and its derivative at ``z`` (Horner's rule)."""
    value, slope = coef[n], 0.0
    for m in range(n - 1, -1, -1):
        slope = slope * z + value
        value = value * z + coef[m]
    return value, slope


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _continue(lead, second, c3, z0, value, slope, error, z1):  # pragma: no cover - compiled
    """``2F1(lead, second; c3; z)`` and its derivative at ``z1`` from their values at ``z0`` (``_ANCHOR <= z0 < z1 < 1``).

    The function solves ``z(1-z) w'' + (c3 - (lead+second+1) z) w' - lead second w = 0``;
    its Taylor coefficients about ``z0`` follow from the ODE by a three-term
    recurrence, and their series converges for steps below ``1 - z0`` (the
    singular point ``z = 1``). Steps of at most ``_STEP`` of that distance
    need a bounded number of terms whatever ``z1``, so evaluating ``n`` horizons
    in order costs ``O(n)`` (plus ``O(log k)`` steps to approach ``z = 1``).
    ``error`` is the relative error carried in; returns ``(value, slope,
    error, ok)`` with each step's rounding, ``n eps sum|terms| / |sum|``, added
    (the error carried in is passed on as it is: the continued function
    dominates the equation's other solution near ``z = 1`` wherever the series
    is accepted, which the tests check against per-horizon references); ``ok``
    False where a step does not converge in ``_STEP_TERMS`` terms.
    """
    p2, q1, r0 = -1.0, -(lead + second + 1.0), -lead * second
    while z0 < z1:
        h = min(z1 - z0, _STEP * (1.0 - z0))
        p0, p1, q0 = z0 * (1.0 - z0), 1.0 - 2.0 * z0, c3 - (lead + second + 1.0) * z0
        before, now = value, slope * h  # Taylor terms n and n+1, times h^n
        total, total_abs = before + now, abs(before) + abs(now)
        d_total, d_abs = now, abs(now)
        n = 0
        while True:
            after = -((p1 * n + q0) * (n + 1.0) * h * now
                      + (p2 * n * (n - 1.0) + q1 * n + r0) * h * h * before) / (p0 * (n + 2.0) * (n + 1.0))
            n += 1
            total += after
            total_abs += abs(after)
            d_total += (n + 1.0) * after
            d_abs += (n + 1.0) * abs(after)
            before, now = now, after
            tail = abs(before) + abs(now)
            if n >= 2 and tail <= _SERIES_EPS * abs(total) and (n + 1.0) * tail <= _SERIES_EPS * abs(d_total):
                break
            if n >= _STEP_TERMS:
                return value, slope, np.inf, False
        growth = max(total_abs / abs(total), d_abs / abs(d_total) if d_total != 0.0 else 1.0)
        error += 2.2e-16 * (n + 2) * growth
        value, slope, z0 = total, d_total / h, z0 + h
    return value, slope, error, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _on_horizons(lead, second, c3, zs, coef, n, rounding, anchor, values, errors):  # pragma: no cover - compiled
    """``2F1(lead, second; c3; zs[j])`` for increasing ``zs`` into ``values``, relative errors into ``errors``.

    Up to ``_ANCHOR`` from the series at 0 (``coef[0..n]``, enough for
    ``_ANCHOR``); beyond, continued horizon by horizon from ``anchor`` (the
    value and derivative at ``_ANCHOR``) by :func:`_continue`. False where a
    step fails.
    """
    z0, value, slope, error = _ANCHOR, anchor[0], anchor[1], rounding
    for j in range(zs.size):
        if zs[j] <= _ANCHOR:
            values[j], errors[j] = _series_at(coef, n, zs[j])[0], rounding
            continue
        value, slope, error, ok = _continue(lead, second, c3, z0, value, slope, error, zs[j])
        if not ok:
            return False
        z0, values[j], errors[j] = zs[j], value, error
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _present_value(values, errors, prefactor, factors, scale, survival):  # pragma: no cover - compiled
    """Discounted sum of :func:`_on_horizons`' values, and whether it is good.

    ``S_j = prefactor_j values_j`` is the closed form's expectation
    (:func:`_survival_closed_form`). ``survival``: ``sum_j factors[j] S_j``;
    otherwise the purchases ``E_j = scale (1 - S_j)`` as ``sum_j factors[j]
    (E_j - E_(j-1))``, whose subtraction amplifies the error by ``S/(1-S)``.
    False where an error exceeds ``_CLOSED_FORM_TOL``.
    """
    previous = total = 0.0
    for j in range(values.size):
        survive = prefactor[j] * values[j]
        if survival:
            if not errors[j] <= _CLOSED_FORM_TOL:
                return 0.0, False
            total += factors[j] * survive
            continue
        if not abs(survive) * errors[j] <= _CLOSED_FORM_TOL * abs(1.0 - survive):
            return 0.0, False
        cumulative = scale * (1.0 - survive)
        total += factors[j] * (cumulative - previous)
        previous = cumulative
    return total, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _declined(rho, a, B, survival):  # pragma: no cover - compiled
    """Elements :func:`over_horizons` leaves to the per-horizon path (``hyp2f1`` unreliable, ``a = 1``)."""
    return rho - a - B > 50.0 or (not survival and a == 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prepare_series(lead, second, c3, z_last, coef, anchor):  # pragma: no cover - compiled
    """Coefficients up to ``min(z_last, _ANCHOR)`` and, where ``z_last`` is beyond, the anchor; ``(n, rounding)``."""
    n, rounding = _series_coefficients(lead, second, c3, min(z_last, _ANCHOR), coef)
    if n >= 0 and z_last > _ANCHOR:
        anchor[0], anchor[1] = _series_at(coef, n, _ANCHOR)
    return n, rounding


@numba.njit(cache=True, nogil=True, error_model="numpy")
def over_horizons(rho, a, B, inv_scale, times, factors, out, ok, survival):  # pragma: no cover - compiled
    """Present value at increasing horizons ``times`` of :func:`purchases_given_alive` or :func:`survival_given_alive`.

    Element ``i`` has ``k_j = times[j] * inv_scale[i]``. ``survival``: ``out[i] =
    sum_j factors[j] S(k_j)`` (:func:`survival_given_alive`); otherwise the
    purchases ``sum_j factors[j] (E_j - E_(j-1))`` (:func:`purchases_given_alive`).
    Both closed forms need ``2F1(lead, second; c+B; z_j)``, ``z_j = k_j/(1+k_j)``
    (:func:`_survival_closed_form` with ``c = a`` or ``a - 1``), whose parameters
    do not depend on the horizon: the series at 0 is built once per element
    and the horizons beyond ``_ANCHOR`` are reached by continuation
    (:func:`_on_horizons`), so the cost is linear in the number of horizons. Where
    the rounding, amplified as in :func:`purchases_given_alive`, exceeds
    ``_CLOSED_FORM_TOL``, or :func:`_declined`, ``ok[i]`` is set False and
    ``out[i]`` left for the caller.
    """
    coef = np.empty(_HORIZON_TERMS + 1)
    n_t = times.size
    zs, prefactor, values, errors, anchor = (np.empty(n_t), np.empty(n_t), np.empty(n_t), np.empty(n_t),
                                             np.empty(2))
    for i in range(rho.size):
        c = a[i] if survival else a[i] - 1.0
        if _declined(rho[i], a[i], B[i], survival):
            ok[i] = False
            continue
        lead, second, c3 = _horizon_branch(rho[i], c, B[i])
        for j in range(n_t):
            k = times[j] * inv_scale[i]
            zs[j], prefactor[j] = k / (1.0 + k), math.exp(-lead * math.log1p(k))
        n, rounding = _prepare_series(lead, second, c3, zs[n_t - 1], coef, anchor)
        if n < 0 or not _on_horizons(lead, second, c3, zs, coef, n, rounding, anchor, values, errors):
            ok[i] = False
            continue
        out[i], ok[i] = _present_value(values, errors, prefactor, factors, (a[i] + B[i] - 1.0) / c, survival)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def over_horizons_shared(r, alpha, a, b, x_value, x_start, T_value, row_T, times, factors, out, ok,
                         survival):  # pragma: no cover - compiled
    """:func:`over_horizons` for draws (``r, alpha, a, b`` of length D) x rows -> ``out`` ``(D, rows)``.

    Rows are sorted by ``x`` (``x_start[j]`` is the first row of ``x_value[j]``)
    and read their ``T`` from ``T_value[row_T]``. The series at 0 and its value
    at ``_ANCHOR`` depend on the draw and ``x`` only, and ``k_j`` on the draw
    and ``T`` only: both are computed once per draw for every distinct value,
    not once per row.
    """
    coef = np.empty(_HORIZON_TERMS + 1)
    n_t = times.size
    zs, log1p_k = np.empty((T_value.size, n_t)), np.empty((T_value.size, n_t))
    draw_prefactor = np.empty((T_value.size, n_t))  # (1 + k)^-c, for the rows whose lead is c
    prefactor, values, errors, anchor = np.empty(n_t), np.empty(n_t), np.empty(n_t), np.empty(2)
    for d in range(r.size):
        c = a[d] if survival else a[d] - 1.0
        for k_ in range(T_value.size):
            for j in range(n_t):
                k = times[j] / (alpha[d] + T_value[k_])
                zs[k_, j], log1p_k[k_, j] = k / (1.0 + k), math.log1p(k)
                draw_prefactor[k_, j] = math.exp(-c * log1p_k[k_, j])
        z_last = zs[:, n_t - 1].max()
        for jx in range(x_value.size):
            rho, B = r[d] + x_value[jx], b[d] + x_value[jx]
            rows = range(x_start[jx], x_start[jx + 1])
            if _declined(rho, a[d], B, survival):
                for i in rows:
                    ok[d, i] = False
                continue
            lead, second, c3 = _horizon_branch(rho, c, B)
            n, rounding = _prepare_series(lead, second, c3, z_last, coef, anchor)
            for i in rows:
                t_ = row_T[i]
                if n < 0 or not _on_horizons(lead, second, c3, zs[t_], coef, n, rounding, anchor, values, errors):
                    ok[d, i] = False
                    continue
                if lead == c:
                    row_prefactor = draw_prefactor[t_]
                else:
                    for j in range(n_t):
                        prefactor[j] = math.exp(-lead * log1p_k[t_, j])
                    row_prefactor = prefactor
                out[d, i], ok[d, i] = _present_value(values, errors, row_prefactor, factors, (a[d] + B - 1.0) / c,
                                                     survival)
