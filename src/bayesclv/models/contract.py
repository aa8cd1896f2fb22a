"""The contract between fitted models and the code that uses them (CLV, scale, evaluation, checks, plots, report).

Downstream code calls only what is declared here, never a model's private
methods, so any model that implements a protocol (pooled, grouped,
hierarchical, a family still to come) works with all of it. The protocols are
``runtime_checkable``: ``isinstance(model, TransactionModel)`` is how the
evaluation functions tell a purchase-count model from a spend model.

Shared conventions:

- ``data`` is a frame of customers (pandas or polars) in the model's time
  unit; ``None`` means the fitted data. :meth:`FittedModel.prediction_data`
  validates it with the model's own validator (its ``data_columns``).
- Every prediction is an :class:`xarray.DataArray` with dims ``(chain, draw,
  customer_id)`` and ``attrs`` ``quantity`` (``"expectation"``: a credible
  interval summarises it; ``"outcome"``: a predictive one), ``time_unit`` and
  ``point_estimate`` (1 for a MAP fit's: no posterior uncertainty, never a
  credible interval).
- Horizons ``t`` are in the model's ``time_unit``, counted from the end of
  each customer's observation.
- ``given_alive=True`` conditions on being alive at the end of observation;
  the unconditional value is that times :meth:`TransactionModel.probability_alive`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["FittedModel", "ResidualModel", "RetentionModel", "SpendModel", "TransactionModel"]


@runtime_checkable
class FittedModel(Protocol):
    """What every fitted model offers: its fit, its data and the histories its predictions depend on.

    Attributes
    ----------
    idata : xarray.DataTree or None
        The fit (``posterior``, whose ``attrs["point_estimate"]`` is 1 for a MAP
        fit; ``sample_stats`` for NUTS); None before ``fit``.
    data : pandas.DataFrame or None
        The validated frame the model was fitted to.
    data_columns : tuple of str
        Columns its likelihood reads, in the order its formulas take them.
    time_unit : str or None
        Unit of the data's times; every horizon is in this unit.
    fit_method : str or None
        ``"nuts"``, ``"map"`` or ``"advi"``.
    diagnostics : dict or None
        Convergence numbers of the fit (``ok`` says whether it converged) and
        what it cost: ``fit_seconds`` (wall) and ``fit_cpu_seconds``.
    display_name : str
        Name for tables and reports, e.g. ``"BG/NBD"``.
    """

    idata: xr.DataTree | None
    data: pd.DataFrame | None
    data_columns: tuple[str, ...]
    time_unit: str | None
    fit_method: str | None
    diagnostics: dict | None
    display_name: str

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws, dims ``(chain, draw, ...)``; raises NotFittedError before ``fit``."""

    @property
    def history_columns(self) -> tuple[str, ...]:
        """Columns of a prediction frame that determine a customer's predictions."""

    def fit(self, data: Any, **kwargs: Any) -> FittedModel:
        """Fit to ``data``; returns the model."""

    def check_fitted(self) -> None:
        """Raise :class:`~bayesclv.errors.NotFittedError` unless the model is fitted."""

    def prediction_data(self, data: Any | None = None) -> pd.DataFrame:
        """``data`` validated for prediction (the fitted data for None)."""

    def distinct_histories(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The distinct histories of a prediction frame (a prediction frame itself) and each row's index into them."""

    def log_likelihood(self, data: Any | None = None) -> xr.DataArray:
        """Pointwise log-likelihood, dims ``(chain, draw, customer_id)``."""

    def summary(self, prob: float | None = None, method: str | None = None) -> pd.DataFrame:
        """Parameter table with intervals (ArviZ's ``stats.ci_kind``/``stats.ci_prob`` unless given) and
        convergence numbers."""

    def to_datatree(self, *, log_likelihood: bool = True, posterior_predictive: bool = False,
                    random_seed: int | None = None) -> xr.DataTree:
        """The fit with ``observed_data``, ``constant_data``, ``log_likelihood`` (and ``posterior_predictive``)
        for ``arviz_stats``/``arviz_plots``."""

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the fitted model to one file that :func:`bayesclv.load` reads back exactly (atomically;
        an existing file only with ``overwrite=True``)."""


@runtime_checkable
class TransactionModel(FittedModel, Protocol):
    """A fitted model of purchase counts (BG/NBD, Pareto/NBD, their grouped and hierarchical variants).

    The CLV needs no family formula: it asks for
    :meth:`discounted_expected_purchases` and :meth:`discounted_probability_alive`
    on the distinct histories.
    """

    def probability_alive(self, data: Any | None = None) -> xr.DataArray:
        """P(alive at the end of observation | history)."""

    def probability_alive_at(self, t: float, data: Any | None = None, *, given_alive: bool = False) -> xr.DataArray:
        """P(alive ``t`` time units after the end of observation | history)."""

    def expected_purchases(self, t: float, data: Any | None = None, *, given_alive: bool = False) -> xr.DataArray:
        """Expected purchases in the next ``t`` time units (an expectation)."""

    def customer_predictions(self, t: float, data: Any | None = None) -> xr.Dataset:
        """``probability_alive`` and ``expected_purchases`` (over ``t``) together, one pass where the model can."""

    def discounted_expected_purchases(self, ends: np.ndarray, factors: np.ndarray, data: Any | None = None, *,
                                      given_alive: bool = False) -> xr.DataArray:
        """``sum_k factors[k] (E[X(ends[k])] - E[X(ends[k-1])])``: present value of the expected purchases."""

    def discounted_probability_alive(self, times: np.ndarray, factors: np.ndarray, data: Any | None = None, *,
                                     given_alive: bool = False) -> xr.DataArray:
        """``sum_k factors[k] P(alive at times[k])``: present value of the periods alive (a service cost's base)."""

    def probability_of_purchases(self, n: int, t: float, data: Any | None = None) -> xr.DataArray:
        """P(exactly ``n`` purchases in the next ``t`` time units | history)."""

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> xr.DataArray:
        """Expected purchases in the first ``t`` time units of a newly acquired customer, dims ``(chain, draw[, t])``."""

    def sample_purchases(self, t: float, data: Any | None = None, random_seed: int | None = None) -> xr.DataArray:
        """One simulated purchase count per draw and customer (an outcome)."""

    def simulate_population(self, sample: np.ndarray, data: Any | None = None,
                            random_seed: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """New histories like ``data``'s customers (same observation lengths) for each posterior sample.

        ``sample`` indexes the posterior's draws flattened over chains; the
        result maps each simulated data column to an array ``(len(sample), customers)``.
        """


@runtime_checkable
class ResidualModel(TransactionModel, Protocol):
    """A purchase model with infinite-horizon quantities (Pareto/NBD, BG/NBD, GGom/NBD, MBG/NBD, (M)BG/CNBD-k)."""

    def discounted_expected_residual_transactions(self, delta: float, data: Any | None = None, *,
                                                  given_alive: bool = False) -> xr.DataArray:
        """DERT: all future purchases discounted continuously at rate ``delta`` per time unit (an expectation)."""

    def expected_residual_lifetime(self, data: Any | None = None, *, given_alive: bool = False) -> xr.DataArray:
        """Expected remaining lifetime after the end of observation, in the model's time unit."""


@runtime_checkable
class SpendModel(FittedModel, Protocol):
    """A fitted model of the value of a customer's transactions (Gamma-Gamma)."""

    def expected_spend(self, data: Any | None = None) -> xr.DataArray:
        """Expected mean transaction value of each customer (an expectation)."""

    def population_mean_spend(self) -> xr.DataArray:
        """Mean transaction value of a randomly chosen customer, dims ``(chain, draw[, group])``."""


@runtime_checkable
class RetentionModel(FittedModel, Protocol):
    """A fitted contractual model of retention (e.g. the shifted-BG): survival curves, not purchase counts.

    Per-customer quantities condition on the history (a customer who churned
    stays gone); an array of horizons adds a trailing ``t`` dim.
    """

    def survival(self, t: float | np.ndarray, data: Any | None = None) -> xr.DataArray:
        """P(still a customer ``t`` periods after the end of observation | history)."""

    def retention_rate(self, t: float | np.ndarray, data: Any | None = None) -> xr.DataArray:
        """P(renewing at period ``t`` | a customer at period ``t - 1``)."""

    def sample_residual_lifetime(self, data: Any | None = None, random_seed: int | None = None) -> xr.DataArray:
        """One simulated number of further periods as a customer per draw and customer (an outcome)."""

    def population_survival(self, t: float | np.ndarray) -> xr.DataArray:
        """Share of a new cohort still customers after ``t`` periods, dims ``(chain, draw[, group][, t])``."""
