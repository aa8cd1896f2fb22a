"""Pareto/NBD model class (Schmittlein, Morrison & Colombo 1987)."""

from __future__ import annotations

from bayesclv.formulas import paretonbd
from bayesclv.models.transaction import TransactionModel
from bayesclv.priors import Prior
from bayesclv.simulate import future_purchases_paretonbd

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(TransactionModel):
    """Pareto/NBD model of repeat purchases with exponential lifetimes.

    The likelihood is evaluated without the Gauss hypergeometric function (see
    :mod:`bayesclv.formulas.paretonbd`), so NUTS gradients are cheap and
    stable and full Bayesian inference is the default.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``s``, ``beta``. Defaults:
        ``r, s ~ HalfNormal(50)``, ``alpha, beta ~ HalfNormal(500)`` (time
        scales, in the data's unit).
    """

    parameter_names = ("r", "alpha", "s", "beta")
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "s": Prior("HalfNormal", sigma=50.0),
        "beta": Prior("HalfNormal", sigma=500.0),
    }
    formulas = paretonbd
    simulator = staticmethod(future_purchases_paretonbd)
    display_name = "Pareto/NBD"
