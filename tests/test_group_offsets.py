"""Group offsets of the individual-level models: which parameterisation, and a grouped integrated fit.

The offsets are centred when every group holds at least ``CENTRED_GROUP_SIZE`` customers (the data
pin each offset down, and the non-centred ``group_z = offset / group_sd`` would follow ``group_sd``
along a funnel) and non-centred otherwise. The heavier agreement check against latent-variable NUTS
is ``validation/marginal_vs_latent_simulated.py --groups 3``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.models.latent import CENTRED_GROUP_SIZE
from bayesclv.simulate import simulate_hierarchical_paretonbd

B_TRUE = np.array([[-1.6, -3.0], [0.5, -0.4]])  # rows intercept, x; columns purchase, dropout
COV_TRUE = np.array([[0.6**2, 0.0], [0.0, 0.6**2]])
SHIFTS = np.array([[-0.5, 0.4], [0.0, 0.0], [0.5, -0.4]])  # each segment's intercept shift


def _segments(sizes: list[int], seed: int = 5) -> pd.DataFrame:
    """Customers of the hierarchical Pareto/NBD in segments ``s0, s1, ...`` shifted by ``SHIFTS``."""
    rng = np.random.default_rng(seed)
    frames = []
    for g, n in enumerate(sizes):
        x = rng.normal(size=n)
        T = np.round(rng.uniform(30, 52, size=n))
        B = B_TRUE + np.vstack([SHIFTS[g], np.zeros(2)])
        sim = simulate_hierarchical_paretonbd(T, B, COV_TRUE, covariates=np.column_stack([np.ones(n), x]), rng=rng)
        frames.append(pd.DataFrame({"frequency": sim["frequency"], "recency": sim["recency"], "T": T, "x": x,
                                    "segment": f"s{g}"}))
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "customer_id", [f"c{i}" for i in range(len(df))])
    df.attrs["time_unit"] = "W"
    return df


@pytest.mark.parametrize(("sizes", "centred"), [([CENTRED_GROUP_SIZE] * 2, True),
                                                ([CENTRED_GROUP_SIZE, CENTRED_GROUP_SIZE - 1], False)])
def test_offsets_are_centred_only_when_every_group_is_large(sizes, centred):
    graph = bc.HierarchicalParetoNBDModel(covariates=["x"], group="segment").build_model(_segments(sizes))
    free = {rv.name for rv in graph.free_RVs}
    assert ("group_offset" in free) is centred
    assert ("group_z" in free) is not centred
    assert "group_offset" in graph.named_vars  # the same posterior variable either way


def test_integrated_fit_with_large_groups_mixes_and_recovers_each_segments_intercepts():
    df = _segments([150, 150, 150])
    model = bc.HierarchicalParetoNBDModel(covariates=["x"], group="segment")
    with warnings.catch_warnings():  # 2 x 200 draws: the 3-group sd's ESS is short of 400, as expected
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        model.fit(df, draws=200, chains=2, random_seed=11, progressbar=False)
    assert model.diagnostics["latents"] == "integrated"
    # centred (seeds 11, 12): 1 and 0 divergences of 400, min bulk ESS 110 and 182; the non-centred offsets on
    # the same data gave 5 and 0 divergences, ESS 56 and 29
    assert model.diagnostics["divergences"] <= 2
    assert model.diagnostics["min_ess_bulk"] >= 80
    post = model.posterior
    intercepts = (post["coefficients"].sel(covariate="intercept") + post["group_offset"]).transpose(
        "chain", "draw", "group", "process")
    mean = intercepts.mean(("chain", "draw")).values
    sd = intercepts.std(("chain", "draw")).values
    truth = B_TRUE[0] + SHIFTS
    assert np.all(np.abs(mean - truth) < 3.5 * sd + 0.05), (mean, truth, sd)
    # the segments differ by 0.5 on each rate: the fit must tell them apart, not pool them to one
    assert np.all(np.diff(mean[:, 0]) > 0.2) and np.all(np.diff(mean[:, 1]) < -0.1), mean
    assert post["coefficients"].sel(covariate="x").mean(("chain", "draw")).values == pytest.approx(
        B_TRUE[1], abs=0.25)
