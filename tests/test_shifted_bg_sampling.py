"""The shifted-BG's NUTS settings: simulated data whose posterior reaches the prior's tail fit without divergences.

The full check is the SBC run (``validation/sbc_discrete.py``, results in
``validation/results/sbc_discrete_200/``); the published estimates are tested in
test_discrete_models.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.data.discrete import censor_retention
from bayesclv.formulas import shifted_bg as sbg


def test_sbg_nuts_default_has_no_divergences_where_the_concentration_is_weakly_identified():
    """One cohort of 300 observed for 8 periods, alpha 8.48, beta 16.53 (an SBC prior draw): the data pin
    the mean churn probability, hardly the concentration. At ``target_accept=0.8`` these data gave 6-9
    divergent transitions in 1,000 draws; the model's default (0.95) gives none, and the posterior covers
    the truth."""
    sim = sbg.simulate_population(np.full(300, 8.0), 8.48, 16.53, rng=2)
    data = pd.DataFrame({"customer_id": np.arange(300), "periods": sim["periods"], "churned": sim["churned"]})
    model = bc.ShiftedBetaGeoModel()
    assert model.default_target_accept == 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains warn about ESS by design
        model.fit(data, draws=500, tune=500, chains=2, cores=1, progressbar=False, random_seed=1)
    assert model.diagnostics["divergences"] == 0
    assert model.diagnostics["max_r_hat"] < 1.02
    post = model.posterior
    mean = (post["alpha"] / (post["alpha"] + post["beta"])).values.ravel()
    low, high = np.quantile(mean, [0.005, 0.995])
    assert low < 8.48 / (8.48 + 16.53) < high


class _Stop(Exception):
    """Raised in place of the sampler once its settings are seen."""


@pytest.mark.parametrize("pooling", ["complete", "none", "partial"])
def test_sbg_fit_hands_the_sampler_its_target_under_every_pooling(pooling, monkeypatch):
    """The sBG's 0.95 reaches NUTS under each pooling, where a family without its own target samples
    complete and no pooling at 0.8 (partial pooling raises every family to 0.95); an explicit
    ``target_accept`` wins."""
    import bayesclv.models.inference as inference

    seen = []

    def sampler(*args, target_accept, **kwargs):
        seen.append(target_accept)
        raise _Stop

    monkeypatch.setattr(inference, "_nuts", sampler)
    group = None if pooling == "complete" else "segment"
    data = censor_retention(bc.datasets.load_retention(), 7)
    for given in (None, 0.85):
        with pytest.raises(_Stop):
            bc.ShiftedBetaGeoModel(group=group, pooling=pooling).fit(data, target_accept=given, progressbar=False)
    assert seen == [0.95, 0.85]
    other = bc.BetaGeoModel(group=group, pooling=pooling).default_target_accept
    assert other == (0.95 if pooling == "partial" else 0.8)
