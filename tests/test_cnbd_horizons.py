"""The (M)BG/CNBD-k discounted sums over many horizons (one pass, ``_cnbd_horizons``) against the sums per horizon.

The one-pass ODE must give the discounted expected purchases and discounted survival
of the per-horizon path (``cnbd._given_alive``: the phase-count sums of
``_cnbd_sums``, and its quadrature for long horizons) to 1e-10 relative, on a grid
with the extremes (no purchase, 500 purchases, ``T`` = 1,000 weeks, a customer just
acquired, tiny and huge parameters), for ``k`` = 2, 3, 5 and both variants.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayesclv.formulas import cnbd
from bayesclv.formulas._cnbd_horizons import over_horizons
from bayesclv.formulas._ops import discounted_increments

#: (frequency, recency, T): none, a few, 500 purchases; a long and a very short observation
HISTORIES = np.array([[0.0, 0.0, 30.0], [3.0, 20.0, 30.0], [500.0, 999.0, 1000.0], [0.0, 0.0, 1000.0],
                      [10.0, 5.0, 52.0], [2.0, 0.5, 0.5], [1.0, 0.0, 0.0]]).T
#: (r, alpha, a, b): CDNOW-like, all tiny, all huge, mixed
PARAMETERS = [(0.24, 4.4, 0.79, 2.4), (1e-3, 1e-3, 1e-3, 1e-3), (1e3, 1e3, 1e3, 1e3), (1e-3, 1e3, 1e3, 1e-3),
              (50.0, 0.01, 0.05, 40.0)]
MONTH = 4.35


def _per_horizon(ends, factors, times, params, k, modified):
    """The reference: each horizon's expectation on its own (``cnbd._given_alive``)."""
    x, t_x, T = HISTORIES

    def given_alive(t):
        return cnbd._given_alive(t, x, t_x, T, *params, k, modified)

    purchases = discounted_increments(lambda t: given_alive(t)[0], ends, factors)
    survival = sum(f * given_alive(t)[1] for t, f in zip(times, factors, strict=True))
    return purchases, survival


def _close(got, want, what):
    bad = ~(np.isfinite(got) & (np.abs(got - want) <= 1e-10 * np.abs(want)))
    assert not bad.any(), f"{what}: got {got[bad]}, want {want[bad]}"


@pytest.mark.parametrize("k", [2, 3, 5])
def test_one_pass_equals_the_sums_per_horizon_on_the_extreme_grid(k):
    ends = MONTH * np.arange(1.0, 121.0)
    factors = 1.01 ** -np.arange(1.0, 121.0)
    for params, modified in itertools.product(PARAMETERS, (False, True)):
        purchases, survival = _per_horizon(ends, factors, ends - MONTH, params, k, modified)
        p_alive = cnbd.probability_alive(*HISTORIES, *params, k=k, modified=modified)
        for given_alive in (True, False):
            scale = 1.0 if given_alive else p_alive
            kw = {"k": k, "modified": modified, "given_alive": given_alive}
            what = f"k={k}, {params}, modified={modified}, given_alive={given_alive}"
            _close(cnbd.discounted_expected_purchases(ends, factors, *HISTORIES, *params, **kw), scale * purchases,
                   f"purchases, {what}")
            _close(cnbd.discounted_probability_alive(ends - MONTH, factors, *HISTORIES, *params, **kw),
                   scale * survival, f"survival, {what}")


def test_one_pass_takes_any_horizons_and_weights():
    """Irregular, repeated and zero horizons with weights that are not a discount (also negative)."""
    ends = np.array([0.0, 0.3, 0.3, 2.0, 7.5, 40.0, 41.0, 300.0, 2000.0])
    factors = np.array([1.0, 0.9, 0.5, -0.2, 0.7, 0.1, 0.3, 0.05, 0.01])
    for k, modified in itertools.product((2, 4), (False, True)):
        params = PARAMETERS[0]
        purchases, survival = _per_horizon(ends, factors, ends, params, k, modified)
        kw = {"k": k, "modified": modified, "given_alive": True}
        _close(cnbd.discounted_expected_purchases(ends, factors, *HISTORIES, *params, **kw), purchases,
               f"purchases, k={k}")
        _close(cnbd.discounted_probability_alive(ends, factors, *HISTORIES, *params, **kw), survival,
               f"survival, k={k}")


def test_a_century_of_months_broadcasts_over_draws():
    """1,200 monthly horizons for a few histories and a column of draws, as the CLV asks for them."""
    ends = MONTH * np.arange(1.0, 1201.0)
    factors = 1.01 ** -np.arange(1.0, 1201.0)
    rng = np.random.default_rng(3)
    draws = [np.asarray(v) * np.exp(0.05 * rng.standard_normal((3, 1))) for v in PARAMETERS[0]]
    x, t_x, T = HISTORIES[:, :2]
    got = cnbd.discounted_expected_purchases(ends, factors, x, t_x, T, *draws, k=2, given_alive=True)
    alive = cnbd.discounted_probability_alive(ends - MONTH, factors, x, t_x, T, *draws, k=2, given_alive=True)
    assert got.shape == alive.shape == (3, 2)
    for d in range(3):
        params = [v[d, 0] for v in draws]
        want = discounted_increments(lambda t, p=params: cnbd._given_alive(t, x, t_x, T, *p, 2, False)[0],
                                     ends, factors)
        _close(got[d], want, "purchases over 1,200 months")
        want = sum(f * cnbd._given_alive(t, x, t_x, T, *params, 2, False)[1]
                   for t, f in zip(ends - MONTH, factors, strict=True))
        _close(alive[d], want, "survival over 1,200 months")


def test_out_of_range_elements_are_nan_and_bad_horizons_are_refused():
    out = over_horizons([1.0, 2.0], [1.0, 1.0], [2.0, -1.0, 2.0], [0.1, 0.1, -0.5], 0.1, 1.0, 2.0, 2,
                        purchases=True)
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    with pytest.raises(ValueError, match="non-negative"):
        over_horizons([-1.0, 2.0], [1.0, 1.0], 2.0, 0.1, 0.1, 1.0, 2.0, 2, purchases=False)
