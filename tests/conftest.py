"""Shared fixtures: CDNOW sample RFM, fitted MAP models and NUTS fits (each fitted once per session)."""

import warnings

import pytest

import bayesclv as bc

PUBLISHED = {
    "BetaGeoModel": {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "ParetoNBDModel": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
    "GammaGammaModel": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


@pytest.fixture(scope="session")
def cdnow_rfm():
    return bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")


@pytest.fixture(scope="session")
def map_models(cdnow_rfm):
    return {
        name: getattr(bc, name)().fit(cdnow_rfm, method="map", progressbar=False)
        for name in PUBLISHED
    }


@pytest.fixture(scope="session")
def nuts_models(cdnow_rfm):
    """BG/NBD and Pareto/NBD by NUTS on the CDNOW sample (2 chains of 300 draws after 300 tuning steps).

    One fit per model for every file that checks a sampled posterior (test_arviz, test_models, test_speed);
    the tests only read them. The short chains can fall under the ESS the warning asks for, by design.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        return {name: getattr(bc, name)().fit(cdnow_rfm, draws=300, tune=300, chains=2, random_seed=11,
                                              progressbar=False)
                for name in ("BetaGeoModel", "ParetoNBDModel")}
