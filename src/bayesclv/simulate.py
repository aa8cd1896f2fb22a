"""Simulators of the models' generative processes, under stable public names.

Each simulator lives with its model family in :mod:`bayesclv.formulas`; this
module gathers them for users. Two kinds:

* ``simulate_*``: calibration-period histories ``(frequency, recency)`` of new
  customers observed for ``T`` time units, drawing each customer's latent
  rates from the population distribution (synthetic data, parameter
  recovery, simulation-based calibration); ``simulate_gammagamma`` draws mean
  spend for given purchase counts.
* ``future_purchases_*``: purchase counts in ``(T, T+t]`` for customers with a
  known history, drawing the latent state from its posterior given the
  history and the parameters (posterior predictive simulation).
"""

from bayesclv.formulas.bgnbd import simulate_future_purchases as future_purchases_bgnbd
from bayesclv.formulas.bgnbd import simulate_population as simulate_bgnbd
from bayesclv.formulas.gammagamma import simulate_population as simulate_gammagamma
from bayesclv.formulas.individual_bgnbd import simulate_future_purchases as future_purchases_individual_bgnbd
from bayesclv.formulas.individual_bgnbd import simulate_population as simulate_hierarchical_bgnbd
from bayesclv.formulas.individual_paretonbd import simulate_future_purchases as future_purchases_individual_paretonbd
from bayesclv.formulas.individual_paretonbd import simulate_population as simulate_hierarchical_paretonbd
from bayesclv.formulas.paretonbd import simulate_future_purchases as future_purchases_paretonbd
from bayesclv.formulas.paretonbd import simulate_population as simulate_paretonbd

__all__ = [
    "future_purchases_bgnbd",
    "future_purchases_individual_bgnbd",
    "future_purchases_individual_paretonbd",
    "future_purchases_paretonbd",
    "simulate_bgnbd",
    "simulate_gammagamma",
    "simulate_hierarchical_bgnbd",
    "simulate_hierarchical_paretonbd",
    "simulate_paretonbd",
]
