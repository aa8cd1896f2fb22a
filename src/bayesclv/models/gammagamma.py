"""Gamma-Gamma spend model class (Colombo & Jiang 1999; Fader, Hardie & Lee 2005)."""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.distributions.distribution import support_point
from pymc.logprob.transforms import Transform
from pytensor.tensor.random.op import RandomVariable

from bayesclv.data.validation import check_columns, validate_rfm
from bayesclv.errors import DataValidationError
from bayesclv.formulas import NP, gammagamma
from bayesclv.models.engine import prediction_attrs
from bayesclv.models.pooled import PooledModel
from bayesclv.models.pooling import quantity_dims
from bayesclv.priors import Prior

__all__ = ["GammaGammaModel"]


class GammaGammaModel(PooledModel):
    """Gamma-Gamma model of the mean value of repeat transactions.

    Fitted on customers with at least one repeat purchase (``frequency > 0``)
    and positive mean spend (repeat buyers whose purchases were all free are
    left out with a warning that names them);
    predictions cover every customer (those without repeat purchases get the
    population mean). Assumes spend is independent of purchase frequency:
    check with ``data[["frequency", "monetary_value"]].corr()``.

    With ``covariates``, a customer's spend scale depends on their covariates
    ``z``: ``gamma_i = gamma exp((z_i - zbar) . spend_coef)``. Since the mean
    transaction value is proportional to ``gamma``, ``spend_coef[k]`` is the
    change in *log expected spend* per unit of covariate ``k`` (``exp`` of it
    the multiplicative effect), and ``gamma`` is the scale of a customer with
    average covariates ``zbar`` (the means in the fitted data, stored with
    the model). :func:`bayesclv.drivers.spend_drivers` tabulates the effects.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for ``p``, ``q``, ``gamma`` (and ``spend_coef``). Defaults:
        ``p, q ~ HalfNormal(50)``, ``gamma ~ HalfNormal(500)`` (a money
        scale, in the data's currency unit), ``spend_coef ~ Normal(0, 1)``
        (each coefficient; put covariates on comparable scales, e.g. logs or
        standardised values).
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``)
        of ``p``, ``q``, ``gamma``; see :class:`~bayesclv.models.pooled.PooledModel`.
    covariates : list of str, optional
        Numeric customer-level columns of the data that shift the spend
        scale. The coefficients are shared by all groups.
    """

    parameter_names = gammagamma.PARAMETERS
    default_priors = {
        "p": Prior("HalfNormal", sigma=50.0),
        "q": Prior("HalfNormal", sigma=50.0),
        "gamma": Prior("HalfNormal", sigma=500.0),
    }
    data_columns = ("frequency", "monetary_value")
    given_columns = ("frequency",)  # a population simulation keeps each customer's number of purchases
    validator = staticmethod(partial(validate_rfm, require_monetary=True))
    formulas = gammagamma
    display_name = "Gamma-Gamma"
    coef_prior = Prior("Normal", mu=0.0, sigma=1.0)

    def __init__(self, priors: dict[str, Prior] | None = None, *, group: str | None = None,
                 pooling: str | None = None, covariates: list[str] | None = None):
        if isinstance(covariates, str):
            covariates = [covariates]
        self.covariates: list[str] = list(covariates or [])
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"covariates must be distinct column names, got {self.covariates}")
        super().__init__(priors, group=group, pooling=pooling)
        if self.pooling != "partial":  # 0.8 left 3% of SBC fits with a divergence, 0.9 none of the hardest
            self.default_target_accept = 0.9
        self.covariate_means: list[float] | None = None  # centre of each covariate in the fit

    # ----------------------------------------------------------- covariates
    def _all_default_priors(self):
        out = super()._all_default_priors()
        if self.covariates:
            out["spend_coef"] = self.coef_prior
        return out

    def _config(self):
        return {**super()._config(), "covariates": self.covariates}

    def _coefficient_names(self):
        return ["spend_coef"] if self.covariates else []

    def _covariate_values(self, df: pd.DataFrame) -> pd.DataFrame:
        """The covariate columns as float; missing columns or non-finite values are errors."""
        check_columns(df, self.covariates)
        out = pd.DataFrame(index=df.index)
        for col in self.covariates:
            values = pd.to_numeric(df[col], errors="coerce").astype(float)
            bad = ~np.isfinite(values.to_numpy())
            if bad.any():
                raise DataValidationError(f"{int(bad.sum())} missing, non-numeric or infinite covariate value(s)",
                                          column=col, rows=df.loc[bad, "customer_id"].tolist())
            out[col] = values
        return out

    def _set_fit_state(self, df):
        super()._set_fit_state(df)
        if self.covariates:
            self.covariate_means = self._covariate_values(df).mean().tolist()

    def _fit_state(self):
        return {**super()._fit_state(), "covariate_means": self.covariate_means}

    def _restore_fit_state(self, posterior, state):
        super()._restore_fit_state(posterior, state)
        self.covariate_means = state.get("covariate_means")

    def _design(self, df):
        frame = super()._design(df)
        if self.covariates:
            centred = self._covariate_values(df) - np.asarray(self.covariate_means)
            frame[[f"covariate:{c}" for c in self.covariates]] = centred.to_numpy()
        return frame

    @property
    def history_columns(self):
        return (*super().history_columns, *self.covariates)  # covariates shift each customer's spend

    def _coords(self):
        return {**super()._coords(), **({"covariate": self.covariates} if self.covariates else {})}

    def _parameters(self):
        params = self._spend_parameters() if self.pooling != "partial" else super()._parameters()
        if self.covariates:
            params["spend_coef"] = self.priors["spend_coef"].create("spend_coef", dims="covariate")
        return params

    def _spend_parameters(self):
        """``p``, ``q`` and ``gamma`` with their priors, moved by NUTS in better-conditioned coordinates.

        ``p`` and ``q`` on :class:`_LogThenLinear`, ``gamma`` as ``mean_log_spend``
        (:class:`_MeanLogSpend`); the priors are those declared, so prior draws
        and MAP (PyMC leaves the transforms' Jacobians out of the optimised
        density) are unchanged. ``gamma`` is a custom distribution with its
        prior's density and draws that takes ``p`` and ``q`` as inputs, which its
        transform needs. A prior without a positive typical value, or that PyMC
        builds from several random variables, keeps PyMC's default transform.
        """
        dims = quantity_dims(self.pooling) or None
        p, q = (self.priors[name].create(name, dims=dims, **_LogThenLinear.for_prior(self.priors[name]))
                for name in ("p", "q"))
        prior = self.priors["gamma"]
        prior_rv = getattr(pm, prior.distribution).dist(**prior.parameters)
        op = prior_rv.owner.op
        if not isinstance(op, RandomVariable):
            return {"p": p, "q": q, "gamma": self._quantity("gamma")}
        arguments = [np.asarray(v.eval()) for v in op.dist_params(prior_rv.owner)]

        def logp(value, p, q):
            return pm.logp(getattr(pm, prior.distribution).dist(**prior.parameters), value)

        def random(p, q, rng=None, size=None):
            return op.rng_fn(rng, *arguments, size)

        def start(rv, size, p, q):  # the sampler's initial point: the prior's, as for a plain prior
            return pt.broadcast_to(support_point(prior_rv), rv.shape)

        gamma = pm.CustomDist("gamma", p, q, logp=logp, random=random, support_point=start,
                              transform=_MeanLogSpend(), dims=dims)
        return {"p": p, "q": q, "gamma": gamma}

    def _row_params(self, params, rows, xp):
        """Group parameters per row, with ``gamma`` scaled by ``exp(centred covariates . spend_coef)``."""
        params = dict(params)
        coef = params.pop("spend_coef", None)
        out = super()._row_params(params, rows, xp)
        if self.covariates:
            z = rows[[f"covariate:{c}" for c in self.covariates]].to_numpy(dtype=float)
            shift = pt.dot(z, coef) if xp is not NP else np.asarray(coef) @ z.T
            out["gamma"] = out["gamma"] * xp.exp(shift)
        return out

    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        """The repeat buyers with positive mean spend: the customers the spend likelihood applies to."""
        df = super()._prepare(data, time_unit=time_unit)
        free = (df["frequency"] > 0) & (df["monetary_value"] == 0)
        if free.any():
            ids = df.loc[free, "customer_id"].tolist()
            warnings.warn(
                f"Gamma-Gamma: {len(ids)} repeat buyer(s) with mean spend 0 left out of the fit "
                f"(a gamma spend must be positive): customer_id {ids[:5]}"
                + (f" and {len(ids) - 5} more" if len(ids) > 5 else ""),
                UserWarning, stacklevel=3,
            )
        out = df[(df["frequency"] > 0) & ~free].reset_index(drop=True)
        if out.empty:  # the fit would return the prior as if it were a posterior
            free_part = f", {int(free.sum())} with mean spend 0" if free.any() else ""
            raise DataValidationError(
                f"the Gamma-Gamma model is fitted on repeat buyers (frequency > 0) with positive mean spend, "
                f"and these data have none ({len(df)} customers: {int((df['frequency'] == 0).sum())} without a "
                f"repeat purchase{free_part})", column="frequency")
        out.attrs = dict(df.attrs)
        return out

    # ------------------------------------------------------------- predictions
    def expected_spend(self, data: Any | None = None) -> xr.DataArray:
        """Posterior of each customer's expected mean transaction value.

        Parameters
        ----------
        data : DataFrame, optional
            RFM frame with ``monetary_value``; default: the fitted data. Rows
            with ``frequency == 0`` get the population mean ``p gamma/(q-1)``.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        return self._history_quantity(gammagamma.expected_spend, data, "expected_spend")

    def population_mean_spend(self) -> xr.DataArray:
        """Posterior of the population mean transaction value ``p gamma / (q - 1)``.

        Dims ``(chain, draw)``, plus ``group`` for a grouped model (each
        group's mean). With covariates: the mean of customers with the
        average covariates of the fitted data.
        """
        p, q, gamma = xr.broadcast(*(self.posterior[n] for n in self.parameter_names))
        mean = p.copy(data=gammagamma.population_mean_spend(p.values, q.values, gamma.values))
        mean.attrs = prediction_attrs(self.posterior, "expectation", None)
        return mean.rename("population_mean_spend")


class _MeanLogSpend(Transform):
    """NUTS's coordinate for ``gamma``: ``mean_log_spend = log p + log gamma - digamma(q)``.

    That is ``E[log(p/nu)]``, the population mean of the log of a customer's
    expected transaction value. The data pin it down for every ``q``, whereas
    ``gamma`` moves with ``p`` and ``q`` along a curved ridge (``gamma``
    proportional to ``q/p`` for large ``q``). It is a transform of ``gamma`` given ``(p, q)``, so the
    priors of ``p``, ``q`` and ``gamma`` stay as declared: the sampler adds the
    Jacobian ``log gamma``, and MAP (PyMC leaves transforms' Jacobians out of
    the optimised density) still finds the mode in ``(p, q, gamma)``.
    """

    name = "mean_log_spend"

    def forward(self, value, *inputs):  # inputs: rng, size, p, q
        p, q = inputs[-2:]
        return pt.log(value) + pt.log(p) - pt.psi(q)

    def backward(self, value, *inputs):
        p, q = inputs[-2:]
        return pt.exp(value - pt.log(p) + pt.psi(q))

    def log_jac_det(self, value, *inputs):
        p, q = inputs[-2:]
        return value - pt.log(p) + pt.psi(q)


class _LogThenLinear(Transform):
    """NUTS's coordinate ``w`` for a shape ``p``: ``p = c softplus(w - log c)``, ``c`` the prior's typical value.

    Below ``c`` it is ``log p`` (where the likelihood pins a shape down, it is
    near Gaussian in the log); above, ``p`` itself. With a half-normal prior and
    a likelihood flat in ``p`` (the spend shape ``p`` when ``q`` is small, ``q``
    when customers spend alike), the log coordinate meets the prior's tail as a
    wall whose curvature grows like ``p^2``: there NUTS's leapfrog steps, tuned
    to the bulk, diverged. On ``p`` itself that tail is Gaussian.
    """

    name = "log_then_linear"

    def __init__(self, scale: float):
        self.log_scale = math.log(scale)

    @classmethod
    def for_prior(cls, prior: Prior) -> dict:
        """``default_transform`` for a parameter with ``prior`` (none where it has no positive typical value)."""
        typical = float(support_point(getattr(pm, prior.distribution).dist(**prior.parameters)).eval())
        return {"default_transform": cls(typical)} if np.isfinite(typical) and typical > 0.0 else {}

    def forward(self, value, *inputs):
        return self.log_scale + pt.log(pt.expm1(value * math.exp(-self.log_scale)))

    def backward(self, value, *inputs):
        return math.exp(self.log_scale) * pt.softplus(value - self.log_scale)

    def log_jac_det(self, value, *inputs):
        return self.log_scale - pt.softplus(self.log_scale - value)
