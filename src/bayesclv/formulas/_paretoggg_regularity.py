"""The Pareto/GGG sampler's joint move of the regularity population with every customer's ``k``.

Given the sweep's whole gaps (``n = x + 1`` of them per customer, sum ``S``, sum
of logs ``L``) and ``lam`` integrated out, customer ``i``'s log-likelihood in
``k`` is ``l_i(k) = n (k log k - lgamma k) + (k - 1) L + lgamma(r + n k) - (r + n k)
log(alpha + k S)`` (:func:`~bayesclv.formulas._paretoggg_population.latent_total`,
mode 1). Where the data say little about each ``k`` against the population (CDNOW:
a few gaps per customer, a population cv2 near 0), the conditional of ``k`` is the
population's Gamma tilted by ``l_i``, close to ``Gamma(t + a_i, gamma + b_i)`` with
``a_i log k - b_i k`` the Gamma kernel matching ``l_i``'s slope and curvature.

The move (:func:`regularity_move`) proposes a new population coordinate by a
random walk and, given it, every ``k`` afresh from that Gamma approximation; the
Metropolis-Hastings ratio holds the exact densities and both directions' proposal
densities, so it is exact whatever the approximation's quality (which only sets
the acceptance). It then moves the population along its marginal given the gaps
(each ``k`` integrated out, approximately), not along its conditional given the
``k`` (the centred move, which the many ``k`` pin) or given standardised ``k``
(the non-centred one, which the gaps pin collectively).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._paretoggg_population import TARGET, _log_priors, _trigamma
from bayesclv.formulas._summed import digamma

__all__ = ["gamma_kernel", "regularity_move"]

_FLOOR = 1e-300


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gamma_kernel(k0, n, big_l, big_s, r, alpha, out_a, out_b):  # pragma: no cover - compiled
    """Per customer ``(a, b)`` of ``a log k - b k``, matching ``l_i``'s slope and curvature at ``k0``.

    ``a = -l''(k0) k0^2`` (at least 0, so the proposal's shape stays above the
    population's), ``b = a / k0 - l'(k0)``; written into ``out_a``, ``out_b``.
    """
    psi0, tri0, log_k0 = digamma(k0), _trigamma(k0), math.log(k0)
    for i in range(n.size):
        shape = r + n[i] * k0
        ratio = big_s[i] / (alpha + k0 * big_s[i])
        slope = (n[i] * (log_k0 + 1.0 - psi0) + big_l[i] + n[i] * digamma(shape)
                 - n[i] * math.log(alpha + k0 * big_s[i]) - shape * ratio)
        curvature = (n[i] * (1.0 / k0 - tri0) + n[i] * n[i] * _trigamma(shape) - 2.0 * n[i] * ratio
                     + shape * ratio * ratio)
        out_a[i] = max(-curvature * k0 * k0, 0.0)
        out_b[i] = out_a[i] / k0 - slope


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_density(v, shape, rate):  # pragma: no cover - compiled
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1.0) * math.log(v) - rate * v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gaps_loglik(kv, n, big_l, big_s, r, alpha):  # pragma: no cover - compiled
    shape = r + n * kv
    return (n * (kv * math.log(kv) - math.lgamma(kv)) + (kv - 1.0) * big_l + math.lgamma(shape)
            - shape * math.log(alpha + kv * big_s))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weights(k, t, gamma, a, b, gaps, r, alpha):  # pragma: no cover - compiled
    """Sum over customers of log target over log proposal at ``k``: population density, ``l_i``, proposal."""
    n, big_l, big_s = gaps[0], gaps[1], gaps[2]
    total = 0.0
    for i in range(k.size):
        rate = max(gamma + b[i], 0.1 * gamma)
        total += (_log_gamma_density(k[i], t, gamma) + _gaps_loglik(k[i], n[i], big_l[i], big_s[i], r, alpha)
                  - _log_gamma_density(k[i], t + a[i], rate))
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def regularity_move(c, k, gaps, coords, prior, steps, adapt, gain, pop, work):  # pragma: no cover - compiled
    """Move k's population coordinate ``c`` (0: log mean, 1: log cv2) with every ``k`` drawn afresh given it.

    ``gaps``: per customer ``n``, ``L``, ``S``; ``pop``: the population, of which
    ``r, alpha`` are read; ``steps[0, 8 + c]``: the random walk's step, tuned towards
    :data:`~bayesclv.formulas._paretoggg_population.TARGET` with ``adapt``;
    ``work`` (4, customers): scratch. ``k`` is updated in place when accepted.
    """
    n, big_l, big_s = gaps[0], gaps[1], gaps[2]
    r, alpha = pop[2], pop[3]
    old = coords[0].copy()
    coords[0, c] += steps[0, 8 + c] * np.random.standard_normal()
    t_old, t_new = math.exp(-old[1]), math.exp(-coords[0, 1])
    g_old, g_new = t_old / math.exp(old[0]), t_new / math.exp(coords[0, 0])
    gamma_kernel(math.exp(old[0]), n, big_l, big_s, r, alpha, work[0], work[1])
    if c == 0:
        gamma_kernel(math.exp(coords[0, 0]), n, big_l, big_s, r, alpha, work[2], work[3])
    else:  # the mean, where the kernels are matched, is unchanged: the same kernels
        work[2], work[3] = work[0], work[1]
    moved = np.empty(k.size)
    for i in range(k.size):
        moved[i] = max(np.random.gamma(t_new + work[2, i], 1.0 / max(g_new + work[3, i], 0.1 * g_new)), _FLOOR)
    log_ratio = (_log_priors(coords[0], prior[0]) - _log_priors(old, prior[0])
                 + _weights(moved, t_new, g_new, work[2], work[3], gaps, r, alpha)
                 - _weights(k, t_old, g_old, work[0], work[1], gaps, r, alpha))
    if adapt:
        steps[0, 8 + c] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - TARGET))
    if math.log(np.random.random()) < log_ratio:
        k[:] = moved
        return
    coords[0, 0], coords[0, 1] = old[0], old[1]
