"""Population models: one set of parameters for everybody or per group, and identical rows compressed.

The likelihood of a population model depends on a customer only through the
data columns (and the group), so identical rows are compressed into weighted
terms: the summed kernel of the family's formula module when it has one (the
data set's total and gradient in one compiled pass), else the per-row formula.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesclv.formulas import NP, PT
from bayesclv.models.base import CLVModel
from bayesclv.models.pooling import (
    GROUP_CODE,
    centred_quantities,
    check_pooling,
    create_quantity,
    distinct_rows,
    group_codes,
    group_labels,
    pooled_priors,
    row_params,
    summed_tables,
)
from bayesclv.models.predictive import Predictive
from bayesclv.models.transaction import TransactionPredictions
from bayesclv.priors import Prior

__all__ = ["PooledModel", "PooledTransactionModel"]


class PooledModel(Predictive, CLVModel):
    """Base of the population models (BG/NBD, Pareto/NBD, Gamma-Gamma), with optional groups.

    Subclasses set ``parameter_names``, ``default_priors``, ``data_columns``,
    ``formulas`` and ``given_columns`` (the data columns a population
    simulation keeps, e.g. each customer's ``T``).

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides of the default priors, by parameter name. With
        ``pooling="partial"`` also the hyperpriors ``log_<name>_mean`` (default
        ``Normal(0, 3)``) and ``log_<name>_sd`` (default ``HalfNormal(1)``) of
        each sampled quantity ``<name>``.
    group : str, optional
        Column of the data naming each customer's group (segment, cohort,
        channel, ...). Each group gets its own population parameters; the
        posterior has a ``group`` dim whose coordinates are the group labels.
        Predictions use each customer's group parameters; a label the model
        was not fitted on raises :class:`~bayesclv.errors.DataValidationError`.
    pooling : {"partial", "none", "complete"}, optional
        How the groups share information. ``"partial"`` (the default with a
        ``group``): on the log scale each group's quantity is
        ``log_<name>_mean + log_<name>_sd * log_<name>_offset[group]`` with
        standard-normal offsets (non-centred), so small groups borrow
        strength from large ones. ``"none"``: independent per-group
        parameters with the default priors. ``"complete"`` (the default
        without a ``group``): one population for everybody.
    """

    #: a data column counting the identical customers each row stands for (a compressed table);
    #: None: every row is one customer
    weight_column: str | None = None
    #: nutpie samples the log density of :mod:`bayesclv.models.direct_density` (the summed kernel and the
    #: priors in compiled code, no PyTensor graph) where the configuration allows it
    samples_direct_density: bool = False
    # fixed keyword arguments of every formula call besides the parameters (CNBD-k's ``k``); a
    # family with such a structural constant sets its own dict per instance
    _formula_options: Mapping[str, Any] = MappingProxyType({})
    # with partial pooling: quantity -> which groups' offsets are sampled centred (set by ``_graph``)
    _centred: Mapping[str, np.ndarray] = MappingProxyType({})

    def __init__(self, priors: dict[str, Prior] | None = None, *, group: str | None = None,
                 pooling: str | None = None):
        self.pooling = check_pooling(group, pooling)
        self.group = group
        self.groups: list | None = None  # group labels of the fit, in the order of the ``group`` dim
        if self.pooling == "partial":  # smaller NUTS steps for the hierarchy's curvature (0.8 gave divergences)
            self.default_target_accept = max(self.default_target_accept, 0.95)
        super().__init__(priors)

    @property
    def grouped(self) -> bool:
        """True when each group has its own population parameters (``pooling`` partial or none)."""
        return self.pooling != "complete"

    def _all_default_priors(self) -> dict[str, Prior]:
        return pooled_priors(self.default_priors, self.pooling)

    def _config(self) -> dict[str, Any]:
        return {"group": self.group, "pooling": self.pooling}

    @property
    def history_columns(self) -> tuple[str, ...]:
        return (*self.prediction_columns, *([self.group] if self.grouped else []))

    # -------------------------------------------------------------- rows
    def _design(self, df: pd.DataFrame) -> pd.DataFrame:
        """The columns the likelihood and predictions read: data columns (+ ``group_code``)."""
        frame = df[list(self.data_columns)].astype(float)
        if self.grouped:
            group_labels(df, self.group)  # presence and missing-label checks
            frame[GROUP_CODE] = group_codes(df, self.group, self.groups)
        return frame

    def _row_params(self, params: dict[str, Any], rows: pd.DataFrame, xp) -> dict[str, Any]:
        """Each row's likelihood parameters (see :func:`bayesclv.models.pooling.row_params`) and the
        family's ``_formula_options``."""
        return {**row_params(params, rows[GROUP_CODE].to_numpy() if self.grouped else None, xp),
                **self._formula_options}

    def _coefficient_names(self) -> list[str]:
        """Posterior variables besides the parameters that give rows their own parameters (covariate effects)."""
        return []

    def _param_arrays(self, post: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        """Draws of the likelihood's variables (of the posterior by default), e.g. ``(chain, draw, group)``."""
        post = self.posterior if post is None else post
        return {n: post[n].values for n in [*self.parameter_names, *self._coefficient_names()]}

    # ------------------------------------------------------------- model
    def _quantity(self, name: str):
        """The sampled quantity ``name`` under the model's pooling (inside a PyMC model)."""
        return create_quantity(name, self.priors, self.pooling, self._centred.get(name))

    def _parameters(self) -> dict[str, Any]:
        """Create the model's random variables; return the named parameters of the likelihood.

        By default every parameter is a sampled quantity. Subclasses that sample
        a better-conditioned reparameterisation override this and register the
        named parameters as ``pm.Deterministic``.
        """
        return {name: self._quantity(name) for name in self.parameter_names}

    def _coords(self) -> dict[str, list]:
        """Named dims of the PyMC model."""
        return {"group": self.groups} if self.grouped else {}

    def _total_loglik(self, params: dict[str, Any], rows: pd.DataFrame, summed: bool) -> Any:
        """The data's log-likelihood as a PyTensor scalar: the weighted sum over distinct ``rows``.

        With ``summed`` the family's summed kernel (:mod:`bayesclv.formulas._summed`),
        unless covariates give every row its own parameters; else the per-row formula.
        """
        if summed and hasattr(self.formulas, "summed_loglik") and not self._coefficient_names():
            tables = summed_tables(self.formulas, rows, self.data_columns, self.grouped, self._formula_options)
            return self.formulas.summed_loglik(tables, *(params[n] for n in self.parameter_names))
        params = self._row_params(params, rows, PT)
        cols = {c: pm.Data(c, rows[c].to_numpy(dtype=float)) for c in self.data_columns}
        weight = pm.Data("weight", rows["weight"].to_numpy())
        return (weight * self._loglik(cols, params, PT)).sum()

    def _graph(self, df: pd.DataFrame, summed: bool) -> pm.Model:
        """Priors plus the weighted likelihood of the distinct rows of a prepared frame."""
        self._set_fit_state(df)
        unique = distinct_rows(self._design(df), df.get(self.weight_column) if self.weight_column else None)

        def build() -> pm.Model:
            with pm.Model(coords=self._coords()) as model:
                pm.Potential("loglik", self._total_loglik(self._parameters(), unique, summed))
            return model

        self._centred = {}
        model = build()
        if self.pooling == "partial":  # the non-centred graph gives the evidence; the fit samples the chosen one
            pooled = [n for n in self.default_priors if f"log_{n}_sd" in self.priors]  # a family may share some
            self._centred = centred_quantities(model, self.priors, pooled)
            model = build()
        return model

    def _set_fit_state(self, df: pd.DataFrame) -> None:
        """Record what the fit learns from the data besides the posterior (the group labels)."""
        self.groups = group_labels(df, self.group) if self.grouped else None

    def _restore_fit_state(self, posterior: xr.Dataset, state: dict[str, Any]) -> None:
        self.groups = posterior["group"].values.tolist() if self.grouped else None

    def _summary_names(self) -> list[str]:
        """The parameters, then the hyperparameters and the covariate effects."""
        names = list(self.parameter_names)
        if self.pooling == "partial":
            names += [f"log_{n}_{kind}" for n in self.default_priors for kind in ("mean", "sd")]
        return names + self._coefficient_names()

    # -------------------------------------------------------- simulation
    def _simulate(self, df: pd.DataFrame, params: dict[str, np.ndarray],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The data columns the family simulates, for each parameter draw (rows) and customer (columns)."""
        given = [df[c].to_numpy(dtype=float)[None, :] for c in self.given_columns]
        sim = self.formulas.simulate_population(*given, **params, rng=rng)
        return {c: sim[c] for c in self.data_columns if c not in self.given_columns}

    def simulate_population(self, sample: np.ndarray, data: Any | None = None,
                            random_seed: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Histories of customers like ``data``'s from the population of each posterior sample.

        Parameters
        ----------
        sample : array_like of int
            Posterior samples (indices into the draws flattened over chains).
        data : DataFrame, optional
            Customers whose ``given_columns`` (e.g. ``T``) and groups are kept;
            default: the fitted data.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        dict of numpy.ndarray
            Each simulated data column, shape ``(len(sample), customers)``.
        """
        df = self.prediction_data(data)
        post = self.posterior
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        draws = {k: v.reshape(n_samples, *v.shape[2:])[np.asarray(sample)] for k, v in self._param_arrays().items()}
        params = self._row_params(draws, self._design(df), NP)
        return self._simulate(df, params, np.random.default_rng(random_seed))

    def sample_prior_predictive(self, data: Any, draws: int = 500, random_seed: int | None = None,
                                time_unit: str | None = None) -> xr.Dataset:
        """Draw parameters from the priors and simulate data like ``data`` from each draw.

        The customers keep their observation lengths ``T`` (and, for spend
        models, their ``frequency``); the model's other data columns are
        simulated. Use it to check that the priors give plausible data, and
        for simulation-based calibration.

        Parameters
        ----------
        data : DataFrame
            RFM frame supplying the customers' ``T`` (or ``frequency``).
        draws : int, default 500
            Number of prior draws.
        random_seed : int, optional
            Seed for the parameters and the simulation.
        time_unit : str, optional
            Needed only if the frame does not record its unit.

        Returns
        -------
        xarray.Dataset
            Parameters with dim ``draw`` and simulated columns with dims
            ``(draw, customer_id)``.
        """
        df = self._prepare(data, time_unit=time_unit)
        with self._graph(df, summed=True), warnings.catch_warnings():
            # the only Potential is the likelihood, which prior sampling must ignore
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            prior = pm.sample_prior_predictive(draws=draws, var_names=self._summary_names(),
                                               random_seed=random_seed)
        ds = prior["prior"].to_dataset().isel(chain=0, drop=True)
        rng = np.random.default_rng(random_seed)
        params = self._row_params(self._param_arrays(ds), self._design(df), NP)
        for name, values in self._simulate(df, params, rng).items():
            ds[name] = (("draw", "customer_id"), np.asarray(values, dtype=float))
        return ds.assign_coords(customer_id=df["customer_id"].to_numpy())


class PooledTransactionModel(TransactionPredictions, PooledModel):
    """Base of the population models of purchase counts; a family sets ``formulas`` and its parameters."""

    given_columns = ("T",)  # a population simulation keeps each customer's observation length

    def _new_customer_draws(self, t: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], dict[str, Any]]:
        """Expected purchases of a new customer at horizons ``t`` per draw (and group), with dims and coords.

        With covariates: a customer with the fitted data's average covariates.
        """
        post = self.posterior[list(self.parameter_names)]
        params = {n: post[n].values[..., None] for n in self.parameter_names}
        values = self.formulas.expected_purchases_new_customer(t, **params, **self._formula_options)
        return values, post[self.parameter_names[0]].dims, {k: v.values for k, v in post.coords.items()}
