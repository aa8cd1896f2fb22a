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


def _loaded_after(statement: str) -> list[str]:
    """Top-level packages among ``HEAVY`` that a fresh interpreter has loaded after ``statement``."""
    probe = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return [name for name in HEAVY if name in out.split()]


def test_import_loads_no_plotting_report_or_database_library():
    assert _loaded_after("import bayesclv") == []


def test_fitting_and_predicting_names_load_no_plotting_or_database_library():
    statement = ("import bayesclv as bc; bc.BetaGeoModel; bc.GammaGammaModel; bc.rfm_summary; "
                 "bc.customer_lifetime_value; bc.intervals; bc.evaluate; bc.predict")
    assert _loaded_after(statement) == []


def test_plots_load_matplotlib_when_asked_for():
    assert _loaded_after("import bayesclv as bc; bc.plots") == ["matplotlib"]


@pytest.mark.parametrize("name", [n for n in bayesclv.__all__ if n != "__version__"])
def test_every_public_name_is_the_object_its_module_defines(name):
    value = getattr(bayesclv, name)
    module = importlib.import_module(bayesclv._SOURCES[name])
    assert value is (module if module.__name__ == f"bayesclv.{name}" else getattr(module, name))
    assert name in dir(bayesclv)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        bayesclv.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        from bayesclv import no_such_name  # noqa: F401
