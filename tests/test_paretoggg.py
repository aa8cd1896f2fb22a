"""Pareto/GGG individual-level mathematics (bayesclv.formulas.paretoggg).

- The likelihood from the sufficient statistics (x, t_x, T, litt) against the likelihood of the
  purchase times themselves, with the time of death integrated numerically (mpmath,
  tests/reference_paretoggg.py); P(alive) and the expected future purchases likewise.
- k = 1 is the Pareto/NBD (Abe's individual-level formulas).
- The analytic gradient against finite differences and PyTensor's derivative.
- Simulation: the maximiser of the likelihood of many simulated customers with one (k, lambda, mu)
  recovers it (likelihood-ratio statistic); the population simulator's histories have zero mean
  score at their own latents; simulated future purchases average the expectation.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import optimize, special, stats

from bayesclv.formulas import NP, PT, individual_paretonbd, paretoggg

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference_paretoggg as ref
except ImportError:  # pragma: no cover
    import reference_paretoggg as ref

LATENTS = [(0.3, 0.5, 0.02), (1.0, 0.2, 0.1), (3.0, 1.0, 0.01), (3.0, 0.05, 0.001), (10.0, 0.5, 0.05),
           (50.0, 2.0, 0.02)]


def litt_from_times(times):
    """Sum of the log inter-purchase times of repeat purchases at ``times`` (first purchase at 0)."""
    return float(np.sum(np.log(np.diff(np.concatenate([[0.0], np.asarray(times, dtype=float)])))))


@pytest.fixture(scope="module")
def histories():
    k, lam, mu = (np.repeat(np.array(v), 2) for v in zip(*LATENTS, strict=True))
    return paretoggg.simulate_histories(np.full(k.size, 52.0), k, lam, mu, rng=1, times=True)


def test_simulated_sufficient_statistics_are_those_of_the_times(histories):
    for i, times in enumerate(histories["times"]):
        assert histories["frequency"][i] == len(times)
        assert histories["recency"][i] == (times[-1] if len(times) else 0.0)
        assert histories["litt"][i] == pytest.approx(litt_from_times(times), abs=1e-9)


def test_loglik_matches_the_likelihood_of_the_purchase_times(histories):
    h = histories
    got = paretoggg.loglik(h["litt"], h["frequency"], h["recency"], h["T"], h["k"], h["lambda"], h["mu"], xp=NP)
    want = [ref.loglik_from_times(times, h["T"][i], h["k"][i], h["lambda"][i], h["mu"][i])
            for i, times in enumerate(h["times"])]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_loglik_is_finite_and_exact_at_extremes():
    # (times, T, k, lam, mu): a long regular history, a burst, an old silent customer, near-certain death
    cases = [(np.arange(1.0, 501.0) * 1.99, 1000.0, 200.0, 0.5, 1e-3), (np.array([1e-6, 2e-6, 5.0]), 1000.0, 0.05,
             3.0, 1e-3), (np.array([]), 1000.0, 2.0, 1e-3, 1e-3), (np.array([2.0, 4.0]), 900.0, 5.0, 0.5, 1.0)]
    for times, T, k, lam, mu in cases:
        got = paretoggg.loglik(litt_from_times(times), len(times), times[-1] if len(times) else 0.0, T, k, lam, mu,
                               xp=NP)
        assert np.isfinite(got)
        assert got == pytest.approx(ref.loglik_from_times(times, T, k, lam, mu), rel=1e-10)


@pytest.mark.parametrize("lam, mu", [(0.5, 0.05), (2.0, 1e-3), (1e-3, 1.0), (30.0, 30.0)])
def test_k_one_is_the_pareto_nbd(lam, mu):
    x, t_x, T = np.array([0, 1, 3, 10, 50.0]), np.array([0, 2, 10, 30, 38.0]), np.full(5, 39.0)
    litt = np.array([0.0, 0.5, 3.0, 8.0, -20.0])  # irrelevant at k = 1
    np.testing.assert_allclose(paretoggg.loglik(litt, x, t_x, T, 1.0, lam, mu, xp=NP),
                               individual_paretonbd.loglik(x, t_x, T, lam, mu, xp=NP), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(paretoggg.probability_alive(x, t_x, T, 1.0, lam, mu),
                               individual_paretonbd.probability_alive(x, t_x, T, lam, mu), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(paretoggg.expected_purchases(10.0, x, t_x, T, 1.0, lam, mu),
                               individual_paretonbd.expected_purchases(10.0, x, t_x, T, lam, mu), rtol=1e-10,
                               atol=1e-300)


def test_gradient_matches_finite_differences_and_pytensor(histories):
    h = histories
    data = (h["litt"], h["frequency"], h["recency"], h["T"])
    value, *grad = paretoggg.loglik_gradient(*data, h["k"], h["lambda"], h["mu"])
    latents = [h["k"], h["lambda"], h["mu"]]
    for j in range(3):
        step = 1e-6 * latents[j]
        up = [v + step * (i == j) for i, v in enumerate(latents)]
        down = [v - step * (i == j) for i, v in enumerate(latents)]
        fd = (paretoggg.loglik(*data, *up, xp=NP) - paretoggg.loglik(*data, *down, xp=NP)) / (2 * step)
        np.testing.assert_allclose(grad[j], fd, rtol=1e-5, atol=1e-5)
    k, lam, mu = (pt.dvector() for _ in range(3))
    total = paretoggg.loglik(*data, k, lam, mu, xp=PT)
    f = pytensor.function([k, lam, mu], [total, *pytensor.grad(total.sum(), [k, lam, mu])],
                          mode=pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile"))
    out = f(h["k"], h["lambda"], h["mu"])
    keep = h["k"] < 20  # PyTensor's gammaincc derivative in k is a slow series for large k
    np.testing.assert_allclose(out[0], value, rtol=1e-9)
    for j in range(3):
        np.testing.assert_allclose(out[1 + j][keep], grad[j][keep], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("delta, latents", [(3.0, LATENTS[2]), (1e-6, LATENTS[0]), (20.0, LATENTS[4]),
                                            (5.0, LATENTS[5])])
def test_probability_alive_and_expected_purchases_match_the_definition(delta, latents):
    t = 3.0 / latents[1] if latents[0] >= 1.0 else 0.5  # the reference sums a quadrature per future purchase
    got = paretoggg.probability_alive(0.0, 0.0, delta, *latents)
    assert got == pytest.approx(ref.probability_alive(delta, *latents), rel=1e-10, abs=1e-300)
    got = paretoggg.expected_purchases(t, 0.0, 0.0, delta, *latents, given_alive=True)
    assert got == pytest.approx(ref.expected_purchases_given_alive(t, delta, *latents), rel=1e-10)


@pytest.mark.parametrize("latents", LATENTS)
def test_expected_purchases_right_after_a_purchase_are_the_killed_renewals(latents):
    """Delta = 0: the j-th purchase is at a Gamma(jk, k lam) time, E = sum_j omega^(jk) P(jk, (k lam + mu) t)."""
    k, lam, mu = latents
    rate, t = k * lam + mu, 26.0
    j = np.arange(1, 20000)
    want = np.sum((k * lam / rate) ** (j * k) * special.gammainc(j * k, rate * t))
    assert paretoggg.expected_purchases(t, 5.0, 5.0, 5.0, k, lam, mu, given_alive=True) == pytest.approx(want,
                                                                                                          rel=1e-11)


def test_expected_purchases_average_the_simulated_future():
    n = 200_000
    for delta, latents in [(3.0, LATENTS[2]), (0.5, LATENTS[0]), (1.0, LATENTS[4])]:
        counts = paretoggg.simulate_future_purchases(26.0, 0.0, 0.0, np.full(n, delta), *latents, rng=2)
        want = float(paretoggg.expected_purchases(26.0, 0.0, 0.0, delta, *latents))
        assert abs(counts.mean() - want) < 4 * counts.std() / np.sqrt(n)


def test_likelihood_maximiser_recovers_common_latents():
    """Many customers with the same (k, lambda, mu): 2 (max log L - log L(true)) is chi-square with 3 dof."""
    truth = np.array([3.0, 0.4, 0.02])
    sim = paretoggg.simulate_histories(np.random.default_rng(3).uniform(30.0, 80.0, 5000), *truth, rng=4)
    data = (sim["litt"], sim["frequency"], sim["recency"], sim["T"])

    def objective(theta):
        value, *grad = paretoggg.loglik_gradient(*data, *np.exp(theta))
        return -value.sum(), -np.array([g.sum() for g in grad]) * np.exp(theta)

    res = optimize.minimize(objective, np.log(truth) + 0.3, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-9})
    statistic = 2.0 * (objective(np.log(truth))[0] - res.fun)
    assert 0.0 <= statistic < stats.chi2.ppf(0.999, 3)
    np.testing.assert_allclose(np.exp(res.x), truth, rtol=0.1)


def test_population_histories_have_zero_mean_score_at_their_latents():
    """E[d log L / d theta] = 0 when the histories come from the model with those latents."""
    sim = paretoggg.simulate_population(np.full(20000, 52.0), 6.0, 2.0, 2.0, 4.0, 1.0, 20.0, rng=5)
    _, *score = paretoggg.loglik_gradient(sim["litt"], sim["frequency"], sim["recency"], sim["T"], sim["k"],
                                          sim["lambda"], sim["mu"])
    for s in score:
        assert abs(s.mean()) < 4 * s.std() / np.sqrt(s.size)
    assert stats.kstest(sim["k"], stats.gamma(6.0, scale=0.5).cdf).pvalue > 1e-3


def test_log_population_density_is_the_product_of_gammas():
    k, lam, mu = 2.5, 0.3, 0.04
    want = (stats.gamma(6.0, scale=0.5).logpdf(k) + stats.gamma(2.0, scale=0.25).logpdf(lam)
            + stats.gamma(1.0, scale=0.05).logpdf(mu))
    assert paretoggg.log_population_density(k, lam, mu, 6.0, 2.0, 2.0, 4.0, 1.0, 20.0) == pytest.approx(want)
