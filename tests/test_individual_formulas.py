"""Individual-level formulas (given each customer's rates) against independent references.

* the Pareto/NBD likelihood against SciPy quadrature over the unobserved lifetime;
* both models in the pooled limit: averaging the individual-level likelihood over the
  Gamma/Gamma (Pareto/NBD) or Gamma/Beta (BG/NBD) population must give the pooled
  model's likelihood, and averaging each conditional prediction over the posterior of the
  rates (population x individual likelihood, SciPy ``dblquad``) must give the pooled
  model's prediction -- an independent route to every formula;
* predictive probabilities against simulation from the library's simulators;
* finite values at numerical extremes.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, special, stats

from bayesclv.formulas import PT, NP, bgnbd, individual_bgnbd, individual_paretonbd, paretonbd
from bayesclv.simulate import future_purchases_individual_bgnbd, future_purchases_individual_paretonbd

PN = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # CDNOW sample, weeks
BG = {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426}
HISTORIES = [(0.0, 0.0, 38.0), (2.0, 30.43, 38.86), (7.0, 10.0, 39.0), (25.0, 36.0, 38.0)]


def _pn_loglik_by_lifetime(x, tx, T, lam, mu):
    """log of [P(alive at T) lam^x e^{-lam T} + int_{tx}^{T} mu e^{-mu tau} lam^x e^{-lam tau} dtau]."""
    alive = math.exp(-mu * T) * lam**x * math.exp(-lam * T)
    died, _ = integrate.quad(lambda tau: mu * math.exp(-mu * tau) * lam**x * math.exp(-lam * tau), tx, T,
                             epsabs=0, epsrel=1e-12)
    return math.log(alive + died)


@pytest.mark.parametrize("x, tx, T", HISTORIES)
@pytest.mark.parametrize("lam, mu", [(0.05, 0.02), (0.5, 0.001), (0.01, 0.3)])
def test_paretonbd_loglik_matches_lifetime_quadrature(x, tx, T, lam, mu):
    got = individual_paretonbd.loglik(x, tx, T, lam, mu, xp=NP)
    assert got == pytest.approx(_pn_loglik_by_lifetime(x, tx, T, lam, mu), rel=1e-9)


def _posterior_average(model, x, tx, T, fn=None):
    """``log E_pop[L]`` (``fn=None``) or ``E[fn(rates) | history]`` over the population distribution.

    Integrates in (log lam, log mu) or (log lam, logit p) by the trapezoidal rule on a
    fine grid (spectrally accurate for these smooth integrands that decay at both ends);
    the population is Gamma(r, alpha) x Gamma(s, beta) or Gamma(r, alpha) x Beta(a, b).
    """
    u = np.linspace(-200.0, 6.0, 2401)[:, None]  # Gamma(r < 1) puts mass ~ e^(r u) far left
    v = np.linspace(-45.0, 12.0, 1601)[None, :] if model == "paretonbd" else np.linspace(-45.0, 45.0, 1601)[None, :]
    lam = np.exp(u)
    if model == "paretonbd":
        mod, pop = individual_paretonbd, PN
        other = np.exp(v)
        log_prior_v = stats.gamma.logpdf(other, pop["s"], scale=1 / pop["beta"]) + v
    else:
        mod, pop = individual_bgnbd, BG
        other = special.expit(v)
        log_prior_v = (stats.beta.logpdf(other, pop["a"], pop["b"])
                       - np.logaddexp(0.0, -v) - np.logaddexp(0.0, v))  # + log p + log(1-p)
    log_joint = (mod.loglik(x, tx, T, lam, other, xp=NP)
                 + stats.gamma.logpdf(lam, pop["r"], scale=1 / pop["alpha"]) + u + log_prior_v)
    peak = log_joint.max()
    w = np.exp(log_joint - peak)
    norm = integrate.trapezoid(integrate.trapezoid(w, v[0], axis=1), u[:, 0])
    if fn is None:
        return math.log(norm) + peak
    num = integrate.trapezoid(integrate.trapezoid(w * fn(lam, other), v[0], axis=1), u[:, 0])
    return num / norm


@pytest.mark.parametrize("x, tx, T", HISTORIES[:3])
@pytest.mark.parametrize("model", ["paretonbd", "bgnbd"])
def test_population_average_of_likelihood_is_pooled_likelihood(model, x, tx, T):
    pooled = (paretonbd.loglik(x, tx, T, **PN, xp=NP) if model == "paretonbd"
              else bgnbd.loglik(x, tx, T, **BG, xp=NP))
    assert _posterior_average(model, x, tx, T) == pytest.approx(float(pooled), rel=1e-6)


@pytest.mark.parametrize("x, tx, T", [(2.0, 30.43, 38.86), (7.0, 10.0, 39.0)])
@pytest.mark.parametrize("model", ["paretonbd", "bgnbd"])
def test_posterior_average_of_predictions_is_pooled_prediction(model, x, tx, T):
    ind, pooled, pop = ((individual_paretonbd, paretonbd, PN) if model == "paretonbd"
                        else (individual_bgnbd, bgnbd, BG))
    t = 20.0
    cases = {
        "probability_alive": (lambda a, b: ind.probability_alive(x, tx, T, a, b),
                              pooled.probability_alive(x, tx, T, **pop)),
        "expected_purchases": (lambda a, b: ind.expected_purchases(t, x, tx, T, a, b),
                               pooled.expected_purchases(t, x, tx, T, **pop)),
        "probability_alive_at": (lambda a, b: ind.probability_alive_at(t, x, tx, T, a, b),
                                 pooled.probability_alive_at(t, x, tx, T, **pop)),
        "probability_of_purchases": (lambda a, b: ind.probability_of_purchases(1, t, x, tx, T, a, b),
                                     pooled.probability_of_purchases(1, t, x, tx, T, **pop)),
    }
    for name, (fn, expected) in cases.items():
        assert _posterior_average(model, x, tx, T, fn) == pytest.approx(float(expected), rel=1e-7), name


@pytest.mark.parametrize("model", ["paretonbd", "bgnbd"])
def test_probability_of_purchases_matches_simulation_and_expectation(model):
    ind, sim, rates = ((individual_paretonbd, future_purchases_individual_paretonbd, (0.3, 0.05))
                       if model == "paretonbd" else
                       (individual_bgnbd, future_purchases_individual_bgnbd, (0.3, 0.1)))
    x, tx, T, t = 3.0, 20.0, 30.0, 15.0
    n = np.arange(60)
    pmf = np.array([ind.probability_of_purchases(k, t, x, tx, T, *rates) for k in n])
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (n * pmf).sum() == pytest.approx(float(ind.expected_purchases(t, x, tx, T, *rates)), rel=1e-10)
    draws = sim(t, np.full(400_000, x), tx, T, *rates, rng=7)
    freq = np.bincount(draws, minlength=60)[:6] / draws.size
    se = np.sqrt(pmf[:6] * (1 - pmf[:6]) / draws.size)
    assert np.all(np.abs(freq - pmf[:6]) < 5 * se)
    # survival given alive: the purchase process stops at the dropout
    assert ind.probability_alive_at(0.0, x, tx, T, *rates) == pytest.approx(
        float(ind.probability_alive(x, tx, T, *rates)), rel=1e-12)


def test_bgnbd_without_repeat_purchases_is_alive():
    assert individual_bgnbd.probability_alive(0.0, 0.0, 50.0, 0.2, 0.9) == 1.0
    assert individual_bgnbd.loglik(0.0, 0.0, 50.0, 0.2, 0.9, xp=NP) == pytest.approx(-0.2 * 50.0)


@pytest.mark.parametrize("model", ["paretonbd", "bgnbd"])
def test_extremes_are_finite_and_gradients_exist(model):
    ind = individual_paretonbd if model == "paretonbd" else individual_bgnbd
    x = np.array([0.0, 500.0, 1000.0, 3.0, 3.0])
    tx = np.array([0.0, 9999.0, 10.0, 1e4 - 1, 0.5])
    T = np.array([1e4, 1e4, 1e4, 1e4, 1e4])
    a = np.array([1e-6, 5.0, 50.0, 1e-4, 1e3])
    b = np.array([1e-6, 1e-8, 0.999999, 0.3, 0.5]) if model == "bgnbd" else np.array([1e-6, 1e-8, 10.0, 5.0, 1e-3])
    ll = ind.loglik(x, tx, T, a, b, xp=NP)
    assert np.all(np.isfinite(ll))
    for fn in (ind.probability_alive, lambda *h: ind.expected_purchases(52.0, *h),
               lambda *h: ind.probability_of_purchases(2, 52.0, *h)):
        values = fn(x, tx, T, a, b)
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    # the PyTensor graph gives the same values and finite gradients in the latent scale
    u, v = pt.dvector("u"), pt.dvector("v")
    second = pt.exp(v) if model == "paretonbd" else pt.sigmoid(v)
    total = ind.loglik(x, tx, T, pt.exp(u), second, xp=PT)
    f = pytensor.function([u, v], [total, *pt.grad(total.sum(), [u, v])])
    v0 = np.log(b) if model == "paretonbd" else special.logit(b)
    val, gu, gv = f(np.log(a), v0)
    np.testing.assert_allclose(val, ll, rtol=1e-9)
    assert np.all(np.isfinite(gu)) and np.all(np.isfinite(gv))
