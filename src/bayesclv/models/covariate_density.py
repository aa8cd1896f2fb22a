"""A covariate model's log density and gradient without a PyTensor graph: the covariate kernel plus the priors.

The covariate BG/NBD's likelihood is one compiled kernel over the distinct
(history, covariates) rows (:mod:`bayesclv.formulas._covariate_summed`); the
rest of its log density is a few scalars: the priors, the sampling transforms
and their Jacobians. Through the graph a fit compiled that density with PyTensor
(graph rewrites on every fit, about 2 CPU seconds on CDNOW full) and each
gradient passed PyTensor's virtual machine. Here the same density is the kernel
on the graph's own data tables plus the priors, the transforms and their chain
rule in two small compiled functions (numba, cached on disk; in NumPy they cost
0.1 ms a gradient, a sixth of the kernel's), so no log density is compiled per
fit (PyMC's small initial-point function only).

The sampling coordinates are the graph's, in its order of free variables, so the
starting points, the whitening and the posterior are those of the graph's fit:

- a positive parameter: its logarithm (PyMC's log transform), any prior of
  :data:`~bayesclv.models.direct_density.DIFFERENTIATED_PRIORS`;
- a pair of beta shapes: mean and concentration (:class:`~bayesclv.models.mean_concentration.MeanConcentration`);
- a coefficient vector with a ``Normal`` prior: itself; a pair of them: their
  difference and mean (:class:`~bayesclv.models.mean_concentration.DifferenceAndMean`);
- a gamma mixing distribution sampled as its mean and squared coefficient of
  variation (the Pareto/NBD's ``dropout_mean, dropout_cv2``, each on its log scale
  with its own prior; the model's ``gamma_mean_cv2``): the kernel's shape
  ``1/cv2`` and scale ``1/(cv2 mean)`` from them, the chain rule back.

Any other configuration (groups, other priors, any other parameter that is a
function of sampled ones) gives None and is sampled through the graph. ``tests/test_covariate_density.py`` compares value and gradient with
PyMC's compiled ``logp``/``dlogp`` of the graph.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
import pymc as pm
from pymc.logprob.transforms import LogTransform
from pytensor.tensor.variable import TensorConstant

from bayesclv.formulas._summed import softplus_and_sigmoid
from bayesclv.models.direct_density import (
    differentiated_prior,
    log_prior_and_slope,
    summed_likelihood,
    without_c_code,
)
from bayesclv.models.mean_concentration import DifferenceAndMean, MeanConcentration

__all__ = ["CovariateDensity", "covariate_density"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class Block(NamedTuple):
    """Sampling coordinates ``x[start:start + size]`` and the kernel inputs they give.

    ``kind``: ``"log"`` (one positive parameter), ``"shapes"`` (two positive
    parameters as mean and concentration), ``"coef"`` (one coefficient vector),
    ``"coef_pair"`` (two as difference and mean). ``priors``: per name, the positive
    prior's ``(code, first, second)`` or the ``Normal``'s ``(mu, sigma)``.
    """

    kind: str
    names: tuple[str, ...]
    start: int
    size: int
    priors: tuple[tuple[float, ...], ...]


# a coordinate's kind in the compiled layout (one entry per coordinate; a pair's second entry repeats its first)
LOG, SHAPES, COEF, COEF_PAIR = 0, 1, 2, 3
_NORMAL = -1  # prior code of a coefficient: Normal(mu, sigma); the positive priors' codes are _prior_density's
_DERIVED = -2  # no prior of its own: a kernel input computed from sampled entries (a gamma's shape and scale)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _inputs(x, kind, target, n_inputs, derived):  # pragma: no cover - compiled
    """The kernel's inputs, flat, at the sampling coordinates ``x`` (see :class:`CovariateDensity`); then the
    sampled entries past them."""
    theta = np.zeros(n_inputs)
    i = 0
    while i < x.size:
        if kind[i] == LOG:
            theta[target[i, 0]] = math.exp(min(x[i], 710.0))
            i += 1
        elif kind[i] == SHAPES:  # a = e^w sigmoid(u), b = e^w sigmoid(-u)
            theta[target[i, 0]] = math.exp(min(x[i + 1] - softplus_and_sigmoid(-x[i])[0], 710.0))
            theta[target[i, 1]] = math.exp(min(x[i + 1] - softplus_and_sigmoid(x[i])[0], 710.0))
            i += 2
        elif kind[i] == COEF:
            theta[target[i, 0]] = x[i]
            i += 1
        else:  # (difference, mean) of one covariate's two coefficients
            theta[target[i, 0]] = x[i + 1] + 0.5 * x[i]
            theta[target[i, 1]] = x[i + 1] - 0.5 * x[i]
            i += 2
    if derived[0] >= 0:  # shape 1/cv2 and scale 1/(cv2 mean) of a gamma sampled as (mean, cv2)
        theta[derived[0]] = 1.0 / theta[derived[3]]
        theta[derived[1]] = 1.0 / (theta[derived[3]] * theta[derived[2]])
    return theta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _posterior(x, theta, loglik, loglik_grad, kind, target, codes, arguments, derived):  # pragma: no cover
    """Log density at ``x``: the likelihood, the priors of ``theta`` and the transforms' log-Jacobians; its
    gradient in ``x`` by the chain rule from ``loglik_grad`` (in the kernel's inputs, the first entries of
    ``theta``). ``-inf`` and zeros where anything is not finite (the sampler rejects the step as a divergence)."""
    total = loglik
    g = np.zeros(theta.size)  # d (loglik + log prior) / d theta
    g[:loglik_grad.size] = loglik_grad
    for j in range(theta.size):
        if codes[j] == _DERIVED:
            continue
        if codes[j] == _NORMAL:
            z = (theta[j] - arguments[j, 0]) / arguments[j, 1]
            total += -0.5 * z * z - math.log(arguments[j, 1]) - _LOG_SQRT_2PI
            g[j] -= z / arguments[j, 1]
        else:
            value, slope = log_prior_and_slope(codes[j], arguments[j, 0], arguments[j, 1], theta[j])
            total += value
            g[j] += slope
    if derived[0] >= 0:  # s = 1/cv2, beta = 1/(cv2 mean): d/dmean = -beta/mean d/dbeta, d/dcv2 = -(s d/ds + beta d/dbeta)/cv2
        shape, scale = g[derived[0]] * theta[derived[0]], g[derived[1]] * theta[derived[1]]
        g[derived[2]] -= scale / theta[derived[2]]
        g[derived[3]] -= (shape + scale) / theta[derived[3]]
    grad = np.empty(x.size)
    i = 0
    while i < x.size:
        if kind[i] == LOG:
            t = target[i, 0]
            total += x[i]  # log-Jacobian of theta = e^x
            grad[i] = theta[t] * g[t] + 1.0
            i += 1
        elif kind[i] == SHAPES:  # log a + log b = 2 w - softplus(-u) - softplus(u)
            lower, down = softplus_and_sigmoid(-x[i])
            upper, up = softplus_and_sigmoid(x[i])
            total += 2.0 * x[i + 1] - lower - upper
            ga, gb = theta[target[i, 0]] * g[target[i, 0]], theta[target[i, 1]] * g[target[i, 1]]
            grad[i] = ga * down - gb * up + down - up
            grad[i + 1] = ga + gb + 2.0
            i += 2
        elif kind[i] == COEF:
            grad[i] = g[target[i, 0]]
            i += 1
        else:
            first, second = g[target[i, 0]], g[target[i, 1]]
            grad[i] = 0.5 * (first - second)
            grad[i + 1] = first + second
            i += 2
    if not np.isfinite(total) or not np.all(np.isfinite(grad)):
        return -np.inf, np.zeros(x.size)
    return total, grad


class CovariateDensity(NamedTuple):
    """The log density of a covariate model in the graph's sampling coordinates (see the module docstring).

    The kernel's inputs (population parameters as length-1 vectors, then the coefficient vectors, in
    the kernel's order) are one flat vector ``theta``; coordinate ``i`` of ``x`` has a ``kind`` and its
    entries of ``theta`` in ``target[i]`` (a pair's two, on both of its coordinates).

    Attributes
    ----------
    names, shapes : tuple
        The stored variables (the published parameters and the coefficient vectors) and their shapes.
    n_dim : int
        Length of the flat coordinate vector.
    kernel : numba function
        ``kernel(*params, *coefs, *tables) -> (total, gradients)``.
    spans : tuple of (str, int, int)
        Each kernel input's name and its slice of ``theta`` (the first ``kernel_inputs``), then those of the
        sampled variables that are no kernel input (a gamma's mean and cv2), past them.
    kernel_inputs : int
        How many of ``spans`` the kernel takes.
    kind, target : numpy.ndarray
        Each coordinate's kind and entries of ``theta``.
    codes, arguments : numpy.ndarray
        The prior of each entry of ``theta``: a code of :data:`~bayesclv.formulas._prior_density.PRIOR_CODES`
        (or ``-1``, Normal; ``-2``, none: computed from other entries) and its two arguments.
    derived : numpy.ndarray
        ``theta``'s entries of a gamma's shape, scale, mean and cv2 where the kernel's shape and scale are
        computed from a sampled mean and cv2; ``-1`` four times otherwise.
    tables : tuple of numpy.ndarray
        The kernel's data tables, those of the graph's likelihood.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    n_dim: int
    kernel: Any
    spans: tuple[tuple[str, int, int], ...]
    kernel_inputs: int
    kind: np.ndarray
    target: np.ndarray
    codes: np.ndarray
    arguments: np.ndarray
    derived: np.ndarray
    tables: tuple[np.ndarray, ...]

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density at ``x`` and its gradient (see :func:`_posterior`)."""
        theta = _inputs(x, self.kind, self.target, len(self.codes), self.derived)
        loglik, gradients = self.kernel(*(theta[lo:hi] for _, lo, hi in self.spans[:self.kernel_inputs]),
                                        *self.tables)
        return _posterior(x, theta, loglik, np.concatenate(gradients), self.kind, self.target, self.codes,
                          self.arguments, self.derived)

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The stored variables at ``x``, by name, in their posterior shapes."""
        theta = _inputs(x, self.kind, self.target, len(self.codes), self.derived)
        spans = {name: (lo, hi) for name, lo, hi in self.spans}
        return {name: theta[slice(*spans[name])].reshape(shape)
                for name, shape in zip(self.names, self.shapes, strict=True)}


def _normal(prior) -> tuple[float, float] | None:
    """``(mu, sigma)`` of a ``Normal`` prior with scalar arguments; None for any other prior."""
    params = prior.parameters
    if prior.distribution != "Normal" or any(np.ndim(v) != 0 for v in params.values()):
        return None
    sigma = params["sigma"] if "sigma" in params else params["tau"] ** -0.5 if "tau" in params else 1.0
    return float(params.get("mu", 0.0)), float(sigma)


def covariate_density(model: Any, graph: pm.Model, var_names: list[str]) -> CovariateDensity | None:
    """The direct log density of a covariate model's graph ``graph``, or None where it does not apply.

    Parameters
    ----------
    model : PooledModel with CovariateEffects
        A model whose class sets ``samples_covariate_density``, without groups, with covariates.
    graph : pymc.Model
        Its PyMC graph for the fitted data (free variables, transforms, the kernel and its tables).
    var_names : list of str
        The stored variables: the parameters and the coefficient vectors.

    Returns
    -------
    CovariateDensity or None
    """
    if not getattr(model, "samples_covariate_density", False):
        return None
    coefficients = model._coefficient_names()
    gamma = getattr(model, "gamma_mean_cv2", None)  # (mean, cv2, shape, scale) names
    sampled = gamma[:2] if gamma else ()
    if (not coefficients or model.grouped
            or sorted(var_names) != sorted([*model.parameter_names, *coefficients, *sampled])):
        return None
    likelihood = summed_likelihood(graph)
    if likelihood is None:
        return None
    kernel, tables = likelihood
    node = graph.potentials[0].owner
    order = (*model.parameter_names, *model.covariate_targets)
    if node.op.n_params != len(order):
        return None
    absent = frozenset(n for n in model.covariate_targets if n not in coefficients)
    inputs = dict(zip(order, node.inputs[:node.op.n_params], strict=True))
    if not all(isinstance(inputs[n], TensorConstant) and inputs[n].data.size == 0 for n in absent):
        return None
    with without_c_code():
        point = graph.initial_point()
    blocks, start = [], 0
    for rv in graph.free_RVs:
        size = int(np.prod(point[graph.rvs_to_values[rv].name].shape))
        block = _block(model, rv.name, graph.rvs_to_transforms.get(rv), start, size)
        if block is None:
            return None
        blocks.append(block)
        start += size
    computed = gamma[2:] if gamma else ()
    covered = [n for b in blocks for n in b.names]
    if sorted(covered) != sorted([*(n for n in order if n not in absent and n not in computed), *sampled]):
        return None
    sizes = {n: len(model.process_covariates[model.covariate_targets[n].process]) for n in coefficients}
    entries = (*order, *sampled)  # theta: the kernel's inputs, then the sampled parameters that are none
    offsets = np.cumsum([0, *(0 if n in absent else sizes.get(n, 1) for n in entries)])
    spans = tuple((n, int(lo), int(hi)) for n, lo, hi in zip(entries, offsets[:-1], offsets[1:], strict=True))
    where, ends = {n: lo for n, lo, _ in spans}, {n: hi for n, _, hi in spans}
    kind, target = np.empty(start, dtype=np.int64), np.zeros((start, 2), dtype=np.int64)
    codes, arguments = np.zeros(offsets[-1], dtype=np.int64), np.zeros((offsets[-1], 2))
    derived = np.array([where[n] for n in (*computed, *sampled)] if gamma else [-1] * 4, dtype=np.int64)
    if gamma:
        codes[derived[:2]] = _DERIVED
    kinds = {"log": LOG, "shapes": SHAPES, "coef": COEF, "coef_pair": COEF_PAIR}
    for block in blocks:
        for name, prior in zip(block.names, block.priors, strict=True):
            lo, hi = where[name], ends[name]
            codes[lo:hi] = prior[0] if block.kind in ("log", "shapes") else _NORMAL
            arguments[lo:hi] = prior[1:] if block.kind in ("log", "shapes") else prior
        kind[block.start:block.start + block.size] = kinds[block.kind]
        if block.kind == "coef_pair":  # coordinates (difference, mean) per covariate, row by row
            for k in range(block.size // 2):
                target[block.start + 2 * k:block.start + 2 * k + 2] = (where[block.names[0]] + k,
                                                                       where[block.names[1]] + k)
        elif block.kind == "shapes":
            target[block.start:block.start + 2] = (where[block.names[0]], where[block.names[1]])
        else:
            target[block.start:block.start + block.size, 0] = where[block.names[0]] + np.arange(block.size)
    shapes = tuple((sizes[n],) if n in sizes else () for n in var_names)
    return CovariateDensity(tuple(var_names), shapes, start, kernel, spans, len(order), kind, target, codes,
                            arguments, derived, tables)


def _block(model: Any, name: str, transform: Any, start: int, size: int) -> Block | None:
    """The :class:`Block` of the free variable ``name``; None where it is none of the kinds covered."""
    gamma = getattr(model, "gamma_mean_cv2", None)
    parameters = set(model.parameter_names) | set(gamma[:2] if gamma else ())
    coefficients = set(model._coefficient_names())
    if name in parameters and isinstance(transform, LogTransform) and size == 1:
        prior = differentiated_prior(model.priors[name])
        return None if prior is None else Block("log", (name,), start, size, (prior,))
    kind, pairs = None, []
    if isinstance(transform, MeanConcentration) and size == 2:
        kind, pairs = "shapes", [p for p in getattr(model, "beta_pairs", ()) if name == "_".join(p)]
        if pairs and not set(pairs[0]) <= parameters:
            return None
    elif isinstance(transform, DifferenceAndMean):
        kind, pairs = "coef_pair", [p for p in model._sampled_pairs() if name == "_".join(p)]
    elif transform is None and name in coefficients:
        prior = _normal(model.priors[name])
        return None if prior is None else Block("coef", (name,), start, size, (prior,))
    if not pairs:
        return None
    convert = differentiated_prior if kind == "shapes" else _normal
    priors = tuple(convert(model.priors[n]) for n in pairs[0])
    if any(p is None for p in priors):
        return None
    return Block(kind, tuple(pairs[0]), start, size, priors)
