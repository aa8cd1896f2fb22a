"""The covariate models' direct log density (bayesclv.models.covariate_density): the graph's density without it.

References: PyMC's compiled ``logp``/``dlogp`` of the same model (the graph's priors, transforms and
Jacobians around the same covariate kernel, tested in test_covariates.py against the per-row formula);
central differences for the gradient. Where it does not apply it must say so (None), so that the fit
samples the graph.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.models.covariate_density import covariate_density
from density_checks import assert_density_is_the_graphs, compile_logp_dlogp


@pytest.fixture(scope="module")
def rfm():
    rng = np.random.default_rng(3)
    n = 300
    T = rng.uniform(20.0, 40.0, n)
    frequency = rng.poisson(1.5, n)
    recency = np.where(frequency > 0, T * rng.uniform(0.1, 1.0, n), 0.0)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": frequency, "recency": np.round(recency, 1),
                       "T": np.round(T, 1), "spend": rng.normal(3.0, 1.0, n), "age": rng.normal(40.0, 10.0, n),
                       "member": rng.random(n) < 0.3})
    df.attrs["time_unit"] = "W"
    return df


def _density(model, data):
    df = model._prepare(data)
    graph = model._graph(df, summed=True)
    return graph, covariate_density(model, graph, model._stored_variables(graph))


CASES = [  # model, priors, covariates per process: the coordinates' kinds (pairs, log shapes, one process only;
    # the Pareto/NBD's dropout gamma as mean and cv2)
    (bc.BetaGeoModel, {}, {"covariates": ["spend", "age"]}),
    (bc.BetaGeoModel, {"a": bc.Prior("Gamma", alpha=2.0, beta=0.5), "r": bc.Prior("Exponential", lam=2.0),
                       "dropout_coef_b": bc.Prior("Normal", mu=0.3, sigma=2.0),
                       "purchase_coef": bc.Prior("Normal", tau=4.0)},
     {"covariates": ["spend", "age", "member"]}),
    (bc.BetaGeoModel, {"alpha": bc.Prior("LogNormal", mu=1.0, sigma=2.0)},
     {"purchase_covariates": ["spend"], "dropout_covariates": []}),
    (bc.BetaGeoModel, {}, {"purchase_covariates": [], "dropout_covariates": ["age"]}),
    (bc.ParetoNBDModel, {}, {"covariates": ["spend", "age"]}),
    (bc.ParetoNBDModel, {"dropout_cv2": bc.Prior("Gamma", alpha=2.0, beta=0.5),
                         "dropout_mean": bc.Prior("LogNormal", mu=-2.0, sigma=1.0)},
     {"purchase_covariates": [], "dropout_covariates": ["age", "member"]}),
]


@pytest.mark.parametrize(("cls", "priors", "covariates"), CASES)
def test_covariate_density_is_the_graphs(rfm, cls, priors, covariates):
    """Value and gradient equal PyMC's compiled logp/dlogp of the model's graph at random points of the
    sampling coordinates, and central differences of the direct value; the stored variables too."""
    model = cls(priors or None, **covariates)
    graph, density = _density(model, rfm)
    assert density is not None
    point0 = graph.initial_point()
    values = [graph.rvs_to_values[rv].name for rv in graph.free_RVs]
    shapes = [point0[v].shape for v in values]
    sizes = [int(np.prod(s)) for s in shapes]
    assert density.n_dim == sum(sizes)
    graphs = compile_logp_dlogp(graph, graph.replace_rvs_by_values([graph[n] for n in density.names]))
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.normal(0.0, 0.8, size=density.n_dim)
        point = {v: part.reshape(s) for v, part, s in zip(values, np.split(x, np.cumsum(sizes)[:-1]), shapes,
                                                           strict=True)}
        reference_logp, reference_dlogp, *expanded = graphs(point)
        assert_density_is_the_graphs(density, x, reference_logp, reference_dlogp)
        stored = density.expand(x)
        for name, reference in zip(density.names, expanded, strict=True):
            np.testing.assert_allclose(stored[name], reference, rtol=1e-12)


def test_a_point_where_the_density_overflows_is_rejected(rfm):
    _, density = _density(bc.BetaGeoModel(covariates=["spend"]), rfm)
    x = np.zeros(density.n_dim)
    x[0] = 800.0  # r = e^800
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow is the sampler's business, not a user's warning
        value, grad = density.logp_and_grad(x)
    assert value == -np.inf and np.all(grad == 0.0)


def test_configurations_it_does_not_cover_are_sampled_through_the_graph(rfm):
    assert _density(bc.BetaGeoModel(), rfm)[1] is None  # no covariates: the graph, as before
    assert _density(bc.BetaGeoModel({"r": bc.Prior("HalfStudentT", nu=3.0, sigma=2.0)}, covariates=["spend"]),
                    rfm)[1] is None
    assert _density(bc.BetaGeoModel({"purchase_coef": bc.Prior("StudentT", nu=3.0)}, covariates=["spend"]),
                    rfm)[1] is None
    groups = rfm.assign(segment=np.where(rfm["member"], "m", "n"))
    assert _density(bc.BetaGeoModel(covariates=["spend"], group="segment", pooling="none"), groups)[1] is None
    # the Pareto/NBD's dropout mean and cv2 with a prior the density does not write out, or in groups
    assert _density(bc.ParetoNBDModel({"dropout_cv2": bc.Prior("HalfStudentT", nu=3.0, sigma=2.0)},
                                      covariates=["spend"]), rfm)[1] is None
    assert _density(bc.ParetoNBDModel(covariates=["spend"], group="segment", pooling="none"), groups)[1] is None
    assert _density(bc.ParetoNBDModel(), rfm)[1] is None
