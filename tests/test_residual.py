"""DERT and expected residual lifetime of the formula modules (paretonbd, bgnbd, ggomnbd) against independent references.

- Pareto/NBD DERT against a numerical posterior expectation over the dropout rate and against
  Fader, Hardie & Lee's (2005) closed form with mpmath's confluent hypergeometric function at 50
  digits; BG/NBD DERT against a 2-D numerical posterior expectation over (lambda, p)
  (tests/reference_residual.py); residual lifetimes likewise.
- Tricomi's U (the special function under the Pareto/NBD DERT) against mpmath over 14 decades.
- The GGom/NBD DERT and residual lifetime at the Pareto/NBD limit.
"""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np
import pytest

from bayesclv.formulas import _special, bgnbd, ggomnbd, paretonbd

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference_residual import bgnbd_residual as bg_ref
    from .reference_residual import paretonbd_residual as pn_ref
except ImportError:  # pragma: no cover
    from reference_residual import bgnbd_residual as bg_ref
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
