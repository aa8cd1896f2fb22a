"""BG/BB and shifted-BG formulas against published values and the references of tests/reference_discrete.py.

Published values:

* BG/BB on the donations data (Fader, Hardie & Shang 2010, "Customer-Base Analysis in a
  Discrete-Time Noncontractual Setting", Marketing Science 29(6), Table 2): alpha 1.204,
  beta 0.750, gamma 0.657, delta 2.783, LL -33,225.6. Annual repeat donations of the cohort
  1996-2006 (the paper's tracking data; the spreadsheet of Hardie's note 010, as shipped in R's
  BTYD ``donationsSummary``): see ``bayesclv.datasets.load_donations(holdout=True)``.
* shifted-BG (Fader & Hardie 2007, "How to Project Customer Retention", Journal of Interactive
  Marketing 21(1)): fitted to years 1-7, regular alpha 0.704, beta 1.182; high end alpha 0.668,
  beta 3.806; survivors in years 8-12 from the paper's data table (``load_retention``).

Tolerances: log-likelihoods within 1e-8 (relative to 1 + |value|) of the reference, predictive
quantities within 1e-8 relative, published estimates within 1%.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import optimize, special

from bayesclv.data.discrete import censor_retention
from bayesclv.datasets import load_donations, load_retention
from bayesclv.formulas import bgbb
from bayesclv.formulas import shifted_bg as sbg
from bayesclv.formulas._ops import NP

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference_discrete as ref
except ImportError:  # pragma: no cover
    import reference_discrete as ref

BGBB_PUBLISHED = (1.204, 0.750, 0.657, 2.783)
BGBB_LL_PUBLISHED = -33225.6
SBG_PUBLISHED = {"regular": (0.704, 1.182), "high end": (0.668, 3.806)}
EXTREMES = (1e-3, 1.0, 1e3)
BGBB_EXTREME_PARAMS = list(itertools.product(EXTREMES, repeat=4))
# (x, t_x, n): no opportunity, one, 1000 with long and short dropout sums, everything bought
BGBB_EXTREME_HISTORIES = np.array([(0, 0, 0), (0, 0, 1), (1, 1, 1), (0, 0, 1000), (1, 1, 1000), (1, 1000, 1000),
                                   (500, 600, 1000), (1000, 1000, 1000), (3, 5, 6), (6, 6, 6), (2, 3, 30)], dtype=float)
BGBB_ORDINARY = np.array([(x, t, n) for n in (1, 6, 20) for t in range(0, n + 1, max(1, n // 4))
                          for x in sorted({0 if t == 0 else v for v in (1, t // 2 + 1, t)})], dtype=float)
RTOL = 1e-8


def _close(got, want, what, rtol=RTOL):
    got, want = np.broadcast_arrays(np.asarray(got, dtype=float), np.asarray(want, dtype=float))
    with np.errstate(invalid="ignore"):  # inf - inf where both are infinite
        ok = (np.abs(got - want) <= rtol * (1.0 + np.abs(want))) | ((got == want) & np.isinf(want))
    assert ok.all(), f"{what}: {np.sum(~ok)} of {ok.size} differ, worst {got[~ok][:3]} vs {want[~ok][:3]}"


def _donations():
    d = load_donations(holdout=True)
    return [d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "periods", "weights")], d


def _fit_bgbb(x, t_x, n, w, start):
    tables = bgbb.loglik_tables(x, t_x, n, w)

    def objective(theta):
        params = np.exp(theta)
        value, grad = bgbb._summed_loglik_kernel(*(np.array([p]) for p in params), *tables)
        return -value, -grad[:, 0] * params

    res = optimize.minimize(objective, np.log(start), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000})
    return np.exp(res.x), -res.fun


# --------------------------------------------------------------------------------------
# BG/BB: published values
# --------------------------------------------------------------------------------------
def test_bgbb_published_loglik_donations():
    (x, t_x, n, w), _ = _donations()
    per_row = bgbb.loglik(x, t_x, n, *BGBB_PUBLISHED, xp=NP)
    _close(per_row, ref.bgbb.loglik(x, t_x, n, *BGBB_PUBLISHED), "donations loglik vs reference")
    assert (w * per_row).sum() == pytest.approx(BGBB_LL_PUBLISHED, abs=0.05)
    tables = bgbb.loglik_tables(x, t_x, n, w)
    assert bgbb.summed_loglik(tables, *BGBB_PUBLISHED, xp=NP) == pytest.approx((w * per_row).sum(), rel=1e-13)


def test_bgbb_published_mle_donations():
    """Maximum likelihood on the donations table recovers Table 2 of FHS (2010) (we get 1.2035, 0.7497,
    0.6567, 2.7834, LL -33,225.58)."""
    (x, t_x, n, w), _ = _donations()
    mle, ll = _fit_bgbb(x, t_x, n, w, start=(1.0, 1.0, 1.0, 1.0))
    np.testing.assert_allclose(mle, BGBB_PUBLISHED, rtol=1e-2)
    np.testing.assert_allclose(mle, BGBB_PUBLISHED, atol=6e-4)  # the published values are rounded to 3 decimals
    assert ll == pytest.approx(BGBB_LL_PUBLISHED, abs=0.05)


def test_bgbb_holdout_forecasts_donations():
    """The 2002-2006 holdout of FHS (2010): annual repeat donations of the 11,104 donors.

    The model's forecast from our MLE equals the one from the published estimates (the paper's
    forecast, whose estimates are rounded to 3 decimals) to 0.1%; it tracks the cumulative repeat donations 1996-2006 (the paper's
    tracking figure) within 1% and the holdout total (13,260 actual) within 3%, both as the
    new-cohort expectation and as the sum of the donors' conditional expectations.
    """
    (x, t_x, n, w), d = _donations()
    mle, _ = _fit_bgbb(x, t_x, n, w, start=(1.0, 1.0, 1.0, 1.0))
    actual = np.array(list(d.attrs["repeat_donations_by_year"].values()), dtype=float)  # 1996..2006
    cohort = w.sum()
    years = np.arange(0, 12)

    def annual(params):
        return np.diff(cohort * bgbb.expected_purchases_new_customer(years, *params))

    ours, paper = annual(mle), annual(BGBB_PUBLISHED)
    np.testing.assert_allclose(ours, paper, rtol=1e-3)
    assert ours.sum() == pytest.approx(actual.sum(), rel=1e-2)  # 37,617 vs 37,875
    assert ours[6:].sum() == pytest.approx(actual[6:].sum(), rel=3e-2)  # 12,970 vs 13,260
    conditional = w * bgbb.expected_purchases(5, x, t_x, n, *mle)
    assert conditional.sum() == pytest.approx(d["holdout_donations"].sum(), rel=3e-2)  # 12,882 vs 13,260
    # donors with more calibration donations give more in the holdout, in the data and the model
    donors = np.bincount(x.astype(int), weights=w)
    observed = np.bincount(x.astype(int), weights=d["holdout_donations"].to_numpy(dtype=float)) / donors
    expected = np.bincount(x.astype(int), weights=conditional) / donors
    assert np.all(np.diff(observed) > 0) and np.all(np.diff(expected) > 0)


# --------------------------------------------------------------------------------------
# BG/BB: likelihood against the reference
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bgbb_compiled():
    data = [pt.dvector(k) for k in ("x", "t_x", "n")]
    params = [pt.dscalar(k) for k in bgbb.PARAMETERS]
    ll = bgbb.loglik(*data, *params, n_terms=1000)
    return pytensor.function(data + params, [ll, *pytensor.grad(ll.sum(), params)])


def test_bgbb_loglik_extreme_grid(bgbb_compiled):
    """NumPy, PyTensor, summed-kernel and prediction log-likelihoods against the quadrature reference: parameters
    1e-3..1e3, up to 1,000 opportunities and dropout sums of 1,000 terms.

    The grid needs ~22,000 distinct beta expectations: the reference's vectorised rule computes them
    (``ref.bgbb_loglik_table``), itself checked here against the adaptive QUADPACK reference (``ref.bgbb``, one
    integral per expectation) on the six histories of up to 30 opportunities at every point, and on 300
    expectations drawn at random from the grid's range (shapes 1e-3..1e3, powers up to 1,000)."""
    H = BGBB_EXTREME_HISTORIES
    table = ref.bgbb_loglik_table(H, BGBB_EXTREME_PARAMS)
    short = H[:, 2] <= 30
    for params, want in zip(BGBB_EXTREME_PARAMS, table, strict=True):
        _close(want[short], ref.bgbb.loglik(*H[short].T, *params), f"vectorised reference at {params}", rtol=1e-10)
    rng = np.random.default_rng(7)
    x, t_x, n = H[rng.integers(0, len(H), 300)].T
    j = np.floor(rng.random(300) * (n - x + 1))  # (1 - p) powers from 0 to n - x, with n = 1000 mostly
    shapes = np.array(EXTREMES)[rng.integers(0, 3, (2, 300))]
    i = np.where(rng.random(300) < 0.5, x, rng.integers(0, 2, 300))
    _close(ref.log_beta_moments(i, j, *shapes),
           [ref.log_beta_moment(*v) for v in zip(i, j, *shapes, strict=True)], "vectorised beta expectations",
           rtol=1e-10)
    for params, want in zip(BGBB_EXTREME_PARAMS, table, strict=True):
        _close(bgbb.loglik(*H.T, *params, xp=NP), want, f"numpy loglik at {params}")
        _close(bgbb_compiled(*H.T, *params)[0], want, f"pytensor loglik at {params}")
        kernel = [bgbb.summed_loglik(bgbb.loglik_tables(*h[:, None], [1.0]), *params, xp=NP) for h in H]
        _close(kernel, want, f"summed kernel at {params}")
        _close(bgbb._loglik_values(*H.T, *params), want, f"elementwise loop of the predictions at {params}")


def test_bgbb_loglik_at_vanishing_beta_shapes(bgbb_compiled):
    """alpha, beta ~ 1e-17 (where an optimiser's line search wanders): beta + n - x must not round to 0 when
    x = n. Every route against the closed form of FHS (2010, eq. 5) in 40-digit mpmath; finite gradients."""
    mpmath = pytest.importorskip("mpmath")
    params = (7.1e-17, 1.0e-17, 0.92, 0.028)
    H = np.array([(8, 8, 8), (1, 1, 8), (0, 0, 8), (3, 5, 8), (6, 6, 6)], dtype=float)
    with mpmath.workdps(40):
        a, b, g, d = (mpmath.mpf(v) for v in params)
        want = [float(mpmath.log(
            mpmath.beta(a + x, b + n - x) / mpmath.beta(a, b) * mpmath.beta(g, d + n) / mpmath.beta(g, d)
            + sum(mpmath.beta(a + x, b + t - x + i) / mpmath.beta(a, b) * mpmath.beta(g + 1, d + t + i)
                  / mpmath.beta(g, d) for i in range(int(n - t)))))
            for x, t, n in (tuple(int(v) for v in h) for h in H)]
    _close(bgbb.loglik(*H.T, *params, xp=NP), want, "numpy loglik")
    value, *grads = bgbb_compiled(*H.T, *params)
    _close(value, want, "pytensor loglik")
    assert np.all(np.isfinite(grads))
    _close([bgbb.summed_loglik(bgbb.loglik_tables(*h[:, None], [1.0]), *params, xp=NP) for h in H], want,
           "summed kernel")


def _summary_probabilities(n, params):
    """Every history (x, t_x) of n opportunities and its probability: the likelihood is that of one
    transaction sequence, shared by the C(t_x - 1, x - 1) sequences with that summary."""
    rows = np.array([(0, 0)] + [(x, t) for t in range(1, n + 1) for x in range(1, t + 1)], dtype=float)
    x, t_x = rows.T
    sequences = np.where(x > 0, special.comb(np.maximum(t_x - 1, 0), np.maximum(x - 1, 0)), 1.0)
    return rows, sequences * np.exp(bgbb.loglik(x, t_x, np.full(x.size, float(n)), *params, xp=NP))


def test_bgbb_likelihood_sums_to_one():
    """Over every possible summary (x, t_x) of n opportunities the likelihood is a distribution."""
    for n, params in ((6, BGBB_PUBLISHED), (30, (0.3, 2.0, 5.0, 0.4)), (12, (1e-3, 1e3, 1e3, 1e-3))):
        _, prob = _summary_probabilities(n, params)
        assert prob.sum() == pytest.approx(1.0, abs=1e-12)


def test_bgbb_summed_gradient():
    """The kernel's hand-derived gradient equals PyTensor's derivative of the per-row formula, with groups."""
    rng = np.random.default_rng(7)
    H = np.vstack([BGBB_ORDINARY, BGBB_EXTREME_HISTORIES[[2, 5, 6, 9]]])
    weight = rng.integers(1, 50, size=len(H)).astype(float)
    group = rng.integers(0, 3, size=len(H))
    group[:3] = [0, 1, 2]
    data = [pt.dvector(k) for k in ("x", "t_x", "n", "w")] + [pt.lvector("g")]
    params = [pt.dvector(k) for k in bgbb.PARAMETERS]
    rows = [p[data[4]] for p in params]
    total = (data[3] * bgbb.loglik(*data[:3], *rows, n_terms=1000)).sum()
    f = pytensor.function(data + params, [total, *pytensor.grad(total, params)])
    tables = bgbb.loglik_tables(*H.T, weight, group)
    for base in (BGBB_PUBLISHED, (1e-3, 1e3, 1.0, 1e-3), (1e3, 1e-3, 1e3, 1.0)):
        params_ = [np.asarray(base) * np.exp(rng.normal(0, 0.3, size=4)) for _ in range(3)]
        params_ = [np.array(v) for v in zip(*params_)]
        value, grad = bgbb._summed_loglik_kernel(*params_, *tables)
        want = f(*H.T, weight, group, *params_)
        assert value == pytest.approx(float(want[0]), rel=1e-12)
        np.testing.assert_allclose(grad, np.array(want[1:]), rtol=1e-7, atol=1e-9 * np.abs(want[0]))


# --------------------------------------------------------------------------------------
# BG/BB: predictive quantities
# --------------------------------------------------------------------------------------
def _bgbb_predictions(params, H, ts, ks):
    args = (*H.T, *params)
    for fn in ("probability_alive", "expected_residual_lifetime"):
        _close(getattr(bgbb, fn)(*args), getattr(ref.bgbb, fn)(*args), f"{fn} at {params}")
    for t in ts:
        for fn in ("expected_purchases", "probability_alive_at"):
            _close(getattr(bgbb, fn)(t, *args), getattr(ref.bgbb, fn)(t, *args), f"{fn}(t={t}) at {params}")
        _close(bgbb.expected_purchases_new_customer(t, *params), ref.bgbb.expected_purchases_new_customer(t, *params),
               f"expected_purchases_new_customer(t={t}) at {params}")
        for k in ks:
            _close(bgbb.probability_of_purchases(k, t, *args), ref.bgbb.probability_of_purchases(k, t, *args),
                   f"probability_of_purchases(k={k}, t={t}) at {params}")
    for d in (0.1, 0.01):
        _close(bgbb.discounted_expected_residual_transactions(d, *args),
               ref.bgbb.discounted_expected_residual_transactions(d, *args), f"DERT(d={d}) at {params}")


def test_bgbb_predictive_ordinary():
    _bgbb_predictions(BGBB_PUBLISHED, BGBB_ORDINARY[::3], ts=(1, 5, 30), ks=(0, 1, 3))
    _bgbb_predictions((2.5, 0.8, 3.1, 2.783), BGBB_ORDINARY[::5], ts=(1, 5), ks=(0, 2))


def test_bgbb_predictive_extremes():
    H = BGBB_EXTREME_HISTORIES[[0, 2, 4, 8]]
    for params in itertools.product(EXTREMES, repeat=4):
        if 1.0 not in params:  # the corners; the mixed grid is covered by the likelihood test
            _bgbb_predictions(params, H, ts=(1, 60), ks=(0, 1))


def test_bgbb_identities():
    H = BGBB_ORDINARY
    p = BGBB_PUBLISHED
    args = (*H.T, *p)
    alive = bgbb.probability_alive(*args)
    np.testing.assert_allclose(bgbb.probability_alive_at(1, *args), alive, rtol=1e-13)
    for fn in ("expected_purchases", "probability_alive_at"):
        np.testing.assert_allclose(getattr(bgbb, fn)(7, *args, given_alive=True) * alive, getattr(bgbb, fn)(7, *args),
                                   rtol=1e-13)
    t = np.arange(0, 40)
    np.testing.assert_allclose(bgbb.expected_purchases(t, 0, 0, 0, *p), bgbb.expected_purchases_new_customer(t, *p),
                               rtol=1e-13)
    ends = np.array([1, 2, 5, 9, 30])
    factors = 1.1 ** -np.arange(1, 6)
    cumulative = np.array([bgbb.expected_purchases(e, *args) for e in ends])
    want = factors @ np.diff(cumulative, axis=0, prepend=0.0)
    np.testing.assert_allclose(bgbb.discounted_expected_purchases(ends, factors, *args), want, rtol=1e-12)
    # DERT is the discounted expectation over an endless horizon
    long = np.arange(1, 3001)
    np.testing.assert_allclose(bgbb.discounted_expected_residual_transactions(0.1, *args),
                               bgbb.discounted_expected_purchases(long, 1.1 ** -long, *args), rtol=1e-12)
    gamma_above_one = (1.2, 0.75, 3.5, 2.8)  # the tail beyond 3,000 opportunities is below 1e-6
    np.testing.assert_allclose(
        bgbb.expected_residual_lifetime(*H.T, *gamma_above_one),
        bgbb.probability_alive_at(long[:, None], *H.T, *gamma_above_one).sum(axis=0), rtol=1e-3)
    assert np.all(np.isinf(bgbb.expected_residual_lifetime(*H.T, *p)))  # gamma < 1: E[1/theta] diverges


def test_bgbb_probability_of_purchases_sums_to_one_and_mean():
    H = np.vstack([BGBB_ORDINARY[::4], BGBB_EXTREME_HISTORIES[[6, 7]]])
    k = np.arange(0, 41)[:, None]
    for params, t in ((BGBB_PUBLISHED, 5), (BGBB_PUBLISHED, 40), ((1e-3, 1e3, 1e3, 1e-3), 40), ((50.0, 0.1, 0.2, 9.0), 17)):
        prob = bgbb.probability_of_purchases(k, t, *H.T, *params)
        assert np.all(prob >= 0) and np.all(prob[k[:, 0] > t] == 0)
        np.testing.assert_allclose(prob.sum(axis=0), 1.0, atol=1e-12)
        np.testing.assert_allclose((k * prob).sum(axis=0), bgbb.expected_purchases(t, *H.T, *params), rtol=1e-10)


def test_bgbb_draws_broadcast_against_histories():
    """(draws, 1) parameters against (rows,) histories give the values of scalar calls."""
    P = np.array([BGBB_PUBLISHED, (1e-3, 1e3, 1e3, 1e-3), (3.0, 0.5, 0.9, 40.0)])
    H = BGBB_ORDINARY[::4]
    draws = [v[:, None] for v in P.T]
    for fn, f in {"expected_purchases": lambda h, q: bgbb.expected_purchases(6, *h, *q),
                  "probability_of_purchases": lambda h, q: bgbb.probability_of_purchases(2, 6, *h, *q),
                  "discounted_expected_purchases": lambda h, q: bgbb.discounted_expected_purchases(
                      [1, 3], [0.9, 0.8], *h, *q),
                  "dert": lambda h, q: bgbb.discounted_expected_residual_transactions(0.1, *h, *q)}.items():
        got = f(H.T, draws)
        want = np.array([[float(f(h, q)) for h in H] for q in P])
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=fn)


def test_bgbb_horizons_must_be_whole():
    with pytest.raises(ValueError, match="whole numbers"):
        bgbb.expected_purchases(2.5, 1, 1, 6, *BGBB_PUBLISHED)
    with pytest.raises(ValueError, match="d must be > 0"):
        bgbb.discounted_expected_residual_transactions(0.0, 1, 1, 6, *BGBB_PUBLISHED)


# --------------------------------------------------------------------------------------
# BG/BB: simulators
# --------------------------------------------------------------------------------------
def test_bgbb_simulate_population_matches_likelihood():
    """Simulated histories follow the likelihood (cell frequencies within 5 binomial sds), and the
    simulated share alive at n + 1 within each history follows probability_alive."""
    params, n, size = (1.2, 0.75, 0.66, 2.8), 6, 200_000
    sim = bgbb.simulate_population(np.full(size, float(n)), *params, rng=11)
    rows, prob = _summary_probabilities(n, params)
    code = {tuple(r): i for i, r in enumerate(rows)}
    counts = np.bincount([code[(f, r)] for f, r in zip(sim["frequency"], sim["recency"])], minlength=len(rows))
    sd = np.sqrt(size * prob * (1 - prob))
    assert np.all(np.abs(counts - size * prob) <= 5 * sd + 1)
    alive = np.bincount([code[(f, r)] for f, r in zip(sim["frequency"], sim["recency"])],
                        weights=sim["alive"], minlength=len(rows))
    p_alive = bgbb.probability_alive(*rows.T, float(n), *params)
    busy = counts > 2000
    share = alive[busy] / counts[busy]
    assert np.all(np.abs(share - p_alive[busy]) <= 5 * np.sqrt(p_alive[busy] * (1 - p_alive[busy]) / counts[busy]))


def test_bgbb_simulate_future_purchases():
    H = np.array([(0, 0, 6), (2, 3, 6), (6, 6, 6)], dtype=float)
    size, t = 100_000, 8
    for h in H:
        draws = bgbb.simulate_future_purchases(t, *np.repeat(h[:, None], size, axis=1), *BGBB_PUBLISHED, rng=5)
        prob = bgbb.probability_of_purchases(np.arange(t + 1)[:, None], t, *h, *BGBB_PUBLISHED)[:, 0]
        counts = np.bincount(draws.astype(int), minlength=t + 1)
        assert np.all(np.abs(counts - size * prob) <= 5 * np.sqrt(size * prob * (1 - prob)) + 1), h


def test_simulators_at_extreme_parameters():
    """Parameters 1e-3..1e3 (latent probabilities of exactly 0 or 1): valid histories, no warnings."""
    with np.errstate(all="raise"):
        for params in BGBB_EXTREME_PARAMS:
            sim = bgbb.simulate_population(np.full(500, 50.0), *params, rng=1)
            assert np.all((0 <= sim["frequency"]) & (sim["frequency"] <= sim["recency"]) & (sim["recency"] <= 50))
            assert np.all((sim["frequency"] == 0) == (sim["recency"] == 0))
            future = bgbb.simulate_future_purchases(10, sim["frequency"], sim["recency"], sim["periods"], *params,
                                                    rng=2)
            assert np.all((0 <= future) & (future <= 10))
        for params in itertools.product(EXTREMES, repeat=2):
            sim = sbg.simulate_population(np.full(500, 20.0), *params, rng=1)
            assert np.all((1 <= sim["periods"]) & (sim["periods"] <= 20))
            assert np.all(sbg.simulate_residual_lifetime(np.full(500, 20.0), *params, rng=2) >= 1)


# --------------------------------------------------------------------------------------
# shifted-BG
# --------------------------------------------------------------------------------------
def _fit_sbg(periods, churned):
    def objective(theta):
        return -sbg.loglik(periods, churned, *np.exp(theta), xp=NP).sum()

    res = optimize.minimize(objective, np.zeros(2), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    return np.exp(res.x)


@pytest.mark.parametrize("segment", ["regular", "high end"])
def test_sbg_published_mle_and_projections(segment):
    """Fader & Hardie (2007): the sBG fitted to years 1-7 (we get regular 0.7041, 1.1820; high end
    0.6681, 3.8061) and its projection of the survivors in years 8-12. Our projection equals the one
    of the published estimates (the paper's) to 0.5%, and is within 5% of the survivors the paper
    reports (regular 223 207 194 183 173, high end 468 445 427 409 394; the model projects 220..170
    and 460..378)."""
    data = load_retention()
    data = data[data["segment"] == segment]
    calibration = censor_retention(data, 7)
    mle = _fit_sbg(calibration["periods"].to_numpy(float), calibration["churned"].to_numpy(float))
    np.testing.assert_allclose(mle, SBG_PUBLISHED[segment], rtol=1e-2)
    np.testing.assert_allclose(mle, SBG_PUBLISHED[segment], atol=6e-4)
    years = np.arange(8, 13)
    periods, churned = data["periods"].to_numpy(), data["churned"].to_numpy()
    survivors = np.array([np.sum((periods > y) | ((periods == y) & (churned == 0))) for y in years], dtype=float)
    ours = 1000 * sbg.survival(years, *mle)
    np.testing.assert_allclose(ours, 1000 * sbg.survival(years, *SBG_PUBLISHED[segment]), rtol=5e-3)
    np.testing.assert_allclose(ours, survivors, rtol=5e-2)


SBG_PERIODS = np.array([1, 2, 7, 12, 100, 1000], dtype=float)
SBG_EXTREME_PARAMS = list(itertools.product(EXTREMES, repeat=2)) + [(0.704, 1.182), (0.668, 3.806), (2.5, 0.3)]


def test_sbg_against_reference():
    for params in SBG_EXTREME_PARAMS:
        for churned in (0.0, 1.0):
            _close(sbg.loglik(SBG_PERIODS, churned, *params, xp=NP), ref.shifted_bg.loglik(SBG_PERIODS, churned, *params),
                   f"loglik (churned={churned}) at {params}")
        for t in (1.0, 5.0, 100.0):
            _close(sbg.survival(t, *params, periods=SBG_PERIODS), ref.shifted_bg.survival(t, *params, SBG_PERIODS),
                   f"survival(t={t}) at {params}")
            _close(sbg.churn_probability(t, *params, periods=SBG_PERIODS),
                   ref.shifted_bg.churn_probability(t, *params, SBG_PERIODS), f"churn_probability(t={t}) at {params}")
        for d in (0.1, 0.01):
            _close(sbg.discounted_expected_residual_lifetime(d, SBG_PERIODS, *params),
                   ref.shifted_bg.discounted_expected_residual_lifetime(d, SBG_PERIODS, *params), f"DERL(d={d}) at {params}")
            _close(sbg.discounted_expected_lifetime(d, *params), ref.shifted_bg.discounted_expected_lifetime(d, *params),
                   f"DEL(d={d}) at {params}")
        _close(sbg.expected_residual_lifetime(SBG_PERIODS, *params),
               ref.shifted_bg.expected_residual_lifetime(SBG_PERIODS, *params), f"expected_residual_lifetime at {params}")


def test_sbg_survival_is_the_summed_geometric():
    """S(t) = 1 - sum_{k<=t} P(T = k), the reference summing the pmf, and the retention rates are its ratios."""
    t = np.arange(1, 40, dtype=float)
    for params in ((0.704, 1.182), (0.668, 3.806), (5.0, 0.5)):
        _close(sbg.survival(t, *params), ref.shifted_bg.survival_by_sum(t, *params), f"S(t) at {params}", rtol=1e-10)
        surv = sbg.survival(np.r_[0.0, t], *params)
        np.testing.assert_allclose(sbg.retention_rate(t, *params), surv[1:] / surv[:-1], rtol=1e-12)
        np.testing.assert_allclose(sbg.churn_probability(t, *params), surv[:-1] - surv[1:], rtol=1e-10)
        d = 0.1
        np.testing.assert_allclose(sbg.discounted_expected_lifetime(d, *params),
                                   1.0 + sbg.discounted_expected_residual_lifetime(d, 0, *params) / (1 + d), rtol=1e-13)


def test_sbg_gradient():
    """PyTensor's derivative of the log-likelihood against central differences of the reference."""
    periods, churned = np.array([1.0, 3.0, 7.0, 7.0]), np.array([1.0, 1.0, 1.0, 0.0])
    params = [pt.dscalar("alpha"), pt.dscalar("beta")]
    total = sbg.loglik(periods, churned, *params).sum()
    f = pytensor.function(params, pytensor.grad(total, params))
    for base in ((0.704, 1.182), (1e-3, 1e3), (1e3, 1.0)):
        fd = []
        for i in range(2):
            up, down = list(base), list(base)
            up[i], down[i] = base[i] * np.exp(1e-5), base[i] * np.exp(-1e-5)
            fd.append((ref.shifted_bg.loglik(periods, churned, *up).sum()
                       - ref.shifted_bg.loglik(periods, churned, *down).sum()) / 2e-5)
        np.testing.assert_allclose(np.array(f(*base)) * base, fd, rtol=1e-5, atol=1e-8)


def test_sbg_summed_kernel_against_reference_and_gradient():
    """The summed kernel: its total equals the weighted reference log-likelihood over the extreme grid, one
    customer per row; with groups and weights, value and hand-derived gradient equal PyTensor's derivative of
    the per-row formula."""
    for params in SBG_EXTREME_PARAMS:
        for churned in (0.0, 1.0):
            want = ref.shifted_bg.loglik(SBG_PERIODS, churned, *params)
            got = [sbg.summed_loglik(sbg.loglik_tables([n], [churned], [1.0]), *params, xp=NP) for n in SBG_PERIODS]
            _close(got, want, f"summed kernel (churned={churned}) at {params}")
    rng = np.random.default_rng(5)
    periods = np.array([1, 1, 2, 3, 7, 7, 12, 100, 7, 2], dtype=float)
    churned = np.array([1, 0, 1, 1, 1, 0, 0, 1, 0, 1], dtype=float)
    group = np.array([0, 0, 1, 2, 0, 1, 2, 2, 0, 2])
    weight = rng.integers(1, 40, size=periods.size).astype(float)
    data = [pt.dvector(k) for k in ("n", "c", "w")] + [pt.lvector("g")]
    params = [pt.dvector(k) for k in sbg.PARAMETERS]
    total = (data[2] * sbg.loglik(data[0], data[1], *(p[data[3]] for p in params))).sum()
    f = pytensor.function(data + params, [total, *pytensor.grad(total, params)])
    # duplicated rows are merged into one table entry with their weights summed
    tables = sbg.loglik_tables(np.r_[periods, periods[:2]], np.r_[churned, churned[:2]], np.r_[weight, 1.0, 2.0],
                               np.r_[group, group[:2]])
    assert tables[0].size == periods.size
    weight[:2] += [1.0, 2.0]
    for base in ((0.704, 1.182), (1e-3, 1e3), (1e3, 1.0)):
        values = [np.asarray(base[k]) * np.exp(rng.normal(0, 0.3, size=3)) for k in range(2)]
        value, grad = sbg._summed_loglik_kernel(*values, *tables)
        want = f(periods, churned, weight, group, *values)
        assert value == pytest.approx(float(want[0]), rel=1e-12)
        np.testing.assert_allclose(grad, np.array(want[1:]), rtol=1e-8, atol=1e-9 * np.abs(want[0]))


def test_sbg_summed_op_runs_natively_in_numba():
    """The shifted-BG's summed op is the one with two parameters: its numba implementation (ADVI compiles
    the graph with the NUMBA linker) gives the Python ``perform``'s value and gradient, without object mode."""
    import warnings

    periods = np.array([1, 1, 2, 3, 7, 7, 12, 100, 7, 2], dtype=float)
    churned = np.array([1, 0, 1, 1, 1, 0, 0, 1, 0, 1], dtype=float)
    tables = sbg.loglik_tables(periods, churned, np.arange(1.0, 11.0), np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 1]))
    params = [pt.dvector(k) for k in sbg.PARAMETERS]
    total = sbg.summed_loglik(tables, *params)
    graph = [total, *pytensor.grad(total, params)]
    values = [np.array([0.704, 0.668]), np.array([1.182, 3.806])]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode")
        native = pytensor.function(params, graph, mode="NUMBA")(*values)
    python = pytensor.function(params, graph, mode=pytensor.compile.mode.Mode(linker="py"))(*values)
    for fast, slow in zip(native, python, strict=True):
        np.testing.assert_allclose(fast, slow, rtol=1e-13)
    assert float(native[0]) == pytest.approx(float(sbg._summed_loglik_kernel(*values, *tables)[0]), rel=1e-13)


def test_sbg_simulators():
    params, size = (0.668, 3.806), 200_000
    sim = sbg.simulate_population(np.full(size, 7.0), *params, rng=3)
    n = np.r_[np.arange(1, 8), 7.0]
    churned = np.r_[np.ones(7), 0.0]
    prob = np.exp(sbg.loglik(n, churned, *params, xp=NP))
    cell = np.where(sim["churned"] > 0, sim["periods"] - 1, 7).astype(int)
    counts = np.bincount(cell, minlength=8)
    assert np.all(np.abs(counts - size * prob) <= 5 * np.sqrt(size * prob * (1 - prob)))
    residual = sbg.simulate_residual_lifetime(np.full(size, 7.0), 2.5, 3.8, rng=4)
    mean = sbg.expected_residual_lifetime(7, 2.5, 3.8)
    assert residual.mean() == pytest.approx(mean, abs=5 * residual.std() / np.sqrt(size))
    first = np.bincount(np.minimum(residual, 6).astype(int), minlength=7)[1:6]
    want = size * sbg.churn_probability(np.arange(1, 6), 2.5, 3.8, periods=7)
    assert np.all(np.abs(first - want) <= 5 * np.sqrt(want))


def test_sbg_bad_arguments():
    with pytest.raises(ValueError, match="t >= 1"):
        sbg.retention_rate(0, 1.0, 1.0)
    with pytest.raises(ValueError, match="whole numbers"):
        sbg.survival(1.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="d must be > 0"):
        sbg.discounted_expected_lifetime(-0.1, 1.0, 1.0)
