"""Expectations over a BG/NBD customer's dropout probability ``p ~ Beta(a, B)``: the predictive quantities' core.

Given alive at ``T``, the BG/NBD's predictions reduce to two expectations over
``p ~ Beta(a, B)`` (``B = b + x``), for ``rho = r + x`` and ``k = t/(alpha+T)``:

- survival ``E[(1 + k p)^-rho]`` (no dropout among the purchases in ``t``);
- purchases ``E[(1 - (1 + k p)^-rho) / p]`` (expected purchases before dropout).

Both have closed forms in Gauss' hypergeometric function; ``scipy.special.hyp2f1``
is used where it is reliable (:func:`_closed_form_error`), a Taylor series for
small ``k``, and a quadrature in ``logit(p)`` everywhere else. For a discounted
sum over many horizons the series' coefficients do not depend on the horizon:
:func:`purchases_over_horizons` computes them once per element (and
:func:`purchases_over_horizons_shared` once per draw and ``x``) and evaluates
every horizon by Horner's rule.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas._ops import gauss_legendre

__all__ = ["purchases_given_alive", "purchases_over_horizons", "purchases_over_horizons_shared",
           "survival_given_alive"]

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
_HORIZON_TERMS = 400  # most terms of the shared hypergeometric series (purchases_over_horizons)


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
def _horizon_branch(rho, a, B):  # pragma: no cover - compiled
    """``(lead, second, c3)`` of the closed form's ``2F1`` (:func:`_survival_closed_form`, ``c = a - 1``)."""
    c = a - 1.0
    if c >= rho:
        return rho, B, c + B
    return c, c + B - rho, c + B


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _series_coefficients(lead, second, c3, z_last, coef):  # pragma: no cover - compiled
    """Power-series coefficients of ``2F1(lead, second; c3; z)`` into ``coef[0..n]``, enough for ``z <= z_last``.

    Summed at ``z_last`` until a term (past the point where the terms' ratio
    decreases to ``z``) is below ``_SERIES_EPS`` of the sum. Returns ``(n,
    rounding)``, ``rounding = n eps sum|terms| / |sum|`` the relative error of
    the sums; ``n = -1`` where the series does not converge in ``_HORIZON_TERMS``
    terms or rounding is above 1e-3.
    """
    coef[0] = 1.0
    power = total = total_abs = 1.0
    bound = max(abs(lead), abs(second), abs(c3))
    n = 0
    while n < _HORIZON_TERMS:
        coef[n + 1] = coef[n] * (lead + n) * (second + n) / ((c3 + n) * (n + 1.0))
        n += 1
        power *= z_last
        term = coef[n] * power
        total += term
        total_abs += abs(term)
        if n > bound and abs(term) <= _SERIES_EPS * abs(total):
            rounding = 2.2e-16 * (n + 1) * total_abs / abs(total)
            return (n, rounding) if rounding < 1e-3 else (-1, rounding)
    return -1, np.inf


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _discounted_from_series(coef, n, scale, zs, prefactor, factors, rounding, series):  # pragma: no cover
    """``sum_j factors[j] (E_j - E_(j-1))`` with ``E_j = scale (1 - prefactor_j 2F1(z_j))``, and whether it is good.

    ``prefactor_j = (1 + k_j)^-lead``. Horner's rule for every horizon side by
    side (``series`` is scratch); False where the rounding, amplified by
    ``S/(1-S)``, exceeds ``_CLOSED_FORM_TOL``.
    """
    n_t = zs.size
    for j in range(n_t):
        series[j] = coef[n]
    for m in range(n - 1, -1, -1):
        for j in range(n_t):
            series[j] = series[j] * zs[j] + coef[m]
    previous = value = 0.0
    for j in range(n_t):
        survive = prefactor[j] * series[j]
        if not abs(survive) * rounding <= _CLOSED_FORM_TOL * abs(1.0 - survive):
            return 0.0, False
        cumulative = scale * (1.0 - survive)
        value += factors[j] * (cumulative - previous)
        previous = cumulative
    return value, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _declined(rho, a, B, k_first, k_last):  # pragma: no cover - compiled
    """Elements :func:`purchases_over_horizons` leaves to the per-horizon path."""
    return ((rho + 1.0) * k_first <= _SERIES_LIMIT or not k_last < 100.0 or rho - a - B > 50.0
            or a == 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def purchases_over_horizons(rho, a, B, inv_scale, ends, factors, out, ok):  # pragma: no cover - compiled
    """Present value ``sum_j factors[j] (E_j - E_(j-1))`` of :func:`purchases_given_alive` at every horizon.

    Element ``i`` has ``k_j = ends[j] * inv_scale[i]``. The closed form of
    :func:`purchases_given_alive` needs ``2F1(lead, second; c+B; z_j)`` with
    ``z_j = k_j/(1+k_j)`` (see :func:`_survival_closed_form`, ``c = a - 1``), whose
    parameters do not depend on the horizon: its power-series coefficients are
    computed once (:func:`_series_coefficients`) and every ``z_j`` evaluated
    from them (:func:`_discounted_from_series`). The rounding error of the
    sums is amplified by ``S/(1-S)`` as in :func:`purchases_given_alive`; where
    that exceeds ``_CLOSED_FORM_TOL``, where the series is slow (``k >= 100``),
    where the Taylor series in ``k`` applies, or where ``rho - a - B > 50``,
    ``ok[i]`` is set False and ``out[i]`` left for the caller.
    """
    coef = np.empty(_HORIZON_TERMS + 1)
    n_t = ends.size
    zs, prefactor, series = np.empty(n_t), np.empty(n_t), np.empty(n_t)
    for i in range(rho.size):
        if _declined(rho[i], a[i], B[i], ends[0] * inv_scale[i], ends[n_t - 1] * inv_scale[i]):
            ok[i] = False
            continue
        lead, second, c3 = _horizon_branch(rho[i], a[i], B[i])
        for j in range(n_t):
            k = ends[j] * inv_scale[i]
            zs[j], prefactor[j] = k / (1.0 + k), math.exp(-lead * math.log1p(k))
        n, rounding = _series_coefficients(lead, second, c3, zs[n_t - 1], coef)
        if n < 0:
            ok[i] = False
            continue
        out[i], ok[i] = _discounted_from_series(coef, n, (a[i] + B[i] - 1.0) / (a[i] - 1.0), zs, prefactor,
                                                factors, rounding, series)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def purchases_over_horizons_shared(r, alpha, a, b, x_value, x_start, T_value, row_T, ends, factors, out,
                                    ok):  # pragma: no cover - compiled
    """:func:`purchases_over_horizons` for draws (``r, alpha, a, b`` of length D) x rows -> ``out`` ``(D, rows)``.

    Rows are sorted by ``x`` (``x_start[j]`` is the first row of ``x_value[j]``)
    and read their ``T`` from ``T_value[row_T]``. The series' coefficients depend
    on the draw and ``x`` only, and ``k_j`` on the draw and ``T`` only: both are
    computed once per draw for every distinct value, not once per row.
    """
    coef = np.empty(_HORIZON_TERMS + 1)
    n_t = ends.size
    zs, log1p_k = np.empty((T_value.size, n_t)), np.empty((T_value.size, n_t))
    draw_prefactor = np.empty((T_value.size, n_t))  # (1 + k)^-c, for the rows whose lead is c = a - 1
    prefactor, series = np.empty(n_t), np.empty(n_t)
    for d in range(r.size):
        c = a[d] - 1.0
        for k_ in range(T_value.size):
            for j in range(n_t):
                k = ends[j] / (alpha[d] + T_value[k_])
                zs[k_, j], log1p_k[k_, j] = k / (1.0 + k), math.log1p(k)
                draw_prefactor[k_, j] = math.exp(-c * log1p_k[k_, j])
        for jx in range(x_value.size):
            rho, B = r[d] + x_value[jx], b[d] + x_value[jx]
            lead, second, c3 = _horizon_branch(rho, a[d], B)
            scale = (a[d] + B - 1.0) / c
            n = -2  # coefficients not computed yet for this x
            rounding = np.inf
            for i in range(x_start[jx], x_start[jx + 1]):
                t_ = row_T[i]
                if _declined(rho, a[d], B, ends[0] / (alpha[d] + T_value[t_]),
                             ends[n_t - 1] / (alpha[d] + T_value[t_])):
                    ok[d, i] = False
                    continue
                if n == -2:  # for the largest z among all T: enough terms for every row of this x
                    n, rounding = _series_coefficients(lead, second, c3, zs[:, n_t - 1].max(), coef)
                if n < 0:
                    ok[d, i] = False
                    continue
                if lead == c:
                    row_prefactor = draw_prefactor[t_]
                else:
                    for j in range(n_t):
                        prefactor[j] = math.exp(-lead * log1p_k[t_, j])
                    row_prefactor = prefactor
                out[d, i], ok[d, i] = _discounted_from_series(coef, n, scale, zs[t_], row_prefactor, factors,
                                                              rounding, series)
