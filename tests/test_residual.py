"""DERT and expected residual lifetime of the formula modules (paretonbd, bgnbd, ggomnbd) against independent references.

- Pareto/NBD DERT against a numerical posterior expectation over the dropout rate and against
  Fader, Hardie & Lee's (2005) closed form with mpmath's confluent hypergeometric function at 50
  digits; BG/NBD DERT against a 2-D numerical posterior expectation over (lambda, p)
  (tests/reference_residual.py); residual lifetimes likewise.
- Tricomi's U (the special function under the Pareto/NBD DERT) against mpmath over 14 decades.
- The GGom/NBD DERT and residual lifetime at the Pareto/NBD limit.
- (M)BG/CNBD-k (and so MBG/NBD) DERT against a 2-D numerical posterior expectation over
  ``(lambda, p)`` of the individual-level model, extremes included (x = 500, T = 1000).
"""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np
import pytest

from bayesclv.formulas import _special, bgnbd, cnbd, ggomnbd, mbgnbd, paretonbd

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference_residual import bgnbd_residual as bg_ref
    from .reference_residual import cnbd_residual as cnbd_ref
    from .reference_residual import paretonbd_residual as pn_ref
except ImportError:  # pragma: no cover
    from reference_residual import bgnbd_residual as bg_ref
    from reference_residual import cnbd_residual as cnbd_ref
    from reference_residual import paretonbd_residual as pn_ref

HISTORIES = np.array([(0, 0, 0.5), (0, 0, 100), (1, 0, 100), (3, 2, 2.5), (30, 1, 78), (200, 50, 52),
                      (2, 30.43, 38.86)], dtype=float)
PN_PARAMS = [(0.553, 10.578, 0.606, 11.669), (2.0, 1.0, 3.0, 50.0), (0.1, 100.0, 0.01, 0.01),
             (5.0, 0.1, 50.0, 1e3), (1e-3, 1e3, 1e3, 1e-3)]
BG_PARAMS = [(0.2426, 4.414, 0.793, 2.426), (2.0, 1.0, 3.0, 50.0), (0.1, 100.0, 0.01, 0.01)]
DELTAS = (1e-4, 0.0027, 0.1, 10.0)  # 0.0027 per week: 15% a year, continuously compounded


@pytest.mark.parametrize("z, s", list(itertools.product((1e-8, 1e-4, 1e-2, 0.3, 1.0, 10.0, 1e3, 1e6),
                                                        (1e-3, 0.5, 0.999, 1.0, 1.001, 2.0, 101.0, 1e3))))
def test_log_tricomi_matches_mpmath(z, s):
    """``U(1, 2-s, z) = int_0^inf e^(-zu) (1+u)^-s du``, by mpmath's tanh-sinh rule split at the scales 1/z, 1/(z+s)."""
    with mp.workdps(30):
        points = sorted({0.0, *(c / (z + s) for c in (1, 10, 100, 1e3)), *(c / z for c in (1, 10, 100))})
        want = float(mp.log(mp.quad(lambda u: mp.exp(-z * u) * (1 + u) ** (-s), [*points, mp.inf])))
    assert _special.log_tricomi(z, s) == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("z, s", list(itertools.product((0.05, 1.0, 1.999, 2.0), (1.5, 1.5000001, 2.4999999, 30.2426,
                                                                                  63.9))))
def test_log_tricomi_series_and_recurrence_match_mpmath(z, s):
    """Small ``z``: the series at ``s - 1 - round(s - 1)`` near +-1/2 and 0, then up to 63 recurrence steps."""
    with mp.workdps(30):
        want = float(mp.log(mp.hyperu(1, 2 - mp.mpf(s), z)))
    assert _special.log_tricomi(z, s) == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("params", PN_PARAMS)
def test_paretonbd_dert_matches_numerical_expectation_and_closed_form(params):
    x, t_x, T = HISTORIES.T
    for delta in DELTAS:
        got = paretonbd.discounted_expected_residual_transactions(delta, x, t_x, T, *params)
        np.testing.assert_allclose(got, pn_ref.discounted_expected_residual_transactions(delta, x, t_x, T, *params),
                                   rtol=1e-9)
    got = paretonbd.discounted_expected_residual_transactions(0.0027, x[:3], t_x[:3], T[:3], *params)
    np.testing.assert_allclose(got, pn_ref.dert_mpmath(0.0027, x[:3], t_x[:3], T[:3], *params), rtol=1e-9)


@pytest.mark.parametrize("params", PN_PARAMS)
def test_paretonbd_residual_lifetime(params):
    x, t_x, T = HISTORIES.T
    got = paretonbd.expected_residual_lifetime(x, t_x, T, *params)
    if params[2] <= 1.0:
        assert np.all(np.isinf(got))
    else:
        np.testing.assert_allclose(got, pn_ref.expected_residual_lifetime(x, t_x, T, *params), rtol=1e-9)


@pytest.mark.parametrize("params, delta", [(BG_PARAMS[0], 0.0027), (BG_PARAMS[0], 0.1), (BG_PARAMS[1], 0.0027),
                                           (BG_PARAMS[2], 0.1)])
def test_bgnbd_dert_matches_two_dimensional_numerical_expectation(params, delta):
    x, t_x, T = HISTORIES[[0, 4, 6]].T
    got = bgnbd.discounted_expected_residual_transactions(delta, x, t_x, T, *params)
    np.testing.assert_allclose(got, bg_ref.discounted_expected_residual_transactions(delta, x, t_x, T, *params),
                               rtol=1e-9)


@pytest.mark.parametrize("params, delta", [((50.0, 1.0, 100.0, 0.01), 1e-5), ((0.01, 100.0, 0.01, 100.0), 1e-5),
                                           ((0.01, 100.0, 0.01, 100.0), 1.0), ((0.01, 0.01, 0.01, 0.01), 1e-5)])
def test_bgnbd_dert_at_extremes_matches_two_dimensional_numerical_expectation(params, delta):
    """x = 500 and T = 1000 weeks, a one-week-old customer; parameters and discount rates at the grid's ends."""
    x, t_x, T = np.array([(500, 999, 1000), (0, 0, 1000), (5, 1, 2)], dtype=float).T
    got = bgnbd.discounted_expected_residual_transactions(delta, x, t_x, T, *params)
    np.testing.assert_allclose(got, bg_ref.discounted_expected_residual_transactions(delta, x, t_x, T, *params),
                               rtol=1e-9)


def test_bgnbd_dert_is_the_sum_of_discounted_purchases_until_dropout():
    """DERT = int e^(-delta t) dE[X(t)]: the library's expected purchases on a fine grid, extrapolated."""
    params, history = BG_PARAMS[0], (2.0, 30.43, 38.86)
    delta, horizon = 0.05, 1500.0

    def present_value(step):
        ends = np.arange(step, horizon + step / 2, step)
        return bgnbd.discounted_expected_purchases(ends, np.exp(-delta * (ends - step / 2)), *history, *params)

    coarse, fine = present_value(1.0), present_value(0.5)
    tail = np.exp(-delta * horizon) * 1e3  # at most ~1e3 purchases after the horizon: below 1e-29
    dert = float(bgnbd.discounted_expected_residual_transactions(delta, *history, *params))
    assert fine + (fine - coarse) / 3.0 == pytest.approx(dert, rel=1e-7, abs=tail)


@pytest.mark.parametrize("params", BG_PARAMS + [(3.0, 2.0, 2.5, 4.0)])
def test_bgnbd_residual_lifetime(params):
    x, t_x, T = HISTORIES.T
    got = bgnbd.expected_residual_lifetime(x, t_x, T, *params)
    want = bg_ref.expected_residual_lifetime(x, t_x, T, *params)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert np.isinf(got).any() == (params[2] <= 1.0 or params[0] <= 1.0)


def test_dert_falls_with_the_discount_rate():
    x, t_x, T = HISTORIES.T
    deltas = np.array([1e-3, 1e-2, 1e-1])[:, None]
    for values in (paretonbd.discounted_expected_residual_transactions(deltas, x, t_x, T, *PN_PARAMS[0]),
                   bgnbd.discounted_expected_residual_transactions(deltas, x, t_x, T, *BG_PARAMS[0]),
                   ggomnbd.discounted_expected_residual_transactions(deltas, x, t_x, T, 0.5, 10.0, 0.05, 0.6, 5.0)):
        assert np.all(np.diff(values, axis=0) < 0)


def test_ggomnbd_dert_and_residual_lifetime_tend_to_the_pareto_nbd():
    x, t_x, T = HISTORIES.T
    r, alpha, s, beta_p = PN_PARAMS[1]
    b = 1e-11  # the gap is O(b (s+1) u) over the u ~ 1/delta that matter
    for delta in (0.0027, 0.1):
        np.testing.assert_allclose(
            ggomnbd.discounted_expected_residual_transactions(delta, x, t_x, T, r, alpha, b, s, b * beta_p),
            paretonbd.discounted_expected_residual_transactions(delta, x, t_x, T, r, alpha, s, beta_p),
            rtol=1e-8)
    np.testing.assert_allclose(ggomnbd.expected_residual_lifetime(x, t_x, T, r, alpha, b, s, b * beta_p),
                               paretonbd.expected_residual_lifetime(x, t_x, T, r, alpha, s, beta_p),
                               rtol=1e-8)


# (delta, history (x, t_x, T), params (r, alpha, a, b), k, modified, given_alive): small and large
# discounting, a new customer, a long gap since the last purchase, x = 500 over T = 1000 weeks, tiny a and b
CNBD_CASES = [
    (0.0027, (3.0, 20.0, 40.0), (0.5, 10.0, 0.8, 2.5), 2, False, False),
    (0.1, (500.0, 990.0, 1000.0), (0.5, 10.0, 0.8, 2.5), 3, True, False),
    (0.0027, (0.0, 0.0, 40.0), (0.1, 100.0, 0.01, 0.01), 2, True, True),
    (1e-4, (2.0, 30.43, 38.86), (0.2426, 4.414, 0.793, 2.426), 4, False, True),
    (0.0027, (30.0, 70.0, 78.0), (2.0, 1.0, 3.0, 50.0), 1, True, False),
]


@pytest.mark.parametrize("delta, history, params, k, modified, given_alive", CNBD_CASES)
def test_cnbd_dert_matches_two_dimensional_numerical_expectation(delta, history, params, k, modified, given_alive):
    got = cnbd.discounted_expected_residual_transactions(delta, *history, *params, k=k, modified=modified,
                                                         given_alive=given_alive)
    want = cnbd_ref.discounted_expected_residual_transactions(delta, *history, *params, k, float(modified),
                                                              float(given_alive))
    assert float(got) == pytest.approx(float(want), rel=1e-9)


def test_mbgnbd_dert_is_the_bgnbd_one_with_one_more_survived_purchase():
    x, t_x, T = HISTORIES.T
    r, alpha, a, b = BG_PARAMS[0]
    got = mbgnbd.discounted_expected_residual_transactions(0.0027, x, t_x, T, r, alpha, a, b)
    given_alive = bgnbd.discounted_expected_residual_transactions(0.0027, x, t_x, T, r, alpha, a, b + 1.0,
                                                                  given_alive=True)
    np.testing.assert_allclose(got, mbgnbd.probability_alive(x, t_x, T, r, alpha, a, b) * given_alive, rtol=1e-14)


@pytest.mark.parametrize("k, modified", [(2, False), (3, True)])
def test_cnbd_dert_is_the_sum_of_discounted_purchases_until_dropout(k, modified):
    """DERT = int e^(-delta t) dE[X(t)]: the library's expected purchases on a fine grid, extrapolated."""
    params, history = (0.5, 10.0, 0.8, 2.5), (2.0, 30.43, 38.86)
    delta, horizon = 0.05, 1500.0

    def present_value(step):
        ends = np.arange(step, horizon + step / 2, step)
        return cnbd.discounted_expected_purchases(ends, np.exp(-delta * (ends - step / 2)), *history, *params, k=k,
                                                  modified=modified)

    coarse, fine = present_value(1.0), present_value(0.5)
    dert = float(cnbd.discounted_expected_residual_transactions(delta, *history, *params, k=k, modified=modified))
    assert fine + (fine - coarse) / 3.0 == pytest.approx(dert, rel=1e-6)


def test_cnbd_dert_is_finite_and_falls_with_the_discount_rate_over_an_extreme_grid():
    x = np.array([0.0, 1.0, 30.0, 500.0, 500.0])
    t_x = np.array([0.0, 0.5, 70.0, 990.0, 100.0])
    T = np.array([0.5, 1000.0, 78.0, 1000.0, 1000.0])
    deltas = np.array([1e-5, 1e-3, 1e-1, 10.0])[:, None]
    for params in [(0.5, 10.0, 0.8, 2.5), (1e-3, 1e3, 1e3, 1e-3), (50.0, 0.1, 0.02, 50.0)]:
        values = cnbd.discounted_expected_residual_transactions(deltas, x, t_x, T, *params, k=3, given_alive=True)
        assert np.isfinite(values).all() and (values > 0).all()
        assert np.all(np.diff(values, axis=0) < 0)
