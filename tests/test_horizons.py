"""Discounted sums over many horizons (the CLV's purchase part) against independent per-horizon references.

The BG/NBD family's sums run one series and a continuation through the
hypergeometric equation per element (``formulas._beta_expectations.over_horizons``);
the references are the per-horizon closed forms (hyp2f1, quadrature where it is
unreliable) and, at fewer horizons, the SciPy quadrature of ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayesclv.formulas import bgnbd, cnbd, mbgnbd
from bayesclv.formulas._beta_expectations import over_horizons
from bayesclv.formulas._ops import discounted_increments

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference as ref
except ImportError:  # pragma: no cover
    import reference as ref

WEEKS_PER_MONTH = 365.25 / 12 / 7
BG_MLE = (0.2426, 4.414, 0.793, 2.426)  # FHL (2005), CDNOW sample, weeks
# (x, t_x, T) including x = 500 and T = 1,000 weeks
HISTORIES = np.array([(0, 0, 0.5), (0, 0, 38), (1, 30, 38), (5, 35, 39), (30, 77, 78), (2, 1, 1000),
                      (500, 999.99, 1000), (500, 10, 10)], dtype=float)
# (r, alpha, a, b): the CDNOW estimates, a < 1 and a > 1, a large a (c >= rho branch), shapes far apart
PARAMS = np.array([BG_MLE, (0.5, 2.0, 3.0, 5.0), (2.0, 50.0, 0.3, 0.2), (0.05, 0.5, 40.0, 10.0),
                   (5.0, 300.0, 1.5, 80.0), (1e-2, 1e-2, 0.9, 1e3)])


def _grid():
    """Every (history, parameters) pair as columns x, t_x, T, r, alpha, a, b."""
    rows = [(*h, *p) for h in HISTORIES for p in PARAMS]
    return np.array(rows).T


def _per_horizon(ends, factors, cols, survival):
    """The discounted sum from the library's closed forms, one horizon at a time (the path the series replaces)."""
    x, t_x, T, r, alpha, a, b = cols
    if survival:
        return sum(f * bgnbd.probability_alive_at(t, x, t_x, T, r, alpha, a, b, given_alive=True)
                   for t, f in zip(ends, factors, strict=True))
    return discounted_increments(lambda t: bgnbd.expected_purchases(t, x, t_x, T, r, alpha, a, b, given_alive=True),
                                 ends, factors)


@pytest.mark.parametrize("months", [12, 120, 1200])
def test_bgnbd_discounted_sums_equal_the_per_horizon_closed_forms(months):
    """Monthly periods up to 100 years: the one-pass sums agree with the per-horizon ones to 1e-10."""
    ends = WEEKS_PER_MONTH * np.arange(1.0, months + 1)
    factors = 1.01 ** -np.arange(1.0, months + 1)
    cols = _grid()
    for survival, fn, times in ((False, bgnbd.discounted_expected_purchases, ends),
                                (True, bgnbd.discounted_probability_alive, ends - WEEKS_PER_MONTH)):
        got = fn(times, factors, *cols, given_alive=True)
        want = _per_horizon(times, factors, cols, survival)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=0, err_msg=f"survival={survival}")
        assert np.all(np.isfinite(got)) and np.all(got > 0)


def test_bgnbd_discounted_sums_take_the_series_on_ordinary_and_extreme_elements():
    """The elementwise kernel keeps most elements of this extreme grid (the rest take the per-horizon
    fallback, checked above), also at z near 1 (k up to 5e5) and x = 500 with T = 1,000."""
    ends = WEEKS_PER_MONTH * np.arange(1.0, 1201)
    factors = 1.01 ** -np.arange(1.0, 1201)
    x, _, T, r, alpha, a, b = _grid()
    for survival in (False, True):
        out, ok = np.empty(x.size), np.ones(x.size, dtype=bool)
        over_horizons(r + x, a, b + x, 1.0 / (alpha + T), ends, factors, out, ok, survival)
        assert ok.mean() > 0.75, survival


def test_bgnbd_long_horizons_against_quadrature():
    """Unequal periods out to 100 years against the SciPy quadrature of the reference, horizon by horizon."""
    ends = np.array([0.5, 4.0, 52.0, 300.0, 1000.0, 2600.0, 5218.0])
    factors = np.array([1.0, 0.97, 0.9, 0.6, 0.3, 0.1, 0.01])
    cols = _grid()[:, ::5]
    x, t_x, T, r, alpha, a, b = cols
    got = bgnbd.discounted_expected_purchases(ends, factors, *cols, given_alive=False)
    survival = bgnbd.discounted_probability_alive(ends, factors, *cols, given_alive=False)
    for i in range(x.size):
        args = (x[i], t_x[i], T[i], r[i], alpha[i], a[i], b[i])
        want = discounted_increments(lambda t, args=args: ref.bgnbd.expected_purchases(t, *args), ends, factors)
        alive = sum(f * ref.bgnbd.probability_alive_at(t, *args) for t, f in zip(ends, factors, strict=True))
        assert got[i] == pytest.approx(want, rel=1e-8), args
        assert survival[i] == pytest.approx(alive, rel=1e-8), args


def test_shared_draws_equal_the_elementwise_sums():
    """Draws x histories (one series per draw and x, shared by the rows) against each element on its own."""
    rng = np.random.default_rng(7)
    draws = np.array(BG_MLE) * np.exp(rng.normal(0.0, 0.2, size=(30, 4)))
    ends = WEEKS_PER_MONTH * np.arange(1.0, 241)
    factors = 1.005 ** -np.arange(1.0, 241)
    x, t_x, T = HISTORIES.T
    for fn in (bgnbd.discounted_expected_purchases, bgnbd.discounted_probability_alive):
        shared = fn(ends, factors, x, t_x, T, *(draws[:, i:i + 1] for i in range(4)))
        alone = np.array([[fn(ends, factors, x[j:j + 1], t_x[j:j + 1], T[j:j + 1], *d)[0] for j in range(x.size)]
                          for d in draws])
        np.testing.assert_allclose(shared, alone, rtol=1e-12, atol=0)


@pytest.mark.parametrize("modified", [False, True])
def test_cnbd_one_phase_discounted_survival_is_the_sum_of_its_terms(modified):
    """MBG/NBD and BG/CNBD-1: the one-pass discounted P(alive) equals the per-horizon sum."""
    ends = WEEKS_PER_MONTH * np.arange(0.0, 120)
    factors = 1.01 ** -np.arange(1.0, 121)
    x, t_x, T = HISTORIES[:6].T
    got = cnbd.discounted_probability_alive(ends, factors, x, t_x, T, *BG_MLE, k=1, modified=modified)
    want = sum(f * cnbd.probability_alive_at(t, x, t_x, T, *BG_MLE, k=1, modified=modified)
               for t, f in zip(ends, factors, strict=True))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    if modified:
        np.testing.assert_allclose(mbgnbd.discounted_probability_alive(ends, factors, x, t_x, T, *BG_MLE), got,
                                   rtol=1e-15)
