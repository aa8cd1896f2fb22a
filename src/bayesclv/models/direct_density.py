"""A pooled model's log density and gradient without a PyTensor graph: the summed kernel plus the priors.

Where a population model's likelihood is one summed kernel over a few distinct
rows (the shifted-BG's cohort survival counts), its log density is a handful of
scalars, and a fit's cost is fixed costs: compiling the PyTensor graph (about a
second, much of it loading PyTensor's cache of compiled modules) and a call
through PyTensor's virtual machine per gradient. Here the density is the
family's numba kernel on the data tables of the graph's likelihood (its
:class:`~bayesclv.formulas._summed.SummedLoglikOp` holds both, so the rows and
tables are built once) and the priors' log densities in the sampler's coordinates, the
logarithms of the positive parameters, written once below with their
derivatives; both are compiled once and cached on disk, so a fit compiles no
log density (PyMC's small initial-point function only) and a gradient is three
compiled calls (the exponentials, the kernel, the priors).

It is the same density as the PyMC graph's (``model.logp(jacobian=True)``, the
test compares them value by value) for the configurations it covers: complete or
no pooling, no covariates, every parameter a sampled quantity with one of the
priors in ``DIFFERENTIATED_PRIORS`` (scalar arguments) under PyMC's log transform. Any
other configuration returns None and is sampled through the graph.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
import pymc as pm
import pytensor
from pymc.logprob.transforms import LogTransform
from pytensor.tensor.variable import TensorConstant

from bayesclv.formulas._prior_density import log_prior, prior_arguments
from bayesclv.formulas._summed import SummedLoglikOp, kernel_arguments
from bayesclv.priors import Prior

__all__ = ["DIFFERENTIATED_PRIORS", "DirectDensity", "differentiated_prior", "direct_density", "log_prior_and_slope",
           "summed_likelihood", "without_c_code"]

#: priors of a positive parameter whose derivative :func:`log_prior_and_slope` writes out (a subset of
#: :data:`bayesclv.formulas._prior_density.PRIOR_CODES`)
DIFFERENTIATED_PRIORS = frozenset({"HalfNormal", "Exponential", "Gamma", "LogNormal"})


def differentiated_prior(prior: Prior) -> tuple[int, float, float] | None:
    """``(code, first, second)`` of ``prior`` in the direct density's parametrisation; None if it has none.

    HalfNormal: ``sigma``; Exponential: ``lam``; Gamma: shape ``alpha`` and rate ``beta``;
    LogNormal: ``mu`` and ``sigma``; converted from PyMC's other arguments and defaults by
    :func:`bayesclv.formulas._prior_density.prior_arguments`.
    """
    if prior.distribution not in DIFFERENTIATED_PRIORS:
        return None
    if any(np.ndim(v) != 0 for v in prior.parameters.values()):  # per-group prior arguments: the graph handles them
        return None
    code, first, second = prior_arguments(prior.distribution, prior.parameters, caller="the direct density")
    return int(code), first, second


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_prior_and_slope(code, first, second, theta):  # pragma: no cover - compiled
    """Log density of a positive parameter's prior at ``theta`` (:func:`log_prior`) and its derivative in ``theta``."""
    if code == 0:  # HalfNormal(sigma)
        slope = -theta / first ** 2
    elif code == 1:  # Exponential(lam)
        slope = -first
    elif code == 2:  # Gamma(alpha, beta), rate beta
        slope = (first - 1.0) / theta - second
    else:  # LogNormal(mu, sigma)
        slope = -(1.0 + (math.log(theta) - first) / second ** 2) / theta
    return log_prior(code, first, second, theta), slope


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _exponentials(x):  # pragma: no cover - compiled
    """``exp(x)``; an overflow is infinite and rejected by :func:`_posterior`, not a user's warning."""
    return np.exp(x)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _posterior(x, theta, loglik, loglik_grad, codes, arguments):  # pragma: no cover - compiled
    """Log density in the log coordinates ``x`` (``theta = exp(x)``): likelihood, priors, log-Jacobians ``x``.

    Returns the value and its gradient in ``x``; ``-inf`` and zeros where anything is not finite (the
    sampler rejects the step as a divergence).
    """
    grad = np.empty(x.size)
    total = loglik
    for i in range(x.size):
        value, slope = log_prior_and_slope(codes[i], arguments[i, 0], arguments[i, 1], theta[i])
        total += value + x[i]
        grad[i] = theta[i] * (loglik_grad[i] + slope) + 1.0
    if not np.isfinite(total) or not np.all(np.isfinite(grad)):
        return -np.inf, np.zeros(x.size)
    return total, grad


class DirectDensity(NamedTuple):
    """A pooled model's log density in the sampler's coordinates (see the module docstring).

    Attributes
    ----------
    names : tuple of str
        The parameters, in the order of the flat coordinate vector (each its
        logarithm, ``size`` entries per parameter).
    shapes : tuple of tuple of int
        Each parameter's shape in the posterior (``()`` or ``(groups,)``).
    size : int
        Entries per parameter (1 without groups).
    kernel : numba function
        The family's summed kernel ``kernel(*params, *tables) -> (total, gradient)``.
    tables : tuple of numpy.ndarray
        The kernel's data tables (:func:`bayesclv.models.pooling.summed_tables`).
    codes : numpy.ndarray of int64
        Each coordinate's prior code (:data:`bayesclv.formulas._prior_density.PRIOR_CODES`).
    arguments : numpy.ndarray
        Each coordinate's two prior arguments.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    size: int
    kernel: Any
    tables: tuple[np.ndarray, ...]
    codes: np.ndarray
    arguments: np.ndarray

    @property
    def n_dim(self) -> int:
        return len(self.names) * self.size

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density at the flat vector of log parameters ``x`` and its gradient."""
        theta = _exponentials(x)
        loglik, grad = self.kernel(*theta.reshape(len(self.names), self.size), *self.tables)
        return _posterior(x, theta, loglik, grad.ravel(), self.codes, self.arguments)

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The parameters at ``x``, by name, in their posterior shapes."""
        theta = np.exp(x).reshape(len(self.names), self.size)
        return {name: theta[k].reshape(shape) for k, (name, shape) in enumerate(zip(self.names, self.shapes,
                                                                                        strict=True))}


def direct_density(model: Any, graph: pm.Model, var_names: list[str]) -> DirectDensity | None:
    """The direct log density of ``model``'s graph ``graph``, or None where it does not apply.

    Parameters
    ----------
    model : PooledModel
        A model whose class sets ``samples_direct_density``.
    graph : pymc.Model
        Its PyMC graph for the fitted data: the free variables and their order (for the checks
        below), the summed kernel and its data tables.
    var_names : list of str
        The variables the posterior stores; they must be the parameters themselves.

    Returns
    -------
    DirectDensity or None
    """
    names = tuple(model.parameter_names)
    if (not getattr(model, "samples_direct_density", False) or model.pooling == "partial" or model._coefficient_names()
            or tuple(rv.name for rv in graph.free_RVs) != names or graph.deterministics
            or sorted(var_names) != sorted(names)):
        return None
    likelihood = summed_likelihood(graph)
    if likelihood is None:
        return None
    if not all(isinstance(graph.rvs_to_transforms.get(rv), LogTransform) for rv in graph.free_RVs):
        return None
    priors = [differentiated_prior(model.priors[name]) for name in names]
    if any(p is None for p in priors):
        return None
    with without_c_code():
        point = graph.initial_point()
    shapes = tuple(point[graph.rvs_to_values[rv].name].shape for rv in graph.free_RVs)
    size = len(model.groups) if model.grouped else 1
    if any(shape != ((size,) if model.grouped else ()) for shape in shapes):
        return None
    codes = np.repeat(np.array([p[0] for p in priors], dtype=np.int64), size)
    arguments = np.repeat(np.array([p[1:] for p in priors], dtype=float), size, axis=0)
    return DirectDensity(names, shapes, size, *likelihood, codes, arguments)


def without_c_code():
    """A context in which PyTensor compiles with its Python implementations only (``cxx=""``).

    For the small functions a fit by a direct density still compiles: PyMC's initial points, a few
    scalars evaluated once per chain. The first C module of a process costs PyTensor's compiler
    probes (subprocesses) and its constant folding compiles C thunks: about a CPU second on CDNOW
    full that a fit which compiles no log density need not pay. The points are the same.
    """
    return pytensor.config.change_flags(cxx="")


def summed_likelihood(graph: pm.Model) -> tuple[Any, tuple[np.ndarray, ...]] | None:
    """The kernel and data tables of ``graph``'s likelihood where it is one summed kernel; None otherwise.

    The graph built the distinct rows and the kernel's tables and holds them as constants: the
    density reads them there, so they are built once per fit and it is the graph's data by construction.
    """
    if len(graph.potentials) != 1 or graph.potentials[0].owner is None:
        return None
    node = graph.potentials[0].owner
    tables = node.inputs[getattr(node.op, "n_params", len(node.inputs)):]
    if not isinstance(node.op, SummedLoglikOp) or not all(isinstance(t, TensorConstant) for t in tables):
        return None
    return node.op.kernel, tuple(kernel_arguments([], [t.data for t in tables])[1])
