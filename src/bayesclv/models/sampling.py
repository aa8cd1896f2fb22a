"""NUTS by nutpie on a log density compiled by PyTensor's C backend.

``pymc.sample(nuts_sampler="nutpie")`` hands the model to
``nutpie.compile_pymc_model``, which compiles the log density and a C callback
around it with numba on every fit (never cached on disk).
The pooled and grouped models' likelihood is one summed kernel
(:mod:`bayesclv.formulas._summed`), so the rest of their log density is a few
scalar operations (priors, transforms, Jacobians). Here that graph is compiled
with PyTensor's C linker, whose compiled modules are cached on disk across
fits, and nutpie calls it through its Python-function interface, once per
gradient. The kernel runs without the GIL, so chains on several threads run in
parallel. Where a model's whole density is its kernel plus priors written out
in compiled code (:mod:`bayesclv.models.direct_density`), nutpie calls that
instead and no log density is compiled per fit (PyMC still compiles its small
initial-point function).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import warnings
from collections.abc import Callable
from math import prod

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.initial_point import make_initial_point_fn
from pytensor.compile.mode import Mode
from pytensor.graph.replace import clone_replace
from scipy import optimize

from bayesclv.errors import ConvergenceWarning
from bayesclv.models.covariate_density import CovariateDensity
from bayesclv.models.direct_density import DirectDensity, without_c_code

_WHITENED_JITTER = 0.5  # chains start at the mode plus this times a draw of its Laplace approximation
# a whitened fit's default warm-up and target acceptance: its posterior is near a standard normal, so the mass
# matrix and step size settle in a short warm-up, and 0.65 takes mostly 3-step trees where 0.8 takes 4-7 (as the
# integrated hierarchical fit, models/marginal_settings.py; measured in benchmarks/results/covariate_sampling_full.md)
WHITENED_TUNE, WHITENED_TARGET_ACCEPT = 200, 0.65

__all__ = ["WHITENED_TARGET_ACCEPT", "WHITENED_TUNE", "NutpieFunctions", "c_mode", "compile_nutpie_model",
           "laplace_covariance", "laplace_whitening", "sample_nutpie", "whitened"]


def c_mode() -> Mode:
    """PyTensor's C virtual machine where a C++ compiler is available, its Python one otherwise."""
    return Mode(linker="cvm" if pytensor.config.cxx else "vm", optimizer="fast_run")


@dataclasses.dataclass(frozen=True)
class NutpieFunctions:
    """A log density as nutpie's Python-function interface takes it, held in our own fields.

    Holding the factories here (not in nutpie's model object) lets :func:`whitened` map them to other
    coordinates without reaching into nutpie's private fields; :meth:`nutpie_model` hands them over.

    Attributes
    ----------
    n_dim : int
        Length of the unconstrained point.
    make_logp : callable
        ``make_logp() -> logp_and_grad(x) -> (value, gradient)``; one function per chain.
    make_expand : callable
        ``make_expand(*_) -> expand(x) -> {name: array}``: the recorded variables at ``x``.
    make_initial_point : callable
        ``make_initial_point(seed) -> x``: a chain's first point (thread-safe).
    names, shapes : list
        The recorded variables and their shapes.
    coords, dims : dict
        The model's coordinates and each recorded variable's dimensions.
    """

    n_dim: int
    make_logp: Callable
    make_expand: Callable
    make_initial_point: Callable
    names: list[str]
    shapes: list[tuple[int, ...]]
    coords: dict[str, pd.Index]
    dims: dict[str, tuple[str, ...]]

    def nutpie_model(self):
        """The functions as a nutpie model (``nutpie.compiled_pyfunc.PyFuncModel``)."""
        from nutpie.compiled_pyfunc import from_pyfunc

        return from_pyfunc(self.n_dim, self.make_logp, self.make_expand, [np.dtype("float64")] * len(self.names),
                           self.shapes, list(self.names), coords=self.coords, dims=self.dims,
                           make_initial_point_fn=self.make_initial_point)


def compile_nutpie_model(model: pm.Model, var_names: list[str],
                         density: DirectDensity | CovariateDensity | None = None) -> NutpieFunctions:
    """The log density of ``model`` and its gradient for nutpie, compiled by PyTensor's C linker.

    Parameters
    ----------
    model : pymc.Model
        Model whose free variables nutpie samples (in their unconstrained, transformed space).
    var_names : list of str
        Variables recorded for each draw (free variables in their constrained
        space and deterministics).
    density : DirectDensity or CovariateDensity, optional
        The same log density without the graph (:mod:`bayesclv.models.direct_density`,
        :mod:`bayesclv.models.covariate_density`): nutpie calls its compiled kernel and no log
        density is compiled here. The graph still gives the initial points (PyMC compiles a
        small function for them, here with PyTensor's Python implementations: no C module at all).

    Returns
    -------
    NutpieFunctions
    """
    free = [model.rvs_to_values[rv] for rv in model.free_RVs]
    if density is None:
        n_dim, make_logp_fn, make_expand_fn, recorded_shapes = _graph_functions(model, var_names, free)
    else:
        n_dim, make_logp_fn, make_expand_fn, recorded_shapes = _direct_functions(density, var_names)
    with contextlib.nullcontext() if density is None else without_c_code():
        initial = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True)
    lock = threading.Lock()

    def make_initial_point(seed):
        with lock:  # nutpie initialises chains on several threads; PyMC's function is not thread-safe
            start = initial(int(seed))
        return np.concatenate([np.ravel(start[v.name]) for v in free]).astype(np.float64)

    dims = {name: tuple(model.named_vars_to_dims[name]) for name in var_names if name in model.named_vars_to_dims}
    coords = {name: pd.Index(values) for name, values in model.coords.items() if values is not None}
    return NutpieFunctions(n_dim, make_logp_fn, make_expand_fn, make_initial_point, list(var_names),
                           list(recorded_shapes), coords, dims)


def laplace_covariance(logp_grad, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Inverse of the negative Hessian of a log density at ``x`` (central differences of ``logp_grad(x) -> (value,
    gradient)``), a flat direction (a prior-dominated scale) regularised so that the matrix stays invertible."""
    d = len(x)
    H = np.empty((d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = step
        H[:, j] = (logp_grad(x + e)[1] - logp_grad(x - e)[1]) / (2 * step)
    H = -(H + H.T) / 2
    return np.linalg.inv(H + 1e-8 * np.eye(d) * max(np.abs(np.diag(H)).max(), 1.0))


def laplace_whitening(logp_grad, start: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The mode of a log density (L-BFGS from ``start``) and the Cholesky factor of its Laplace covariance there;
    None where the search fails or the covariance is not positive definite (the caller samples unwhitened)."""
    def objective(x):
        value, grad = logp_grad(x)
        return -float(value), -np.asarray(grad, dtype=float)

    with np.errstate(all="ignore"):
        found = optimize.minimize(objective, np.asarray(start, dtype=float), jac=True, method="L-BFGS-B")
        if not (found.success and np.isfinite(found.fun)):
            return None
        try:
            return found.x, np.linalg.cholesky(laplace_covariance(logp_grad, found.x))
        except np.linalg.LinAlgError:
            return None


def whitened(functions: NutpieFunctions, centre: np.ndarray, spread: np.ndarray,
             jitter: float = _WHITENED_JITTER) -> NutpieFunctions:
    """``functions`` (a log density of ``x``) in coordinates ``z`` with ``x = centre + spread z``.

    A linear map: the posterior is the same, its Jacobian a constant. Chains start at ``z`` drawn from
    ``N(0, jitter^2 I)``; the draws are recorded in ``x``'s variables.
    """
    make_logp, make_expand = functions.make_logp, functions.make_expand

    def whitened_logp(*args):
        logp = make_logp(*args)

        def logp_and_grad(z, **kwargs):
            value, gradient = logp(centre + spread @ z, **kwargs)
            return value, np.ascontiguousarray(spread.T @ gradient)

        return logp_and_grad

    def whitened_expand(*args):
        expand = make_expand(*args)
        return lambda z, **kwargs: expand(centre + spread @ z, **kwargs)

    def initial(seed):
        return jitter * np.random.default_rng(int(seed)).normal(size=centre.size)

    return dataclasses.replace(functions, make_logp=whitened_logp, make_expand=whitened_expand,
                               make_initial_point=initial)


def _direct_functions(density: DirectDensity | CovariateDensity, var_names: list[str]):
    """nutpie's function factories for a direct density: its own methods, nothing to compile."""
    shapes = dict(zip(density.names, density.shapes, strict=True))

    def make_logp_fn():
        def logp_and_grad(x, **_):
            return density.logp_and_grad(x)

        return logp_and_grad

    def make_expand_fn(*_):
        def expand(x, **_):
            return density.expand(x)

        return expand

    return density.n_dim, make_logp_fn, make_expand_fn, [shapes[name] for name in var_names]


def _graph_functions(model: pm.Model, var_names: list[str], free: list):
    """nutpie's function factories for the graph's log density, compiled by PyTensor's C linker."""
    point = model.initial_point()  # compiles a small function: the direct density needs none
    shapes = [point[v.name].shape for v in free]
    sizes = [prod(s) for s in shapes]
    offsets = np.cumsum([0, *sizes])
    flat = pt.dvector("unconstrained_point")
    pieces = {v: flat[int(lo):int(hi)].reshape(shape)
              for v, lo, hi, shape in zip(free, offsets[:-1], offsets[1:], shapes, strict=True)}
    logp = model.logp(jacobian=True)
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, free)])
    logp, grad = clone_replace([logp, grad], pieces)
    recorded = clone_replace(model.replace_rvs_by_values([model[name] for name in var_names]), pieces)
    mode = c_mode()
    with warnings.catch_warnings():
        # matrix products (spend covariates) fall back to NumPy's C API without BLAS: a few rows x
        # coefficients here, nothing to warn a user about
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)
        logp_fn = pytensor.function([flat], [logp, grad], mode=mode)
        expand_fn = pytensor.function([flat], recorded, mode=mode, on_unused_input="ignore")
    start = np.concatenate([np.ravel(point[v.name]) for v in free]).astype(np.float64)
    recorded_shapes = [np.shape(value) for value in expand_fn(start)]

    def make_logp_fn():
        fn = logp_fn.copy()  # a function per chain: compiled functions keep their own storage
        # nutpie hands over a float64 vector of the right length: the input checks and conversions of
        # every call would cost about a third of a small model's call
        fn.trust_input = True

        def logp_and_grad(x, **_):
            with np.errstate(all="ignore"):  # a non-finite result is handled below, not a user's warning
                value, gradient = fn(x)
            value, gradient = float(value), np.ascontiguousarray(gradient, dtype=np.float64)
            if not (np.isfinite(value) and np.isfinite(gradient).all()):
                # a point where the density under- or overflows: nutpie rejects a -inf
                # log density as a divergence, like the numba path's error codes
                return -np.inf, np.zeros_like(gradient)
            return value, gradient

        return logp_and_grad

    def make_expand_fn(*_):
        fn = expand_fn.copy()
        fn.trust_input = True

        def expand(x, **_):
            return {name: np.ascontiguousarray(value, dtype=np.float64).reshape(shape)
                    for name, value, shape in zip(var_names, fn(x), recorded_shapes, strict=True)}

        return expand

    return int(offsets[-1]), make_logp_fn, make_expand_fn, recorded_shapes


def sample_nutpie(model: pm.Model, *, var_names: list[str], draws: int, tune: int, chains: int, cores: int,
                  random_seed: int | None, progressbar: bool, target_accept: float, adaptation: str,
                  density: DirectDensity | CovariateDensity | None = None, whiten: bool = False,
                  **settings) -> xr.DataTree:
    """NUTS draws of ``model`` by nutpie on the C-compiled log density (see :func:`compile_nutpie_model`).

    Parameters
    ----------
    model : pymc.Model
    var_names : list of str
        Variables recorded in the posterior.
    draws, tune, chains, cores : int
        Draws per chain after ``tune`` tuning steps; chains; threads.
    random_seed : int, optional
    progressbar : bool
        nutpie's progress display.
    target_accept : float
    adaptation : str
        nutpie's mass-matrix adaptation (``"diag"``, ``"low_rank"``, ...).
    density : DirectDensity or CovariateDensity, optional
        The model's log density without the graph (see :func:`compile_nutpie_model`).
    whiten : bool, default False
        Sample in coordinates whitened by the Laplace approximation at the mode (:func:`laplace_whitening`,
        :func:`whitened`), chains starting near the mode, nutpie's first step size 1 (the whitened scale);
        unwhitened where no mode is found.
    **settings
        Further nutpie sampler settings (e.g. ``maxdepth``).

    Returns
    -------
    xarray.DataTree
        ``posterior`` and ``sample_stats`` (``diverging``, ``n_steps``, ...).
    """
    import nutpie

    compiled = compile_nutpie_model(model, var_names, density)
    seed = int(np.random.default_rng(random_seed).integers(2**31)) if random_seed is None else int(random_seed)
    if whiten:
        found = laplace_whitening(compiled.make_logp(), compiled.make_initial_point(seed))
        if found is not None:
            compiled = whitened(compiled, *found)
            settings.setdefault("initial_step", 1.0)
        else:  # the short warm-up chosen for whitened coordinates may not suffice without them
            warnings.warn(f"no posterior mode found to whiten the sampling coordinates: NUTS samples unwhitened, with "
                          f"tune={tune} and target_accept={target_accept}; if the fit's convergence report is poor, "
                          "refit with nuts={'whiten': False} (1000 tuning steps, the model's target acceptance)",
                          ConvergenceWarning, stacklevel=2)
    return nutpie.sample(compiled.nutpie_model(), draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
                         seed=seed, save_warmup=False, progress_bar=progressbar, adaptation=adaptation,
                         target_accept=target_accept, **settings)
