"""The fast paths give the same numbers as the slow ones.

- The Pareto/NBD lifetime-integral Op has a native numba implementation (used by
  nutpie and the NUMBA linker) that agrees with its Python ``perform``.
- Predictions evaluated once per distinct ``(frequency, T)`` / history, in chunks
  on every core, equal the formulas evaluated customer by customer.
- Posterior agreement: NUTS on the compressed likelihood (distinct rows, weights;
  nutpie) and NUTS on the plain per-customer likelihood (PyMC's sampler) give the
  same posterior means within Monte Carlo error.
"""

import warnings

import arviz_stats as azs
import numpy as np
import pymc as pm
import pytensor
import pytest
from pytensor.compile.mode import Mode

import bayesclv as bc
import bayesclv.chunks
from bayesclv.chunks import map_chunks
from bayesclv.formulas import PT, bgnbd, paretonbd
from bayesclv.formulas._lifetime_integral import log_lifetime_integral_op
from bayesclv.testing import jittered_posterior


def test_lifetime_integral_op_runs_natively_in_numba_and_matches_python():
    rng = np.random.default_rng(3)
    n = 50
    args = [rng.uniform(0.2, 30.0, n), rng.uniform(1.01, 20.0, n), np.zeros(n), rng.uniform(0.0, 50.0, n)]
    q0 = np.log(rng.uniform(0.5, 20.0, n))
    args += [q0, q0 + rng.uniform(0.0, 3.0, n)]
    inputs = [pytensor.tensor.vector() for _ in range(6)]
    outputs = log_lifetime_integral_op(*inputs)
    cost = outputs[0].sum()
    graph = [outputs[0], *pytensor.grad(cost, inputs)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Numba will use object mode")
        native = pytensor.function(inputs, graph, mode="NUMBA")(*args)
    python = pytensor.function(inputs, graph, mode=Mode(linker="py", optimizer="fast_run"))(*args)
    for fast, slow in zip(native, python, strict=True):
        np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=1e-300)
    # and the gradient is the derivative: central differences of log J in rho
    h = 1e-6
    f = pytensor.function(inputs, outputs[0], mode="NUMBA")
    up, down = list(args), list(args)
    up[0], down[0] = args[0] + h, args[0] - h
    np.testing.assert_allclose(native[1], (f(*up) - f(*down)) / (2 * h), rtol=1e-6)


@pytest.mark.parametrize("name, formulas, params", [
    ("BetaGeoModel", bgnbd, ("r", "alpha", "a", "b")),
    ("ParetoNBDModel", paretonbd, ("r", "alpha", "s", "beta")),
])
@pytest.mark.parametrize("chunk_elements", [None, 14 * 97])  # one chunk; 97-row chunks on every core
def test_predictions_on_distinct_histories_equal_per_customer_formulas(cdnow_rfm, name, formulas, params,
                                                                        chunk_elements, monkeypatch):
    if chunk_elements is not None:
        monkeypatch.setattr(bayesclv.chunks, "CHUNK_ELEMENTS", chunk_elements)
    model = jittered_posterior(getattr(bc, name)().fit(cdnow_rfm, method="map", progressbar=False),
                               chains=2, draws=7, jitter=0.05, random_seed=1)
    post = model.posterior
    prm = {p: post[p].values[..., None] for p in params}
    x, tx, T = (cdnow_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for given_alive in (False, True):
        ep = model.expected_purchases(13.0, given_alive=given_alive)
        direct = formulas.expected_purchases(13.0, x, tx, T, **prm, given_alive=given_alive)
        np.testing.assert_allclose(ep.values, direct, rtol=1e-12)
        pa = model.probability_alive_at(8.0, given_alive=given_alive)
        direct = formulas.probability_alive_at(8.0, x, tx, T, **prm, given_alive=given_alive)
        np.testing.assert_allclose(pa.values, direct, rtol=1e-12)
    assert ep.dims == ("chain", "draw", "customer_id")
    np.testing.assert_array_equal(ep["customer_id"].values, cdnow_rfm["customer_id"].to_numpy())


def _per_customer_model(fitted_class, rfm):
    """The slow path: the same priors, one likelihood term per customer (no compression)."""
    template = fitted_class()
    with pm.Model() as model:
        params = template._parameters()
        cols = {c: rfm[c].to_numpy(dtype=float) for c in template.data_columns}
        pm.Potential("loglik", template._loglik(cols, params, PT).sum())
    return model


@pytest.mark.parametrize("cls", [bc.BetaGeoModel, bc.ParetoNBDModel])
def test_fast_and_slow_nuts_agree_within_monte_carlo_error(cdnow_rfm, nuts_models, cls):
    fast = nuts_models[cls.__name__]  # the compressed likelihood, sampled by nutpie: 2 chains of 300 draws
    names = list(cls.default_priors)
    # the slow path's 2 x 150 draws (a per-customer Pareto/NBD gradient costs ~20 ms): the bound below is in units of
    # both fits' Monte Carlo SEs, so fewer draws widen it by their own error only (by ~1.2 for equal ESS per draw)
    with _per_customer_model(cls, cdnow_rfm):
        slow = pm.sample(draws=150, tune=200, chains=2, cores=1, random_seed=12, progressbar=False,
                         compute_convergence_checks=False)
    fast_mean, fast_se = fast.posterior.mean(), azs.mcse(fast.idata, var_names=names, method="mean")
    slow_mean, slow_se = slow["posterior"].to_dataset().mean(), azs.mcse(slow, var_names=names, method="mean")
    for n in names:
        z = (float(fast_mean[n]) - float(slow_mean[n])) / np.hypot(float(fast_se[n]), float(slow_se[n]))
        assert abs(z) < 4.5, f"{cls.__name__}.{n}: posterior means differ by {z:.1f} Monte Carlo SEs"
    # and both are real posteriors of these data: centred near the published MLE (CDNOW sample)
    published = {"BetaGeoModel": ("r", 0.2426), "ParetoNBDModel": ("r", 0.553)}[cls.__name__]
    assert float(fast_mean[published[0]]) == pytest.approx(published[1], rel=0.15)


def test_map_chunks_covers_every_chunk_once_and_reraises_errors():
    seen = []
    map_chunks(seen.append, 10, 3)
    assert sorted(seen) == [0, 3, 6, 9]
    out = np.zeros(1000)

    def fill(start):
        out[start:start + 7] = np.arange(start, min(start + 7, 1000))

    map_chunks(fill, 1000, 7)
    np.testing.assert_array_equal(out, np.arange(1000))

    def fail(start):
        if start == 6:
            raise ValueError("chunk 6")

    with pytest.raises(ValueError, match="chunk 6"):
        map_chunks(fail, 10, 3)
