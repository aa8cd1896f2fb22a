"""Key-driver analysis: which customer covariates move purchase rates, dropout and spend.

Each table summarises covariate effects with their posterior mean, sd,
interval (``arviz_stats``; ETI or HDI and its probability after ArviZ's
``stats.ci_kind``/``stats.ci_prob`` unless given), the posterior probability that the
effect is positive (``p_positive``) and the posterior mean of ``exp(effect)``
(``ratio_mean``): :func:`key_drivers` for the individual-level hierarchical
models (purchase and dropout), :func:`spend_drivers` for the Gamma-Gamma spend
model with covariates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.hierarchical import HierarchicalTransactionModel
from bayesclv.summaries import interval_bounds, interval_label, interval_settings

__all__ = ["key_drivers", "spend_drivers"]

SCALES = ("sd", "unit")


def key_drivers(model: HierarchicalTransactionModel, prob: float | None = None, per: str = "sd",
                method: str | None = None) -> pd.DataFrame:
    """Table of covariate effects on the purchase rate and on dropout, with uncertainty.

    Parameters
    ----------
    model : HierarchicalParetoNBDModel or HierarchicalBetaGeoModel
        Fitted with ``covariates=[...]``.
    prob : float, optional
        Probability inside the intervals; default ArviZ's ``rcParams["stats.ci_prob"]``.
    per : {"sd", "unit"}, default "sd"
        Effect of one standard deviation of the covariate (in the fitted data;
        comparable across covariates) or of one unit of it.
    method : {"eti", "hdi"}, optional
        Interval kind; default ArviZ's ``rcParams["stats.ci_kind"]``.

    Returns
    -------
    pandas.DataFrame
        One row per covariate and process (``purchase``, ``dropout``), columns
        ``latent`` (what the effect is additive on: ``log_lambda``, ``log_mu``
        or ``logit_p``), ``mean``, ``sd``, ``lower``, ``upper``,
        ``p_positive`` (posterior P(effect > 0)) and ``ratio_mean``
        (posterior mean of ``exp(effect)``: the multiplicative change in the
        purchase rate, the dropout rate, or the odds of dropout). A positive
        dropout effect means customers leave sooner. ``attrs`` hold
        ``prob``, ``method``, ``interval`` (its label), ``per`` and ``model``.

    Notes
    -----
    Spend is not covered: the individual-level models describe purchase
    counts only.
    """
    model.check_fitted()
    if not isinstance(model, HierarchicalTransactionModel):
        raise TypeError(f"key_drivers needs an individual-level hierarchical model, got {type(model).__name__}")
    if not model.covariates:
        raise ValueError(f"{type(model).__name__} was fitted without covariates: no drivers to report")
    if per not in SCALES:
        raise ValueError(f"per must be one of {SCALES}, got {per!r}")
    prob, method = interval_settings(prob, method)
    effects = model.posterior["coefficients"].sel(covariate=model.covariates)
    if per == "sd":
        effects = effects * model.scaling["sd"].to_xarray()
    lower, upper = interval_bounds(effects, prob, method)
    rows = []
    for cov in model.covariates:
        for k, process in enumerate(effects["process"].values):
            draws = effects.sel(covariate=cov, process=process).values.ravel()
            rows.append({
                "covariate": cov, "process": str(process), "latent": model.latent_names[k],
                "mean": float(draws.mean()), "sd": float(draws.std(ddof=1)),
                "lower": float(lower.sel(covariate=cov, process=process)),
                "upper": float(upper.sel(covariate=cov, process=process)),
                "p_positive": float((draws > 0).mean()),
                "ratio_mean": float(np.exp(draws).mean()),
            })
    table = pd.DataFrame(rows).set_index(["covariate", "process"])
    table.attrs = {"prob": prob, "method": method, "interval": interval_label(prob, "credible", method), "per": per,
                   "model": type(model).__name__}
    return table


def spend_drivers(model: GammaGammaModel, prob: float | None = None, method: str | None = None) -> pd.DataFrame:
    """Effects of the spend model's covariates on expected spend.

    Parameters
    ----------
    model : GammaGammaModel
        A fitted spend model with ``covariates``.
    prob : float, optional
        Probability inside the intervals; default ArviZ's ``rcParams["stats.ci_prob"]``.
    method : {"eti", "hdi"}, optional
        Interval kind; default ArviZ's ``rcParams["stats.ci_kind"]``.

    Returns
    -------
    pandas.DataFrame
        One row per covariate (index ``covariate``), columns ``mean``,
        ``sd``, ``lower``, ``upper`` (of the coefficient: the change
        in log expected spend per unit of the covariate), ``p_positive``
        (posterior probability that the effect is > 0) and ``ratio_mean``
        (posterior mean of ``exp(coefficient)``: the factor by which
        expected spend changes per unit). A MAP fit gives the point estimate
        in ``mean`` and ``ratio_mean`` and NaN elsewhere. ``attrs`` record
        ``prob``, ``method``, ``interval`` (its label; "point estimate (no
        posterior uncertainty)" for a MAP fit) and ``outcome``, ``"spend"``.

    Raises
    ------
    TypeError
        ``model`` is not a GammaGammaModel.
    ValueError
        The model has no covariates.
    """
    if not isinstance(model, GammaGammaModel):
        raise TypeError(f"spend_drivers needs a GammaGammaModel, got {type(model).__name__}")
    if not model.covariates:
        raise ValueError("the spend model has no covariates: fit GammaGammaModel(covariates=[...])")
    prob, method = interval_settings(prob, method)
    coef = model.posterior["spend_coef"]
    draws = coef.stack(sample=("chain", "draw")).transpose("covariate", "sample").values
    table = pd.DataFrame(index=pd.Index(model.covariates, name="covariate"))
    table["mean"] = draws.mean(axis=1)
    table["ratio_mean"] = np.exp(draws).mean(axis=1)
    point = draws.shape[1] == 1
    if not point:
        lower, upper = interval_bounds(coef, prob, method)
        table["sd"] = draws.std(axis=1, ddof=1)
        table["lower"], table["upper"] = lower.sel(covariate=model.covariates).values, upper.sel(
            covariate=model.covariates).values
        table["p_positive"] = (draws > 0).mean(axis=1)
    else:
        table["sd"] = table["lower"] = table["upper"] = table["p_positive"] = np.nan
    table = table[["mean", "sd", "lower", "upper", "p_positive", "ratio_mean"]]
    table.attrs.update(prob=prob, method=method, interval=interval_label(prob, "credible", method, point),
                       outcome="spend")
    return table
