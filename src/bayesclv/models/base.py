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
from pathlib import Path
from typing import Any, ClassVar

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesclv.data import validate_rfm
from bayesclv.errors import ConvergenceWarning, NotFittedError, TimeUnitError
from bayesclv.formulas import NP, PT
from bayesclv.priors import Prior, priors_from_json, priors_to_json

__all__ = ["CLVModel", "FitDiagnostics", "load"]

logger = logging.getLogger("bayesclv")

FIT_METHODS = ("nuts", "map", "advi")
SAMPLERS = ("pymc", "nutpie", "numpyro")
RHAT_MAX = 1.01
ESS_MIN = 400.0
_CHUNK_ELEMENTS = 2_000_000  # draws x customers evaluated at once in predictions

_REGISTRY: dict[str, type[CLVModel]] = {}


class FitDiagnostics(dict):
    """Convergence numbers of a fit: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
    ``divergences``, ``n_draws`` (sampled fits) and ``ok``."""

    def __str__(self) -> str:
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
    grouped = df.groupby(columns, sort=False)
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
        Overrides of the default priors, by parameter name.

    Attributes
    ----------
    idata : xarray.DataTree
        The fit: ``posterior`` (dims ``chain, draw``), ``sample_stats`` for NUTS.
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

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, priors: dict[str, Prior] | None = None):
        priors = dict(priors or {})
        unknown = set(priors) - set(self.default_priors)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: no parameter(s) {sorted(unknown)} to put a prior on; "
                f"the priors are on {list(self.default_priors)}"
            )
        for name, prior in priors.items():
            if not isinstance(prior, Prior):
                raise TypeError(f"prior for {name!r} must be a bayesclv.Prior, got {type(prior).__name__}")
        self.priors: dict[str, Prior] = {**self.default_priors, **priors}
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

        By default every parameter has its own prior. Subclasses that sample
        a better-conditioned reparameterisation override this and register
        the named parameters as ``pm.Deterministic``.
        """
        return {name: self.priors[name].create(name) for name in self.parameter_names}

    def _loglik(self, data: dict[str, Any], params: dict[str, Any], xp) -> Any:
        """Per-row log-likelihood (PyTensor with ``xp=PT``, NumPy with ``xp=NP``)."""
        raise NotImplementedError

    def build_model(self, data: Any, *, time_unit: str | None = None) -> pm.Model:
        """The PyMC model for ``data``: priors plus the weighted likelihood of distinct rows.

        Parameters
        ----------
        data : DataFrame
            An RFM frame (see :func:`bayesclv.rfm_summary`).
        time_unit : str, optional
            Needed only if the frame does not record its unit.

        Returns
        -------
        pymc.Model
        """
        df = self._prepare(data, time_unit=time_unit)
        unique, _ = compress_rows(df, list(self.data_columns))
        with pm.Model() as model:
            params = self._parameters()
            cols = {c: pm.Data(c, unique[c].to_numpy(dtype=float)) for c in self.data_columns}
            weight = pm.Data("weight", unique["weight"].to_numpy())
            pm.Potential("loglik", (weight * self._loglik(cols, params, PT)).sum())
        return model

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        """Variables whose R-hat and ESS decide whether a fit converged: the sampled priors and parameters."""
        names = list(self.parameter_names)
        return [n for n in self.default_priors if n not in names] + names

    def _stored_variables(self, model: pm.Model) -> list[str]:
        """Variables kept in the posterior (by default the diagnosed ones)."""
        return self._diagnosed_variables(model)

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        data: Any,
        *,
        method: str = "nuts",
        sampler: str = "pymc",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        time_unit: str | None = None,
        target_accept: float = 0.8,
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
        sampler : {"pymc", "nutpie", "numpyro"}, default "pymc"
            NUTS implementation (``nutpie`` and ``numpyro`` are optional extras).
        draws, tune, chains : int
            Posterior draws per chain, tuning steps, chains (NUTS). For ADVI,
            ``tune`` is the number of optimisation steps x 10.
        random_seed : int, optional
            Seed for reproducible fits.
        progressbar : bool, default True
            Show progress.
        time_unit : str, optional
            Unit of the data when the frame does not record it.
        target_accept : float, default 0.8
            NUTS target acceptance rate.
        **kwargs
            Passed to ``pymc.sample`` / ``pymc.find_MAP`` / ``pymc.fit``. With
            the PyMC sampler, ``cores`` defaults to one process per chain up to
            the number of CPUs available.

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
        df = self._prepare(data, time_unit=time_unit)
        model = self.build_model(df)
        keep = self._stored_variables(model)
        with model:
            if method == "nuts":
                nuts_kwargs = {}
                if sampler == "pymc":
                    # PyMC assumes half the CPUs are hyper-threads (1 process on a 2-core machine);
                    # chains are independent, so use every core available to this process
                    nuts_kwargs["cores"] = kwargs.pop("cores", min(chains, _available_cpus()))
                else:
                    _require_sampler(sampler)
                    nuts_kwargs["nuts_sampler"] = sampler
                idata = pm.sample(
                    draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                    progressbar=progressbar, target_accept=target_accept,
                    compute_convergence_checks=False, var_names=keep, **nuts_kwargs, **kwargs,
                )
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
            Indexed by parameter name; for a MAP fit ``mean`` is the point
            estimate and the other columns are NaN. ``attrs["prob"]`` records
            the interval's probability.
        """
        self._check_fitted()
        post = self.posterior[list(self.parameter_names)]
        if self.fit_method == "map":
            table = pd.DataFrame(
                {"mean": [float(post[n].values.ravel()[0]) for n in self.parameter_names]},
                index=list(self.parameter_names),
            )
            for col in ("sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"):
                table[col] = np.nan
        else:
            raw = azs.summary(self.idata, var_names=list(self.parameter_names), ci_prob=prob,
                              ci_kind="hdi", round_to="none")
            lo, hi = (c for c in raw.columns if c.startswith("hdi"))
            table = raw.rename(columns={lo: "hdi_lower", hi: "hdi_upper"})
            table = table[["mean", "sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"]]
            table = table.astype(float)
        table.index.name = "parameter"
        table.attrs["prob"] = prob
        return table

    def _param_arrays(self) -> dict[str, np.ndarray]:
        """Parameter draws shaped ``(chain, draw, 1)`` to broadcast against customers."""
        post = self.posterior
        return {n: post[n].values[..., None] for n in self.parameter_names}

    def _over_customers(self, func, df: pd.DataFrame, name: str, dtype=float,
                        quantity: str = "expectation") -> xr.DataArray:
        """Evaluate ``func(columns, params)`` chunked over customers -> DataArray(chain, draw, customer_id).

        ``quantity`` ("expectation" or "outcome") is recorded in ``attrs`` so
        that :func:`bayesclv.intervals` names the interval correctly.
        """
        params = self._param_arrays()
        post = self.posterior
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        step = max(1, _CHUNK_ELEMENTS // max(n_samples, 1))
        if quantity == "outcome":  # random draws: every customer simulated on its own
            rows, codes = df, None
        else:  # identical histories have identical expectations: evaluate each once
            rows, codes = compress_rows(df, list(self.data_columns))
        cols = {c: rows[c].to_numpy(dtype=float) for c in self.data_columns}
        n = len(rows)
        values = np.empty((post.sizes["chain"], post.sizes["draw"], n), dtype=dtype)
        for start in range(0, n, step):
            chunk = {c: v[start:start + step] for c, v in cols.items()}
            values[..., start:start + step] = func(chunk, params)
        out = values if codes is None else values[..., codes]
        return xr.DataArray(
            out, dims=("chain", "draw", "customer_id"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "customer_id": df["customer_id"].to_numpy()},
            name=name,
            attrs={"quantity": quantity, "time_unit": self.time_unit},
        )

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
            prior = pm.sample_prior_predictive(draws=draws, var_names=list(self.parameter_names),
                                               random_seed=random_seed)
        ds = prior["prior"].to_dataset().isel(chain=0, drop=True)
        rng = np.random.default_rng(random_seed)
        params = {n: ds[n].values[:, None] for n in self.parameter_names}
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
        }
        tree.to_netcdf(path, engine="h5netcdf")

    def _config(self) -> dict[str, Any]:
        """Constructor arguments other than the priors (JSON-serialisable), restored by :func:`load`."""
        return {}

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
