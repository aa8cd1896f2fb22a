"""The retention predictions of the contract (:class:`~bayesclv.models.contract.RetentionModel`).

:class:`RetentionPredictions` implements them for a contractual model whose
rows are ``(periods, churned)`` histories: a customer observed for ``periods``
periods who has not churned is still a customer, and given that, the
family's formulas condition on surviving ``periods`` periods; a customer who
churned has left for good (no survival, renewal or further lifetime).
Per-customer quantities keep ``(chain, draw, customer_id)``; curves over an
array of horizons add a trailing ``t`` dim; population curves (a new
customer from acquisition) have ``(chain, draw[, group], t)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["RetentionPredictions"]


def _still_there(value, churned):
    """``value`` for customers still there at the end of observation, 0 for those who left."""
    return np.where(np.asarray(churned) > 0, 0.0, value)


def _horizons(t) -> tuple[np.ndarray, bool]:
    """Horizons as a float array and whether a scalar was given."""
    return np.atleast_1d(np.asarray(t, dtype=float)), np.ndim(t) == 0


class RetentionPredictions:
    """Survival, renewal and residual lifetime from a contractual family's formula module.

    The formula module provides ``survival(t, alpha, beta, periods)``,
    ``retention_rate(t, alpha, beta)``, ``expected_residual_lifetime``,
    ``discounted_expected_residual_lifetime``, ``discounted_expected_lifetime``
    and ``simulate_residual_lifetime`` (see :mod:`bayesclv.formulas.shifted_bg`).
    Horizons count whole periods after the end of each customer's observation.
    """

    def _per_customer(self, quantity, t, data: Any | None, name: str) -> xr.DataArray:
        """``quantity(t, periods, churned, params)`` per draw and customer, for each horizon of ``t``."""
        df = self.prediction_data(data)
        horizons, scalar = _horizons(t)
        curves = [self._over_customers(lambda c, p, h=h: quantity(h, c["periods"], c["churned"], p), df, name)
                  for h in horizons]
        if scalar:
            return curves[0]
        return xr.concat(curves, dim=pd.Index(horizons, name="t"), combine_attrs="override").transpose(
            "chain", "draw", "customer_id", "t")

    def survival(self, t: float | np.ndarray, data: Any | None = None) -> xr.DataArray:
        """P(still a customer ``t`` periods after the end of observation | history).

        Parameters
        ----------
        t : int or array_like of int
            Whole periods after the end of each customer's observation (0 gives
            1 for customers still there, 0 for those who churned).
        data : DataFrame, optional
            Retention table (``customer_id``, ``periods``, ``churned``); default: the fitted data.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``, plus ``t`` for an array of horizons.
        """
        survival = self.formulas.survival
        return self._per_customer(lambda h, n, c, p: _still_there(survival(h, **p, periods=n), c),
                                  t, data, "survival")

    def retention_rate(self, t: float | np.ndarray, data: Any | None = None) -> xr.DataArray:
        """P(renewing at the end of the ``t``-th period after observation | a customer until then), ``t >= 1``.

        For a customer still there after ``n`` periods it is the retention
        rate of period ``n + t``; a customer who churned renews with
        probability 0. Dims as :meth:`survival`.
        """
        rate = self.formulas.retention_rate
        return self._per_customer(lambda h, n, c, p: _still_there(rate(n + h, **p), c), t, data, "retention_rate")

    def expected_residual_lifetime(self, data: Any | None = None) -> xr.DataArray:
        """Expected further periods as a customer (the period of leaving counted; infinite where ``alpha <= 1``).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``; 0 for customers who churned.
        """
        lifetime = self.formulas.expected_residual_lifetime
        return self._per_customer(lambda _, n, c, p: _still_there(lifetime(n, **p), c), 0, data,
                                  "expected_residual_lifetime")

    def discounted_expected_residual_lifetime(self, discount_rate: float, data: Any | None = None) -> xr.DataArray:
        """DERL: expected discounted number of future renewals (payments), the next one undiscounted.

        Fader & Hardie (2010): a customer's value is DERL times the payment per
        period. Finite for every ``discount_rate > 0`` (per period), also where
        the undiscounted lifetime is infinite.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``; 0 for customers who churned.
        """
        derl = self.formulas.discounted_expected_residual_lifetime
        return self._per_customer(lambda _, n, c, p: _still_there(derl(discount_rate, n, **p), c), 0, data,
                                  "discounted_expected_residual_lifetime")

    def sample_residual_lifetime(self, data: Any | None = None, random_seed: int | None = None) -> xr.DataArray:
        """One simulated number of further periods as a customer per draw and customer (an outcome).

        A customer still there after ``n`` periods leaves in period ``n + L``
        with ``L >= 1`` drawn from the posterior given the history; ``L > k``
        means still a customer ``k`` periods ahead, so summing ``L > k`` over
        customers gives a predictive draw of the survivors. 0 for customers
        who churned.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``, float (``inf`` where a drawn
            churn probability is exactly 0).
        """
        rng = np.random.default_rng(random_seed)
        df = self.prediction_data(data)
        simulate = self.formulas.simulate_residual_lifetime
        return self._over_customers(
            lambda c, p: _still_there(simulate(c["periods"], **p, rng=rng), c["churned"]),
            df, "residual_lifetime", quantity="outcome")

    # ------------------------------------------------------------ population
    def _population(self, values_of, name: str, t=None) -> xr.DataArray:
        """``values_of(params)`` from each draw's population parameters, dims ``(chain, draw[, group][, t])``."""
        self.check_fitted()
        post = self.posterior[list(self.parameter_names)]
        dims, coords = post[self.parameter_names[0]].dims, {k: v.values for k, v in post.coords.items()}
        attrs = {"quantity": "expectation", "time_unit": self.time_unit}
        if t is None:
            return xr.DataArray(values_of(self._param_arrays()), dims=dims, coords=coords, name=name, attrs=attrs)
        horizons, scalar = _horizons(t)
        params = {k: v[..., None] for k, v in self._param_arrays().items()}
        da = xr.DataArray(values_of(params, horizons), dims=(*dims, "t"), coords={**coords, "t": horizons},
                          name=name, attrs=attrs)
        return da.isel(t=0, drop=True) if scalar else da

    def population_survival(self, t: float | np.ndarray) -> xr.DataArray:
        """S(t): share of a new cohort still customers after ``t`` periods, per draw (and group).

        Parameters
        ----------
        t : int or array_like of int
            Periods since acquisition (``S(0) = 1``).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw[, group], t)`` (no ``t`` for a scalar).
        """
        survival = self.formulas.survival
        return self._population(lambda p, h: survival(h, **p), "population_survival", t)

    def population_retention_rate(self, t: float | np.ndarray) -> xr.DataArray:
        """r(t) = S(t) / S(t - 1): share of the cohort's customers of period ``t - 1`` who renew, ``t >= 1``.

        It rises with ``t`` although no customer's churn probability changes:
        the customers most likely to leave leave first. Dims as :meth:`population_survival`.
        """
        rate = self.formulas.retention_rate
        return self._population(lambda p, h: rate(h, **p), "population_retention_rate", t)

    def discounted_expected_lifetime(self, discount_rate: float) -> xr.DataArray:
        """DEL: expected discounted payments of a new customer (one at acquisition, one per renewal).

        Dims ``(chain, draw[, group])``; ``discount_rate > 0`` per period.
        """
        value = self.formulas.discounted_expected_lifetime
        return self._population(lambda p: value(discount_rate, **p), "discounted_expected_lifetime")
