"""Key-driver analysis: which customer covariates move purchase rates, dropout and spend.

Each table summarises covariate effects with their posterior mean, sd,
interval (``arviz_stats``; ETI or HDI and its probability after ArviZ's
``stats.ci_kind``/``stats.ci_prob`` unless given), the posterior probability that the
effect is positive (``p_positive``) and the posterior mean of ``exp(effect)``
(``ratio_mean``): :func:`key_drivers` for the purchase models with covariates
(population and individual-level; purchase and dropout), :func:`spend_drivers`
for the Gamma-Gamma spend model with covariates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.models.covariates import CovariateEffects
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.hierarchical import HierarchicalTransactionModel
from bayesclv.models.paretonbd_dynamic import TimeVaryingParetoNBDModel
from bayesclv.summaries import interval_bounds, interval_label, interval_settings

__all__ = ["key_drivers", "spend_drivers"]

SCALES = ("sd", "unit")


_POPULATION = (CovariateEffects, TimeVaryingParetoNBDModel)  # effects from covariate_effects(), per sd


def key_drivers(model: HierarchicalTransactionModel | CovariateEffects | TimeVaryingParetoNBDModel,
                prob: float | None = None, per: str = "sd", method: str | None = None) -> pd.DataFrame:
    """Table of covariate effects on the purchase rate and on dropout, with uncertainty.

    Parameters
    ----------
    model : HierarchicalParetoNBDModel, HierarchicalBetaGeoModel, ParetoNBDModel, BetaGeoModel,
            TimeVaryingParetoNBDModel
        Fitted with ``covariates=[...]`` (time-varying ones: effects on the
        log purchase and dropout rates at each moment).
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
        or ``logit_p``; for the population models the log *mean* purchase
        rate, log mean dropout rate, or log odds of the mean dropout
        probability), ``mean``, ``sd``, ``lower``, ``upper``,
        ``p_positive`` (posterior P(effect > 0)), ``ratio_mean``
        (posterior mean of ``exp(effect)``: the multiplicative change in the
        purchase rate, the dropout rate, or the odds of dropout) and
        ``in_words`` (the effect as a sentence). A positive dropout effect
        means customers leave sooner. A MAP fit gives the point estimate in
        ``mean`` and ``ratio_mean`` and NaN for the interval, sd and ``p_positive``.
        ``attrs`` hold ``prob``, ``method``, ``interval`` (its label), ``per`` and ``model``.

    Notes
    -----
    Spend is not covered (see :func:`spend_drivers`).
    """
    model.check_fitted()
    if not isinstance(model, (HierarchicalTransactionModel, *_POPULATION)):
        raise TypeError("key_drivers needs a purchase model with covariates (ParetoNBDModel, BetaGeoModel or "
                        f"their hierarchical versions), got {type(model).__name__}")
    if not model.covariates:
        raise ValueError(f"{type(model).__name__} was fitted without covariates: no drivers to report")
    if per not in SCALES:
        raise ValueError(f"per must be one of {SCALES}, got {per!r}")
    prob, method = interval_settings(prob, method)
    sds = model.scaling["sd"]
    rows = []
    point = False
    for (cov, process), (latent, effect) in _effects(model).items():
        effect = effect * sds[cov] if per == "sd" else effect
        draws = effect.values.ravel()
        point = draws.size == 1
        lower, upper = (np.nan, np.nan) if point else (float(b) for b in interval_bounds(effect, prob, method))
        row = {"covariate": cov, "process": process, "latent": latent, "mean": float(draws.mean()),
               "sd": np.nan if point else float(draws.std(ddof=1)), "lower": lower, "upper": upper,
               "p_positive": np.nan if point else float((draws > 0).mean()),
               "ratio_mean": float(np.exp(draws).mean())}
        row["in_words"] = _in_words(row, per, float(sds[cov]), interval_label(prob, "credible", method))
        rows.append(row)
    table = pd.DataFrame(rows).set_index(["covariate", "process"])
    table.attrs = {"prob": prob, "method": method, "interval": interval_label(prob, "credible", method, point), "per": per,
                   "model": type(model).__name__}
    return table


def _effects(model) -> dict[tuple[str, str], tuple[str, Any]]:
    """``(covariate, process) -> (latent, effect per unit (chain, draw))`` of either kind of model."""
    if isinstance(model, _POPULATION):
        sds = model.scaling["sd"]
        return {key: (latent, effect / sds[key[0]]) for key, (latent, effect) in model.covariate_effects().items()}
    effects = model.posterior["coefficients"]
    return {(cov, str(process)): (model.latent_names[k], effects.sel(covariate=cov, process=process, drop=True))
            for cov in model.covariates for k, process in enumerate(effects["process"].values)}


_WHAT = {"log_lambda": "the purchase rate", "log_mu": "the dropout rate",
         "logit_p": "the odds of dropping out after a purchase"}


def _in_words(row: dict[str, Any], per: str, sd: float, interval: str) -> str:
    """One sentence: the multiplicative effect, its interval and how sure the posterior is of its sign."""
    step = f"one sd ({sd:.3g}) more of {row['covariate']}" if per == "sd" else f"one unit more of {row['covariate']}"
    what = _WHAT[row["latent"]]
    factor = math.exp(row["mean"])
    if math.isnan(row["p_positive"]):
        return f"{step.capitalize()} multiplies {what} by {factor:.3g} (point estimate, no interval)."
    p = row["p_positive"]
    verdict = ("raises it" if p >= 0.95 else "lowers it" if p <= 0.05
               else "the data do not tell whether it raises or lowers it")
    return (f"{step.capitalize()} multiplies {what} by {factor:.3g} ({interval} "
            f"{math.exp(row['lower']):.3g} to {math.exp(row['upper']):.3g}); "
            f"P(effect > 0) = {p:.2f}: {verdict}.")


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
