"""bayesclv: Bayesian customer-lifetime-value models on PyMC and ArviZ.

The public API in one place::

    from bayesclv import rfm_summary, BetaGeoModel, GammaGammaModel, customer_lifetime_value

Names are imported on first use (PEP 562): ``import bayesclv`` costs almost
nothing, and a script that only fits a model never loads matplotlib, the report
or the database drivers. ``benchmarks/import_time.py`` measures both the import
and the first use against ``import pymc``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Each public name and the module that defines it; a module's own name maps to itself.
_SOURCES = {
    "BetaGeoBetaBinomModel": "bayesclv.models",
    "BetaGeoCNBDModel": "bayesclv.models",
    "BetaGeoModel": "bayesclv.models",
    "EvaluationResult": "bayesclv.evaluate",
    "GammaGammaModel": "bayesclv.models",
    "GompertzNBDModel": "bayesclv.models",
    "HierarchicalBetaGeoModel": "bayesclv.models",
    "HierarchicalParetoNBDModel": "bayesclv.models",
    "JointSpendBetaGeoModel": "bayesclv.models",
    "JointSpendParetoNBDModel": "bayesclv.models",
    "ModifiedBetaGeoCNBDModel": "bayesclv.models",
    "ModifiedBetaGeoModel": "bayesclv.models",
    "ParetoGGGModel": "bayesclv.models",
    "ParetoNBDModel": "bayesclv.models",
    "Prior": "bayesclv.priors",
    "ShiftedBetaGeoModel": "bayesclv.models",
    "TimeVaryingParetoNBDModel": "bayesclv.models",
    "build_report": "bayesclv.report",
    "compare": "bayesclv.comparison",
    "covariate_paths": "bayesclv.data",
    "compare_groups": "bayesclv.offers",
    "cumulative_gain": "bayesclv.offers",
    "customer_lifetime_value": "bayesclv.clv",
    "datasets": "bayesclv.datasets",
    "errors": "bayesclv.errors",
    "evaluate": "bayesclv.evaluate",
    "expected_tracking": "bayesclv.evaluate",
    "first_purchase_cohort": "bayesclv.data",
    "frequency_ppc": "bayesclv.checks",
    "group_totals": "bayesclv.segment",
    "incremental_value": "bayesclv.offers",
    "intervals": "bayesclv.summaries",
    "key_drivers": "bayesclv.drivers",
    "lifecycle_stages": "bayesclv.segment",
    "load": "bayesclv.models",
    "plots": "bayesclv.plots",
    "predict": "bayesclv.customer_table",
    "repeat_purchase_tracking": "bayesclv.data",
    "report": "bayesclv.report",
    "rfm_scores": "bayesclv.segment",
    "rfm_summary": "bayesclv.data",
    "segment": "bayesclv.segment",
    "spend_drivers": "bayesclv.drivers",
    "stage_summary": "bayesclv.segment",
    "targeting": "bayesclv.offers",
    "time_varying_summary": "bayesclv.data",
    "top_membership": "bayesclv.segment",
    "validate_rfm": "bayesclv.data",
    "value_tiers": "bayesclv.segment",
}

__all__ = sorted([*_SOURCES, "__version__"])


def __getattr__(name: str):
    """Import the module behind a public name on first access and keep the name here."""
    if name not in _SOURCES:
        raise AttributeError(f"module 'bayesclv' has no attribute {name!r}")
    module = importlib.import_module(_SOURCES[name])
    value = module if module.__name__ == f"bayesclv.{name}" else getattr(module, name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The package module, so that ``bc.evaluate`` stays the function.

    Importing the submodule ``bayesclv.evaluate`` (from anywhere, at any time) binds
    the module to the package's ``evaluate`` attribute; a data descriptor on the
    module's type takes precedence over that binding.
    """

    @property
    def evaluate(self):
        """The :func:`bayesclv.evaluate.evaluate` function."""
        return importlib.import_module("bayesclv.evaluate").evaluate

    @evaluate.setter
    def evaluate(self, value) -> None:
        pass  # the import system's binding of the submodule: the function keeps the name


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # the same names for type checkers and documentation tools, which do not run __getattr__
    from bayesclv import datasets, errors, plots, report, segment
    from bayesclv.checks import frequency_ppc
    from bayesclv.clv import customer_lifetime_value
    from bayesclv.comparison import compare
    from bayesclv.customer_table import predict
    from bayesclv.data import (
        covariate_paths,
        first_purchase_cohort,
        repeat_purchase_tracking,
        rfm_summary,
        time_varying_summary,
        validate_rfm,
    )
    from bayesclv.drivers import key_drivers, spend_drivers
    from bayesclv.evaluate import EvaluationResult, evaluate, expected_tracking
    from bayesclv.models import (
        BetaGeoBetaBinomModel,
        BetaGeoCNBDModel,
        BetaGeoModel,
        GammaGammaModel,
        GompertzNBDModel,
        HierarchicalBetaGeoModel,
        HierarchicalParetoNBDModel,
        JointSpendBetaGeoModel,
        JointSpendParetoNBDModel,
        ModifiedBetaGeoCNBDModel,
        ModifiedBetaGeoModel,
        ParetoGGGModel,
        ParetoNBDModel,
        ShiftedBetaGeoModel,
        TimeVaryingParetoNBDModel,
        load,
    )
    from bayesclv.offers import compare_groups, cumulative_gain, incremental_value, targeting
    from bayesclv.priors import Prior
    from bayesclv.report import build_report
    from bayesclv.segment import group_totals, lifecycle_stages, rfm_scores, stage_summary, top_membership, value_tiers
    from bayesclv.summaries import intervals
