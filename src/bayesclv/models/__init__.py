"""PyMC model classes: thin wiring of priors, data and the formulas."""

from bayesclv.models.base import CLVModel, FitDiagnostics, load
from bayesclv.models.bgnbd import BetaGeoModel
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.hierarchical import HierarchicalBetaGeoModel, HierarchicalParetoNBDModel
from bayesclv.models.paretonbd import ParetoNBDModel
from bayesclv.models.transaction import TransactionModel

__all__ = ["BetaGeoModel", "CLVModel", "FitDiagnostics", "GammaGammaModel", "HierarchicalBetaGeoModel",
           "HierarchicalParetoNBDModel", "ParetoNBDModel",
           "TransactionModel", "load"]
