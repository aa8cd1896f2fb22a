"""The direct log density (bayesclv.models.direct_density): the PyMC graph's density without the graph.

References: SciPy's log densities of the priors, the family's summed kernel (tested against the
quadrature references in test_discrete_formulas.py), PyMC's compiled ``logp``/``dlogp`` of the same
model; central differences for the gradient. Where it does not apply it must say so (None), so that
the fit samples the graph.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesclv as bc
from bayesclv.data.discrete import censor_retention
from bayesclv.datasets import load_retention
from bayesclv.errors import ConvergenceWarning
from bayesclv.formulas import shifted_bg
from bayesclv.formulas._prior_density import PRIOR_CODES
from bayesclv.models.direct_density import log_prior_and_slope, differentiated_prior, direct_density
from density_checks import assert_density_is_the_graphs, compile_logp_dlogp

PRIORS = [  # each with its SciPy reference
    (bc.Prior("HalfNormal", sigma=50.0), stats.halfnorm(scale=50.0)),
    (bc.Prior("HalfNormal", tau=4.0), stats.halfnorm(scale=0.5)),
    (bc.Prior("Exponential", lam=2.0), stats.expon(scale=0.5)),
    (bc.Prior("Exponential", scale=3.0), stats.expon(scale=3.0)),
    (bc.Prior("Exponential"), stats.expon()),  # PyMC's default, scale 1
    (bc.Prior("HalfNormal"), stats.halfnorm()),
    (bc.Prior("Gamma", alpha=2.0, beta=3.0), stats.gamma(2.0, scale=1 / 3.0)),
    (bc.Prior("Gamma", mu=2.0, sigma=0.5), stats.gamma(16.0, scale=1 / 8.0)),
    (bc.Prior("LogNormal", mu=0.3, sigma=2.0), stats.lognorm(2.0, scale=np.exp(0.3))),
    (bc.Prior("LogNormal", tau=0.25), stats.lognorm(2.0)),
]


@pytest.fixture(scope="module")
def years_1_7():
    return censor_retention(load_retention(), 7)


def _density(model, data):
    df = model._prepare(data)
    graph = model._graph(df, summed=True)
    return graph, direct_density(model, graph, model._stored_variables(graph))


@pytest.mark.parametrize(("prior", "reference"), PRIORS, ids=[repr(p) for p, _ in PRIORS])
def test_prior_log_densities_against_scipy(prior, reference):
    code, first, second = differentiated_prior(prior)
    assert code == PRIOR_CODES[prior.distribution]
    for theta in (1e-6, 0.3, 1.0, 7.5, 400.0):
        value, slope = log_prior_and_slope(code, first, second, theta)
        assert value == pytest.approx(reference.logpdf(theta), rel=1e-12, abs=1e-12)
        # the derivative in log theta, the sampler's coordinate, by central differences
        fd = (reference.logpdf(theta * np.exp(1e-5)) - reference.logpdf(theta * np.exp(-1e-5))) / 2e-5
        assert theta * slope == pytest.approx(fd, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize(("priors", "group"), [
    (None, "segment"),  # the defaults, one pair per segment
    ({"alpha": bc.Prior("Gamma", mu=1.0, sigma=2.0), "beta": bc.Prior("LogNormal", mu=0.5, sigma=1.5)}, None),
    ({"alpha": bc.Prior("Exponential", scale=2.0), "beta": bc.Prior("HalfNormal", tau=0.01)}, "segment"),
])
def test_direct_density_is_the_graphs(years_1_7, priors, group):
    """Value and gradient equal PyMC's compiled logp/dlogp of the model's graph (its float32 prior
    constants differ in the 8th digit) and central differences of the direct value."""
    model = bc.ShiftedBetaGeoModel(priors, group=group, pooling="none" if group else None)
    graph, density = _density(model, years_1_7)
    assert density is not None and density.n_dim == (4 if group else 2)
    graphs = compile_logp_dlogp(graph)
    names = [graph.rvs_to_values[rv].name for rv in graph.free_RVs]
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.normal(0.0, 1.5, size=density.n_dim)
        point = dict(zip(names, np.split(x, len(names)), strict=True))
        if not group:
            point = {k: v[0] for k, v in point.items()}
        assert_density_is_the_graphs(density, x, *graphs(point))
        expanded = density.expand(x)
        assert expanded["alpha"].shape == ((2,) if group else ())
        np.testing.assert_allclose(np.ravel(expanded["beta"]), np.exp(np.split(x, 2)[1]))


def test_a_point_where_the_density_overflows_is_rejected(years_1_7):
    _, density = _density(bc.ShiftedBetaGeoModel(), years_1_7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow is the sampler's business, not a user's warning
        value, grad = density.logp_and_grad(np.array([800.0, 0.0]))
    assert value == -np.inf and np.all(grad == 0.0)


def test_configurations_it_does_not_cover_are_sampled_through_the_graph(years_1_7):
    assert _density(bc.ShiftedBetaGeoModel(group="segment", pooling="partial"), years_1_7)[1] is None
    assert _density(bc.ShiftedBetaGeoModel({"alpha": bc.Prior("HalfStudentT", nu=3.0, sigma=2.0)}), years_1_7)[1] is None
    assert _density(bc.ShiftedBetaGeoModel({"beta": bc.Prior("HalfNormal", sigma=[1.0, 2.0])}, group="segment",
                                           pooling="none"), years_1_7)[1] is None
    # a family that does not ask for it (its results stay those of the compiled graph)
    rfm = pd.DataFrame({"customer_id": [1, 2, 3], "frequency": [0, 2, 5], "recency": [0.0, 10.0, 30.0],
                        "T": [20.0, 30.0, 40.0]})
    rfm.attrs["time_unit"] = "W"
    assert _density(bc.ModifiedBetaGeoModel(), rfm)[1] is None


def test_the_fit_samples_the_direct_density(years_1_7, monkeypatch):
    """nutpie gets the direct density (no graph compiled), and the posterior is the model's: the
    projection of the high-end segment's year-8 survivors is near the published estimates' (0.91 of
    the year-7 survivors)."""
    import bayesclv.models.sampling as sampling

    import bayesclv.models.pooled as pooled

    seen, built = [], []
    original = sampling.compile_nutpie_model
    monkeypatch.setattr(sampling, "compile_nutpie_model",
                        lambda graph, names, density=None: seen.append(density) or original(graph, names, density))
    tables = pooled.summed_tables
    monkeypatch.setattr(pooled, "summed_tables", lambda *args: built.append(tables(*args)) or built[-1])
    model = bc.ShiftedBetaGeoModel(group="segment", pooling="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short chains
        model.fit(years_1_7, draws=300, tune=300, chains=2, cores=1, random_seed=2, progressbar=False)
    assert len(seen) == 1 and seen[0] is not None
    # the kernel's tables are built once, by the graph, and the density samples those very arrays
    assert len(built) == 1 and all(a is b for a, b in zip(seen[0].tables, built[0], strict=True))
    post = model.posterior
    assert post["alpha"].dims == ("chain", "draw", "group") and post.sizes["draw"] == 300
    assert model.diagnostics["divergences"] == 0
    ratio = float(model.population_survival([8]).sel(group="high end").mean()
                  / model.population_survival([7]).sel(group="high end").mean())
    published = shifted_bg.survival(8, 0.668, 3.806) / shifted_bg.survival(7, 0.668, 3.806)
    assert ratio == pytest.approx(published, rel=0.01)


def test_a_prior_it_does_not_cover_falls_back_to_the_graph_with_the_same_posterior(years_1_7, monkeypatch):
    """Weibull(1, 10) is Exponential(0.1) under another name: the direct density does not write the
    Weibull out, so that fit samples the graph; both fits must give the one posterior (same seed, the
    same density to rounding: the draws agree far closer than their Monte Carlo error)."""
    import bayesclv.models.sampling as sampling

    seen = []
    original = sampling.compile_nutpie_model
    monkeypatch.setattr(sampling, "compile_nutpie_model",
                        lambda graph, names, density=None: seen.append(density) or original(graph, names, density))
    means = []
    for prior in (bc.Prior("Exponential", lam=0.1), bc.Prior("Weibull", alpha=1.0, beta=10.0)):
        model = bc.ShiftedBetaGeoModel({"alpha": prior, "beta": prior})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # short chains
            model.fit(years_1_7, draws=300, tune=300, chains=2, cores=1, random_seed=3, progressbar=False)
        means.append({k: float(model.posterior[k].mean()) for k in ("alpha", "beta")})
        sd = {k: float(model.posterior[k].std()) for k in ("alpha", "beta")}
    assert seen[0] is not None and seen[1] is None
    for k in ("alpha", "beta"):
        assert means[1][k] == pytest.approx(means[0][k], abs=0.25 * sd[k])
