"""Key-driver tables: covariate effects with posterior means, HDIs and P(effect > 0)."""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd

from bayesclv.models.gammagamma import GammaGammaModel

__all__ = ["spend_drivers"]


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
        (posterior probability that the effect is > 0) and ``spend_ratio``
        (posterior mean of ``exp(coefficient)``: the factor by which
        expected spend changes per unit). A MAP fit gives the point estimate
        in ``mean`` and ``spend_ratio`` and NaN elsewhere. ``attrs["prob"]``
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
    table["spend_ratio"] = np.exp(draws).mean(axis=1)
    if draws.shape[1] > 1:
        hdi = azs.hdi(coef, prob=prob, dim=("chain", "draw")).transpose("covariate", ...).values
        table["sd"] = draws.std(axis=1, ddof=1)
        table["hdi_lower"], table["hdi_upper"] = hdi[:, 0], hdi[:, 1]
        table["p_positive"] = (draws > 0).mean(axis=1)
    else:
        table["sd"] = table["hdi_lower"] = table["hdi_upper"] = table["p_positive"] = np.nan
    table = table[["mean", "sd", "hdi_lower", "hdi_upper", "p_positive", "spend_ratio"]]
    table.attrs.update(prob=prob, outcome="spend")
    return table
