"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Naf 2021), a sibling of :class:`ParetoNBDModel`.

Its data are two things: per-customer rows (:func:`bayesclv.data.time_varying_summary`:
RFM, first purchase day, the covariates summed over the purchase days) and
the covariate periods themselves (:func:`bayesclv.data.time_varying`),
passed to ``fit(data, paths=...)`` and kept with the model. Predictions read
the covariates' future path from the periods, so a horizon beyond them is an
error naming the customers, never an extrapolation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesclv.arguments import check_horizon
from bayesclv.chunks import chunk_length
from bayesclv.data.time_varying import SUM_PREFIX, CovariatePaths, validate_time_varying
from bayesclv.errors import ArgumentError, DataValidationError, TimeUnitError
from bayesclv.formulas import PT, paretonbd_dynamic
from bayesclv.models.base import CLVModel
from bayesclv.models.covariates import COEF_PRIOR, PROCESSES
from bayesclv.models.engine import as_dataarray
from bayesclv.models.paretonbd import ParetoNBDModel

__all__ = ["TimeVaryingParetoNBDModel"]

_COEFS = {"purchase": "purchase_coef", "dropout": "dropout_coef"}


class TimeVaryingParetoNBDModel(CLVModel):
    """Pareto/NBD whose purchase and dropout rates move with covariates that change over time.

    While alive, customer ``i`` buys at rate ``lambda_i exp(purchase_coef .
    x_i(t))`` and drops out at hazard ``mu_i exp(dropout_coef . z_i(t))``,
    ``lambda_i ~ Gamma(r, alpha)``, ``mu_i ~ Gamma(s, beta)``; the covariates
    are constant on each period of :class:`~bayesclv.data.CovariatePaths`. The
    likelihood integrates the rates out exactly and the death time period by
    period (:mod:`bayesclv.formulas.paretonbd_dynamic`). Covariates are
    standardised with the time-weighted mean and sd over the fitted customers'
    calibration periods (kept with the model), so the coefficients are effects
    per sd with ``Normal(0, 1)`` priors and ``alpha, s, beta`` those of a
    customer at average covariates; :func:`bayesclv.key_drivers` reports them.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        As for :class:`ParetoNBDModel` (``r, alpha, dropout_mean, dropout_cv2``,
        sampled in the same coordinates), plus ``purchase_coef`` and ``dropout_coef``.
    purchase_covariates, dropout_covariates : list of str, optional
        Covariates of the periods acting on the purchase rate and on the
        dropout rate (each defaults to ``covariates``).
    covariates : list of str, optional
        Covariates acting on both.
    """

    parameter_names = paretonbd_dynamic.PARAMETERS
    default_priors = ParetoNBDModel.default_priors
    data_columns = ("frequency", "recency", "T")
    display_name = "Pareto/NBD (time-varying covariates)"
    unsupported_methods = {"advi": "not implemented for time-varying covariates; use NUTS or MAP"}

    def __init__(self, priors=None, *, covariates: list[str] | None = None,
                 purchase_covariates: list[str] | None = None, dropout_covariates: list[str] | None = None):
        lists = {}
        for process, own in zip(PROCESSES, (purchase_covariates, dropout_covariates), strict=True):
            chosen = covariates if own is None else own
            chosen = [chosen] if isinstance(chosen, str) else list(chosen or [])
            if len(set(chosen)) != len(chosen):
                raise ArgumentError(f"{process} covariates repeat a column: {chosen}", argument=f"{process}_covariates")
            lists[process] = chosen
        if not lists["purchase"] and not lists["dropout"]:
            raise ArgumentError("no covariates: use ParetoNBDModel", argument="covariates")
        self.process_covariates: dict[str, list[str]] = lists
        self.covariates: list[str] = list(dict.fromkeys(lists["purchase"] + lists["dropout"]))
        self.covariate_means: list[float] | None = None
        self.covariate_sds: list[float] | None = None
        self.paths: CovariatePaths | None = None
        self._pending_paths: CovariatePaths | None = None
        super().__init__(priors)

    def _all_default_priors(self):
        return {**self.default_priors, **{_COEFS[p]: COEF_PRIOR for p, cols in self.process_covariates.items() if cols}}

    def _config(self) -> dict[str, Any]:
        return {"purchase_covariates": self.process_covariates["purchase"],
                "dropout_covariates": self.process_covariates["dropout"]}

    def _coefficient_names(self) -> list[str]:
        return [_COEFS[p] for p, cols in self.process_covariates.items() if cols]

    def _summary_names(self) -> list[str]:
        return [*self.parameter_names, *self._coefficient_names()]

    # ------------------------------------------------------------------ data
    def fit(self, data: Any, *, paths: CovariatePaths, **kwargs: Any) -> TimeVaryingParetoNBDModel:
        """Fit to ``data`` (:func:`bayesclv.data.time_varying_summary`) with the covariate ``paths``.

        ``paths`` must cover each customer from the first purchase to the
        calibration end; further periods (the future path) are kept for
        predictions. Other arguments as :meth:`bayesclv.models.CLVModel.fit`
        (``method`` ``"nuts"`` or ``"map"``; ``sampler`` ``"nutpie"`` or ``"pymc"``).
        """
        if not isinstance(paths, CovariatePaths):
            raise ArgumentError("expected the CovariatePaths of bayesclv.data.time_varying", argument="paths")
        if kwargs.get("sampler") == "numpyro":
            raise ArgumentError("the lifetime integral's Op has no JAX form: use sampler='nutpie' or 'pymc'",
                                argument="sampler")
        missing = [c for c in self.covariates if c not in paths.covariates]
        if missing:
            raise DataValidationError(f"covariate not in the paths (they hold {list(paths.covariates)})",
                                      column=missing[0])
        self._pending_paths = paths
        try:
            super().fit(data, **kwargs)
        finally:
            self._pending_paths = None
        self.paths = paths
        return self

    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        df = validate_time_varying(data, time_unit=time_unit, covariates=self.process_covariates["purchase"])
        if df.attrs.get("time_unit") is None:
            raise TimeUnitError("the data do not record their time unit: build them with "
                                "bayesclv.data.time_varying_summary or pass time_unit=", column="T")
        return df

    def prediction_data(self, data: Any | None = None) -> pd.DataFrame:
        """``data`` validated in the model's time unit; the fitted data for None."""
        self.check_fitted()
        if data is None:
            return self.data
        df = validate_time_varying(data, time_unit=self.time_unit, covariates=self.process_covariates["purchase"])
        if df.attrs.get("time_unit") is None:
            df.attrs["time_unit"] = self.time_unit
        return df

    def _arrays(self, df: pd.DataFrame, paths: CovariatePaths, horizon: float = 0.0) -> dict[str, np.ndarray]:
        """The formula's arrays for ``df``: overlaps with ``[0, t_x]``, ``(t_x, T]``, ``(T, T + horizon]``,
        standardised covariates per period and standardised purchase sums."""
        T, t_x = df["T"].to_numpy(float), df["recency"].to_numpy(float)
        unit = df.attrs.get("time_unit", self.time_unit)
        pieces = paths.pieces(df["customer_id"], df["first_purchase"], T + horizon, unit, self.covariates)
        means, sds = np.asarray(self.covariate_means), np.asarray(self.covariate_sds)
        z = (pieces.values - means) / sds
        zero = np.zeros(len(df))
        out = {"frequency": df["frequency"].to_numpy(float),
               "before": paretonbd_dynamic.overlap(pieces.start, pieces.end, zero, t_x),
               "within": paretonbd_dynamic.overlap(pieces.start, pieces.end, t_x, T),
               "future": paretonbd_dynamic.overlap(pieces.start, pieces.end, T, T + horizon)}
        for process in PROCESSES:
            idx = [self.covariates.index(c) for c in self.process_covariates[process]]
            out[f"{process}_values"] = z[..., idx]
        cols = self.process_covariates["purchase"]
        sums = df[[SUM_PREFIX + c for c in cols]].to_numpy(float).reshape(len(df), len(cols))
        idx = [self.covariates.index(c) for c in cols]
        out["purchase_sum"] = (sums - out["frequency"][:, None] * means[idx]) / sds[idx]
        return out

    def _set_fit_state(self, df: pd.DataFrame, paths: CovariatePaths) -> None:
        """Time-weighted mean and sd of each covariate over the customers' calibration periods."""
        pieces = paths.pieces(df["customer_id"], df["first_purchase"], df["T"].to_numpy(float),
                              df.attrs["time_unit"], self.covariates)
        weight = (pieces.end - pieces.start)[..., None]
        total = weight.sum()
        if not total > 0:
            raise DataValidationError("the customers have no calibration time to learn covariate effects from",
                                      column="T")
        means = (weight * pieces.values).sum(axis=(0, 1)) / total
        sds = np.sqrt((weight * (pieces.values - means) ** 2).sum(axis=(0, 1)) / total)
        constant = [c for c, sd in zip(self.covariates, sds, strict=True) if not sd > 0]
        if constant:
            raise DataValidationError("covariate is constant over the calibration periods: its effect cannot be "
                                      "told apart from the population parameters", column=constant[0])
        self.covariate_means, self.covariate_sds = means.tolist(), sds.tolist()

    # ------------------------------------------------------------------- fit
    def _graph(self, df: pd.DataFrame, summed: bool) -> pm.Model:
        paths = self._pending_paths if self._pending_paths is not None else self.paths
        if paths is None:
            raise ArgumentError("the model needs its covariate periods: fit(data, paths=...)", argument="paths")
        self._set_fit_state(df, paths)
        arrays = self._arrays(df, paths)
        coords = {f"{p}_covariate": cols for p, cols in self.process_covariates.items() if cols}
        with pm.Model(coords=coords) as model:
            r, alpha = self.priors["r"].create("r"), self.priors["alpha"].create("alpha")
            mean, cv2 = self.priors["dropout_mean"].create("dropout_mean"), self.priors["dropout_cv2"].create("dropout_cv2")
            s = pm.Deterministic("s", 1.0 / cv2)
            beta = pm.Deterministic("beta", 1.0 / (cv2 * mean))
            coefs = {p: self.priors[_COEFS[p]].create(_COEFS[p], dims=f"{p}_covariate") if cols else pt.zeros(0)
                     for p, cols in self.process_covariates.items()}
            loglik = paretonbd_dynamic.loglik(
                arrays["frequency"], arrays["purchase_sum"], arrays["before"], arrays["within"],
                arrays["purchase_values"], arrays["dropout_values"], r, alpha, s, beta,
                coefs["purchase"], coefs["dropout"], xp=PT)
            pm.Potential("loglik", loglik.sum())
        return model

    def _fit_state(self) -> dict[str, Any]:
        return {"covariate_means": self.covariate_means, "covariate_sds": self.covariate_sds,
                "paths": self.paths.to_json() if self.paths is not None else None}

    def _restore_fit_state(self, posterior: xr.Dataset, state: dict[str, Any]) -> None:
        self.covariate_means, self.covariate_sds = state["covariate_means"], state["covariate_sds"]
        self.paths = CovariatePaths.from_json(state["paths"])

    # ------------------------------------------------------------ predictions
    def _draws(self) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
        post = self.posterior
        shape = (post.sizes["chain"], post.sizes["draw"])
        out = {n: post[n].values.reshape(-1) for n in self.parameter_names}
        for p, cols in self.process_covariates.items():
            out[_COEFS[p]] = (post[_COEFS[p]].values.reshape(-1, len(cols)) if cols
                              else np.zeros((out["r"].size, 0)))
        return out, shape

    def _predict(self, fn, name: str, data: Any | None, paths: CovariatePaths | None, horizon: float,
                 **options: Any) -> xr.DataArray:
        """``fn`` of the formula module per draw and customer, in draw chunks -> DataArray(chain, draw, customer_id)."""
        df = self.prediction_data(data)
        arrays = self._arrays(df, self.paths if paths is None else paths, horizon)
        draws, shape = self._draws()
        n, k = len(df), arrays["before"].shape[1]
        step = chunk_length(n * max(k, 1))
        out = np.empty((draws["r"].size, n))
        for lo in range(0, out.shape[0], step):
            part = {key: v[lo:lo + step] for key, v in draws.items()}
            args = [arrays["frequency"], arrays["before"], arrays["within"]]
            if fn is not paretonbd_dynamic.probability_alive:
                args.append(arrays["future"])
            out[lo:lo + step] = fn(*args, arrays["purchase_values"], arrays["dropout_values"],
                                   *(part[p] for p in self.parameter_names), part["purchase_coef"],
                                   part["dropout_coef"], **options)
        return as_dataarray(out.reshape(*shape, n), self.posterior, df["customer_id"].to_numpy(), name,
                            "expectation", self.time_unit)

    def probability_alive(self, data: Any | None = None, paths: CovariatePaths | None = None) -> xr.DataArray:
        """P(alive at the end of calibration), dims ``(chain, draw, customer_id)``.

        ``paths`` default to the fitted ones; they must cover each customer's calibration time.
        """
        return self._predict(paretonbd_dynamic.probability_alive, "probability_alive", data, paths, 0.0)

    def probability_alive_at(self, t: float, data: Any | None = None, paths: CovariatePaths | None = None, *,
                             given_alive: bool = False) -> xr.DataArray:
        """P(alive ``t`` time units after the end of calibration).

        Raises
        ------
        bayesclv.errors.DataValidationError
            The covariate periods of some customers end before ``T + t`` (the
            future dropout covariates are needed), naming them.
        """
        check_horizon(t)
        return self._predict(paretonbd_dynamic.probability_alive_at, "probability_alive_at", data, paths, float(t),
                             given_alive=given_alive)

    def expected_purchases(self, t: float, data: Any | None = None, paths: CovariatePaths | None = None, *,
                           given_alive: bool = False) -> xr.DataArray:
        """Expected purchases in the ``t`` time units after the end of calibration, along the covariates' path.

        Raises
        ------
        bayesclv.errors.DataValidationError
            The covariate periods of some customers end before ``T + t`` (the
            future covariates are needed), naming them.
        """
        check_horizon(t)
        return self._predict(paretonbd_dynamic.expected_purchases, "expected_purchases", data, paths, float(t),
                             given_alive=given_alive)

    # --------------------------------------------------------------- effects
    @property
    def scaling(self) -> pd.DataFrame:
        """Time-weighted mean and sd of each covariate over the fitted calibration periods."""
        self.check_fitted()
        return pd.DataFrame({"mean": self.covariate_means, "sd": self.covariate_sds},
                            index=pd.Index(self.covariates, name="covariate"))

    def covariate_effects(self) -> dict[tuple[str, str], tuple[str, Any]]:
        """``(covariate, process) -> (latent, effect per sd (chain, draw))``: ``log_lambda`` (the log
        purchase rate) or ``log_mu`` (the log dropout rate), as :meth:`ParetoNBDModel.covariate_effects`."""
        self.check_fitted()
        latents = {"purchase": "log_lambda", "dropout": "log_mu"}
        return {(col, p): (latents[p], self.posterior[_COEFS[p]].sel({f"{p}_covariate": col}, drop=True))
                for p, cols in self.process_covariates.items() for col in cols}
