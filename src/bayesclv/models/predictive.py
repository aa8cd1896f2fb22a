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

from bayesclv.formulas import NP
from bayesclv.models.engine import Predictor, as_dataarray

__all__ = ["Predictive"]


class Predictive:
    """Shared prediction machinery: distinct histories, formula evaluation per draw, pointwise log-likelihood."""

    formulas: ClassVar[ModuleType]  # the family's formula module (likelihood, predictions, simulators)
    data_columns: ClassVar[tuple[str, ...]] = ()
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
