"""Shared fixtures: CDNOW sample RFM, fitted MAP models and NUTS fits (each fitted once per session per worker),
and the suite's default of two worker processes."""

import warnings

import numpy as np
import pytest

import bayesclv as bc

PUBLISHED = {
    "BetaGeoModel": {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "ParetoNBDModel": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
    "GammaGammaModel": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


def purchase_pmf(model, t, data, n_max=150, negligible=1e-14):
    """``model.probability_of_purchases(n, t, data)`` for ``n = 0, 1, ...``, stacked on a new first axis.

    Each term is one contract call (checks, design, result array: ~15 ms even for 20 customers), so the
    terms stop once every draw's and customer's is below ``negligible`` and falling: past that point the
    purchase-count distributions of these models (mixtures of Poisson or NBD counts with a dropout mass at
    0) decay at least geometrically, and the tail left out is of the order of ``negligible``, far below the
    tolerances the tests check sums against. At most ``n_max`` terms.
    """
    terms = []
    for n in range(n_max):
        terms.append(model.probability_of_purchases(n, t, data).values)
        if n > 0 and terms[-1].max() < negligible and (terms[-1] <= terms[-2]).all():
            break
    return np.stack(terms)

#: Worker processes of a plain ``pytest`` run: CI has two cores. Each test file runs whole in one worker
#: (``--dist loadfile``), so a module fixture is fitted once and a file's graphs are compiled in one process;
#: numba never frees compiled code, so two processes also each keep about half of the session's compiled graphs
#: (benchmarks/results/test_suite_time.md, sessions 8 and 9).
WORKERS = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Run on ``WORKERS`` processes unless the command line chose (``-n 0``, ``-n 4``, ``-p no:xdist``, ``--pdb``)
    or names tests of one file only (they would all run in one worker, after a second process's imports).

    Set here rather than as ``-n 2`` in ``addopts``: with the option in ``addopts``, ``pytest -p no:xdist``
    fails on the unknown ``-n``. Runs before pytest-xdist's own hook (a conftest registers after it); workers
    (``config.workerinput``) are left alone.
    """
    files = {config.invocation_params.dir / arg.split("::")[0] for arg in config.args}
    one_file = len(files) == 1 and files.pop().is_file()
    if (config.pluginmanager.has_plugin("xdist") and not hasattr(config, "workerinput")
            and config.option.numprocesses is None and not config.option.usepdb
            and not config.option.collectonly and not one_file):
        config.option.numprocesses = WORKERS
        if config.option.dist == "no":
            config.option.dist = "loadfile"


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
