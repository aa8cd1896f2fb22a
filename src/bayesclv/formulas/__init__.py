"""Pure math of each model family: log-likelihoods and predictive quantities.

Log-likelihoods are written once against an array namespace (``PT`` for
PyTensor graphs, ``NP`` for NumPy); predictive quantities are NumPy functions
that broadcast over posterior draws and customers.
"""

from bayesclv.formulas import bgnbd, gammagamma, individual_bgnbd, individual_paretonbd, paretonbd
from bayesclv.formulas._ops import NP, PT

__all__ = ["NP", "PT", "bgnbd", "gammagamma", "individual_bgnbd", "individual_paretonbd", "paretonbd"]
