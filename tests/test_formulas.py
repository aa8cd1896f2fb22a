"""bayesclv.formulas against the independent references of tests/reference.py.

The references integrate the individual-level models numerically over the latent
variables (scipy.integrate.quad, log space) and, for the Pareto/NBD likelihood, also
evaluate the Gauss-hypergeometric closed form with mpmath at 50 digits.  Tolerances:
rtol 1e-6 (or atol 1e-6 on the log scale) for log-likelihoods, rtol 1e-6 for predictive
quantities, rtol 1e-4 for gradients against central finite differences of the reference.
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import optimize

from bayesclv.formulas import bgnbd, gammagamma, paretonbd
from bayesclv.formulas._beta_expectations import over_horizons

try:  # tests/ as a package or as a plain directory on sys.path
    from . import reference as ref
except ImportError:  # pragma: no cover
    import reference as ref

# --------------------------------------------------------------------------------------
# parameters and inputs
# --------------------------------------------------------------------------------------
BG_MLE = (0.2426, 4.414, 0.793, 2.426)  # FHL (2005), CDNOW sample, weeks
PN_MLE = (0.553, 10.578, 0.606, 11.669)  # Fader & Hardie, CDNOW sample, weeks
GG_MLE = (6.25, 3.74, 15.44)  # FHL (2005) "RFM and CLV", 946 repeat buyers
BG_LL_PUBLISHED = -9582.43
PN_LL_PUBLISHED = -9594.98

MODELS = {
    "bgnbd": (bgnbd, ref.bgnbd, ("r", "alpha", "a", "b"), BG_MLE),
    "paretonbd": (paretonbd, ref.paretonbd, ("r", "alpha", "s", "beta"), PN_MLE),
}
COUNT_MODELS = list(MODELS)

EXTREME_VALUES = (1e-3, 1.0, 1e3)
EXTREME_PARAMS = list(itertools.product(EXTREME_VALUES, repeat=4))  # 81 combinations
GG_EXTREME_PARAMS = list(itertools.product(EXTREME_VALUES, repeat=3))

# (x, t_x, T): x up to 500, T up to 1000, t_x from 0 to T
EXTREME_HISTORIES = np.array(
    [
        (0, 0, 0.01),
        (0, 0, 1000),
        (1, 0, 1000),
        (1, 500, 1000),
        (1, 1000, 1000),
        (3, 2, 2.5),
        (30, 1, 78),
        (500, 0, 1000),
        (500, 1, 1000),
        (500, 999.99, 1000),
        (500, 1000, 1000),
        (500, 10, 10),
    ],
    dtype=float,
)
PRED_EXTREME_HISTORIES = EXTREME_HISTORIES[[1, 3, 5, 6, 9, 11]]
GG_EXTREME_HISTORIES = np.array(
    [(1, 1e-3), (1, 1e3), (2, 35.5), (30, 50), (500, 1e-2), (500, 1e3)], dtype=float
)


def _ordinary_histories():
    rows = [(0.0, 0.0, T) for T in (1.0, 10.0, 39.0, 78.0)]
    for x, T, f in itertools.product((1, 2, 5, 10, 30), (1.0, 10.0, 39.0, 78.0), (0, 0.3, 0.9, 1)):
        rows.append((float(x), f * T, T))
    return np.array(rows)


ORDINARY = _ordinary_histories()
ORDINARY_T = np.array([1.0, 10.0, 52.0])
ORDINARY_N = np.array([0, 1, 2, 5, 10])


def _random_extremes(n=150, seed=20240601):
    """Seeded log-uniform draws: parameters in [1e-3, 1e3], x in 0..500, T in [0.01, 1000]."""
    rng = np.random.default_rng(seed)
    params = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=(n, 4)))
    x = np.floor(np.exp(rng.uniform(0, np.log(501), size=n))) - 1
    x[: n // 10] = 0
    T = np.exp(rng.uniform(np.log(0.01), np.log(1000), size=n))
    tx = np.where(x > 0, rng.uniform(0, 1, size=n) * T, 0.0)
    return params, np.column_stack([x, tx, T])


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _assert_close(got, want, inputs, *, rtol, atol, what, names):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    got, want = np.broadcast_arrays(got, want)
    ok = np.isfinite(got) & (np.abs(got - want) <= atol + rtol * np.abs(want))
    ok |= (got == want) & np.isinf(want)
    if ok.all():
        return
    bad = np.flatnonzero(~ok.ravel())
    err = np.abs(got - want).ravel() / (atol + rtol * np.abs(want).ravel())
    bad = bad[np.argsort(-np.nan_to_num(err[bad], nan=np.inf))]
    inputs = np.asarray(inputs, dtype=float).reshape(got.size, -1)
    lines = [
        f"  {dict(zip(names, map(float, inputs[i])))}: expected {want.ravel()[i]!r}, "
        f"got {got.ravel()[i]!r}"
        for i in bad[:12]
    ]
    pytest.fail(
        f"{what}: {len(bad)} of {got.size} cases differ (rtol={rtol}, atol={atol}):\n"
        + "\n".join(lines),
        pytrace=False,
    )


@functools.lru_cache(maxsize=None)
def _compiled_loglik(model):
    """Compiled (data..., params...) -> (per-customer ll, d sum(ll) / d params), per model."""
    if model == "gammagamma":
        mod, names = gammagamma, ("p", "q", "gamma")
        data = [pt.dvector("frequency"), pt.dvector("monetary_value")]
    else:
        mod, _, names, _ = MODELS[model]
        data = [pt.dvector("frequency"), pt.dvector("recency"), pt.dvector("T")]
    params = [pt.dscalar(n) for n in names]
    ll = pt.as_tensor_variable(mod.loglik(*data, *params))
    ll = pt.broadcast_to(ll, data[0].shape)
    grads = pytensor.grad(ll.sum(), params)
    return pytensor.function(data + params, [ll, *grads])


def _lib_loglik(model, data, params):
    out = _compiled_loglik(model)(*[np.asarray(d, dtype=float) for d in data], *map(float, params))
    return np.asarray(out[0]), np.array([float(g) for g in out[1:]])


def _grid_rows(param_list, histories):
    """All (params, history) combinations as one table."""
    P = np.repeat(np.asarray(param_list, dtype=float), len(histories), axis=0)
    H = np.tile(histories, (len(param_list), 1))
    return P, H


HIST_NAMES = ("x", "t_x", "T")


# --------------------------------------------------------------------------------------
# data: CDNOW sample RFM (computed here from the raw transactions)
# --------------------------------------------------------------------------------------
def _cdnow_rows():
    here = Path(__file__).resolve().parent
    for base in (here.parent / "shared", here.parent.parent / "shared"):
        path = base / "data" / "CDNOW_sample.txt"
        if path.exists():
            return ref.read_cdnow_sample(path)
    from bayesclv.datasets import load_cdnow

    df = load_cdnow("sample")
    return [
        (int(c), d.date(), float(v))
        for c, d, v in zip(df["customer_id"], df["date"], df["value"], strict=True)
    ]


@pytest.fixture(scope="module")
def cdnow():
    ids, x, tx, T, m = ref.cdnow_rfm(_cdnow_rows())
    return {"x": x, "tx": tx, "T": T, "m": m}


def test_cdnow_rfm_fixture(cdnow):
    x = cdnow["x"]
    assert x.size == 2357
    assert (x == 0).sum() == 1411
    assert x.sum() == 2457
    assert (x > 0).sum() == 946
    assert np.all((cdnow["tx"] <= cdnow["T"]) & (cdnow["T"] <= 39))


# --------------------------------------------------------------------------------------
# published values
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model,published", [("bgnbd", BG_LL_PUBLISHED), ("paretonbd", PN_LL_PUBLISHED)]
)
def test_published_loglik_cdnow(cdnow, model, published):
    _, refmod, names, mle = MODELS[model]
    data = (cdnow["x"], cdnow["tx"], cdnow["T"])
    ll, grad = _lib_loglik(model, data, mle)
    want = refmod.loglik(*data, *mle)
    assert abs(want.sum() - published) < 5e-3  # the reference reproduces the paper
    assert abs(ll.sum() - published) < 5e-3
    _assert_close(
        ll, want, np.column_stack(data), rtol=1e-6, atol=1e-6, what=f"{model} CDNOW loglik",
        names=HIST_NAMES,
    )
    # the published parameters are (rounded) maximum-likelihood estimates
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_published_mle_cdnow(cdnow, model):
    """Maximising the library's log-likelihood (with its gradient) recovers the published MLE."""
    _, _, _, mle = MODELS[model]
    data = (cdnow["x"], cdnow["tx"], cdnow["T"])

    def f(theta):
        params = np.exp(theta)
        ll, g = _lib_loglik(model, data, params)
        return -ll.sum(), -g * params

    res = optimize.minimize(f, np.log(mle) + 0.3, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000})
    tol = 2e-3 if model == "bgnbd" else 1e-2
    np.testing.assert_allclose(np.exp(res.x), mle, rtol=tol)
    published = BG_LL_PUBLISHED if model == "bgnbd" else PN_LL_PUBLISHED
    assert abs(-res.fun - published) < 5e-3


def test_published_gammagamma_cdnow(cdnow):
    sel = cdnow["x"] > 0
    data = (cdnow["x"][sel], cdnow["m"][sel])
    ll, _ = _lib_loglik("gammagamma", data, GG_MLE)
    want = ref.gammagamma.loglik(*data, *GG_MLE)
    _assert_close(ll, want, np.column_stack(data), rtol=1e-6, atol=1e-6,
                  what="Gamma-Gamma CDNOW loglik", names=("x", "mbar"))

    def f(theta):
        params = np.exp(theta)
        ll, g = _lib_loglik("gammagamma", data, params)
        return -ll.sum(), -g * params

    res = optimize.minimize(f, np.log(GG_MLE) + 0.2, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000})
    np.testing.assert_allclose(np.exp(res.x), GG_MLE, rtol=2e-3)


# --------------------------------------------------------------------------------------
# log-likelihoods: ordinary inputs, extreme grid, seeded random extremes
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", COUNT_MODELS)
def test_loglik_ordinary(model):
    _, refmod, names, mle = MODELS[model]
    H = ORDINARY
    ll, _ = _lib_loglik(model, H.T, mle)
    want = refmod.loglik(*H.T, *mle)
    _assert_close(ll, want, H, rtol=1e-6, atol=0.0, what=f"{model} loglik (ordinary)",
                  names=HIST_NAMES)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_loglik_extreme_grid(model):
    _, refmod, names, _ = MODELS[model]
    got, want, inputs = [], [], []
    for params in EXTREME_PARAMS:
        ll, grad = _lib_loglik(model, EXTREME_HISTORIES.T, params)
        got.append(ll)
        want.append(refmod.loglik(*EXTREME_HISTORIES.T, *params))
        inputs.append(np.column_stack([EXTREME_HISTORIES, np.tile(params, (len(ll), 1))]))
    _assert_close(np.concatenate(got), np.concatenate(want), np.concatenate(inputs),
                  rtol=1e-6, atol=1e-6, what=f"{model} loglik (extreme grid)",
                  names=HIST_NAMES + names)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_loglik_random_extremes(model):
    _, refmod, names, _ = MODELS[model]
    params, H = _random_extremes()
    got = np.array([_lib_loglik(model, h[:, None], p)[0][0] for p, h in zip(params, H)])
    want = refmod.loglik(*H.T, *params.T)
    _assert_close(got, want, np.column_stack([H, params]), rtol=1e-6, atol=1e-6,
                  what=f"{model} loglik (random extremes)", names=HIST_NAMES + names)


def test_paretonbd_loglik_mpmath_extremes():
    """Pareto/NBD at the extreme grid: the quadrature reference and the library against the
    50-digit hypergeometric closed form."""
    H = EXTREME_HISTORIES[[1, 3, 4, 6, 8, 9]]
    P, HH = _grid_rows(EXTREME_PARAMS, H)
    want = ref.paretonbd.loglik_mpmath(*HH.T, *P.T)
    quad = ref.paretonbd.loglik(*HH.T, *P.T)
    names = HIST_NAMES + MODELS["paretonbd"][2]
    _assert_close(quad, want, np.column_stack([HH, P]), rtol=1e-9, atol=1e-9,
                  what="reference quadrature vs mpmath", names=names)
    got = np.concatenate([_lib_loglik("paretonbd", H.T, p)[0] for p in EXTREME_PARAMS])
    _assert_close(got, want, np.column_stack([HH, P]), rtol=1e-6, atol=1e-6,
                  what="paretonbd loglik vs mpmath", names=names)


def test_gammagamma_loglik_extremes():
    got, want, inputs = [], [], []
    for params in GG_EXTREME_PARAMS:
        ll, _ = _lib_loglik("gammagamma", GG_EXTREME_HISTORIES.T, params)
        got.append(ll)
        want.append(ref.gammagamma.loglik(*GG_EXTREME_HISTORIES.T, *params))
        inputs.append(np.column_stack([GG_EXTREME_HISTORIES, np.tile(params, (len(ll), 1))]))
    _assert_close(np.concatenate(got), np.concatenate(want), np.concatenate(inputs),
                  rtol=1e-6, atol=1e-6, what="gammagamma loglik (extremes)",
                  names=("x", "mbar", "p", "q", "gamma"))


# --------------------------------------------------------------------------------------
# gradients: pytensor.grad vs central finite differences of the reference
# --------------------------------------------------------------------------------------
def _fd_log_grad(fun, params, eps=1e-5):
    """d fun / d log(theta_i) by central differences in log(theta)."""
    out = []
    for i in range(len(params)):
        up = list(params)
        dn = list(params)
        up[i] = params[i] * math.exp(eps)
        dn[i] = params[i] * math.exp(-eps)
        out.append((fun(up) - fun(dn)) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("model", COUNT_MODELS + ["gammagamma"])
def test_gradients_extremes(model):
    if model == "gammagamma":
        refmod, names, H = ref.gammagamma, ("p", "q", "gamma"), GG_EXTREME_HISTORIES
        plist = GG_EXTREME_PARAMS
    else:
        _, refmod, names, mle = MODELS[model]
        H = EXTREME_HISTORIES[[0, 2, 3, 5, 6, 9]]
        plist = EXTREME_PARAMS + [mle]
    got, want, inputs = [], [], []
    for params in plist:
        _, grad = _lib_loglik(model, H.T, params)
        fd = _fd_log_grad(lambda p: float(refmod.loglik(*H.T, *p).sum()), params)
        got.append(grad * np.asarray(params))  # d/d log(theta)
        want.append(fd)
        inputs.append(np.column_stack([np.tile(params, (len(names), 1)), np.arange(len(names))]))
    _assert_close(np.concatenate(got), np.concatenate(want), np.concatenate(inputs),
                  rtol=1e-4, atol=1e-5, what=f"{model} d sum(loglik) / d log(param)",
                  names=names + ("param_index",))


# --------------------------------------------------------------------------------------
# predictive quantities
# --------------------------------------------------------------------------------------
PRED_RTOL, PRED_ATOL = 1e-6, 1e-12


def _pred_cases(model, params_list, H, ts, ns):
    """Library vs reference for all predictive functions over params x histories x t (x n)."""
    lib, refmod, names, _ = MODELS[model]
    P, HH = _grid_rows(params_list, H)
    pa_in = np.column_stack([HH, P])
    _assert_close(lib.probability_alive(*HH.T, *P.T), refmod.probability_alive(*HH.T, *P.T),
                  pa_in, rtol=PRED_RTOL, atol=PRED_ATOL, what=f"{model}.probability_alive",
                  names=HIST_NAMES + names)
    t = np.repeat(ts, len(P))
    PT_, HT = np.tile(P, (len(ts), 1)), np.tile(HH, (len(ts), 1))
    tin = np.column_stack([t, HT, PT_])
    tnames = ("t",) + HIST_NAMES + names
    _assert_close(lib.expected_purchases(t, *HT.T, *PT_.T),
                  refmod.expected_purchases(t, *HT.T, *PT_.T), tin, rtol=PRED_RTOL,
                  atol=PRED_ATOL, what=f"{model}.expected_purchases", names=tnames)
    _assert_close(lib.probability_alive_at(t, *HT.T, *PT_.T),
                  refmod.probability_alive_at(t, *HT.T, *PT_.T), tin, rtol=PRED_RTOL,
                  atol=PRED_ATOL, what=f"{model}.probability_alive_at", names=tnames)
    n = np.repeat(ns, len(t))
    tn, HN, PN = np.tile(t, len(ns)), np.tile(HT, (len(ns), 1)), np.tile(PT_, (len(ns), 1))
    _assert_close(lib.probability_of_purchases(n, tn, *HN.T, *PN.T),
                  refmod.probability_of_purchases(n, tn, *HN.T, *PN.T),
                  np.column_stack([n, tn, HN, PN]), rtol=PRED_RTOL, atol=PRED_ATOL,
                  what=f"{model}.probability_of_purchases", names=("n",) + tnames)
    Pn = np.array(params_list, dtype=float)
    tt = np.repeat(ts, len(Pn))
    Pt = np.tile(Pn, (len(ts), 1))
    _assert_close(lib.expected_purchases_new_customer(tt, *Pt.T),
                  refmod.expected_purchases_new_customer(tt, *Pt.T),
                  np.column_stack([tt, Pt]), rtol=PRED_RTOL, atol=PRED_ATOL,
                  what=f"{model}.expected_purchases_new_customer", names=("t",) + names)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_predictive_ordinary(model):
    _pred_cases(model, [MODELS[model][3]], ORDINARY, ORDINARY_T, ORDINARY_N)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_predictive_extremes(model):
    _pred_cases(model, EXTREME_PARAMS, PRED_EXTREME_HISTORIES, np.array([1.0, 1000.0]),
                np.array([0, 1, 7]))


def test_bgnbd_predictive_near_a_one():
    """a at and around 1, where the closed form of the expected purchases divides by a - 1."""
    a_values = (1.0 - 1e-2, 1.0 - 1e-9, 1.0, 1.0 + 1e-7, 1.0 + 1e-4)
    params = [(r, alpha, a, b) for r, alpha, b in itertools.product((1e-3, 1.0, 1e3), repeat=3)
              for a in a_values]
    _pred_cases("bgnbd", params, PRED_EXTREME_HISTORIES[[0, 2, 5]], np.array([1.0, 1000.0]),
                np.array([0, 1]))


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_predictive_random_extremes(model):
    """Seeded random parameters, histories, horizons and counts (see _random_extremes)."""
    lib, refmod, names, _ = MODELS[model]
    params, H = _random_extremes(n=60, seed=20240917)
    rng = np.random.default_rng(20240918)
    t = np.exp(rng.uniform(np.log(1e-2), np.log(1e3), size=len(H)))
    n = rng.choice([0, 1, 7], size=len(H)).astype(float)
    args = (t, *H.T, *params.T)
    inputs = np.column_stack([t, H, params])
    tnames = ("t",) + HIST_NAMES + names
    for fn in ("expected_purchases", "probability_alive_at"):
        _assert_close(getattr(lib, fn)(*args), getattr(refmod, fn)(*args), inputs, rtol=PRED_RTOL,
                      atol=PRED_ATOL, what=f"{model}.{fn} (random extremes)", names=tnames)
    _assert_close(lib.probability_of_purchases(n, *args), refmod.probability_of_purchases(n, *args),
                  np.column_stack([n, inputs]), rtol=PRED_RTOL, atol=PRED_ATOL,
                  what=f"{model}.probability_of_purchases (random extremes)", names=("n",) + tnames)
    _assert_close(lib.expected_purchases_new_customer(t, *params.T),
                  refmod.expected_purchases_new_customer(t, *params.T), np.column_stack([t, params]),
                  rtol=PRED_RTOL, atol=PRED_ATOL,
                  what=f"{model}.expected_purchases_new_customer (random extremes)", names=("t",) + names)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_predictive_broadcast_matches_elementwise(model):
    """(draws, 1) parameters against (customers,) histories, as in model predictions: draws whose
    elements take the closed forms and draws that need the fallbacks (a == 1, b = 1e3 with a long
    horizon) give the values of scalar calls, element by element."""
    lib, _, _, mle = MODELS[model]
    P = np.array([mle, (mle[0], mle[1], 1.0, mle[3]), (1e-3, 1.0, 1e-3, 1e3), (1.0, 1.0, 1.0, 1e3)])
    H = np.vstack([ORDINARY[::5], PRED_EXTREME_HISTORIES])
    draws = [p[:, None] for p in P.T]
    for t in (1.0, 1000.0):
        quantities = {
            "expected_purchases": lambda h, p, t=t: lib.expected_purchases(t, *h, *p),
            "probability_alive_at": lambda h, p, t=t: lib.probability_alive_at(t, *h, *p),
            "probability_of_purchases": lambda h, p, t=t: lib.probability_of_purchases(1, t, *h, *p),
        }
        for fn, f in quantities.items():
            got = f(H.T, draws)
            want = np.array([[float(f(h, p)) for h in H] for p in P])
            assert got.shape == (len(P), len(H))
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=0, err_msg=f"{model}.{fn}, t={t}")
        new = lib.expected_purchases_new_customer(np.array([t, 2 * t]), *draws)
        assert new.shape == (len(P), 2)
        np.testing.assert_allclose(new[:, 0], [lib.expected_purchases_new_customer(t, *p) for p in P],
                                   rtol=1e-13)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_discounted_expected_purchases_equal_the_discounted_increments(model):
    """The present value over 12 horizons (one series per element for the BG/NBD) against the
    expected purchases horizon by horizon: random extremes (many elements fall back to the
    per-horizon path) and CDNOW-like draws (nearly all on the shared series)."""
    from bayesclv.formulas._ops import discounted_increments

    lib, _, names, mle = MODELS[model]
    ends = 4.348 * np.arange(1.0, 13.0)
    factors = 1.01 ** -np.arange(1.0, 13.0)
    params, H = _random_extremes(n=400, seed=20241201)
    rng = np.random.default_rng(20241202)
    like = np.array(mle) * np.exp(rng.normal(0.0, 0.1, size=(400, 4)))
    ordinary = ORDINARY[rng.integers(0, len(ORDINARY), size=400)]
    for P, hist in ((params, H), (like, ordinary)):
        for given_alive in (True, False):
            got = lib.discounted_expected_purchases(ends, factors, *hist.T, *P.T, given_alive=given_alive)
            want = discounted_increments(
                lambda t, P=P, hist=hist, g=given_alive: lib.expected_purchases(t, *hist.T, *P.T, given_alive=g),
                ends, factors)
            _assert_close(got, want, np.column_stack([hist, P]), rtol=1e-9, atol=1e-12,
                          what=f"{model}.discounted_expected_purchases", names=HIST_NAMES + names)
    if model == "bgnbd":  # both paths were taken
        rho, a, B = like[:, 0] + ordinary[:, 0], like[:, 2], like[:, 3] + ordinary[:, 0]
        out, ok = np.empty(400), np.ones(400, dtype=bool)
        over_horizons(rho, a, B, 1.0 / (like[:, 1] + ordinary[:, 2]), ends, factors, out, ok, False)
        assert ok.mean() > 0.9
        out, ok = np.empty(400), np.ones(400, dtype=bool)
        over_horizons(params[:, 0] + H[:, 0], params[:, 2], params[:, 3] + H[:, 0],
                      1.0 / (params[:, 1] + H[:, 2]), ends, factors, out, ok, False)
        assert 0.05 < ok.mean() < 0.95


def test_gammagamma_expected_spend():
    names = ("x", "mbar", "p", "q", "gamma")
    # ordinary
    x = np.array([0, 1, 2, 5, 10, 30, 1, 3], dtype=float)
    m = np.array([0, 10.0, 35.5, 50.0, 1.0, 200.0, 1e3, 27.3])
    want = ref.gammagamma.expected_spend(x, m, *GG_MLE)
    _assert_close(gammagamma.expected_spend(x, m, *GG_MLE), want,
                  np.column_stack([x, m, np.tile(GG_MLE, (len(x), 1))]), rtol=1e-6, atol=0,
                  what="gammagamma.expected_spend (ordinary)", names=names)
    assert gammagamma.expected_spend(0, 0, *GG_MLE) == pytest.approx(
        GG_MLE[0] * GG_MLE[2] / (GG_MLE[1] - 1), rel=1e-12)
    # extremes, where the posterior mean exists (p x + q > 1)
    P, H = _grid_rows(GG_EXTREME_PARAMS, GG_EXTREME_HISTORIES)
    keep = P[:, 0] * H[:, 0] + P[:, 1] > 1
    P, H = P[keep], H[keep]
    _assert_close(gammagamma.expected_spend(*H.T, *P.T), ref.gammagamma.expected_spend(*H.T, *P.T),
                  np.column_stack([H, P]), rtol=1e-6, atol=0,
                  what="gammagamma.expected_spend (extremes)", names=names)


# --------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------
def test_bgnbd_alive_without_repeat_purchases():
    P, H = _grid_rows(EXTREME_PARAMS + [BG_MLE], np.array([[0, 0, 0.01], [0, 0, 39], [0, 0, 1e3]]))
    np.testing.assert_allclose(bgnbd.probability_alive(*H.T, *P.T), 1.0, rtol=1e-12)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_probability_of_purchases_sums_to_one_and_mean(model):
    lib, _, _, mle = MODELS[model]
    cases = [(mle, 1.0), (mle, 52.0), ((2.0, 0.5, 0.3, 5.0), 52.0), ((2.0, 3.0, 0.3, 0.5), 52.0),
             ((1e-3,) * 4, 1.0), ((5.0, 1e3, 1e3, 1e-3), 1.0), ((5.0, 1e3, 1e3, 1e-3), 52.0)]
    H = np.vstack([ORDINARY[::7], [[500, 999.99, 1000]]])
    n = np.arange(0, 3001)[:, None]
    for params, t in cases:
        prob = lib.probability_of_purchases(n, t, *H.T, *params)
        assert np.all(np.isfinite(prob)) and np.all(prob >= -1e-15), (params, t)
        total = prob.sum(axis=0)
        mean = (n * prob).sum(axis=0)
        expected = lib.expected_purchases(t, *H.T, *params)
        inp = np.column_stack([H, np.tile(params, (len(H), 1))])
        _assert_close(total, 1.0, inp, rtol=0, atol=1e-9, what=f"{model} sum_n P(n), t={t}",
                      names=HIST_NAMES + MODELS[model][2])
        _assert_close(mean, expected, inp, rtol=1e-6, atol=1e-12,
                      what=f"{model} sum_n n P(n) vs expected_purchases, t={t}",
                      names=HIST_NAMES + MODELS[model][2])


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_time_zero_and_new_customer_identities(model):
    lib, _, names, mle = MODELS[model]
    H = ORDINARY
    np.testing.assert_allclose(lib.probability_alive_at(0.0, *H.T, *mle),
                               lib.probability_alive(*H.T, *mle), rtol=1e-12)
    np.testing.assert_allclose(lib.expected_purchases(0.0, *H.T, *mle), 0.0, atol=1e-300)
    # a customer acquired at time 0 and observed for T=0 is a new customer
    t = np.array([0.5, 1.0, 10.0, 52.0, 1000.0])
    np.testing.assert_allclose(lib.expected_purchases(t, 0.0, 0.0, 0.0, *mle),
                               lib.expected_purchases_new_customer(t, *mle), rtol=1e-10)
