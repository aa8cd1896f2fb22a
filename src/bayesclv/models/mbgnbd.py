"""MBG/NBD model class (Batislam, Denizel & Filiztekin 2007)."""

from __future__ import annotations

from bayesclv.formulas import mbgnbd
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["ModifiedBetaGeoModel"]


class ModifiedBetaGeoModel(ResidualPredictions, PooledTransactionModel):
    """Modified beta-geometric/NBD model: the BG/NBD in which customers can drop out right after the first purchase.

    An alive customer buys at Poisson rate ``lambda ~ Gamma(r, rate=alpha)``
    and, after every purchase (the first included), drops out with probability
    ``p ~ Beta(a, b)``. Unlike the BG/NBD, a customer without repeat purchases
    need not be alive. Given alive, the future depends on ``(frequency, T)``
    only, as for the BG/NBD; DERT and the expected residual lifetime are those
    of a BG/NBD customer with ``b + 1`` for ``b``. The math is in the documentation's page on the
    MBG/NBD and (M)BG/CNBD-k (:mod:`bayesclv.formulas.mbgnbd`).

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``a``, ``b``. Defaults
        (weakly informative, as for :class:`~bayesclv.BetaGeoModel`):
        ``r, a, b ~ HalfNormal(50)``, ``alpha ~ HalfNormal(500)`` (a time
        scale, in the data's unit).
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.

    Examples
    --------
    >>> from bayesclv import ModifiedBetaGeoModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = ModifiedBetaGeoModel().fit(rfm, method="map", progressbar=False)
    >>> model.summary()["mean"].round(2).to_dict()
    {'r': 0.52, 'alpha': 6.18, 'a': 0.89, 'b': 1.61}
    """

    parameter_names = mbgnbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "a": Prior("HalfNormal", sigma=50.0),
        "b": Prior("HalfNormal", sigma=50.0),
    }
    formulas = mbgnbd
    display_name = "MBG/NBD"
