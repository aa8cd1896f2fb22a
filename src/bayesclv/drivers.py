"""Key-driver analysis: which customer covariates move purchase rates and dropout.

Reads the covariate coefficients of a fitted individual-level hierarchical
model (:class:`~bayesclv.HierarchicalParetoNBDModel`,
:class:`~bayesclv.HierarchicalBetaGeoModel`) and summarises each effect with
its posterior mean, highest-density interval (``arviz_stats``) and the
posterior probability that it is positive.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd

from bayesclv.models.hierarchical import HierarchicalTransactionModel

__all__ = ["key_drivers"]

SCALES = ("sd", "unit")


def key_drivers(model: HierarchicalTransactionModel, prob: float = 0.9, per: str = "sd") -> pd.DataFrame:
    """Table of covariate effects on the purchase rate and on dropout, with uncertainty.

    Parameters
    ----------
    model : HierarchicalParetoNBDModel or HierarchicalBetaGeoModel
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
        or ``logit_p``), ``mean``, ``sd``, ``hdi_lower``, ``hdi_upper``,
        ``prob_positive`` (posterior P(effect > 0)) and ``ratio_mean``
        (posterior mean of ``exp(effect)``: the multiplicative change in the
        purchase rate, the dropout rate, or the odds of dropout). A positive
        dropout effect means customers leave sooner.

    Notes
    -----
    Spend is not covered: the individual-level models describe purchase
    counts only.
    """
    model._check_fitted()
    if not isinstance(model, HierarchicalTransactionModel):
        raise TypeError(f"key_drivers needs an individual-level hierarchical model, got {type(model).__name__}")
    if not model.covariates:
        raise ValueError(f"{type(model).__name__} was fitted without covariates: no drivers to report")
    if per not in SCALES:
        raise ValueError(f"per must be one of {SCALES}, got {per!r}")
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    effects = model.posterior["coefficients"].sel(covariate=model.covariates)
    if per == "sd":
        effects = effects * model.scaling["sd"].to_xarray()
    bounds = azs.hdi(effects, prob=prob, dim=["chain", "draw"])
    rows = []
    for cov in model.covariates:
        for k, process in enumerate(effects["process"].values):
            draws = effects.sel(covariate=cov, process=process).values.ravel()
            rows.append({
                "covariate": cov, "process": str(process), "latent": model.latent_names[k],
                "mean": float(draws.mean()), "sd": float(draws.std(ddof=1)),
                "hdi_lower": float(bounds.sel(covariate=cov, process=process, ci_bound="lower")),
                "hdi_upper": float(bounds.sel(covariate=cov, process=process, ci_bound="upper")),
                "prob_positive": float((draws > 0).mean()),
                "ratio_mean": float(np.exp(draws).mean()),
            })
    table = pd.DataFrame(rows).set_index(["covariate", "process"])
    table.attrs = {"prob": prob, "per": per, "model": type(model).__name__}
    return table
