"""Static covariates on the pooled BG/NBD and Pareto/NBD: likelihood, recovery, bad input, key drivers, save/load."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy.special import digamma, expit, gammaln

import bayesclv as bc
import reference
from bayesclv.errors import DataValidationError
from bayesclv.formulas import NP, PT, bgnbd, paretonbd
from bayesclv.formulas._covariate_summed import bgnbd_kernel, paretonbd_kernel
from bayesclv.formulas._lane_math import lane_exp, lane_log
from bayesclv.formulas._lifetime_integral import log_piecewise_integral
from bayesclv.formulas._lifetime_lanes import LIFETIME_WORK_ROWS, RULES, block_layout, lane_lifetime_integral

FAMILIES = {
    # class, point (population parameters at average covariates and coefficients per sd), reference, sampled
    "bgnbd": (bc.BetaGeoModel, {"r": 0.6, "alpha": 5.0, "a": 0.9, "b": 3.0, "purchase_coef": [0.4, -0.2],
                                "dropout_coef_a": [0.3, 0.1], "dropout_coef_b": [-0.25, 0.2]}, reference.bgnbd),
    "paretonbd": (bc.ParetoNBDModel, {"r": 0.6, "alpha": 5.0, "s": 0.8, "beta": 12.0, "purchase_coef": [0.4, -0.2],
                                      "dropout_coef": [-0.3, 0.25]}, reference.paretonbd),
}


def _with_covariates(rfm: pd.DataFrame, step: int = 40) -> pd.DataFrame:
    df = rfm.iloc[::step].reset_index(drop=True)
    rng = np.random.default_rng(3)
    df["age"] = rng.normal(40.0, 12.0, len(df)).round(1)
    df["email"] = (rng.random(len(df)) < 0.4).astype(float)
    df.attrs = dict(rfm.attrs)
    return df


def _set_posterior(model, point: dict, chains: int = 1, draws: int = 1) -> None:
    """Give a fitted model a posterior of ``chains x draws`` copies of ``point``."""
    post = {}
    for name, value in point.items():
        value = np.asarray(value, dtype=float)
        dims = ("chain", "draw") + ((f"{model.covariate_targets[name].process}_covariate",) if value.ndim else ())
        post[name] = (dims, np.broadcast_to(value, (chains, draws, *value.shape)).copy())
    coords = {f"{p}_covariate": c for p, c in model.process_covariates.items()}
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords=coords)})


def _implied(model, point: dict, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each customer's parameters, written out from the parameterisation (not through the model's code)."""
    z = (df[["age", "email"]].to_numpy() - df[["age", "email"]].mean().to_numpy()) / df[["age", "email"]].std().to_numpy()
    out = {n: np.full(len(df), float(point[n])) for n in model.parameter_names}
    out["alpha"] = point["alpha"] * np.exp(-z @ np.asarray(point["purchase_coef"]))
    if "dropout_coef" in point:
        out["beta"] = point["beta"] * np.exp(-z @ np.asarray(point["dropout_coef"]))
    else:
        out["a"] = point["a"] * np.exp(z @ np.asarray(point["dropout_coef_a"]))
        out["b"] = point["b"] * np.exp(z @ np.asarray(point["dropout_coef_b"]))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_likelihood_with_covariates_is_the_pooled_likelihood_at_each_customers_parameters(family, cdnow_rfm):
    cls, point, ref = FAMILIES[family]
    df = _with_covariates(cdnow_rfm)
    model = cls(covariates=["age", "email"])
    graph = model.build_model(df)
    # reference: the independent quadrature likelihood at each customer's implied parameters
    implied = _implied(model, point, df)
    expected = ref.loglik(df["frequency"], df["recency"], df["T"], *(implied[n] for n in model.parameter_names))
    # the graph's likelihood term (the per-row PyTensor formula) at the point
    values = {"r": point["r"], "alpha": point["alpha"], **{k: np.asarray(v) for k, v in point.items() if "coef" in k}}
    if family == "paretonbd":
        values.update(dropout_mean=point["s"] / point["beta"], dropout_cv2=1.0 / point["s"])
    else:  # sampled as pairs: (a, b) as mean and concentration, the dropout coefficients as difference and mean
        values.update({"a_b": [point["a"], point["b"]],
                       "dropout_coef_a_dropout_coef_b": np.stack([point["dropout_coef_a"], point["dropout_coef_b"]], -1)})
    inputs = {graph.rvs_to_values[rv]: rv for rv in graph.free_RVs}
    term = graph.replace_rvs_by_values([graph["loglik"]])[0]
    fn = graph.compile_fn(term, inputs=list(inputs), point_fn=False)
    args = {}
    for vv, rv in inputs.items():
        transform = graph.rvs_to_transforms[rv]
        value = np.asarray(values[rv.name], dtype=float)
        args[vv.name] = transform.forward(value, *rv.owner.inputs).eval() if transform is not None else value
    assert float(fn(**args)) == pytest.approx(float(np.sum(expected)), rel=1e-9)
    # the pointwise log-likelihood of a fitted model (the NumPy path) customer by customer
    model.data, model.time_unit, model.fit_method = df, df.attrs["time_unit"], "nuts"
    model._set_fit_state(df)
    _set_posterior(model, point)
    pointwise = model.log_likelihood().values[0, 0]
    np.testing.assert_allclose(pointwise, expected, rtol=1e-9, atol=1e-10)


def _kernel_rows(seed: int, n: int = 300) -> dict:
    """Rows with weights, three groups, two purchase and one dropout covariate, and the extremes: no repeat
    purchase, ``x`` beyond the product form (40, 500), ``T`` = 1,000, ``t_x == T``."""
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, n).astype(float) * (rng.random(n) < 0.6)
    T = rng.uniform(5.0, 80.0, n)
    t = np.where(x > 0, T * rng.random(n), 0.0)
    x[:4], t[:4], T[:4] = [40.0, 500.0, 500.0, 3.0], [60.0, 900.0, 1000.0, 70.0], [70.0, 1000.0, 1000.0, 70.0]
    return {"x": x, "t": t, "T": T, "w": rng.integers(1, 4, n).astype(float), "group": rng.integers(0, 3, n),
            "zp": rng.standard_normal((n, 2)), "zd": rng.standard_normal((n, 1))}


KERNELS = {
    # formula module, parameters per group, coefficients, each row's parameters from them
    "bgnbd": (bgnbd, {"r": [0.6, 0.3, 1.2], "alpha": [5.0, 2.0, 9.0], "a": [0.9, 0.4, 2.0], "b": [3.0, 1.5, 0.7]},
              {"purchase_coef": [0.4, -0.2], "dropout_coef_a": [0.3], "dropout_coef_b": [-0.5]},
              lambda p, c, d: {"r": p["r"], "alpha": p["alpha"] * np.exp(-d["zp"] @ c["purchase_coef"]),
                               "a": p["a"] * np.exp(d["zd"] @ c["dropout_coef_a"]),
                               "b": p["b"] * np.exp(d["zd"] @ c["dropout_coef_b"])}),
    "paretonbd": (paretonbd, {"r": [0.6, 0.3, 1.2], "alpha": [5.0, 2.0, 9.0], "s": [0.8, 0.4, 2.0],
                              "beta": [12.0, 3.0, 40.0]},
                  {"purchase_coef": [0.4, -0.2], "dropout_coef": [-0.3]},
                  lambda p, c, d: {"r": p["r"], "alpha": p["alpha"] * np.exp(-d["zp"] @ c["purchase_coef"]),
                                   "s": p["s"], "beta": p["beta"] * np.exp(-d["zd"] @ c["dropout_coef"])}),
}


def _kernel_total(family: str, params: dict, coefs: dict, rows: dict) -> float:
    module = KERNELS[family][0]
    tables = module.covariate_loglik_tables(rows["x"], rows["t"], rows["T"], rows["w"], rows["zp"], rows["zd"],
                                            group=rows["group"])
    return module.covariate_summed_loglik(tables, *(np.asarray(v, dtype=float) for v in params.values()),
                                          *(np.asarray(v, dtype=float) for v in coefs.values()), xp=NP)


@pytest.mark.parametrize("family", KERNELS)
def test_covariate_kernel_is_the_weighted_per_row_likelihood_with_groups_and_extremes(family):
    module, params, coefs, implied = KERNELS[family]
    rows = _kernel_rows(5)
    by_row = implied({k: np.asarray(v)[rows["group"]] for k, v in params.items()},
                     {k: np.asarray(v) for k, v in coefs.items()}, rows)
    per_row = module.loglik(rows["x"], rows["t"], rows["T"], *by_row.values(), xp=NP)
    assert np.isfinite(per_row).all()
    total = _kernel_total(family, params, coefs, rows)
    assert total == pytest.approx(float(np.sum(rows["w"] * per_row)), rel=1e-10)


@pytest.mark.parametrize("family", KERNELS)
def test_covariate_kernel_gradient_matches_finite_differences(family):
    module, params, coefs, _ = KERNELS[family]
    rows = {k: v[:60] for k, v in _kernel_rows(7).items()}
    values = {**params, **coefs}
    sizes = [len(v) for v in values.values()]
    flat = np.concatenate([np.asarray(v, dtype=float) for v in values.values()])

    def total(theta):
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        named = dict(zip(values, parts, strict=True))
        return _kernel_total(family, {k: named[k] for k in params}, {k: named[k] for k in coefs}, rows)

    tables = module.covariate_loglik_tables(rows["x"], rows["t"], rows["T"], rows["w"], rows["zp"], rows["zd"],
                                            group=rows["group"])
    kernel = {"bgnbd": bgnbd_kernel, "paretonbd": paretonbd_kernel}[family]
    grad = np.concatenate(kernel(*np.split(flat, np.cumsum(sizes)[:-1]), *tables)[1])
    steps = 1e-6 * np.maximum(np.abs(flat), 1.0)
    numeric = [(total(flat + h * e) - total(flat - h * e)) / (2 * h) for h, e in zip(steps, np.eye(flat.size))]
    np.testing.assert_allclose(grad, numeric, rtol=2e-6, atol=2e-5)


def _per_row_graph(family: str, rows: dict):
    """The weighted per-row formula (``loglik(xp=PT)``) at each row's parameters, and its gradient by PyTensor."""
    module, params, coefs, implied = KERNELS[family]
    inputs = {name: pt.dvector(name) for name in (*params, *coefs)}
    by_row = implied({k: inputs[k][rows["group"]] for k in params}, {k: inputs[k] for k in coefs},
                     {k: pt.as_tensor(v) for k, v in rows.items()})
    total = pt.sum(rows["w"] * module.loglik(rows["x"], rows["t"], rows["T"], *by_row.values(), xp=PT))
    return pytensor.function(list(inputs.values()), [total, *pt.grad(total, list(inputs.values()))])


@pytest.mark.parametrize("family", KERNELS)
def test_covariate_kernel_value_and_gradient_equal_the_per_row_graph(family):
    """The kernel (rows in blocks of vector lanes for the BG/NBD) against the per-row PyTensor formula and its
    autodiff gradient, to 1e-10: 300 rows in three groups (partial blocks), x beyond the product form, t_x == T.
    BG/NBD also with beta-ratio products that underflow (a_i ~ 6e7, b_i ~ 1e-13: the lanes' fallback): the value
    to 1e-10, the gradient to 1e-8, the reference's own error there (digamma(a+b) - digamma(a+b+x) ~ x/a_i
    cancels to ~1e-14 and is multiplied by a_i)."""
    module, params, coefs, _ = KERNELS[family]
    kernel = {"bgnbd": bgnbd_kernel, "paretonbd": paretonbd_kernel}[family]
    values = {k: np.asarray(v, dtype=float) for k, v in {**params, **coefs}.items()}
    cases = [(_kernel_rows(5), 1e-10)]
    if family == "bgnbd":
        extreme = {"x": np.array([31.0, 12.0, 1.0]), "t": np.array([30.0, 20.0, 5.0]), "T": np.array([60.0] * 3),
                   "w": np.ones(3), "group": np.zeros(3, dtype=int), "zp": np.zeros((3, 2)),
                   "zd": np.array([[60.0], [-20.0], [0.0]])}
        cases.append(({k: np.concatenate([v, extreme[k]]) for k, v in cases[0][0].items()}, 1e-8))
    for rows, grad_rtol in cases:
        expected = _per_row_graph(family, rows)(*values.values())
        tables = module.covariate_loglik_tables(rows["x"], rows["t"], rows["T"], rows["w"], rows["zp"], rows["zd"],
                                                group=rows["group"])
        total, grad = kernel(*values.values(), *tables)
        assert np.isfinite(expected[0])
        assert total == pytest.approx(float(expected[0]), rel=1e-10)
        for got, want in zip(grad, expected[1:], strict=True):
            np.testing.assert_allclose(got, want, rtol=grad_rtol, atol=grad_rtol * np.max(np.abs(want)))


def _paretonbd_row_by_row(params: dict, coefs: dict, rows: dict):
    """The covariate Pareto/NBD total and gradient row by row, each row's lifetime integral by its own piece
    count (:func:`log_piecewise_integral`, the pooled kernel's rule): what the lanes must reproduce."""
    (r, alpha, s, beta), (pc, dc) = (float(v[0]) for v in params.values()), (np.asarray(v) for v in coefs.values())
    total, grad = 0.0, np.zeros(4 + pc.size + dc.size)
    for i in range(rows["x"].size):
        x, t, T, w, zp, zd = (rows[k][i] for k in ("x", "t", "T", "w", "zp", "zd"))
        a, b = alpha * np.exp(-zp @ pc), beta * np.exp(-zd @ dc)
        rho, log_aT, log_bT = r + x, np.log(a + T), np.log(b + T)
        alive = -rho * log_aT - s * log_bT
        lse = pi = d_rho = d_sigma = d_ca = d_cb = 0.0
        if t < T:
            m = min(a, b)
            log_j, d_rho, d_sigma, d_ca, d_cb = log_piecewise_integral(rho, s + 1.0, a - m, b - m, np.log(m + t),
                                                                       np.log(m + T), True)
            lse, pi = np.logaddexp(0.0, np.log(s) + log_j - alive), expit(np.log(s) + log_j - alive)
        total += w * (gammaln(r + x) - gammaln(r) + r * np.log(a) + s * np.log(b) + alive + lse)
        dl_alpha = r + a * (pi * d_ca - (1 - pi) * rho / (a + T))
        dl_beta = s + b * (pi * d_cb - (1 - pi) * s / (b + T))
        grad += w * np.concatenate([[digamma(r + x) - digamma(r) + np.log(a) + pi * d_rho - (1 - pi) * log_aT,
                                     dl_alpha / alpha, np.log(b) + pi * (1 / s + d_sigma) - (1 - pi) * log_bT,
                                     dl_beta / beta], -dl_alpha * zp, -dl_beta * zd])
    return total, grad


@pytest.mark.parametrize("point", [(0.6, 5.0, 0.8, 12.0), (0.05, 1e-4, 0.05, 1e4), (20.0, 1e4, 30.0, 1e-4),
                                   (1.5, 1e6, 0.3, 1e6), (0.3, 1e-6, 2.0, 1e-6)])
def test_paretonbd_lanes_equal_the_row_by_row_rule_on_an_extreme_grid(point):
    """The kernel's blocks share one piece count per block (the most any of their rows needs); each row's own
    count gives the same value to 1e-13 and gradient to 1e-10, over x up to 500, T up to 1,000, t_x == T, and
    tiny and huge scales and shapes."""
    grid = [(x, f * T, T) for x in (0.0, 1.0, 7.0, 60.0, 500.0) for T in (1.0, 40.0, 1000.0)
            for f in ((0.0,) if x == 0 else (0.01, 0.5, 0.999, 1.0))]
    x, t, T = (np.array(v) for v in zip(*grid))
    rng = np.random.default_rng(11)
    rows = {"x": x, "t": t, "T": T, "w": rng.integers(1, 4, x.size).astype(float),
            "zp": rng.standard_normal((x.size, 1)), "zd": rng.standard_normal((x.size, 1))}
    params = dict(zip(("r", "alpha", "s", "beta"), ([v] for v in point)))
    coefs = {"purchase_coef": [0.4], "dropout_coef": [-0.3]}
    tables = paretonbd.covariate_loglik_tables(x, t, T, rows["w"], rows["zp"], rows["zd"])
    total, grad = paretonbd_kernel(*(np.asarray(v, dtype=float) for v in (*params.values(), *coefs.values())),
                                   *tables)
    want_total, want_grad = _paretonbd_row_by_row(params, coefs, rows)
    assert np.isfinite(total) and total == pytest.approx(want_total, rel=1e-13)
    np.testing.assert_allclose(np.concatenate(grad), want_grad, rtol=1e-10, atol=1e-10 * np.max(np.abs(want_grad)))


@pytest.mark.parametrize("nodes", sorted({n for n, _, _ in RULES if n > 4}))
def test_paretonbd_lane_rules_match_scipy_quadrature_at_their_bounds(nodes):
    """Each calibrated rule of the lanes, on rows as wide and steep as its bounds allow (and a block of them
    sharing its layout), gives log J and its partials in rho, sigma and both scales as SciPy's adaptive
    quadrature in tau does, to 1e-12."""
    from scipy.integrate import quad

    rng = np.random.default_rng(nodes)
    n = 16
    rows = []
    while len(rows) < n:  # rows whose (width, change) lie inside one of this size's rules, near its edge
        x, a, b = rng.choice([0.0, 1.0, 4.0, 30.0]), np.exp(rng.uniform(-3.0, 4.0)), np.exp(rng.uniform(-3.0, 4.0))
        rho, sigma, m = 0.6 + x, 1.5, min(a, b)
        width, change = rng.choice([(w, c) for k, w, c in RULES if k == nodes]) * rng.uniform(0.9, 1.0, 2)
        t = rng.uniform(0.0, 20.0)
        T = (m + t) * np.exp(width) - m
        slope = [1.0 - rho * e / (e + a - m) - sigma * e / (e + b - m) for e in (m + t, m + T)]
        if width * max(map(abs, slope)) <= change and RULES[block_layout(width, change)[1]][0] <= nodes:
            rows.append((rho, a, b, t, T))
    rho, a, b, t, T = (np.array(v) for v in zip(*rows, strict=True))
    m = np.minimum(a, b)
    ca, cb, e0, e1 = a - m, b - m, m + t, m + T
    out = [np.empty(n) for _ in range(5)]
    lane_lifetime_integral(rho, 1.5, ca, cb, e0, e1, np.log(e0), np.log(e1), n, *out,
                           np.empty((LIFETIME_WORK_ROWS, n)))
    for i in range(n):
        def integral(f, i=i):
            return quad(lambda tau: f(tau) * (a[i] + tau) ** -rho[i] * (b[i] + tau) ** -1.5, t[i], T[i],
                        epsabs=0.0, epsrel=2e-14, limit=200)[0]
        J = integral(lambda tau: 1.0)
        want = [np.log(J), -integral(lambda tau: np.log(a[i] + tau)) / J, -integral(lambda tau: np.log(b[i] + tau)) / J,
                -rho[i] * integral(lambda tau: 1.0 / (a[i] + tau)) / J, -1.5 * integral(lambda tau: 1.0 / (b[i] + tau)) / J]
        # log(m + tau + ca) = log(alpha + tau) whichever scale is the smaller: the partials are those in tau
        np.testing.assert_allclose([v[i] for v in out], want, rtol=1e-12, atol=1e-12)


def test_lane_exp_and_log_match_numpy_over_the_double_range():
    """The vectorised exponential and logarithm of the BG/NBD kernel to 1e-15 relative; values outside the
    fast path (zero, subnormal, negative, infinite, NaN; exp beyond [-708, 709]) as documented."""
    rng = np.random.default_rng(9)
    n = 64
    out = np.empty(n)
    for v in (np.exp(rng.uniform(-707.0, 709.0, n)), rng.uniform(0.5, 2.0, n), 1.0 + rng.uniform(0.0, 1e-12, n)):
        lane_log(v, out, n)
        np.testing.assert_allclose(out, np.log(v), rtol=1e-15, atol=1e-300)
    for v in (rng.uniform(-708.0, 709.0, n), rng.uniform(-1e-8, 1e-8, n), rng.uniform(-3.0, 3.0, n)):
        lane_exp(v, out, n)
        np.testing.assert_allclose(out, np.exp(v), rtol=1e-15)
    odd = np.array([0.0, 1e-310, -1.0, np.inf, np.nan, 1.0])
    with np.errstate(all="ignore"):
        lane_log(odd, out, odd.size)
        np.testing.assert_array_equal(out[:odd.size], np.log(odd))
    lane_exp(np.array([-1000.0, 1000.0]), out, 2)
    np.testing.assert_allclose(out[:2], np.exp([-708.0, 709.0]), rtol=1e-15)


@pytest.mark.parametrize("family", FAMILIES)
def test_summed_graph_equals_the_per_row_graph_with_groups_and_one_process_covariates(family, cdnow_rfm):
    cls = FAMILIES[family][0]
    df = _with_covariates(cdnow_rfm, step=20)
    df["cohort"] = np.where(df["T"] > df["T"].median(), "early", "late")
    model = cls(group="cohort", pooling="partial", purchase_covariates=["age", "email"], dropout_covariates=["email"])
    logps = []
    for summed in (True, False):
        graph = model.build_model(df, summed=summed)
        point = graph.initial_point()
        point = {k: v + 0.1 * np.arange(1, np.size(v) + 1).reshape(np.shape(v)) for k, v in point.items()}
        # the density and its gradient compiled together: one compilation per graph
        logps.append(graph.compile_fn([graph.logp(), graph.dlogp()])(point))
    assert logps[0][0] == pytest.approx(logps[1][0], rel=1e-10)
    np.testing.assert_allclose(logps[0][1], logps[1][1], rtol=1e-8, atol=1e-8)


class _IndependentBetaGeo(bc.BetaGeoModel):
    """The covariate BG/NBD sampled in independent coordinates: log a, log b and each coefficient vector."""

    coefficient_pairs = ()

    def _parameters(self):
        return {name: self._quantity(name) for name in self.parameter_names}


@pytest.mark.parametrize("pooling", ["complete", "none"])
def test_bg_nbd_paired_coordinates_give_the_same_log_density_as_independent_ones(pooling, cdnow_rfm):
    """(a, b) as mean and concentration and each covariate's (dropout_coef_a, dropout_coef_b) as difference and
    mean: at any point the log density (with the Jacobian, as NUTS samples it, and without, as MAP) equals that
    of independent coordinates, so the posterior is the same; the posterior keeps the published names."""
    df = _with_covariates(cdnow_rfm, step=20)
    df["cohort"] = np.where(df["T"] > df["T"].median(), "early", "late")
    group = {} if pooling == "complete" else {"group": "cohort", "pooling": "none"}
    paired = bc.BetaGeoModel(covariates=["age", "email"], **group).build_model(df)
    independent = _IndependentBetaGeo(covariates=["age", "email"], **group).build_model(df)
    assert {"a_b", "dropout_coef_a_dropout_coef_b"} <= set(paired.named_vars)
    assert {"a", "b", "dropout_coef_a", "dropout_coef_b"} <= {v.name for v in paired.deterministics}
    # one compiled function per model (a compilation costs seconds; an evaluation microseconds), evaluated at three
    # points: the log density with and without the Jacobian and, for the paired model, the published names
    named = paired.replace_rvs_by_values([paired["a"], paired["dropout_coef_a"], paired["dropout_coef_b"]])
    fns = {which: graph.compile_fn([graph.logp(jacobian=True), graph.logp(jacobian=False), *extra],
                                   inputs=graph.value_vars, on_unused_input="ignore")
           for which, graph, extra in (("paired", paired, named), ("independent", independent, []))}
    rng = np.random.default_rng(5)
    size = 1 if pooling == "complete" else 2
    for _ in range(3):
        a, b = np.exp(rng.normal(0.0, 1.5, size)), np.exp(rng.normal(1.0, 1.5, size))
        ca, cb = rng.normal(0.0, 1.0, 2), rng.normal(0.0, 1.0, 2)
        common = {"r_log__": np.log(rng.uniform(0.2, 2.0, size)).squeeze(),
                  "alpha_log__": np.log(rng.uniform(1.0, 20.0, size)).squeeze(),
                  "purchase_coef": rng.normal(0.0, 1.0, 2)}
        u, w = np.log(a) - np.log(b), np.logaddexp(np.log(a), np.log(b))
        new = {**common, "a_b_mean_concentration__": np.stack([u, w], -1).squeeze(),
               "dropout_coef_a_dropout_coef_b_difference_and_mean__": np.stack([ca - cb, (ca + cb) / 2], -1)}
        old = {**common, "a_log__": np.log(a).squeeze(), "b_log__": np.log(b).squeeze(),
               "dropout_coef_a": ca, "dropout_coef_b": cb}
        (with_jacobian, without, *values), reference = fns["paired"](new), fns["independent"](old)
        assert with_jacobian == pytest.approx(reference[0], rel=1e-12, abs=1e-9)
        assert without == pytest.approx(reference[1], rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(values[0], a.squeeze(), rtol=1e-12)
        np.testing.assert_allclose(values[1:], [ca, cb], rtol=1e-12, atol=1e-14)
    # a coefficient prior off the real line keeps its own coordinates (a linear map would leave its support)
    bounded = bc.BetaGeoModel(covariates=["age"], priors={"dropout_coef_b": bc.Prior("HalfNormal", sigma=1.0)})
    assert "dropout_coef_a_dropout_coef_b" not in bounded.build_model(df).named_vars


def _simulated(family: str, n: int, seed: int) -> pd.DataFrame:
    """Customers whose purchase (and dropout) scale follows a known coefficient of ``x`` (standard normal)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    T = rng.uniform(30.0, 52.0, n)
    if family == "paretonbd":
        sim = paretonbd.simulate_population(T, 0.8, 6.0 * np.exp(-0.5 * x), 0.7, 10.0 * np.exp(0.4 * x), rng=rng)
    else:
        sim = bgnbd.simulate_population(T, 0.8, 6.0 * np.exp(-0.5 * x), 1.0 * np.exp(0.6 * x), 3.0, rng=rng)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": sim["frequency"], "recency": sim["recency"],
                       "T": T, "x": x})
    df.attrs["time_unit"] = "W"
    return df


def test_pareto_nbd_covariate_effects_are_recovered_by_map():
    df = _simulated("paretonbd", 4000, seed=11)
    model = bc.ParetoNBDModel(covariates=["x"]).fit(df, method="map", progressbar=False)
    sd = df["x"].std()
    # per unit of x: purchase rate x exp(0.5 x), dropout rate x exp(-0.4 x); standard errors ~0.03 and ~0.06
    assert float(model.posterior["purchase_coef"].squeeze()) / sd == pytest.approx(0.5, abs=0.1)
    assert float(model.posterior["dropout_coef"].squeeze()) / sd == pytest.approx(-0.4, abs=0.2)
    assert float(model.posterior["r"].squeeze()) == pytest.approx(0.8, rel=0.2)


def test_bg_nbd_covariate_effects_are_recovered_and_reported_in_words():
    df = _simulated("bgnbd", 3000, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit may warn about ESS
        model = bc.BetaGeoModel(covariates=["x"]).fit(df, draws=250, tune=250, chains=2, random_seed=2,
                                                      progressbar=False)
    sd = df["x"].std()
    per_unit = {n: model.posterior[n].values.ravel() / sd for n in model._coefficient_names()}
    for name, value in {"purchase_coef": 0.5, "dropout_coef_a": 0.6, "dropout_coef_b": 0.0}.items():
        lo, hi = np.quantile(per_unit[name], [0.005, 0.995])
        assert lo < value < hi, (name, lo, hi)
    assert per_unit["purchase_coef"].std() < 0.06  # 3,000 customers pin the purchase effect down
    table = bc.key_drivers(model, per="unit", prob=0.9)
    purchase, dropout = table.loc[("x", "purchase")], table.loc[("x", "dropout")]
    assert purchase["mean"] == pytest.approx(per_unit["purchase_coef"].mean(), rel=1e-9)
    assert purchase["p_positive"] > 0.99 and "raises it" in purchase["in_words"]
    # the odds a_i / b_i of the mean dropout probability rise with x: effect coef_a - coef_b
    diff = per_unit["dropout_coef_a"] - per_unit["dropout_coef_b"]
    assert dropout["latent"] == "logit_p" and dropout["mean"] == pytest.approx(diff.mean(), rel=1e-9)
    assert dropout["p_positive"] == pytest.approx((diff > 0).mean())
    assert dropout["lower"] < dropout["mean"] < dropout["upper"]
    per_sd = bc.key_drivers(model)  # one sd of x: sd times the per-unit effect
    assert per_sd.loc[("x", "purchase"), "mean"] == pytest.approx(purchase["mean"] * sd, rel=1e-9)


@pytest.mark.parametrize("bad, column, rows", [
    ("nan", "age", [3, 7]),
    ("text", "age", [5]),
    ("constant", "email", []),
    ("missing", "income", []),
])
def test_bad_covariates_raise_typed_errors_naming_column_and_rows(bad, column, rows, cdnow_rfm):
    df = _with_covariates(cdnow_rfm)
    if bad == "nan":
        df.loc[[3, 7], "age"] = np.nan
    elif bad == "text":
        df["age"] = df["age"].astype(object)
        df.loc[5, "age"] = "forty"
    elif bad == "constant":
        df["email"] = 1.0
    covariates = ["age", "email"] + (["income"] if bad == "missing" else [])
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        with pytest.raises(DataValidationError) as err:
            cls(covariates=covariates).build_model(df)
        assert err.value.column == column
        assert err.value.rows == df.loc[rows, "customer_id"].tolist()


def test_predictions_use_each_customers_covariates_and_new_data_is_standardised_as_fitted(cdnow_rfm):
    cls, point, _ = FAMILIES["paretonbd"]
    df = _with_covariates(cdnow_rfm, step=20)
    model = cls(covariates=["age", "email"])
    model.data, model.time_unit, model.fit_method = df, df.attrs["time_unit"], "nuts"
    model._set_fit_state(df)
    _set_posterior(model, point, chains=2, draws=3)
    implied = _implied(model, point, df)
    cols = (df["frequency"].to_numpy(), df["recency"].to_numpy(), df["T"].to_numpy())
    got = model.expected_purchases(10.0).values
    assert got.shape == (2, 3, len(df))
    expected = paretonbd.expected_purchases(10.0, *cols, **implied)
    np.testing.assert_allclose(got[1, 2], expected, rtol=1e-10)
    # a frame of a few customers predicts with the fit's standardisation, not its own
    few = df.iloc[:4].copy()
    few.attrs = dict(df.attrs)
    np.testing.assert_allclose(model.probability_alive(few).values[0, 0],
                               paretonbd.probability_alive(*(c[:4] for c in cols),
                                                           **{k: v[:4] for k, v in implied.items()}), rtol=1e-10)
    # a new customer: the population at the average covariates
    new = model.expected_purchases_new_customer(5.0).values[0, 0]
    assert new == pytest.approx(paretonbd.expected_purchases_new_customer(5.0, 0.6, 5.0, 0.8, 12.0), rel=1e-12)


def test_covariate_model_saves_loads_and_keeps_separate_process_lists(cdnow_rfm, tmp_path):
    df = _with_covariates(cdnow_rfm, step=20)
    model = bc.BetaGeoModel(purchase_covariates=["age", "email"], dropout_covariates=["email"])
    model.fit(df, method="map", progressbar=False)
    post = model.posterior
    assert list(post["purchase_coef"]["purchase_covariate"].values) == ["age", "email"]
    assert list(post["dropout_coef_a"]["dropout_covariate"].values) == ["email"]
    path = tmp_path / "bg.nc"
    model.save(path)
    loaded = bc.load(path)
    assert loaded.process_covariates == {"purchase": ["age", "email"], "dropout": ["email"]}
    np.testing.assert_allclose(loaded.probability_alive().values, model.probability_alive().values, rtol=1e-12)
    table = bc.key_drivers(loaded)
    assert list(table.index) == [("age", "purchase"), ("email", "purchase"), ("email", "dropout")]
    assert np.isnan(table["p_positive"]).all() and "point estimate" in table["in_words"].iloc[0]
    with pytest.raises(ValueError, match="without covariates"):
        bc.key_drivers(bc.BetaGeoModel().fit(df, method="map", progressbar=False))


class _Stop(Exception):
    pass


def test_covariate_nuts_fits_are_whitened_with_their_own_defaults_and_honour_a_users(monkeypatch, cdnow_rfm):
    """With covariates (and no partial pooling) nutpie samples in coordinates whitened at the mode, with 200
    warm-up steps and target acceptance 0.65 unless given; without covariates, or partially pooled, the fit's
    defaults (1000, the model's 0.8, no whitening); a user's settings reach the sampler unchanged (nothing is
    sampled here)."""
    from bayesclv.models import inference

    seen = {}

    def stop(graph, **kwargs):
        seen.clear()
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(inference, "sample_nutpie", stop)
    df = _with_covariates(cdnow_rfm, step=20)
    df["cohort"] = np.where(df["T"] > df["T"].median(), "early", "late")
    cases = [(bc.BetaGeoModel(covariates=["age"]), (200, 0.65, True)),
             (bc.ParetoNBDModel(dropout_covariates=["email"]), (200, 0.65, True)),
             (bc.BetaGeoModel(), (1000, 0.8, False)),
             (bc.ParetoNBDModel(covariates=["age"], group="cohort", pooling="partial"), (1000, 0.95, False))]
    for model, expected in cases:
        with pytest.raises(_Stop):
            model.fit(df, progressbar=False)
        assert (seen["tune"], seen["target_accept"], seen["whiten"]) == expected, type(model).__name__
    model = bc.BetaGeoModel(covariates=["age"])
    with pytest.raises(_Stop):
        model.fit(df, tune=500, target_accept=0.9, nuts={"whiten": False}, progressbar=False)
    assert (seen["tune"], seen["target_accept"], seen["whiten"]) == (500, 0.9, False)
    with pytest.raises(_Stop):
        model.fit(df, nuts={"whiten": False}, progressbar=False)  # unwhitened: the fit's own defaults
    assert (seen["tune"], seen["target_accept"], seen["whiten"]) == (1000, 0.8, False)


def test_a_failed_mode_search_samples_unwhitened_and_says_so(monkeypatch, cdnow_rfm):
    """Where no mode is found to whiten the coordinates, the covariate fit still samples (unwhitened), and a
    ConvergenceWarning names the short warm-up it kept and how to refit with the unwhitened defaults."""
    from bayesclv.errors import ConvergenceWarning
    from bayesclv.models import sampling

    monkeypatch.setattr(sampling, "laplace_whitening", lambda logp_grad, start: None)
    df = _with_covariates(cdnow_rfm, step=20)
    with pytest.warns(ConvergenceWarning, match=r"no posterior mode found.*tune=30.*whiten': False"):
        model = bc.BetaGeoModel(covariates=["age"]).fit(df, draws=20, tune=30, chains=1, random_seed=3,
                                                        progressbar=False)
    assert model.posterior["r"].shape == (1, 20) and np.isfinite(model.posterior["r"]).all()
