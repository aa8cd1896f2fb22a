"""BG/NBD model class (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from bayesclv.formulas import bgnbd
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["BetaGeoModel"]


class BetaGeoModel(ResidualPredictions, PooledTransactionModel):
    """Beta-geometric/NBD model of repeat purchases.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``a``, ``b``. Defaults
        (weakly informative; ``alpha`` is a time scale, in the data's unit):
        ``r, a, b ~ HalfNormal(50)``, ``alpha ~ HalfNormal(500)``.
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`. With partial pooling the
        posterior holds ``log_<name>_mean``, ``log_<name>_sd`` and the
        per-group ``r, alpha, a, b``.

    Examples
    --------
    >>> from bayesclv import BetaGeoModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = BetaGeoModel().fit(rfm, method="map", progressbar=False)
    >>> round(float(model.summary().loc["r", "mean"]), 2)
    0.24
    """

    parameter_names = bgnbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "a": Prior("HalfNormal", sigma=50.0),
        "b": Prior("HalfNormal", sigma=50.0),
    }
    formulas = bgnbd
    display_name = "BG/NBD"
