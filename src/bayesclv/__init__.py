"""bayesclv: Bayesian customer-lifetime-value models on PyMC and ArviZ.

The public API in one place::

    from bayesclv import rfm_summary, BetaGeoModel, GammaGammaModel, customer_lifetime_value
"""

from bayesclv import datasets, errors
from bayesclv.clv import customer_lifetime_value, intervals
from bayesclv.data import rfm_summary, validate_rfm
from bayesclv.drivers import key_drivers
from bayesclv.evaluate import EvaluationResult, compare, evaluate
from bayesclv.models import (
    BetaGeoModel,
    GammaGammaModel,
    HierarchicalBetaGeoModel,
    HierarchicalParetoNBDModel,
    ParetoNBDModel,
    load,
)
from bayesclv.priors import Prior

__version__ = "0.1.0"

__all__ = [
    "BetaGeoModel",
    "EvaluationResult",
    "GammaGammaModel",
    "HierarchicalBetaGeoModel",
    "HierarchicalParetoNBDModel",
    "ParetoNBDModel",
    "Prior",
    "__version__",
    "compare",
    "customer_lifetime_value",
    "datasets",
    "errors",
    "evaluate",
    "intervals",
    "key_drivers",
    "load",
    "rfm_summary",
    "validate_rfm",
]
