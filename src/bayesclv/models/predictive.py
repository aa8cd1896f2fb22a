"""Predictions on the distinct rows of a design frame: the part of the contract every fitted model shares.

A model that mixes this in declares ``formulas`` (its family's formula
module), ``data_columns`` and three hooks: ``_design(df)`` (the design frame of
a prediction frame), ``_param_arrays()`` (the draws of its likelihood
variables) and ``_row_params(params, rows, xp)`` (each row's parameters). The
chunked evaluation itself is :class:`bayesclv.models.engine.Predictor`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.errors import DataValidationError
from bayesclv.formulas import NP
from bayesclv.models.datatree import fit_datatree
from bayesclv.models.engine import Predictor, as_dataarray

__all__ = ["POSITION", "CustomerLatents", "Predictive"]

POSITION = "position"  # design column of CustomerLatents: a customer's row among the fitted latents


class Predictive:
    """Shared prediction machinery: distinct histories, formula evaluation per draw, pointwise log-likelihood."""

    formulas: ClassVar[ModuleType]  # the family's formula module (likelihood, predictions, simulators)
    data_columns: ClassVar[tuple[str, ...]] = ()
    #: data columns a simulated history keeps (e.g. each customer's ``T``): the likelihood is conditional on them
    given_columns: ClassVar[tuple[str, ...]] = ()
    #: data columns only the likelihood reads (CNBD-k's ``litt``): the predictive formulas neither take nor
    #: depend on them, so predictions are evaluated once per distinct value of the other columns
    likelihood_only_columns: ClassVar[tuple[str, ...]] = ()

    @property
    def prediction_columns(self) -> tuple[str, ...]:
        """Data columns the predictive formulas take, in their order."""
        return tuple(c for c in self.data_columns if c not in self.likelihood_only_columns)

    @property
    def history_columns(self) -> tuple[str, ...]:
        """Columns of a prediction frame that determine a customer's predictions."""
        return self.prediction_columns

    @property
    def observed_columns(self) -> tuple[str, ...]:
        """The data columns the likelihood explains (``data_columns`` less ``given_columns``): ArviZ's observed data."""
        return tuple(c for c in self.data_columns if c not in self.given_columns)

    @property
    def constant_columns(self) -> tuple[str, ...]:
        """Columns the likelihood is conditional on (``T``, group, covariates): ArviZ's constant data."""
        group = getattr(self, "group", None)
        columns = [*self.given_columns, *self.history_columns, *getattr(self, "covariates", ()),
                   *([group] if group else [])]
        return tuple(dict.fromkeys(c for c in columns if c not in self.observed_columns and c != "customer_id"))

    def distinct_histories(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The distinct histories of a prediction frame and each customer's index into them.

        Customers with the same :attr:`history_columns` have the same
        predictions, so callers such as the CLV evaluate each history once.

        Parameters
        ----------
        data : pandas.DataFrame
            A prediction frame (see :meth:`prediction_data`).

        Returns
        -------
        tuple
            ``(histories, codes)``: one customer of each history (a prediction
            frame, sorted by history, with stand-in ``customer_id`` 0..n-1 unless
            ``customer_id`` is a history column) and, for each row of ``data``,
            its history's row.
        """
        columns = list(self.history_columns)
        codes = data.groupby(columns, sort=True).ngroup().to_numpy()
        first = np.unique(codes, return_index=True)[1]
        histories = data.iloc[first].reset_index(drop=True)
        if "customer_id" not in columns:
            histories["customer_id"] = np.arange(len(histories))
        histories.attrs = dict(data.attrs)
        return histories, codes

    def to_datatree(self, *, log_likelihood: bool = True, posterior_predictive: bool = False,
                    random_seed: int | None = None) -> xr.DataTree:
        """The fit as an ArviZ DataTree that ``arviz_stats`` and ``arviz_plots`` take directly.

        ``idata`` holds the fit itself (``posterior``, ``sample_stats``); this
        adds the groups that describe the fitted data and, on demand, the heavy
        ones (:mod:`bayesclv.models.datatree`): ``az.loo(model.to_datatree())``,
        ``az.compare({"bg": bg.to_datatree(), "pnbd": pnbd.to_datatree()})``,
        ``az.plot_ppc_dist`` and ``az.plot_loo_pit`` (with ``posterior_predictive=True``).

        Parameters
        ----------
        log_likelihood : bool, default True
            Add ``log_likelihood``: each fitted customer's pointwise
            log-likelihood per draw (draws x customers x 8 bytes).
        posterior_predictive : bool, default False
            Add ``posterior_predictive``: for every draw, a new history of each
            fitted customer from the population of that draw, keeping the
            customer's ``T`` (and group and covariates): what a posterior
            predictive check compares the data with (draws x customers x 8 bytes).
        random_seed : int, optional
            Seed of the posterior predictive simulation.

        Returns
        -------
        xarray.DataTree
            ``posterior``, ``sample_stats`` (NUTS), ``observed_data`` (the
            model's first observed column: ``frequency``, or ``monetary_value``
            for a spend model), ``log_likelihood`` (each customer's whole
            history) and ``posterior_predictive`` under that name, so that
            ArviZ pairs them, and ``constant_data`` (the rest of each
            customer's data: ``recency``, ``T``, group, covariates).
        """
        return fit_datatree(self, log_likelihood=log_likelihood, posterior_predictive=posterior_predictive,
                            random_seed=random_seed)

    def log_likelihood(self, data: Any | None = None) -> xr.DataArray:
        """Pointwise log-likelihood per customer and draw (for LOO and model comparison).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        df = self.prediction_data(data)
        return self._over_customers(lambda cols, prm: self._loglik(cols, prm, NP), df, "log_likelihood",
                                    columns=self.data_columns)

    def _loglik(self, data: dict[str, Any], params: dict[str, Any], xp) -> Any:
        """Per-row log-likelihood of the family (PyTensor with ``xp=PT``, NumPy with ``xp=NP``)."""
        return self.formulas.loglik(*(data[c] for c in self.data_columns), **params, xp=xp)

    def _history_quantity(self, fn, data: Any | None, name: str, *args: Any) -> xr.DataArray:
        """``fn(*args, *data columns, **params)`` per draw and customer, once per distinct history."""
        df = self.prediction_data(data)
        return self._over_customers(lambda c, p: fn(*args, *(c[col] for col in self.prediction_columns), **p),
                                    df, name)

    def _over_customers(self, func, df: pd.DataFrame, name: str, dtype=float,
                        quantity: str = "expectation", columns: tuple[str, ...] | None = None) -> xr.DataArray:
        """Evaluate ``func(columns, params)`` for every draw and customer -> DataArray(chain, draw, customer_id).

        Expectations are evaluated once per distinct row of the design frame's
        ``columns`` (default :attr:`prediction_columns`) and its other key
        columns (identical histories have identical expectations); outcomes
        (random draws) are simulated for every customer on their own.
        """
        frame = self._design(df)
        predictor = self._predictor()
        if quantity == "outcome":
            values = predictor.evaluate(func, frame, dtype=dtype, parallel=False)
        else:
            values = predictor.on_distinct(func, frame, self.prediction_columns if columns is None else columns)
        return self._as_dataarray(values, df, name, quantity)

    def _predictor(self) -> Predictor:
        """The engine over this model's posterior draws."""
        return Predictor(self._param_arrays(), lambda params, rows: self._row_params(params, rows, NP),
                         self.data_columns)

    def _as_dataarray(self, values: np.ndarray, df: pd.DataFrame, name: str,
                      quantity: str = "expectation") -> xr.DataArray:
        return as_dataarray(values, self.posterior, df["customer_id"].to_numpy(), name, quantity, self.time_unit)


class CustomerLatents(Predictive):
    """The design of a model whose predictions use each fitted customer's own posterior latents.

    The individual-level hierarchical models and the Pareto/GGG share it: a
    prediction frame's rows are the fitted customers, found by ``customer_id``,
    whose histories (and :meth:`_conditioning_columns`) must equal the fitted
    ones, since the latents' posterior conditions on them. ``_row_params`` takes
    each row's latents at its :data:`POSITION`.
    """

    @property
    def history_columns(self) -> tuple[str, ...]:
        return ("customer_id", *self.data_columns)  # each customer has their own latents

    def _conditioning_columns(self) -> list[tuple[str, bool]]:
        """Further columns the latents were fitted given, each with whether it is numeric (default none)."""
        return []

    def _customer_positions(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of the fitted data for the customers of ``df``; their histories must match."""
        if df is self.data:
            return np.arange(len(df))
        positions = pd.Index(self.data["customer_id"]).get_indexer(df["customer_id"])
        unknown = positions < 0
        if unknown.any():
            raise DataValidationError(
                f"customers not in the fitted data: {self.display_name} predictions use each customer's posterior "
                "latents; refit with these customers included", column="customer_id",
                rows=df.loc[unknown, "customer_id"].tolist())
        for col, numeric in [*((c, True) for c in self.data_columns), *self._conditioning_columns()]:
            if col not in df.columns:
                raise DataValidationError("column missing: the posterior latents condition on each customer's "
                                          "fitted value of it", column=col)
            fitted, given = self.data[col].to_numpy()[positions], df[col].to_numpy()
            differ = (~np.isclose(given.astype(float), fitted.astype(float), rtol=1e-9, atol=1e-12)
                      if numeric else given != fitted)
            if differ.any():
                raise DataValidationError(
                    "differs from the fitted data: the posterior latents condition on each customer's fitted "
                    "value; refit on the new data", column=col, rows=df.loc[differ, "customer_id"].tolist())
        return positions

    def _design(self, df: pd.DataFrame) -> pd.DataFrame:
        """The fitted histories of ``df``'s customers and their positions among the fitted latents."""
        positions = self._customer_positions(df)
        frame = pd.DataFrame({c: self.data[c].to_numpy(dtype=float)[positions] for c in self.data_columns})
        frame[POSITION] = positions
        return frame

    def _per_customer(self, names: tuple[str, ...], data: Any | None) -> xr.Dataset:
        """Posterior of the per-customer quantities ``names`` (from :meth:`_row_params`), dims
        ``(chain, draw, customer_id)``, for the fitted customers of ``data`` (default all)."""
        df = self.prediction_data(data)
        return xr.Dataset({name: self._over_customers(lambda c, p, name=name: p[name], df, name) for name in names})
