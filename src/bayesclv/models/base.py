"""The base of every model: configuration (priors), fitting, state, summary and persistence.

A model class declares its parameter names, default priors, data columns (and
the validator that checks them) and builds its PyMC graph in ``_graph(df,
summed)``; fitting is :func:`bayesclv.models.inference.fit_posterior` (one dispatcher for
every method), diagnostics :mod:`~bayesclv.models.diagnostics`, files
:mod:`~bayesclv.models.persistence`. Predictions come from the mixins
(:mod:`~bayesclv.models.predictive`, :mod:`~bayesclv.models.transaction`).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pymc as pm
import xarray as xr

from bayesclv.data.validation import validate_rfm
from bayesclv.errors import NotFittedError, PointEstimateWarning, TimeUnitError
from bayesclv.models.diagnostics import FitDiagnostics, report_fit, summary_table
from bayesclv.models.inference import check_fit_arguments, fit_posterior
from bayesclv.models.persistence import register, save_model
from bayesclv.priors import Prior
from bayesclv.summaries import is_point_estimate

__all__ = ["CLVModel"]


class CLVModel:
    """Base class of every model: priors, fit, state, summary, save.

    Subclasses set ``parameter_names``, ``default_priors``, ``data_columns``
    (and ``validator``) and implement ``_graph(df, summed)``, the PyMC model of
    a prepared frame.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides of the default priors, by parameter name.

    Attributes
    ----------
    idata : xarray.DataTree
        The fit: ``posterior`` (dims ``chain, draw``, and ``group`` for grouped
        models; ``attrs`` ``fit_method`` and ``point_estimate``, 1 for a MAP
        fit), ``sample_stats`` for NUTS. ``to_datatree()`` (the prediction
        mixin's) adds the data, the log-likelihood and the posterior predictive for ArviZ.
    data : pandas.DataFrame
        The validated data the model was fitted to.
    time_unit : str
        Unit of ``recency``/``T`` in the data; all horizons are in this unit.
    diagnostics : FitDiagnostics
        Convergence numbers of the last fit, with its wall and CPU time (``fit_seconds``, ``fit_cpu_seconds``).
    """

    parameter_names: ClassVar[tuple[str, ...]] = ()
    default_priors: ClassVar[dict[str, Prior]] = {}  # keyed by the sampled quantities
    data_columns: ClassVar[tuple[str, ...]] = ()
    #: ``validator(data, *, time_unit=None) -> DataFrame``: the data check of this model's columns
    validator: ClassVar[Any] = staticmethod(validate_rfm)
    display_name: ClassVar[str] = "model"
    #: fit methods this model refuses, each with the reason
    unsupported_methods: ClassVar[dict[str, str]] = {}
    #: NUTS target acceptance rate unless ``fit`` is given one
    default_target_accept: float = 0.8
    # nutpie's mass-matrix adaptation: a low-rank correction of the diagonal takes up the posterior
    # correlations of a few population parameters (r-alpha, a-b) at little cost
    nutpie_adaptation: ClassVar[str] = "low_rank"
    # PyTensor linker of the log density nutpie samples: "cvm" compiles it with the C backend (cached on
    # disk) and nutpie calls it per gradient (models.sampling), for graphs that are a summed kernel plus a
    # few scalars; "numba" is PyMC's route (compiled on every fit), for per-customer graphs
    nutpie_linker: ClassVar[str] = "cvm"
    # nutpie in coordinates whitened by the Laplace approximation at the mode (models.sampling.laplace_whitening),
    # with the whitened fit's warm-up and target acceptance unless fit is given them
    nutpie_whiten: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        register(cls)

    def __init__(self, priors: dict[str, Prior] | None = None):
        defaults = self._all_default_priors()
        priors = dict(priors or {})
        unknown = set(priors) - set(defaults)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: no parameter(s) {sorted(unknown)} to put a prior on; "
                f"the priors are on {list(defaults)}"
            )
        for name, prior in priors.items():
            if not isinstance(prior, Prior):
                raise TypeError(f"prior for {name!r} must be a bayesclv.Prior, got {type(prior).__name__}")
        self.priors: dict[str, Prior] = {**defaults, **priors}
        self.idata: xr.DataTree | None = None
        self.data: pd.DataFrame | None = None
        self.time_unit: str | None = None
        self.fit_method: str | None = None
        self.diagnostics: FitDiagnostics | None = None

    def _all_default_priors(self) -> dict[str, Prior]:
        """Default priors of every prior-carrying quantity for this configuration."""
        return dict(self.default_priors)

    # ------------------------------------------------------------------ data
    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        """Validate data for fitting; the time unit comes from the frame or the argument."""
        df = self.validator(data, time_unit=time_unit)
        if df.attrs.get("time_unit") is None:
            raise TimeUnitError(
                "the data do not record their time unit: build them with bayesclv.rfm_summary "
                "or pass time_unit= (e.g. 'W')",
                column="T",
            )
        return df

    def prediction_data(self, data: Any | None = None) -> pd.DataFrame:
        """``data`` validated for prediction in the model's time unit; the fitted data for None.

        Raises
        ------
        bayesclv.errors.NotFittedError
            The model is not fitted.
        bayesclv.errors.DataValidationError, bayesclv.errors.TimeUnitError
            ``data`` fails the model's checks or records another time unit.
        """
        self.check_fitted()
        if data is None:
            return self.data
        df = self.validator(data, time_unit=self.time_unit)
        if df.attrs.get("time_unit") is None:
            df.attrs["time_unit"] = self.time_unit
        return df

    # ------------------------------------------------------------------- fit
    def build_model(self, data: Any, *, time_unit: str | None = None, summed: bool = True) -> pm.Model:
        """The PyMC model for ``data``: priors plus the weighted likelihood of distinct rows.

        Parameters
        ----------
        data : DataFrame
            An RFM frame (see :func:`bayesclv.rfm_summary`).
        time_unit : str, optional
            Needed only if the frame does not record its unit.
        summed : bool, default True
            Use the model's summed likelihood kernel where it has one (one
            compiled pass for the total and its gradient); False gives the
            per-row PyTensor formula, which every PyTensor backend (JAX
            included) can compile.

        Returns
        -------
        pymc.Model
        """
        return self._graph(self._prepare(data, time_unit=time_unit), summed)

    def fit(
        self,
        data: Any,
        *,
        method: str = "nuts",
        sampler: str = "nutpie",
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        time_unit: str | None = None,
        target_accept: float | None = None,
        thin: int = 1,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> CLVModel:
        """Fit the model.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            RFM frame from :func:`bayesclv.rfm_summary` (or one with the same columns).
        method : {"nuts", "map", "advi", "latent", "gibbs"}, default "nuts"
            Full posterior by NUTS; maximum a posteriori point estimate; or
            mean-field ADVI (``draws`` draws from the approximation). The
            individual-level hierarchical models refuse MAP: the joint mode of
            a hierarchical model puts every latent rate at the population mean
            and the population sds at zero. Their NUTS integrates each
            customer's latent rates out (:mod:`bayesclv.models.marginal`);
            ``"latent"`` is NUTS on every customer's latent rates. ``"gibbs"``
            is the Pareto/GGG's compiled data-augmentation MCMC (``draws`` and
            ``tune`` count its sweeps).
        sampler : {"nutpie", "pymc", "numpyro"}, default "nutpie"
            NUTS implementation: nutpie (compiled, with a low-rank-corrected
            mass matrix for the pooled models, a diagonal one for the
            individual-level models), PyMC's own, or numpyro (the optional
            ``jax`` extra).
        draws, tune, chains : int
            Posterior draws per chain, tuning steps, chains (NUTS). For ADVI,
            ``tune`` is the number of optimisation steps x 10. ``tune``
            defaults to 1000; to 300 where NUTS samples the population
            parameters alone with the latents integrated out (its chains run
            in coordinates whitened by the Laplace approximation).
        random_seed : int, optional
            Seed for reproducible fits.
        progressbar : bool, default True
            Show progress.
        time_unit : str, optional
            Unit of the data when the frame does not record it.
        target_accept : float, optional
            NUTS target acceptance rate; default 0.8, and 0.95 with partial
            pooling (smaller steps for the hierarchy's curvature); 0.65 where
            the individual-level models integrate their latents out of 10,000
            customers or more (NUTS on the whitened population parameters alone).
        thin : int, default 1
            Keep every ``thin``-th NUTS draw (after sampling ``draws`` per
            chain): long chains of the individual-level models without storing
            every draw of every customer's rates. Diagnostics are computed on
            the kept draws.
        batch_size : int, optional
            With ``method="advi"``, for the models with per-customer latent
            rates (the individual-level hierarchical models): minibatch ADVI
            on batches of this many customers (:mod:`bayesclv.models.variational`),
            whose cost per step does not grow with the number of customers.
            ``tune x 10`` steps, ``draws`` draws of the approximation (one
            chain); ``learning_rate`` and ``local_learning_rate`` may be passed.
        **kwargs
            Passed to ``pymc.sample`` / ``pymc.find_MAP`` / ``pymc.fit``. With
            the PyMC and nutpie samplers, ``cores`` (processes or threads)
            defaults to one per chain up to the number of CPUs available.

        Returns
        -------
        self

        Warns
        -----
        ConvergenceWarning
            When R-hat >= 1.01, bulk or tail ESS < 400, any divergence, a
            chain's E-BFMI below ArviZ's ``stats.bfmi_threshold`` (0.3) or over
            1% of draws at the maximum tree depth (NUTS); when the optimiser
            failed (MAP); when the ELBO still rises (minibatch ADVI).
        """
        check_fit_arguments(self, method=method, sampler=sampler, draws=draws, thin=thin,
                            batch_size=batch_size)
        df = self._prepare(data, time_unit=time_unit)
        wall, cpu = time.perf_counter(), time.process_time()
        idata, diagnostics = fit_posterior(
            self, df, method=method, sampler=sampler, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, progressbar=progressbar,
            target_accept=target_accept, thin=thin, batch_size=batch_size, **kwargs)
        # kept with the diagnostics (and saved with them) so a comparison can show what each fit cost;
        # CPU time counts every thread of this process, which a shared machine inflates less than wall time
        diagnostics["fit_seconds"] = time.perf_counter() - wall
        diagnostics["fit_cpu_seconds"] = time.process_time() - cpu
        self.idata, self.data, self.fit_method = idata, df, method
        self.time_unit = df.attrs["time_unit"]
        self.diagnostics = diagnostics
        report_fit(self.display_name, diagnostics, progressbar)
        return self

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        """Variables whose R-hat and ESS decide whether a fit converged: the free variables
        (e.g. hyperparameters and offsets), then the named parameters and other deterministics."""
        return [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]

    def _stored_variables(self, model: pm.Model) -> list[str]:
        """Variables kept in the posterior (by default the diagnosed ones)."""
        return self._diagnosed_variables(model)

    def _finish_posterior(self, model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
        """The posterior as the fitted model keeps it, from the stored (and thinned) draws.

        By default the stored draws themselves; models that store only their
        sampling coordinates compute their other quantities here.
        """
        return posterior

    # -------------------------------------------------------------- results
    def check_fitted(self) -> None:
        """Raise :class:`~bayesclv.errors.NotFittedError` unless the model is fitted."""
        if self.idata is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(data) first")

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the population parameters, dims ``(chain, draw)``."""
        self.check_fitted()
        return self.idata["posterior"].to_dataset()

    def summary(self, prob: float | None = None, method: str | None = None) -> pd.DataFrame:
        """Parameter table: ``mean, sd, lower, upper, r_hat, ess_bulk, ess_tail``.

        Parameters
        ----------
        prob : float, optional
            Probability inside the interval; default ArviZ's ``rcParams["stats.ci_prob"]``.
        method : {"eti", "hdi"}, optional
            Equal-tailed or highest-density interval (``arviz_stats.summary``);
            default ArviZ's ``rcParams["stats.ci_kind"]``, the convention of
            :func:`bayesclv.intervals` too.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter name; a grouped model has one row per group,
            ``"r[<label>]"``, and with partial pooling the hyperparameters
            ``log_<name>_mean`` and ``log_<name>_sd`` (log scale). ``attrs``
            hold ``prob``, ``method``, ``kind`` and ``interval``, the interval's
            label, e.g. ``"90% credible (eti)"``. For a MAP fit ``mean`` is the
            point estimate, ``lower = upper`` = the point estimate, ``sd``,
            R-hat and ESS are NaN and ``interval`` reads "point estimate (no
            posterior uncertainty)", with a :class:`~bayesclv.errors.PointEstimateWarning`.
        """
        self.check_fitted()
        return summary_table(self.idata, self._summary_names(), prob,
                             point_estimate=is_point_estimate(self.posterior), method=method)

    def _summary_names(self) -> list[str]:
        """Variables shown by :meth:`summary`."""
        return list(self.parameter_names)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the fitted model (posterior, data, priors, time unit) to one netCDF file.

        The file is written under a temporary name in the same folder and then
        renamed, so an interrupted save leaves no half-written file.

        Parameters
        ----------
        path : str or Path
            Destination file, conventionally ``*.nc``. :func:`bayesclv.load`
            reads it back exactly.
        overwrite : bool, default False
            Replace an existing file at ``path``; without it an existing file
            is an error.

        Raises
        ------
        bayesclv.errors.OverwriteError
            ``path`` exists and ``overwrite`` is False.
        FileNotFoundError
            The folder of ``path`` does not exist.
        """
        save_model(self, path, overwrite=overwrite)

    def _config(self) -> dict[str, Any]:
        """Constructor arguments besides the priors (saved with the model)."""
        return {}

    def _fit_state(self) -> dict[str, Any]:
        """JSON-serialisable state the fit learned besides the posterior (saved with the model)."""
        return {}

    def _restore_fit_state(self, posterior: xr.Dataset, state: dict[str, Any]) -> None:
        """Restore what :meth:`_fit_state` saved (and what the posterior's coordinates hold) in a loaded model."""

    # ----------------------------------------------------------------- views
    def _repr_html_(self) -> str:
        """Jupyter view: parameter table with intervals and diagnostics (see :mod:`bayesclv.display`)."""
        from bayesclv.display import model_html

        if self.idata is None:
            return model_html(type(self).__name__, priors={k: repr(v) for k, v in self.priors.items()})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PointEstimateWarning)  # the view labels a point estimate itself
            summary = self.summary()
        return model_html(type(self).__name__, summary=summary, diagnostics=self.diagnostics,
                          fit_method=self.fit_method, customers=len(self.data), time_unit=self.time_unit)

    def __repr__(self) -> str:
        state = f"fitted ({self.fit_method}, {len(self.data)} customers, unit {self.time_unit!r})" \
            if self.idata is not None else "not fitted"
        return f"{type(self).__name__}({state})"
