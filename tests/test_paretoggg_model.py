"""ParetoGGGModel (bayesclv.models.paretoggg): the fitted model against independent references.

- P(n purchases) given the latents: the Pareto/NBD's closed form at k = 1, simulation at k != 1.
- The summed likelihood Op: its value and gradient are those of the per-customer formulas.
- A fitted model whose every k draw is set to 1 predicts what the individual Pareto/NBD formulas
  give for the same (lambda, mu) draws.
- Parameter recovery: the population means of regularity and purchase rate of 150 simulated
  customers (the default data-augmentation sampler, 1,500 sweeps per chain; its conditional draws are
  checked in ``tests/test_paretoggg_gibbs.py``).
- A fit too short to converge warns with its R-hat and ESS.
- Typed errors for a missing or impossible ``litt`` and for customers the fit has not seen.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr

import bayesclv as bc
from bayesclv.errors import DataValidationError
from bayesclv.formulas import NP, PT, individual_paretonbd, paretoggg

TRUTH = {"t": 8.0, "gamma": 4.0, "r": 1.5, "alpha": 6.0, "s": 1.0, "beta": 30.0}  # k ~ 2, lam ~ 0.25, mu ~ 0.03


def _frame(sim: dict, n: int) -> pd.DataFrame:
    df = pd.DataFrame({"customer_id": np.arange(n), **{c: sim[c] for c in ("frequency", "recency", "T", "litt")}})
    df.attrs["time_unit"] = "W"
    return df


@pytest.fixture(scope="module")
def simulation():
    rng = np.random.default_rng(4)
    return paretoggg.simulate_population(rng.uniform(40.0, 78.0, 150), *TRUTH.values(), rng=rng)


@pytest.fixture(scope="module")
def simulated(simulation):
    return _frame(simulation, simulation["k"].size)


@pytest.fixture(scope="module")
def fitted(simulated):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run: the diagnostics may warn
        return bc.ParetoGGGModel().fit(simulated, tune=500, draws=1000, thin=10, chains=2, random_seed=3,
                                       progressbar=False)


# ------------------------------------------------------------------ formulas the model adds
def test_count_probabilities_are_the_pareto_nbd_closed_form_at_k_one():
    x, t_x, T = np.array([0.0, 2, 5, 10, 3]), np.array([0.0, 10, 30, 38, 0.5]), np.array([40.0, 40, 40, 40, 60])
    lam, mu = np.array([0.1, 0.3, 0.2, 0.5, 2.0]), np.array([0.05, 0.02, 0.1, 0.01, 1e-4])
    for n in (0, 1, 2, 7, 30):
        got = paretoggg.probability_of_purchases(n, 20.0, x, t_x, T, np.ones(5), lam, mu)
        want = individual_paretonbd.probability_of_purchases(n, 20.0, x, t_x, T, lam, mu)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)


def test_count_probabilities_match_simulation_when_regular_or_clumpy():
    x, t_x, T = np.array([0.0, 2, 5, 10]), np.array([0.0, 10, 30, 38]), np.full(4, 40.0)
    k, lam, mu = np.array([0.5, 2.0, 4.0, 8.0]), np.array([0.1, 0.3, 0.2, 0.5]), np.array([0.05, 0.02, 0.1, 0.01])
    rng = np.random.default_rng(1)
    sims = np.array([paretoggg.simulate_future_purchases(20.0, x, t_x, T, k, lam, mu, rng=rng) for _ in range(20000)])
    for n in range(4):
        p = paretoggg.probability_of_purchases(n, 20.0, x, t_x, T, k, lam, mu)
        se = np.sqrt(p * (1 - p) / len(sims)) + 1e-6
        assert (np.abs((sims == n).mean(axis=0) - p) < 5 * se).all(), n
    pmf = sum(paretoggg.probability_of_purchases(n, 20.0, x, t_x, T, k, lam, mu) for n in range(120))
    np.testing.assert_allclose(pmf, 1.0, atol=1e-9)
    mean = sum(n * paretoggg.probability_of_purchases(n, 20.0, x, t_x, T, k, lam, mu) for n in range(120))
    np.testing.assert_allclose(mean, paretoggg.expected_purchases(20.0, x, t_x, T, k, lam, mu), rtol=1e-6)


def test_summed_op_value_and_gradient_are_the_formulas():
    rng = np.random.default_rng(2)
    sim = paretoggg.simulate_population(np.full(40, 52.0), *TRUTH.values(), rng=rng)
    data = [sim[c] for c in ("litt", "frequency", "recency", "T")]
    latents = [pt.dvector(n) for n in ("k", "lam", "mu")]
    total = paretoggg.summed_loglik(*data, *latents, xp=PT)
    fn = pytensor.function(latents, [total, *pt.grad(total, latents)])
    values = [sim["k"], sim["lambda"], sim["mu"]]
    got = fn(*values)
    want = paretoggg.loglik_gradient(*data, *values)
    np.testing.assert_allclose(got[0], want[0].sum(), rtol=1e-12)
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert paretoggg.summed_loglik(*data, *values, xp=NP) == pytest.approx(float(got[0]), rel=1e-12)


# ------------------------------------------------------------------------------ the model
def test_at_k_one_the_predictions_are_the_pareto_nbd(fitted):
    post = fitted.idata["posterior"].to_dataset()
    post["k"] = xr.ones_like(post["k"])
    model = bc.ParetoGGGModel()
    model.idata, model.data, model.time_unit, model.fit_method = fitted.idata.copy(), fitted.data, "W", "gibbs"
    model.idata["posterior"] = xr.DataTree(post)
    data = fitted.data.iloc[:60]
    lam, mu = post["lam"].values[..., :60], post["mu"].values[..., :60]
    cols = [data[c].to_numpy() for c in ("frequency", "recency", "T")]
    np.testing.assert_allclose(model.probability_alive(data).values,
                               individual_paretonbd.probability_alive(*cols, lam, mu), rtol=1e-9)
    np.testing.assert_allclose(model.expected_purchases(13.0, data).values,
                               individual_paretonbd.expected_purchases(13.0, *cols, lam, mu), rtol=1e-7)


def test_the_fit_recovers_the_population(fitted):
    post = fitted.posterior
    # the population means of regularity and purchase rate, which 150 customers identify better than each
    # shape or rate (the mean dropout rate needs a larger base: validation/paretoggg_cdnow.py)
    for shape, rate in (("t", "gamma"), ("r", "alpha")):
        mean = float((post[shape] / post[rate]).mean())
        assert mean == pytest.approx(TRUTH[shape] / TRUTH[rate], rel=0.35), shape


def test_a_fit_too_short_to_converge_says_so(simulated):
    """The default sampler's fit reports R-hat and ESS of the six population parameters and warns with them."""
    with pytest.warns(bc.errors.ConvergenceWarning, match=r"min bulk ESS \d+ < 400"):
        model = bc.ParetoGGGModel().fit(simulated, tune=20, draws=40, thin=1, chains=2, random_seed=1,
                                        progressbar=False)
    diagnostics = model.diagnostics
    assert diagnostics["method"] == "gibbs" and not diagnostics["ok"]
    assert diagnostics["n_draws"] == 80 and diagnostics["min_ess_bulk"] < 400 and diagnostics["max_r_hat"] > 1.0


def test_litt_is_required_and_checked(simulated):
    model = bc.ParetoGGGModel()
    with pytest.raises(DataValidationError) as missing:
        model.fit(simulated.drop(columns="litt"), method="nuts")
    assert missing.value.column == "litt"
    bad = simulated.copy()
    zero = bad.index[bad["frequency"] == 0][:2]
    bad.loc[zero, "litt"] = 1.0
    with pytest.raises(DataValidationError) as impossible:
        model.fit(bad)
    assert impossible.value.column == "litt"
    assert set(impossible.value.rows) == set(bad.loc[zero, "customer_id"])


def test_map_is_refused():
    with pytest.raises(ValueError, match="MAP"):
        bc.ParetoGGGModel().fit(pd.DataFrame(), method="map")


def test_predictions_only_for_fitted_customers(fitted):
    other = fitted.data.iloc[:3].assign(customer_id=[10**6, 10**6 + 1, 2])
    with pytest.raises(DataValidationError) as err:
        fitted.probability_alive(other)
    assert err.value.column == "customer_id" and err.value.rows == [10**6, 10**6 + 1]


def test_latents_are_each_customers_posterior_draws(fitted):
    some = fitted.data.iloc[[4, 0, 2]]
    latents = fitted.latents(some)
    assert set(latents.data_vars) == {"k", "lam", "mu"}
    for name in latents.data_vars:
        assert latents[name].dims == ("chain", "draw", "customer_id")
        np.testing.assert_array_equal(latents[name].values, fitted.posterior[name].values[..., [4, 0, 2]])
    assert latents["k"]["customer_id"].values.tolist() == some["customer_id"].tolist()


def test_simulation_refuses_counts_it_cannot_reach_instead_of_hanging():
    # a tiny regularity with a huge rate means millions of purchases in a 52-week window
    with pytest.raises(bc.errors.ArgumentError, match="more than 100,000 purchases"):
        paretoggg.simulate_histories(np.full(3, 52.0), 1e-4, 5e3, 1e-6, rng=1)
    ordinary = paretoggg.simulate_histories(np.full(3, 52.0), 2.0, 0.3, 0.02, rng=1)
    assert np.all(ordinary["frequency"] > 0)


def test_simulated_counts_follow_the_erlang_renewal_law_in_few_numpy_steps():
    """Without dropout, Erlang-k gaps give ``P(N(T) >= n) = P(Gamma(n k, k lam) <= T)`` exactly; the blocks of
    gaps reach hundreds of purchases per customer in a handful of generator calls, not one per purchase."""
    from scipy import special

    from bayesclv.formulas._simulate import gamma_renewals

    class Counting:  # the generator, counting its calls
        def __init__(self, seed):
            self.rng, self.calls = np.random.default_rng(seed), 0

        def gamma(self, *args, **kwargs):
            self.calls += 1
            return self.rng.gamma(*args, **kwargs)

    n, k, lam, T = 4000, 3.0, 8.0, 52.0  # about 416 purchases each
    rng = Counting(6)
    count, last, log_gaps, times = gamma_renewals(rng, np.zeros(n), np.full(n, T), np.full(n, k),
                                                  np.full(n, k * lam), 10**5, times=True)
    assert rng.calls <= 6
    for m in (390, 416, 440):
        want = special.gammaincc(m * k, k * lam * T)  # P(N < m) = 1 - P(m-th renewal <= T)
        got = (count < m).mean()
        assert abs(got - want) < 5 * np.sqrt(want * (1 - want) / n), m
    for i in range(5):  # the statistics are those of the times
        assert times[i].size == count[i] and times[i][-1] == last[i] <= T
        np.testing.assert_allclose(np.log(np.diff(times[i], prepend=0.0)).sum(), log_gaps[i], rtol=1e-10)


def test_prior_predictive_draws_the_priors_and_simulates_histories(simulated):
    """The population parameters are the priors' transforms (t = 1 / k_cv2, gamma = t / k_mean, ...) and each
    draw's histories are valid calibration data of the customers' own T (as validation/sbc.py needs)."""
    from scipy import stats

    # regularities away from 0 (k near 0 makes inter-purchase times underflow: validation/sbc.py, SBC_PRIORS)
    priors = {"k_mean": bc.Prior("LogNormal", mu=0.5, sigma=0.5), "k_cv2": bc.Prior("HalfNormal", sigma=0.2)}
    data = simulated.iloc[:40]
    ds = bc.ParetoGGGModel(priors=priors).sample_prior_predictive(data, draws=1000, random_seed=2)
    assert dict(ds.sizes) == {"draw": 1000, "customer_id": 40}
    checks = [("k_cv2", 1.0 / ds["t"], stats.halfnorm(scale=0.2)),
              ("k_mean", ds["t"] / ds["gamma"], stats.lognorm(s=0.5, scale=np.exp(0.5))),
              ("lam_cv2", 1.0 / ds["r"], stats.halfnorm(scale=10.0)),
              ("mu_mean", ds["s"] / ds["beta"], stats.halfnorm())]
    for name, values, law in checks:
        assert stats.kstest(values.values, law.cdf).pvalue > 1e-3, name
    T = data["T"].to_numpy()
    assert bool(((ds["recency"] >= 0) & (ds["recency"] <= T)).all())
    assert bool((ds["frequency"] == np.round(ds["frequency"])).all())
    assert bool(((ds["frequency"] == 0) == (ds["recency"] == 0)).all())
    assert bool(np.isfinite(ds["litt"]).all()) and (ds["litt"].values[ds["frequency"].values == 0] == 0).all()
