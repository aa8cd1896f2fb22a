"""The Pareto/GGG's data-augmentation sampler (bayesclv.formulas._paretoggg_gibbs) against independent references.

- Its exact conditional draws: the truncated Gamma gap in each of its regimes against SciPy's distribution;
  the lifetime step's alive share against ``paretoggg.probability_alive`` and its death times against the
  closed-form distribution function of the death given death before T.
- Its population moves' likelihoods with the rates integrated out against numerical integration (SciPy quad).
- The joint move of k's population with every k, and the partially non-centred move of lam's population, keep the
  posterior: their chains on a few customers against the posterior of the population computed by quadrature.
- The population priors it evaluates against SciPy's densities, through the parametrisations a Prior accepts.
- ``method="gibbs"`` is refused by models without the sampler; a prior it cannot evaluate is a PriorError.

Parameter recovery and the fitted model's predictions are in ``tests/test_paretoggg_model.py`` (its fixture is
fitted by this sampler); the comparison with latent NUTS on one posterior is ``validation/paretoggg_cdnow.py``.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import bayesclv as bc
from bayesclv.errors import PriorError
from bayesclv.formulas import _paretoggg_gibbs as gibbs
from bayesclv.formulas import _paretoggg_population as population
from bayesclv.formulas import _paretoggg_regularity as regularity
from bayesclv.formulas import _prior_density as prior_density
from bayesclv.formulas import paretoggg


@numba.njit(cache=False)
def _gaps(seed, n, k, rate, low, log_tail):
    np.random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        out[i] = gibbs.truncated_gamma(k, rate, low, log_tail)
    return out


@numba.njit(cache=False)
def _lifetimes(seed, n, gap, k, lam, mu):
    np.random.seed(seed)
    alive, u, w = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        alive[i], u[i], w[i] = gibbs._lifetime_draw(gap, k, lam, mu, gibbs._log_bracket(k, k * lam, mu, gap))
    return alive, u, w


@pytest.mark.parametrize(("k", "rate", "low"), [(3.0, 2.0, 0.5),  # most mass beyond: plain rejection
                                                 (3.0, 2.0, 4.0),  # far tail, k >= 1
                                                 (0.4, 1.5, 2.0),  # far tail, k < 1
                                                 (1.0, 0.1, 30.0)])
def test_truncated_gamma_is_the_conditional_distribution(k, rate, low):
    tail = special.gammaincc(k, rate * low)
    draws = _gaps(1, 20_000, k, rate, low, np.log(tail))
    assert draws.min() > low
    cdf = lambda w: 1.0 - special.gammaincc(k, rate * w) / tail  # noqa: E731
    assert stats.kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.parametrize(("gap", "k", "lam", "mu"), [(20.0, 1.0, 0.3, 0.05),   # k = 1: the Pareto/NBD
                                                      (20.0, 4.0, 0.5, 0.02),  # regular, frequent: dead early
                                                      (35.0, 0.5, 0.05, 0.1),  # clumpy, dropout fast
                                                      (3.0, 2.0, 0.2, 0.01)])  # a short gap
def test_lifetime_draws_are_the_conditional_distribution(gap, k, lam, mu):
    n = 40_000
    alive, u, w = _lifetimes(2, n, gap, k, lam, mu)
    p_alive = paretoggg.probability_alive(0.0, 0.0, gap, k, lam, mu)
    assert abs(alive.mean() - p_alive) < 5 * np.sqrt(p_alive * (1 - p_alive) / n) + 1e-9
    assert np.all(w > u) and np.all(u[alive == 1] == gap) and np.all(u[alive == 0] < gap)
    dead = u[alive == 0]
    kl = k * lam
    omega_k = (kl / (kl + mu)) ** k

    def mass(v):  # int_0^v mu e^(-mu s) Q(k, kl s) ds, by parts
        return 1.0 - np.exp(-mu * v) * special.gammaincc(k, kl * v) - omega_k * special.gammainc(k, (kl + mu) * v)

    assert stats.kstest(dead, lambda v: mass(v) / mass(gap)).pvalue > 1e-3
    # given the death time, the next gap is the Gamma gap beyond it: its survival at 2 u over at u
    late = w[alive == 0] > 2 * dead
    want = special.gammaincc(k, kl * 2 * dead) / special.gammaincc(k, kl * dead)
    assert abs(late.mean() - want.mean()) < 5 * np.sqrt(want.mean() * (1 - want.mean()) / late.size)


def _integrated(log_density, shape, rate):
    """log of int e^log_density(v) Gamma(v; shape, rate) dv, by quad in log v around the integrand's peak."""
    def log_integrand(y):  # the Gamma density of log v, times the density
        return shape * (np.log(rate) + y) - special.gammaln(shape) - rate * np.exp(y) + log_density(np.exp(y))

    grid = np.linspace(-60.0, 15.0, 3001)
    values = log_integrand(grid)
    peak = grid[np.argmax(values)]
    value = integrate.quad(lambda y: np.exp(log_integrand(y) - values.max()), peak - 200.0, peak + 40.0,
                           points=[peak], limit=400, epsabs=0.0, epsrel=1e-12)[0]
    return np.log(value) + values.max()


# customers: gaps n = x + 1, their sum S and sum of logs L, k; death flag d and observed lifetime tau_c
_AUGMENTED = {"n": np.array([1.0, 1.0, 3.0, 12.0]), "S": np.array([0.4, 60.0, 25.0, 70.0]),
              "L": np.array([-0.9, 4.1, 2.0, 30.0]), "k": np.array([0.3, 1.0, 2.5, 6.0]),
              "d": np.array([1.0, 0.0, 1.0, 0.0]), "tau": np.array([0.5, 70.0, 30.0, 75.0])}


@pytest.mark.parametrize(("shape", "rate"), [(0.3, 2.0), (1.7, 25.0), (12.0, 0.8)])
def test_collapsed_population_likelihoods_integrate_the_rates_out(shape, rate):
    a = _AUGMENTED
    # lam's population with lam integrated out: lam^(n k) e^(-k lam S), the part of the gaps' density in lam
    want = sum(_integrated(lambda v, i=i: a["n"][i] * a["k"][i] * np.log(v) - a["k"][i] * v * a["S"][i], shape, rate)
               for i in range(4))
    got = population._population_loglik(1, shape, np.log(rate), a["n"] * a["k"], a["k"] * a["S"], np.zeros(2))
    assert got == pytest.approx(want, rel=1e-8, abs=1e-8)
    # mu's: mu^d e^(-mu tau_c), the lifetime's density (death) or survival (alive)
    want = sum(_integrated(lambda v, i=i: a["d"][i] * np.log(v) - v * a["tau"][i], shape, rate) for i in range(4))
    got = population._population_loglik(2, shape, np.log(rate), a["d"], a["tau"], np.array([a["d"].sum(), 0.0]))
    assert got == pytest.approx(want, rel=1e-8, abs=1e-8)
    # k's, given the k: the Gamma density
    k = a["k"]
    got = population._population_loglik(0, shape, np.log(rate), k, k, np.array([k.sum(), np.log(k).sum()]))
    assert got == pytest.approx(stats.gamma(shape, scale=1.0 / rate).logpdf(k).sum(), rel=1e-10)


@pytest.mark.parametrize(("shape", "rate"), [(0.3, 2.0), (1.7, 25.0), (12.0, 0.8)])
def test_dropout_likelihood_given_the_gaps_integrates_mu_and_the_lifetime_out(shape, rate):
    # customers: last purchase t_x and next gap W; W within the window (finite) says death before t_x + W
    t_x, w = np.array([0.0, 5.0, 30.0, 2.0, 40.0]), np.array([0.7, 12.0, np.inf, np.inf, 3.0])
    got = population._population_loglik(3, shape, np.log(rate), t_x, w, np.zeros(2))

    def alive_then_dead(v, i):  # log P(t_x < tau < t_x + W | mu = v), exponential lifetime
        return -v * t_x[i] + (np.log(-np.expm1(-v * w[i])) if np.isfinite(w[i]) else 0.0)

    want = sum(_integrated(lambda v, i=i: alive_then_dead(v, i), shape, rate) for i in range(5))
    assert got == pytest.approx(want, rel=1e-8, abs=1e-8)


@numba.njit(cache=False)
def _lifetimes_given_gap(seed, n, t_x, T, w, s, beta):
    np.random.seed(seed)
    alive, u = np.zeros(n, dtype=np.int64), np.empty(n)
    population.lifetime_given_gap(np.full(n, t_x), np.full(n, T), np.full(n, w), s, beta, alive, u)
    return alive, u


@pytest.mark.parametrize(("t_x", "T", "w", "s", "beta"), [(5.0, 40.0, 12.0, 0.6, 9.0),   # next purchase due: dead
                                                          (5.0, 40.0, 50.0, 0.6, 9.0),   # due after T
                                                          (0.0, 30.0, 80.0, 3.0, 0.5),   # no repeat, dropout fast
                                                          (2.0, 60.0, 70.0, 0.05, 40.0)])  # tiny shape: mostly alive
def test_lifetime_given_the_gap_is_the_truncated_lomax(t_x, T, w, s, beta):
    n = 40_000
    alive, u = _lifetimes_given_gap(3, n, t_x, T, w, s, beta)
    survival = lambda v: (beta / (beta + v)) ** s  # noqa: E731  mu integrated out
    upper = t_x + w if w <= T - t_x else np.inf
    p_alive = (survival(T) - survival(upper)) / (survival(t_x) - survival(upper)) if upper > T else 0.0
    assert abs(alive.mean() - p_alive) < 5 * np.sqrt(p_alive * (1 - p_alive) / n) + 1e-9
    dead = u[alive == 0]
    assert np.all(u[alive == 1] == T - t_x) and np.all((dead > 0) & (dead < min(w, T - t_x)))
    cdf = lambda v: (survival(t_x) - survival(t_x + v)) / (survival(t_x) - survival(min(upper, T)))  # noqa: E731
    assert stats.kstest(dead, cdf).pvalue > 1e-3


@numba.njit(cache=False)
def _regularity_chain(seed, moves, k, gaps, coords, prior, pop):
    np.random.seed(seed)
    steps, work, out = np.full((3, 10), 0.8), np.empty((4, k.size)), np.empty((moves, 2))
    for m in range(moves):
        regularity.regularity_move(m % 2, k, gaps, coords, prior, steps, False, 0.0, pop, work)
        out[m] = coords[0]
    return out


def _assert_chain_matches_grid(trace, log_post, grids):
    """Each column of the chain's trace against the mean and sd of its grid's coordinate under ``log_post``."""
    p = np.exp(log_post - log_post.max())
    p /= p.sum()
    for c, grid in enumerate(grids):
        mean, sd = (p * grid).sum(), np.sqrt((p * grid**2).sum() - (p * grid).sum() ** 2)
        batches = trace[:, c].reshape(60, -1).mean(axis=1)  # batch means: the chain's Monte Carlo error
        assert abs(trace[:, c].mean() - mean) < 4 * batches.std() / np.sqrt(60) + 1e-3
        assert trace[:, c].std() == pytest.approx(sd, rel=0.05)


def test_regularity_move_keeps_the_posterior_of_the_population():
    """Given the gaps (lam integrated out), the chain of k's (log mean, log cv2) against 2-D quadrature."""
    n, big_s, big_l = np.array([1.0, 2.0, 4.0]), np.array([3.0, 10.0, 9.0]), np.array([np.log(3.0), 1.5, 1.2])
    r, alpha = 1.5, 4.0
    prior = np.zeros((3, 6))
    prior[0] = [prior_density.PRIOR_CODES["LogNormal"], 0.0, 0.5, prior_density.PRIOR_CODES["LogNormal"], -1.0, 1.0]
    trace = _regularity_chain(1, 60_000, np.ones(3), (n, big_l, big_s), np.array([[0.0, -1.0], [0, 0], [0, 0]]),
                              prior, np.array([1.0, 1.0, r, alpha, 1.0, 1.0]))
    m, v = np.meshgrid(np.linspace(-3, 3, 241), np.linspace(-6, 3, 241), indexing="ij")
    y = np.linspace(-8.0, 8.0, 1601)  # log k on a fine grid
    log_post = np.empty(m.shape)
    for rows in np.array_split(np.arange(len(m)), 16):  # 241 x 241 x 1601 at once would hold ~3 GB of temporaries
        log_post[rows] = _regularity_log_posterior(m[rows], v[rows], y, n, big_l, big_s, r, alpha)
    _assert_chain_matches_grid(trace, log_post, (m, v))


def _regularity_log_posterior(m, v, y, n, big_l, big_s, r, alpha):
    """Unnormalised log posterior of k's population at (log mean ``m``, log cv2 ``v``): the LogNormal priors in
    the log coordinates plus, per customer, the log of the integral over log k (grid ``y``) of the population's
    log-Gamma density times the gaps' likelihood with lam integrated out."""
    t = np.exp(-v)[..., None]
    gamma, k = t / np.exp(m)[..., None], np.exp(y)
    total = -0.5 * (m / 0.5) ** 2 - 0.5 * (v + 1.0) ** 2
    for i in range(len(n)):
        gaps = (n[i] * (k * y - special.gammaln(k)) + (k - 1) * big_l[i] + special.gammaln(r + n[i] * k)
                - (r + n[i] * k) * np.log(alpha + k * big_s[i]))
        log_f = t * np.log(gamma) - special.gammaln(t) + t * y - gamma * k + gaps
        peak = log_f.max(-1)
        total += np.log(np.exp(log_f - peak[..., None]).sum(-1)) + peak
    return total


@numba.njit(cache=False)
def _partial_chain(seed, moves, j, data, k, lam, mu, coords, prior):
    """The partially non-centred move of population ``j`` (1: lam's, 2: mu's), alternated with a random walk on
    each of its latents' logs."""
    np.random.seed(seed)
    steps, out, pop, trace = np.full((3, 10), 0.5), np.empty((4, k.size)), np.empty(6), np.empty((moves, 2))
    latent = lam if j == 1 else mu
    extra_shape, extra_rate = (data[0] * k, k * data[1]) if j == 1 else (np.zeros(k.size), data[1])
    for m in range(moves):
        current = population.latent_total(0, j, latent, data, k, lam, mu, data, pop, out)
        current = population.partial_noncentred_move(j, m % 2, latent, extra_shape, extra_rate, current, coords, prior,
                                                     steps, False, 0.0, data, k, lam, mu, pop, out)
        shape, rate = np.exp(-coords[j, 1]), np.exp(-coords[j, 1] - coords[j, 0])
        for i in range(k.size):  # each latent given the population: its own Metropolis step in its log
            old = latent[i]
            proposal = latent.copy()
            proposal[i] = old * np.exp(0.8 * np.random.standard_normal())
            moved = population.latent_total(0, j, proposal, data, k, lam, mu, data, pop, out)
            log_ratio = moved - current + shape * np.log(proposal[i] / old) - rate * (proposal[i] - old)
            if np.log(np.random.random()) < log_ratio:
                latent[i], current = proposal[i], moved
        trace[m] = coords[j]
    return trace


@pytest.mark.parametrize(("j", "centre"), [(1, -1.5), (2, -3.5)])
def test_partial_noncentred_move_keeps_the_posterior_of_the_population(j, centre):
    """With the other latents fixed, the chain of lam's (j = 1) or mu's (2) (log mean, log cv2) against 2-D
    quadrature, each latent integrated out.

    Customers from no repeat purchase (lam's move is non-centred for it) to many (nearly centred).
    """
    x, t_x, T = np.array([0.0, 1.0, 4.0, 15.0]), np.array([0.0, 6.0, 20.0, 33.0]), np.array([30.0, 25.0, 38.0, 35.0])
    litt = np.array([0.0, np.log(6.0), 4 * np.log(5.0), 15 * np.log(2.0)])
    k, lam, mu = np.array([0.7, 1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3, 0.5]), np.array([0.05, 0.02, 0.01, 0.03])
    prior = np.zeros((3, 6))
    prior[j] = [prior_density.PRIOR_CODES["LogNormal"], centre, 0.7, prior_density.PRIOR_CODES["LogNormal"], 0.0, 0.7]
    coords = np.zeros((3, 2))
    coords[j, 0] = centre
    trace = _partial_chain(3, 60_000, j, (x, t_x, T, litt), k, lam.copy(), mu.copy(), coords, prior)
    m, v = np.meshgrid(np.linspace(centre - 3.5, centre + 3.5, 141), np.linspace(-3, 3, 141), indexing="ij")
    shape, y = np.exp(-v)[..., None], np.linspace(-16.0, 4.0, 2001)  # the latent's log on a fine grid
    rate = shape / np.exp(m)[..., None]
    log_post = -0.5 * ((m - centre) / 0.7) ** 2 - 0.5 * (v / 0.7) ** 2  # the LogNormal priors in the log coordinates
    for i in range(4):
        rates = (np.exp(y), mu[i]) if j == 1 else (lam[i], np.exp(y))
        loglik = paretoggg.loglik(litt[i], x[i], t_x[i], T[i], k[i], *rates, xp=paretoggg.NP)
        log_f = shape * np.log(rate) - special.gammaln(shape) + shape * y - rate * np.exp(y) + loglik
        peak = log_f.max(-1)
        log_post += np.log(np.exp(log_f - peak[..., None]).sum(-1)) + peak
    _assert_chain_matches_grid(trace, log_post, (m, v))


@numba.njit(cache=False)
def _joint_partial_chain(seed, moves, data, k, lam, mu, coords, prior, chol):
    """The joint partially non-centred move of lam's and mu's populations, alternated with a random walk on
    the log of every rate."""
    np.random.seed(seed)
    out, scale, trace = np.empty((4, k.size)), np.array([0.0, 1.0]), np.empty((moves, 4))
    extra_shape, extra_rate = np.empty((2, k.size)), np.empty((2, k.size))
    extra_shape[0], extra_rate[0], extra_shape[1], extra_rate[1] = data[0] * k, k * data[1], 0.0, data[1]
    current = population.latent_total(0, 1, lam, data, k, lam, mu, data, np.empty(6), out)
    for m in range(moves):
        current = population.joint_partial_move(current, coords, prior, chol, scale, extra_shape, extra_rate, False,
                                                0.0, data, k, lam, mu, out)
        for j in range(1, 3):
            latent = lam if j == 1 else mu
            shape, rate = np.exp(-coords[j, 1]), np.exp(-coords[j, 1] - coords[j, 0])
            for i in range(k.size):
                old = latent[i]
                latent[i] = old * np.exp(0.8 * np.random.standard_normal())
                moved = population.latent_total(0, 1, lam, data, k, lam, mu, data, np.empty(6), out)
                log_ratio = moved - current + shape * np.log(latent[i] / old) - rate * (latent[i] - old)
                if np.log(np.random.random()) < log_ratio:
                    current = moved
                else:
                    latent[i] = old
        trace[m, :2], trace[m, 2:] = coords[1], coords[2]
    return trace


def _log_gamma_weights(m, v, y):
    """Per population (log mean ``m``, log cv2 ``v``, flat arrays) the Gamma density of the log latent on grid ``y``,
    times the grid's spacing: rows of quadrature weights."""
    shape = np.exp(-v)[:, None]
    rate = shape / np.exp(m)[:, None]
    return np.exp(shape * np.log(rate) - special.gammaln(shape) + shape * y - rate * np.exp(y)) * (y[1] - y[0])


def test_joint_partial_move_keeps_the_posterior_of_both_populations():
    """The joint move of lam's and mu's (log mean, log cv2) along a correlated proposal, with each customer's
    rates moved by random walks, against 4-D quadrature of the two populations' posterior, every customer's
    ``(lam, mu)`` integrated out (2-D, on a grid of their logs).

    Customers from no repeat purchase (both maps non-centred) to many (lam's nearly centred).
    """
    x, t_x, T = np.array([0.0, 1.0, 4.0, 15.0]), np.array([0.0, 6.0, 20.0, 33.0]), np.array([30.0, 25.0, 38.0, 35.0])
    litt = np.array([0.0, np.log(6.0), 4 * np.log(5.0), 15 * np.log(2.0)])
    k = np.array([0.7, 1.0, 2.0, 3.0])
    centres = (-1.5, -3.5)
    prior = np.zeros((3, 6))
    for j, centre in zip((1, 2), centres):
        prior[j] = [prior_density.PRIOR_CODES["LogNormal"], centre, 0.7, prior_density.PRIOR_CODES["LogNormal"], 0.0,
                    0.7]
    coords = np.array([[0.0, 0.0], [centres[0], 0.0], [centres[1], 0.0]])
    chol = np.linalg.cholesky(np.array([[0.4, 0.1, 0.0, -0.1], [0.1, 0.4, 0.1, 0.0], [0.0, 0.1, 0.4, 0.2],
                                        [-0.1, 0.0, 0.2, 0.4]]))
    trace = _joint_partial_chain(4, 60_000, (x, t_x, T, litt), k, np.array([0.1, 0.2, 0.3, 0.5]),
                                 np.array([0.05, 0.02, 0.01, 0.03]), coords, prior, chol)
    axes = [np.linspace(centres[0] - 2.8, centres[0] + 2.8, 29), np.linspace(-2.4, 2.4, 25),
            np.linspace(centres[1] - 2.8, centres[1] + 2.8, 29), np.linspace(-2.4, 2.4, 25)]
    lam_m, lam_v = (g.ravel() for g in np.meshgrid(axes[0], axes[1], indexing="ij"))
    mu_m, mu_v = (g.ravel() for g in np.meshgrid(axes[2], axes[3], indexing="ij"))
    y_lam, y_mu = np.linspace(-12.0, 3.0, 500), np.linspace(-16.0, 0.0, 500)
    w_lam, w_mu = _log_gamma_weights(lam_m, lam_v, y_lam), _log_gamma_weights(mu_m, mu_v, y_mu)
    log_post = (-0.5 * ((lam_m - centres[0]) / 0.7) ** 2 - 0.5 * (lam_v / 0.7) ** 2)[:, None] \
        + (-0.5 * ((mu_m - centres[1]) / 0.7) ** 2 - 0.5 * (mu_v / 0.7) ** 2)[None, :]
    for i in range(4):
        loglik = paretoggg.loglik(litt[i], x[i], t_x[i], T[i], k[i], np.exp(y_lam)[:, None], np.exp(y_mu)[None, :],
                                  xp=paretoggg.NP)
        peak = loglik.max()
        log_post += np.log(w_lam @ np.exp(loglik - peak) @ w_mu.T) + peak
    grids = [np.broadcast_to(g[:, None], log_post.shape) for g in (lam_m, lam_v)] \
        + [np.broadcast_to(g[None, :], log_post.shape) for g in (mu_m, mu_v)]
    _assert_chain_matches_grid(trace, log_post, grids)


def test_k_given_the_gaps_integrates_lam_out():
    a, r, alpha = _AUGMENTED, 0.6, 9.0
    data, out, pop = (a["n"],) * 4, np.empty((4, 4)), np.array([1.0, 1.0, r, alpha, 1.0, 1.0])
    for k in (0.4, 1.0, 3.0):
        kk = np.full(4, k)
        got = population.latent_total(1, 0, kk, data, kk, kk, kk, (a["n"], a["L"], a["S"]), pop, out)

        def gaps(v, i):  # log density of n Gamma(k, k lam) gaps with sum S and sum of logs L, at lam = v
            return (a["n"][i] * (k * np.log(k * v) - special.gammaln(k)) + (k - 1.0) * a["L"][i]
                    - k * v * a["S"][i])

        want = sum(_integrated(lambda v, i=i: gaps(v, i), r, alpha) for i in range(4))
        # up to log(alpha^r / Gamma(r)) per customer, which does not depend on k
        assert got + 4 * (r * np.log(alpha) - special.gammaln(r)) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize(("prior", "reference"), [
    (bc.Prior("HalfNormal", sigma=2.0), stats.halfnorm(scale=2.0)),
    (bc.Prior("HalfNormal", tau=0.25), stats.halfnorm(scale=2.0)),
    (bc.Prior("Exponential", lam=0.5), stats.expon(scale=2.0)),
    (bc.Prior("Exponential", scale=2.0), stats.expon(scale=2.0)),
    (bc.Prior("Gamma", alpha=2.0, beta=3.0), stats.gamma(2.0, scale=1 / 3.0)),
    (bc.Prior("Gamma", mu=2.0, sigma=0.5), stats.gamma(16.0, scale=1 / 8.0)),
    (bc.Prior("LogNormal", mu=0.5, sigma=0.7), stats.lognorm(0.7, scale=np.exp(0.5))),
    (bc.Prior("HalfCauchy", beta=1.5), stats.halfcauchy(scale=1.5)),
    (bc.Prior("InverseGamma", alpha=3.0, beta=2.0), stats.invgamma(3.0, scale=2.0)),
    (bc.Prior("Weibull", alpha=1.5, beta=2.0), stats.weibull_min(1.5, scale=2.0)),
    (bc.Prior("Uniform", lower=0.0, upper=5.0), stats.uniform(0.0, 5.0)),
])
def test_population_priors_are_the_distributions_densities(prior, reference):
    code, a, b = prior_density.prior_arguments(prior.distribution, prior.parameters)
    for v in (0.05, 0.7, 1.3, 4.0):
        assert prior_density.log_prior(int(code), a, b, v) == pytest.approx(reference.logpdf(v), rel=1e-10, abs=1e-12)


def test_half_student_t_prior_is_twice_the_student_t():
    code, a, b = prior_density.prior_arguments("HalfStudentT", {"nu": 3.0, "sigma": 2.0})
    for v in (0.1, 1.0, 7.0):
        want = np.log(2.0) + stats.t(3.0, scale=2.0).logpdf(v)
        assert prior_density.log_prior(int(code), a, b, v) == pytest.approx(want, rel=1e-10)


def test_gibbs_is_refused_by_other_models_and_unevaluated_priors():
    rfm = pd.DataFrame({"customer_id": [1, 2], "frequency": [1, 0], "recency": [3.0, 0.0], "T": [10.0, 8.0],
                        "litt": [np.log(3.0), 0.0]})
    rfm.attrs["time_unit"] = "W"
    with pytest.raises(ValueError, match="method='gibbs'"):
        bc.ParetoNBDModel().fit(rfm, method="gibbs")
    with pytest.raises(PriorError) as err:
        bc.ParetoGGGModel(priors={"k_mean": bc.Prior("TruncatedNormal", mu=1.0, sigma=1.0, lower=0.0)}).fit(rfm)
    assert err.value.distribution == "TruncatedNormal"
    assert "method='gibbs' evaluates the priors" in str(err.value) and "or method='nuts'" in str(err.value)


def test_unevaluated_prior_error_names_its_caller():
    """The shared prior table serves several samplers: its error speaks for the one that called it."""
    wording = r"^Prior\('Normal'\): the direct density evaluates the priors \[.*\]; use one of them$"
    with pytest.raises(PriorError, match=wording):
        prior_density.prior_arguments("Normal", {"mu": 0.0, "sigma": 1.0}, caller="the direct density")
    with pytest.raises(PriorError) as err:
        prior_density.prior_arguments("Normal", {"mu": 0.0, "sigma": 1.0})
    assert "gibbs" not in str(err.value) and "nuts" not in str(err.value)
