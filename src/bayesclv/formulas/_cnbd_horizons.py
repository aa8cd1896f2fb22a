"""(M)BG/CNBD-k expectations given alive at many horizons in one pass (``k > 1``): the horizon ODE.

Given alive at ``T`` (see :mod:`bayesclv.formulas._cnbd_sums`), write ``y = t/(alpha+T+t)``
for a horizon ``t``. The phases since the last purchase, counted from ``i`` done at
``T``, are ``i + M`` with ``M ~ NB(rho + i, y)``. For every ``i >= 0`` and residue ``r``
of ``i + M`` modulo ``k`` let

``F_ir(y) = E[beta_n; i + M = n k + r]``,  ``beta_n = E[(1-p)^n] = B(a, B+n)/B(a, B)``,

so that survival to ``T + t`` is ``sum_(i<k) w_i sum_r F_ir``. Differentiating the
negative binomial probabilities in ``y`` gives the chain (one more phase moves ``i`` to
``i + 1``: the purchase rate in ``s = -log(1-y)`` is ``rho + i``)

``(1-y) F_ir' = (rho+i) (F_(i+1)r - F_ir)``,

and the recurrence ``(a+B+n) beta_(n+1) = (B+n) beta_n`` closes it: ``F_0r = (1-y)^rho V_r``
with ``V_r = sum_n (rho)_s/s! beta_n y^s`` (``s = n k + r``) a generalised hypergeometric
series whose coefficients satisfy ``v_(s+k) (s+1)_k (k(a+B) + s - r) = v_s (rho+s)_k (kB + s - r)``,
that is ``D^k (c + theta) V_r = (rho+theta)_k (e + theta) V_r`` (``theta = y D``, ``c = k(a+B-1) - r``,
``e = kB - r``); with ``theta^j = sum_m S(j, m) y^m D^m`` and ``D^m V_r = (rho)_m (1-y)^(-rho-m) F_mr``
this gives ``F_(k+1)r`` from ``F_0r .. F_kr``:

``y (1-y^k) (1-y) F_kr' = sum_(m<=k) sigma_m (rho)_m/(rho)_k y^m (1-y)^(k+1-m) F_mr
- (c+k) (1-y) F_kr - (rho+k) y (1-y^k) F_kr``

(``sigma_m = sum_j pi_j S(j, m)``, ``pi_j`` the coefficients of ``(rho+theta)_k (e+theta)``).
Expected purchases, ``E[C_N]`` with ``C_n = beta_0 + .. + beta_(n-1)``, grow at the rate of
purchases made alive: ``(1-y)^2 E' = sum_(i<k) w_i (rho+i) [(1-y) F_i(k-1) + y F_(i+1)(k-1)]``.

So ``k + 1`` functions per residue (only ``r = k-1`` for the purchases) follow a linear ODE
with polynomial coefficients. Horizons whose phase-count sums are short take those sums
(:func:`~bayesclv.formulas._cnbd_sums.phase_count_sums`, as one horizon alone would); from
the last of them the same sums split by ``i`` and ``r`` (:func:`_start`) start the ODE.
Each Taylor expansion of the ODE (``_ORDER`` terms, their coefficients by a recurrence)
serves every horizon within its reach, where its last terms are below ``_EPS`` of the
solution (about a third of the radius of convergence), and the state at the reach starts
the next one. The polynomials are built from their factors ``y``, ``1-y`` and
``1 + y + .. + y^(k-1)`` around each point, ``1-y = (alpha+T)/(alpha+T+t)`` kept apart, so
nothing cancels near ``y = 1``. The work per horizon is bounded, where the sums over the
phase count need about ``rho t/(alpha+T)`` terms, so a discounted sum over ``H`` periods
costs ``O(H)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._cnbd_sums import phase_count_sums, phase_weights, sum_terms

__all__ = ["over_horizons"]

_EPS = 1e-17  # Taylor terms (and series tails) left out are below this fraction of the solution
_ORDER = 36  # Taylor terms of one expansion (its reach is about 0.35 of the radius of convergence)
_SERIES_TERMS = 150.0  # horizons whose phase-count sums are this short take them
_START = 300.0  # kappa (rho + k + 40) at the ODE's start when the first horizon is long
_MOST_EXPANSIONS = 100  # expansions to the next horizon beyond which its sums are cheaper


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(rho, kappa, a, big_b, k, F, G):  # pragma: no cover - compiled
    """``F[i, r]`` (``i <= k``) and ``G[i] = E[C_n]`` (``i < k``) at ``y = kappa/(1+kappa)`` by the NB sums."""
    y = kappa / (1.0 + kappa)
    log1m_y = -math.log1p(kappa)
    for i in range(k + 1):
        for r in range(k):
            F[i, r] = 0.0
        shape = rho + i
        pmf = math.exp(shape * log1m_y)
        n, beta, c = i // k, 1.0, 0.0
        if n == 1:
            c, beta = 1.0, big_b / (a + big_b)
        residue = i % k
        total_f = total_c = 0.0
        m = 0
        while True:
            F[i, residue] += pmf * beta
            total_f += pmf * beta
            total_c += pmf * c
            bound = max((shape + m) * y / (m + 1.0), y)  # the NB ratios decrease to y for shapes >= 1, else rise to it
            if bound < 1.0:
                geometric = bound / (1.0 - bound)
                rest_f = pmf * beta * geometric
                rest_c = pmf * ((c + beta) * geometric + beta * geometric / ((1.0 - bound) * k))
                if rest_f <= _EPS * total_f and (i == k or rest_c <= _EPS * total_c):
                    break
            pmf *= (shape + m) * y / (m + 1.0)
            m += 1
            residue += 1
            if residue == k:  # the next purchase: n -> n + 1
                residue = 0
                c += beta
                beta *= (big_b + n) / (a + big_b + n)
                n += 1
        if i < k:
            G[i] = total_c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _closure_weights(rho, a, big_b, k, r, out):  # pragma: no cover - compiled
    """``out[m] = sigma_m (rho)_m/(rho)_k`` (``m <= k``) and ``out[k+1] = c + k`` of residue ``r``."""
    e = k * big_b - r
    poly = np.zeros(k + 2)  # (e + theta) prod_j (rho + j + theta), ascending in theta
    poly[0], poly[1] = e, 1.0
    for j in range(k):
        for d in range(j + 2, 0, -1):
            poly[d] = poly[d] * (rho + j) + poly[d - 1]
        poly[0] *= rho + j
    stirling = np.zeros((k + 2, k + 2))
    stirling[0, 0] = 1.0
    for j in range(1, k + 2):
        for m in range(1, j + 1):
            stirling[j, m] = m * stirling[j - 1, m] + stirling[j - 1, m - 1]
    for m in range(k + 1):
        sigma = 0.0
        for j in range(m, k + 2):
            sigma += poly[j] * stirling[j, m]
        for j in range(m, k):
            sigma /= rho + j
        out[m] = sigma
    out[k + 1] = k * (a + big_b - 1.0) - r + k


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _factor_powers(y0, u0, k, Y, U):  # pragma: no cover - compiled
    """Coefficients in ``t`` of ``(y0+t)^m`` and ``(u0-t)^m``, ``m = 0 .. k+1``."""
    Y[:, :] = 0.0
    U[:, :] = 0.0
    Y[0, 0] = U[0, 0] = 1.0
    for m in range(1, k + 2):
        for d in range(m + 1):
            Y[m, d] = y0 * Y[m - 1, d] + (Y[m - 1, d - 1] if d > 0 else 0.0)
            U[m, d] = u0 * U[m - 1, d] - (U[m - 1, d - 1] if d > 0 else 0.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shifted(y0, u0, k, Y, U, base, extra, lhs):  # pragma: no cover - compiled
    """The ODE's polynomials around ``y0`` (``u0 = 1 - y0``), coefficients in ``t = y - y0``.

    ``base[m] = y^m (1-y)^(k+1-m)``; ``extra = y (1-y) (1 + y + .. + y^(k-1)) = y (1 - y^k)``;
    ``lhs = (1-y) extra``.
    """
    _factor_powers(y0, u0, k, Y, U)
    size = k + 3
    base[:, :] = 0.0
    for m in range(k + 2):
        for d1 in range(m + 1):
            for d2 in range(k + 2 - m):
                base[m, d1 + d2] += Y[m, d1] * U[k + 1 - m, d2]
    extra[:] = 0.0
    for j in range(1, k + 1):  # sum_(j=1..k) y^j (1-y)
        for d1 in range(j + 1):
            extra[d1] += Y[j, d1] * u0
            extra[d1 + 1] -= Y[j, d1]
    lhs[:] = 0.0
    for d in range(size - 1):
        lhs[d] += u0 * extra[d]
        lhs[d + 1] -= extra[d]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _coefficients(N, y0, u0, rho, w, k, residues, closure, base, extra, lhs, f, e, purchases):  # pragma: no cover
    """Taylor coefficients of order ``N + 1`` from those up to ``N`` (``f[i, j, n]``, ``e[n]``) around ``y0``."""
    size = k + 3
    for j in range(residues.size):
        for i in range(k):
            f[i, j, N + 1] = ((rho + i) * (f[i + 1, j, N] - f[i, j, N]) + N * f[i, j, N]) / (u0 * (N + 1.0))
        rhs = 0.0
        for m in range(k + 1):
            acc = 0.0
            for d in range(min(size - 1, N) + 1):
                acc += base[m, d] * f[m, j, N - d]
            rhs += closure[j, m] * acc
        acc_u = u0 * f[k, j, N] - (f[k, j, N - 1] if N >= 1 else 0.0)
        acc_e = 0.0
        for d in range(min(size - 1, N) + 1):
            acc_e += extra[d] * f[k, j, N - d]
        rhs -= closure[j, k + 1] * acc_u + (rho + k) * acc_e
        for d in range(1, min(size - 1, N + 1) + 1):
            rhs -= lhs[d] * (N - d + 1.0) * f[k, j, N - d + 1]
        f[k, j, N + 1] = rhs / (lhs[0] * (N + 1.0))
    if purchases:
        j = residues.size - 1  # residue k - 1
        g = 0.0
        for i in range(k):
            term = u0 * f[i, j, N] + y0 * f[i + 1, j, N]
            if N >= 1:
                term += f[i + 1, j, N - 1] - f[i, j, N - 1]
            g += w[i] * (rho + i) * term
        prev = -2.0 * u0 * N * e[N] + ((N - 1.0) * e[N - 1] if N >= 1 else 0.0)
        e[N + 1] = (g - prev) / (u0 * u0 * (N + 1.0))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _expand(y0, u0, rho, w, k, residues, closure, F, E, purchases, work, series):  # pragma: no cover - compiled
    """Taylor coefficients around ``y0`` to ``_ORDER``, the quantity's series into ``series``; returns its reach.

    The reach is the step whose last two terms are below ``_EPS`` of the solution (at most ``u0/2``).
    """
    Y, U, base, extra, lhs, f, e = work
    _shifted(y0, u0, k, Y, U, base, extra, lhs)
    scale_f = 0.0
    for i in range(k + 1):
        for j in range(residues.size):
            f[i, j, 0] = F[i, j]
            scale_f += abs(F[i, j])
    e[0] = E[0]
    for N in range(_ORDER):
        _coefficients(N, y0, u0, rho, w, k, residues, closure, base, extra, lhs, f, e, purchases)
    reach = 0.5 * u0
    for n in (_ORDER - 1, _ORDER):
        largest = 0.0
        for i in range(k + 1):
            for j in range(residues.size):
                largest = max(largest, abs(f[i, j, n]))
        if largest > 0.0:
            reach = min(reach, (_EPS * scale_f / largest) ** (1.0 / n))
        if purchases and e[n] != 0.0:
            reach = min(reach, (_EPS * abs(E[0]) / abs(e[n])) ** (1.0 / n))
    for n in range(_ORDER + 1):
        if purchases:
            series[n] = e[n]
        else:
            total = 0.0
            for i in range(k):
                for j in range(residues.size):
                    total += w[i] * f[i, j, n]
            series[n] = total
    return reach


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _horner(c, h):  # pragma: no cover - compiled
    value = c[c.size - 1]
    for n in range(c.size - 2, -1, -1):
        value = value * h + c[n]
    return value


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _advance(h, k, residues, F, E, purchases, work):  # pragma: no cover - compiled
    """The state at ``y0 + h`` from the coefficients of the last :func:`_expand`."""
    f, e = work[5], work[6]
    for i in range(k + 1):
        for j in range(residues.size):
            F[i, j] = _horner(f[i, j], h)
    if purchases:
        E[0] = _horner(e, h)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _one(rho, w, a, big_b, k, kappas, weights_t, purchases, scratch):  # pragma: no cover - compiled
    """``sum_j weights_t[j] Q(kappas[j])`` for one element, ``kappas`` ascending (``t/(alpha+T)``).

    Horizons whose phase-count sums are short take them (:func:`phase_count_sums`); from
    the last of those on (or a short start) the ODE carries the solution, unless it is so
    stiff (``a + B`` huge: a mode decaying at the rate ``k (a + B) / y``) that the expansions
    reach but a sliver, where the sums take the remaining horizons.
    """
    work, F, E, closure, residues, full, start_c, q, series = scratch
    total = 0.0
    t = 0
    while t < kappas.size and sum_terms(rho, kappas[t], k) <= _SERIES_TERMS:
        if kappas[t] == 0.0:  # nothing happens in no time
            value = 0.0 if purchases else 1.0
        else:
            c, s = phase_count_sums(rho, w, k, kappas[t], a, big_b, q)
            value = c if purchases else s
        total += weights_t[t] * value
        t += 1
    if t == kappas.size:
        return total
    kappa0 = kappas[t - 1] if t > 0 and kappas[t - 1] > 0.0 else min(kappas[t], _START / (rho + k + 40.0))
    _start(rho, kappa0, a, big_b, k, full, start_c)
    for i in range(k + 1):
        for j in range(residues.size):
            F[i, j] = full[i, residues[j]]
    e_now = 0.0
    for i in range(k):
        e_now += w[i] * start_c[i]
    E[0] = e_now
    for j in range(residues.size):
        _closure_weights(rho, a, big_b, k, residues[j], closure[j])
    y, u = kappa0 / (1.0 + kappa0), 1.0 / (1.0 + kappa0)
    while t < kappas.size:
        reach = _expand(y, u, rho, w, k, residues, closure, F, E, purchases, work, series)
        if reach * _MOST_EXPANSIONS < kappas[t] / (1.0 + kappas[t]) - y:
            break  # stiff (a + B huge): the sums are cheaper for the rest
        while t < kappas.size:
            u_t = 1.0 / (1.0 + kappas[t])
            h = u - u_t if u < 0.5 else kappas[t] / (1.0 + kappas[t]) - y
            if h > reach:
                break
            total += weights_t[t] * _horner(series, h)
            t += 1
        if t < kappas.size:
            _advance(reach, k, residues, F, E, purchases, work)
            y, u = y + reach, u - reach
    for t in range(t, kappas.size):
        c, s = phase_count_sums(rho, w, k, kappas[t], a, big_b, q)
        total += weights_t[t] * (c if purchases else s)
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(rho, z, w, inv_scale, a, big_b, k, times, weights_t, purchases, out):  # pragma: no cover - compiled
    residues = np.arange(k) if not purchases else np.array([k - 1])
    n_res = residues.size
    work = (np.empty((k + 2, k + 2)), np.empty((k + 2, k + 2)), np.empty((k + 2, k + 3)), np.empty(k + 3),
            np.empty(k + 3), np.empty((k + 1, n_res, _ORDER + 1)), np.empty(_ORDER + 1))
    scratch = (work, np.empty((k + 1, n_res)), np.empty(1), np.empty((n_res, k + 2)), residues,
               np.empty((k + 1, k)), np.empty(k), np.empty(k), np.empty(_ORDER + 1))
    kappas = np.empty(times.size)
    for el in range(rho.size):
        if not (rho[el] > 0.0 and z[el] >= 0.0 and inv_scale[el] > 0.0 and a[el] > 0.0 and big_b[el] > 0.0
                and math.isfinite(rho[el] + z[el] + inv_scale[el] + a[el] + big_b[el])):
            out[el] = np.nan
            continue
        for t in range(times.size):
            kappas[t] = times[t] * inv_scale[el]
        out[el] = _one(rho[el], w[el], a[el], big_b[el], k, kappas, weights_t, purchases, scratch)


def over_horizons(times, weights, rho, z, inv_scale, a, big_b, k: int, *, purchases: bool) -> np.ndarray:
    """``sum_j weights[j] Q(times[j])`` of a customer alive at ``T``, every horizon in one pass.

    Parameters
    ----------
    times, weights : array_like
        Horizons after ``T`` (1-d, non-negative) and their weights.
    rho, z, inv_scale, a, big_b : array_like
        ``r + k x``, ``(T - t_x) / (alpha + T)``, ``1 / (alpha + T)``, ``a`` and ``b + x + m``
        (broadcast together).
    k : int
        Erlang phases per inter-purchase time (at least 2).
    purchases : bool
        ``Q`` is the expected purchases in ``(T, T + t]`` (else survival to ``T + t``).

    Returns
    -------
    numpy.ndarray
        One value per element; NaN where a parameter is out of its range.
    """
    times, weights = (np.asarray(v, dtype=float).ravel() for v in (times, weights))
    order = np.argsort(times, kind="stable")
    times, weights = np.ascontiguousarray(times[order]), np.ascontiguousarray(weights[order])
    if times.size and not (times[0] >= 0.0 and np.isfinite(times[-1])):
        raise ValueError("horizons must be finite and non-negative")
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, z, inv_scale, a, big_b)))
    rho, z, inv_scale, a, big_b = (np.ascontiguousarray(v).ravel() for v in arrays)
    with np.errstate(invalid="ignore"):
        w = phase_weights(rho, z, k)
    out = np.empty(rho.size)
    _kernel(rho, z, w, inv_scale, a, big_b, int(k), times, weights, bool(purchases), out)
    return out.reshape(arrays[0].shape)
