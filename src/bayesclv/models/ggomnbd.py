"""Gamma-Gompertz/NBD model class (Bemmaor & Glady 2012)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.distribution import support_point
from pymc.logprob.transforms import Transform

from bayesclv.formulas import ggomnbd
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.pooling import quantity_dims
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["DropoutWindow", "GompertzNBDModel"]

_DROPOUT = ("b", "dropout_mean", "dropout_cv2")


def _log_window(b, window):
    """``log int_0^window e^(-b tau) dtau = log((1 - e^(-b window)) / b)``, by its series where ``b window`` is tiny."""
    x = b * window
    return pt.switch(x < 1e-6, pt.log(window) - 0.5 * x,
                     pt.log(-pt.expm1(-pt.maximum(x, 1e-6))) - pt.log(b))


class DropoutWindow(Transform):
    """``(b, dropout_mean, dropout_cv2)`` on the last axis <-> ``(w, log dropout_mean, u)``.

    ``u = -log(dropout_cv2 dropout_mean W(b))`` with ``W(b) = (1 - e^(-b t)) / b``
    (``t`` the window): ``u = log beta - log(1 - e^(-b t))``, which fixes the
    ratio of the population's dropout hazard at age ``t`` to that at age 0
    wherever it declines markedly. ``b = c softplus(w - log c)`` (``c`` the
    prior's typical value): ``log b`` below ``c``, ``b`` itself above, where
    the half-normal prior's tail is a wall of growing curvature in ``log b``.
    Given ``w`` the map is a shift of the logs, so the log-Jacobian is that of
    ``b(w)`` plus ``log dropout_mean + log dropout_cv2``.
    """

    name = "dropout_window"

    def __init__(self, window: float, scale: float):
        self.window, self.log_scale = float(window), math.log(scale)

    def forward(self, value, *inputs):
        b, log_mean = value[..., 0], pt.log(value[..., 1])
        w = self.log_scale + pt.log(pt.expm1(b * math.exp(-self.log_scale)))
        u = -pt.log(value[..., 2]) - log_mean - _log_window(b, self.window)
        return pt.stack([w, log_mean, u], axis=-1)

    def backward(self, value, *inputs):
        b = math.exp(self.log_scale) * pt.softplus(value[..., 0] - self.log_scale)
        log_mean, u = value[..., 1], value[..., 2]
        cv2 = pt.exp(-u - log_mean - _log_window(b, self.window))
        return pt.stack([b, pt.exp(log_mean), cv2], axis=-1)

    def log_jac_det(self, value, *inputs):
        w, u = value[..., 0], value[..., 2]
        b = math.exp(self.log_scale) * pt.softplus(w - self.log_scale)
        log_db = self.log_scale - pt.softplus(self.log_scale - w)
        return log_db - u - _log_window(b, self.window)  # log db/dw + log dropout_mean + log dropout_cv2


def _dropout_triple(priors: dict[str, Prior], pooling: str, window: float, dims: str | None = None):
    """``b, dropout_mean, dropout_cv2`` with their priors, sampled by :class:`DropoutWindow` (inside a PyMC model).

    One joint variable ``dropout`` (last axis: the three; with ``pooling="none"``
    one triple per ``dims`` entry) whose density is the product of the three
    priors; the three are returned as deterministics.
    """
    size = None if pooling == "complete" else (len(pm.modelcontext(None).coords[dims]),)

    def triple(size):
        parts = [getattr(pm, priors[n].distribution).dist(**priors[n].parameters, size=size) for n in _DROPOUT]
        return pt.stack(parts, axis=-1)

    shape = (3,) if size is None else (*size, 3)
    prior_b = priors["b"]
    scale = float(support_point(getattr(pm, prior_b.distribution).dist(**prior_b.parameters)).eval())
    transform = DropoutWindow(window, scale if np.isfinite(scale) and scale > 0.0 else 1.0)
    joint = pm.CustomDist("dropout", dist=triple, transform=transform, shape=shape, signature="->(n)")
    kept = {} if size is None else {"dims": dims}
    return tuple(pm.Deterministic(n, joint[..., i], **kept) for i, n in enumerate(_DROPOUT))


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
    thin ridge. The priors are on ``b`` and the mean and squared coefficient of
    variation of the initial hazard ``b eta`` (the Pareto/NBD model's
    ``dropout_mean = s b / beta`` per time unit and ``dropout_cv2 = 1 / s``);
    ``s = 1 / dropout_cv2`` and ``beta = s b / dropout_mean`` are recorded as
    deterministic functions. In the logs of these three the posterior still
    bends: the larger ``b``, the larger ``dropout_cv2`` must be for the
    population's hazard to decline over the observed ages as the data say (a
    curved ridge on which NUTS diverged). Without partial pooling NUTS samples
    ``log b``, ``log dropout_mean`` and ``u = log beta - log(1 - e^(-b t))``
    (:class:`DropoutWindow`, ``t`` the data's mean age ``T``), which the data
    pin for every ``b``; the priors stay those of the three.

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

    def _set_fit_state(self, df: pd.DataFrame) -> None:
        super()._set_fit_state(df)
        self.dropout_window = float(np.mean(df["T"]))

    def _parameters(self) -> dict[str, Any]:
        r, alpha = self._quantity("r"), self._quantity("alpha")
        if self.pooling == "partial":
            b, mean, cv2 = (self._quantity(n) for n in _DROPOUT)
        else:
            b, mean, cv2 = _dropout_triple(self.priors, self.pooling, self.dropout_window, dims="group")
        dims = quantity_dims(self.pooling)
        s = pm.Deterministic("s", 1.0 / cv2, dims=dims)
        beta = pm.Deterministic("beta", b / (cv2 * mean), dims=dims)
        return {"r": r, "alpha": alpha, "b": b, "s": s, "beta": beta}

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        return [name for name in super()._diagnosed_variables(model) if name != "dropout"]
