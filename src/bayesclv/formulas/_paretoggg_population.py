"""The Pareto/GGG sampler's population moves (:mod:`._paretoggg_gibbs` runs them).

Each latent's population ``Gamma(shape, rate)`` is sampled in (log mean, log cv2)
(``cv2 = 1 / shape``), the coordinates its priors are on. Four kinds of move,
each leaving the posterior unchanged:

- **collapsed** (:func:`population_steps`): given the augmented data of a sweep
  (every customer's ``x + 1`` whole gaps ``S`` and observed lifetime ``tau_c``),
  ``lam`` and ``mu`` are conjugate, so the population of each is moved with the
  rates integrated out (per customer ``Gamma(r + n k) alpha^r / (Gamma(r) (alpha +
  k S)^(r + n k))``, ``n = x + 1``; and ``s^d beta^s / (beta + tau_c)^(s + d)``,
  ``d`` the death flag), after which the rates are drawn afresh. This removes
  the coupling that makes a population wait for its latents: a customer with
  one purchase pins its own rate to the population, not the population to it.
  ``k``'s population is moved given the ``k`` themselves (a sum and a sum of logs).
- **non-centred** (:func:`noncentred_move`): a population coordinate moves and
  every latent keeps its standardised log ``z = (log v - psi(shape) + log rate) /
  sqrt(psi'(shape))``; the ratio takes the likelihood of every customer, either
  with the lifetime and the next gap integrated out (``mode`` 0), or for ``k``
  given the gaps with ``lam`` integrated out (``mode`` 1). It moves the population
  where the augmented data pin it (the dropout population of customers with no
  repeat purchase) and ``k``'s population with its latents. With ``linear`` the
  random walk is on the cv2 itself rather than its log (off by default in
  :data:`~bayesclv.formulas._paretoggg_gibbs.MOVES`, measured in
  ``validation/results/paretoggg_mixing.md``).
- **partially non-centred** (:func:`partial_noncentred_move`): as the non-centred
  move (mode 0), but each latent is standardised under the conjugate part of its
  own conditional rather than under the population, so customers whose data pin
  their rate keep it and the others move with the population; one coordinate at a
  time, or lam's and mu's four at once along their posterior covariance
  (:func:`joint_partial_move`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._prior_density import log_prior
from bayesclv.formulas._summed import digamma
from bayesclv.formulas.paretoggg import _loglik_kernel

__all__ = ["joint_noncentred_move", "joint_partial_move", "latent_total", "lifetime_given_gap", "noncentred_move",
           "partial_noncentred_move", "population_steps", "to_population"]

TARGET = 0.44  # acceptance rate the random-walk steps are tuned to (one dimension)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_priors(coords_j, prior_j):  # pragma: no cover - compiled
    """Log prior of one population in (log mean, log cv2), the Jacobians of the logs included."""
    return (log_prior(int(prior_j[0]), prior_j[1], prior_j[2], math.exp(coords_j[0])) + coords_j[0]
            + log_prior(int(prior_j[3]), prior_j[4], prior_j[5], math.exp(coords_j[1])) + coords_j[1])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _population_loglik(j, shape, log_rate, a, b, sums):  # pragma: no cover - compiled
    """Log-likelihood of population ``j`` (``Gamma(shape, e^log_rate)``) given the data of a collapsed move.

    ``j = 0``: the latents ``k`` themselves (``sums``: their sum and sum of logs);
    ``j = 1``: ``lam`` integrated out given ``a = n k`` and ``b = k S``; ``j = 2``:
    ``mu`` integrated out given the death flags ``a`` (``sums[0]`` their sum) and ``b = tau_c``;
    ``j = 3``: ``mu`` and the lifetime integrated out given the next gaps (:func:`_dropout_loglik`).
    """
    n = a.size
    rate = math.exp(log_rate)
    if j == 3:
        return _dropout_loglik(shape, rate, a, b)
    if j == 0:
        return n * (shape * log_rate - math.lgamma(shape)) + (shape - 1.0) * sums[1] - rate * sums[0]
    total = n * shape * log_rate
    if j == 1:
        total -= n * math.lgamma(shape)
        for i in range(n):
            total += math.lgamma(shape + a[i]) - (shape + a[i]) * math.log(rate + b[i])
        return total
    total += sums[0] * math.log(shape)  # Gamma(s + 1) / Gamma(s) = s for each death
    for i in range(n):
        total -= (shape + a[i]) * math.log(rate + b[i])
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dropout_loglik(s, beta, t_x, w_in):  # pragma: no cover - compiled
    """Log-likelihood of the dropout population ``Gamma(s, beta)`` given the next gaps, ``mu`` and lifetime integrated.

    With ``mu`` integrated out the lifetime has the survival ``S(t) = (beta / (beta + t))^s``
    (Lomax). Given the next gap ``W``, the history says the customer lived past ``t_x``
    and, where the next purchase would have come by ``T`` (``w_in = W``; otherwise
    ``w_in = inf``), died before it: ``S(t_x) - S(t_x + W)``. A few logs per customer,
    no incomplete gamma; the lifetimes then are drawn afresh (:func:`lifetime_given_gap`).
    """
    total = 0.0
    log_beta = math.log(beta)
    for i in range(t_x.size):
        b0 = beta + t_x[i]
        total += s * (log_beta - math.log(b0))
        if w_in[i] < np.inf:
            total += math.log(-math.expm1(-s * math.log1p(w_in[i] / b0)))
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lifetime_given_gap(t_x, T, w, s, beta, alive, u):  # pragma: no cover - compiled
    """Each customer's lifetime given the next gap ``w``, ``mu`` integrated out: ``alive`` and ``u`` in place.

    The lifetime is Lomax (:func:`_dropout_loglik`) truncated to ``(t_x, t_x + w)``
    where the next purchase would have come by ``T``, to ``(t_x, inf)`` otherwise:
    an inverse-distribution draw, ``beta + tau = (beta + t_x) V^(-1/s)`` with ``V``
    uniform between the truncation's survival ratio and 1. Beyond ``T`` the customer
    is alive (``u = T - t_x``), as the sweep records it.
    """
    for i in range(t_x.size):
        gap = T[i] - t_x[i]
        b0 = beta + t_x[i]
        cut = math.expm1(-s * math.log1p(w[i] / b0)) if w[i] <= gap else -1.0  # -(1 - S ratio at the bound)
        log_v = math.log1p(np.random.random() * cut)
        v = b0 * math.expm1(-log_v / s)
        if v > gap or not gap > 0.0:
            alive[i], u[i] = 1, gap
        else:
            alive[i], u[i] = 0, max(v, 1e-300)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _population_target(j, coords_j, a, b, sums, prior_j):  # pragma: no cover - compiled
    shape = math.exp(-coords_j[1])
    return _population_loglik(j, shape, -coords_j[1] - coords_j[0], a, b, sums) + _log_priors(coords_j, prior_j)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def population_steps(coords, j, a, b, sums, prior, steps, repeats, adapt, gain):  # pragma: no cover - compiled
    """Random-walk Metropolis on population ``j``'s (log mean, log cv2), ``repeats`` steps per coordinate.

    The target is :func:`_population_loglik` (``a, b, sums`` as there) with the
    priors; ``steps[j, 0:2]`` are the steps (``j = 3``: ``steps[2, 8:10]``), tuned towards :data:`TARGET`
    with ``adapt``.
    """
    row, base = min(j, 2), 8 if j == 3 else 0  # j = 3 moves mu's population (row 2) with steps of its own
    current = _population_target(j, coords[row], a, b, sums, prior[row])
    for _ in range(repeats):
        for c in range(2):
            old = coords[row, c]
            coords[row, c] = old + steps[row, base + c] * np.random.standard_normal()
            proposed = _population_target(j, coords[row], a, b, sums, prior[row])
            log_ratio = proposed - current
            if math.log(np.random.random()) < log_ratio:
                current = proposed
            else:
                coords[row, c] = old
            if adapt:
                steps[row, base + c] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - TARGET))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trigamma(x):  # pragma: no cover - compiled
    """Trigamma function for ``x > 0``: recurrence up to ``x >= 6``, then the asymptotic series."""
    shift = 0.0
    while x < 6.0:
        shift += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    return shift + 1.0 / x + 0.5 * f + f / x * (1.0 / 6 - f * (1.0 / 30 - f * (1.0 / 42 - f / 30)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def latent_total(mode, j, v, data, k, lam, mu, gaps, pop, out):  # pragma: no cover - compiled
    """Log-likelihood of every customer with latent ``j`` set to ``v`` (the others as they are).

    ``mode`` 0: the history with the lifetime and the next gap integrated out
    (``data`` = x, t_x, T, litt). ``mode`` 1 (``j = 0``): the ``x + 1`` whole gaps given
    ``k = v`` with ``lam`` integrated out (``gaps`` = their count ``n``, sum of logs
    ``L`` and sum ``S``; ``pop`` the population, of which ``r, alpha`` are used).
    """
    if mode == 1:
        r, alpha = pop[2], pop[3]
        n, big_l, big_s = gaps[0], gaps[1], gaps[2]
        total = 0.0
        for i in range(v.size):
            kv = v[i]
            shape = r + n[i] * kv
            total += (n[i] * (kv * math.log(kv) - math.lgamma(kv)) + (kv - 1.0) * big_l[i] + math.lgamma(shape)
                      - shape * math.log(alpha + kv * big_s[i]))
        return total
    x, t_x, T, litt = data[0], data[1], data[2], data[3]
    if j == 0:
        _loglik_kernel(x, t_x, T, litt, v, lam, mu, False, out)
    elif j == 1:
        _loglik_kernel(x, t_x, T, litt, k, v, mu, False, out)
    else:
        _loglik_kernel(x, t_x, T, litt, k, lam, v, False, out)
    return out[0].sum()


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_population_density(v, shape, log_rate):  # pragma: no cover - compiled
    """Log density of the logs of the latents ``v`` under ``Gamma(shape, e^log_rate)``."""
    return v.size * (shape * log_rate - math.lgamma(shape)) + shape * np.log(v).sum() - math.exp(log_rate) * v.sum()


@numba.njit(cache=True, nogil=True, error_model="numpy")
def noncentred_move(mode, j, c, latent, current, coords, prior, steps, adapt, gain, data, k, lam, mu, gaps, pop,
                    out, linear=False):  # pragma: no cover - compiled
    """Move population ``j``'s coordinate ``c`` (0: log mean, 1: log cv2) with its latents held non-centred.

    Along ``c = 0`` every latent is multiplied by one factor with the mean; along
    ``c = 1`` they spread or gather. The ratio is exact: the latents' population
    density, the Jacobian of the map and :func:`latent_total` (``mode``) over every
    customer. ``latent`` is updated in place when accepted; returns the total then current.
    With ``linear`` the random walk is on the mean or cv2 itself (step ``steps[j, 6 + c]``),
    the Hastings ratio the Jacobian of the log: where the data leave a cv2 near 0
    free (k's on CDNOW), its log has a long tail that steps of fixed size in the
    log cross slowly and steps in the cv2 cross at once.
    """
    old = coords[j].copy()
    old_shape = math.exp(-old[1])
    old_log_rate = -old[1] - old[0]
    c = c % 2
    step = 6 + c if linear else 2 + 2 * mode + c
    if linear:
        value = math.exp(old[c]) + steps[j, step] * np.random.standard_normal()
        if not value > 0.0:
            if adapt:
                steps[j, step] *= math.exp(-gain * TARGET)
            return current
        coords[j, c] = math.log(value)
    else:
        coords[j, c] += steps[j, step] * np.random.standard_normal()
    shape = math.exp(-coords[j, 1])
    log_rate = -coords[j, 1] - coords[j, 0]
    ratio = math.sqrt(_trigamma(shape) / _trigamma(old_shape))
    shift = digamma(shape) - log_rate - ratio * (digamma(old_shape) - old_log_rate)
    moved = np.exp(shift + ratio * np.log(latent))
    proposed = latent_total(mode, j, moved, data, k, lam, mu, gaps, pop, out)
    log_ratio = latent.size * math.log(ratio) + proposed - current
    log_ratio += _log_population_density(moved, shape, log_rate) - _log_population_density(latent, old_shape,
                                                                                             old_log_rate)
    log_ratio += _log_priors(coords[j], prior[j]) - _log_priors(old, prior[j])
    if linear:
        log_ratio += old[c] - coords[j, c]
    if adapt:
        steps[j, step] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - TARGET))
    if math.log(np.random.random()) < log_ratio and np.all(moved > 0.0):
        latent[:] = moved
        return proposed
    coords[j, 0], coords[j, 1] = old[0], old[1]
    return current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _partial_map(latent, extra_shape, extra_rate, old_shape, old_rate, shape, rate, moved):  # pragma: no cover
    """Each latent to ``moved``, its standardised log under ``Gamma(shape + extra_shape_i, rate + extra_rate_i)`` kept.

    ``log v' = psi(A') - log B' + sqrt(psi'(A') / psi'(A)) (log v - psi(A) + log B)`` with ``A, B`` at
    ``old_shape, old_rate`` and ``A', B'`` at ``shape, rate``; returns the log Jacobian of the map. Customers
    with no extra shape (no repeat purchase for lam's, every customer for mu's) share ``A`` and ``A'``, so their
    digamma and trigamma values are computed once (the same values, so the same map).
    """
    psi0, psi1 = digamma(old_shape), digamma(shape)
    ratio0 = math.sqrt(_trigamma(shape) / _trigamma(old_shape))
    log_ratio0 = math.log(ratio0)
    log_jacobian = 0.0
    for i in range(latent.size):
        if extra_shape[i] == 0.0:
            a_psi0, a_psi1, ratio, log_ratio = psi0, psi1, ratio0, log_ratio0
        else:
            a0, a1 = old_shape + extra_shape[i], shape + extra_shape[i]
            ratio = math.sqrt(_trigamma(a1) / _trigamma(a0))
            a_psi0, a_psi1, log_ratio = digamma(a0), digamma(a1), math.log(ratio)
        moved[i] = math.exp(a_psi1 - math.log(rate + extra_rate[i])
                            + ratio * (math.log(latent[i]) - a_psi0 + math.log(old_rate + extra_rate[i])))
        log_jacobian += log_ratio
    return log_jacobian


@numba.njit(cache=True, nogil=True, error_model="numpy")
def partial_noncentred_move(j, c, latent, extra_shape, extra_rate, current, coords, prior, steps, adapt, gain, data,
                            k, lam, mu, pop, out):  # pragma: no cover - compiled
    """Move population ``j``'s coordinate ``c`` with each latent standardised by its own conditional's conjugate part.

    Customer ``i``'s latent given the population and its data is close to
    ``Gamma(shape + extra_shape[i], rate + extra_rate[i])``, the likelihood's conjugate
    part (``lam``: ``x k`` and ``k t_x``; ``mu``: 0 and ``t_x``; the bracket is left out). The move
    keeps each latent's standardised log under that Gamma, ``z_i = (log v - psi(A_i)
    + log B_i) / sqrt(psi'(A_i))``, instead of under the population's: a customer
    whose data pin its rate keeps it (``A_i, B_i`` barely change), one whose data
    say nothing moves with the population (the non-centred move's map), so neither
    kind pins the population (the centred moves are pinned by the latter's
    augmented data, :func:`noncentred_move` by the former's rates). The map is a
    bijection whose inverse is the same map from the new coordinate back, so the
    ratio is exact: the latents' population densities, the map's Jacobian
    ``prod_i sqrt(psi'(A'_i) / psi'(A_i))`` and the likelihood with the lifetime
    and the next gap integrated out (:func:`latent_total`, mode 0). The step is
    ``steps[j, 4 + c]`` (``j`` 1 or 2; k's row uses it for mode 1); returns the total then current.
    """
    old = coords[j].copy()
    old_shape, old_rate = math.exp(-old[1]), math.exp(-old[1] - old[0])
    coords[j, c] += steps[j, 4 + c] * np.random.standard_normal()
    shape, rate = math.exp(-coords[j, 1]), math.exp(-coords[j, 1] - coords[j, 0])
    moved = np.empty(latent.size)
    log_jacobian = _partial_map(latent, extra_shape, extra_rate, old_shape, old_rate, shape, rate, moved)
    proposed = latent_total(0, j, moved, data, k, lam, mu, data, pop, out)
    log_ratio = (log_jacobian + proposed - current
                 + _log_population_density(moved, shape, math.log(rate))
                 - _log_population_density(latent, old_shape, math.log(old_rate))
                 + _log_priors(coords[j], prior[j]) - _log_priors(old, prior[j]))
    if adapt:
        steps[j, 4 + c] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - TARGET))
    if math.log(np.random.random()) < log_ratio and np.all(moved > 0.0):
        latent[:] = moved
        return proposed
    coords[j, 0], coords[j, 1] = old[0], old[1]
    return current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def joint_noncentred_move(current, coords, prior, chol, scale, adapt, gain, data, k, lam, mu, out):  # pragma: no cover
    """All six population coordinates at once, every latent held non-centred (as :func:`noncentred_move`).

    The proposal is ``scale * chol @ z``: ``chol`` the Cholesky factor of the
    coordinates' posterior covariance estimated while tuning, so the move follows
    the posterior's correlated directions (the purchase and dropout populations
    trade off through customers with no repeat purchase). ``scale[0]`` is tuned
    towards an acceptance of 0.234. Returns the likelihood total then current.
    """
    old = coords.copy()
    eps = scale[0] * (chol @ np.random.standard_normal(6))
    log_ratio = 0.0
    moved = np.empty((3, k.size))
    for j in range(3):
        latent = k if j == 0 else (lam if j == 1 else mu)
        coords[j, 0] += eps[2 * j]
        coords[j, 1] += eps[2 * j + 1]
        old_shape, shape = math.exp(-old[j, 1]), math.exp(-coords[j, 1])
        old_log_rate, log_rate = -old[j, 1] - old[j, 0], -coords[j, 1] - coords[j, 0]
        ratio = math.sqrt(_trigamma(shape) / _trigamma(old_shape))
        shift = digamma(shape) - log_rate - ratio * (digamma(old_shape) - old_log_rate)
        moved[j] = np.exp(shift + ratio * np.log(latent))
        log_ratio += (latent.size * math.log(ratio) + _log_population_density(moved[j], shape, log_rate)
                      - _log_population_density(latent, old_shape, old_log_rate)
                      + _log_priors(coords[j], prior[j]) - _log_priors(old[j], prior[j]))
    _loglik_kernel(data[0], data[1], data[2], data[3], moved[0], moved[1], moved[2], False, out)
    proposed = out[0].sum()
    log_ratio += proposed - current
    if adapt:
        scale[0] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - 0.234))
    if math.log(np.random.random()) < log_ratio and np.all(moved > 0.0):
        k[:], lam[:], mu[:] = moved[0], moved[1], moved[2]
        return proposed
    coords[:] = old
    return current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def joint_partial_move(current, coords, prior, chol, scale, extra_shape, extra_rate, adapt, gain, data, k, lam, mu,
                       out):  # pragma: no cover - compiled
    """lam's and mu's population coordinates at once, every rate partially non-centred (:func:`_partial_map`).

    The proposal is ``scale[1] * chol @ z`` on (lam's log mean, log cv2, mu's log mean, log cv2), ``chol`` the
    Cholesky factor of their posterior covariance estimated while tuning: the purchase and the dropout
    populations trade off through the customers with no repeat purchase (silent because slow, or because
    gone), a direction that moves of one population at a time cross slowly. Each rate keeps its standardised
    log under the conjugate part of its own conditional (``extra_shape``, ``extra_rate``: (2, customers), lam's
    ``x k, k t_x`` and mu's ``0, t_x``, which do not depend on the rates moved), so customers whose data pin
    their rates keep them. The map is its own inverse from the new coordinates back, so the ratio is exact:
    the rates' population densities, the map's Jacobian, the priors and the likelihood with the lifetime and
    the next gap integrated out. ``scale[1]`` is tuned towards an acceptance of 0.234; returns the total then
    current.
    """
    old = coords.copy()
    eps = scale[1] * (chol @ np.random.standard_normal(4))
    moved = np.empty((2, k.size))
    log_ratio = 0.0
    for j in range(1, 3):
        latent = lam if j == 1 else mu
        coords[j, 0] += eps[2 * j - 2]
        coords[j, 1] += eps[2 * j - 1]
        old_shape, shape = math.exp(-old[j, 1]), math.exp(-coords[j, 1])
        old_rate, rate = old_shape / math.exp(old[j, 0]), shape / math.exp(coords[j, 0])
        log_ratio += (_partial_map(latent, extra_shape[j - 1], extra_rate[j - 1], old_shape, old_rate, shape, rate,
                                   moved[j - 1])
                      + _log_population_density(moved[j - 1], shape, math.log(rate))
                      - _log_population_density(latent, old_shape, math.log(old_rate))
                      + _log_priors(coords[j], prior[j]) - _log_priors(old[j], prior[j]))
    _loglik_kernel(data[0], data[1], data[2], data[3], k, moved[0], moved[1], False, out)
    proposed = out[0].sum()
    log_ratio += proposed - current
    if adapt:
        scale[1] *= math.exp(gain * (min(1.0, math.exp(min(log_ratio, 0.0))) - 0.234))
    if math.log(np.random.random()) < log_ratio and np.all(moved > 0.0):
        lam[:], mu[:] = moved[0], moved[1]
        return proposed
    coords[:] = old
    return current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def to_population(coords, pop):  # pragma: no cover - compiled
    """(log mean, log cv2) of each latent -> ``t, gamma, r, alpha, s, beta``."""
    for j in range(3):
        shape = math.exp(-coords[j, 1])
        pop[2 * j], pop[2 * j + 1] = shape, shape / math.exp(coords[j, 0])
