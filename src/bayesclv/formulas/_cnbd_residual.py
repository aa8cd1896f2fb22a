"""(M)BG/CNBD-k DERT given alive for ``k > 1``: a product Gauss-Legendre rule over lambda and ``p``.

Alive at ``T`` with ``i`` phases of the next purchase done, rate ``lambda`` and
dropout probability ``p`` (see :mod:`bayesclv.formulas.cnbd`), purchase ``j``
after ``T`` comes ``j k - i`` phases later, at a Gamma(``j k - i``, ``lambda``)
time whose discount factor has expectation ``q^(j k - i)``, ``q = lambda / (lambda
+ delta)``; it is made if none of the ``j - 1`` before it ended the relationship,
probability ``(1-p)^(j-1)``. Summing the geometric series,

``DERT(lambda, p, i) = q^(k-i) / (1 - c + c p)``,  ``c = q^k``.

Mixed over the phases done (``lambda | i ~ Gamma(rho+i, A)``, weights ``w_i``) and
``p ~ Beta(a, B)`` (independent of ``lambda`` given alive), DERT given alive is
``sum_i w_i E_lambda[q^(k-i) H(c)]`` with ``H(c) = E_p[1 / (1 - c + c p)]``
(``2F1(1, B; a+B; c)``, which no stable closed form gives near ``c = 1``, where it
matters for small ``delta``). Both expectations are taken numerically on one grid:

- ``lambda`` in ``s = log(lambda A)``: 8-node Gauss-Legendre panels of width at most
  ``min(1, 1.5 e^(-s/2))`` (about 1.5 standard deviations of ``log lambda`` at the peak;
  the nearest complex singularity of the integrand lies ``pi/2`` away), from the peak
  outwards until a bound on the log-integrand (with ``H <= 1/(1-c)``) is ``_DROP``
  below its largest value;
- ``p`` in ``v = logit(p)``: panels of width at most ``min(1, 1.5 / sd)`` with ``sd^2 =
  (a+B) p (1-p)`` the Beta log-density's curvature, from its mode outwards until
  the density (on the left times ``1/(1-c)``, the integrand's bound) is below
  ``e^(-_DROP)``, or until ``p`` reaches ``_TAIL`` times the smallest ``(1-c)/c`` of
  the grid (below, ``1/(1-c+cp)`` is linear in ``p`` to ``1e-16``) or ``1 - _TAIL``
  (above, linear in ``1 - p``); those tails are partial Beta moments, regularised
  incomplete beta functions of tiny arguments (their power series).

``H`` at every ``lambda`` node is then a weighted sum over the ``p`` nodes; no
cancellation occurs (all terms positive).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from bayesclv.formulas._cnbd_sums import phase_weights
from bayesclv.formulas._ops import gauss_legendre

__all__ = ["cnbd_dert_quadrature"]

_NODES, _WEIGHTS = gauss_legendre(8)
_DROP = 50.0  # integrand levels below exp(-_DROP) of the largest are left out
_TAIL = 1e-8  # linearisation of 1/(1-c+cp) in p (or 1-p) beyond this: relative error _TAIL^2
_MAX_PANELS = 4096
_SERIES_TERMS = 200


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lambda_step(s):  # pragma: no cover - compiled
    return min(1.0, 1.5 * math.exp(-0.5 * s))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _p_step(v, ab):  # pragma: no cover - compiled
    p = 1.0 / (1.0 + math.exp(-v))
    curvature = ab * p * (1.0 - p)
    return 1.0 if curvature <= 2.25 else 1.5 / math.sqrt(curvature)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_rate_bound(s, rho, log_w, d, k):  # pragma: no cover - compiled
    """log of ``sum_i w_i Gamma(rho+i, 1)-density(e^s) e^s q^(k-i)`` and ``log(1/(1-c))`` at ``s``."""
    lam = math.exp(s)
    log_q = -math.log1p(d / lam)
    top = -np.inf
    terms = np.empty(k)
    for i in range(k):
        terms[i] = log_w[i] + (rho + i) * s - lam - math.lgamma(rho + i) + (k - i) * log_q
        top = max(top, terms[i])
    total = 0.0
    for i in range(k):
        total += math.exp(terms[i] - top)
    return top + math.log(total), -math.log(-math.expm1(k * log_q))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _walk(start, direction, limit, rho, log_w, d, k, edges, count):  # pragma: no cover - compiled
    """Panel edges from ``start`` outwards (``direction`` +-1) until the bound drops ``_DROP`` below its maximum."""
    s = start
    top = -np.inf
    for _ in range(_MAX_PANELS // 2):
        value, boost = _log_rate_bound(s, rho, log_w, d, k)
        top = max(top, value)
        if value + boost < top - _DROP:
            break
        step = _lambda_step(s + 1.0) if direction > 0 else _lambda_step(s)
        s = s + direction * step
        if (direction > 0 and s >= limit) or (direction < 0 and s <= limit):
            break
        edges[count] = s
        count += 1
    return count, top


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_beta_series(x, a, b, log_beta_ab):  # pragma: no cover - compiled
    """``log I_x(a, b)`` for small ``x``: ``x^a (1-x)^b / (a B(a,b)) sum_n (a+b)_n / (a+1)_n x^n``."""
    term = total = 1.0
    for n in range(_SERIES_TERMS):
        term *= (a + b + n) / (a + 1.0 + n) * x
        total += term
        if term < 1e-17 * total:
            break
    return a * math.log(x) + b * math.log1p(-x) - math.log(a) - log_beta_ab + math.log(total)


@numba.njit(cache=True, nogil=True)
def _join_edges(left, n_left, centre, right, n_right):  # pragma: no cover - compiled
    """Panel edges in ascending order from two walks out of ``centre`` (``left`` walked downwards)."""
    edges = np.empty(n_left + n_right + 1)
    for j in range(n_left):
        edges[j] = left[n_left - 1 - j]
    edges[n_left] = centre
    for j in range(n_right):
        edges[n_left + 1 + j] = right[j]
    return edges


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _panel_nodes(edges):  # pragma: no cover - compiled
    """The Gauss-Legendre nodes of every panel between consecutive ``edges``, and their weights x panel width."""
    n = (edges.size - 1) * _NODES.size
    nodes, weights = np.empty(n), np.empty(n)
    j = 0
    for e in range(edges.size - 1):
        width = edges[e + 1] - edges[e]
        for g in range(_NODES.size):
            nodes[j] = edges[e] + width * _NODES[g]
            weights[j] = width * _WEIGHTS[g]
            j += 1
    return nodes, weights


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _one(rho, log_w, d, a, big_b, k, log_beta_ab, log_beta_a1b, log_beta_ba1):  # pragma: no cover - compiled
    """DERT given alive (times ``1``) for one element; ``d = delta A``."""
    # the lambda grid, from the peak of the rate part outwards
    best, start = -np.inf, 0.0
    for i in range(k + 1):
        s = math.log(rho + i)
        value = _log_rate_bound(s, rho, log_w, d, k)[0]
        if value > best:
            best, start = value, s
    left = np.empty(_MAX_PANELS // 2)
    right = np.empty(_MAX_PANELS // 2)
    n_left, _ = _walk(start, -1.0, -np.inf, rho, log_w, d, k, left, 0)
    n_right, _ = _walk(start, 1.0, np.inf, rho, log_w, d, k, right, 0)
    lam_node, lam_weight = _panel_nodes(_join_edges(left, n_left, start, right, n_right))
    n_lam = lam_node.size
    one_minus_c = np.empty(n_lam)
    c = np.empty(n_lam)
    for j in range(n_lam):  # weight: sum_i w_i Gamma density x q^(k-i) x Jacobian x rule weight
        s = lam_node[j]
        lam = math.exp(s)
        log_q = -math.log1p(d / lam)
        total = 0.0
        for i in range(k):
            if log_w[i] > -np.inf:
                total += math.exp(log_w[i] + (rho + i) * s - lam - math.lgamma(rho + i) + (k - i) * log_q)
        lam_weight[j] *= total
        one_minus_c[j] = -math.expm1(k * log_q)
        c[j] = 1.0 - one_minus_c[j]
    eps_min, boost = np.inf, 0.0
    for j in range(n_lam):
        if lam_weight[j] > 0.0:
            eps_min = min(eps_min, one_minus_c[j] / c[j])
            boost = max(boost, -math.log(one_minus_c[j]))
    # the p grid in v = logit(p), from the Beta mode outwards
    ab = a + big_b
    mode = math.log(a) - math.log(big_b)
    v_lo = math.log(_TAIL * eps_min) - math.log1p(_TAIL * eps_min)
    v_hi = -math.log(_TAIL) + math.log1p(-_TAIL)
    mode = min(max(mode, v_lo), v_hi)
    p_edges_l = np.empty(_MAX_PANELS // 2)
    p_edges_r = np.empty(_MAX_PANELS // 2)
    n_pl = n_pr = 0
    v = mode
    lower_tail = False
    for _ in range(_MAX_PANELS // 2 - 1):
        log_dens = a * v - ab * math.log1p(math.exp(v)) - log_beta_ab if v < 30.0 else -big_b * v - log_beta_ab
        if log_dens + boost < -_DROP and v < mode:
            break
        v = v - min(_p_step(v, ab), _p_step(v - _p_step(v, ab), ab))
        if v <= v_lo:
            v = v_lo
            lower_tail = True
        p_edges_l[n_pl] = v
        n_pl += 1
        if lower_tail:
            break
    v = mode
    upper_tail = False
    for _ in range(_MAX_PANELS // 2 - 1):
        log_dens = a * v - ab * math.log1p(math.exp(v)) - log_beta_ab if v < 30.0 else -big_b * v - log_beta_ab
        if log_dens < -_DROP and v > mode:
            break
        v = v + min(_p_step(v, ab), _p_step(v + _p_step(v, ab), ab))
        if v >= v_hi:
            v = v_hi
            upper_tail = True
        p_edges_r[n_pr] = v
        n_pr += 1
        if upper_tail:
            break
    p_node, p_weight = _panel_nodes(_join_edges(p_edges_l, n_pl, mode, p_edges_r, n_pr))
    n_p = p_node.size
    for j in range(n_p):  # the node in p, its weight: Beta density x Jacobian x rule weight
        v = p_node[j]
        log_p = -math.log1p(math.exp(-v)) if v > -30.0 else v - math.log1p(math.exp(v))
        log_q = -math.log1p(math.exp(v)) if v < 30.0 else -v - math.log1p(math.exp(-v))
        p_node[j] = math.exp(log_p)
        p_weight[j] *= math.exp(a * log_p + big_b * log_q - log_beta_ab)
    # tails: below p_lo, 1/(1-c+cp) = (1/(1-c)) (1 - c p/(1-c)); above 1 - q_hi, 1 + c (1-p)
    low0 = low1 = high0 = high1 = 0.0
    if lower_tail:
        p_lo = 1.0 / (1.0 + math.exp(-v_lo))
        low0 = math.exp(_log_beta_series(p_lo, a, big_b, log_beta_ab))
        low1 = math.exp(log_beta_a1b - log_beta_ab + _log_beta_series(p_lo, a + 1.0, big_b, log_beta_a1b))
    if upper_tail:
        q_hi = 1.0 / (1.0 + math.exp(v_hi))
        high0 = math.exp(_log_beta_series(q_hi, big_b, a, log_beta_ab))
        high1 = math.exp(log_beta_ba1 - log_beta_ab + _log_beta_series(q_hi, big_b + 1.0, a, log_beta_ba1))
    total = 0.0
    for j in range(n_lam):
        if lam_weight[j] == 0.0:
            continue
        cj, mj = c[j], one_minus_c[j]
        h = 0.0
        for m in range(n_p):
            h += p_weight[m] / (mj + cj * p_node[m])
        h += (low0 - cj / mj * low1) / mj + high0 + cj * high1
        total += lam_weight[j] * h
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(rho, log_w, d, a, big_b, k, log_beta_ab, log_beta_a1b, log_beta_ba1, out):  # pragma: no cover
    for e in range(rho.size):
        if not (rho[e] > 0.0 and d[e] > 0.0 and a[e] > 0.0 and big_b[e] > 0.0
                and math.isfinite(rho[e] + d[e] + a[e] + big_b[e])):
            out[e] = np.nan
            continue
        out[e] = _one(rho[e], log_w[e], d[e], a[e], big_b[e], k, log_beta_ab[e], log_beta_a1b[e], log_beta_ba1[e])


def cnbd_dert_quadrature(rho, z, d, a, big_b, k: int) -> np.ndarray:
    """DERT given alive of the (M)BG/CNBD-k (module docstring), broadcast.

    Parameters
    ----------
    rho, z, d, a, big_b : array_like
        ``r + k x``, ``(T - t_x) / (alpha + T)``, ``delta (alpha + T)``, ``a`` and ``b + x + m``.
    k : int
        Erlang phases per inter-purchase time (also correct for 1, the BG/NBD with ``z = 0``).

    Returns
    -------
    numpy.ndarray
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (rho, z, d, a, big_b)))
    rho, z, d, a, big_b = (np.ascontiguousarray(v).ravel() for v in arrays)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_w = np.log(phase_weights(rho, z, k))
        out = np.empty(rho.size)
        _kernel(rho, log_w, d, a, big_b, int(k), special.betaln(a, big_b), special.betaln(a + 1.0, big_b),
                special.betaln(big_b + 1.0, a), out)
    return out.reshape(arrays[0].shape)
