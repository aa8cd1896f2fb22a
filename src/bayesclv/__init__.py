"""bayesclv: Bayesian customer-lifetime-value models on PyMC and ArviZ.

The public API in one place::

    from bayesclv import rfm_summary, BetaGeoModel, GammaGammaModel, customer_lifetime_value
"""

from bayesclv import datasets, errors, plots, report, segment
from bayesclv.checks import frequency_ppc
from bayesclv.clv import customer_lifetime_value
from bayesclv.comparison import compare
from bayesclv.data import first_purchase_cohort, repeat_purchase_tracking, rfm_summary, validate_rfm
from bayesclv.drivers import key_drivers, spend_drivers
from bayesclv.evaluate import EvaluationResult, evaluate, expected_tracking
from bayesclv.models import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    GammaGammaModel,
    HierarchicalBetaGeoModel,
    HierarchicalParetoNBDModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    load,
)
from bayesclv.offers import compare_groups, cumulative_gain, incremental_value, targeting
from bayesclv.priors import Prior
from bayesclv.report import build_report
from bayesclv.segment import group_totals, lifecycle_stages, rfm_scores, stage_summary, top_membership, value_tiers
from bayesclv.summaries import intervals

__version__ = "0.1.0"

__all__ = [
    "BetaGeoCNBDModel",
    "BetaGeoModel",
    "EvaluationResult",
    "GammaGammaModel",
    "HierarchicalBetaGeoModel",
    "HierarchicalParetoNBDModel",
    "ModifiedBetaGeoCNBDModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "Prior",
    "__version__",
    "build_report",
    "compare",
    "compare_groups",
    "cumulative_gain",
    "customer_lifetime_value",
    "datasets",
    "errors",
    "evaluate",
    "expected_tracking",
    "first_purchase_cohort",
    "frequency_ppc",
    "group_totals",
    "incremental_value",
    "intervals",
    "key_drivers",
    "lifecycle_stages",
    "load",
    "repeat_purchase_tracking",
    "plots",
    "report",
    "rfm_scores",
    "rfm_summary",
    "segment",
    "spend_drivers",
    "stage_summary",
    "targeting",
    "top_membership",
    "validate_rfm",
    "value_tiers",
]
