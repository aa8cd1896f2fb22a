"""The summed likelihood kernels (bayesclv.formulas._summed) against the per-customer formulas.

The per-customer formulas are themselves checked against independent references
(tests/test_formulas.py); here the kernels' totals must equal the weighted sums
of those formulas to rounding error, and their hand-derived gradients must equal
PyTensor's automatic derivative of the per-customer graph and central finite
differences: on CDNOW, with groups, at extreme parameters and histories, and on
random data (hypothesis).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

import bayesclv as bc
from bayesclv.formulas import NP, bgnbd, gammagamma, paretonbd
from bayesclv.formulas._summed import unique_rows, weighted_rows
from bayesclv.models.engine import compress_rows
from bayesclv.models.sampling import compile_nutpie_model, laplace_whitening, whitened

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference as ref
except ImportError:  # pragma: no cover
    import reference as ref

FORMULAS = {"bgnbd": bgnbd, "paretonbd": paretonbd}
MLE = {"bgnbd": (0.2426, 4.414, 0.793, 2.426), "paretonbd": (0.553, 10.578, 0.606, 11.669)}
PUBLISHED_LL = {"bgnbd": -9582.43, "paretonbd": -9594.98}  # FHL (2005); Fader & Hardie, CDNOW sample
EXTREME_PARAMS = list(itertools.product((1e-3, 1.0, 1e3), repeat=4))
EXTREME_HISTORIES = np.array([(0, 0, 0.01), (0, 0, 1000), (1, 0, 1000), (1, 1000, 1000), (3, 2, 2.5),
                              (30, 1, 78), (500, 0, 1000), (500, 999.99, 1000), (500, 10, 10)], dtype=float)


@pytest.fixture(scope="module")
def cdnow_rows(cdnow_rfm):
    rows, _ = compress_rows(cdnow_rfm, ["frequency", "recency", "T"])
    return {c: rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "weight")}


def _row_total(formulas, rows, params, group=None):
    """Weighted sum of the per-customer log-likelihood; ``params`` are per group when ``group`` is given."""
    p = [np.asarray(v, dtype=float)[group] if group is not None else v for v in params]
    ll = formulas.loglik(rows["frequency"], rows["recency"], rows["T"], *p, xp=NP)
    return float(np.sum(rows["weight"] * ll))


def _compiled(formulas, rows, n_groups=None, group=None):
    """(params) -> [summed total, its gradient..., row-wise total, its autodiff gradient...]."""
    shape = () if n_groups is None else (n_groups,)
    params = [pt.tensor(dtype="float64", shape=shape) for _ in range(4)]
    tables = formulas.loglik_tables(rows["frequency"], rows["recency"], rows["T"], rows["weight"], group=group)
    total = formulas.summed_loglik(tables, *params)
    per_row = [p[group] for p in params] if group is not None else params
    row_total = (rows["weight"] * formulas.loglik(rows["frequency"], rows["recency"], rows["T"], *per_row)).sum()
    return pytensor.function(params, [total, *pytensor.grad(total, params),
                                      row_total, *pytensor.grad(row_total, params)])


@pytest.mark.parametrize("name", list(FORMULAS))
def test_summed_loglik_reproduces_the_published_cdnow_maximum(cdnow_rows, name):
    formulas = FORMULAS[name]
    rows = cdnow_rows
    tables = formulas.loglik_tables(rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    total = formulas.summed_loglik(tables, *MLE[name], xp=NP)
    assert total == pytest.approx(PUBLISHED_LL[name], abs=0.05)
    assert total == pytest.approx(_row_total(formulas, rows, MLE[name]), rel=1e-13)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_summed_gradient_equals_autodiff_and_finite_differences(cdnow_rows, name):
    formulas = FORMULAS[name]
    f = _compiled(formulas, cdnow_rows)
    for params in (MLE[name], (0.8, 2.0, 1.7, 0.9), (0.3, 30.0, 0.2, 40.0)):  # both orders of alpha, beta
        out = [float(v) for v in f(*params)]
        assert out[0] == pytest.approx(out[5], rel=1e-12)
        np.testing.assert_allclose(out[1:5], out[6:10], rtol=1e-8, atol=1e-8)
        for k in range(4):
            h = 1e-6 * params[k]
            up, down = list(params), list(params)
            up[k] += h
            down[k] -= h
            fd = (_row_total(formulas, cdnow_rows, up) - _row_total(formulas, cdnow_rows, down)) / (2 * h)
            assert out[1 + k] == pytest.approx(fd, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_summed_loglik_with_groups_is_the_sum_of_each_groups_total(cdnow_rows, name):
    formulas = FORMULAS[name]
    rng = np.random.default_rng(5)
    group = rng.integers(0, 3, size=cdnow_rows["T"].size)
    params = [np.asarray(MLE[name]) [k] * np.array([1.0, 1.3, 0.7]) for k in range(4)]
    f = _compiled(formulas, cdnow_rows, n_groups=3, group=group)
    out = f(*params)
    assert float(out[0]) == pytest.approx(_row_total(formulas, cdnow_rows, params, group), rel=1e-12)
    for k in range(4):  # gradient (one entry per group) = autodiff of the per-customer graph
        np.testing.assert_allclose(out[1 + k], out[6 + k], rtol=1e-8, atol=1e-8)
    # each group's total alone
    for g in range(3):
        sub = {c: v[group == g] for c, v in cdnow_rows.items()}
        one = formulas.loglik_tables(sub["frequency"], sub["recency"], sub["T"], sub["weight"])
        alone = formulas.summed_loglik(one, *(p[g] for p in params), xp=NP)
        assert alone == pytest.approx(_row_total(formulas, sub, [p[g] for p in params]), rel=1e-12)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_summed_loglik_is_finite_and_exact_at_extremes(name):
    formulas = FORMULAS[name]
    rows = {"frequency": EXTREME_HISTORIES[:, 0], "recency": EXTREME_HISTORIES[:, 1],
            "T": EXTREME_HISTORIES[:, 2], "weight": np.arange(1.0, len(EXTREME_HISTORIES) + 1)}
    f = _compiled(formulas, rows)
    for params in EXTREME_PARAMS:
        out = [float(v) for v in f(*params)]
        assert np.isfinite(out).all(), (params, out)
        assert out[0] == pytest.approx(out[5], rel=1e-10), params
        np.testing.assert_allclose(out[1:5], out[6:10], rtol=1e-6, atol=1e-6, err_msg=str(params))


def test_paretonbd_summed_loglik_matches_the_mpmath_closed_form_at_extremes():
    """Every row alone (its integral between its own limits) against the 50-digit hypergeometric form;
    the per-row formula meets 1e-6 here (tests/test_formulas.py), the summed kernel 1e-9."""
    worst = 0.0
    for params in EXTREME_PARAMS:
        for x, t_x, T in EXTREME_HISTORIES:
            one = paretonbd.loglik_tables([x], [t_x], [T], [1.0])
            got = paretonbd.summed_loglik(one, *params, xp=NP)
            want = float(ref.paretonbd.loglik_mpmath(x, t_x, T, *params)[()])
            assert np.isfinite(got)
            worst = max(worst, abs(got - want) / max(1.0, abs(want)))
    assert worst < 1e-9


def test_paretonbd_summed_loglik_is_exact_where_the_integrand_is_steep():
    """Shapes far beyond the data's, where a sampler's early steps can land (a grouped fit's stray
    group): the lifetime integrand falls by up to 1e10 e-folds per unit, and a slope-driven piece
    count would not finish (8 rows at s = 1e7, beta = 10 took 15 s; such a point stalled a grouped CDNOW fit). The windowed kernel
    must agree with the per-row formula, value and gradient (to 1e-8: at s = 1e10 the kernel's
    separately summed ``s log(beta)`` and ``-s log(beta + T)`` each round to about s x 1e-16)."""
    rows = {"frequency": EXTREME_HISTORIES[:, 0], "recency": EXTREME_HISTORIES[:, 1],
            "T": EXTREME_HISTORIES[:, 2], "weight": np.ones(len(EXTREME_HISTORIES))}
    f = _compiled(paretonbd, rows)
    for params in ((0.55, 10.6, 1e8, 1e7), (0.55, 10.6, 1e10, 1e8), (1e3, 1e-3, 1e6, 1e4),
                   (0.9, 1e-6, 1e9, 1e8), (1e6, 1e5, 0.6, 11.7), (0.55, 10.6, 1e8, 10.0), (1e8, 1.0, 0.6, 11.7)):
        out = [float(v) for v in f(*params)]
        assert np.isfinite(out).all(), (params, out)
        assert out[0] == pytest.approx(out[5], rel=1e-8), params
        np.testing.assert_allclose(out[1:5], out[6:10], rtol=1e-5, atol=1e-6, err_msg=str(params))


def test_paretonbd_rows_that_would_cancel_are_integrated_on_their_own():
    # (500, 999.99, 1000) shares x = 500 with a history observed to T = 1e6: as a difference of two
    # shared integrals its J would lose about 8 digits, so it is integrated on its own window
    x = np.array([500.0, 500.0, 500.0, 0.0, 0.0])
    t_x = np.array([999.99, 0.0, 1e5, 0.0, 0.0])
    T = np.array([1000.0, 1e6, 1e6, 1000.0, 1e6])
    tables = paretonbd.loglik_tables(x, t_x, T, np.ones(5))
    assert tables[12].tolist() == [True, False, False, False, False]  # the rows marked direct
    for params in ((0.5, 10.0, 0.5, 10.0), (1e-3, 1e3, 1.0, 1e-3), (1e3, 1e-3, 1e-3, 1e3)):
        together = paretonbd.summed_loglik(tables, *params, xp=NP)
        alone = sum(paretonbd.summed_loglik(paretonbd.loglik_tables(x[i:i + 1], t_x[i:i + 1], T[i:i + 1], [1.0]),
                                            *params, xp=NP) for i in range(5))
        assert together == pytest.approx(alone, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(list(FORMULAS)))
def test_summed_loglik_equals_row_sum_on_random_histories(data, name):
    n = data.draw(st.integers(1, 40))
    x = np.array(data.draw(st.lists(st.integers(0, 200), min_size=n, max_size=n)), dtype=float)
    T = np.array(data.draw(st.lists(st.floats(0.05, 500.0), min_size=n, max_size=n)))
    frac = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    t_x = np.where(x > 0, frac * T, 0.0)
    w = np.array(data.draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)), dtype=float)
    params = data.draw(st.tuples(*[st.floats(0.01, 100.0)] * 4))
    formulas = FORMULAS[name]
    rows = {"frequency": x, "recency": t_x, "T": T, "weight": w}
    tables = formulas.loglik_tables(x, t_x, T, w)
    total = formulas.summed_loglik(tables, *params, xp=NP)
    # BG/NBD: both closed forms; Pareto/NBD: the per-row formula's windowed 24-node rule is good to
    # ~1e-7 per row where the integrand bends inside a wide window (the summed kernel to ~1e-13)
    tol = {"bgnbd": 1e-9, "paretonbd": 1e-6 * w.sum()}[name]
    assert total == pytest.approx(_row_total(formulas, rows, params), rel=1e-11, abs=tol)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_summed_op_runs_natively_in_numba(cdnow_rows, name):
    formulas = FORMULAS[name]
    tables = formulas.loglik_tables(cdnow_rows["frequency"], cdnow_rows["recency"], cdnow_rows["T"],
                                    cdnow_rows["weight"])
    params = [pt.dscalar() for _ in range(4)]
    total = formulas.summed_loglik(tables, *params)
    graph = [total, *pytensor.grad(total, params)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode")
        native = pytensor.function(params, graph, mode="NUMBA")(*MLE[name])
    python = pytensor.function(params, graph, mode=pytensor.compile.mode.Mode(linker="py"))(*MLE[name])
    # the gradient is near 0 at the MLE: compare on the scale of its terms (thousands)
    np.testing.assert_allclose(np.array(native, dtype=float), np.array(python, dtype=float), rtol=1e-13, atol=1e-9)


def test_nutpie_log_density_rejects_points_where_it_overflows(cdnow_rfm):
    model = bc.BetaGeoModel().build_model(cdnow_rfm)
    compiled = compile_nutpie_model(model, ["r", "alpha", "a", "b"])
    logp = compiled.make_logp()
    value, grad = logp(np.array([-1.0, 1.5, -0.2, 0.9]))  # log r, log alpha, log a, log b near the MLE
    assert np.isfinite(value) and np.isfinite(grad).all() and grad.shape == (4,)
    # exp(-800) underflows to 0: the density is not finite there, and nutpie must see -inf (a
    # rejected, divergent proposal), not an exception that ends the chain
    value, grad = logp(np.array([-800.0, 1.5, -0.2, 0.9]))
    assert value == -np.inf and (grad == 0).all()
    expand = compiled.make_expand(0, 0, 0)
    drawn = expand(np.array([-1.0, 1.5, -0.2, 0.9]))
    assert drawn["r"] == pytest.approx(np.exp(-1.0)) and drawn["b"] == pytest.approx(np.exp(0.9))



def test_whitened_density_is_the_density_at_the_mapped_point_and_centres_on_the_mode(cdnow_rfm):
    """The whitened nutpie model (the covariate fits' default): at ``z`` its log density is the model's at
    ``x = mode + L z`` (a linear map: same posterior), its gradient ``L' grad``, its draws recorded in ``x``;
    ``L L'`` is the inverse negative Hessian at the mode, so the whitened Hessian at 0 is -I."""
    model = bc.BetaGeoModel().build_model(cdnow_rfm)
    compiled = compile_nutpie_model(model, ["r", "alpha", "a", "b"])
    logp = compiled.make_logp()
    mode, spread = laplace_whitening(logp, np.array([0.0, 0.0, 0.0, 0.0]))
    # the mode of the sampled density (log coordinates, Jacobian included): r and alpha near FHL's MLE 0.243, 4.41
    # (a, b move with the Jacobian's log a + log b)
    np.testing.assert_allclose(np.exp(mode[:2]), [0.243, 4.41], rtol=0.03)
    white = whitened(compiled, mode, spread, jitter=0.5)
    wlogp = white.make_logp()
    z = np.array([0.3, -1.2, 0.5, 2.0])
    value, grad = wlogp(z)
    expected, expected_grad = logp(mode + spread @ z)
    assert value == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(grad, spread.T @ expected_grad, rtol=1e-12)
    # whitened, the mode is within 1% of a posterior sd of the found one (L-BFGS's tolerance)
    assert np.abs(wlogp(np.zeros(4))[1]).max() < 0.01
    hessian = np.array([(wlogp(h * e)[1] - wlogp(-h * e)[1]) / (2 * h) for h, e in zip([1e-4] * 4, np.eye(4))])
    np.testing.assert_allclose(hessian, -np.eye(4), atol=1e-3)
    drawn = white.make_expand(0, 0, 0)(z)
    assert drawn["r"] == pytest.approx(np.exp((mode + spread @ z)[0]))
    starts = np.array([white.make_initial_point(seed) for seed in range(200)])
    assert np.std(starts) == pytest.approx(0.5, rel=0.1) and abs(np.mean(starts)) < 0.1

# ------------------------------------------------------------------------------------ Gamma-Gamma
GG_MLE = (6.25, 3.74, 15.44)  # FHL (2005) "RFM and CLV", 946 repeat buyers of the CDNOW sample


@pytest.fixture(scope="module")
def spend_rows(cdnow_rfm):
    buyers = cdnow_rfm[cdnow_rfm["frequency"] > 0]
    rows, _ = compress_rows(buyers, ["frequency", "monetary_value"])
    return {c: rows[c].to_numpy(dtype=float) for c in ("frequency", "monetary_value", "weight")}


def _spend_row_total(rows, params, group=None):
    p = [np.asarray(v, dtype=float)[group] if group is not None else v for v in params]
    return float(np.sum(rows["weight"] * gammagamma.loglik(rows["frequency"], rows["monetary_value"], *p, xp=NP)))


def test_gammagamma_summed_loglik_recovers_the_published_estimates(spend_rows):
    tables = gammagamma.loglik_tables(spend_rows["frequency"], spend_rows["monetary_value"], spend_rows["weight"])
    total = gammagamma.summed_loglik(tables, *GG_MLE, xp=NP)
    assert total == pytest.approx(_spend_row_total(spend_rows, GG_MLE), rel=1e-13)
    params = [pt.dscalar() for _ in range(3)]
    graph = gammagamma.summed_loglik(tables, *params)
    f = pytensor.function(params, [graph, *pytensor.grad(graph, params)])

    def negative(theta):
        out = f(*np.exp(theta))
        return -float(out[0]), -np.array([float(g) for g in out[1:]]) * np.exp(theta)

    res = optimize.minimize(negative, np.log(GG_MLE) + 0.2, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000})
    np.testing.assert_allclose(np.exp(res.x), GG_MLE, rtol=2e-3)


def test_gammagamma_summed_gradient_with_groups_and_extremes(spend_rows):
    rng = np.random.default_rng(8)
    group = rng.integers(0, 2, size=spend_rows["weight"].size)
    extreme = {"frequency": np.array([1.0, 1.0, 2.0, 30.0, 500.0, 500.0]),
               "monetary_value": np.array([1e-3, 1e3, 35.5, 50.0, 1e-2, 1e3]), "weight": np.arange(1.0, 7.0)}
    cases = [(spend_rows, 2, group, [np.array([6.25, 5.0]), np.array([3.74, 4.5]), np.array([15.44, 9.0])])]
    cases += [(extreme, None, None, list(v)) for v in itertools.product((1e-3, 1.0, 1e3), repeat=3)]
    for rows, n_groups, g, values in cases:
        shape = () if n_groups is None else (n_groups,)
        params = [pt.tensor(dtype="float64", shape=shape) for _ in range(3)]
        tables = gammagamma.loglik_tables(rows["frequency"], rows["monetary_value"], rows["weight"], group=g)
        total = gammagamma.summed_loglik(tables, *params)
        per_row = [q[g] for q in params] if g is not None else params
        row_total = (rows["weight"] * gammagamma.loglik(rows["frequency"], rows["monetary_value"], *per_row)).sum()
        out = pytensor.function(params, [total, *pytensor.grad(total, params),
                                         row_total, *pytensor.grad(row_total, params)])(*values)
        assert np.isfinite(float(out[0])), values
        assert float(out[0]) == pytest.approx(float(out[4]), rel=1e-11), values
        for k in range(3):
            np.testing.assert_allclose(out[1 + k], out[5 + k], rtol=1e-8, atol=1e-8, err_msg=str(values))


def test_nutpie_initial_points_can_be_drawn_from_several_threads(cdnow_rfm):
    # nutpie initialises its chains on several threads; PyMC's initial-point function is not
    # thread-safe (8 threads x 2,000 calls raised 69 errors without the lock), which made a grouped
    # fit fail at random with "Failed to generate a new initial position"
    from concurrent.futures import ThreadPoolExecutor

    compiled = compile_nutpie_model(bc.BetaGeoModel().build_model(cdnow_rfm), ["r", "alpha", "a", "b"])
    with ThreadPoolExecutor(8) as pool:
        points = list(pool.map(compiled.make_initial_point, range(2000)))
    assert all(p.shape == (4,) and np.isfinite(p).all() for p in points)
    assert len({tuple(p) for p in points}) == 2000  # jittered: a different start for every seed


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.0, 0.5, 1.0, 2.25, 7.0, 39.0]),
                          st.sampled_from([0.0, 1.0, 3.0])), min_size=1, max_size=60))
def test_unique_rows_matches_numpy_unique_rows(rows):
    first = np.array([r[0] for r in rows], dtype=np.int64)
    second, third = (np.array([r[k] for r in rows]) for k in (1, 2))
    for columns in ((first, second), (first, second, third)):
        *got, inverse = unique_rows(*columns)
        expected, expected_inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        for k, column in enumerate(got):
            np.testing.assert_array_equal(column, expected[:, k])
        np.testing.assert_array_equal(inverse, expected_inverse.ravel())
    # the summed kernels' tables: each distinct row's total weight and each group's
    weight = np.arange(1.0, first.size + 1.0)
    g, s, t, row_weight, group_weight = weighted_rows(weight, first, second, third)
    for k in range(g.size):
        rows_k = (first == g[k]) & (second == s[k]) & (third == t[k])
        assert row_weight[k] == weight[rows_k].sum()
    np.testing.assert_array_equal(group_weight, [weight[first == k].sum() for k in range(first.max() + 1)])
