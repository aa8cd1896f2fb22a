"""Pareto/NBD model class (Schmittlein, Morrison & Colombo 1987), with optional static covariates."""

from __future__ import annotations

import pymc as pm

from bayesclv.formulas import paretonbd
from bayesclv.models.covariates import CovariateEffects, Target
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.pooling import quantity_dims
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(CovariateEffects, ResidualPredictions, PooledTransactionModel):
    """Pareto/NBD model of repeat purchases with exponential lifetimes.

    The likelihood is evaluated without the Gauss hypergeometric function (see
    :mod:`bayesclv.formulas.paretonbd`), so NUTS gradients are cheap and
    stable and full Bayesian inference is the default.

    The dropout rates ``mu ~ Gamma(s, beta)`` are parameterised for sampling by
    their mean ``dropout_mean = s / beta`` (per time unit) and squared
    coefficient of variation ``dropout_cv2 = 1 / s``. The data pin down the
    mean well but say little about the heterogeneity; in ``(s, beta)`` that
    shows up as a long curved ridge (``s, beta -> infinity`` at fixed
    ``s/beta``) on which NUTS mixes badly, while in these coordinates the
    posterior is close to independent. ``s`` and ``beta`` are recorded in the
    posterior as deterministic functions.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``dropout_mean``,
        ``dropout_cv2``. Defaults (weakly informative): ``r ~ HalfNormal(50)``,
        ``alpha ~ HalfNormal(500)`` (a time scale, in the data's unit),
        ``dropout_mean ~ HalfNormal(1)`` (per time unit), ``dropout_cv2 ~ HalfNormal(10)``;
        each covariate coefficient ``Normal(0, 1)`` per sd of its covariate.
        With partial pooling, the groups are pooled in these sampling
        coordinates (``log_dropout_mean_*``, ``log_dropout_cv2_*``).
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.
    covariates : list of str, optional
        Numeric customer-level columns of the data that act on both processes
        (static, one value per customer). With ``z_i`` a customer's
        covariates standardised by the fitted data's means and sds:
        ``alpha_i = alpha exp(-purchase_coef . z_i)`` and
        ``beta_i = beta exp(-dropout_coef . z_i)``, so the mean purchase rate
        and the mean dropout rate are multiplied by ``exp(purchase_coef . z_i)``
        and ``exp(dropout_coef . z_i)``; ``alpha, s, beta`` (and
        ``dropout_mean``) are those of a customer with average covariates. See
        :mod:`bayesclv.models.covariates` and :func:`bayesclv.key_drivers`.
    purchase_covariates, dropout_covariates : list of str, optional
        Separate lists per process (each defaults to ``covariates``).
    """

    parameter_names = paretonbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "dropout_mean": Prior("HalfNormal", sigma=1.0),
        "dropout_cv2": Prior("HalfNormal", sigma=10.0),
    }
    formulas = paretonbd
    display_name = "Pareto/NBD"
    covariate_targets = {
        "purchase_coef": Target("purchase", "alpha", -1.0, 1.0),
        "dropout_coef": Target("dropout", "beta", -1.0, 1.0),
    }
    driver_latents = {"purchase": "log_lambda", "dropout": "log_mu"}
    samples_covariate_density = True
    gamma_mean_cv2 = ("dropout_mean", "dropout_cv2", "s", "beta")  # as _parameters computes them

    def _parameters(self):
        r, alpha = self._quantity("r"), self._quantity("alpha")
        mean, cv2 = self._quantity("dropout_mean"), self._quantity("dropout_cv2")
        dims = quantity_dims(self.pooling)
        s = pm.Deterministic("s", 1.0 / cv2, dims=dims)
        beta = pm.Deterministic("beta", 1.0 / (cv2 * mean), dims=dims)
        return {"r": r, "alpha": alpha, "s": s, "beta": beta}
