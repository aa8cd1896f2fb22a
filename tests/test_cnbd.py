"""(M)BG/CNBD-k and MBG/NBD formulas (bayesclv.formulas.cnbd, .mbgnbd).

Checked against: published CDNOW estimates (MBG/NBD; the BG/NBD, which every k-selection on
CDNOW picks), the independent numerical integration over the latent purchase rate of
tests/reference_cnbd.py, the BG/NBD closed forms at k = 1, a 50-digit evaluation of the MBG/NBD
closed form, and simulation of the individual-level process.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import mpmath
import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest

import bayesclv as bc
from bayesclv.formulas import NP, bgnbd, cnbd, mbgnbd
from bayesclv.formulas._cnbd_quadrature import given_alive_quadrature
from bayesclv.formulas._cnbd_sums import _given_alive_flat, phase_weights
from bayesclv.formulas._mle import maximum_likelihood

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference_cnbd as ref
except ImportError:  # pragma: no cover
    import reference_cnbd as ref

# MBG/NBD on the CDNOW sample (39-week calibration), weeks: lifetimes' ModifiedBetaGeoFitter test
# ("close to BTYDplus"), also PyMC-Marketing's reference values for its ModifiedBetaGeoModel
MBG_PUBLISHED = (0.525, 6.183, 0.891, 1.614)
BG_PUBLISHED = (0.2426, 4.414, 0.793, 2.426)  # Fader, Hardie & Lee (2005), LL -9582.43
BG_LL_PUBLISHED = -9582.43
VARIANTS = {False: ref.bgcnbd, True: ref.mbgcnbd}
EXTREME_PARAMS = list(itertools.product((1e-3, 1.0, 1e3), repeat=4))
# (x, t_x, T): t_x > 0 where x > 0 (a k > 1 likelihood needs positive inter-purchase times)
EXTREME_HISTORIES = np.array([(0, 0, 0.01), (0, 0, 1000), (1, 0.5, 1000), (1, 1000, 1000), (3, 2, 2.5),
                              (30, 1, 78), (500, 999.99, 1000), (500, 10, 10)], dtype=float)
HISTORIES = np.array([(0, 0, 39.0), (1, 20.0, 39.0), (2, 30.43, 38.86), (5, 10.0, 39.0), (12, 35.0, 39.0)])


def _litt(x, t_x):
    """A consistent sum of log inter-purchase times: below x log(t_x / x) (Jensen), 0 without purchases."""
    x, t_x = np.asarray(x, dtype=float), np.asarray(t_x, dtype=float)
    return np.where(x > 0, x * np.log(np.maximum(t_x, 1e-3) / np.maximum(x, 1.0)) - 0.1 * x, 0.0)


def _close(got, want, *, rtol, atol, what):
    got, want = np.broadcast_arrays(np.asarray(got, dtype=float), np.asarray(want, dtype=float))
    bad = ~(np.isfinite(got) & (np.abs(got - want) <= atol + rtol * np.abs(want)))
    assert not bad.any(), f"{what}: {bad.sum()} of {bad.size} differ, e.g. got {got[bad][:4]}, want {want[bad][:4]}"


@pytest.fixture(scope="module")
def cdnow():
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30", litt=True)
    return {c: rfm[c].to_numpy(dtype=float) for c in ("litt", "frequency", "recency", "T")}


# ------------------------------------------------------------------------------------ data
def test_litt_from_a_transaction_log():
    days = ["2020-01-01", "2020-01-01", "2020-01-08", "2020-01-22", "2020-02-19", "2020-01-05", "2020-01-06"]
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "a", "b", "c"], "date": days})
    rfm = bc.rfm_summary(tx, calibration_end="2020-01-31", litt=True, time_unit="W")
    # a: purchase days 1, 8, 22 in calibration (same-day purchases merged; 19 Feb is holdout): 1 and 2 weeks
    assert rfm["litt"].tolist() == pytest.approx([math.log(1.0) + math.log(2.0), 0.0, 0.0], abs=1e-15)
    days_unit = bc.rfm_summary(tx, litt=True, time_unit="D")
    assert days_unit["litt"].iloc[0] == pytest.approx(math.log(7.0) + math.log(14.0) + math.log(28.0))
    assert bc.rfm_summary(tx, calibration_end="2020-01-31")["litt"].tolist() == rfm["litt"].tolist()  # default
    assert "litt" not in bc.rfm_summary(tx, litt=False).columns


def test_litt_of_cdnow_matches_an_independent_count(cdnow):
    frame = bc.datasets.load_cdnow("sample")
    end = dt.date(1997, 9, 30)
    days: dict = {}
    for cust, day in zip(frame["customer_id"], frame["date"], strict=True):
        days.setdefault(cust, set()).add(day.date())
    want = []
    for cust in sorted(days):
        cal = sorted(d for d in days[cust] if d <= end)
        want.append(sum(math.log((b - a).days / 7.0) for a, b in zip(cal[:-1], cal[1:], strict=True)))
    np.testing.assert_allclose(cdnow["litt"], want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ published values
def test_mbgnbd_maximum_likelihood_matches_the_published_cdnow_estimates(cdnow):
    tables = mbgnbd.loglik_tables(cdnow["frequency"], cdnow["recency"], cdnow["T"], np.ones(cdnow["T"].size))
    params, value = maximum_likelihood(cnbd._summed_loglik_kernel, tables, (1.0, 3.0, 1.0, 3.0))
    np.testing.assert_allclose(params, MBG_PUBLISHED, rtol=1e-3)  # published to 3 decimals
    rows = mbgnbd.loglik(cdnow["frequency"], cdnow["recency"], cdnow["T"], *params, xp=NP)
    assert value == pytest.approx(rows.sum(), rel=1e-12)
    assert value > BG_LL_PUBLISHED  # the MBG/NBD fits CDNOW slightly better (-9582.14)


def test_mbgnbd_loglik_matches_pymc_marketing_reference_values():
    # PyMC-Marketing's test of its ModifiedBetaGeoModel (a=0.8, b=2.5, r=0.25, alpha=4, T=40)
    got = mbgnbd.loglik(np.array([0.0, 200.0]), np.array([0.0, 38.0]), 40.0, 0.25, 4.0, 0.8, 2.5, xp=NP)
    np.testing.assert_allclose(got, [-0.41792826, 100.7869], atol=5e-5)


@pytest.mark.parametrize("modified", [False, True])
def test_select_k_on_cdnow_picks_k_1_and_the_published_estimates(cdnow, modified):
    """BTYDplus' CDNOW demo reports k = 1 for both variants; at k = 1 they are the BG/NBD and MBG/NBD."""
    table = cnbd.select_k(cdnow["litt"], cdnow["frequency"], cdnow["recency"], cdnow["T"], k_max=4,
                          modified=modified)
    assert table["k"].tolist() == [1, 2, 3, 4]
    assert int(table["k"][np.argmax(table["loglik"])]) == 1
    assert np.all(np.diff(table["loglik"]) < -200)  # far apart: Poisson timing fits CDNOW better
    first = [table[name][0] for name in cnbd.PARAMETERS]
    np.testing.assert_allclose(first, MBG_PUBLISHED if modified else BG_PUBLISHED, rtol=2e-3)
    if not modified:
        assert table["loglik"][0] == pytest.approx(BG_LL_PUBLISHED, abs=5e-3)


# ----------------------------------------------------------------------- k = 1 identities
@pytest.mark.parametrize("modified", [False, True])
def test_k1_loglik_is_the_bgnbd_and_mbgnbd_closed_form(modified):
    P = np.repeat(np.array(EXTREME_PARAMS), len(EXTREME_HISTORIES), axis=0)
    H = np.tile(EXTREME_HISTORIES, (len(EXTREME_PARAMS), 1))
    H = np.vstack([H, [[500.0, 0.0, 1000.0]] * len(EXTREME_PARAMS)])  # zero inter-purchase times: fine at k = 1
    P = np.vstack([P, EXTREME_PARAMS])
    got = cnbd.loglik(0.0, *H.T, *P.T, k=1, modified=modified, xp=NP)
    if modified:
        want = np.array([_mbgnbd_mpmath(*h, *p) for h, p in zip(H, P, strict=True)])
        assert np.array_equal(mbgnbd.loglik(*H.T, *P.T, xp=NP), got)
    else:
        want = bgnbd.loglik(*H.T, *P.T, xp=NP)
    _close(got, want, rtol=1e-8, atol=1e-8, what="k = 1 log-likelihood")


def _mbgnbd_mpmath(x, t_x, T, r, alpha, a, b):
    """Batislam et al. (2007) MBG/NBD likelihood, term by term at 50 digits."""
    with mpmath.workdps(50):
        x, t_x, T, r, alpha, a, b = (mpmath.mpf(float(v)) for v in (x, t_x, T, r, alpha, a, b))
        lead = mpmath.gamma(r + x) * alpha ** r / mpmath.gamma(r)
        alive = mpmath.beta(a, b + x + 1) / mpmath.beta(a, b) * (alpha + T) ** -(r + x)
        dropped = mpmath.beta(a + 1, b + x) / mpmath.beta(a, b) * (alpha + t_x) ** -(r + x)
        return float(mpmath.log(lead * (alive + dropped)))


@pytest.mark.parametrize("modified", [False, True])
def test_k1_phase_sums_and_quadrature_are_the_bgnbd_closed_forms(modified):
    """At k = 1 the summation over the phase count and the quadrature over p (both written for any k)
    must give the BG/NBD's closed forms with b + m: over the extreme grid, horizons up to
    t / (alpha + T) = 1e6 (the quadrature) and histories with x up to 500."""
    m = 1.0 if modified else 0.0
    P = np.repeat(np.array(EXTREME_PARAMS), len(EXTREME_HISTORIES), axis=0)
    H = np.tile(EXTREME_HISTORIES, (len(EXTREME_PARAMS), 1))
    r, alpha, a, b = P.T
    x, t_x, T = H.T
    for t in (1.0, 1000.0):
        want_e = bgnbd.expected_purchases(t, x, t_x, T, r, alpha, a, b + m, given_alive=True)
        want_s = bgnbd.probability_alive_at(t, x, t_x, T, r, alpha, a, b + m, given_alive=True)
        args = [np.ascontiguousarray(v) for v in (r + x, 0.0 * x, t / (alpha + T), a, b + x + m)]
        if t == 1.0:  # the summation (cheap here)
            e, s = np.empty(x.size), np.empty(x.size)
            _given_alive_flat(*args, 1, np.zeros(x.size, dtype=bool), e, s)
        else:
            e, s = given_alive_quadrature(args[0], np.ones((x.size, 1)), args[2], args[3], args[4], 1)
        _close(e, want_e, rtol=1e-8, atol=1e-300, what=f"expected purchases, t={t}")
        _close(s, want_s, rtol=1e-8, atol=1e-15, what=f"survival, t={t}")
    hist = HISTORIES
    for fn in ("probability_alive", "probability_of_purchases"):
        extra = (np.array([[0.0], [1.0], [4.0]]), 10.0) if fn == "probability_of_purchases" else ()
        got = getattr(cnbd, fn)(*extra, *hist.T, *BG_PUBLISHED, k=1)
        _close(got, getattr(bgnbd, fn)(*extra, *hist.T, *BG_PUBLISHED), rtol=1e-12, atol=1e-15, what=fn)


# ------------------------------------------------------------ likelihood against reference
@pytest.mark.parametrize(("modified", "rows"), [(False, [0, 6]), (True, [2, 7])])
def test_loglik_matches_numerical_integration_on_the_extreme_grid(modified, rows):
    """k = 3: all 81 extreme parameter points x histories up to x = 500, T = 1000 (validation/
    cnbd_reference_grid.py runs k = 2 and 5, both variants, on every history)."""
    H = EXTREME_HISTORIES[rows]
    litt = _litt(H[:, 0], H[:, 1])
    got, want = [], []
    for params in EXTREME_PARAMS:
        got.append(cnbd.loglik(litt, *H.T, *params, k=3, modified=modified, xp=NP))
        want.append(VARIANTS[modified].loglik(litt, *H.T, *params, 3))
    got, want = np.concatenate(got), np.concatenate(want)
    _close(got, want, rtol=1e-8, atol=1e-8, what="log-likelihood vs numerical integration")


def test_loglik_matches_numerical_integration_at_random_points():
    rng = np.random.default_rng(20250601)
    for _ in range(40):
        k, modified = int(rng.integers(2, 9)), bool(rng.integers(0, 2))
        params = np.exp(rng.uniform(np.log(1e-2), np.log(1e2), size=4))
        x = float(rng.integers(0, 60))
        T = float(np.exp(rng.uniform(np.log(0.5), np.log(500.0))))
        t_x = float(rng.uniform(0.01, 1.0) * T) if x > 0 else 0.0
        litt = float(_litt(x, t_x))
        got = float(cnbd.loglik(litt, x, t_x, T, *params, k=k, modified=modified, xp=NP))
        want = float(VARIANTS[modified].loglik(litt, x, t_x, T, *params, k))
        assert got == pytest.approx(want, rel=1e-8, abs=1e-8), (k, modified, params, x, t_x, T)


# ------------------------------------------------------ predictive quantities vs reference
PRED_PARAMS = {False: [(0.22, 0.83, 1.03, 2.09), (2.0, 0.5, 0.3, 5.0)],  # CDNOW-like at k = 3; regular buyers
               True: [(0.53, 1.26, 1.29, 1.85), (5.0, 20.0, 3.0, 0.7)]}


@pytest.mark.parametrize("modified", [False, True])
def test_predictive_quantities_match_numerical_integration(modified):
    refmod = VARIANTS[modified]
    for params, k, t in zip(PRED_PARAMS[modified], (2, 4), (39.0, 5.0), strict=True):
        x, t_x, T = HISTORIES[1:].T
        kw = {"k": k, "modified": modified}
        what = f"k={k}, t={t}, params={params}"
        _close(cnbd.probability_alive(x, t_x, T, *params, **kw), refmod.probability_alive(x, t_x, T, *params, k),
               rtol=1e-8, atol=1e-14, what=f"P(alive), {what}")
        _close(cnbd.expected_purchases(t, x, t_x, T, *params, **kw),
               refmod.expected_purchases(t, x, t_x, T, *params, k), rtol=1e-8, atol=1e-14,
               what=f"expected purchases, {what}")
        _close(cnbd.probability_alive_at(t, x, t_x, T, *params, **kw),
               refmod.probability_alive_at(t, x, t_x, T, *params, k), rtol=1e-8, atol=1e-14,
               what=f"P(alive at T+t), {what}")
        n = np.array([[0.0], [2.0]])
        _close(cnbd.probability_of_purchases(n, t, x, t_x, T, *params, **kw),
               refmod.probability_of_purchases(n, t, x, t_x, T, *params, k), rtol=1e-8, atol=1e-14,
               what=f"P(X = n), {what}")
        _close(cnbd.expected_purchases_new_customer(t, *params, **kw),
               refmod.expected_purchases_new_customer(t, *params, k), rtol=1e-8, atol=1e-14,
               what=f"new customer, {what}")


def test_predictive_quantities_at_extreme_parameters_match_numerical_integration():
    cases = [((1e-3, 1.0, 1e3, 1.0), (3.0, 2.0, 2.5)), ((1e3, 1e3, 1e-3, 1e3), (30.0, 1.0, 78.0)),
             ((1.0, 1e3, 1.0, 1e-3), (500.0, 999.99, 1000.0)), ((1e-3, 1e-3, 1e-3, 1e-3), (1.0, 500.0, 1000.0)),
             ((1e3, 1.0, 1.0, 1e3), (0.0, 0.0, 1000.0))]
    for (params, (x, t_x, T)), modified in itertools.product(cases, (False, True)):
        refmod, kw = VARIANTS[modified], {"k": 3, "modified": modified}
        for fn in ("expected_purchases", "probability_alive_at"):
            got = float(getattr(cnbd, fn)(5.0, x, t_x, T, *params, **kw))
            want = float(getattr(refmod, fn)(5.0, x, t_x, T, *params, 3))
            assert got == pytest.approx(want, rel=1e-8, abs=1e-14), (fn, params, x, t_x, T, modified)


@pytest.mark.parametrize("modified", [False, True])
def test_quadrature_over_p_matches_the_summation(modified):
    """The two algorithms for k >= 2 (summation over the phase count; quadrature over p with lambda in
    closed form) on random elements where both are cheap, tail regions and a, b from 1e-3 to 1e3 included."""
    rng = np.random.default_rng(7 + modified)
    n = 300
    k = rng.integers(2, 8, size=n)
    rho = np.exp(rng.uniform(np.log(1e-3), np.log(2e3), size=n))
    z = rng.uniform(0.0, 1.0, size=n) * (rng.random(n) < 0.7)
    kappa = np.exp(rng.uniform(np.log(0.05), np.log(200.0), size=n))
    a, B = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=(2, n)))
    B = B + modified
    for kk in np.unique(k):
        sel = k == kk
        args = [np.ascontiguousarray(v[sel]) for v in (rho, z, kappa, a, B)]
        e, s = np.empty(sel.sum()), np.empty(sel.sum())
        _given_alive_flat(*args, int(kk), np.zeros(sel.sum(), dtype=bool), e, s)
        eq, sq = given_alive_quadrature(args[0], phase_weights(args[0], args[1], int(kk)), *args[2:], int(kk))
        _close(eq, e, rtol=1e-8, atol=1e-15, what=f"expected purchases, k={kk}")
        _close(sq, s, rtol=1e-8, atol=1e-15, what=f"survival, k={kk}")


@pytest.mark.parametrize("k", [2, 5])
def test_predictions_are_finite_and_ordered_at_extremes(k):
    P = np.repeat(np.array(EXTREME_PARAMS), len(EXTREME_HISTORIES), axis=0)
    H = np.tile(EXTREME_HISTORIES, (len(EXTREME_PARAMS), 1))
    for t, modified in itertools.product((1.0, 1000.0), (False, True)):
        kw = {"k": k, "modified": modified}
        alive = cnbd.probability_alive(*H.T, *P.T, **kw)
        later = cnbd.probability_alive_at(t, *H.T, *P.T, **kw)
        expected = cnbd.expected_purchases(t, *H.T, *P.T, **kw)
        pmf = cnbd.probability_of_purchases(np.array([[0.0], [1.0], [7.0]]), t, *H.T, *P.T, **kw)
        new = cnbd.expected_purchases_new_customer(t, *np.array(EXTREME_PARAMS).T, **kw)
        for v in (alive, later, expected, pmf, new):
            assert np.isfinite(v).all() and (v >= 0).all()
        assert (later <= alive * (1 + 1e-12)).all() and (alive <= 1.0).all() and (pmf <= 1.0 + 1e-12).all()


@pytest.mark.parametrize("modified", [False, True])
def test_probability_of_purchases_sums_to_one_with_the_expected_mean(modified):
    n = np.arange(0, 400)[:, None]
    x, t_x, T = HISTORIES.T
    for params, k, t in itertools.product(PRED_PARAMS[modified], (2, 5), (10.0, 52.0)):
        prob = cnbd.probability_of_purchases(n, t, x, t_x, T, *params, k=k, modified=modified)
        _close(prob.sum(axis=0), 1.0, rtol=0, atol=1e-10, what="sum of P(X = n)")
        _close((n * prob).sum(axis=0), cnbd.expected_purchases(t, x, t_x, T, *params, k=k, modified=modified),
               rtol=1e-8, atol=1e-12, what="mean of P(X = n)")


def test_discounted_expected_purchases_are_the_discounted_increments():
    ends, factors = 4.348 * np.arange(1.0, 13.0), 1.01 ** -np.arange(1.0, 13.0)
    x, t_x, T = HISTORIES.T
    for k, modified in itertools.product((1, 3), (False, True)):
        params = PRED_PARAMS[modified][0]
        kw = {"k": k, "modified": modified}
        got = cnbd.discounted_expected_purchases(ends, factors, x, t_x, T, *params, **kw)
        cumulative = [cnbd.expected_purchases(e, x, t_x, T, *params, **kw) for e in ends]
        want = sum(f * (c - p) for f, c, p in zip(factors, cumulative, [0.0] + cumulative[:-1], strict=True))
        _close(got, want, rtol=1e-10, atol=1e-14, what=f"discounted purchases, k={k}, modified={modified}")


def test_k_must_be_a_positive_integer():
    for k in (0, 1.5, -2, True):
        with pytest.raises(ValueError, match="positive integer"):
            cnbd.probability_alive(1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, k=k)


# ------------------------------------------------------------------------- summed kernel
def _compiled(tables, rows, k, modified, n_groups=None, group=None):
    shape = () if n_groups is None else (n_groups,)
    params = [pt.tensor(dtype="float64", shape=shape) for _ in range(4)]
    total = cnbd.summed_loglik(tables, *params)
    per_row = [p[group] for p in params] if group is not None else params
    row_total = (rows["weight"] * cnbd.loglik(rows["litt"], rows["frequency"], rows["recency"], rows["T"],
                                              *per_row, k=k, modified=modified)).sum()
    return pytensor.function(params, [total, *pytensor.grad(total, params),
                                      row_total, *pytensor.grad(row_total, params)])


@pytest.mark.parametrize(("k", "modified"), [(1, True), (3, False)])
def test_summed_kernel_equals_the_rows_with_groups_and_gradients(cdnow, k, modified):
    rows = {**cdnow, "weight": np.ones(cdnow["T"].size)}
    group = np.random.default_rng(3).integers(0, 3, size=rows["T"].size)
    tables = cnbd.loglik_tables(rows["litt"], rows["frequency"], rows["recency"], rows["T"], rows["weight"],
                                group=group, k=k, modified=modified)
    f = _compiled(tables, rows, k, modified, n_groups=3, group=group)
    params = [np.array([0.3, 0.8, 1.5]), np.array([4.0, 1.0, 10.0]), np.array([0.8, 2.0, 0.3]),
              np.array([2.4, 0.5, 5.0])]
    out = f(*params)
    assert float(out[0]) == pytest.approx(float(out[5]), rel=1e-12)
    for j in range(4):
        np.testing.assert_allclose(out[1 + j], out[6 + j], rtol=1e-8, atol=1e-8)
    # central finite differences of the kernel's own total, group by group
    for j, g in itertools.product(range(4), range(3)):
        up, down = [p.copy() for p in params], [p.copy() for p in params]
        h = 1e-6 * params[j][g]
        up[j][g] += h
        down[j][g] -= h
        fd = (cnbd.summed_loglik(tables, *up, xp=NP) - cnbd.summed_loglik(tables, *down, xp=NP)) / (2 * h)
        assert out[1 + j][g] == pytest.approx(fd, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize(("k", "modified"), [(4, True)])
def test_summed_kernel_is_finite_and_exact_at_extremes(k, modified):
    H = EXTREME_HISTORIES
    rows = {"litt": _litt(H[:, 0], H[:, 1]), "frequency": H[:, 0], "recency": H[:, 1], "T": H[:, 2],
            "weight": np.arange(1.0, len(H) + 1)}
    tables = cnbd.loglik_tables(rows["litt"], H[:, 0], H[:, 1], H[:, 2], rows["weight"], k=k, modified=modified)
    f = _compiled(tables, rows, k, modified)
    for params in EXTREME_PARAMS:
        out = [float(v) for v in f(*params)]
        assert np.isfinite(out).all(), (params, out)
        assert out[0] == pytest.approx(out[5], rel=1e-10), params
        np.testing.assert_allclose(out[1:5], out[6:10], rtol=1e-6, atol=1e-6, err_msg=str(params))


# ---------------------------------------------------------------------------- simulation
@pytest.mark.parametrize("modified", [False, True])
def test_simulated_population_matches_the_formulas(modified):
    params, k = (0.9, 2.0, 0.7, 2.5), 3
    T = np.repeat([13.0, 39.0], 40_000)
    sim = cnbd.simulate_population(T, *params, k=k, modified=modified, rng=11)
    for horizon in (13.0, 39.0):
        sel = sim["T"] == horizon
        x = sim["frequency"][sel]
        # a new customer observed for T is the history x = t_x = T = 0 predicted T ahead
        mean = float(cnbd.expected_purchases_new_customer(horizon, *params, k=k, modified=modified))
        assert x.mean() == pytest.approx(mean, abs=4 * x.std() / math.sqrt(x.size))
        counts = np.bincount(x.astype(int), minlength=6)[:6] / x.size
        pmf = cnbd.probability_of_purchases(np.arange(6.0), horizon, 0.0, 0.0, 0.0, *params, k=k, modified=modified)
        assert (np.abs(counts - pmf) <= 4 * np.sqrt(pmf * (1 - pmf) / x.size)).all(), (counts, pmf)
        alive = float(cnbd.probability_alive_at(horizon, 0.0, 0.0, 0.0, *params, k=k, modified=modified))
        assert sim["alive"][sel].mean() == pytest.approx(alive, abs=4 * math.sqrt(alive * (1 - alive) / x.size))
    # P(alive | history) is calibrated: customers grouped by it are alive that often
    p_alive = cnbd.probability_alive(sim["frequency"], sim["recency"], sim["T"], *params, k=k, modified=modified)
    for lo, hi in ((0.0, 0.3), (0.3, 0.7), (0.7, 1.0)):
        sel = (p_alive > lo) & (p_alive <= hi)
        assert sim["alive"][sel].mean() == pytest.approx(p_alive[sel].mean(), abs=4 * 0.5 / math.sqrt(sel.sum()))
    assert ((sim["litt"] == 0) == (sim["frequency"] == 0)).all()
    assert (sim["recency"] <= sim["T"]).all()


@pytest.mark.parametrize("modified", [False, True])
def test_simulated_future_purchases_match_the_formulas(modified):
    params, k, t = (0.9, 2.0, 0.7, 2.5), 3, 26.0
    x, t_x, T = HISTORIES.T
    draws = 60_000
    counts = cnbd.simulate_future_purchases(t, np.tile(x, (draws, 1)), t_x, T, *params, k=k, modified=modified,
                                            rng=5)
    expected = cnbd.expected_purchases(t, x, t_x, T, *params, k=k, modified=modified)
    assert (np.abs(counts.mean(axis=0) - expected) <= 4 * counts.std(axis=0) / math.sqrt(draws) + 1e-3).all()
    for n in range(4):
        freq = (counts == n).mean(axis=0)
        pmf = cnbd.probability_of_purchases(n, t, x, t_x, T, *params, k=k, modified=modified)
        assert (np.abs(freq - pmf) <= 4 * np.sqrt(pmf * (1 - pmf) / draws) + 1e-4).all(), (n, freq, pmf)


def test_maximum_likelihood_recovers_k_and_the_parameters_of_simulated_data():
    truth, k = (0.85, 1.45, 0.79, 2.42), 3  # BTYDplus' own MBG/CNBD-k recovery example
    rng = np.random.default_rng(2024)
    T = np.round(rng.uniform(36.0, 96.0, size=8000) / 12.0) * 12.0
    sim = cnbd.simulate_population(T, *truth, k=k, modified=True, rng=rng)
    table = cnbd.select_k(sim["litt"], sim["frequency"], sim["recency"], sim["T"], k_max=5, modified=True)
    best = int(np.argmax(table["loglik"]))
    assert table["k"][best] == k
    np.testing.assert_allclose([table[name][best] for name in cnbd.PARAMETERS], truth, rtol=0.12)


def test_expected_residual_lifetime_is_the_integral_of_survival():
    from scipy import integrate

    x, t_x, T = HISTORIES.T
    for k, modified, params in ((1, True, (2.0, 4.0, 2.5, 3.0)), (3, False, (1.5, 1.2, 3.0, 2.0)),
                                (4, True, (0.8, 0.5, 1.7, 0.4))):
        kw = {"k": k, "modified": modified}
        got = cnbd.expected_residual_lifetime(x, t_x, T, *params, given_alive=True, **kw)
        for i in range(x.size):
            if not np.isfinite(got[i]):  # E[1/lambda] is infinite for shape r + k x <= 1
                assert params[0] + k * x[i] <= 1.0
                continue
            want = integrate.quad(lambda t, i=i: float(cnbd.probability_alive_at(t, x[i], t_x[i], T[i], *params,
                                                                                  given_alive=True, **kw)),
                                  0.0, np.inf, epsrel=1e-10, limit=500)[0]
            assert got[i] == pytest.approx(want, rel=1e-8), (k, modified, i)
        alive = cnbd.probability_alive(x, t_x, T, *params, **kw)
        np.testing.assert_array_equal(cnbd.expected_residual_lifetime(x, t_x, T, *params, **kw), got * alive)
    assert np.isinf(mbgnbd.expected_residual_lifetime(1.0, 1.0, 2.0, 2.0, 1.0, 0.9, 1.0))  # a <= 1: E[G] infinite


def test_summed_kernel_runs_natively_in_numba(cdnow):
    import warnings

    tables = cnbd.loglik_tables(cdnow["litt"], cdnow["frequency"], cdnow["recency"], cdnow["T"],
                                np.ones(cdnow["T"].size), k=2, modified=True)
    params = [pt.dscalar() for _ in range(4)]
    total = cnbd.summed_loglik(tables, *params)
    graph = [total, *pytensor.grad(total, params)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode")
        native = pytensor.function(params, graph, mode="NUMBA")(*MBG_PUBLISHED)
    python = pytensor.function(params, graph, mode=pytensor.compile.mode.Mode(linker="py"))(*MBG_PUBLISHED)
    np.testing.assert_allclose(np.array(native, dtype=float), np.array(python, dtype=float), rtol=1e-13, atol=1e-9)
