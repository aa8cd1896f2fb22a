"""Gamma-Gompertz/NBD model class (Bemmaor & Glady 2012)."""

from __future__ import annotations

import pymc as pm

from bayesclv.formulas import ggomnbd
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.pooling import quantity_dims
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["GompertzNBDModel"]


class GompertzNBDModel(ResidualPredictions, PooledTransactionModel):
    """Gamma-Gompertz/NBD model of repeat purchases: Gompertz lifetimes whose hazard changes with age.

    An alive customer buys as a Poisson process with rate ``lambda ~ Gamma(r,
    alpha)``. A customer's lifetime is Gompertz with a shape ``b`` common to
    everybody and a scale ``eta ~ Gamma(s, beta)`` of their own: the hazard of
    dropping out ``tau`` time units after the first purchase is
    ``b eta e^(b tau)``, growing with age for ``b > 0``. As ``b -> 0`` with
    ``beta / b`` fixed the model becomes the Pareto/NBD (constant hazards
    ``mu = b eta ~ Gamma(s, beta / b)``). The formulas are in
    :mod:`bayesclv.formulas.ggomnbd`; the posterior holds ``r, alpha, b, s, beta``.

    **Sampling coordinates.** On data that look like the Pareto/NBD (CDNOW, for
    one) the likelihood is flat along ``b -> 0`` with ``beta / b`` fixed and the
    maximum lies on that boundary, so in ``(b, s, beta)`` the posterior is a
    thin ridge. The model samples instead the mean and squared coefficient of
    variation of the initial hazard ``b eta`` (the Pareto/NBD model's
    ``dropout_mean = s b / beta`` per time unit and ``dropout_cv2 = 1 / s``) and
    ``b``; ``s = 1 / dropout_cv2`` and ``beta = s b / dropout_mean`` are recorded
    as deterministic functions. In these coordinates the likelihood tends to
    the Pareto/NBD's as ``b -> 0`` and the posterior is close to independent.

    **The prior on b.** ``b ~ HalfNormal(sigma_b)`` with ``sigma_b = 0.1`` per
    time unit by default: its density is largest (and flat) at ``b = 0``, so the
    Pareto/NBD limit is not ruled out, and P(b < 0.01) = 8%, P(b < 0.001) = 0.8%.
    Where the data carry no information on ``b`` near 0 (the likelihood is
    flat there, as on CDNOW), the posterior below the data's scale is the
    prior's: report ``b`` by its upper quantiles (e.g. "below 0.004 per week
    with 90% probability"), not by a point near zero. A prior without mass near
    0 (e.g. a Gamma with shape > 1) excludes the Pareto/NBD limit by assumption.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``b``, ``dropout_mean``,
        ``dropout_cv2``. Defaults (weakly informative, in the data's time unit):
        ``r ~ HalfNormal(50)``, ``alpha ~ HalfNormal(500)`` (a time scale),
        ``b ~ HalfNormal(0.1)`` (per time unit), ``dropout_mean ~ HalfNormal(1)``
        (per time unit), ``dropout_cv2 ~ HalfNormal(10)``. With partial pooling
        the groups are pooled in these sampling coordinates.
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.

    Examples
    --------
    >>> from bayesclv import GompertzNBDModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = GompertzNBDModel().fit(rfm, method="map", progressbar=False)
    >>> round(float(model.summary().loc["r", "mean"]), 2)
    0.55
    """

    parameter_names = ggomnbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "b": Prior("HalfNormal", sigma=0.1),
        "dropout_mean": Prior("HalfNormal", sigma=1.0),
        "dropout_cv2": Prior("HalfNormal", sigma=10.0),
    }
    formulas = ggomnbd
    display_name = "GGom/NBD"

    def _parameters(self):
        r, alpha, b = self._quantity("r"), self._quantity("alpha"), self._quantity("b")
        mean, cv2 = self._quantity("dropout_mean"), self._quantity("dropout_cv2")
        dims = quantity_dims(self.pooling)
        s = pm.Deterministic("s", 1.0 / cv2, dims=dims)
        beta = pm.Deterministic("beta", b / (cv2 * mean), dims=dims)
        return {"r": r, "alpha": alpha, "b": b, "s": s, "beta": beta}
