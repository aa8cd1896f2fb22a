"""Gamma-Gompertz/NBD formulas (bayesclv.formulas.ggomnbd) against independent references.

- Likelihood and every predictive quantity against numerical integration of the individual-level
  model in the original time variable (tests/reference_ggomnbd.py), over a grid of extreme
  parameters and histories (x up to 500, T up to 1000, parameters 1e-3..1e3, b up to 3).
- The Pareto/NBD limit (b -> 0 with beta = b beta_P) against the library's Pareto/NBD and the
  50-digit hypergeometric closed form.
- The summed kernel against the per-row formula, its gradient against central finite differences
  and PyTensor's derivative of the per-row graph (whose lifetime integral is an Op).
- The maximum-likelihood fit on the CDNOW sample against Bemmaor & Glady (2012, Table 2) and
  CLVTools' estimates.
- The simulators against the likelihood (a likelihood-ratio check at the true parameters) and the
  predictive expectation.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import optimize, stats

from bayesclv.formulas import NP, ggomnbd, paretonbd
from bayesclv.formulas import _ggom_integral as gi
from bayesclv.formulas._ops import discounted_increments
from bayesclv.models.engine import compress_rows

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference as ref
    from .reference_ggomnbd import ggomnbd as gref
except ImportError:  # pragma: no cover
    import reference as ref
    from reference_ggomnbd import ggomnbd as gref

EXTREME_HISTORIES = np.array([(0, 0, 0.01), (0, 0, 1000), (1, 0, 1000), (1, 1000, 1000), (3, 2, 2.5),
                              (30, 1, 78), (500, 0, 1000), (500, 999.99, 1000), (500, 10, 10),
                              (2, 30.43, 38.86)], dtype=float)
# (r, alpha, b, s, beta): every 6th of the 3^5 combinations of extreme values
EXTREME_PARAMS = list(itertools.product((1e-3, 1.0, 1e3), (1e-3, 1.0, 1e3), (1e-4, 0.1, 3.0),
                                        (1e-3, 1.0, 1e3), (1e-3, 1.0, 1e3)))[::6]
# Bemmaor & Glady (2012), Table 2, CDNOW sample (39 weeks), LL -9594.98; CLVTools' test estimates, LL -9594.9762
BG2012 = {"r": 0.553, "alpha": 10.578, "b": 0.0002, "s": 0.603, "beta": 0.0026}
CLVTOOLS = {"r": 0.55313, "alpha": 10.5758, "b": 0.0000011, "s": 0.60682, "beta": 0.000013}
PN_MLE = (0.553, 10.578, 0.606, 11.669)
PREDICTION_PARAMS = [(0.5, 10.0, 0.05, 0.6, 5.0), (0.55, 10.5, 1e-5, 0.6, 1e-4), (2.0, 1.0, 0.5, 3.0, 50.0),
                     (0.1, 100.0, 2.0, 0.01, 0.01)]
PREDICTION_HISTORIES = np.array([(0, 0, 0.5), (1, 0, 100), (3, 2, 2.5), (30, 1, 78), (2, 30.43, 38.86)])
PY_MODE = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")  # no Elemwise fusion


@pytest.fixture(scope="module")
def cdnow_rows(cdnow_rfm):
    rows, _ = compress_rows(cdnow_rfm, ["frequency", "recency", "T"])
    return {c: rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "weight")}


def _distinct_rows(x, t_x, T):
    """Distinct (x, t_x, T) rows and their counts."""
    table, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    return table[:, 0], table[:, 1], table[:, 2], counts.astype(float)


def _per_row(x, t_x, T, *params):
    """The per-element path (no sharing between histories): parameters broadcast to every row."""
    return ggomnbd.loglik(x, t_x, T, *(np.full(np.shape(x), p) for p in params), xp=NP)


@pytest.mark.parametrize("params", EXTREME_PARAMS)
def test_loglik_matches_numerical_integration_on_extreme_grid(params):
    x, t_x, T = EXTREME_HISTORIES.T
    want = gref.loglik(x, t_x, T, *params)
    for got in (ggomnbd.loglik(x, t_x, T, *params, xp=NP), _per_row(x, t_x, T, *params)):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("r, alpha, s, beta_p", list(itertools.product((1e-3, 1.0, 1e3), repeat=4))[::4])
def test_loglik_tends_to_the_pareto_nbd_as_b_vanishes(r, alpha, s, beta_p):
    """beta = b beta_P, b -> 0: the Gompertz clock e^(b tau) - 1 ~ b tau (the gap is O(b (s+1) T))."""
    x, t_x, T = EXTREME_HISTORIES.T
    b = 1e-14
    got = ggomnbd.loglik(x, t_x, T, r, alpha, b, s, b * beta_p, xp=NP)
    np.testing.assert_allclose(got, paretonbd.loglik(x, t_x, T, r, alpha, s, beta_p, xp=NP), rtol=1e-8, atol=1e-8)
    closed_form = ref.paretonbd.loglik_mpmath(x[:4], t_x[:4], T[:4], r, alpha, s, beta_p)
    np.testing.assert_allclose(got[:4], closed_form, rtol=1e-8, atol=1e-8)


def test_predictions_tend_to_the_pareto_nbd_as_b_vanishes():
    x, t_x, T = PREDICTION_HISTORIES.T
    r, alpha, s, beta_p = PN_MLE
    b = 1e-12
    gg = (r, alpha, b, s, b * beta_p)
    np.testing.assert_allclose(ggomnbd.probability_alive(x, t_x, T, *gg),
                               paretonbd.probability_alive(x, t_x, T, *PN_MLE), rtol=1e-8)
    np.testing.assert_allclose(ggomnbd.expected_purchases(39.0, x, t_x, T, *gg),
                               paretonbd.expected_purchases(39.0, x, t_x, T, *PN_MLE), rtol=1e-8)
    np.testing.assert_allclose(ggomnbd.probability_of_purchases(2, 39.0, x, t_x, T, *gg),
                               paretonbd.probability_of_purchases(2, 39.0, x, t_x, T, *PN_MLE), rtol=1e-7)


@pytest.mark.parametrize("params", PREDICTION_PARAMS)
def test_predictions_match_numerical_integration(params):
    x, t_x, T = PREDICTION_HISTORIES.T
    checks = [
        (ggomnbd.probability_alive(x, t_x, T, *params), gref.probability_alive(x, t_x, T, *params)),
        (ggomnbd.expected_purchases(52.0, x, t_x, T, *params), gref.expected_purchases(52.0, x, t_x, T, *params)),
        (ggomnbd.probability_alive_at(10.0, x, t_x, T, *params),
         gref.probability_alive_at(10.0, x, t_x, T, *params)),
        (ggomnbd.probability_of_purchases(3, 20.0, x, t_x, T, *params),
         gref.probability_of_purchases(3, 20.0, x, t_x, T, *params)),
        (ggomnbd.probability_of_purchases(0, 20.0, x, t_x, T, *params),
         gref.probability_of_purchases(0, 20.0, x, t_x, T, *params)),
        (ggomnbd.expected_purchases_new_customer(np.array([0.5, 39.0, 500.0]), *params),
         gref.expected_purchases_new_customer(np.array([0.5, 39.0, 500.0]), *params)),
        (ggomnbd.discounted_expected_residual_transactions(0.01, x, t_x, T, *params),
         gref.discounted_expected_residual_transactions(0.01, x, t_x, T, *params)),
        (ggomnbd.expected_residual_lifetime(x, t_x, T, *params),
         gref.expected_residual_lifetime(x, t_x, T, *params)),
    ]
    for got, want in checks:
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_count_distribution_sums_to_one_with_the_expected_purchases_as_mean():
    params = (0.8, 4.0, 0.2, 1.5, 3.0)
    x, t_x, T = 4.0, 20.0, 30.0
    n = np.arange(200)
    pmf = ggomnbd.probability_of_purchases(n, 26.0, x, t_x, T, *params)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert (n * pmf).sum() == pytest.approx(float(ggomnbd.expected_purchases(26.0, x, t_x, T, *params)), rel=1e-9)


def test_discounted_expected_purchases_equal_the_increments_per_horizon_at_extremes():
    """Each period's survival integral on its own (linear cost) against the cumulative integral per horizon."""
    x, t_x, T = np.array([[0.0, 3.0, 500.0, 0.0, 2.0, 1.0], [0.0, 20.0, 999.0, 0.0, 0.5, 0.0],
                          [30.0, 30.0, 1000.0, 1000.0, 0.5, 0.0]])
    ends = 4.35 * np.arange(1.0, 1201.0)
    factors = 1.01 ** -np.arange(1.0, 1201.0)
    for params in [(0.55, 10.6, 1e-4, 0.6, 1e-2), (1e-3, 1e-3, 1e-3, 1e-3, 1e-3), (1e3, 1e3, 1.0, 1e3, 1e3),
                   (1e-3, 1e3, 1e-6, 1e3, 1e-3), (50.0, 0.01, 2.0, 0.05, 40.0)]:
        want = discounted_increments(
            lambda t, p=params: ggomnbd.expected_purchases(t, x, t_x, T, *p, given_alive=True), ends, factors)
        got = ggomnbd.discounted_expected_purchases(ends, factors, x, t_x, T, *params, given_alive=True)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=0.0, err_msg=str(params))
    irregular = np.array([0.0, 2.0, 1.0, 50.0, 50.0, 400.0])  # out of order: a negative piece
    weights = np.array([1.0, 0.5, 0.8, 0.3, 2.0, 0.1])
    params = (0.5, 10.0, 0.05, 0.6, 5.0)
    want = discounted_increments(
        lambda t: ggomnbd.expected_purchases(t, x, t_x, T, *params), irregular, weights)
    np.testing.assert_allclose(ggomnbd.discounted_expected_purchases(irregular, weights, x, t_x, T, *params), want,
                               rtol=1e-10, atol=1e-300)


def test_discounted_expected_purchases_on_a_fine_grid_converge_to_dert():
    """Period-by-period present values with midpoint discounting converge to DERT as O(step^2)."""
    params = (0.8, 4.0, 0.2, 1.5, 3.0)
    history = (4.0, 20.0, 30.0)
    assert ggomnbd.probability_alive_at(300.0, *history, *params) < 1e-12  # nothing left after 300

    def present_value(step):
        ends = np.arange(step, 300.0 + step / 2, step)
        return ggomnbd.discounted_expected_purchases(ends, np.exp(-0.01 * (ends - step / 2)), *history, *params)

    coarse, fine = present_value(0.1), present_value(0.05)
    dert = float(ggomnbd.discounted_expected_residual_transactions(0.01, *history, *params))
    assert coarse - dert == pytest.approx(4.0 * (fine - dert), rel=0.01)
    assert fine + (fine - coarse) / 3.0 == pytest.approx(dert, rel=1e-9)


def test_summed_kernel_equals_per_row_total_and_its_gradient_the_derivatives(cdnow_rows):
    rows = cdnow_rows
    data = (rows["frequency"], rows["recency"], rows["T"])
    tables = ggomnbd.loglik_tables(*data, rows["weight"])
    params = [0.5, 10.0, 0.05, 0.6, 5.0]
    total, grad = gi.summed_loglik_kernel(*(np.array([p]) for p in params), *tables)
    assert total == pytest.approx(float(np.sum(rows["weight"] * _per_row(*data, *params))), rel=1e-12)
    for k in range(5):
        h = 1e-6 * params[k]
        up, down = list(params), list(params)
        up[k] += h
        down[k] -= h
        fd = (ggomnbd.summed_loglik(tables, *up, xp=NP) - ggomnbd.summed_loglik(tables, *down, xp=NP)) / (2 * h)
        assert grad[k, 0] == pytest.approx(fd, rel=1e-5, abs=1e-4)
    # PyTensor's derivative of the per-row graph (the lifetime integral Op's own partials)
    p = [pt.dscalar() for _ in range(5)]
    row_total = (rows["weight"] * ggomnbd.loglik(*data, *p)).sum()
    summed = ggomnbd.summed_loglik(tables, *p)
    f = pytensor.function(p, [row_total, *pytensor.grad(row_total, p), summed, *pytensor.grad(summed, p)],
                          mode=PY_MODE)
    out = f(*params)
    np.testing.assert_allclose(out[:6], out[6:], rtol=1e-9)


def test_ops_run_natively_in_numba():
    """The lifetime-integral Op and the 5-parameter summed Op compile to numba (nutpie, PyMC's NUTS)."""
    x, t_x, T = EXTREME_HISTORIES.T
    tables = ggomnbd.loglik_tables(x, t_x, T, np.ones(x.size))
    p = [pt.dscalar() for _ in range(5)]
    row_total = ggomnbd.loglik(x, t_x, T, *p).sum()
    summed = ggomnbd.summed_loglik(tables, *p)
    graph = [row_total, *pytensor.grad(row_total, p), summed, *pytensor.grad(summed, p)]
    params = (0.7, 3.0, 0.3, 2.0, 8.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode")
        native = pytensor.function(p, graph, mode="NUMBA")(*params)
    python = pytensor.function(p, graph, mode=PY_MODE)(*params)
    np.testing.assert_allclose(np.array(native, dtype=float), np.array(python, dtype=float), rtol=1e-12)
    np.testing.assert_allclose(native[:6], native[6:], rtol=1e-9)


def test_summed_kernel_with_groups_is_the_sum_of_each_groups_total(cdnow_rows):
    rows = cdnow_rows
    group = np.random.default_rng(1).integers(0, 3, size=rows["T"].size)
    params = [np.array(v) for v in ([0.5, 0.6, 0.7], [10.0, 8.0, 12.0], [0.05, 0.5, 1e-4], [0.6, 1.0, 0.4],
                                    [5.0, 20.0, 1e-3])]
    tables = ggomnbd.loglik_tables(rows["frequency"], rows["recency"], rows["T"], rows["weight"], group=group)
    total, grad = gi.summed_loglik_kernel(*params, *tables)
    for g in range(3):
        sub = {c: v[group == g] for c, v in rows.items()}
        one = ggomnbd.loglik_tables(sub["frequency"], sub["recency"], sub["T"], sub["weight"])
        t_g, grad_g = gi.summed_loglik_kernel(*(p[g:g + 1] for p in params), *one)
        np.testing.assert_allclose(grad[:, g], grad_g[:, 0], rtol=1e-10)
        total -= t_g
    assert total == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("params", [(1e-3, 1e3, 3.0, 1e3, 1e-3), (1e3, 1e-3, 1e-4, 1e-3, 1e3),
                                    (1.0, 1.0, 10.0, 1e3, 1e3), (5.0, 0.1, 1e-12, 0.5, 1e-11)])
def test_summed_kernel_is_finite_and_exact_at_extreme_parameters(params):
    x, t_x, T = EXTREME_HISTORIES.T
    w = np.arange(1.0, x.size + 1.0)
    tables = ggomnbd.loglik_tables(x, t_x, T, w)
    total, grad = gi.summed_loglik_kernel(*(np.array([p]) for p in params), *tables)
    assert np.isfinite(total) and np.all(np.isfinite(grad))
    assert total == pytest.approx(float(np.sum(w * gref.loglik(x, t_x, T, *params))), rel=1e-8)


def test_maximum_likelihood_on_cdnow_matches_bemmaor_glady_and_clvtools(cdnow_rows):
    """The CDNOW maximum lies on the Pareto/NBD boundary: b -> 0 with beta/b -> the Pareto/NBD beta.

    Bemmaor & Glady report b = 0.0002, beta = 0.0026 and CLVTools b = 1.1e-6, beta = 1.3e-5, with the
    same log-likelihood: only the ratio is identified there. r, alpha, s and the log-likelihood are
    compared with both (1%), the ratio with the Pareto/NBD's beta.
    """
    rows = cdnow_rows
    tables = ggomnbd.loglik_tables(rows["frequency"], rows["recency"], rows["T"], rows["weight"])

    def objective(theta):
        value, grad = gi.summed_loglik_kernel(*(np.array([p]) for p in np.exp(theta)), *tables)
        return -value, -grad[:, 0] * np.exp(theta)

    res = optimize.minimize(objective, np.log([0.5, 2.0, 0.5, 0.5, 0.5]), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
    r, alpha, b, s, beta = np.exp(res.x)
    for published in (BG2012, CLVTOOLS):
        assert r == pytest.approx(published["r"], rel=0.01)
        assert alpha == pytest.approx(published["alpha"], rel=0.01)
        assert s == pytest.approx(published["s"], rel=0.01)
    assert -res.fun == pytest.approx(-9594.98, abs=0.01)
    assert b < 1e-6 and beta / b == pytest.approx(PN_MLE[3], rel=0.01)
    # the published points are on the ridge: their log-likelihood is within rounding of the maximum
    clv = ggomnbd.summed_loglik(tables, *CLVTOOLS.values(), xp=NP)
    assert clv == pytest.approx(-9594.9762, abs=0.01)


def test_pytensor_and_numpy_paths_agree():
    x, t_x, T = EXTREME_HISTORIES.T
    params = (0.7, 3.0, 0.3, 2.0, 8.0)
    p = [pt.dscalar() for _ in range(5)]
    f = pytensor.function(p, ggomnbd.loglik(x, t_x, T, *p), mode=PY_MODE)
    np.testing.assert_allclose(f(*params), ggomnbd.loglik(x, t_x, T, *params, xp=NP), rtol=1e-12)


def test_simulated_population_has_the_likelihood_of_the_model():
    """At the true parameters, 2 (max log L - log L(true)) on simulated data is chi-square with 5 dof."""
    truth = np.array([0.8, 4.0, 0.1, 0.8, 5.0])
    T = np.random.default_rng(7).uniform(20.0, 80.0, size=20000)
    sim = ggomnbd.simulate_population(T, *truth, rng=11)
    rows = _distinct_rows(sim["frequency"], sim["recency"], sim["T"])
    tables = ggomnbd.loglik_tables(*rows)

    def objective(theta):
        value, grad = gi.summed_loglik_kernel(*(np.array([p]) for p in np.exp(theta)), *tables)
        return -value, -grad[:, 0] * np.exp(theta)

    res = optimize.minimize(objective, np.log(truth), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-8})
    statistic = 2.0 * (-res.fun + objective(np.log(truth))[0])
    assert 0.0 <= statistic < stats.chi2.ppf(0.999, 5)


def test_simulated_future_purchases_average_the_expected_purchases():
    params = (0.8, 4.0, 0.2, 1.5, 3.0)
    n = 200_000
    x, t_x, T = np.full(n, 4.0), np.full(n, 20.0), np.full(n, 30.0)
    counts = ggomnbd.simulate_future_purchases(26.0, x, t_x, T, *params, rng=3)
    want = float(ggomnbd.expected_purchases(26.0, 4.0, 20.0, 30.0, *params))
    assert abs(counts.mean() - want) < 4 * counts.std() / np.sqrt(n)
    alive = ggomnbd.simulate_population(np.full(n, 30.0), *params, rng=5)["alive"].mean()
    # P(alive at 30) for a new customer: S(30)
    assert abs(alive - (params[4] / (params[4] + np.expm1(params[2] * 30.0))) ** params[3]) < 4 * 0.5 / np.sqrt(n)


def test_simulators_take_a_dropout_shape_whose_draws_underflow():
    """At s = 1e-3 half the gamma draws of eta underflow to 0 (an infinite lifetime): no warning, and the
    counts still average the closed form."""
    params = (0.8, 4.0, 0.2, 1e-3, 3.0)
    n = 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = ggomnbd.simulate_future_purchases(26.0, np.full(n, 4.0), np.full(n, 20.0), np.full(n, 30.0),
                                                   *params, rng=3)
        sim = ggomnbd.simulate_population(np.full(n, 30.0), *params, rng=5)
    want = float(ggomnbd.expected_purchases(26.0, 4.0, 20.0, 30.0, *params))
    assert abs(counts.mean() - want) < 4 * counts.std() / np.sqrt(n)
    assert np.all(np.isfinite(sim["frequency"])) and np.all(sim["recency"] <= 30.0)
    assert abs(sim["alive"].mean() - (params[4] / (params[4] + np.expm1(params[2] * 30.0))) ** params[3]) < 0.01
