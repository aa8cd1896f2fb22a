"""Adaptive Gauss-Legendre quadrature of ``exp(g)`` where ``g`` is an increasing plus a decreasing part.

The lifetime integrals of the Gamma-Gompertz/NBD and the infinite-horizon
expectations (DERT) have integrands that are not log-concave (the Pareto/NBD
window of ``paretonbd`` relies on that), but each log-integrand splits into an
increasing part ``inc`` (a Jacobian, a power of the time waited) and a
decreasing part ``dec`` (survival, discounting, a power law of the time
elapsed). On any piece ``[a, c]`` that gives two bounds from the end points
alone::

    inc(a) + dec(c)  <=  g(u)  <=  inc(c) + dec(a),

so the variation of ``g`` over the piece is at most ``inc(c) - inc(a) +
dec(a) - dec(c)``. :func:`integrate` bisects (depth first, the piece with the
higher bound first) until every piece either varies by at most
``_SLOPE`` (then an 8-node Gauss-Legendre rule, calibrated like the Pareto/NBD
pieces: error below 1e-13 of the piece; ``BETA_DISCOUNT``: ``_LONG_SLOPE`` under a
16-node rule) or cannot hold more than
``exp(-_DROP)`` of what has been integrated so far (then it is dropped). The
number of pieces follows the integrand's mass, however wide the interval.

One compiled engine serves several integrands, chosen by an integer ``kind``
(numba does not cache functions passed as arguments); each kind's parameters
travel in a float64 vector ``p``. Special functions called by the integrands
live in :mod:`bayesclv.formulas._special`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._ops import gauss_legendre
from bayesclv.formulas._special import gamma_p, log_tricomi, logaddexp

__all__ = ["BETA_DISCOUNT", "GAMMA_TAIL", "GGOM_COUNT", "GGOM_LIFETIME", "N_GRAD", "RENEWAL", "RENEWAL_END", "SURVIVAL",
           "integrate", "killed_renewals", "log_y", "offset", "workspace"]

GGOM_LIFETIME = 0  # p = (rho, alpha, b, s, beta, m, log m, log beta); variable v, y = m (e^v - 1)
SURVIVAL = 1  # p = (s, sigma, log ic, m, log m): (ic + y)^-s (1 + y)^-sigma dy
GGOM_COUNT = 2  # p = (n, rho, A, s, log c, b, m, log m): NBD count x Gompertz lifetime density
BETA_DISCOUNT = 3  # p = (a, B, log rho, delta A, rho + 1): Beta(a, B) expectation, variable logit(p)
GAMMA_TAIL = 4  # p = (k,): t^(k-1) e^-t dt in u = log t; the node partial is log t
RENEWAL = 5  # p = (k, k lambda, mu, Delta, t, k log omega, k lambda + mu): Pareto/GGG renewals, u = log(Delta+w)
RENEWAL_END = 6  # the same integrand near w = t, in u = log(t - w)
N_GRAD = 5  # partial derivatives returned by GGOM_LIFETIME (GAMMA_TAIL: 1)

_NODES, _WEIGHTS = gauss_legendre(8)
_LOG_WEIGHTS = np.log(_WEIGHTS)
_SHORT_NODES, _SHORT_WEIGHTS = gauss_legendre(4)
_SHORT_LOG_WEIGHTS = np.log(_SHORT_WEIGHTS)
_DROP = 40.0  # pieces that cannot hold exp(-40) of the integral so far are dropped
_SLOPE = 3.0  # largest variation bound of g over a piece under the 8-node rule
_SHORT_WIDTH, _SHORT_SLOPE = 0.1, 0.25  # the 4-node rule: narrow, nearly flat pieces
# BETA_DISCOUNT, evaluated a few hundred times per (draw, history), takes a 16-node rule instead of the 8-node
# one: its error bound for e^(k u) over a piece of variation 2k = 16 is 2e-15, so it needs about a third of
# the nodes per unit of variation in the exponential tails of the Beta density
_LONG_NODES, _LONG_WEIGHTS = gauss_legendre(16)
_LONG_LOG_WEIGHTS = np.log(_LONG_WEIGHTS)
_LONG_SLOPE = 16.0
# widest piece per kind: the nearest singularity of the log-integrand lies at least ~1 (GGOM_LIFETIME,
# GGOM_COUNT: a real one left of v = 0) or pi (SURVIVAL, BETA_DISCOUNT: complex) away from the real
# interval (BETA_DISCOUNT: pieces of width 4 under the 16-node rule: 7e-18); GAMMA_TAIL is entire; RENEWAL's renewal
# function has steps of width ~1/sqrt(k) in u
_WIDTH = np.array([1.0, 2.0, 1.0, 4.0, 2.0, 1.0, 1.0])
_RENEWAL_TERMS = 100000  # a bound on the renewals summed (they stop below 1e-17 of the sum)
_STACK = 200
_MAX_EVALS = 40000  # a bound for non-finite inputs: finite ones need a few hundred node evaluations


@numba.njit(cache=True, nogil=True)
def workspace():  # pragma: no cover - compiled
    """Scratch memory of :func:`integrate` (one per thread)."""
    return np.empty((7, _STACK))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_y(v, m, log_m):  # pragma: no cover - compiled
    """``log y`` and ``log(1 + y)`` for ``y = m (e^v - 1)``, ``v >= 0``, ``0 < m <= 1``, without overflow."""
    if not v > 0.0:
        return -np.inf, 0.0
    ly = log_m + v + math.log(-math.expm1(-v))
    if v < 700.0 and ly < 30.0:
        return ly, math.log1p(m * math.expm1(v))
    q = log_m + v  # log(m + y)
    return ly, q + math.log1p((1.0 - m) * math.exp(-q))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def offset(log1p_y, m, log_m):  # pragma: no cover - compiled
    """The ``v`` of :func:`log_y` at which ``log(1 + y)`` equals ``log1p_y`` (``= b tau`` for the Gompertz)."""
    if not log1p_y > 0.0:
        return 0.0
    if log1p_y < 30.0:
        return math.log1p(math.expm1(log1p_y) / m)
    return log1p_y - log_m + math.log1p((m - 1.0) * math.exp(-log1p_y))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def killed_renewals(v, k, k_log_omega, rate):  # pragma: no cover - compiled
    """``sum_(n>=0) omega^(nk) P(nk, rate v)``: expected renewals in ``[0, v]`` (one at 0) before an Exp(mu) death.

    Renewal ``n`` happens at a Gamma(nk, k lambda) time ``G``; ``E[e^(-mu G) 1{G <= v}] =
    omega^(nk) P(nk, (k lambda + mu) v)`` with ``omega = k lambda / (k lambda + mu)``. Terms
    decrease in ``n``; the sum stops when one falls below 1e-17 of it.
    """
    total = 1.0
    if not v > 0.0:
        return total
    y = rate * v
    for n in range(1, _RENEWAL_TERMS):
        term = math.exp(n * k_log_omega) * gamma_p(n * k, y)
        total += term
        if term < 1e-17 * total:
            break
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _node(kind, p, u, with_grad, d):  # pragma: no cover - compiled
    """``(inc, dec)`` of the log-integrand of ``kind`` at ``u``; with ``with_grad`` its partials into ``d``."""
    if kind == GGOM_LIFETIME:
        rho, alpha, b, s, m, log_m, log_beta = p[0], p[1], p[2], p[3], p[5], p[6], p[7]
        ly, l1 = log_y(u, m, log_m)
        lb = logaddexp(log_beta, ly)  # log(beta + y), y = e^(b tau) - 1
        tau = l1 / b
        la = math.log(alpha + tau)
        if with_grad:  # d/d(rho, alpha, b, s, beta) of log[(alpha+tau)^-rho e^(b tau) (beta+y)^-(s+1)]
            d[0] = -la
            d[1] = -rho / (alpha + tau)
            d[2] = tau * (1.0 - (s + 1.0) * math.exp(l1 - lb))
            d[3] = -lb
            d[4] = -(s + 1.0) * math.exp(-lb)
        return u, -rho * la - (s + 1.0) * lb
    if kind == SURVIVAL:
        ly, l1 = log_y(u, p[3], p[4])
        return u, -p[0] * logaddexp(p[2], ly) - p[1] * l1
    if kind == GGOM_COUNT:
        n, rho, big_a, s, log_c, b = p[0], p[1], p[2], p[3], p[4], p[5]
        ly, l1 = log_y(u, p[6], p[7])
        w = l1 / b
        inc = u + (n * (math.log(w) - math.log(big_a + w)) if n > 0.0 else 0.0)
        return inc, -rho * math.log1p(w / big_a) - (s + 1.0) * logaddexp(0.0, log_c + ly)
    if kind == GAMMA_TAIL:
        if with_grad:
            d[0] = u
        return p[0] * u, -math.exp(u)
    if kind == RENEWAL:  # first renewal at w = e^u - Delta after T, then the killed renewal function
        e = math.exp(u)
        w = e - p[3]
        return p[0] * u, -p[1] * e - p[2] * w + math.log(killed_renewals(p[4] - w, p[0], p[5], p[6]))
    if kind == RENEWAL_END:  # w = t - e^u: the renewal function ~ 1 + c (t-w)^k is smooth in log(t - w)
        v = math.exp(u)
        w = p[4] - v
        power = (p[0] - 1.0) * math.log(p[3] + w)  # decreasing in u for k >= 1, increasing below
        inc = u + math.log(killed_renewals(v, p[0], p[5], p[6])) - p[1] * (p[3] + w) - p[2] * w
        return (inc, power) if p[0] >= 1.0 else (inc + power, 0.0)
    # BETA_DISCOUNT: u = logit(p); E_lambda[lambda / (delta + p lambda)] = (rho/p) U(1, 1-rho, delta A / p).
    # log p, log(1-p) and 1/p from one exponential: this node runs a few hundred times per DERT
    e = math.exp(-abs(u))
    log1p_e = math.log1p(e)
    if u > 0.0:
        log_p, log_q, inv_p = -log1p_e, -u - log1p_e, 1.0 + e
    else:
        log_p, log_q, inv_p = u - log1p_e, -log1p_e, 1.0 + 1.0 / e
    return p[0] * log_p, p[1] * log_q + p[2] - log_p + log_tricomi(p[3] * inv_p, p[4])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def integrate(kind, p, lo, hi, with_grad, grad, work):  # pragma: no cover - compiled
    """``log int_lo^hi exp(inc(u) + dec(u)) du`` for the integrand ``kind`` (see module docstring).

    With ``with_grad`` the weighted averages of the node partials (``kind ==
    GGOM_LIFETIME``: the partial derivatives of the log-integral) are written
    to ``grad[:N_GRAD]``. ``work`` is :func:`workspace`. Returns ``-inf`` for
    an empty interval and NaN where the inputs are not finite (the evaluation
    budget runs out).
    """
    for k in range(N_GRAD):
        grad[k] = 0.0
    if not hi > lo:
        return -np.inf
    d = np.empty(N_GRAD)
    s_a, s_c, s_ia, s_da, s_ic, s_dc = work[0], work[1], work[2], work[3], work[4], work[5]
    ia, da = _node(kind, p, lo, False, d)
    ic, dc = _node(kind, p, hi, False, d)
    s_a[0], s_c[0], s_ia[0], s_da[0], s_ic[0], s_dc[0] = lo, hi, ia, da, ic, dc
    top, evals = 1, 2
    h_max, total = -np.inf, 0.0
    sums = np.zeros(N_GRAD)
    widest = _WIDTH[kind]
    slope = _LONG_SLOPE if kind == BETA_DISCOUNT else _SLOPE
    while top > 0:
        top -= 1
        a, c, ia, da, ic, dc = s_a[top], s_c[top], s_ia[top], s_da[top], s_ic[top], s_dc[top]
        width = c - a
        upper = ic + da
        if total > 0.0 and upper + math.log(width) < h_max + math.log(total) - _DROP:
            continue
        variation = upper - ia - dc
        if width <= _SHORT_WIDTH and variation <= _SHORT_SLOPE:
            nodes, log_weights = _SHORT_NODES, _SHORT_LOG_WEIGHTS
        elif width <= widest and variation <= slope:
            nodes, log_weights = (_LONG_NODES, _LONG_LOG_WEIGHTS) if kind == BETA_DISCOUNT else (_NODES, _LOG_WEIGHTS)
        else:
            if top + 2 > _STACK or evals > _MAX_EVALS:
                return np.nan
            mid = 0.5 * (a + c)
            im, dm = _node(kind, p, mid, False, d)
            evals += 1
            right_higher = ic + dm >= im + da  # the half with the higher bound is pushed last, popped first
            for half in range(2):
                if (half == 1) == right_higher:
                    s_a[top], s_c[top], s_ia[top], s_da[top], s_ic[top], s_dc[top] = mid, c, im, dm, ic, dc
                else:
                    s_a[top], s_c[top], s_ia[top], s_da[top], s_ic[top], s_dc[top] = a, mid, ia, da, im, dm
                top += 1
            continue
        log_width = math.log(width)
        for k in range(nodes.size):
            inc, dec = _node(kind, p, a + width * nodes[k], with_grad, d)
            h = inc + dec + log_weights[k] + log_width
            if h > h_max:  # rescale the sums to the new maximum
                scale = math.exp(h_max - h)
                total *= scale
                for j in range(N_GRAD):
                    sums[j] *= scale
                h_max = h
            e = math.exp(h - h_max)
            total += e
            if with_grad:
                for j in range(N_GRAD):
                    sums[j] += e * d[j]
        evals += nodes.size
    if not total > 0.0:
        return -np.inf
    if with_grad:
        for j in range(N_GRAD):
            grad[j] = sums[j] / total
    return h_max + math.log(total)
