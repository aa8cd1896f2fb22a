"""Individual-level hierarchical models: per-customer latent rates with covariates (Abe 2009).

Each customer has their own purchase and dropout rates, drawn from a
bivariate normal population on the log (or logit) scale whose mean depends on
the customer's covariates (:mod:`bayesclv.models.latent` builds the graph).
Given a customer's rates the likelihood and every prediction are closed form
(:mod:`bayesclv.formulas.individual_paretonbd`,
:mod:`bayesclv.formulas.individual_bgnbd`), so the models implement the same
prediction contract as the population models, row by row over each
customer's own posterior rates. Only the sampler's coordinates are stored
while sampling; each customer's latent quantities are computed from them
after thinning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import special

from bayesclv.errors import DataValidationError
from bayesclv.formulas import individual_bgnbd, individual_paretonbd
from bayesclv.models.base import CLVModel
from bayesclv.formulas._marginal_rule import BGNBD, PARETONBD
from bayesclv.models.integrated_loglik import hierarchical_log_likelihood
from bayesclv.models.latent import customer_arrays, latent_model
from bayesclv.models.marginal import LatentPosterior, MarginalPredictions
from bayesclv.models.pooling import group_codes, group_labels
from bayesclv.models.predictive import POSITION, CustomerLatents
from bayesclv.models.transaction import TransactionPredictions
from bayesclv.priors import Prior

__all__ = ["HierarchicalBetaGeoModel", "HierarchicalParetoNBDModel", "HierarchicalTransactionModel"]

_HERMITE_NODES = 24  # per dimension, for expectations over the population distribution


class HierarchicalTransactionModel(MarginalPredictions, TransactionPredictions, CustomerLatents, CLVModel):
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
    :meth:`expected_purchases_new_customer` and :meth:`simulate_population`
    draw from the population distribution instead.
    """

    default_priors = {
        "intercept": Prior("Normal", mu=0.0, sigma=5.0),
        "slopes": Prior("Normal", mu=0.0, sigma=1.0),
        "sigma": Prior("HalfNormal", sigma=2.0),
        "group_sd": Prior("HalfNormal", sigma=1.0),
    }
    unsupported_methods = {"map": "the joint mode collapses the population sds to 0"}
    # method="nuts" integrates each customer's latents out (models.marginal); method="latent" samples them
    integrates_latents = True
    quadrature_family: ClassVar[int]  # family code of the marginal likelihood's compiled loops
    # two latents per customer: a low-rank mass-matrix update costs more than it saves
    nutpie_adaptation = "diag"
    # a per-customer likelihood graph: numba fuses its elementwise loops over customers
    nutpie_linker = "numba"
    given_columns = ("T",)  # a simulated history keeps each customer's observation length
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

    def _config(self) -> dict[str, Any]:
        return {"covariates": self.covariates, "group": self.group, "lkj_eta": self.lkj_eta}

    def _natural_rates(self, latent0, latent1, xp_exp, xp_expit):
        """Rates of the formulas (``lam`` and ``mu`` or ``p``) from the latent quantities."""
        raise NotImplementedError

    # ------------------------------------------------------------------ data
    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        df = super()._prepare(data, time_unit=time_unit)
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
        self.check_fitted()
        return pd.DataFrame({"mean": [float(self.data[c].mean()) for c in self.covariates],
                             "sd": [float(self.data[c].std()) for c in self.covariates]},
                            index=pd.Index(self.covariates, name="covariate"))

    # ----------------------------------------------------------------- model
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
            ``data``.

        Returns
        -------
        pymc.Model
        """
        df = self._prepare(data, time_unit=time_unit)
        return latent_model(self, df, df if population is None else population)

    def _graph(self, df: pd.DataFrame, summed: bool) -> pm.Model:
        return latent_model(self, df, df)

    def _minibatch_model(self, df: pd.DataFrame, batch_size: int) -> tuple[pm.Model, dict[str, np.ndarray]]:
        """The model of one batch of customers and every customer's values of its data containers."""
        return latent_model(self, df.iloc[:batch_size], df), customer_arrays(self, df, df)

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        return list(self.parameter_names)

    def _stored_variables(self, model: pm.Model) -> list[str]:
        # the sampler's coordinates and the population parameters, not the latent quantities: those are
        # computed from the innovations after thinning (_finish_posterior), so a long run stores half as much
        return [v.name for v in model.free_RVs] + list(self.parameter_names)

    def _finish_posterior(self, model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
        """Each customer's latent quantities from the stored innovations, which are then dropped."""
        latent = pm.compute_deterministics(posterior, var_names=list(self.latent_names), model=model,
                                           progressbar=False)
        kept = ("intercept", "slopes", "group_sd", "group_offset")
        coordinates = [v.name for v in model.free_RVs if v.name not in kept]
        return posterior.drop_vars(coordinates).merge(latent)

    # ----------------------------------------------------------- predictions
    def _conditioning_columns(self) -> list[tuple[str, bool]]:
        # the rates were also fitted given each customer's group and covariates: those must match too
        return [*([(self.group, False)] if self.group else []), *((c, True) for c in self.covariates)]

    def _param_arrays(self, post: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        post = self.posterior if post is None else post
        if self.latent_names[0] in post:  # fitted with method="latent": every customer's latent draws
            return {n: post[n].values for n in self.latent_names}
        return LatentPosterior.population_arrays(post, self.group is not None)

    def _row_params(self, params: dict[str, Any], rows: pd.DataFrame, xp) -> dict[str, Any]:
        """Each row's own rates: the latent draws of its customer on the formulas' scale (with the latents
        integrated out, drawn per posterior draw from the customer's conditional posterior)."""
        position = rows[POSITION].to_numpy()
        if "sample" in params:
            latent = self._latent_posterior().draw(params, position)
        else:
            latent = [params[n][..., position] for n in self.latent_names]
        return dict(zip(self.rate_names, self._natural_rates(*latent, np.exp, special.expit), strict=True))

    def log_likelihood(self, data: Any | None = None) -> xr.DataArray:
        """Each customer's log-likelihood per draw with their latent rates integrated out (for LOO).

        ``log p(y_i | phi_d, x_i)``, the population draw's density of the customer's
        history: the pooled models' kind of term (their rates are integrated out
        too), so LOO compares both on the same predictive target, and leaving a
        customer out reweights the population draws only, which PSIS handles
        stably (terms given each draw's own latents of the customer do not:
        ``validation/results/hb_integrated_loo_sample.md``). Any fit method gives the same
        quantity (:func:`bayesclv.models.integrated_loglik.hierarchical_log_likelihood`);
        predictions still use each customer's conditional latents.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        return hierarchical_log_likelihood(self, data)

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
        return self._per_customer(self.rate_names, data)

    # ------------------------------------------------------------ population
    def _population_draws(self, sample: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of the population: intercepts, coefficients, sds, correlation (and group offsets),
        flattened over chains and taken at ``sample`` (all draws for None)."""
        post = self.posterior
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        index = slice(None) if sample is None else np.asarray(sample)
        names = ["coefficients", "sigma", "correlation"] + (["group_offset"] if self.group else [])
        return {n: post[n].values.reshape(n_samples, *post[n].shape[2:])[index] for n in names}

    def _new_customer_draws(self, t: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], dict[str, Any]]:
        """Expected purchases of a new customer at the covariate means (Gauss-Hermite over the population)."""
        post = self.posterior
        nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
        weights = weights / weights.sum()
        u0, u1 = (g.ravel() for g in np.meshgrid(nodes, nodes, indexing="ij"))
        w = np.outer(weights, weights).ravel()
        mu0 = post["intercept"].sel(process="purchase").values[..., None]
        mu1 = post["intercept"].sel(process="dropout").values[..., None]
        s0 = post["sigma"].sel(process="purchase").values[..., None]
        s1 = post["sigma"].sel(process="dropout").values[..., None]
        # the rates' correlation through _population_draws (a joint spend model's has two more)
        rho = self._population_draws()["correlation"].reshape(mu0.shape[:2])[..., None]
        latent0 = mu0 + s0 * u0
        latent1 = mu1 + s1 * (rho * u0 + np.sqrt(1.0 - rho**2) * u1)
        rates = dict(zip(self.rate_names, self._natural_rates(latent0, latent1, np.exp, special.expit),
                         strict=True))
        values = np.stack([
            np.sum(w * self.formulas.expected_purchases(h, 0.0, 0.0, 0.0, **rates, given_alive=True), axis=-1)
            for h in t], axis=-1)
        return values, ("chain", "draw"), {"chain": post["chain"].values, "draw": post["draw"].values}

    def simulate_population(self, sample: np.ndarray, data: Any | None = None,
                            random_seed: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Histories of new customers like ``data``'s from the population of each posterior sample.

        For each sample, every customer gets new latent rates from the
        population distribution at their own covariates (and group), and a
        history over their own ``T``; see
        :meth:`bayesclv.models.contract.TransactionModel.simulate_population`.
        """
        df = self.prediction_data(data)
        rng = np.random.default_rng(random_seed)
        pop = self._population_draws(sample)
        X = np.column_stack([np.ones(len(df)), df[self.covariates].to_numpy(dtype=float)])
        mean = np.einsum("ik,skp->sip", X, pop["coefficients"])
        if self.group:
            codes = group_codes(df, self.group, group_labels(self.data, self.group))
            mean = mean + pop["group_offset"][:, codes, :]
        s0, s1, rho = pop["sigma"][:, None, 0], pop["sigma"][:, None, 1], pop["correlation"][:, None]
        z0, z1 = rng.standard_normal(mean.shape[:2]), rng.standard_normal(mean.shape[:2])
        latent0 = mean[..., 0] + s0 * z0
        latent1 = mean[..., 1] + s1 * (rho * z0 + np.sqrt(1.0 - rho**2) * z1)
        rates = self._natural_rates(latent0, latent1, np.exp, special.expit)
        sim = self.formulas.simulate_histories(df["T"].to_numpy(dtype=float)[None, :], *rates, rng)
        return {"frequency": sim["frequency"], "recency": sim["recency"]}


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
    quadrature_family = PARETONBD
    formulas = individual_paretonbd
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
    quadrature_family = BGNBD
    formulas = individual_bgnbd
    display_name = "hierarchical BG/NBD"

    def _natural_rates(self, latent0, latent1, xp_exp, xp_expit):
        return xp_exp(latent0), xp_expit(latent1)
