"""One dispatcher for every way of fitting a model: NUTS (nutpie, PyMC, numpyro), MAP, ADVI, minibatch ADVI.

A model hands over its PyMC graph (``model._graph(df, summed)``), the
variables to store and to judge convergence by, and how to finish the stored
draws; the method-specific code lives here, once. Models with per-customer
latent variables also offer ``_minibatch_model(df, batch_size)`` for
minibatch ADVI; a model with its own compiled MCMC (the Pareto/GGG's
data-augmentation sampler) offers ``_fit_gibbs(df, ...)`` for ``method="gibbs"``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from bayesclv.chunks import available_cpus
from bayesclv.errors import ArgumentError
from bayesclv.models.covariate_density import covariate_density
from bayesclv.models.diagnostics import FitDiagnostics, compute_diagnostics, optimizer_diagnostics
from bayesclv.models.direct_density import direct_density
from bayesclv.models.marginal import fit_marginal
from bayesclv.models.sampling import WHITENED_TARGET_ACCEPT, WHITENED_TUNE, sample_nutpie
from bayesclv.models.variational import approximation_posterior, elbo_converged, fit_minibatch_advi

__all__ = ["FIT_METHODS", "SAMPLERS", "check_fit_arguments", "fit_posterior"]

FIT_METHODS = ("nuts", "map", "advi", "latent", "gibbs")
SAMPLERS = ("pymc", "nutpie", "numpyro")
DEFAULT_TUNE = 1000  # tuning steps unless a fit asks otherwise (the integrated hierarchical fit: marginal_settings)


def check_fit_arguments(model: Any, *, method: str, sampler: str, draws: int, thin: int,
                        batch_size: int | None) -> None:
    """Raise ArgumentError (a ValueError) for a method, sampler, thinning or batch size ``model.fit`` cannot use."""
    if method not in FIT_METHODS:
        raise ArgumentError(f"must be one of {FIT_METHODS}, got {method!r}", argument="method")
    if method in model.unsupported_methods:
        allowed = [m for m in FIT_METHODS if m not in model.unsupported_methods]
        raise ArgumentError(f"{type(model).__name__} cannot be fitted by {method.upper()} "
                            f"({model.unsupported_methods[method]}); use method={' or '.join(map(repr, allowed))}",
                            argument="method")
    integrates = getattr(model, "integrates_latents", False)
    if method == "latent" and not integrates:
        raise ArgumentError(f"method='latent' (NUTS on every customer's latent rates) is for the individual-level "
                            f"hierarchical models; {type(model).__name__} has no latent rates", argument="method")
    if method == "nuts" and integrates and sampler != "nutpie":
        raise ArgumentError(f"{type(model).__name__} integrates the latent rates out and samples with nutpie; "
                            f"use method='latent' for sampler={sampler!r}", argument="sampler")
    if method == "gibbs" and not hasattr(model, "_fit_gibbs"):
        raise ArgumentError(f"method='gibbs' (a data-augmentation MCMC) is for the Pareto/GGG; "
                            f"{type(model).__name__} has none", argument="method")
    if batch_size is not None:
        if not hasattr(model, "_minibatch_model"):
            raise ArgumentError(f"{type(model).__name__} has no per-customer latent variables: batch_size "
                                "(minibatch ADVI) is for the individual-level hierarchical models",
                                argument="batch_size")
        if method != "advi":
            raise ArgumentError(f"batch_size is for method='advi' (minibatch ADVI), got method={method!r}",
                                argument="batch_size")
    if sampler not in SAMPLERS:
        raise ArgumentError(f"must be one of {SAMPLERS}, got {sampler!r}", argument="sampler")
    if not (isinstance(thin, int) and 1 <= thin <= draws):
        raise ArgumentError(f"must be an integer from 1 to draws ({draws}), got {thin!r}", argument="thin")


def fit_posterior(model: Any, df: Any, *, method: str, sampler: str, draws: int, tune: int | None, chains: int,
                  random_seed: int | None, progressbar: bool, target_accept: float | None, thin: int,
                  batch_size: int | None, **kwargs: Any) -> tuple[xr.DataTree, FitDiagnostics]:
    """Fit ``model`` to the prepared frame ``df``; see :meth:`bayesclv.models.CLVModel.fit` for the arguments.

    Returns
    -------
    tuple
        ``(idata, diagnostics)``: the finished posterior (and the sampler's
        statistics) and the fit's convergence numbers.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C (SIGINT) arrived during the fit, even where the sampler or
        optimiser caught it and returned what it had.
    """
    message = "the fit was interrupted (Ctrl-C); the model is unchanged"
    with _interrupts_raise() as interrupted:
        try:
            result = _fit(model, df, method=method, sampler=sampler, draws=draws, tune=tune, chains=chains,
                          random_seed=random_seed, progressbar=progressbar, target_accept=target_accept, thin=thin,
                          batch_size=batch_size, **kwargs)
        except Exception as exc:  # e.g. diagnostics of a partial trace: the interrupt is the news
            if interrupted.is_set():
                raise KeyboardInterrupt(message) from exc
            raise
    if interrupted.is_set():
        raise KeyboardInterrupt(message)
    return result


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[threading.Event]:
    """Record a SIGINT that arrives inside the block, passing it on to the handler in place.

    nutpie, PyMC's samplers and PyMC's ADVI catch KeyboardInterrupt and return the
    draws or steps they have; the event lets :func:`fit_posterior` raise it again
    instead of handing back a partial fit. Signal handlers can only be set from the
    main thread; elsewhere nothing is recorded (the interrupt goes to the main thread).
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if previous == signal.SIG_IGN:
            return
        interrupted.set()
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _fit(model: Any, df: Any, *, method: str, sampler: str, draws: int, tune: int | None, chains: int,
         random_seed: int | None, progressbar: bool, target_accept: float | None, thin: int,
         batch_size: int | None, **kwargs: Any) -> tuple[xr.DataTree, FitDiagnostics]:
    """The body of :func:`fit_posterior`."""
    marginal_tune = tune  # None: the integrated fit's default (marginal_settings.marginal_tune)
    # decided here, once: the warm-up and target acceptance below and the sampler in _nuts follow it
    whitened = bool(method == "nuts" and sampler == "nutpie" and model.nutpie_linker == "cvm"
                    and kwargs.get("nuts", {}).get("whiten", model.nutpie_whiten))
    tune = (WHITENED_TUNE if whitened else DEFAULT_TUNE) if tune is None else tune
    marginal_accept = target_accept  # None: the integrated fit's default (marginal.marginal_target_accept)
    if target_accept is None:
        target_accept = WHITENED_TARGET_ACCEPT if whitened else model.default_target_accept
    if batch_size is not None:
        return _minibatch(model, df, batch_size=int(batch_size), draws=draws, tune=tune, random_seed=random_seed,
                          progressbar=progressbar, **kwargs)
    if method == "gibbs":
        idata, diagnostics = model._fit_gibbs(df, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                                              thin=thin, cores=kwargs.pop("cores", min(chains, available_cpus())),
                                              **kwargs)
        idata["posterior"] = xr.DataTree(_marked(idata["posterior"].to_dataset(), method))
        return idata, diagnostics
    fallback = None
    if method == "nuts" and getattr(model, "integrates_latents", False):
        cores = kwargs.pop("cores", min(chains, available_cpus()))
        fitted = fit_marginal(model, df, draws=draws, tune=marginal_tune, chains=chains, cores=cores,
                              random_seed=random_seed, progressbar=progressbar, target_accept=marginal_accept,
                              thin=thin, **kwargs.pop("nuts", {}), **kwargs)
        if fitted is not None:
            idata, diagnostics = fitted
            idata["posterior"] = xr.DataTree(_marked(idata["posterior"].to_dataset(), method))
            return idata, diagnostics
        fallback = ("sampled: the posterior of the population covariance is wider than the integration rule "
                    "resolves (few customers)")
        warnings.warn(f"{type(model).__name__}: {fallback}; fitting by NUTS on every customer's latent rates "
                      "(method='latent')", UserWarning, stacklevel=3)
        kwargs = {"cores": cores}  # the rule's settings are no sampler's
    graph = model._graph(df, summed=sampler != "numpyro")  # JAX cannot run the summed kernels
    keep = model._stored_variables(graph)
    with graph:
        if method in ("nuts", "latent"):
            idata = _nuts(model, graph, keep, df, sampler=sampler, draws=draws, tune=tune, chains=chains,
                          random_seed=random_seed, progressbar=progressbar, target_accept=target_accept,
                          whiten=whitened, **kwargs)
            if thin > 1:
                idata = idata.isel(draw=slice(None, None, thin), missing_dims="ignore")
            diagnostics = None
        elif method == "map":
            result = pm.find_MAP(progressbar=progressbar, random_seed=random_seed, jitter=False,
                                 return_inferencedata=True, **kwargs)
            idata = xr.DataTree.from_dict({"posterior": result["posterior"].to_dataset()[keep]})
            diagnostics = optimizer_diagnostics({g: result[g] for g in result.children if g != "posterior"})
        else:
            # Adam converges from the prior-scale initial point where PyMC's default optimiser
            # (adagrad_window) is still far off after many more steps
            kwargs.setdefault("obj_optimizer", pm.adam(learning_rate=0.01))
            approx = pm.fit(n=max(tune, 1) * 10, method="advi", random_seed=random_seed,
                            progressbar=progressbar, **kwargs)
            idata = approx.sample(draws, random_seed=random_seed)
            idata = xr.DataTree.from_dict({"posterior": idata["posterior"].to_dataset()[keep]})
            diagnostics = FitDiagnostics(method=method)
    idata["posterior"] = xr.DataTree(_marked(model._finish_posterior(graph, idata["posterior"].to_dataset()), method))
    if diagnostics is None:
        diagnostics = compute_diagnostics(idata, model._diagnosed_variables(graph))
    if fallback is not None:
        diagnostics["latents"] = fallback
    return idata, diagnostics


def _nuts(model: Any, graph: pm.Model, keep: list[str], df: Any, *, sampler: str, draws: int, tune: int,
          chains: int, random_seed: int | None, progressbar: bool, target_accept: float, whiten: bool,
          **kwargs: Any) -> xr.DataTree:
    """NUTS draws of ``graph`` (inside its context, built from the prepared frame ``df``) by the chosen sampler.

    ``whiten``: nutpie samples in coordinates whitened at the mode (the compiled-model path only; decided by
    :func:`_fit` from ``nuts={"whiten": ...}`` and the model's default).
    """
    if sampler != "pymc":
        _require_sampler(sampler)
    # chains are independent: by default one per core available to this process (PyMC assumes
    # half the CPUs are hyper-threads and would give nutpie one thread on 2 cores)
    cores = kwargs.pop("cores", min(chains, available_cpus()))
    common = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar,
                  target_accept=target_accept)
    if sampler == "nutpie" and model.nutpie_linker == "cvm":
        settings = {key: value for key, value in kwargs.pop("nuts", {}).items() if key != "whiten"}
        if kwargs:
            raise TypeError(f"unexpected keyword arguments for sampler='nutpie': {sorted(kwargs)}; "
                            "pass nutpie settings in nuts={...}")
        density = direct_density(model, graph, keep) or covariate_density(model, graph, keep)
        return sample_nutpie(graph, var_names=keep, cores=cores, density=density,
                             adaptation=settings.pop("adaptation", model.nutpie_adaptation),
                             whiten=whiten, **common, **settings)
    # explicit: PyMC 6 would otherwise pick nutpie whenever it is installed
    nuts_kwargs: dict[str, Any] = {"nuts_sampler": sampler}
    if sampler in ("pymc", "nutpie"):
        nuts_kwargs["cores"] = cores
    if sampler == "nutpie":
        nuts_kwargs["nuts"] = {"adaptation": model.nutpie_adaptation, **kwargs.pop("nuts", {})}
    return pm.sample(**common, compute_convergence_checks=False, var_names=keep, **nuts_kwargs, **kwargs)


def _minibatch(model: Any, df: Any, *, batch_size: int, draws: int, tune: int, random_seed: int | None,
               progressbar: bool, learning_rate: float = 0.01, local_learning_rate: float = 0.05
               ) -> tuple[xr.DataTree, FitDiagnostics]:
    """Minibatch ADVI (:mod:`bayesclv.models.variational`); the approximation's draws become a one-chain posterior."""
    if not 1 <= batch_size <= len(df):
        raise ValueError(f"batch_size must be from 1 to the number of customers ({len(df)}), got {batch_size}")
    batch_model, customer_data = model._minibatch_model(df, batch_size)
    approx = fit_minibatch_advi(batch_model, customer_data, steps=max(tune, 1) * 10, batch_size=batch_size,
                                learning_rate=learning_rate, local_learning_rate=local_learning_rate,
                                random_seed=random_seed, progressbar=progressbar)
    graph = model._graph(df, summed=True)
    posterior = approximation_posterior(graph, approx, draws, model.parameter_names,
                                        np.random.default_rng(random_seed))
    idata = xr.DataTree.from_dict({"posterior": _marked(model._finish_posterior(graph, posterior), "advi")})
    converged, rise = elbo_converged(approx.elbo, approx.batches, len(df))
    return idata, FitDiagnostics(method="advi", steps=len(approx.elbo), batch_size=batch_size, elbo_rise=rise,
                                 drift=approx.drift, ok=converged)


def _marked(posterior: xr.Dataset, method: str) -> xr.Dataset:
    """``posterior`` with ``attrs`` ``fit_method`` and ``point_estimate`` (1 for MAP or a single draw, else 0).

    Every prediction carries the mark on (:func:`bayesclv.models.engine.prediction_attrs`), so that
    intervals, tables and reports never call a point estimate's output credible.
    """
    single = posterior.sizes["chain"] * posterior.sizes["draw"] == 1
    posterior.attrs.update(fit_method=method, point_estimate=int(method == "map" or single))
    return posterior


def _require_sampler(sampler: str) -> None:
    module = {"nutpie": "nutpie", "numpyro": "numpyro"}[sampler]
    if importlib.util.find_spec(module) is None:
        extra = "nutpie" if sampler == "nutpie" else "jax"
        raise ImportError(f"sampler={sampler!r} needs the optional extra: pip install 'bayesclv[{extra}]'")
