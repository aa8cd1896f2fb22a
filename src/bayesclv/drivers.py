"""Key-driver analysis: which customer covariates move purchase rates, dropout and spend.

Each table summarises covariate effects with their posterior mean, sd,
highest-density interval (``arviz_stats``), the posterior probability that the
effect is positive (``p_positive``) and the posterior mean of ``exp(effect)``
(``ratio_mean``): :func:`key_drivers` for the purchase models with covariates
(population and individual-level; purchase and dropout), :func:`spend_drivers`
for the Gamma-Gamma spend model with covariates.
"""

from __future__ import annotations

import math
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd

from bayesclv.arguments import check_prob
from bayesclv.models.covariates import CovariateEffects
from bayesclv.models.gammagamma import GammaGammaModel
from bayesclv.models.hierarchical import HierarchicalTransactionModel

__all__ = ["key_drivers", "spend_drivers"]

SCALES = ("sd", "unit")


def key_drivers(model: HierarchicalTransactionModel | CovariateEffects, prob: float = 0.9,
                per: str = "sd") -> pd.DataFrame:
    """Table of covariate effects on the purchase rate and on dropout, with uncertainty.

    Parameters
    ----------
    model : HierarchicalParetoNBDModel, HierarchicalBetaGeoModel, ParetoNBDModel or BetaGeoModel
        Fitted with ``covariates=[...]``.
    prob : float, default 0.9
        Probability mass of the highest-density intervals.
    per : {"sd", "unit"}, default "sd"
        Effect of one standard deviation of the covariate (in the fitted data;
        comparable across covariates) or of one unit of it.

    Returns
    -------
    pandas.DataFrame
        One row per covariate and process (``purchase``, ``dropout``), columns
        ``latent`` (what the effect is additive on: ``log_lambda``, ``log_mu``
        or ``logit_p``; for the population models the log *mean* purchase
        rate, log mean dropout rate, or log odds of the mean dropout
        probability), ``mean``, ``sd``, ``hdi_lower``, ``hdi_upper``,
        ``p_positive`` (posterior P(effect > 0)), ``ratio_mean``
        (posterior mean of ``exp(effect)``: the multiplicative change in the
        purchase rate, the dropout rate, or the odds of dropout) and
        ``in_words`` (the effect as a sentence). A positive dropout effect
        means customers leave sooner. A MAP fit gives the point estimate in
        ``mean`` and ``ratio_mean`` and NaN for the interval, sd and ``p_positive``.

    Notes
    -----
    Spend is not covered (see :func:`spend_drivers`).
    """
    model.check_fitted()
    if not isinstance(model, HierarchicalTransactionModel | CovariateEffects):
        raise TypeError("key_drivers needs a purchase model with covariates (ParetoNBDModel, BetaGeoModel or "
                        f"their hierarchical versions), got {type(model).__name__}")
    if not model.covariates:
        raise ValueError(f"{type(model).__name__} was fitted without covariates: no drivers to report")
    if per not in SCALES:
        raise ValueError(f"per must be one of {SCALES}, got {per!r}")
    check_prob(prob)
    sds = model.scaling["sd"]
    rows = []
    for (cov, process), (latent, effect) in _effects(model).items():
        effect = effect * sds[cov] if per == "sd" else effect
        draws = effect.values.ravel()
        sampled = draws.size > 1
        lower, upper = (azs.hdi(effect, prob=prob, dim=["chain", "draw"]).values if sampled else (np.nan, np.nan))
        row = {"covariate": cov, "process": process, "latent": latent, "mean": float(draws.mean()),
               "sd": float(draws.std(ddof=1)) if sampled else np.nan,
               "hdi_lower": float(lower), "hdi_upper": float(upper),
               "p_positive": float((draws > 0).mean()) if sampled else np.nan,
               "ratio_mean": float(np.exp(draws).mean())}
        row["in_words"] = _in_words(row, per, float(sds[cov]), prob)
        rows.append(row)
    table = pd.DataFrame(rows).set_index(["covariate", "process"])
    table.attrs = {"prob": prob, "per": per, "model": type(model).__name__}
    return table


def _effects(model) -> dict[tuple[str, str], tuple[str, Any]]:
    """``(covariate, process) -> (latent, effect per unit (chain, draw))`` of either kind of model."""
    if isinstance(model, CovariateEffects):
        sds = model.scaling["sd"]
        return {key: (latent, effect / sds[key[0]]) for key, (latent, effect) in model.covariate_effects().items()}
    effects = model.posterior["coefficients"]
    return {(cov, str(process)): (model.latent_names[k], effects.sel(covariate=cov, process=process, drop=True))
            for cov in model.covariates for k, process in enumerate(effects["process"].values)}


_WHAT = {"log_lambda": "the purchase rate", "log_mu": "the dropout rate",
         "logit_p": "the odds of dropping out after a purchase"}


def _in_words(row: dict[str, Any], per: str, sd: float, prob: float) -> str:
    """One sentence: the multiplicative effect, its interval and how sure the posterior is of its sign."""
    step = f"one sd ({sd:.3g}) more of {row['covariate']}" if per == "sd" else f"one unit more of {row['covariate']}"
    what = _WHAT[row["latent"]]
    factor = math.exp(row["mean"])
    if math.isnan(row["p_positive"]):
        return f"{step.capitalize()} multiplies {what} by {factor:.3g} (point estimate, no interval)."
    p = row["p_positive"]
    verdict = ("raises it" if p >= 0.95 else "lowers it" if p <= 0.05
               else "the data do not tell whether it raises or lowers it")
    return (f"{step.capitalize()} multiplies {what} by {factor:.3g} ({prob:.0%} HDI "
            f"{math.exp(row['hdi_lower']):.3g} to {math.exp(row['hdi_upper']):.3g}); "
            f"P(effect > 0) = {p:.2f}: {verdict}.")


def spend_drivers(model: GammaGammaModel, prob: float = 0.9) -> pd.DataFrame:
    """Effects of the spend model's covariates on expected spend.

    Parameters
    ----------
    model : GammaGammaModel
        A fitted spend model with ``covariates``.
    prob : float, default 0.9
        Probability mass of the highest-density intervals.

    Returns
    -------
    pandas.DataFrame
        One row per covariate (index ``covariate``), columns ``mean``,
        ``sd``, ``hdi_lower``, ``hdi_upper`` (of the coefficient: the change
        in log expected spend per unit of the covariate), ``p_positive``
        (posterior probability that the effect is > 0) and ``ratio_mean``
        (posterior mean of ``exp(coefficient)``: the factor by which
        expected spend changes per unit). A MAP fit gives the point estimate
        in ``mean`` and ``ratio_mean`` and NaN elsewhere. ``attrs["prob"]``
        records ``prob``; ``attrs["outcome"]`` is ``"spend"``.

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
    coef = model.posterior["spend_coef"]
    draws = coef.stack(sample=("chain", "draw")).transpose("covariate", "sample").values
    table = pd.DataFrame(index=pd.Index(model.covariates, name="covariate"))
    table["mean"] = draws.mean(axis=1)
    table["ratio_mean"] = np.exp(draws).mean(axis=1)
    if draws.shape[1] > 1:
        hdi = azs.hdi(coef, prob=prob, dim=("chain", "draw")).transpose("covariate", ...).values
        table["sd"] = draws.std(axis=1, ddof=1)
        table["hdi_lower"], table["hdi_upper"] = hdi[:, 0], hdi[:, 1]
        table["p_positive"] = (draws > 0).mean(axis=1)
    else:
        table["sd"] = table["hdi_lower"] = table["hdi_upper"] = table["p_positive"] = np.nan
    table = table[["mean", "sd", "hdi_lower", "hdi_upper", "p_positive", "ratio_mean"]]
    table.attrs.update(prob=prob, outcome="spend")
    return table
