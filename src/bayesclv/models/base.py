"""Shared machinery of every model: priors, fitting, diagnostics, save/load.

A model class only declares its parameter names, default priors, the data
columns its likelihood needs and the formula module that holds the math; the
base classes wire these into a PyMC model, run inference, check convergence
and turn posterior draws into predictions with dims ``(chain, draw,
customer_id)``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import arviz_stats as azs
import numba
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesclv.data import validate_rfm
from bayesclv.errors import ConvergenceWarning, DataValidationError, NotFittedError, TimeUnitError
from bayesclv.formulas import NP, PT
from bayesclv.models.sampling import sample_nutpie
from bayesclv.priors import Prior, priors_from_json, priors_to_json

__all__ = ["POOLINGS", "CLVModel", "FitDiagnostics", "gather_rows", "load"]

logger = logging.getLogger("bayesclv")

FIT_METHODS = ("nuts", "map", "advi")
SAMPLERS = ("pymc", "nutpie", "numpyro")
RHAT_MAX = 1.01
ESS_MIN = 400.0
_CHUNK_ELEMENTS = 2_000_000  # draws x customers evaluated at once in predictions
POOLINGS = ("complete", "partial", "none")
GROUP_CODE = "group_code"  # column of a design frame: index of each row's group label
# hyperpriors of partial pooling, on the log scale of each sampled quantity
HYPER_MEAN_PRIOR = Prior("Normal", mu=0.0, sigma=3.0)
HYPER_SD_PRIOR = Prior("HalfNormal", sigma=1.0)

_REGISTRY: dict[str, type[CLVModel]] = {}


class FitDiagnostics(dict):
    """Convergence numbers of a fit: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
    ``divergences``, ``n_draws`` (sampled fits) and ``ok``."""

    def __str__(self) -> str:
        if "elbo_rise" in self:
            return (f"minibatch ADVI, {self['steps']} steps of {self['batch_size']} customers: over the last "
                    f"tenth ELBO rise {self['elbo_rise']:.4f} nats per customer -> "
                    f"{'OK' if self['ok'] else 'NOT CONVERGED'} (population parameters moved {self['drift']:.2f} sds)")
        if "max_r_hat" not in self:
            return f"{self.get('method', 'fit')}: no sampling diagnostics (point estimate or approximation)"
        return (
            f"max R-hat {self['max_r_hat']:.4f}, min bulk ESS {self['min_ess_bulk']:.0f}, "
            f"min tail ESS {self['min_ess_tail']:.0f}, divergences {self['divergences']} "
            f"of {self['n_draws']} draws -> {'OK' if self['ok'] else 'POOR'}"
        )


def compute_diagnostics(idata: xr.DataTree, var_names: list[str]) -> FitDiagnostics:
    """R-hat, bulk/tail ESS (ArviZ) and divergences of a sampled posterior."""
    rhat = azs.rhat(idata, var_names=var_names)
    ess_bulk = azs.ess(idata, var_names=var_names, method="bulk")
    ess_tail = azs.ess(idata, var_names=var_names, method="tail")

    def extreme(tree, fn):
        return float(fn([float(fn(tree[v].values)) for v in var_names]))

    post = idata["posterior"]
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        div = int(idata["sample_stats"]["diverging"].values.sum())
    diag = FitDiagnostics(
        method="nuts",
        max_r_hat=extreme(rhat, np.nanmax),
        min_ess_bulk=extreme(ess_bulk, np.nanmin),
        min_ess_tail=extreme(ess_tail, np.nanmin),
        divergences=div,
        n_draws=n_draws,
    )
    diag["ok"] = bool(
        diag["max_r_hat"] < RHAT_MAX
        and diag["min_ess_bulk"] >= ESS_MIN
        and diag["min_ess_tail"] >= ESS_MIN
        and div == 0
    )
    return diag


def warn_if_poor(diag: FitDiagnostics, model_name: str) -> None:
    """Issue a :class:`ConvergenceWarning` naming each bad number."""
    if "max_r_hat" not in diag or diag["ok"]:
        return
    problems = []
    if not diag["max_r_hat"] < RHAT_MAX:
        problems.append(f"max R-hat {diag['max_r_hat']:.3f} >= {RHAT_MAX}")
    if diag["min_ess_bulk"] < ESS_MIN:
        problems.append(f"min bulk ESS {diag['min_ess_bulk']:.0f} < {ESS_MIN:.0f}")
    if diag["min_ess_tail"] < ESS_MIN:
        problems.append(f"min tail ESS {diag['min_ess_tail']:.0f} < {ESS_MIN:.0f}")
    if diag["divergences"]:
        problems.append(f"{diag['divergences']} divergent transitions")
    warnings.warn(
        f"{model_name}: poor convergence: " + "; ".join(problems)
        + ". Run more tuning/draws or check the data and priors.",
        ConvergenceWarning,
        stacklevel=3,
    )


def compress_rows(df: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique rows of ``columns`` with their multiplicities, and each row's index into them.

    Identical customers contribute identical likelihood terms, so the model
    evaluates each distinct row once, weighted by its count.
    """
    grouped = df.groupby(columns, sort=True)  # sorted: neighbouring rows share x (and chunks their integrals)
    unique = grouped.size().reset_index(name="weight")
    unique["weight"] = unique["weight"].astype(float)
    return unique, grouped.ngroup().to_numpy()


class CLVModel:
    """Base class: configuration (priors), fitting, diagnostics, summaries, save/load.

    Subclasses set ``parameter_names``, ``default_priors``, ``data_columns``
    and implement :meth:`_loglik`.

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

    Attributes
    ----------
    idata : xarray.DataTree
        The fit: ``posterior`` (dims ``chain, draw`` and ``group`` for grouped
        models), ``sample_stats`` for NUTS.
    data : pandas.DataFrame
        The validated data the model was fitted to.
    time_unit : str
        Unit of ``recency``/``T`` in the data; all horizons are in this unit.
    diagnostics : FitDiagnostics
        Convergence numbers of the last fit.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ()
    default_priors: ClassVar[dict[str, Prior]] = {}  # keyed by the sampled quantities
    data_columns: ClassVar[tuple[str, ...]] = ()
    requires_monetary: ClassVar[bool] = False
    display_name: ClassVar[str] = "model"
    # nutpie mass-matrix adaptation. A low-rank correction of the diagonal takes up the posterior
    # correlations of a few population parameters (r-alpha, a-b): on CDNOW full BG/NBD 3 leapfrog
    # steps a draw instead of 8, and 7x the bulk ESS (benchmarks/results/peer_pymc_marketing_bgnbd.md)
    nutpie_adaptation: ClassVar[str] = "low_rank"
    # PyTensor linker of the log density nutpie samples: "cvm" compiles it with the C backend (cached
    # on disk) and nutpie calls it per gradient (models.sampling), for graphs that are a summed kernel
    # plus a few scalars; "numba" is PyMC's route (nutpie.compile_pymc_model, compiled on every fit)
    nutpie_linker: ClassVar[str] = "cvm"

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, priors: dict[str, Prior] | None = None, *, group: str | None = None,
                 pooling: str | None = None):
        if pooling is None:
            pooling = "complete" if group is None else "partial"
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if group is None and pooling != "complete":
            raise ValueError(f"pooling={pooling!r} needs a group column: pass group='<column>'")
        if group is not None and not isinstance(group, str):
            raise TypeError(f"group must be a column name (str), got {type(group).__name__}")
        self.group, self.pooling = group, pooling
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
        self.groups: list | None = None  # group labels of the fit, in the order of the ``group`` dim
        self.idata: xr.DataTree | None = None
        self.data: pd.DataFrame | None = None
        self.time_unit: str | None = None
        self.fit_method: str | None = None
        self.diagnostics: FitDiagnostics | None = None

    # ------------------------------------------------------------------ data
    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        """Validate data for this model; the time unit comes from the frame or the argument."""
        df = validate_rfm(data, require_monetary=self.requires_monetary, time_unit=time_unit)
        if df.attrs.get("time_unit") is None:
            raise TimeUnitError(
                "the data do not record their time unit: build them with bayesclv.rfm_summary "
                "or pass time_unit= (e.g. 'W')",
                column="T",
            )
        return self._select_rows(df)

    def _select_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows the likelihood applies to (all, except for spend models)."""
        return df

    # -------------------------------------------------------------- groups
    @property
    def grouped(self) -> bool:
        """True when each group has its own population parameters (``pooling`` partial or none)."""
        return self.pooling != "complete"

    def _all_default_priors(self) -> dict[str, Prior]:
        """Default priors of every prior-carrying quantity for this configuration."""
        out = dict(self.default_priors)
        if self.pooling == "partial":
            for name in self.default_priors:
                out[f"log_{name}_mean"] = HYPER_MEAN_PRIOR
                out[f"log_{name}_sd"] = HYPER_SD_PRIOR
        return out

    def _config(self) -> dict[str, Any]:
        """Constructor arguments besides the priors (saved with the model)."""
        return {"group": self.group, "pooling": self.pooling}

    def _group_labels(self, df: pd.DataFrame) -> list:
        """Sorted distinct labels of the group column; raises on a missing column or label."""
        col = self.group
        if col not in df.columns:
            raise DataValidationError(
                f"missing group column; the data have columns {list(df.columns)!r}", column=col)
        missing = df[col].isna().to_numpy()
        if missing.any():
            raise DataValidationError(f"{int(missing.sum())} customer(s) without a group label",
                                      column=col, rows=df.loc[missing, "customer_id"].tolist())
        return pd.Index(pd.unique(df[col])).sort_values().tolist()

    def _design(self, df: pd.DataFrame) -> pd.DataFrame:
        """The columns the likelihood and predictions read: data columns (+ ``group_code``).

        ``group_code`` indexes each row's label in :attr:`groups`; a label the
        model was not fitted on is a :class:`DataValidationError` naming the customers.
        """
        frame = df[list(self.data_columns)].astype(float)
        if self.grouped:
            self._group_labels(df)  # presence and missing-label checks
            codes = pd.Index(self.groups).get_indexer(df[self.group])
            unknown = codes < 0
            if unknown.any():
                labels = pd.unique(df.loc[unknown, self.group]).tolist()
                raise DataValidationError(
                    f"group label(s) {labels[:5]!r} not in the fitted groups {self.groups!r}; "
                    "a grouped model predicts only for the groups it was fitted on",
                    column=self.group, rows=df.loc[unknown, "customer_id"].tolist())
            frame[GROUP_CODE] = codes
        return frame

    def _row_params(self, params: dict[str, Any], rows: pd.DataFrame, xp) -> dict[str, Any]:
        """Each row's likelihood parameters.

        ``params`` are PyTensor variables (``xp=PT``: scalars, or vectors over
        groups) or NumPy draws (``xp=NP``: shape ``(..., [group])``); NumPy
        results get a trailing axis over the rows to broadcast against them.
        """
        if self.grouped:
            idx = rows[GROUP_CODE].to_numpy()
            return {k: v[..., idx] for k, v in params.items()}
        return params if xp is PT else {k: np.asarray(v)[..., None] for k, v in params.items()}

    def _coords(self) -> dict[str, list]:
        """Named dims of the PyMC model."""
        return {"group": self.groups} if self.grouped else {}

    def _quantity(self, name: str):
        """Create the sampled quantity ``name`` under the model's pooling (inside a PyMC model).

        Complete pooling: one variable with its prior. No pooling: one per
        group, each with that prior. Partial pooling: non-centred on the log
        scale, ``exp(log_<name>_mean + log_<name>_sd * log_<name>_offset)``.
        """
        if self.pooling == "complete":
            return self.priors[name].create(name)
        if self.pooling == "none":
            return self.priors[name].create(name, dims="group")
        mean = self.priors[f"log_{name}_mean"].create(f"log_{name}_mean")
        sd = self.priors[f"log_{name}_sd"].create(f"log_{name}_sd")
        offset = pm.Normal(f"log_{name}_offset", 0.0, 1.0, dims="group")
        return pm.Deterministic(name, pt.exp(mean + sd * offset), dims="group")

    @property
    def _param_dims(self) -> tuple[str, ...]:
        """Dims of a population parameter in the PyMC model."""
        return ("group",) if self.grouped else ()

    def _data_for_prediction(self, data: Any | None) -> pd.DataFrame:
        self._check_fitted()
        if data is None:
            return self.data
        df = validate_rfm(data, require_monetary=self.requires_monetary, time_unit=self.time_unit)
        if df.attrs.get("time_unit") is None:
            df.attrs["time_unit"] = self.time_unit
        return df

    # ----------------------------------------------------------------- model
    def _parameters(self) -> dict[str, Any]:
        """Create the model's random variables; return the named parameters of the likelihood.

        By default every parameter is a sampled quantity (see :meth:`_quantity`).
        Subclasses that sample a better-conditioned reparameterisation override
        this and register the named parameters as ``pm.Deterministic``.
        """
        return {name: self._quantity(name) for name in self.parameter_names}

    def _loglik(self, data: dict[str, Any], params: dict[str, Any], xp) -> Any:
        """Per-row log-likelihood (PyTensor with ``xp=PT``, NumPy with ``xp=NP``)."""
        raise NotImplementedError

    def _total_loglik(self, params: dict[str, Any], rows: pd.DataFrame, summed: bool) -> Any:
        """The data's log-likelihood as a PyTensor scalar: the weighted sum over distinct ``rows``.

        ``params`` are the model's parameters (scalars, or vectors over groups).
        This default sums the per-row formula; models with a summed kernel
        (see :mod:`bayesclv.formulas._summed`) use it when ``summed`` is True.
        """
        params = self._row_params(params, rows, PT)
        cols = {c: pm.Data(c, rows[c].to_numpy(dtype=float)) for c in self.data_columns}
        weight = pm.Data("weight", rows["weight"].to_numpy())
        return (weight * self._loglik(cols, params, PT)).sum()

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
        df = self._prepare(data, time_unit=time_unit)
        self._set_fit_state(df)
        frame = self._design(df)
        unique, _ = compress_rows(frame, list(frame.columns))  # identical rows of one group
        with pm.Model(coords=self._coords()) as model:
            pm.Potential("loglik", self._total_loglik(self._parameters(), unique, summed))
        return model

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

    def _set_fit_state(self, df: pd.DataFrame) -> None:
        """Record what the fit learns from the data besides the posterior (the group labels)."""
        self.groups = self._group_labels(df) if self.grouped else None

    def _fit_state(self) -> dict[str, Any]:
        """JSON-serialisable fit state saved with the model (group labels travel in the posterior)."""
        return {}

    def _restore_fit_state(self, posterior: xr.Dataset, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_set_fit_state` for a loaded model."""
        self.groups = posterior["group"].values.tolist() if self.grouped else None

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        data: Any,
        *,
        method: str = "nuts",
        sampler: str = "nutpie",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        time_unit: str | None = None,
        target_accept: float | None = None,
        thin: int = 1,
        **kwargs: Any,
    ) -> CLVModel:
        """Fit the model.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            RFM frame from :func:`bayesclv.rfm_summary` (or one with the same columns).
        method : {"nuts", "map", "advi"}, default "nuts"
            Full posterior by NUTS; maximum a posteriori point estimate; or
            mean-field ADVI (``draws`` draws from the approximation).
        sampler : {"nutpie", "pymc", "numpyro"}, default "nutpie"
            NUTS implementation: nutpie (compiled, with a low-rank-corrected
            mass matrix for the pooled models, a diagonal one for the
            individual-level models: the fastest on these models, see
            ``benchmarks/results/peer_pymc_marketing_bgnbd.md``), PyMC's own, or
            numpyro (the optional ``jax`` extra).
        draws, tune, chains : int
            Posterior draws per chain, tuning steps, chains (NUTS). For ADVI,
            ``tune`` is the number of optimisation steps x 10.
        random_seed : int, optional
            Seed for reproducible fits.
        progressbar : bool, default True
            Show progress.
        time_unit : str, optional
            Unit of the data when the frame does not record it.
        target_accept : float, optional
            NUTS target acceptance rate; default 0.8, and 0.95 with partial
            pooling (smaller steps for the hierarchy's curvature: on CDNOW with
            monthly cohorts, BG/NBD gave 41 divergences in 4,000 draws at 0.8
            and none at 0.95).
        thin : int, default 1
            Keep every ``thin``-th NUTS draw (after sampling ``draws`` per
            chain): long chains of the individual-level models without storing
            every draw of every customer's rates. Diagnostics are computed on
            the kept draws.
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
            When R-hat >= 1.01, bulk or tail ESS < 400, or any divergence.
        """
        if method not in FIT_METHODS:
            raise ValueError(f"method must be one of {FIT_METHODS}, got {method!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if not (isinstance(thin, int) and 1 <= thin <= draws):
            raise ValueError(f"thin must be an integer from 1 to draws ({draws}), got {thin!r}")
        if target_accept is None:
            target_accept = 0.95 if self.pooling == "partial" else 0.8
        df = self._prepare(data, time_unit=time_unit)
        model = self.build_model(df, summed=sampler != "numpyro")  # JAX cannot run the summed kernels
        keep = self._stored_variables(model)
        with model:
            if method == "nuts":
                if sampler != "pymc":
                    _require_sampler(sampler)
                # chains are independent: by default one per core available to this process (PyMC
                # assumes half the CPUs are hyper-threads and would give nutpie one thread on 2 cores)
                cores = kwargs.pop("cores", min(chains, _available_cpus()))
                common = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                              progressbar=progressbar, target_accept=target_accept)
                if sampler == "nutpie" and self.nutpie_linker == "cvm":
                    settings = dict(kwargs.pop("nuts", {}))
                    if kwargs:
                        raise TypeError(f"unexpected keyword arguments for sampler='nutpie': {sorted(kwargs)}; "
                                        "pass nutpie settings in nuts={...}")
                    idata = sample_nutpie(model, var_names=keep, cores=cores,
                                          adaptation=settings.pop("adaptation", self.nutpie_adaptation),
                                          **common, **settings)
                else:
                    # explicit: PyMC 6 would otherwise pick nutpie whenever it is installed
                    nuts_kwargs = {"nuts_sampler": sampler}
                    if sampler in ("pymc", "nutpie"):
                        nuts_kwargs["cores"] = cores
                    if sampler == "nutpie":
                        nuts_kwargs["nuts"] = {"adaptation": self.nutpie_adaptation, **kwargs.pop("nuts", {})}
                    idata = pm.sample(**common, compute_convergence_checks=False, var_names=keep,
                                      **nuts_kwargs, **kwargs)
                if thin > 1:
                    idata = idata.isel(draw=slice(None, None, thin), missing_dims="ignore")
            elif method == "map":
                result = pm.find_MAP(progressbar=progressbar, random_seed=random_seed, jitter=False,
                                     return_inferencedata=True, **kwargs)
                idata = xr.DataTree.from_dict({"posterior": result["posterior"].to_dataset()[keep]})
                optimizer = {g: result[g] for g in result.children if g != "posterior"}
            else:
                # Adam converges from the prior-scale initial point where PyMC's default
                # (adagrad_window, lr 1e-3) is still far off after 10k steps on CDNOW.
                kwargs.setdefault("obj_optimizer", pm.adam(learning_rate=0.01))
                approx = pm.fit(
                    n=max(tune, 1) * 10, method="advi", random_seed=random_seed,
                    progressbar=progressbar, **kwargs,
                )
                idata = approx.sample(draws, random_seed=random_seed)
                idata = xr.DataTree.from_dict({"posterior": idata["posterior"].to_dataset()[keep]})
        idata["posterior"] = xr.DataTree(self._finish_posterior(model, idata["posterior"].to_dataset()))
        self.idata, self.data, self.fit_method = idata, df, method
        self.time_unit = df.attrs["time_unit"]
        if method == "nuts":
            self.diagnostics = compute_diagnostics(idata, self._diagnosed_variables(model))
            logger.info("%s fit: %s", self.display_name, self.diagnostics)
            if progressbar:
                print(f"{self.display_name} convergence: {self.diagnostics}")
            warn_if_poor(self.diagnostics, self.display_name)
        elif method == "map":
            self.diagnostics = _optimizer_diagnostics(optimizer)
            if not self.diagnostics["ok"]:
                warnings.warn(f"{self.display_name}: MAP optimisation did not converge: "
                              f"{self.diagnostics.get('message')}", ConvergenceWarning, stacklevel=2)
        else:
            self.diagnostics = FitDiagnostics(method=method)
        return self

    # -------------------------------------------------------------- results
    def _check_fitted(self) -> None:
        if self.idata is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(data) first")

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the population parameters, dims ``(chain, draw)``."""
        self._check_fitted()
        return self.idata["posterior"].to_dataset()

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Parameter table: ``mean, sd, hdi_lower, hdi_upper, r_hat, ess_bulk, ess_tail``.

        Parameters
        ----------
        prob : float, default 0.9
            Probability mass of the highest-density interval.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter name; a grouped model has one row per group,
            ``"r[<label>]"``, and with partial pooling the hyperparameters
            ``log_<name>_mean`` and ``log_<name>_sd`` (log scale). For a MAP fit
            ``mean`` is the point estimate and the other columns are NaN.
            ``attrs["prob"]`` records the interval's probability.
        """
        self._check_fitted()
        names = self._summary_names()
        if self.fit_method == "map":
            post = self.posterior
            rows = {}
            for n in names:
                point = post[n].isel(chain=0, draw=0)
                if point.ndim == 0:
                    rows[n] = float(point)
                else:
                    dim = point.dims[0]
                    rows.update({f"{n}[{label}]": float(v)
                                 for label, v in zip(point[dim].values, point.values, strict=True)})
            table = pd.DataFrame({"mean": list(rows.values())}, index=list(rows))
            for col in ("sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"):
                table[col] = np.nan
        else:
            raw = azs.summary(self.idata, var_names=names, ci_prob=prob,
                              ci_kind="hdi", round_to="none")
            lo, hi = (c for c in raw.columns if c.startswith("hdi"))
            table = raw.rename(columns={lo: "hdi_lower", hi: "hdi_upper"})
            table = table[["mean", "sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"]]
            table = table.astype(float)
        table.index.name = "parameter"
        table.attrs["prob"] = prob
        return table

    def _summary_names(self) -> list[str]:
        """Variables shown by :meth:`summary`: the parameters, then the hyperparameters."""
        names = list(self.parameter_names)
        if self.pooling == "partial":
            names += [f"log_{n}_{kind}" for n in self.default_priors for kind in ("mean", "sd")]
        return names

    def _likelihood_names(self) -> list[str]:
        """Posterior variables that :meth:`_row_params` turns into each row's likelihood parameters."""
        return list(self.parameter_names)

    def _param_arrays(self, post: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        """Draws of the likelihood's variables (of the posterior by default), e.g. ``(chain, draw, group)``."""
        post = self.posterior if post is None else post
        return {n: post[n].values for n in self._likelihood_names()}

    def _history_columns(self) -> list[str]:
        """Columns of a prediction frame that determine a customer's predictions."""
        return list(self.data_columns) + ([self.group] if self.grouped else [])

    def _distinct_histories(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The distinct histories of ``df`` (a prediction frame) and each customer's index into them.

        Customers with the same :meth:`_history_columns` have the same
        predictions, so callers such as the CLV evaluate each history once.
        The histories get stand-in ``customer_id`` 0..n-1.
        """
        histories, codes = compress_rows(df, self._history_columns())
        histories = histories.drop(columns="weight").assign(customer_id=np.arange(len(histories)))
        histories.attrs = dict(df.attrs)
        return histories, codes

    def _evaluate(self, func, rows: pd.DataFrame, dtype=float, parallel: bool = True) -> np.ndarray:
        """``func(columns, params)`` for every draw and row, in chunks -> array ``(chain, draw, row)``.

        ``rows`` is a design frame (see :meth:`_design`), possibly with only
        some of the data columns; ``func`` gets those columns and each row's
        parameters. Chunks hold about ``_CHUNK_ELEMENTS`` draw x row elements,
        which bounds the memory of the intermediate arrays of the formulas.
        With ``parallel`` they run on every available core (see
        :func:`map_chunks`) and, while all rows fit in one chunk, are chunks of
        draws with every row, so that formulas which share work across rows
        (the Pareto/NBD integrals of one ``x``, the BG/NBD horizon series) share
        it over all of them. Pass ``parallel=False`` for a ``func`` that draws
        random numbers: chunks of rows, in order, so that a seeded generator
        gives the same result.
        """
        post = self.posterior
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        columns = [c for c in self.data_columns if c in rows.columns]
        values = np.empty((post.sizes["chain"], post.sizes["draw"], len(rows)), dtype=dtype)
        if parallel and len(rows) <= _CHUNK_ELEMENTS:
            cols = {c: rows[c].to_numpy(dtype=float) for c in columns}
            flat = values.reshape(n_samples, len(rows))

            def evaluate_draws(start: int, n_draws: int, chunk: dict[str, np.ndarray]) -> None:
                flat[start:start + n_draws] = func(cols, self._row_params(chunk, rows, NP))

            self._map_draw_chunks(evaluate_draws, len(rows))
            return values
        params = self._param_arrays()
        step = max(1, _CHUNK_ELEMENTS // max(n_samples, 1))

        def evaluate_chunk(start: int) -> None:
            chunk = rows.iloc[start:start + step]
            cols = {c: chunk[c].to_numpy(dtype=float) for c in columns}
            values[..., start:start + step] = func(cols, self._row_params(params, chunk, NP))

        map_chunks(evaluate_chunk, len(rows), step, parallel)
        return values

    def _distinct_rows(self, rows: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
        """The distinct ``columns`` of ``rows`` (a design frame: within a group, and with the same
        covariates), and each row's index into them."""
        keys = [c for c in rows.columns if c in columns or c not in self.data_columns]
        keys = [c for c in keys if c != "weight"]
        unique, codes = compress_rows(rows, keys)
        return unique[keys], codes

    def _distinct_values(self, func, rows: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_evaluate` once per :meth:`_distinct_rows` of ``rows``, and each row's index into the
        result's last axis."""
        unique, codes = self._distinct_rows(rows, columns)
        return self._evaluate(func, unique), codes

    def _expand_distinct(self, func, rows: pd.DataFrame, codes: np.ndarray,
                         weight: tuple[Any, pd.DataFrame, np.ndarray] | None = None) -> np.ndarray:
        """``func`` on distinct ``rows`` expanded to the output's rows, optionally times a weight.

        Returns an array ``(chain, draw, n)`` with element ``[..., i]`` equal to
        ``func(...)[..., codes[i]]``, times ``weight_func(...)[..., weight_codes[i]]``
        for ``weight = (weight_func, weight_rows, weight_codes)`` (functions as
        in :meth:`_evaluate`). While the row sets fit in a chunk of draws, each
        thread evaluates them for its draws and expands them at once, so no
        draws x rows array exists at full size besides the result.
        """
        parts = [(func, rows)] + ([] if weight is None else [weight[:2]])
        weight_codes = np.zeros(0, dtype=np.int64) if weight is None else np.asarray(weight[2], dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        n_rows = max(max(len(r) for _, r in parts), 1)
        if n_rows > _CHUNK_ELEMENTS:
            values = [self._evaluate(f, r) for f, r in parts]
            return gather_rows(values[0], codes, *(values[1:] or [None]), weight_codes if weight else None)
        post = self.posterior
        columns = [{c: r[c].to_numpy(dtype=float) for c in self.data_columns if c in r.columns} for _, r in parts]
        out = np.empty((post.sizes["chain"] * post.sizes["draw"], len(codes)))

        def evaluate_draws(start: int, n_draws: int, chunk: dict[str, np.ndarray]) -> None:
            values = [np.ascontiguousarray(np.broadcast_to(f(cols, self._row_params(chunk, r, NP)),
                                                           (n_draws, len(r))), dtype=float)
                      for (f, r), cols in zip(parts, columns, strict=True)]
            factor = values[1] if weight is not None else np.empty((n_draws, 0))
            _gather_kernel(out[start:start + n_draws], values[0], codes, factor, weight_codes, 0, n_draws)

        self._map_draw_chunks(evaluate_draws, n_rows)
        return out.reshape(post.sizes["chain"], post.sizes["draw"], len(codes))

    def _map_draw_chunks(self, evaluate_draws, n_rows: int) -> None:
        """Call ``evaluate_draws(start, n_draws, params)`` for chunks of about ``_CHUNK_ELEMENTS / n_rows``
        posterior draws (flattened over chains) on every core; ``params`` holds the chunk's draws of each
        likelihood variable, as :meth:`_row_params` takes them."""
        post = self.posterior
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        by_sample = {k: v.reshape(n_samples, *v.shape[2:]) for k, v in self._param_arrays().items()}
        step = max(1, _CHUNK_ELEMENTS // max(n_rows, 1))
        map_chunks(lambda start: evaluate_draws(start, min(step, n_samples - start),
                                                {k: v[start:start + step] for k, v in by_sample.items()}),
                   n_samples, step)

    def _on_distinct(self, func, rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
        """``func`` once per :meth:`_distinct_rows` of ``rows``, expanded to all ``rows``."""
        return self._expand_distinct(func, *self._distinct_rows(rows, columns))

    def _as_dataarray(self, values: np.ndarray, df: pd.DataFrame, name: str,
                      quantity: str = "expectation") -> xr.DataArray:
        """Wrap per-customer draws as a DataArray ``(chain, draw, customer_id)``.

        ``quantity`` ("expectation" or "outcome") is recorded in ``attrs`` so
        that :func:`bayesclv.intervals` names the interval correctly.
        """
        post = self.posterior
        return xr.DataArray(
            values, dims=("chain", "draw", "customer_id"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "customer_id": df["customer_id"].to_numpy()},
            name=name,
            attrs={"quantity": quantity, "time_unit": self.time_unit},
        )

    def _over_customers(self, func, df: pd.DataFrame, name: str, dtype=float,
                        quantity: str = "expectation") -> xr.DataArray:
        """Evaluate ``func(columns, params)`` for every draw and customer -> DataArray(chain, draw, customer_id).

        Expectations are evaluated once per distinct row of the model's data
        columns (identical histories have identical expectations); outcomes
        (random draws) are simulated for every customer on their own.
        """
        frame = self._design(df)
        if quantity == "outcome":  # random draws: every customer simulated on its own
            values = self._evaluate(func, frame, dtype=dtype, parallel=False)
        else:  # identical histories (of one group) have identical expectations
            values = self._on_distinct(func, frame, list(self.data_columns))
        return self._as_dataarray(values, df, name, quantity)

    def log_likelihood(self, data: Any | None = None) -> xr.DataArray:
        """Pointwise log-likelihood per customer and draw (for LOO and model comparison).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        df = self._data_for_prediction(data)
        return self._over_customers(lambda cols, prm: self._loglik(cols, prm, NP), df, "log_likelihood")

    def _simulate_population(self, df: pd.DataFrame, params: dict[str, np.ndarray],
                             rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Simulate the data columns for each prior draw (rows) and customer (columns)."""
        raise NotImplementedError

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
        with self.build_model(df), warnings.catch_warnings():
            # the only Potential is the likelihood, which prior sampling must ignore
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            prior = pm.sample_prior_predictive(draws=draws, var_names=self._summary_names(),
                                               random_seed=random_seed)
        ds = prior["prior"].to_dataset().isel(chain=0, drop=True)
        rng = np.random.default_rng(random_seed)
        params = self._row_params(self._param_arrays(ds), self._design(df), NP)
        for name, values in self._simulate_population(df, params, rng).items():
            ds[name] = (("draw", "customer_id"), np.asarray(values, dtype=float))
        return ds.assign_coords(customer_id=df["customer_id"].to_numpy())

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write the fitted model (posterior, data, priors, time unit) to one netCDF file.

        Parameters
        ----------
        path : str or Path
            Destination file, conventionally ``*.nc``. :func:`bayesclv.load`
            reads it back exactly.
        """
        self._check_fitted()
        data = self.data.set_index("customer_id").to_xarray()
        tree = self.idata.copy()
        tree["fit_data"] = xr.DataTree(dataset=data)
        tree.attrs = {
            **tree.attrs,
            "bayesclv_model": type(self).__name__,
            "priors": priors_to_json(self.priors),
            "time_unit": self.time_unit,
            "fit_method": self.fit_method,
            "data_attrs": json.dumps({k: str(v) for k, v in self.data.attrs.items()}),
            "diagnostics": json.dumps(dict(self.diagnostics or {})),
            "config": json.dumps(self._config()),
            "fit_state": json.dumps(self._fit_state()),
        }
        tree.to_netcdf(path, engine="h5netcdf")

    def _repr_html_(self) -> str:
        """Jupyter view: parameter table with intervals and diagnostics (see :mod:`bayesclv.display`)."""
        from bayesclv.display import model_html

        return model_html(self)

    def __repr__(self) -> str:
        state = f"fitted ({self.fit_method}, {len(self.data)} customers, unit {self.time_unit!r})" \
            if self.idata is not None else "not fitted"
        return f"{type(self).__name__}({state})"


def load(path: str | Path) -> CLVModel:
    """Read a model written by :meth:`CLVModel.save`.

    Parameters
    ----------
    path : str or Path
        File written by ``save``.

    Returns
    -------
    CLVModel
        An instance of the saved class, ready to predict.
    """
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    cls = _REGISTRY[tree.attrs["bayesclv_model"]]
    model = cls(priors=priors_from_json(tree.attrs["priors"]), **json.loads(tree.attrs.get("config", "{}")))
    data = tree["fit_data"].to_dataset().to_dataframe().reset_index()
    data.attrs = json.loads(tree.attrs["data_attrs"])
    model.data = data
    model.time_unit = tree.attrs["time_unit"]
    model.fit_method = tree.attrs["fit_method"]
    model.diagnostics = FitDiagnostics(json.loads(tree.attrs["diagnostics"]))
    model.idata = xr.DataTree.from_dict(
        {name: tree[name].to_dataset() for name in tree.children if name != "fit_data"}
    )
    model._restore_fit_state(model.idata["posterior"].to_dataset(), json.loads(tree.attrs.get("fit_state", "{}")))
    return model


def _optimizer_diagnostics(groups: dict[str, xr.DataTree]) -> FitDiagnostics:
    """Success flag and message of the optimiser behind a MAP fit."""
    diag = FitDiagnostics(method="map", ok=True)
    for tree in groups.values():
        ds = tree.to_dataset()
        if "success" in ds:
            diag["ok"] = bool(ds["success"].values)
            diag["message"] = str(ds["message"].values) if "message" in ds else ""
    return diag


def map_chunks(evaluate_chunk, n: int, step: int, parallel: bool = True) -> None:
    """Call ``evaluate_chunk(start)`` for ``start = 0, step, 2 step, ...`` below ``n``.

    With ``parallel`` the chunks run on a thread per available core: the
    formulas spend their time in NumPy and SciPy ufuncs, which release the
    GIL, so threads scale without copying the posterior into processes.
    ``evaluate_chunk`` must write only its own slice of the output.
    """
    starts = range(0, n, step)
    workers = min(_available_cpus(), len(starts)) if parallel else 1
    if workers <= 1:
        for start in starts:
            evaluate_chunk(start)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(evaluate_chunk, starts):  # re-raises the first error of a chunk
            pass


_GATHER_CHUNK_DRAWS = 100  # draws per thread's pass in gather_rows


@numba.njit(cache=True, nogil=True)
def _gather_kernel(out, values, codes, factor, factor_codes, start, stop):  # pragma: no cover - compiled
    """``out[d, i] = values[d, codes[i]]`` (times ``factor[d, factor_codes[i]]`` unless ``factor`` is empty)."""
    for d in range(start, stop):
        if factor.shape[1] == 0:
            for i in range(out.shape[1]):
                out[d, i] = values[d, codes[i]]
        else:
            for i in range(out.shape[1]):
                out[d, i] = values[d, codes[i]] * factor[d, factor_codes[i]]


def gather_rows(values: np.ndarray, codes: np.ndarray, factor: np.ndarray | None = None,
                factor_codes: np.ndarray | None = None) -> np.ndarray:
    """``values[..., codes]`` (times ``factor[..., factor_codes]``), one pass over draw chunks on every core.

    The draws x distinct-rows results of predictions are expanded to
    customers here: each thread takes a chunk of draws and writes all
    customers of each, so a draw's row of ``values`` stays in cache (NumPy's
    fancy indexing, and a product of two expanded arrays, are several times
    slower and make a temporary of the full size).
    """
    lead, n = values.shape[:-1], len(codes)
    flat = np.ascontiguousarray(values, dtype=float).reshape(-1, values.shape[-1])
    if factor is None:
        factor_flat, factor_codes = np.empty((flat.shape[0], 0)), np.zeros(0, dtype=np.int64)
    else:
        factor_flat = np.ascontiguousarray(factor, dtype=float).reshape(flat.shape[0], -1)
    out = np.empty((flat.shape[0], n))
    codes, factor_codes = np.asarray(codes, dtype=np.int64), np.asarray(factor_codes, dtype=np.int64)
    map_chunks(lambda start: _gather_kernel(out, flat, codes, factor_flat, factor_codes, start,
                                            min(start + _GATHER_CHUNK_DRAWS, len(out))),
               len(out), _GATHER_CHUNK_DRAWS)
    return out.reshape(*lead, n)


def _available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _require_sampler(sampler: str) -> None:
    import importlib.util

    module = {"nutpie": "nutpie", "numpyro": "numpyro"}[sampler]
    if importlib.util.find_spec(module) is None:
        extra = "nutpie" if sampler == "nutpie" else "jax"
        raise ImportError(f"sampler={sampler!r} needs the optional extra: pip install 'bayesclv[{extra}]'")
