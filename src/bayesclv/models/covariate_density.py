"""A covariate model's log density and gradient without a PyTensor graph: the covariate kernel plus the priors.

The covariate BG/NBD's likelihood is one compiled kernel over the distinct
(history, covariates) rows (:mod:`bayesclv.formulas._covariate_summed`); the
rest of its log density is a few scalars: the priors, the sampling transforms
and their Jacobians. Through the graph a fit compiled that density with PyTensor
(graph rewrites on every fit, about 2 CPU seconds on CDNOW full) and each
gradient passed PyTensor's virtual machine. Here the same density is the kernel
on the graph's own data tables plus the priors and transforms written out below,
so nutpie calls the kernel and a few NumPy operations per gradient and no log
density is compiled (PyMC's small initial-point function only).

The sampling coordinates are the graph's, in its order of free variables, so the
starting points, the whitening and the posterior are those of the graph's fit:

- a positive parameter: its logarithm (PyMC's log transform), any prior of
  :data:`~bayesclv.models.direct_density.DIFFERENTIATED_PRIORS`;
- a pair of beta shapes: mean and concentration (:class:`~bayesclv.models.mean_concentration.MeanConcentration`);
- a coefficient vector with a ``Normal`` prior: itself; a pair of them: their
  difference and mean (:class:`~bayesclv.models.mean_concentration.DifferenceAndMean`).

Any other configuration (groups, other priors, a parameter that is a function of
sampled ones, as the Pareto/NBD's ``s, beta``) gives None and is sampled through
the graph. ``tests/test_covariate_density.py`` compares value and gradient with
PyMC's compiled ``logp``/``dlogp`` of the graph.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pymc as pm
from pymc.logprob.transforms import LogTransform
from pytensor.tensor.variable import TensorConstant

from bayesclv.models.direct_density import _log_prior, _summed_likelihood, differentiated_prior, without_c_code
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


class CovariateDensity(NamedTuple):
    """The log density of a covariate model in the graph's sampling coordinates (see the module docstring).

    Attributes
    ----------
    names, shapes : tuple
        The stored variables (the published parameters and the coefficient vectors) and their shapes.
    n_dim : int
        Length of the flat coordinate vector.
    blocks : tuple of Block
        The coordinates, in the graph's order of free variables.
    kernel : numba function
        ``kernel(*params, *coefs, *tables) -> (total, gradients)``.
    order : tuple of str
        The kernel's inputs by name; ``absent`` those fixed at length 0 (a process without covariates).
    tables : tuple of numpy.ndarray
        The kernel's data tables, those of the graph's likelihood.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    n_dim: int
    blocks: tuple[Block, ...]
    kernel: Any
    order: tuple[str, ...]
    absent: frozenset[str]
    tables: tuple[np.ndarray, ...]

    def _values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The kernel's inputs at ``x`` (positive parameters as length-1 vectors, the kernel's shape)."""
        out = {name: np.zeros(0) for name in self.absent}
        for block in self.blocks:
            part = x[block.start:block.start + block.size]
            if block.kind == "log":
                out[block.names[0]] = np.exp(part)
            elif block.kind == "shapes":  # a = e^w sigmoid(u), b = e^w sigmoid(-u)
                u, w = part
                out[block.names[0]] = np.exp([w - np.logaddexp(0.0, -u)])
                out[block.names[1]] = np.exp([w - np.logaddexp(0.0, u)])
            elif block.kind == "coef":
                out[block.names[0]] = part.copy()
            else:  # (difference, mean) per covariate
                pairs = part.reshape(-1, 2)
                out[block.names[0]] = pairs[:, 1] + 0.5 * pairs[:, 0]
                out[block.names[1]] = pairs[:, 1] - 0.5 * pairs[:, 0]
        return out

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density (likelihood, priors, log-Jacobians) at ``x`` and its gradient; ``-inf`` and zeros where
        anything is not finite (the sampler rejects the step as a divergence)."""
        with np.errstate(all="ignore"):
            values = self._values(x)
            total, gradients = self.kernel(*(values[n] for n in self.order), *self.tables)
            slope = dict(zip(self.order, gradients, strict=True))  # d loglik / d input
            grad = np.empty(self.n_dim)
            for block in self.blocks:
                lo, hi = block.start, block.start + block.size
                if block.kind in ("log", "shapes"):
                    theta = [float(values[n][0]) for n in block.names]
                    g = []
                    for name, value, prior in zip(block.names, theta, block.priors, strict=True):
                        density, prior_slope = _log_prior(int(prior[0]), prior[1], prior[2], value)
                        total += density + np.log(value)  # prior and the log-Jacobian of log theta
                        g.append(value * (float(slope[name][0]) + prior_slope))  # d / d log theta
                    if block.kind == "log":
                        grad[lo] = g[0] + 1.0
                    else:  # log a = w - softplus(-u), log b = w - softplus(u): d/du sigmoid(-u), -sigmoid(u)
                        up, down = _sigmoid(x[lo]), _sigmoid(-x[lo])
                        grad[lo] = g[0] * down - g[1] * up + down - up
                        grad[lo + 1] = g[0] + g[1] + 2.0
                    continue
                parts = []
                for name, (mu, sigma) in zip(block.names, block.priors, strict=True):
                    c = values[name]
                    total += float(np.sum(-0.5 * ((c - mu) / sigma) ** 2)) - c.size * (_LOG_SQRT_2PI + math.log(sigma))
                    parts.append(slope[name] - (c - mu) / sigma ** 2)
                if block.kind == "coef":
                    grad[lo:hi] = parts[0]
                else:  # d/d difference = (g1 - g2) / 2, d/d mean = g1 + g2
                    pairs = grad[lo:hi].reshape(-1, 2)
                    pairs[:, 0] = 0.5 * (parts[0] - parts[1])
                    pairs[:, 1] = parts[0] + parts[1]
            total = float(total)
        if not (math.isfinite(total) and np.isfinite(grad).all()):
            return -np.inf, np.zeros(self.n_dim)
        return total, grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The stored variables at ``x``, by name, in their posterior shapes."""
        values = self._values(x)
        return {name: np.asarray(values[name], dtype=float).reshape(shape)
                for name, shape in zip(self.names, self.shapes, strict=True)}


def _sigmoid(u: float) -> float:
    """``1 / (1 + e^-u)`` without overflow."""
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


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
    if (not coefficients or model.grouped or sorted(var_names) != sorted([*model.parameter_names, *coefficients])):
        return None
    likelihood = _summed_likelihood(graph)
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
    covered = [n for b in blocks for n in b.names]
    if sorted(covered) != sorted(n for n in order if n not in absent):
        return None
    sizes = {n: len(model.process_covariates[model.covariate_targets[n].process]) for n in coefficients}
    shapes = tuple((sizes[n],) if n in sizes else () for n in var_names)
    return CovariateDensity(tuple(var_names), shapes, start, tuple(blocks), kernel, order, absent, tables)


def _block(model: Any, name: str, transform: Any, start: int, size: int) -> Block | None:
    """The :class:`Block` of the free variable ``name``; None where it is none of the kinds covered."""
    parameters, coefficients = set(model.parameter_names), set(model._coefficient_names())
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
