"""Data-augmentation MCMC for the Pareto/GGG: every customer's latents and the population, in compiled sweeps.

Derived from the model's definition (:mod:`bayesclv.formulas.paretoggg`). Two
latent quantities per customer make every conditional simple:

- the observed lifetime ``tau_c = min(tau, T)`` with the flag ``alive`` (``tau > T``);
- ``W``, the gap from the last purchase ``t_x`` to the next one, which would have
  come after ``tau_c`` (``W > tau_c - t_x``): ``P(W > d) = Q(k, k lam d)`` is the
  no-purchase term of the likelihood, so with ``W`` the customer has ``x + 1``
  whole Gamma(``k``, ``k lam``) gaps.

Per customer and sweep:

1. ``(tau_c, alive)`` given ``k, lam, mu`` with ``W`` integrated out, by independence
   Metropolis: alive with the exact probability of the bracket of the likelihood,
   else ``tau_c - t_x`` from an exponential of rate ``mu + lam`` truncated to
   ``(0, T - t_x)`` (the exact conditional at ``k = 1``); then ``W`` given it, a
   truncated Gamma draw (:func:`truncated_gamma`). Together a draw of the pair.
2. ``k`` given ``W`` with ``lam`` integrated out (closed form: ``lam`` is conjugate),
   random-walk Metropolis in ``log k`` with a step adapted per customer while
   tuning; then ``lam ~ Gamma(r + (x+1) k, alpha + k (t_x + W))``.
3. ``mu ~ Gamma(s + 1 - alive, beta + tau_c)``.

The population of each latent, given the latents, depends on their sum and sum of
logs: random-walk Metropolis in (log mean, log squared coefficient of variation),
the coordinates the model's priors are on. A customer with little data has
latents close to population draws, so that block alone would move the population
slowly; each sweep also rescales a population's mean together with all its
latents (the latents' population density is unchanged by the move, only the
prior of the mean and the likelihood are), which moves along that ridge.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.errors import PriorError
from bayesclv.formulas._special import log_gamma_q, logaddexp
from bayesclv.formulas._summed import digamma
from bayesclv.formulas.paretoggg import _loglik_kernel

__all__ = ["PRIOR_CODES", "log_prior", "prior_arguments", "run_chain", "sample", "truncated_gamma"]

#: distributions of the population priors the compiled sampler evaluates (code of :func:`log_prior`)
PRIOR_CODES = {"HalfNormal": 0, "Exponential": 1, "Gamma": 2, "LogNormal": 3, "HalfCauchy": 4, "InverseGamma": 5,
               "Weibull": 6, "Uniform": 7, "HalfFlat": 8, "HalfStudentT": 9}
_TARGET = 0.44  # acceptance rate the random-walk steps are tuned to (one dimension)
_POP_STEPS = 5  # population random-walk steps per coordinate and sweep
_NC_MOVES = 3  # non-centred moves per population coordinate and sweep
_FLOOR = 1e-300  # a Gamma draw of a tiny shape may underflow to 0; a latent stays positive


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_prior(code, a, b, v):  # pragma: no cover - compiled
    """Log density at ``v > 0`` of the prior ``code`` (:data:`PRIOR_CODES`) with arguments ``a, b``."""
    if not v > 0.0:
        return -np.inf
    if code == 0:
        return -0.5 * (v / a) ** 2 - math.log(a) + 0.5 * math.log(2.0 / math.pi)
    if code == 1:
        return math.log(a) - a * v
    if code == 2:
        return a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(v) - b * v
    if code == 3:
        z = (math.log(v) - a) / b
        return -0.5 * z * z - math.log(v * b) - 0.5 * math.log(2.0 * math.pi)
    if code == 4:
        return math.log(2.0 / (math.pi * a)) - math.log1p((v / a) ** 2)
    if code == 5:
        return a * math.log(b) - math.lgamma(a) - (a + 1.0) * math.log(v) - b / v
    if code == 6:
        return math.log(a / b) + (a - 1.0) * math.log(v / b) - (v / b) ** a
    if code == 7:
        return -math.log(b - a) if a <= v <= b else -np.inf
    if code == 8:
        return 0.0
    return (math.log(2.0) + math.lgamma(0.5 * (a + 1.0)) - math.lgamma(0.5 * a) - 0.5 * math.log(a * math.pi)
            - math.log(b) - 0.5 * (a + 1.0) * math.log1p((v / b) ** 2 / a))


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
def _collapsed_rate(current, which, shapes, rates, args):  # pragma: no cover - compiled
    """Independence Metropolis step of ``mu`` (``which = 0``) or ``lam`` (1), lifetime and next gap integrated out.

    The proposal is the even mixture of two Gamma distributions (``shapes``,
    ``rates``): the conjugate part of the conditional, and that part with the
    bracket's extreme behaviour (dead: one more in the shape; alive: the gap in
    the rate), so the weight stays bounded whichever the bracket favours.
    """
    c = 0 if np.random.random() < 0.5 else 1
    proposal = max(np.random.gamma(shapes[c], 1.0 / rates[c]), _FLOOR)
    log_ratio = (_rate_target(which, proposal, args) - _log_mixture(proposal, shapes, rates)
                 - _rate_target(which, current, args) + _log_mixture(current, shapes, rates))
    return proposal if math.log(np.random.random()) < log_ratio else current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rate_target(which, v, args):  # pragma: no cover - compiled
    """Log conditional density of ``mu`` (``which = 0``: ``args`` = s, beta + t_x, gap, k, k lam) or ``lam``
    (1: ``args`` = r + x k, alpha + k t_x, gap, k, mu) with the lifetime and the next gap integrated out."""
    shape, rate, gap, k = args[0], args[1], args[2], args[3]
    bracket = _log_bracket(k, args[4], v, gap) if which == 0 else _log_bracket(k, k * v, args[4], gap)
    return (shape - 1.0) * math.log(v) - rate * v + bracket


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lifetime_draw(gap, k, lam, mu):  # pragma: no cover - compiled
    """``(alive, u, w)`` from their conditional given ``k, lam, mu`` (``u = tau_c - t_x``, ``gap = T - t_x``).

    Alive at ``T`` with the probability of the likelihood's bracket
    (:mod:`bayesclv.formulas.paretoggg`); then ``w`` is the truncated Gamma draw
    beyond ``gap``, otherwise :func:`_dead_draw`.
    """
    kl = k * lam
    if not gap > 0.0:
        return 1, 0.0, truncated_gamma(k, kl, 0.0, 0.0)
    log_q_gap = _log_q(k, kl * gap)
    if math.log(np.random.random()) < -mu * gap + log_q_gap - _log_bracket(k, kl, mu, gap):
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
        if gap > 0.0:  # the rates with the lifetime and the next gap integrated out: fast mixing
            args[0], args[1], args[2], args[3], args[4] = s, beta + t_x[i], gap, k[i], k[i] * lam[i]
            shapes[0], shapes[1], rates[0], rates[1] = s, s + 1.0, args[1], args[1]
            mu[i] = _collapsed_rate(mu[i], 0, shapes, rates, args)
            shape = r + x[i] * k[i]
            args[0], args[1], args[2], args[3], args[4] = shape, alpha + k[i] * t_x[i], gap, k[i], mu[i]
            shapes[0], shapes[1], rates[0], rates[1] = shape, shape, args[1], args[1] + k[i] * gap
            lam[i] = _collapsed_rate(lam[i], 1, shapes, rates, args)
        alive[i], u[i], w[i] = _lifetime_draw(gap, k[i], lam[i], mu[i])
        n1 = x[i] + 1.0
        big_l, big_s = litt[i] + math.log(w[i]), t_x[i] + w[i]
        current = _log_k_target(k[i], n1, big_l, big_s, t, gamma, r, alpha)
        proposal = k[i] * math.exp(k_step[i] * np.random.standard_normal())
        log_ratio = _log_k_target(proposal, n1, big_l, big_s, t, gamma, r, alpha) - current
        if math.log(np.random.random()) < log_ratio:
            k[i] = proposal
        if adapt:
            k_step[i] *= math.exp(rate * (min(1.0, math.exp(min(log_ratio, 0.0))) - _TARGET))
        lam[i] = max(np.random.gamma(r + n1 * k[i], 1.0 / (alpha + k[i] * big_s)), _FLOOR)
        tau_c = T[i] if alive[i] else t_x[i] + u[i]
        mu[i] = max(np.random.gamma(s + 1.0 - alive[i], 1.0 / (beta + tau_c)), _FLOOR)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _population_target(log_mean, log_cv2, n, total, log_total, prior):  # pragma: no cover - compiled
    """Log posterior of one latent's population in (log mean, log cv2) given the latents' sum and sum of logs."""
    mean, cv2 = math.exp(log_mean), math.exp(log_cv2)
    shape = 1.0 / cv2
    rate = shape / mean
    return (n * (shape * math.log(rate) - math.lgamma(shape)) + (shape - 1.0) * log_total - rate * total
            + log_prior(int(prior[0]), prior[1], prior[2], mean) + log_mean
            + log_prior(int(prior[3]), prior[4], prior[5], cv2) + log_cv2)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _population_steps(coords, j, n, total, log_total, prior, steps, adapt, rate):  # pragma: no cover - compiled
    """Random-walk Metropolis on population ``j``'s (log mean, log cv2), ``_POP_STEPS`` per coordinate."""
    current = _population_target(coords[j, 0], coords[j, 1], n, total, log_total, prior[j])
    for _ in range(_POP_STEPS):
        for c in range(2):
            old = coords[j, c]
            coords[j, c] = old + steps[j, c] * np.random.standard_normal()
            proposed = _population_target(coords[j, 0], coords[j, 1], n, total, log_total, prior[j])
            log_ratio = proposed - current
            if math.log(np.random.random()) < log_ratio:
                current = proposed
            else:
                coords[j, c] = old
            if adapt:
                steps[j, c] *= math.exp(rate * (min(1.0, math.exp(min(log_ratio, 0.0))) - _TARGET))


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
def _marginal_total(j, v, x, t_x, T, litt, k, lam, mu, out):  # pragma: no cover - compiled
    """Log-likelihood of every history (lifetime and next gap integrated out) with latent ``j`` set to ``v``."""
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
def _noncentred_move(j, c, latent, current, coords, prior, steps, adapt, rate, x, t_x, T, litt, k, lam, mu,
                     out):  # pragma: no cover - compiled
    """Move population ``j``'s coordinate ``c`` (0: log mean, 1: log cv2) with its latents held non-centred.

    Each latent keeps ``z = (log v - psi(shape) + log rate) / sqrt(psi'(shape))``, its
    standardised log (near a standard normal whatever the population: the
    parameterisation of the NUTS fit), while the population moves. Along
    ``c = 0`` this multiplies the mean and every latent by one factor; along
    ``c = 1`` it spreads or gathers them. The ratio is exact: the latents'
    population density, the Jacobian of the map and the likelihood are evaluated
    over every customer. ``latent`` is updated in place when accepted.
    """
    n = float(x.size)
    old_mean, old_cv2 = coords[j, 0], coords[j, 1]
    old_shape = math.exp(-old_cv2)
    old_log_rate = -old_cv2 - old_mean
    c = c % 2
    eps = steps[j, 2 + c] * np.random.standard_normal()
    coords[j, c] += eps
    shape = math.exp(-coords[j, 1])
    log_rate = -coords[j, 1] - coords[j, 0]
    ratio = math.sqrt(_trigamma(shape) / _trigamma(old_shape))
    shift = digamma(shape) - log_rate - ratio * (digamma(old_shape) - old_log_rate)
    moved = np.exp(shift + ratio * np.log(latent))
    proposed = _marginal_total(j, moved, x, t_x, T, litt, k, lam, mu, out)
    log_ratio = n * math.log(ratio) + proposed - current
    log_ratio += _log_population_density(moved, shape, log_rate) - _log_population_density(latent, old_shape,
                                                                                             old_log_rate)
    log_ratio += (log_prior(int(prior[j, 0]), prior[j, 1], prior[j, 2], math.exp(coords[j, 0])) + coords[j, 0]
                  + log_prior(int(prior[j, 3]), prior[j, 4], prior[j, 5], math.exp(coords[j, 1])) + coords[j, 1]
                  - log_prior(int(prior[j, 0]), prior[j, 1], prior[j, 2], math.exp(old_mean)) - old_mean
                  - log_prior(int(prior[j, 3]), prior[j, 4], prior[j, 5], math.exp(old_cv2)) - old_cv2)
    if adapt:
        steps[j, 2 + c] *= math.exp(rate * (min(1.0, math.exp(min(log_ratio, 0.0))) - _TARGET))
    if math.log(np.random.random()) < log_ratio and np.all(moved > 0.0):
        latent[:] = moved
        return proposed
    coords[j, 0], coords[j, 1] = old_mean, old_cv2
    return current


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _to_population(coords, pop):  # pragma: no cover - compiled
    """(log mean, log cv2) of each latent -> ``t, gamma, r, alpha, s, beta``."""
    for j in range(3):
        shape = math.exp(-coords[j, 1])
        pop[2 * j], pop[2 * j + 1] = shape, shape / math.exp(coords[j, 0])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def run_chain(seed, sweeps, adapt, thin, x, t_x, T, litt, k, lam, mu, alive, u, w, k_step, coords, steps,
              prior, out_pop, out_k, out_lam, out_mu):  # pragma: no cover - compiled
    """``sweeps`` sweeps of one chain from the state passed in (updated in place).

    ``coords`` (3, 2): each latent's (log mean, log cv2); ``steps`` (3, 3): the
    population's random-walk steps and the scale move's; ``prior`` (3, 6): the codes
    and arguments of the mean's and the cv2's priors. With ``adapt`` the steps are
    tuned (Robbins-Monro, decreasing gain) and nothing is stored; otherwise every
    ``thin``-th sweep is written to ``out_*`` (population ``t, gamma, r, alpha, s, beta``).
    """
    np.random.seed(seed)
    pop = np.empty(6)
    out = np.empty((4, x.size))
    n = float(x.size)
    for sweep in range(sweeps):
        rate = 1.0 / (1.0 + sweep) ** 0.6 if adapt else 0.0
        current = _marginal_total(0, k, x, t_x, T, litt, k, lam, mu, out)
        for j in range(3):
            latent = k if j == 0 else (lam if j == 1 else mu)
            for c in range(_NC_MOVES * 2):
                current = _noncentred_move(j, c, latent, current, coords, prior, steps, adapt, rate, x, t_x, T, litt,
                                           k, lam, mu, out)
        _to_population(coords, pop)
        _customers(x, t_x, T, litt, k, lam, mu, alive, u, w, k_step, pop, adapt, rate)
        for j in range(3):
            latent = k if j == 0 else (lam if j == 1 else mu)
            _population_steps(coords, j, n, latent.sum(), np.log(latent).sum(), prior, steps, adapt, rate)
        if not adapt and (sweep + 1) % thin == 0:
            m = (sweep + 1) // thin - 1
            _to_population(coords, pop)
            out_pop[m, :] = pop
            out_k[m, :] = k
            out_lam[m, :] = lam
            out_mu[m, :] = mu


def prior_arguments(distribution: str, parameters: dict) -> tuple[float, float, float]:
    """``(code, a, b)`` of a prior for :func:`log_prior`, its parameters in the one parametrisation evaluated there.

    Raises
    ------
    bayesclv.errors.PriorError
        A distribution the compiled sampler does not evaluate.
    """
    if distribution not in PRIOR_CODES:
        raise PriorError(f"method='gibbs' evaluates the population priors {sorted(PRIOR_CODES)}; use one of them "
                         "or method='nuts'", distribution=distribution)
    p = {key: float(value) for key, value in parameters.items()}
    if "tau" in p:  # precision -> scale (Normal-type) or lam -> sigma (Student t)
        p["sigma"] = p.pop("tau") ** -0.5
    if distribution == "HalfStudentT" and "lam" in p:
        p["sigma"] = p.pop("lam") ** -0.5
    if distribution == "Gamma" and "mu" in p:
        p = {"alpha": (p["mu"] / p["sigma"]) ** 2, "beta": p["mu"] / p["sigma"] ** 2}
    if distribution == "InverseGamma" and "mu" in p:
        shape = (p["mu"] / p["sigma"]) ** 2 + 2.0
        p = {"alpha": shape, "beta": p["mu"] * (shape - 1.0)}
    if distribution == "Exponential" and "scale" in p:
        p = {"lam": 1.0 / p["scale"]}
    defaults = {"HalfNormal": ("sigma", 1.0, "", 0.0), "Exponential": ("lam", 1.0, "", 0.0),
                "Gamma": ("alpha", 1.0, "beta", 1.0), "LogNormal": ("mu", 0.0, "sigma", 1.0),
                "HalfCauchy": ("beta", 1.0, "", 0.0), "InverseGamma": ("alpha", 1.0, "beta", 1.0),
                "Weibull": ("alpha", 1.0, "beta", 1.0), "Uniform": ("lower", 0.0, "upper", 1.0),
                "HalfFlat": ("", 0.0, "", 0.0), "HalfStudentT": ("nu", 1.0, "sigma", 1.0)}[distribution]
    return float(PRIOR_CODES[distribution]), p.get(defaults[0], defaults[1]), p.get(defaults[2], defaults[3])


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
            "steps": np.full((3, 4), 0.1)}


def sample(x, t_x, T, litt, prior, *, draws, tune, chains, thin, random_seed, cores):
    """Posterior draws of the population and every customer's ``k, lam, mu``, chains on ``cores`` threads.

    Parameters
    ----------
    x, t_x, T, litt : numpy.ndarray
        Repeat purchases, time of the last one, age, sum of the log inter-purchase times.
    prior : numpy.ndarray
        (3, 6): per latent the code and arguments of its mean's and its cv2's prior (:data:`PRIOR_CODES`).
    draws, tune, chains, thin : int
        Sweeps after tuning, tuning sweeps, chains; every ``thin``-th sweep is kept.
    random_seed : int or None
    cores : int
        Threads (the compiled sweeps release the GIL).

    Returns
    -------
    dict of numpy.ndarray
        ``"population"`` (chains, kept, 6) in ``t, gamma, r, alpha, s, beta``; ``"k"``, ``"lam"``,
        ``"mu"`` (chains, kept, customers).
    """
    from concurrent.futures import ThreadPoolExecutor

    data = [np.ascontiguousarray(v, dtype=float) for v in (x, t_x, T, litt)]
    kept = draws // thin
    seeds = np.random.SeedSequence(random_seed).spawn(chains)
    out = {"population": np.empty((chains, kept, 6)),
           **{name: np.empty((chains, kept, data[0].size)) for name in ("k", "lam", "mu")}}

    def chain(c):
        rng = np.random.default_rng(seeds[c])
        state = _initial_state(*data[:3], rng)
        args = [*data, *(state[n] for n in ("k", "lam", "mu", "alive", "u", "w", "k_step", "coords", "steps")),
                np.ascontiguousarray(prior, dtype=float)]
        stored = [out[n][c] for n in ("population", "k", "lam", "mu")]
        run_chain(int(rng.integers(2**31)), tune, True, 1, *args, *stored)
        run_chain(int(rng.integers(2**31)), draws, False, thin, *args, *stored)

    with ThreadPoolExecutor(max_workers=max(1, min(cores, chains))) as pool:
        list(pool.map(chain, range(chains)))
    return out
