"""GGom/NBD model class (bayesclv.models.ggomnbd) and the infinite-horizon predictions of the model classes.

The formulas are checked in test_ggomnbd.py and test_residual.py against numerical integration;
here the model layer:

- the CDNOW MAP against Bemmaor & Glady (2012, Table 2): r, alpha, s and the log-likelihood, with
  the maximum on the Pareto/NBD boundary (b -> 0, beta / b -> the Pareto/NBD's beta);
- the model's likelihood at the Pareto/NBD limit equal to the Pareto/NBD model's (1e-8);
- predictions equal to the formula module at the fitted parameters, the summed kernel equal to
  the per-row graph (value and gradient, with groups), the CLV through the contract;
- DERT and the expected residual lifetime of the Pareto/NBD, BG/NBD and GGom/NBD model classes
  against SciPy quadrature over the latent rates (tests/reference_residual.py,
  tests/reference_ggomnbd.py), the Pareto/NBD's also against Fader, Hardie & Lee's (2005) closed
  form, and the GGom/NBD's DERT against the fine-grid sum of its discounted expected purchases.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy import stats

import bayesclv as bc
from bayesclv.errors import ArgumentError
from bayesclv.formulas import NP, ggomnbd
from bayesclv.models.contract import ResidualModel
from bayesclv.testing import jittered_posterior

try:  # tests/ as a package or as a plain directory on sys.path
    from .reference_ggomnbd import ggomnbd as gref
    from .reference_residual import bgnbd_residual as bg_ref
    from .reference_residual import paretonbd_residual as pn_ref
except ImportError:  # pragma: no cover
    from reference_ggomnbd import ggomnbd as gref
    from reference_residual import bgnbd_residual as bg_ref
    from reference_residual import paretonbd_residual as pn_ref

MAP = {"method": "map", "progressbar": False}
# Bemmaor & Glady (2012), Table 2, CDNOW sample (39 weeks), LL -9594.98; the Pareto/NBD's beta there
BG2012 = {"r": 0.553, "alpha": 10.578, "s": 0.603}
PARETO_BETA = 11.669
INTERIOR = {"r": 0.5, "alpha": 10.0, "b": 0.05, "s": 0.6, "beta": 5.0}  # a lifetime hazard rising with age
DELTA = 0.0027  # per week: 15% a year, continuously compounded


@pytest.fixture(scope="module")
def ggom(cdnow_rfm):
    return bc.GompertzNBDModel().fit(cdnow_rfm, **MAP)


def _params(model) -> dict[str, float]:
    return {n: float(model.posterior[n].values.ravel()[0]) for n in model.parameter_names}


def _at(model, **values):
    """A copy of the fitted ``model`` whose posterior is one draw at ``values``."""
    moved = copy.copy(model)
    moved.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {n: (("chain", "draw"), [[v]]) for n, v in values.items()}, coords={"chain": [0], "draw": [0]})})
    return moved


def _columns(data: pd.DataFrame):
    return tuple(data[c].to_numpy() for c in ("frequency", "recency", "T"))


def test_map_on_cdnow_matches_bemmaor_glady(ggom):
    got = _params(ggom)
    for name, value in BG2012.items():
        assert got[name] == pytest.approx(value, rel=0.01), name
    assert float(ggom.log_likelihood().sum()) == pytest.approx(-9594.98, abs=0.02)
    # the maximum lies on the Pareto/NBD boundary: only beta / b is identified there
    assert got["b"] < 1e-3 and got["beta"] / got["b"] == pytest.approx(PARETO_BETA, rel=0.02)
    assert ggom.display_name == "GGom/NBD"
    assert list(ggom.summary().index) == ["r", "alpha", "b", "s", "beta"]


def test_likelihood_at_the_pareto_nbd_limit_equals_the_pareto_nbds(ggom, map_models, cdnow_rfm):
    pareto = map_models["ParetoNBDModel"]
    p = _params(pareto)
    b = 1e-14  # the gap is O(b (s+1) T)
    limit = _at(ggom, r=p["r"], alpha=p["alpha"], b=b, s=p["s"], beta=b * p["beta"])
    np.testing.assert_allclose(limit.log_likelihood().values, pareto.log_likelihood().values, rtol=1e-8)
    np.testing.assert_allclose(limit.probability_alive().values, pareto.probability_alive().values, rtol=1e-8)


def test_sampling_coordinates_keep_the_priors_and_the_likelihood(cdnow_rfm):
    """In ``(b, dropout_mean, dropout_cv2)`` the density NUTS samples is the three priors times the likelihood.

    The sampled coordinates (models.ggomnbd.DropoutWindow) only add their log-Jacobian, checked against
    the determinant of the numerical Jacobian of the map; the map inverts to rounding.
    """
    data = cdnow_rfm.iloc[::5]
    model = bc.GompertzNBDModel()
    graph = model.build_model(data)
    transform = graph.rvs_to_transforms[graph["dropout"]]
    x, t_x, T = _columns(data)
    value = pt.dvector("value")
    to_coords = pytensor.function([value], transform.forward(value))
    from_coords = pytensor.function([value], transform.backward(value))
    log_jac = pytensor.function([value], transform.log_jac_det(value))
    logp = graph.compile_logp(jacobian=False)
    for b, mean, cv2 in [(1e-9, 0.06, 2.0), (0.05, 0.07, 3.0), (0.4, 0.2, 15.0)]:
        point = np.array([b, mean, cv2])
        coords = to_coords(point)
        np.testing.assert_allclose(from_coords(coords), point, rtol=1e-10)
        step = 1e-6
        jac = np.column_stack([(from_coords(coords + step * e) - from_coords(coords - step * e)) / (2 * step)
                               for e in np.eye(3)])
        assert float(log_jac(coords)) == pytest.approx(np.log(abs(np.linalg.det(jac))), abs=1e-6)
        r, alpha = 0.55, 10.6
        s, beta = 1.0 / cv2, b / (cv2 * mean)
        want = (stats.halfnorm.logpdf([r, alpha, b, mean, cv2], scale=[50.0, 500.0, 0.1, 1.0, 10.0]).sum()
                + ggomnbd.loglik(x, t_x, T, r, alpha, b, s, beta, xp=NP).sum())
        got = logp({"r_log__": np.log(r), "alpha_log__": np.log(alpha), "dropout_dropout_window__": coords})
        assert float(got) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("b_pooling", ["partial", "complete"])
def test_grouped_sampling_coordinates_keep_the_hierarchy_and_the_likelihood(cdnow_rfm, b_pooling):
    """Partial pooling: the density in the sampled coordinates is the hierarchy's priors times the likelihood.

    The population's typical dropout triple is one variable (``dropout``, sampled by DropoutWindow); at any
    point the density without Jacobians equals, by SciPy and the formula module, the priors of the log means
    (``Normal(0, 3)``, as densities of the exponentiated means), of the sds (``HalfNormal(1)``) and of the
    offsets, or ``b``'s own prior where ``b`` is shared, plus each group's rows' likelihood.
    """
    data = cdnow_rfm.iloc[::4].assign(cohort=lambda d: np.where(d["T"] > 32.0, "early", "late"))
    model = bc.GompertzNBDModel(group="cohort", b_pooling=b_pooling)
    graph = model.build_model(data)
    shared = b_pooling == "complete"
    pooled = ["r", "alpha", *([] if shared else ["b"]), "dropout_mean", "dropout_cv2"]
    assert sorted(model._centred) == sorted(pooled)  # the groups' evidence decides the centring of these
    transform = graph.rvs_to_transforms[graph["dropout"]]
    to_coords = pytensor.function([value := pt.dvector("value")], transform.forward(value))
    logp = graph.compile_logp(jacobian=False)
    rng = np.random.default_rng(3)
    x, t_x, T = _columns(data)
    group = (data["cohort"] == "late").to_numpy().astype(int)
    for b0 in (1e-6, 0.05, 0.3):
        point, want, log_q = {}, 0.0, {}
        means = {"r": np.log(0.5), "alpha": np.log(10.0), "b": np.log(b0), "dropout_mean": np.log(0.06),
                 "dropout_cv2": np.log(2.0)}
        triple = np.exp([means["b"], means["dropout_mean"], means["dropout_cv2"]])
        point["dropout_dropout_window__"] = to_coords(triple)
        want += stats.halfnorm.logpdf(b0, scale=0.1) if shared else stats.norm.logpdf(np.log(b0), 0, 3) - np.log(b0)
        want += sum(stats.norm.logpdf(np.log(v), 0, 3) - np.log(v) for v in triple[1:])
        for name in pooled:
            sd, z = rng.uniform(0.1, 1.0), rng.normal(size=2)
            c = model._centred[name].astype(float)
            if name in ("r", "alpha"):
                point[f"log_{name}_mean"] = means[name]
                want += stats.norm.logpdf(means[name], 0, 3)
            point[f"log_{name}_sd_log__"], point[f"log_{name}_offset"] = np.log(sd), z
            want += stats.halfnorm.logpdf(sd) + stats.norm.logpdf(z, 0, sd**c).sum()
            log_q[name] = means[name] + z * sd ** (1 - c)
        b = np.full(2, b0) if shared else np.exp(log_q["b"])
        cv2 = np.exp(log_q["dropout_cv2"])
        row = {"r": np.exp(log_q["r"]), "alpha": np.exp(log_q["alpha"]), "b": b, "s": 1 / cv2,
               "beta": b / (cv2 * np.exp(log_q["dropout_mean"]))}
        want += ggomnbd.loglik(x, t_x, T, **{k: v[group] for k, v in row.items()}, xp=NP).sum()
        assert float(logp(point)) == pytest.approx(want, rel=1e-10)
    names = model._summary_names()
    assert ("log_b_mean" in names) is not shared and "b" in names


class _LogMeanCoordinates(bc.GompertzNBDModel):
    """The grouped GGom/NBD in its coordinates before DropoutWindow (commit 19ee9d2^): ``log_b_mean``,
    ``log_dropout_mean_mean`` and ``log_dropout_cv2_mean`` each their own ``Normal(0, 3)`` variable."""

    def _parameters(self):
        if not (self.pooling == "partial" and self._centred):
            return super()._parameters()
        r, alpha, b, mean, cv2 = (self._quantity(n) for n in ("r", "alpha", "b", "dropout_mean", "dropout_cv2"))
        s = pm.Deterministic("s", 1.0 / cv2, dims="group")
        beta = pm.Deterministic("beta", b / (cv2 * mean), dims="group")
        return {"r": r, "alpha": alpha, "b": b, "s": s, "beta": beta}


def test_grouped_window_coordinates_are_a_change_of_variables_of_the_log_means(cdnow_rfm):
    """The grouped model's density in the sampled coordinates is the old one's through the change of variables.

    Sampled before: the log means ``(l_b, l_m, l_c)`` of ``b, dropout_mean, dropout_cv2``; now
    ``DropoutWindow``'s ``(w, l_m, u)`` of ``(e^l_b, e^l_m, e^l_c)``, the other coordinates the same. The
    posterior is the same iff, at every point, the new log density (Jacobian included) plus
    ``log |d(w, l_m, u) / d(l_b, l_m, l_c)|`` is the old one: that determinant is ``dw / dl_b``
    (``w`` depends on ``l_b`` alone, ``du / dl_c = -1``) ``= x e^x / (e^x - 1)``, ``x = e^l_b`` (``b``'s
    scale 1 per time unit with a pooled ``b``). Checked at random points, ``l_b`` from the tiny-``b`` series
    branch (-16) to beyond the likelihood's wall (1.5).
    """
    data = cdnow_rfm.iloc[::4].assign(cohort=lambda d: np.select([d["T"] > 36.0, d["T"] > 33.0], ["a", "b"], "c"))
    old_graph = _LogMeanCoordinates(group="cohort").build_model(data)
    new_graph = bc.GompertzNBDModel(group="cohort").build_model(data)
    means = ["log_b_mean", "log_dropout_mean_mean", "log_dropout_cv2_mean"]
    shared = sorted(v.name for v in old_graph.value_vars if v.name not in means)
    assert sorted(v.name for v in new_graph.value_vars) == sorted([*shared, "dropout_dropout_window__"])
    transform = new_graph.rvs_to_transforms[new_graph["dropout"]]
    to_coords = pytensor.function([value := pt.dvector("value")], transform.forward(value))
    old_logp, new_logp = old_graph.compile_logp(), new_graph.compile_logp()
    rng = np.random.default_rng(11)
    start = old_graph.initial_point()
    for log_b in (-16.0, -12.0, -6.0, -3.0, -1.0, 0.5, 1.5):
        point = {n: rng.normal(size=np.shape(start[n])) if n.endswith("_offset")
                 else rng.uniform(np.log(0.05), np.log(1.5), size=np.shape(start[n])) if n.endswith("_sd_log__")
                 else np.asarray(rng.uniform(-3.0, 2.0)) for n in shared}
        old = {**point, "log_b_mean": log_b, "log_dropout_mean_mean": rng.uniform(-4.0, -1.0),
               "log_dropout_cv2_mean": rng.uniform(-2.0, 2.0)}
        new = {**point, "dropout_dropout_window__": to_coords(np.exp([old[n] for n in means]))}
        x = np.exp(log_b)
        log_det = np.log(x) + x - np.log(np.expm1(x))
        want = float(old_logp(old))
        assert np.isfinite(want)
        assert float(new_logp(new)) + log_det == pytest.approx(want, rel=1e-10, abs=0.0), log_b


def test_b_pooling_is_checked():
    with pytest.raises(ValueError, match="b_pooling"):
        bc.GompertzNBDModel(group="cohort", b_pooling="none")
    with pytest.raises(ValueError, match="no parameter"):
        bc.GompertzNBDModel({"log_b_sd": bc.Prior("HalfNormal", sigma=0.5)}, group="cohort", b_pooling="complete")


def test_predictions_are_the_formula_module_at_the_fitted_parameters(ggom, cdnow_rfm):
    data = cdnow_rfm.iloc[::40]
    x, t_x, T = _columns(data)
    for model in (ggom, _at(ggom, **INTERIOR)):
        p = _params(model)
        pairs = [
            (model.probability_alive(data), ggomnbd.probability_alive(x, t_x, T, **p)),
            (model.expected_purchases(10.0, data), ggomnbd.expected_purchases(10.0, x, t_x, T, **p)),
            (model.expected_purchases(10.0, data, given_alive=True),
             ggomnbd.expected_purchases(10.0, x, t_x, T, **p, given_alive=True)),
            (model.probability_alive_at(6.0, data), ggomnbd.probability_alive_at(6.0, x, t_x, T, **p)),
            (model.probability_of_purchases(2, 10.0, data), ggomnbd.probability_of_purchases(2, 10.0, x, t_x, T, **p)),
            (model.expected_purchases_new_customer(np.array([5.0, 30.0])),
             ggomnbd.expected_purchases_new_customer(np.array([5.0, 30.0]), **p)),
            (model.log_likelihood(data), ggomnbd.loglik(x, t_x, T, **p, xp=NP)),
        ]
        for got, want in pairs:
            np.testing.assert_allclose(got.values.reshape(-1), np.ravel(want), rtol=1e-12)


def test_summed_kernel_equals_the_per_row_graph_with_groups(cdnow_rfm):
    data = cdnow_rfm.iloc[::3].assign(cohort=lambda d: np.where(d["T"] > 32.0, "early", "late"))
    model = bc.GompertzNBDModel(group="cohort")
    summed, rows = model.build_model(data, summed=True), model.build_model(data, summed=False)
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in summed.initial_point().items()}
    # each graph's density and gradient compiled together (one compilation per graph)
    (logp_summed, grad_summed), (logp_rows, grad_rows) = (
        graph.compile_fn([graph.logp(), graph.dlogp()])(point) for graph in (summed, rows))
    assert logp_summed == pytest.approx(logp_rows, rel=1e-10)
    np.testing.assert_allclose(grad_summed, grad_rows, rtol=1e-8, atol=1e-8)


def test_clv_through_the_contract(ggom, cdnow_rfm):
    model = _at(ggom, **INTERIOR)
    gg = bc.GammaGammaModel().fit(cdnow_rfm, **MAP)
    clv = bc.customer_lifetime_value(model, gg, horizon=12, time_unit="M", discount_rate=0.01)
    assert np.isfinite(clv.values).all() and (clv.values >= 0).all() and float(clv.sum()) > 0
    few = cdnow_rfm.iloc[:50]
    np.testing.assert_allclose(bc.customer_lifetime_value(model, gg, few, horizon=12, time_unit="M",
                                                          discount_rate=0.01).values, clv.values[..., :50], rtol=1e-12)


# ------------------------------------------------------------------ DERT and residual lifetime
HISTORIES = pd.DataFrame({"customer_id": ["new", "one", "regular", "lapsed", "heavy"],
                          "frequency": [0.0, 1.0, 3.0, 2.0, 30.0], "recency": [0.0, 5.0, 36.0, 30.43, 76.0],
                          "T": [39.0, 39.0, 38.0, 38.86, 78.0]})
HISTORIES.attrs["time_unit"] = "W"


def _residuals(model, delta=DELTA):
    return (model.discounted_expected_residual_transactions(delta, HISTORIES),
            model.expected_residual_lifetime(HISTORIES))


def test_pareto_nbd_dert_matches_quadrature_and_the_fhl_closed_form(map_models):
    model = map_models["ParetoNBDModel"]
    assert isinstance(model, ResidualModel)
    p = _params(model)
    x, t_x, T = _columns(HISTORIES)
    dert, life = _residuals(model)
    np.testing.assert_allclose(dert.values.ravel(), pn_ref.discounted_expected_residual_transactions(
        DELTA, x, t_x, T, *p.values()), rtol=1e-8)
    np.testing.assert_allclose(dert.values.ravel()[:3], pn_ref.dert_mpmath(DELTA, x[:3], t_x[:3], T[:3], *p.values()),
                               rtol=1e-8)
    assert p["s"] < 1.0 and np.isinf(life.values).all()  # E[1/mu] diverges for s <= 1 (CDNOW: s = 0.61)
    heterogeneous = {**p, "s": 3.0, "beta": 3.0 * p["beta"]}
    life = _at(model, **heterogeneous).expected_residual_lifetime(HISTORIES)
    np.testing.assert_allclose(life.values.ravel(), pn_ref.expected_residual_lifetime(
        x, t_x, T, *heterogeneous.values()), rtol=1e-8)


def test_bgnbd_dert_and_residual_lifetime_match_quadrature(map_models):
    model = map_models["BetaGeoModel"]
    p = _params(model)
    rows = HISTORIES.iloc[[0, 3, 4]]
    x, t_x, T = _columns(rows)
    dert = model.discounted_expected_residual_transactions(0.05, rows)
    np.testing.assert_allclose(dert.values.ravel(), bg_ref.discounted_expected_residual_transactions(
        0.05, x, t_x, T, *p.values()), rtol=1e-8)
    finite = {**p, "a": 2.5}  # a > 1: a finite mean number of purchases before dropping out
    life = _at(model, **finite).expected_residual_lifetime(rows)
    np.testing.assert_allclose(life.values.ravel(), bg_ref.expected_residual_lifetime(x, t_x, T, *finite.values()),
                               rtol=1e-8)


def test_ggomnbd_dert_and_residual_lifetime_match_quadrature(ggom):
    model = _at(ggom, **INTERIOR)
    x, t_x, T = _columns(HISTORIES)
    dert, life = _residuals(model)
    np.testing.assert_allclose(dert.values.ravel(), gref.discounted_expected_residual_transactions(
        DELTA, x, t_x, T, *INTERIOR.values()), rtol=1e-8)
    np.testing.assert_allclose(life.values.ravel(), gref.expected_residual_lifetime(x, t_x, T, *INTERIOR.values()),
                               rtol=1e-8)


def test_dert_is_the_limit_of_discounted_expected_purchases(ggom):
    """``int e^(-delta u) dE[X(u)]`` by the midpoint rule on weekly periods to 400 weeks (e^-40 of the mass left)."""
    model, delta, step = _at(ggom, **INTERIOR), 0.1, 1.0
    ends = np.arange(step, 400.0 + step / 2, step)
    grid = model.discounted_expected_purchases(ends, np.exp(-delta * (ends - step / 2)), HISTORIES)
    dert = model.discounted_expected_residual_transactions(delta, HISTORIES)
    # the midpoint rule's error is about (delta step)^2 / 24 of the value
    np.testing.assert_allclose(grid.values, dert.values, rtol=(delta * step) ** 2 / 12)


@pytest.mark.parametrize("name", ["ParetoNBDModel", "BetaGeoModel", "GompertzNBDModel"])
def test_residual_predictions_keep_draws_and_the_alive_factor(name, map_models, ggom):
    model = jittered_posterior(copy.deepcopy(ggom if name == "GompertzNBDModel" else map_models[name]),
                                          chains=2, draws=3, random_seed=1)
    alive = model.probability_alive(HISTORIES).values
    for method, args in (("discounted_expected_residual_transactions", (DELTA,)), ("expected_residual_lifetime", ())):
        got = getattr(model, method)(*args, HISTORIES)
        assert got.dims == ("chain", "draw", "customer_id") and got.shape == (2, 3, len(HISTORIES))
        assert got.attrs["quantity"] == "expectation" and got.attrs["time_unit"] == "W"
        given = getattr(model, method)(*args, HISTORIES, given_alive=True).values
        np.testing.assert_allclose(got.values, given * alive, rtol=1e-12)
    # a higher discount rate lowers the present value
    lower = model.discounted_expected_residual_transactions(10 * DELTA, HISTORIES).values
    assert (lower < model.discounted_expected_residual_transactions(DELTA, HISTORIES).values).all()
    for bad in (0.0, -0.1, np.nan, "0.1"):
        with pytest.raises(ArgumentError) as info:
            model.discounted_expected_residual_transactions(bad, HISTORIES)
        assert info.value.argument == "delta"
