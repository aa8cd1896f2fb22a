"""Shared prediction interface of the purchase-count models (BG/NBD, Pareto/NBD).

Each method evaluates the model's closed-form (or quadrature) formula for every
posterior draw and customer: the result keeps ``chain, draw`` so that credible
intervals and paired CLV computations stay possible.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from bayesclv.models.base import GROUP_CODE, CLVModel, compress_rows

__all__ = ["TransactionModel"]

_ALIVE_COLUMNS = ("frequency", "T")  # what a customer's future given alive at T depends on


class TransactionModel(CLVModel):
    """Base of the models of purchase counts; subclasses set ``formulas`` and ``simulator``.

    All horizons ``t`` are in the model's ``time_unit`` (the unit of the data's
    ``recency`` and ``T``).
    """

    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    formulas: ClassVar[ModuleType]
    simulator: ClassVar[Any]  # posterior predictive: future purchases given a history
    population_simulator: ClassVar[Any]  # new customers' histories from population parameters

    def _loglik(self, data, params, xp):
        return self.formulas.loglik(data["frequency"], data["recency"], data["T"], **params, xp=xp)

    def _total_loglik(self, params, rows, summed):
        if not summed:
            return super()._total_loglik(params, rows, summed)
        tables = self.formulas.loglik_tables(
            rows["frequency"], rows["recency"], rows["T"], rows["weight"],
            group=rows[GROUP_CODE] if self.grouped else None)
        return self.formulas.summed_loglik(tables, *(params[n] for n in self.parameter_names))

    def _simulate_population(self, df, params, rng):
        sim = type(self).population_simulator(df["T"].to_numpy(dtype=float)[None, :], **params, rng=rng)
        return {"frequency": sim["frequency"], "recency": sim["recency"]}

    def _history_quantity(self, fn, data, name, *args) -> xr.DataArray:
        df = self._data_for_prediction(data)
        return self._over_customers(
            lambda c, p: fn(*args, c["frequency"], c["recency"], c["T"], **p), df, name)

    def _alive_weighted(self, fn, data, name, t, given_alive) -> xr.DataArray:
        """A quantity that is ``P(alive at T) x`` (its value given alive at ``T``), per draw and customer.

        Given alive at ``T`` the future is memoryless: ``fn(t, ..., given_alive=True)``
        depends on a history through ``(frequency, T)`` only, so it is evaluated once
        per distinct ``(frequency, T)`` (979 on CDNOW full, against 8,685 distinct
        histories and 23,570 customers) and P(alive) once per distinct history.
        """
        df = self._data_for_prediction(data)
        frame = self._design(df)
        histories, codes = compress_rows(frame, list(frame.columns))
        histories = histories.drop(columns="weight")
        # recency is not used given alive; T stands in for it (a valid history)
        def per_alive(c, p):
            return fn(t, c["frequency"], c["T"], c["T"], **p, given_alive=True)

        alive_rows, alive_codes = self._distinct_rows(histories, list(_ALIVE_COLUMNS))
        weight = None if given_alive else (
            lambda c, p: self.formulas.probability_alive(c["frequency"], c["recency"], c["T"], **p), histories, codes)
        return self._as_dataarray(self._expand_distinct(per_alive, alive_rows, alive_codes[codes], weight), df, name)

    def probability_alive(self, data: Any | None = None) -> xr.DataArray:
        """P(alive at the end of observation | history), dims ``(chain, draw, customer_id)``.

        Parameters
        ----------
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.
        """
        return self._history_quantity(self.formulas.probability_alive, data, "probability_alive")

    def probability_alive_at(self, t: float, data: Any | None = None, *,
                             given_alive: bool = False) -> xr.DataArray:
        """P(still alive ``t`` time units after the end of observation | history).

        With ``given_alive=True``, conditional on being alive at the end of
        observation (multiply by :meth:`probability_alive` for the unconditional value).
        """
        return self._alive_weighted(self.formulas.probability_alive_at, data, "probability_alive_at", t, given_alive)

    def expected_purchases(self, t: float, data: Any | None = None, *,
                           given_alive: bool = False) -> xr.DataArray:
        """Expected number of purchases in the next ``t`` time units, per draw and customer.

        This is the posterior of an *expectation* (its spread is parameter
        uncertainty); for the distribution of the count itself use
        :meth:`sample_purchases` or :meth:`probability_of_purchases`.

        Parameters
        ----------
        t : float
            Horizon in the model's time unit (``model.time_unit``).
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.
        given_alive : bool, default False
            Condition on being alive at the end of observation (the
            unconditional value is this times :meth:`probability_alive`).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        _check_horizon(t)
        return self._alive_weighted(self.formulas.expected_purchases, data, "expected_purchases", t, given_alive)

    def probability_of_purchases(self, n: int, t: float, data: Any | None = None) -> xr.DataArray:
        """P(exactly ``n`` purchases in the next ``t`` time units | history), per draw and customer."""
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        _check_horizon(t)
        return self._history_quantity(
            self.formulas.probability_of_purchases, data, "probability_of_purchases", n, t)

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> xr.DataArray:
        """Expected purchases in the first ``t`` time units of a newly acquired customer.

        Parameters
        ----------
        t : float or array_like
            Horizon(s) in the model's time unit.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)`` or ``(chain, draw, t)`` for an array of
            horizons; grouped models add ``group`` after ``draw`` (a new
            customer of each group).
        """
        self._check_fitted()
        t_arr = np.atleast_1d(np.asarray(t, dtype=float))
        for value in t_arr:
            _check_horizon(value)
        post = self.posterior[list(self.parameter_names)]
        params = {n: v[..., None] for n, v in self._param_arrays().items()}
        values = self.formulas.expected_purchases_new_customer(t_arr, **params)
        da = xr.DataArray(values, dims=(*post[self.parameter_names[0]].dims, "t"),
                          coords={**{k: v.values for k, v in post.coords.items()}, "t": t_arr},
                          name="expected_purchases_new_customer")
        return da.isel(t=0, drop=True) if np.ndim(t) == 0 else da

    def sample_purchases(self, t: float, data: Any | None = None, random_seed: int | None = None) -> xr.DataArray:
        """Simulate each customer's purchase count in the next ``t`` time units.

        One simulated count per posterior draw: the posterior *predictive*
        distribution of the outcome (parameter uncertainty plus the randomness
        of the customer's latent state and purchases). Use it for predictive
        intervals of holdout counts.

        Returns
        -------
        xarray.DataArray
            Integer counts, dims ``(chain, draw, customer_id)``.
        """
        _check_horizon(t)
        rng = np.random.default_rng(random_seed)
        df = self._data_for_prediction(data)
        return self._over_customers(
            lambda c, p: type(self).simulator(t, c["frequency"], c["recency"], c["T"], **p, rng=rng),
            df, "purchases", dtype=np.int64, quantity="outcome")


def _check_horizon(t: float) -> None:
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"horizon t must be finite and >= 0, got {t!r}")
