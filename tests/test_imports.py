"""``import bayesclv`` is light: public names load on first use (PEP 562), heavy libraries only when needed.

The import time itself is measured in ``benchmarks/import_time.py``, not here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import bayesclv

HEAVY = ("matplotlib", "duckdb", "dask", "sqlalchemy")


def _loaded_after(*statements: str) -> list[list[str]]:
    """Top-level packages among ``HEAVY`` that one fresh interpreter has loaded after each of ``statements`` in turn
    (one interpreter for all: starting one and importing the models costs ~10 CPU seconds)."""
    show = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = "\n".join(["import sys", *(f"{statement}\n{show}" for statement in statements)])
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return [[name for name in HEAVY if name in line.split()] for line in out.splitlines()[-len(statements):]]


def test_import_loads_no_plotting_report_or_database_library():
    assert _loaded_after("import bayesclv") == [[]]


def test_fitting_names_load_no_plotting_or_database_library_and_plots_load_matplotlib():
    # in turn: the names that fit and predict (no plotting, report or database library), then the plots
    # (matplotlib, which nothing before loaded)
    loaded = _loaded_after("import bayesclv as bc; bc.BetaGeoModel; bc.GammaGammaModel; bc.rfm_summary; "
                           "bc.customer_lifetime_value; bc.intervals; bc.evaluate; bc.predict",
                           "bc.plots")
    assert loaded == [[], ["matplotlib"]]


@pytest.mark.parametrize("name", [n for n in bayesclv.__all__ if n != "__version__"])
def test_every_public_name_is_the_object_its_module_defines(name):
    value = getattr(bayesclv, name)
    module = importlib.import_module(bayesclv._SOURCES[name])
    # a module's own name is the module, except a function named like its module (evaluate)
    assert value is (getattr(module, name) if name == "evaluate" or module.__name__ != f"bayesclv.{name}" else module)
    assert name in dir(bayesclv)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        bayesclv.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        from bayesclv import no_such_name  # noqa: F401


def test_evaluate_stays_the_function_whichever_import_comes_first():
    # the submodule of the same name is bound to the package by every import of it (here: through the report)
    probe = ("import bayesclv as bc, bayesclv.report, bayesclv.evaluate; bc.EvaluationResult; "
             "from bayesclv import evaluate; print(callable(bc.evaluate), bc.evaluate is evaluate, "
             "bc.evaluate.__module__)")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["True", "True", "bayesclv.evaluate"]
