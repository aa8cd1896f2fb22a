"""Model classes: thin declarations of priors, data columns and a family's formulas on a shared contract.

:mod:`~bayesclv.models.contract` is what every fitted model offers;
:class:`CLVModel` (fit, state, save) and the prediction mixins implement it
for the population models (:class:`~bayesclv.models.pooled.PooledModel`) and
the individual-level ones (:mod:`~bayesclv.models.hierarchical`).
"""

from bayesclv.models.base import CLVModel
from bayesclv.models.bgbb import BetaGeoBetaBinomModel
from bayesclv.models.bgnbd import BetaGeoModel
from bayesclv.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from bayesclv.models.contract import FittedModel, ResidualModel, RetentionModel, SpendModel, TransactionModel
from bayesclv.models.diagnostics import FitDiagnostics
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.ggomnbd import GompertzNBDModel
from bayesclv.models.hierarchical import HierarchicalBetaGeoModel, HierarchicalParetoNBDModel
from bayesclv.models.joint_spend import JointSpendBetaGeoModel, JointSpendParetoNBDModel
from bayesclv.models.mbgnbd import ModifiedBetaGeoModel
from bayesclv.models.paretoggg import ParetoGGGModel
from bayesclv.models.paretonbd import ParetoNBDModel
from bayesclv.models.paretonbd_dynamic import TimeVaryingParetoNBDModel
from bayesclv.models.persistence import load
from bayesclv.models.shifted_bg import ShiftedBetaGeoModel

__all__ = ["BetaGeoBetaBinomModel", "BetaGeoCNBDModel", "BetaGeoModel", "CLVModel", "FitDiagnostics", "FittedModel",
           "GammaGammaModel", "GompertzNBDModel", "HierarchicalBetaGeoModel", "HierarchicalParetoNBDModel",
           "JointSpendBetaGeoModel", "JointSpendParetoNBDModel",
           "ModifiedBetaGeoCNBDModel", "ModifiedBetaGeoModel", "ParetoGGGModel", "ParetoNBDModel", "ResidualModel", "RetentionModel",
           "ShiftedBetaGeoModel", "SpendModel",
           "TimeVaryingParetoNBDModel", "TransactionModel", "load"]
