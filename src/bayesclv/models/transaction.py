"""The purchase-count predictions of the contract (:class:`~bayesclv.models.contract.TransactionModel`).

:class:`TransactionPredictions` implements them once, for the population and
the individual-level models alike, from the family's formula module: each
function takes the data columns and the parameters (population parameters, or
a customer's own rates) and broadcasts over posterior draws. Every result
keeps ``chain, draw`` so that intervals and paired CLV computations stay
possible.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from bayesclv.arguments import check_horizon, check_real
from bayesclv.errors import ArgumentError
from bayesclv.models.engine import compress_rows, distinct_rows, prediction_attrs

__all__ = ["ResidualPredictions", "TransactionPredictions"]


class TransactionPredictions:
    """Predictions of purchase counts from a family's formula module; all horizons in the model's ``time_unit``.

    Given alive at the end of observation, a customer's future depends on the
    history only through some of its columns (for the BG/NBD and Pareto/NBD,
    ``(frequency, T)``: the remaining lifetime is memoryless and recency no
    longer matters). ``alive_stand_ins`` names each column that does not matter
    then and the column that stands in for it, so that quantities given alive
    are evaluated once per distinct remaining key and multiplied by P(alive)
    per distinct history. A family for which no column drops out leaves it empty.
    """

    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    alive_stand_ins: ClassVar[dict[str, str]] = {"recency": "T"}

    def _alive_weighted(self, fn, data: Any | None, name: str, *args: Any, given_alive: bool) -> xr.DataArray:
        """``fn(*args, *columns, **params, given_alive=True)`` per draw and customer, times P(alive) unless
        ``given_alive``: once per distinct key given alive, P(alive) once per distinct history."""
        df = self.prediction_data(data)
        frame = self._design(df)
        histories, codes = compress_rows(frame, [c for c in frame.columns if c not in self.likelihood_only_columns])
        histories = histories.drop(columns="weight")
        columns = [self.alive_stand_ins.get(c, c) for c in self.prediction_columns]

        def per_alive(c, p):
            return fn(*args, *(c[col] for col in columns), **p, given_alive=True)

        kept = [c for c in self.prediction_columns if c not in self.alive_stand_ins]
        alive_rows, alive_codes = distinct_rows(histories, kept, self.data_columns)
        weight = None if given_alive else (
            lambda c, p: self.formulas.probability_alive(*(c[col] for col in self.prediction_columns), **p),
            histories, codes)
        values = self._predictor().expand(per_alive, alive_rows, alive_codes[codes], weight)
        return self._as_dataarray(values, df, name)

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
        check_horizon(t)
        return self._alive_weighted(self.formulas.probability_alive_at, data, "probability_alive_at", t,
                                    given_alive=given_alive)

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
        check_horizon(t)
        return self._alive_weighted(self.formulas.expected_purchases, data, "expected_purchases", t,
                                    given_alive=given_alive)

    def customer_predictions(self, t: float, data: Any | None = None) -> xr.Dataset:
        """P(alive) and the expected purchases in the next ``t`` time units, together, per draw and customer.

        The two predictions a customer table reads side by side, each equal to its own method's
        (:meth:`probability_alive`, :meth:`expected_purchases`); a model whose customers' posteriors are
        integrated by nodes (the hierarchical models' default fit) weighs the nodes once for both, which
        is most of the work of each call.

        Parameters
        ----------
        t : float
            Horizon in the model's time unit (``model.time_unit``).
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.

        Returns
        -------
        xarray.Dataset
            ``probability_alive`` and ``expected_purchases``, each with dims ``(chain, draw, customer_id)``.
        """
        check_horizon(t)
        return xr.Dataset({"probability_alive": self.probability_alive(data),
                           "expected_purchases": self.expected_purchases(t, data)})

    def discounted_expected_purchases(self, ends: np.ndarray, factors: np.ndarray, data: Any | None = None, *,
                                      given_alive: bool = False) -> xr.DataArray:
        """Present value of the expected purchases: ``sum_k factors[k]`` times those in ``(ends[k-1], ends[k]]``.

        Parameters
        ----------
        ends : array_like
            Increasing ends of the periods, in the model's time unit after the
            end of observation (the first period starts at 0).
        factors : array_like
            Discount factor of each period's purchases.
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.
        given_alive : bool, default False
            Condition on being alive at the end of observation.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        ends, factors = _periods(ends, factors)
        return self._alive_weighted(self.formulas.discounted_expected_purchases, data,
                                    "discounted_expected_purchases", ends, factors, given_alive=given_alive)

    def discounted_probability_alive(self, times: np.ndarray, factors: np.ndarray, data: Any | None = None, *,
                                     given_alive: bool = False) -> xr.DataArray:
        """Present value of the periods alive: ``sum_k factors[k] P(alive times[k] after the end of observation)``.

        With ``times`` the starts of the periods this is the discounted number
        of periods in which a customer is still served (a service cost's base).
        """
        times, factors = _periods(times, factors)
        prob = self.formulas.probability_alive_at

        def discounted(times, factors, *columns, given_alive, **params):
            return sum(factor * prob(time, *columns, **params, given_alive=given_alive)
                       for time, factor in zip(times, factors, strict=True))

        if hasattr(self.formulas, "discounted_probability_alive"):  # the family sums all horizons in one pass
            discounted = self.formulas.discounted_probability_alive
        return self._alive_weighted(discounted, data, "discounted_probability_alive", times, factors,
                                    given_alive=given_alive)

    def probability_of_purchases(self, n: int, t: float, data: Any | None = None) -> xr.DataArray:
        """P(exactly ``n`` purchases in the next ``t`` time units | history), per draw and customer."""
        if not isinstance(n, (numbers.Integral, float, np.floating)) or isinstance(n, (bool, np.bool_)) \
                or not np.isfinite(n) or int(n) != n or n < 0:
            raise ArgumentError(f"must be a whole number >= 0 (a purchase count), got {n!r}", argument="n")
        check_horizon(t)
        return self._history_quantity(self.formulas.probability_of_purchases, data, "probability_of_purchases", n, t)

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> xr.DataArray:
        """Expected purchases in the first ``t`` time units of a newly acquired customer.

        For the population models, from each draw's population parameters (a
        new customer of each group for a grouped model); for the
        individual-level models, the expectation over the population
        distribution of the latent rates at the covariate means (without group
        offsets), by Gauss-Hermite quadrature.

        Parameters
        ----------
        t : float or array_like
            Horizon(s) in the model's time unit.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)`` or ``(chain, draw, t)`` for an array of
            horizons; grouped population models add ``group`` after ``draw``.
        """
        self.check_fitted()
        check_horizon(t)
        t_arr = np.atleast_1d(np.asarray(t, dtype=float))
        values, dims, coords = self._new_customer_draws(t_arr)
        da = xr.DataArray(values, dims=(*dims, "t"), coords={**coords, "t": t_arr},
                          name="expected_purchases_new_customer",
                          attrs=prediction_attrs(self.posterior, "expectation", self.time_unit))
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
        check_horizon(t)
        rng = np.random.default_rng(random_seed)
        df = self.prediction_data(data)
        simulate = self.formulas.simulate_future_purchases
        return self._over_customers(
            lambda c, p: simulate(t, *(c[col] for col in self.prediction_columns), **p, rng=rng),
            df, "purchases", dtype=np.int64, quantity="outcome")


class ResidualPredictions:
    """Infinite-horizon predictions (:class:`~bayesclv.models.contract.ResidualModel`) from a family's formula module.

    For the families whose formula module has ``discounted_expected_residual_transactions``
    and ``expected_residual_lifetime`` (closed forms or one-dimensional quadrature);
    combined with :class:`TransactionPredictions`, whose given-alive sharing it uses.
    """

    def discounted_expected_residual_transactions(self, delta: float, data: Any | None = None, *,
                                                  given_alive: bool = False) -> xr.DataArray:
        """DERT: present value of all future purchases, ``E[int_T^inf e^(-delta (t-T)) dX(t) | history]``.

        Fader, Hardie & Lee (2005, "RFM and CLV"): multiplied by the value of a
        purchase it is the residual CLV of a customer with no horizon.

        Parameters
        ----------
        delta : float
            Continuously compounded discount rate per time unit of the model
            (``model.time_unit``), > 0: an annual rate ``d`` on weekly data is
            ``log(1 + d) / 52``.
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.
        given_alive : bool, default False
            Condition on being alive at the end of observation (the
            unconditional value is this times :meth:`probability_alive`).

        Returns
        -------
        xarray.DataArray
            Expected discounted purchases, dims ``(chain, draw, customer_id)``.
        """
        delta = check_real("delta", delta, low=0.0, low_open=True,
                           hint="a continuously compounded rate per time unit of the model")
        return self._alive_weighted(self.formulas.discounted_expected_residual_transactions, data,
                                    "discounted_expected_residual_transactions", delta, given_alive=given_alive)

    def expected_residual_lifetime(self, data: Any | None = None, *, given_alive: bool = False) -> xr.DataArray:
        """Expected remaining lifetime after the end of observation, ``E[(omega - T)^+ | history]``.

        In the model's time unit. Infinite where the lifetime distribution has no finite mean given alive
        (Pareto/NBD with ``s <= 1``, BG/NBD with ``a <= 1`` or ``r + x <= 1``);
        the posterior then has draws at ``inf`` and medians or quantiles are the
        summaries to report.

        Parameters
        ----------
        data : DataFrame, optional
            RFM frame in the model's time unit; default: the fitted data.
        given_alive : bool, default False
            Condition on being alive at the end of observation.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        return self._alive_weighted(self.formulas.expected_residual_lifetime, data, "expected_residual_lifetime",
                                    given_alive=given_alive)


def _periods(ends: Any, factors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Horizons and their discount factors as float arrays of one length."""
    check_horizon(ends)
    ends, factors = np.asarray(ends, dtype=float), np.asarray(factors, dtype=float)
    if ends.ndim != 1 or ends.shape != factors.shape:
        raise ValueError(f"need one discount factor per horizon, got {ends.shape} horizons and {factors.shape} factors")
    check_horizon(ends)
    return ends, factors
