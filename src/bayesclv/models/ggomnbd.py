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
from bayesclv.models.pooling import create_quantity, pooled_priors, quantity_dims
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


def _window_variable(parts, window: float, scale: float, size: tuple[int, ...] | None):
    """The joint variable ``dropout`` (inside a PyMC model): ``parts(size)`` stacked on a last axis of three,
    whose density is the product of the parts', sampled by :class:`DropoutWindow` (``b``'s scale ``scale``)."""
    shape = (3,) if size is None else (*size, 3)
    transform = DropoutWindow(window, scale if np.isfinite(scale) and scale > 0.0 else 1.0)
    return pm.CustomDist("dropout", dist=lambda size: pt.stack(parts(size), axis=-1), transform=transform,
                         shape=shape, signature="->(n)")


def _prior_dist(prior: Prior, size=None):
    return getattr(pm, prior.distribution).dist(**prior.parameters, size=size)


def _dropout_triple(priors: dict[str, Prior], pooling: str, window: float, dims: str | None = None):
    """``b, dropout_mean, dropout_cv2`` with their priors, sampled by :class:`DropoutWindow` (inside a PyMC model).

    One joint variable ``dropout`` (last axis: the three; with ``pooling="none"``
    one triple per ``dims`` entry) whose density is the product of the three
    priors; the three are returned as deterministics.
    """
    size = None if pooling == "complete" else (len(pm.modelcontext(None).coords[dims]),)
    scale = float(support_point(_prior_dist(priors["b"])).eval())
    joint = _window_variable(lambda size: [_prior_dist(priors[n], size) for n in _DROPOUT], window, scale, size)
    kept = {} if size is None else {"dims": dims}
    return tuple(pm.Deterministic(n, joint[..., i], **kept) for i, n in enumerate(_DROPOUT))


def _pooled_dropout(priors: dict[str, Prior], window: float, centred: dict[str, np.ndarray], shared_b: bool):
    """Partially pooled ``b, dropout_mean, dropout_cv2`` per group (inside a PyMC model with a ``group`` dim).

    The model is :func:`~bayesclv.models.pooling.create_quantity`'s: each
    group's log quantity is ``log_<q>_mean`` plus an offset ``Normal(0,
    log_<q>_sd)`` (centred or not as ``centred`` says), the means with their
    priors; with ``shared_b`` one ``b`` for every group with the prior of
    ``b``. The data pin the population's typical triple ``(b_0,
    e^log_dropout_mean_mean, e^log_dropout_cv2_mean)`` on the same bent ridge
    as the complete-pooling model's triple, so that triple is one variable
    sampled by :class:`DropoutWindow` (the same map; its density is the
    means' priors, taken by the exponential); the offsets are unchanged.
    """
    if shared_b:
        first = priors["b"]
        scale = float(support_point(_prior_dist(first)).eval())
    else:
        first, scale = priors["log_b_mean"], 1.0  # log b_0 below 1 per time unit (the likelihood's wall is below)
    means = [priors[f"log_{n}_mean"] for n in _DROPOUT[1:]]

    def parts(size):
        b0 = _prior_dist(first, size)
        return [b0 if shared_b else pt.exp(b0), *(pt.exp(_prior_dist(m, size)) for m in means)]

    joint = _window_variable(parts, window, scale, None)
    groups = len(pm.modelcontext(None).coords["group"])
    out = []
    for i, n in enumerate(_DROPOUT):
        if shared_b and n == "b":
            out.append(pm.Deterministic("b", joint[0] * pt.ones(groups), dims="group"))
            continue
        log_mean = pm.Deterministic(f"log_{n}_mean", pt.log(joint[i]))
        out.append(create_quantity(n, priors, "partial", centred.get(n), log_mean=log_mean))
    return tuple(out)


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
    pin for every ``b``; the priors stay those of the three. With partial
    pooling each group's log ``b``, ``dropout_mean`` and ``dropout_cv2`` are
    the log means plus offsets (:func:`~bayesclv.models.pooling.create_quantity`),
    and the means' triple is sampled by the same map: the data pin it on the
    same ridge.

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
        the log of each is pooled across groups (hyperpriors ``log_<name>_mean``,
        ``log_<name>_sd``) and these priors are not used, except ``b``'s with
        ``b_pooling="complete"``.
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.
    b_pooling : {"partial", "complete"}, default "partial"
        With ``pooling="partial"``: ``"complete"`` gives every group one ``b``
        with the prior of ``b`` (no ``log_b_mean``, ``log_b_sd``), the other
        parameters still partially pooled. A group's own data hardly inform
        ``b`` (the likelihood is flat towards the Pareto/NBD limit), so a
        per-group ``b`` is mostly its hyperprior's.

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

    def __init__(self, priors: dict[str, Prior] | None = None, *, group: str | None = None,
                 pooling: str | None = None, b_pooling: str = "partial"):
        if b_pooling not in ("partial", "complete"):
            raise ValueError(f"b_pooling must be 'partial' or 'complete', got {b_pooling!r}")
        self.b_pooling = b_pooling
        super().__init__(priors, group=group, pooling=pooling)

    @property
    def _shared_b(self) -> bool:
        return self.pooling == "partial" and self.b_pooling == "complete"

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "b_pooling": self.b_pooling}

    def _all_default_priors(self) -> dict[str, Prior]:
        out = super()._all_default_priors()
        return {k: v for k, v in out.items() if k not in ("log_b_mean", "log_b_sd")} if self._shared_b else out

    def _summary_names(self) -> list[str]:
        return [n for n in super()._summary_names() if not (self._shared_b and n in ("log_b_mean", "log_b_sd"))]

    def _set_fit_state(self, df: pd.DataFrame) -> None:
        super()._set_fit_state(df)
        self.dropout_window = float(np.mean(df["T"]))

    def _parameters(self) -> dict[str, Any]:
        r, alpha = self._quantity("r"), self._quantity("alpha")
        if self.pooling == "partial" and self._centred:
            b, mean, cv2 = _pooled_dropout(self.priors, self.dropout_window, self._centred, self._shared_b)
        elif self.pooling == "partial":
            # the graph that gives the groups' evidence (PooledModel._graph, before any centring is chosen): each
            # quantity's plain non-centred hierarchy, whose offsets at means 0 are the groups' log quantities
            # (pooling.quantity_evidence reads only its likelihood, so these priors play no part)
            evidence = {**pooled_priors(self.default_priors, "partial"), **self.priors}
            b, mean, cv2 = (create_quantity(n, evidence, "partial") for n in _DROPOUT)
        else:
            b, mean, cv2 = _dropout_triple(self.priors, self.pooling, self.dropout_window, dims="group")
        dims = quantity_dims(self.pooling)
        s = pm.Deterministic("s", 1.0 / cv2, dims=dims)
        beta = pm.Deterministic("beta", b / (cv2 * mean), dims=dims)
        return {"r": r, "alpha": alpha, "b": b, "s": s, "beta": beta}

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        return [name for name in super()._diagnosed_variables(model) if name != "dropout"]
