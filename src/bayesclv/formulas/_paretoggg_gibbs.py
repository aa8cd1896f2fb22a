"""Data-augmentation MCMC for the Pareto/GGG: every customer's latents and the population, in compiled sweeps.

Derived from the model's definition (:mod:`bayesclv.formulas.paretoggg`). Two
latent quantities per customer make every conditional simple:

- the observed lifetime ``tau_c = min(tau, T)`` with the flag ``alive`` (``tau > T``);
- ``W``, the gap from the last purchase ``t_x`` to the next one, which would have
  come after ``tau_c`` (``W > tau_c - t_x``): ``P(W > d) = Q(k, k lam d)`` is the
  no-purchase term of the likelihood, so with ``W`` the customer has ``x + 1``
  whole Gamma(``k``, ``k lam``) gaps.

A sweep (:func:`run_chain`):

1. Each population coordinate moved with its latents held non-centred, the
   likelihood with the lifetime and the next gap integrated out
   (:func:`~bayesclv.formulas._paretoggg_population.noncentred_move`, mode 0), and lam's
   population with each lam standardised by its own conditional's conjugate part
   (:func:`~bayesclv.formulas._paretoggg_population.partial_noncentred_move`).
2. Per customer (:func:`_customers`): ``mu`` and ``lam`` with the lifetime and
   the next gap integrated out (independence Metropolis, :func:`_collapsed_rate`);
   ``(tau_c, alive, W)`` exactly given the latents (:func:`_lifetime_draw`); ``k``
   given ``W`` with ``lam`` integrated out (closed form: ``lam`` is conjugate),
   random-walk Metropolis in ``log k`` with a step adapted per customer while tuning.
3. The populations given the augmented data with ``lam`` and ``mu`` integrated
   out (``mu``'s also given the next gaps alone, the lifetime integrated out too,
   then the lifetimes drawn afresh), then ``lam ~ Gamma(r + (x+1) k, alpha + k (t_x + W))``
   and ``mu ~ Gamma(s + 1 - alive, beta + tau_c)`` (:func:`_augmented_population`).

Steps 1 and 3 are the two halves of an interweaving (Yu & Meng 2011): step 3 is
the centred (sufficient) update, fast where the augmented data pin each rate,
and step 1 the non-centred (ancillary) one, fast where they do not (customers
with no repeat purchase, whose lifetimes follow the dropout population).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.formulas._paretoggg_population import (
    TARGET,
    joint_noncentred_move,
    joint_partial_move,
    latent_total,
    lifetime_given_gap,
    noncentred_move,
    partial_noncentred_move,
    population_steps,
    to_population,
)
from bayesclv.formulas._paretoggg_regularity import regularity_move
from bayesclv.formulas._special import log_gamma_q, logaddexp

__all__ = ["MOVES", "run_chain", "sample", "truncated_gamma"]

#: moves per sweep: non-centred moves (mode 0) of k's, lam's and mu's population, of k's given the gaps
#: (mode 1), each per coordinate; random-walk steps per coordinate of each collapsed population move;
#: joint non-centred moves of all six coordinates (after the first half of tuning); moves of k's cv2 given the
#: gaps by a random walk on the cv2 itself (``linear``); steps per coordinate of mu's population given the next
#: gaps, mu and the lifetime integrated out (then the lifetimes drawn afresh); moves per coordinate of k's
#: population with every k drawn afresh (:func:`~bayesclv.formulas._paretoggg_regularity.regularity_move`); moves per
#: coordinate of lam's population, then of mu's, with every latent partially non-centred
#: (:func:`~bayesclv.formulas._paretoggg_population.partial_noncentred_move`); joint moves of lam's and mu's
#: populations with every rate partially non-centred (after the first half of tuning;
#: :func:`~bayesclv.formulas._paretoggg_population.joint_partial_move`)
MOVES = (0, 0, 1, 2, 10, 3, 0, 10, 1, 2, 0, 0)
_FLOOR = 1e-300  # a Gamma draw of a tiny shape may underflow to 0; a latent stays positive


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_q(k, y):  # pragma: no cover - compiled
    return log_gamma_q(k, y) if y > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def truncated_gamma(k, rate, low, log_tail):  # pragma: no cover - compiled
    """A draw of ``W ~ Gamma(k, rate)`` given ``W > low``; ``log_tail = log Q(k, rate low)``.

    Plain rejection while the tail holds a quarter of the mass or more; beyond,
    ``low`` plus an exponential whose rate matches the log density's slope at
    ``low`` (``k >= 1``: the density ratio then peaks at ``low``), or of rate
    ``rate`` (``k < 1``: the ratio ``(w/low)^(k-1)`` is at most 1).
    """
    if not low > 0.0 or log_tail > math.log(0.25):
        while True:
            w = np.random.gamma(k, 1.0 / rate)
            if w > low:
                return w
    if k >= 1.0:  # a tail under a quarter of the mass starts past the mode, where the slope is positive
        slope = rate * (1.0 - (k - 1.0) / (rate * low))
        while True:
            w = low + np.random.exponential(1.0 / slope)
            if np.random.random() <= math.exp((k - 1.0) * (math.log(w / low) - (w - low) / low)):
                return w
    while True:
        w = low + np.random.exponential(1.0 / rate)
        if np.random.random() <= (w / low) ** (k - 1.0):
            return w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dead_draw(gap, k, kl, mu):  # pragma: no cover - compiled
    """``(u, w)``: death ``u`` after the last purchase and the gap ``w > u`` to the next one, given death before ``gap``.

    Their joint density is ``mu e^(-mu u) g(w)`` on ``u < min(w, gap)`` (``g`` the
    Gamma(``k``, ``kl``) density). Where the death comes early against the next
    purchase, ``u`` from the truncated exponential and ``w`` from ``g``, kept if
    ``w > u``; otherwise ``w`` first from its marginal ``g(w) (1 - e^(-mu min(w, gap)))``
    by rejection from the size-biased ``Gamma(k + 1, kl)`` (acceptance
    ``(1 - e^(-mu min(w, gap))) / (mu w)``), then ``u`` given ``w``. Both exact.
    """
    if min(1.0 / mu, gap) * kl < k:
        cut = math.expm1(-mu * gap)
        while True:
            u = -math.log1p(np.random.random() * cut) / mu
            w = np.random.gamma(k, 1.0 / kl)
            if w > u:
                return u, w
    while True:
        w = np.random.gamma(k + 1.0, 1.0 / kl)
        reach = min(w, gap)
        if np.random.random() * mu * w <= -math.expm1(-mu * reach):
            return -math.log1p(np.random.random() * math.expm1(-mu * reach)) / mu, w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_bracket(k, kl, mu, gap):  # pragma: no cover - compiled
    """``log[(1 - omega^k) + omega^k Q(k, (k lam + mu) gap)]``: no purchase after the last one, lifetime integrated."""
    k_log_omega = -k * math.log1p(mu / kl)
    return logaddexp(math.log(-math.expm1(k_log_omega)), k_log_omega + _log_q(k, (kl + mu) * gap))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_gamma_density(v, shape, rate):  # pragma: no cover - compiled
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1.0) * math.log(v) - rate * v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_mixture(v, shape, rates):  # pragma: no cover - compiled
    """Log density at ``v`` of the even mixture of ``Gamma(shape[0], rates[0])`` and ``Gamma(shape[1], rates[1])``."""
    return logaddexp(_log_gamma_density(v, shape[0], rates[0]), _log_gamma_density(v, shape[1], rates[1])) \
        - math.log(2.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _collapsed_rate(current, current_bracket, which, shapes, rates, args):  # pragma: no cover - compiled
    """Independence Metropolis step of ``mu`` (``which = 0``) or ``lam`` (1), lifetime and next gap integrated out.

    The proposal is the even mixture of two Gamma distributions (``shapes``,
    ``rates``): the conjugate part of the conditional, and that part with the
    bracket's extreme behaviour (dead: one more in the shape; alive: the gap in
    the rate), so the weight stays bounded whichever the bracket favours.
    ``current_bracket`` is :func:`_log_bracket` at the current value; returns the
    value then current and its bracket, which the customer's next step reuses
    (the incomplete gamma function is most of a customer's cost).
    """
    c = 0 if np.random.random() < 0.5 else 1
    proposal = max(np.random.gamma(shapes[c], 1.0 / rates[c]), _FLOOR)
    shape, rate, gap, k = args[0], args[1], args[2], args[3]
    bracket = _log_bracket(k, args[4], proposal, gap) if which == 0 else _log_bracket(k, k * proposal, args[4], gap)
    log_ratio = (_rate_density(proposal, shape, rate) + bracket - _log_mixture(proposal, shapes, rates)
                 - _rate_density(current, shape, rate) - current_bracket + _log_mixture(current, shapes, rates))
    if math.log(np.random.random()) < log_ratio:
        return proposal, bracket
    return current, current_bracket


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rate_density(v, shape, rate):  # pragma: no cover - compiled
    """The conjugate part of a rate's conditional (``args`` of :func:`_collapsed_rate`): ``mu``'s with
    ``shape = s``, ``rate = beta + t_x``; ``lam``'s with ``shape = r + x k``, ``rate = alpha + k t_x``. The
    bracket (:func:`_log_bracket`: the lifetime and the next gap integrated out) completes it."""
    return (shape - 1.0) * math.log(v) - rate * v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lifetime_draw(gap, k, lam, mu, log_bracket):  # pragma: no cover - compiled
    """``(alive, u, w)`` from their conditional given ``k, lam, mu`` (``u = tau_c - t_x``, ``gap = T - t_x``).

    Alive at ``T`` with the probability of the likelihood's bracket
    (:mod:`bayesclv.formulas.paretoggg`; ``log_bracket`` = :func:`_log_bracket` at
    ``k, k lam, mu, gap``, unused where ``gap = 0``); then ``w`` is the truncated
    Gamma draw beyond ``gap``, otherwise :func:`_dead_draw`.
    """
    kl = k * lam
    if not gap > 0.0:
        return 1, 0.0, truncated_gamma(k, kl, 0.0, 0.0)
    log_q_gap = _log_q(k, kl * gap)
    if math.log(np.random.random()) < -mu * gap + log_q_gap - log_bracket:
        return 1, gap, truncated_gamma(k, kl, gap, log_q_gap)
    u, w = _dead_draw(gap, k, kl, mu)
    return 0, max(u, _FLOOR), w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_k_target(k, n1, big_l, big_s, t, gamma, r, alpha):  # pragma: no cover - compiled
    """Log conditional density of ``log k`` given ``W`` with ``lam`` integrated out (up to a constant)."""
    shape = r + n1 * k
    return (t * math.log(k) - gamma * k + n1 * k * math.log(k) + math.lgamma(shape)
            - shape * math.log(alpha + k * big_s) - n1 * math.lgamma(k) + (k - 1.0) * big_l)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _customers(x, t_x, T, litt, k, lam, mu, alive, u, w, k_step, pop, adapt, rate):  # pragma: no cover
    """One sweep over the customers (module docstring, steps 1-3)."""
    t, gamma, r, alpha, s, beta = pop[0], pop[1], pop[2], pop[3], pop[4], pop[5]
    args, shapes, rates = np.empty(5), np.empty(2), np.empty(2)
    for i in range(x.size):
        gap = T[i] - t_x[i]
        bracket = 0.0
        if gap > 0.0:  # the rates with the lifetime and the next gap integrated out: fast mixing
            bracket = _log_bracket(k[i], k[i] * lam[i], mu[i], gap)
            args[0], args[1], args[2], args[3], args[4] = s, beta + t_x[i], gap, k[i], k[i] * lam[i]
            shapes[0], shapes[1], rates[0], rates[1] = s, s + 1.0, args[1], args[1]
            mu[i], bracket = _collapsed_rate(mu[i], bracket, 0, shapes, rates, args)
            shape = r + x[i] * k[i]
            args[0], args[1], args[2], args[3], args[4] = shape, alpha + k[i] * t_x[i], gap, k[i], mu[i]
            shapes[0], shapes[1], rates[0], rates[1] = shape, shape, args[1], args[1] + k[i] * gap
            lam[i], bracket = _collapsed_rate(lam[i], bracket, 1, shapes, rates, args)
        alive[i], u[i], w[i] = _lifetime_draw(gap, k[i], lam[i], mu[i], bracket)
        n1 = x[i] + 1.0
        big_l, big_s = litt[i] + math.log(w[i]), t_x[i] + w[i]
        current = _log_k_target(k[i], n1, big_l, big_s, t, gamma, r, alpha)
        proposal = k[i] * math.exp(k_step[i] * np.random.standard_normal())
        log_ratio = _log_k_target(proposal, n1, big_l, big_s, t, gamma, r, alpha) - current
        if math.log(np.random.random()) < log_ratio:
            k[i] = proposal
        if adapt:
            k_step[i] *= math.exp(rate * (min(1.0, math.exp(min(log_ratio, 0.0))) - TARGET))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _augmented_population(data, k, lam, mu, alive, u, w, coords, steps, prior, moves, adapt, gain, pop,
                          out):  # pragma: no cover - compiled
    """The populations given the sweep's augmented data, ``lam`` and ``mu`` integrated out, then both drawn afresh.

    ``k``'s population: random-walk steps given the ``k``, then non-centred moves
    given the gaps (``lam`` integrated out). ``lam``'s and ``mu``'s: collapsed
    steps (:func:`~bayesclv.formulas._paretoggg_population.population_steps`);
    ``mu``'s first given the next gaps with the lifetimes integrated out too
    (``moves[7]``), after which the lifetimes are drawn given the gaps.
    Last, ``lam ~ Gamma(r + n k, alpha + k S)`` and ``mu ~ Gamma(s + d, beta + tau_c)``.
    """
    x, t_x, T, litt = data[0], data[1], data[2], data[3]
    n1 = x + 1.0
    gaps = (n1, litt + np.log(w), t_x + w)
    sums = np.array([k.sum(), np.log(k).sum()])
    population_steps(coords, 0, k, k, sums, prior, steps, moves[4], adapt, gain)
    if moves[3] + moves[6] > 0:
        to_population(coords, pop)
        current = latent_total(1, 0, k, data, k, lam, mu, gaps, pop, out)
        for c in range(2 * moves[3]):
            current = noncentred_move(1, 0, c, k, current, coords, prior, steps, adapt, gain, data, k, lam, mu,
                                      gaps, pop, out)
        for _ in range(moves[6]):
            current = noncentred_move(1, 0, 1, k, current, coords, prior, steps, adapt, gain, data, k, lam, mu,
                                      gaps, pop, out, True)
    for c in range(2 * moves[8]):
        to_population(coords, pop)
        regularity_move(c % 2, k, gaps, coords, prior, steps, adapt, gain, pop, out)
    to_population(coords, pop)
    n_k, k_s = n1 * k, k * gaps[2]
    population_steps(coords, 1, n_k, k_s, sums, prior, steps, moves[4], adapt, gain)
    if moves[7] > 0:
        next_gap = np.where(w <= T - t_x, w, np.inf)
        population_steps(coords, 3, t_x, next_gap, sums, prior, steps, moves[7], adapt, gain)
        to_population(coords, pop)
        lifetime_given_gap(t_x, T, w, pop[4], pop[5], alive, u)
    dead = 1.0 - alive
    tau_c = np.where(alive == 1, T, t_x + u)
    sums[0] = dead.sum()
    population_steps(coords, 2, dead, tau_c, sums, prior, steps, moves[4], adapt, gain)
    to_population(coords, pop)
    for i in range(x.size):
        lam[i] = max(np.random.gamma(pop[2] + n_k[i], 1.0 / (pop[3] + k_s[i])), _FLOOR)
        mu[i] = max(np.random.gamma(pop[4] + dead[i], 1.0 / (pop[5] + tau_c[i])), _FLOOR)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def run_chain(seed, sweeps, adapt, thin, x, t_x, T, litt, k, lam, mu, alive, u, w, k_step, coords, steps,
              prior, moves, chol, chol_rates, scale, trace, out_pop, out_k, out_lam, out_mu):  # pragma: no cover
    """``sweeps`` sweeps of one chain from the state passed in (updated in place).

    ``coords`` (3, 2): each latent's (log mean, log cv2); ``steps`` (3, 10): the
    random-walk steps of the collapsed moves, of the non-centred moves (mode 0),
    of ``k``'s given the gaps (mode 1), of the linear ones, of mu's population given the gaps and
    of k's population with every ``k`` (:mod:`._paretoggg_regularity`; ``steps[0, 8:10]``); ``prior``
    (3, 6): the codes and arguments of the mean's and the cv2's priors; ``moves``: :data:`MOVES` (joint
    non-centred moves only where ``scale[0] > 0``, joint partial ones only where ``scale[1] > 0``: ``chol`` (6, 6),
    ``chol_rates`` (4, 4) and ``scale`` (2,) as in
    :func:`~bayesclv.formulas._paretoggg_population.joint_noncentred_move` and
    :func:`~bayesclv.formulas._paretoggg_population.joint_partial_move`); ``trace``
    (sweeps, 6) receives the coordinates after every sweep. With
    ``adapt`` the steps are tuned (Robbins-Monro, decreasing gain) and nothing is
    stored; otherwise every ``thin``-th sweep is written to ``out_*`` (population
    ``t, gamma, r, alpha, s, beta``).

    A sweep: non-centred moves with the lifetime and the next gap integrated out;
    each customer's latents and augmented data (:func:`_customers`); the
    populations given the augmented data (:func:`_augmented_population`). Each
    step that integrates a quantity out is followed by a draw of it before any
    step conditions on it, so the sweep keeps the posterior.
    """
    np.random.seed(seed)
    pop = np.empty(6)
    out = np.empty((4, x.size))
    data = (x, t_x, T, litt)
    gaps = (x, x, x)  # unused by mode 0
    zeros = np.zeros(x.size)
    for sweep in range(sweeps):
        gain = 1.0 / (1.0 + sweep) ** 0.6 if adapt else 0.0
        to_population(coords, pop)
        mode0 = moves[0] + moves[1] + moves[2] + moves[9] + moves[10]
        current = latent_total(0, 0, k, data, k, lam, mu, gaps, pop, out) if mode0 else 0.0
        for j in range(3):
            latent = k if j == 0 else (lam if j == 1 else mu)
            for c in range(2 * moves[j]):
                current = noncentred_move(0, j, c, latent, current, coords, prior, steps, adapt, gain, data, k, lam,
                                          mu, gaps, pop, out)
        if moves[9] > 0:
            n_k, k_t = x * k, k * t_x
            for c in range(2 * moves[9]):
                current = partial_noncentred_move(1, c % 2, lam, n_k, k_t, current, coords, prior, steps, adapt, gain,
                                                  data, k, lam, mu, pop, out)
        for c in range(2 * moves[10]):  # mu's conjugate part: the lifetime reached t_x (no death flag)
            current = partial_noncentred_move(2, c % 2, mu, zeros, t_x, current, coords, prior, steps, adapt, gain,
                                              data, k, lam, mu, pop, out)
        if (scale[0] > 0.0 and moves[5] > 0) or (scale[1] > 0.0 and moves[11] > 0):
            if not mode0:
                current = latent_total(0, 0, k, data, k, lam, mu, gaps, pop, out)
            for _ in range(moves[5] if scale[0] > 0.0 else 0):
                current = joint_noncentred_move(current, coords, prior, chol, scale, adapt, gain, data, k, lam, mu,
                                                out)
            if scale[1] > 0.0 and moves[11] > 0:
                extra_shape, extra_rate = np.empty((2, x.size)), np.empty((2, x.size))
                extra_shape[0], extra_rate[0] = x * k, k * t_x
                extra_shape[1], extra_rate[1] = 0.0, t_x
                for _ in range(moves[11]):
                    current = joint_partial_move(current, coords, prior, chol_rates, scale, extra_shape, extra_rate,
                                                 adapt, gain, data, k, lam, mu, out)
        to_population(coords, pop)
        _customers(x, t_x, T, litt, k, lam, mu, alive, u, w, k_step, pop, adapt, gain)
        _augmented_population(data, k, lam, mu, alive, u, w, coords, steps, prior, moves, adapt, gain, pop, out)
        trace[sweep, :] = coords.ravel()
        if not adapt and (sweep + 1) % thin == 0:
            m = (sweep + 1) // thin - 1
            out_pop[m, :] = pop
            out_k[m, :] = k
            out_lam[m, :] = lam
            out_mu[m, :] = mu


def _initial_state(x, t_x, T, rng):
    """A chain's starting point: the Pareto/NBD's neighbourhood (``k`` near 1), each chain jittered."""
    n = x.size
    jitter = np.exp(rng.normal(0.0, 0.2, size=(3, n)))
    lam = (x + 1.0) / (T + 1.0) * jitter[1]
    mu = jitter[2] / (2.0 * T.mean())
    coords = np.array([[0.0, 0.0], [math.log(lam.mean()), 0.0], [math.log(mu.mean()), 0.0]])
    coords += rng.normal(0.0, 0.2, size=coords.shape)
    return {"k": jitter[0].copy(), "lam": lam, "mu": mu, "alive": np.ones(n, dtype=np.int64), "u": T - t_x,
            "w": T - t_x + 1.0 / lam, "k_step": 1.0 / np.sqrt(x + 2.0), "coords": coords,
            "steps": np.full((3, 10), 0.1)}


def sample(x, t_x, T, litt, prior, *, draws, tune, chains, thin, random_seed, cores, moves=MOVES):
    """Posterior draws of the population and every customer's ``k, lam, mu``, chains on ``cores`` threads.

    Parameters
    ----------
    x, t_x, T, litt : numpy.ndarray
        Repeat purchases, time of the last one, age, sum of the log inter-purchase times.
    prior : numpy.ndarray
        (3, 6): per latent the code and arguments of its mean's and its cv2's prior
        (:data:`~bayesclv.formulas._prior_density.PRIOR_CODES`; :func:`bayesclv.models.paretoggg.gibbs_priors`).
    draws, tune, chains, thin : int
        Sweeps after tuning, tuning sweeps, chains; every ``thin``-th sweep is kept.
    random_seed : int or None
    cores : int
        Threads (the compiled sweeps release the GIL).
    moves : tuple of int
        Moves per sweep (:data:`MOVES`; missing trailing entries are 0).

    Returns
    -------
    dict of numpy.ndarray
        ``"population"`` (chains, kept, 6) in ``t, gamma, r, alpha, s, beta``; ``"k"``, ``"lam"``,
        ``"mu"`` (chains, kept, customers).
    """
    from concurrent.futures import ThreadPoolExecutor

    data = [np.ascontiguousarray(v, dtype=float) for v in (x, t_x, T, litt)]
    moves = (*moves, *(0,) * (len(MOVES) - len(moves)))
    kept = draws // thin
    seeds = np.random.SeedSequence(random_seed).spawn(chains)
    out = {"population": np.empty((chains, kept, 6)),
           **{name: np.empty((chains, kept, data[0].size)) for name in ("k", "lam", "mu")}}

    def chain(c):
        rng = np.random.default_rng(seeds[c])
        state = _initial_state(*data[:3], rng)
        args = [*data, *(state[n] for n in ("k", "lam", "mu", "alive", "u", "w", "k_step", "coords", "steps")),
                np.ascontiguousarray(prior, dtype=float), np.asarray(moves, dtype=np.int64)]
        stored = [out[n][c] for n in ("population", "k", "lam", "mu")]
        moves_ = args[-1]
        chol, chol_rates, scale = np.eye(6), np.eye(4), np.zeros(2)  # no joint move until the covariance is known
        first = tune // 2
        trace = np.empty((max(first, tune - first, draws), 6))
        run_chain(int(rng.integers(2**31)), first, True, 1, *args, chol, chol_rates, scale, trace, *stored)
        if moves_[5] + moves_[11] > 0 and first >= 20:  # the second half of tuning tunes the joint moves' scales
            cov = np.cov(trace[first // 2:first].T) + 1e-8 * np.eye(6)
            chol, chol_rates = np.linalg.cholesky(cov), np.linalg.cholesky(cov[2:, 2:])
            scale[0], scale[1] = 2.38 / math.sqrt(6.0), 2.38 / 2.0
        run_chain(int(rng.integers(2**31)), tune - first, True, 1, *args, chol, chol_rates, scale, trace, *stored)
        run_chain(int(rng.integers(2**31)), draws, False, thin, *args, chol, chol_rates, scale, trace, *stored)

    with ThreadPoolExecutor(max_workers=max(1, min(cores, chains))) as pool:
        list(pool.map(chain, range(chains)))
    return out
