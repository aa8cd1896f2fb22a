"""Shared fixtures: CDNOW sample RFM and fitted MAP models (fitted once per session)."""

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
