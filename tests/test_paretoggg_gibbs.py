"""The Pareto/GGG's data-augmentation sampler (bayesclv.formulas._paretoggg_gibbs) against independent references.

- Its exact conditional draws: the truncated Gamma gap in each of its regimes against SciPy's distribution;
  the lifetime step's alive share against ``paretoggg.probability_alive`` and its death times against the
  closed-form distribution function of the death given death before T.
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
from scipy import special, stats

import bayesclv as bc
from bayesclv.errors import PriorError
from bayesclv.formulas import _paretoggg_gibbs as gibbs
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
        alive[i], u[i], w[i] = gibbs._lifetime_draw(gap, k, lam, mu)
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
    code, a, b = gibbs.prior_arguments(prior.distribution, prior.parameters)
    for v in (0.05, 0.7, 1.3, 4.0):
        assert gibbs.log_prior(int(code), a, b, v) == pytest.approx(reference.logpdf(v), rel=1e-10, abs=1e-12)


def test_half_student_t_prior_is_twice_the_student_t():
    code, a, b = gibbs.prior_arguments("HalfStudentT", {"nu": 3.0, "sigma": 2.0})
    for v in (0.1, 1.0, 7.0):
        want = np.log(2.0) + stats.t(3.0, scale=2.0).logpdf(v)
        assert gibbs.log_prior(int(code), a, b, v) == pytest.approx(want, rel=1e-10)


def test_gibbs_is_refused_by_other_models_and_unevaluated_priors():
    rfm = pd.DataFrame({"customer_id": [1, 2], "frequency": [1, 0], "recency": [3.0, 0.0], "T": [10.0, 8.0],
                        "litt": [np.log(3.0), 0.0]})
    rfm.attrs["time_unit"] = "W"
    with pytest.raises(ValueError, match="method='gibbs'"):
        bc.ParetoNBDModel().fit(rfm, method="gibbs")
    with pytest.raises(PriorError) as err:
        bc.ParetoGGGModel(priors={"k_mean": bc.Prior("TruncatedNormal", mu=1.0, sigma=1.0, lower=0.0)}).fit(rfm)
    assert err.value.distribution == "TruncatedNormal"
