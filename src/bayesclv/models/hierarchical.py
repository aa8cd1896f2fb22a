"""Individual-level hierarchical models: per-customer latent rates with covariates.

Each customer ``i`` has two latent quantities ``theta_i`` (purchase and
dropout, on the log or logit scale) drawn from a bivariate normal population::

    theta_i ~ MvNormal(X_i B (+ group intercept), Sigma)

with customer covariates ``X_i`` (named columns of the RFM frame; an
intercept always), an LKJ prior on the correlation in ``Sigma`` and, with
``group=``, group-specific intercepts partially pooled around the population
intercept. Given ``theta_i`` the likelihood is closed form
(:mod:`bayesclv.formulas.individual_paretonbd`,
:mod:`bayesclv.formulas.individual_bgnbd`). The latent rates are
``theta_i = mean_i + L z_i`` with ``z_i ~ N(0, I)`` and ``L`` the Cholesky
factor of ``Sigma``; both innovations are sampled partially centred, with a
weight that grows with what the customer's history says about the latent
(:func:`centring_weights`, :func:`dropout_centring_weights`): the customers
whose rates the data pin down are nearly centred, the others non-centred,
which removes the funnel between them and the population sds. Only the
innovations are stored while sampling; each customer's latent quantities are
computed from them after thinning, which halves the memory of a long run.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from bayesclv.errors import ConvergenceWarning, DataValidationError
from bayesclv.formulas import PT, individual_bgnbd, individual_paretonbd
from bayesclv.models.base import _CHUNK_ELEMENTS, FitDiagnostics, map_chunks
from bayesclv.models.transaction import TransactionModel, _check_horizon
from bayesclv.models.variational import approximation_posterior, elbo_converged, fit_minibatch_advi
from bayesclv.priors import Prior
from bayesclv.simulate import future_purchases_individual_bgnbd, future_purchases_individual_paretonbd

__all__ = ["HierarchicalBetaGeoModel", "HierarchicalParetoNBDModel"]

PROCESSES = ("purchase", "dropout")
_HERMITE_NODES = 24  # per dimension, for expectations over the population distribution
_CENTRING_PRIOR_SD = 1.5  # typical population sd of log purchase rates (CDNOW: about 1.2-1.8)
_DROPOUT_CENTRING_WEIGHT = 0.5  # for customers with repeat purchases; see dropout_centring_weights
logger = logging.getLogger("bayesclv")


def centring_weights(frequency: np.ndarray, prior_sd: float = _CENTRING_PRIOR_SD) -> np.ndarray:
    """Per-customer weight ``w`` of the partially centred purchase latent (0: non-centred, 1: centred).

    The purchase latent ``theta = m + s z`` is sampled as ``u ~ Normal(w m, s^w)``
    with ``theta = m + s^(1-w) (u - w m)``, which leaves the model unchanged for
    any ``w`` in ``[0, 1]`` (Papaspiliopoulos, Roberts & Skold 2007). Sampling
    is easiest with ``w = I s^2 / (1 + I s^2)``, ``I`` the information of the
    data about ``theta`` (Gorinova, Moore & Hoffman 2020): for a Poisson count of
    ``x`` purchases ``I`` is about ``x``. ``s`` is not known before the fit, so a
    typical population sd ``prior_sd`` stands in for it.

    Parameters
    ----------
    frequency : numpy.ndarray
        Repeat purchases ``x`` of each customer.
    prior_sd : float, default 1.5
        Stand-in for the population sd of the log purchase rate.

    Returns
    -------
    numpy.ndarray
        Weights in ``[0, 1)``, 0 for customers without repeat purchases.
    """
    info = np.asarray(frequency, dtype=float) * prior_sd**2
    return info / (1.0 + info)


def dropout_centring_weights(frequency: np.ndarray) -> np.ndarray:
    """Per-customer weight of the partially centred dropout latent (see :func:`centring_weights`).

    A customer without repeat purchases says almost nothing about their own
    dropout rate (for the BG/NBD nothing at all), so their latent stays
    non-centred (``w = 0``). A customer with repeat purchases contributes about
    one observation of the lifetime, whatever the count: in the CDNOW full fit
    of the hierarchical Pareto/NBD with non-centred dropout, the posterior
    variance of the standardised innovation is 0.98 without repeat purchases
    and 0.41-0.64 (median about 0.47) with them, and ``w = 1 - variance``
    (Gorinova, Moore & Hoffman 2020) gives ``w = 0.5``. On the CDNOW sample
    (4 chains x 2000 draws, two seeds) this raised the bulk ESS of the
    population sd of dropout from 245/240 to 328/398 and of the correlation
    from 533/426 to 647/959.

    Parameters
    ----------
    frequency : numpy.ndarray
        Repeat purchases ``x`` of each customer.

    Returns
    -------
    numpy.ndarray
        0.5 for customers with repeat purchases, 0 for the others.
    """
    return np.where(np.asarray(frequency, dtype=float) > 0, _DROPOUT_CENTRING_WEIGHT, 0.0)


class HierarchicalTransactionModel(TransactionModel):
    """Shared machinery of the individual-level models; subclasses set the latent scales.

    Parameters
    ----------
    covariates : sequence of str, optional
        Numeric columns of the RFM frame used as customer covariates (an
        intercept is always included). They are standardised (mean 0, sd 1 in
        the fitted data) for sampling; ``coefficients`` in the posterior are on
        the original scale of each column (effect per unit).
    group : str, optional
        Column naming each customer's group (segment, cohort, ...): each group
        gets its own intercepts, ``group_offset ~ Normal(0, group_sd)`` around
        the population intercept (partial pooling).
    priors : dict of str to Prior, optional
        Overrides for ``intercept`` (population intercepts at the covariate
        means, default ``Normal(0, 5)``), ``slopes`` (per sd of a covariate,
        ``Normal(0, 1)``), ``sigma`` (population sds, ``HalfNormal(2)``) and
        ``group_sd`` (``HalfNormal(1)``).
    lkj_eta : float, default 2.0
        Shape of the LKJ prior on the correlation of the two latent quantities.

    Notes
    -----
    Predictions use each customer's posterior rates, so they exist only for
    customers in the fitted data: asking for any other customer raises
    :class:`~bayesclv.errors.DataValidationError` (refit with them included).
    :meth:`expected_purchases_new_customer` is the one prediction from the
    population distribution (a new customer at the covariate means).
    """

    default_priors = {
        "intercept": Prior("Normal", mu=0.0, sigma=5.0),
        "slopes": Prior("Normal", mu=0.0, sigma=1.0),
        "sigma": Prior("HalfNormal", sigma=2.0),
        "group_sd": Prior("HalfNormal", sigma=1.0),
    }
    # with two latent rates per customer the low-rank update costs more than it saves: on the CDNOW
    # sample (4,721 dimensions) diagonal adaptation samples 2x300 draws in 11 s, low-rank in > 60 s,
    # at the same leapfrog steps per draw
    nutpie_adaptation = "diag"
    # a per-customer likelihood graph: numba fuses its elementwise loops over customers
    nutpie_linker = "numba"
    latent_names: ClassVar[tuple[str, str]]  # posterior names of the per-customer latent quantities
    rate_names: ClassVar[tuple[str, str]]  # formula arguments: the rates on their natural scale

    def __init__(self, covariates: list[str] | tuple[str, ...] = (), group: str | None = None,
                 priors: dict[str, Prior] | None = None, lkj_eta: float = 2.0):
        super().__init__(priors)
        if isinstance(covariates, str):
            covariates = [covariates]
        self.covariates = list(covariates)
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"covariates repeat a column: {self.covariates}")
        self.group = group
        if not lkj_eta > 0:
            raise ValueError(f"lkj_eta must be > 0, got {lkj_eta!r}")
        self.lkj_eta = float(lkj_eta)
        self.parameter_names = ("coefficients", "sigma", "correlation") + (
            ("group_sd", "group_offset") if group else ())

    # ------------------------------------------------------------------ data
    def _select_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        for col in self.covariates:
            if col not in df.columns:
                raise DataValidationError("covariate column not in the data", column=col)
            if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
                raise DataValidationError(
                    f"covariates must be numeric (got {df[col].dtype}); encode categories as 0/1 columns",
                    column=col)
            bad = ~np.isfinite(df[col].to_numpy(dtype=float))
            if bad.any():
                raise DataValidationError("covariate has missing or infinite values", column=col,
                                          rows=df.loc[bad, "customer_id"].tolist())
            if df[col].std() == 0 or len(df) < 2:
                raise DataValidationError("covariate is constant: its effect is the intercept's",
                                          column=col)
        if self.group is not None:
            if self.group not in df.columns:
                raise DataValidationError("group column not in the data", column=self.group)
            missing = df[self.group].isna().to_numpy()
            if missing.any():
                raise DataValidationError("group has missing values", column=self.group,
                                          rows=df.loc[missing, "customer_id"].tolist())
        return df

    @property
    def scaling(self) -> pd.DataFrame:
        """Mean and sd of each covariate in the fitted data (the standardisation used in sampling)."""
        self._check_fitted()
        return pd.DataFrame({"mean": [float(self.data[c].mean()) for c in self.covariates],
                             "sd": [float(self.data[c].std()) for c in self.covariates]},
                            index=pd.Index(self.covariates, name="covariate"))

    # ----------------------------------------------------------------- model
    def _natural_rates(self, latent0, latent1, xp_exp, xp_expit):
        """Rates of the formulas (``lam`` and ``mu`` or ``p``) from the latent quantities."""
        raise NotImplementedError

    def _customer_arrays(self, df: pd.DataFrame, population: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per-customer inputs of the PyMC model: the data columns, standardised covariates, group
        codes and centring weights of the customers of ``df``, standardised and coded as in ``population``."""
        arrays = {c: df[c].to_numpy(dtype=float) for c in self.data_columns}
        if self.covariates:
            centre, scale = self._standardisation(population)
            arrays["standardised"] = (df[self.covariates].to_numpy(dtype=float) - centre) / scale
        if self.group is not None:
            labels = pd.factorize(population[self.group], sort=True)[1]
            codes = pd.Index(labels).get_indexer(df[self.group])
            if (codes < 0).any():
                raise DataValidationError("group label not among the population's groups", column=self.group,
                                          rows=df.loc[codes < 0, "customer_id"].tolist())
            arrays["group_code"] = codes
        arrays["purchase_weight"] = centring_weights(arrays["frequency"])
        arrays["dropout_weight"] = dropout_centring_weights(arrays["frequency"])
        return arrays

    def _standardisation(self, population: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd (ddof 1) of each covariate in ``population``: sampling sees ``(x - mean) / sd``."""
        X = population[self.covariates].to_numpy(dtype=float)
        return X.mean(axis=0), X.std(axis=0, ddof=1)

    def _groups(self, population: pd.DataFrame) -> list[str]:
        """Sorted group labels of ``population`` (as strings: the ``group`` coordinate)."""
        return [str(g) for g in pd.factorize(population[self.group], sort=True)[1]]

    def build_model(self, data: Any, *, time_unit: str | None = None, summed: bool = True,
                    population: pd.DataFrame | None = None) -> pm.Model:
        """The PyMC model: population (with covariates and groups), partially centred latent rates, likelihood.

        Parameters
        ----------
        data : DataFrame
            RFM frame with the covariate and group columns.
        time_unit : str, optional
            Needed only if the frame does not record its unit.
        summed : bool, default True
            Ignored: each customer has their own rates, so the likelihood is
            one term per customer whatever the backend.
        population : DataFrame, optional
            Prepared frame of all customers whose covariate means and sds
            standardise the covariates and whose labels are the groups; default
            ``data``. A model of a minibatch (:mod:`bayesclv.models.variational`)
            passes the full data here. Every per-customer input is a data
            container (``pymc.Data`` with dim ``customer_id``), so a batch can be swapped in.

        Returns
        -------
        pymc.Model
        """
        df = self._prepare(data, time_unit=time_unit)
        return self._model(df, df if population is None else population)

    def _model(self, df: pd.DataFrame, population: pd.DataFrame) -> pm.Model:
        """:meth:`build_model` of a prepared frame (a minibatch is not validated on its own: a batch may
        hold one value of a covariate that varies in the population)."""
        coords = {"customer_id": df["customer_id"].to_numpy(), "process": list(PROCESSES),
                  "covariate": ["intercept", *self.covariates], "slope": self.covariates}
        if self.group is not None:
            coords["group"] = self._groups(population)
        arrays = self._customer_arrays(df, population)
        with pm.Model(coords=coords) as model:
            inputs = {name: pm.Data(name, values, dims=("customer_id", "slope")[:values.ndim])
                      for name, values in arrays.items()}
            intercept = self.priors["intercept"].create("intercept", dims="process")
            mean = intercept[None, :]
            if self.covariates:
                centre, scale = self._standardisation(population)
                slopes = self.priors["slopes"].create("slopes", dims=("slope", "process"))
                # elementwise, not a matrix product: no BLAS call in the compiled graph
                mean = mean + sum(inputs["standardised"][:, k, None] * slopes[k][None, :]
                                  for k in range(len(self.covariates)))
                per_unit = slopes / scale[:, None]
                pm.Deterministic("coefficients", pt.concatenate(
                    [(intercept - pt.as_tensor_variable(centre) @ per_unit)[None, :], per_unit]),
                    dims=("covariate", "process"))
            else:
                pm.Deterministic("coefficients", intercept[None, :], dims=("covariate", "process"))
            if self.group is not None:
                group_sd = self.priors["group_sd"].create("group_sd", dims="process")
                group_z = pm.Normal("group_z", 0.0, 1.0, dims=("group", "process"))
                offset = pm.Deterministic("group_offset", group_z * group_sd, dims=("group", "process"))
                mean = mean + offset[inputs["group_code"]]
            sigma_prior = self.priors["sigma"]
            sd_dist = getattr(pm, sigma_prior.distribution).dist(**sigma_prior.parameters, shape=2)
            chol, corr, sigma = pm.LKJCholeskyCov("chol", eta=self.lkj_eta, n=2, sd_dist=sd_dist,
                                                  compute_corr=True, store_in_trace=False)
            pm.Deterministic("sigma", sigma, dims="process")
            pm.Deterministic("correlation", corr[0, 1])
            # latents partially centred (weights w_i from the customer's purchase count);
            # z = standard-normal innovations of theta = mean + L z
            w = inputs["purchase_weight"]
            scale_w = chol[0, 0] ** w
            purchase = pm.Normal("purchase_innovation", w * mean[:, 0], scale_w, dims="customer_id")
            z0 = (purchase - w * mean[:, 0]) / scale_w
            # the dropout innovation, given the purchase one, partially centred the same way
            w1 = inputs["dropout_weight"]
            conditional_mean = mean[:, 1] + chol[1, 0] * z0
            scale_w1 = chol[1, 1] ** w1
            dropout = pm.Normal("dropout_innovation", w1 * conditional_mean, scale_w1, dims="customer_id")
            z1 = (dropout - w1 * conditional_mean) / scale_w1
            # mean + z L^T written out elementwise (a 2x2 factor needs no matrix product)
            latent = [
                pm.Deterministic(self.latent_names[0], mean[:, 0] + chol[0, 0] * z0, dims="customer_id"),
                pm.Deterministic(self.latent_names[1], mean[:, 1] + chol[1, 0] * z0 + chol[1, 1] * z1,
                                 dims="customer_id"),
            ]
            rates = dict(zip(self.rate_names, self._natural_rates(*latent, pt.exp, pt.sigmoid), strict=True))
            cols = {c: inputs[c] for c in self.data_columns}
            pm.Potential("loglik", self._loglik(cols, rates, PT).sum())
        return model

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        return list(self.parameter_names)

    def _stored_variables(self, model: pm.Model) -> list[str]:
        # the sampler's coordinates and the population parameters, not the latent quantities: these
        # are computed from the innovations after thinning (_finish_posterior), so a long run stores
        # two arrays of draws x customers, not four
        return [v.name for v in model.free_RVs] + list(self.parameter_names)

    def _finish_posterior(self, model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
        """Each customer's latent quantities from the stored innovations, which are then dropped."""
        latent = pm.compute_deterministics(posterior, var_names=list(self.latent_names), model=model,
                                           progressbar=False)
        coordinates = [v.name for v in model.free_RVs if v.name not in ("intercept", "slopes", "group_sd")]
        return posterior.drop_vars(coordinates).merge(latent)

    def fit(self, data: Any, *, method: str = "nuts", batch_size: int | None = None,
            **kwargs: Any) -> HierarchicalTransactionModel:
        """Fit by NUTS or ADVI; see :meth:`bayesclv.models.base.CLVModel.fit` for the arguments.

        ``method="map"`` is refused: the joint mode of a hierarchical model
        puts every latent rate at the population mean and the population sds
        at zero, which is not an estimate of anything.

        Parameters
        ----------
        batch_size : int, optional
            With ``method="advi"``: minibatch ADVI on batches of this many
            customers (:mod:`bayesclv.models.variational`), whose cost per step
            does not grow with the number of customers, with a full-rank
            Gaussian over each customer's two latent quantities. ``tune x 10``
            steps, ``draws`` draws of the approximation (one chain); each
            customer is in ``tune x 10 x batch_size / customers`` batches.
            Without it, PyMC's full-batch mean-field ADVI. The posterior holds
            ``draws x customers`` of each latent quantity and sampling it takes
            about three times that (CDNOW full, 1,000 draws: 0.6 GB; 1M
            customers: 20 draws, peak RSS 1.7 GB for the whole fit).
        """
        if method == "map":
            raise ValueError(f"{type(self).__name__} cannot be fitted by MAP (the joint mode collapses "
                             "the population sds to 0); use method='nuts' or 'advi'")
        if batch_size is None:
            return super().fit(data, method=method, **kwargs)
        if method != "advi":
            raise ValueError(f"batch_size is for method='advi' (minibatch ADVI), got method={method!r}")
        return self._fit_minibatch(data, batch_size=int(batch_size), **kwargs)

    def _fit_minibatch(self, data: Any, *, batch_size: int, draws: int = 1000, tune: int = 1000,
                       random_seed: int | None = None, progressbar: bool = True, time_unit: str | None = None,
                       learning_rate: float = 0.01, local_learning_rate: float = 0.05
                       ) -> HierarchicalTransactionModel:
        """Minibatch ADVI (see :meth:`fit`); the draws of the approximation become a one-chain posterior."""
        df = self._prepare(data, time_unit=time_unit)
        if not 1 <= batch_size <= len(df):
            raise ValueError(f"batch_size must be from 1 to the number of customers ({len(df)}), got {batch_size}")
        batch_model = self._model(df.iloc[:batch_size], df)
        approx = fit_minibatch_advi(batch_model, self._customer_arrays(df, df), steps=max(tune, 1) * 10,
                                    batch_size=batch_size, learning_rate=learning_rate,
                                    local_learning_rate=local_learning_rate, random_seed=random_seed,
                                    progressbar=progressbar)
        model = self._model(df, df)
        posterior = approximation_posterior(model, approx, draws, self.parameter_names,
                                            np.random.default_rng(random_seed))
        self.idata = xr.DataTree.from_dict({"posterior": self._finish_posterior(model, posterior)})
        self.data, self.fit_method, self.time_unit = df, "advi", df.attrs["time_unit"]
        converged, rise = elbo_converged(approx.elbo, approx.batches, len(df))
        self.diagnostics = FitDiagnostics(method="advi", steps=len(approx.elbo), batch_size=batch_size,
                                          elbo_rise=rise, drift=approx.drift, ok=converged)
        logger.info("%s: %s", self.display_name, self.diagnostics)
        if progressbar:
            print(f"{self.display_name} convergence: {self.diagnostics}")
        if not converged:
            warnings.warn(f"{self.display_name}: minibatch ADVI has not converged: the mean ELBO rose by "
                          f"{rise:.4f} nats per customer over the last tenth of the steps; run more steps "
                          "(tune)", ConvergenceWarning, stacklevel=3)
        return self

    # ----------------------------------------------------------- predictions
    def _customer_positions(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of the fitted data for the customers of ``df``; their histories must match."""
        if df is self.data:
            return np.arange(len(df))
        positions = pd.Index(self.data["customer_id"]).get_indexer(df["customer_id"])
        unknown = positions < 0
        if unknown.any():
            raise DataValidationError(
                "customers not in the fitted data: predictions of an individual-level model use "
                "each customer's posterior rates; refit with these customers included",
                column="customer_id", rows=df.loc[unknown, "customer_id"].tolist())
        for col in self.data_columns:
            fitted = self.data[col].to_numpy(dtype=float)[positions]
            differ = ~np.isclose(df[col].to_numpy(dtype=float), fitted, rtol=1e-9, atol=1e-12)
            if differ.any():
                raise DataValidationError(
                    "history differs from the fitted data: the posterior rates condition on the fitted "
                    "history; refit on the new data", column=col, rows=df.loc[differ, "customer_id"].tolist())
        return positions

    def _over_customers(self, func, df: pd.DataFrame, name: str, dtype=float,
                        quantity: str = "expectation") -> xr.DataArray:
        """Evaluate ``func(columns, rates)`` with each customer's own posterior rates, chunked."""
        positions = self._customer_positions(df)
        post = self.posterior
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        latent = [post[n].values for n in self.latent_names]
        step = max(1, _CHUNK_ELEMENTS // max(n_chain * n_draw, 1))
        cols = {c: self.data[c].to_numpy(dtype=float)[positions] for c in self.data_columns}
        values = np.empty((n_chain, n_draw, len(positions)), dtype=dtype)

        def evaluate_chunk(start: int) -> None:
            rows = positions[start:start + step]
            rates = self._natural_rates(latent[0][..., rows], latent[1][..., rows], np.exp, special.expit)
            chunk = {c: v[start:start + step] for c, v in cols.items()}
            values[..., start:start + step] = func(chunk, dict(zip(self.rate_names, rates, strict=True)))

        map_chunks(evaluate_chunk, len(positions), step, parallel=quantity != "outcome")
        return xr.DataArray(
            values, dims=("chain", "draw", "customer_id"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "customer_id": df["customer_id"].to_numpy()},
            name=name, attrs={"quantity": quantity, "time_unit": self.time_unit},
        )

    def _alive_weighted(self, fn, data, name, t, given_alive) -> xr.DataArray:
        """``fn(t, history, rates, given_alive)`` with each customer's own rates (nothing to share)."""
        df = self._data_for_prediction(data)
        return self._over_customers(
            lambda c, p: fn(t, c["frequency"], c["recency"], c["T"], **p, given_alive=given_alive), df, name)

    def _distinct_histories(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Every customer is its own history: predictions use the customer's own posterior rates."""
        return df, np.arange(len(df))

    def rates(self, data: Any | None = None) -> xr.Dataset:
        """Posterior of each customer's own rates (``lam`` and ``mu`` or ``p``).

        Parameters
        ----------
        data : DataFrame, optional
            Fitted customers to return; default all.

        Returns
        -------
        xarray.Dataset
            One variable per rate, dims ``(chain, draw, customer_id)``.
        """
        df = self._data_for_prediction(data)
        return xr.Dataset({
            name: self._over_customers(lambda c, p, name=name: p[name], df, name)
            for name in self.rate_names
        })

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> xr.DataArray:
        """Expected purchases in the first ``t`` time units of a new customer at the covariate means.

        The expectation over the population distribution of the latent rates
        (without group offsets), by Gauss-Hermite quadrature, per posterior draw.

        Parameters
        ----------
        t : float or array_like
            Horizon(s) in the model's time unit.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)`` or ``(chain, draw, t)`` for an array of horizons.
        """
        self._check_fitted()
        t_arr = np.atleast_1d(np.asarray(t, dtype=float))
        for value in t_arr:
            _check_horizon(value)
        post = self.posterior
        nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
        weights = weights / weights.sum()
        u0, u1 = (g.ravel() for g in np.meshgrid(nodes, nodes, indexing="ij"))
        w = np.outer(weights, weights).ravel()
        mu0 = post["intercept"].sel(process="purchase").values[..., None]
        mu1 = post["intercept"].sel(process="dropout").values[..., None]
        s0 = post["sigma"].sel(process="purchase").values[..., None]
        s1 = post["sigma"].sel(process="dropout").values[..., None]
        rho = post["correlation"].values[..., None]
        latent0 = mu0 + s0 * u0
        latent1 = mu1 + s1 * (rho * u0 + np.sqrt(1.0 - rho**2) * u1)
        rates = dict(zip(self.rate_names, self._natural_rates(latent0, latent1, np.exp, special.expit),
                         strict=True))
        values = np.stack([
            np.sum(w * self.formulas.expected_purchases(h, 0.0, 0.0, 0.0, **rates, given_alive=True), axis=-1)
            for h in t_arr], axis=-1)
        da = xr.DataArray(values, dims=("chain", "draw", "t"),
                          coords={"chain": post["chain"].values, "draw": post["draw"].values, "t": t_arr},
                          name="expected_purchases_new_customer")
        return da.isel(t=0, drop=True) if np.ndim(t) == 0 else da

    def sample_prior_predictive(self, *args: Any, **kwargs: Any):
        """Not available for the individual-level models: use ``bayesclv.simulate.simulate_hierarchical_*``."""
        raise NotImplementedError(
            f"{type(self).__name__}: prior predictive simulation is not available; simulate with "
            "bayesclv.simulate.simulate_hierarchical_* from chosen coefficients and covariance")

    def _config(self) -> dict[str, Any]:
        return {"covariates": self.covariates, "group": self.group, "lkj_eta": self.lkj_eta}


class HierarchicalParetoNBDModel(HierarchicalTransactionModel):
    """Hierarchical Pareto/NBD (Abe 2009): ``(log lambda_i, log mu_i) ~ MvNormal(X_i B, Sigma)``.

    ``lambda_i`` is the purchase rate and ``mu_i`` the dropout rate of customer
    ``i`` (per time unit of the data). See :class:`HierarchicalTransactionModel`
    for the parameters (covariates, group, priors, lkj_eta).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesclv import HierarchicalParetoNBDModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = HierarchicalParetoNBDModel()  # doctest: +SKIP
    >>> model.fit(rfm, draws=500, tune=500, chains=2)  # doctest: +SKIP
    """

    latent_names = ("log_lambda", "log_mu")
    rate_names = ("lam", "mu")
    formulas = individual_paretonbd
    simulator = staticmethod(future_purchases_individual_paretonbd)
    display_name = "hierarchical Pareto/NBD"

    def _natural_rates(self, latent0, latent1, xp_exp, xp_expit):
        return xp_exp(latent0), xp_exp(latent1)


class HierarchicalBetaGeoModel(HierarchicalTransactionModel):
    """Hierarchical BG/NBD: ``(log lambda_i, logit p_i) ~ MvNormal(X_i B, Sigma)``.

    ``lambda_i`` is the purchase rate and ``p_i`` the probability of dropping
    out after each repeat purchase. See :class:`HierarchicalTransactionModel`
    for the parameters (covariates, group, priors, lkj_eta).
    """

    latent_names = ("log_lambda", "logit_p")
    rate_names = ("lam", "p")
    formulas = individual_bgnbd
    simulator = staticmethod(future_purchases_individual_bgnbd)
    display_name = "hierarchical BG/NBD"

    def _natural_rates(self, latent0, latent1, xp_exp, xp_expit):
        return xp_exp(latent0), xp_expit(latent1)
