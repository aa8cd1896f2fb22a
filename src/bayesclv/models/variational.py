"""Minibatch ADVI for models with per-customer latent variables (stochastic variational inference).

PyMC's ADVI evaluates every customer at every step, and its minibatch
support scales observed data only: a model with a latent rate per customer
(:mod:`bayesclv.models.hierarchical`) needs the latent variables of the batch
to be the only ones touched. This module fits a Gaussian approximation on
the unconstrained space,

    q = prod_g N(mean_g, sd_g^2)  x  prod_i N(mean_i, L_i L_i^T),

``g`` over the global (population) coordinates and ``i`` over the customers,
each with a full-rank Gaussian over its own ``k`` local coordinates
(``L_i`` lower triangular): a customer's purchase and dropout latents are
strongly correlated a posteriori (a customer without repeat purchases is
either a slow buyer or gone), and a diagonal ``L_i`` biased the population
correlation towards 0. The fit is by stochastic gradient ascent on the
evidence lower bound (Hoffman, Blei, Wang & Paisley 2013; Titsias &
Lazaro-Gredilla 2014). Each step takes a batch ``b`` of ``B`` of the ``N`` customers
(contiguous in one random order of the customers, the batches visited in a
new random order every epoch; unless ``B`` divides ``N`` the last batch
overlaps the one before, and the customers in the overlap are in two batches
an epoch: with ``N = 2100``, ``B = 2000`` 200 customers weigh twice as much
as the others in the global gradient; choose ``B`` dividing ``N``, or
small against it) and one reparameterised draw
``theta = mean + L eps`` and uses

    ELBO_hat = log p(globals) + N/B sum_{i in b} [log p(locals_i | globals) + log p(y_i | locals_i)]
               + sum log sd + sum_i log det L_i  (the entropy, up to a constant)

whose gradient is unbiased for the global parameters. A customer's own
terms are the only ones holding its local coordinates, so their gradient
(without the factor ``N/B``) updates that customer's parameters exactly as
full-batch ADVI would. Both use Adam with step sizes decaying as
``(1 + 10 t / steps)^-1/2``; each customer keeps its own moment estimates and
step count, advanced when it is in the batch. The parameters returned are
their averages over the last tenth of the steps (a customer's over its
visits in that tenth).

The model is the PyMC model of one batch: its per-customer inputs are data
containers with dim ``customer_id``, swapped for each batch, so the graph is
compiled once and costs ``O(B)`` per step whatever ``N``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from bayesclv.progress import Progress

_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8
_LOCAL_INITIAL_SD = 0.5  # of each customer's coordinates before the first step
_GLOBAL_INITIAL_SD = 0.1
_DECAY = 10.0  # step sizes fall as (1 + _DECAY step / steps)^-1/2
_MODE = "NUMBA"  # compiled functions: numba, as the individual-level models' NUTS (no BLAS needed)
#: converged when the mean ELBO of the last tenth of the steps exceeds that of the tenth before by
#: less than this per customer (nats); calibrated on simulated customers, where a rise of 0.02 still
#: left the population correlation far off and 0.002 recovered every hyperparameter
#: (validation/results/design_measurements.md)
_CONVERGED_RISE = 0.005


@dataclass
class Approximation:
    """The fitted ``q``: per global value variable a mean and log-sd of its shape; per customer a
    mean ``(customers, k)`` over the ``k`` local variables and the factor ``L`` as its log-diagonal
    ``(customers, k)`` and strict lower triangle ``(customers, k (k - 1) / 2)``, row by row."""

    global_mean: dict[str, np.ndarray]
    global_log_sd: dict[str, np.ndarray]
    local: tuple[str, ...]
    local_mean: np.ndarray
    local_log_diag: np.ndarray
    local_lower: np.ndarray
    elbo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batches: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: largest change of a global mean between the averages over the last two tenths of the steps (see
    #: :func:`_drift`): reported, not a convergence check. Along a flat ridge of the ELBO the parameters
    #: move with almost no rise, but runs that recover a simulated truth show drifts of a few sds too
    drift: float = float("inf")

    def sample(self, draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``draws`` draws of every value variable, each ``(draws, *shape)`` (local: ``(draws, customers)``)."""
        out = {name: mean + np.exp(self.global_log_sd[name]) * rng.standard_normal((draws, *mean.shape))
               for name, mean in self.global_mean.items()}
        eps = rng.standard_normal((draws, *self.local_mean.shape))
        point = _local_point(self.local_mean, self.local_log_diag, self.local_lower, eps, out=eps)
        out.update({name: point[..., j] for j, name in enumerate(self.local)})
        return out


def _lower_pairs(k: int) -> list[tuple[int, int]]:
    """``(row, column)`` of the strict lower triangle of a ``k x k`` factor, row by row."""
    return [(a, b) for a in range(k) for b in range(a)]


def _local_point(mean, log_diag, lower, eps, out=None):
    """``mean + L eps`` per customer (last axis: the local variables; ``eps`` may have leading draws).

    Written into ``out`` (a new array by default), which may be ``eps`` itself:
    the columns are computed last first, each reading the ``eps`` of the
    columns before it, so sampling needs no second array of draws x customers.
    """
    out = np.empty(np.broadcast_shapes(mean.shape, eps.shape)) if out is None else out
    pairs = _lower_pairs(mean.shape[-1])
    for a in reversed(range(mean.shape[-1])):
        column = mean[..., a] + np.exp(log_diag[..., a]) * eps[..., a]
        for p, (row, b) in enumerate(pairs):
            if row == a:
                column += lower[..., p] * eps[..., b]
        out[..., a] = column
    return out


class _Adam:
    """Adam ascent on a set of arrays, in place; ``rows`` (a slice) restricts a step to some rows, each
    with its own step count."""

    def __init__(self, arrays: dict[str, np.ndarray], learning_rate: float, per_row: bool):
        self.learning_rate = learning_rate
        self.m = {k: np.zeros_like(v) for k, v in arrays.items()}
        self.v = {k: np.zeros_like(v) for k, v in arrays.items()}
        first = next(iter(arrays.values()))
        self.t = np.zeros(len(first)) if per_row else np.zeros(())

    def step(self, arrays: dict[str, np.ndarray], grads: dict[str, np.ndarray], rows=Ellipsis,
             factor: float = 1.0) -> None:
        self.t[rows] += 1.0
        t = self.t[rows]
        step_size = factor * self.learning_rate * np.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        for k, g in grads.items():
            m, v = self.m[k][rows], self.v[k][rows]  # views: updated in place
            m *= _ADAM_BETA1
            m += (1.0 - _ADAM_BETA1) * g
            v *= _ADAM_BETA2
            v += (1.0 - _ADAM_BETA2) * g * g
            size = step_size[:, None] if np.ndim(step_size) == 1 and g.ndim == 2 else step_size
            arrays[k][rows] += size * m / (np.sqrt(v) + _ADAM_EPS)


def _compile_gradients(model: pm.Model, local: list[str]):
    """Function of (value variables..., scale) -> (global logp, local logp, gradient of
    ``global + scale * local`` in each value variable), with ``local`` the local free variables."""
    local_rvs = [model[name] for name in local]
    global_rvs = [rv for rv in model.free_RVs if rv.name not in local]
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    global_logp = model.logp(vars=global_rvs)
    local_logp = model.logp(vars=local_rvs + list(model.potentials) + list(model.observed_RVs))
    scale = pt.scalar("scale")
    grads = pt.grad(global_logp + scale * local_logp, values)
    return pytensor.function([*values, scale], [global_logp, local_logp, *grads], on_unused_input="ignore",
                             mode=_MODE), \
        [v.name for v in values]


def _value_of(model: pm.Model, rv):
    """``rv`` on the unconstrained scale of its value variable (a graph of the prior draw)."""
    transform = model.rvs_to_transforms.get(rv)
    return rv if transform is None else transform.forward(rv, *rv.owner.inputs)


def fit_minibatch_advi(model: pm.Model, customer_data: dict[str, np.ndarray], *, steps: int, batch_size: int,
                       learning_rate: float = 0.01, local_learning_rate: float = 0.05,
                       random_seed: int | None = None, progressbar: bool = True) -> Approximation:
    """Fit the approximation by minibatch ADVI; see the module docstring.

    Parameters
    ----------
    model : pymc.Model
        The model of one batch of ``batch_size`` customers: every free variable
        with dim ``customer_id`` is local (one value per customer), and
        ``customer_data`` names its per-customer data containers.
    customer_data : dict of str to numpy.ndarray
        Each data container's values for all ``N`` customers (first axis).
    steps : int
        Optimisation steps (each one batch).
    batch_size : int
        Customers per step (the model's ``customer_id`` length).
    learning_rate, local_learning_rate : float
        Adam step sizes of the global and of the per-customer parameters.
    random_seed : int, optional
        Seed of the batches and of the reparameterisation draws.
    progressbar : bool, default True
        Print the step and the running mean ELBO every 5% of the steps.

    Returns
    -------
    Approximation
        With ``elbo`` the per-step ELBO estimates (up to a constant) and
        ``batches`` each step's batch (an index).
    """
    n_customers = len(next(iter(customer_data.values())))
    if not 0 < batch_size <= n_customers:
        raise ValueError(f"batch_size must be from 1 to the number of customers ({n_customers}), got {batch_size}")
    local = [rv.name for rv in model.free_RVs if "customer_id" in model.named_vars_to_dims.get(rv.name, ())]
    fn, value_names = _compile_gradients(model, local)
    local_values = [model.rvs_to_values[model[name]].name for name in local]
    global_names = [n for n in value_names if n not in local_values]
    # the global means start at 0 on the unconstrained scale: the prior centre of the models' location
    # parameters, a scale of 1, an identity Cholesky factor
    shapes = pytensor.function([], [_value_of(model, rv).shape for rv in model.free_RVs
                                    if model.rvs_to_values[rv].name in global_names], mode=_MODE)()
    k = len(local_values)
    pairs = _lower_pairs(k)
    glob = {**{f"mean:{n}": np.zeros(tuple(shape)) for n, shape in zip(global_names, shapes, strict=True)},
            **{f"log_sd:{n}": np.full(tuple(shape), np.log(_GLOBAL_INITIAL_SD))
               for n, shape in zip(global_names, shapes, strict=True)}}
    loc = {"mean": np.zeros((n_customers, k)), "log_diag": np.full((n_customers, k), np.log(_LOCAL_INITIAL_SD)),
           "lower": np.zeros((n_customers, len(pairs)))}
    global_adam = _Adam(glob, learning_rate, per_row=False)
    local_adam = _Adam(loc, local_learning_rate, per_row=True)
    shared = {name: model[name] for name in customer_data}
    rng = np.random.default_rng(random_seed)
    # customers in one random order, batches contiguous in it (views, no gathers), visited in a new
    # random order every epoch; the last batch ends at the last customer (overlapping the one before)
    order = rng.permutation(n_customers)
    customer_data = {name: np.asarray(values, dtype=shared[name].dtype)[order]
                     for name, values in customer_data.items()}
    starts = np.minimum(np.arange(0, n_customers, batch_size), n_customers - batch_size)
    scale = n_customers / batch_size
    epoch = []
    elbo, batches = np.empty(steps), np.empty(steps, dtype=np.int64)
    local_entropy = float(loc["log_diag"].sum())
    progress = Progress("minibatch ADVI", progressbar, timed=False, stream=sys.stdout)
    every = max(steps // 20, 1)  # progress every 5% of the steps
    # iterate averaging (Polyak & Juditsky 1992): the parameters jitter by about the step size from
    # step to step, for the global ones comparable to their posterior sd on large data
    window = max(steps // 10, 1)
    average_from = steps - window
    averaged = {key: np.zeros_like(value) for key, value in glob.items()}
    averaged_before = {key: np.zeros_like(value) for key, value in glob.items()}  # the tenth before
    averaged_square = {key: np.zeros_like(value) for key, value in glob.items()}
    local_averaged, visits = {key: value.copy() for key, value in loc.items()}, np.zeros(n_customers)
    for step in range(steps):
        if not epoch:
            epoch = list(rng.permutation(len(starts)))
        batches[step] = epoch.pop()
        first = int(starts[batches[step]])
        batch = slice(first, first + batch_size)
        for name, values in customer_data.items():
            shared[name].set_value(values[batch])
        eps = {n: rng.standard_normal(np.shape(glob[f"mean:{n}"])) for n in global_names}
        sd = {n: np.exp(glob[f"log_sd:{n}"]) for n in global_names}
        local_eps = rng.standard_normal((batch_size, k))
        diag = np.exp(loc["log_diag"][batch])
        local_point = _local_point(loc["mean"][batch], loc["log_diag"][batch], loc["lower"][batch], local_eps)
        point = {**{n: glob[f"mean:{n}"] + sd[n] * eps[n] for n in global_names},
                 **{n: local_point[:, j] for j, n in enumerate(local_values)}}
        global_logp, local_logp, *grads = fn(*(point[n] for n in value_names), scale)
        global_entropy = sum(float(glob[f"log_sd:{n}"].sum()) for n in global_names)
        elbo[step] = float(global_logp) + scale * float(local_logp) + global_entropy + local_entropy
        grad = dict(zip(value_names, grads, strict=True))
        # Robbins-Monro decay of both step sizes: to a third of the start over the run
        factor = (1.0 + _DECAY * step / steps) ** -0.5
        global_adam.step(glob, {**{f"mean:{n}": grad[n] for n in global_names},
                                **{f"log_sd:{n}": grad[n] * eps[n] * sd[n] + 1.0 for n in global_names}},
                         factor=factor)
        # each customer's own terms: the gradient without the N/B factor
        own = np.column_stack([grad[n] for n in local_values]) / scale
        before = float(loc["log_diag"][batch].sum())
        local_adam.step(loc, {"mean": own, "log_diag": own * local_eps * diag + 1.0,
                              "lower": np.column_stack([own[:, a] * local_eps[:, b] for a, b in pairs])
                              if pairs else np.zeros((batch_size, 0))}, rows=batch, factor=factor)
        local_entropy += float(loc["log_diag"][batch].sum()) - before
        if average_from - window <= step < average_from:
            for key, value in glob.items():
                averaged_before[key] += (value - averaged_before[key]) / (step - average_from + window + 1)
        if step >= average_from:  # every parameter averaged over the last tenth of the steps
            for key, value in glob.items():
                averaged[key] += (value - averaged[key]) / (step - average_from + 1)
                averaged_square[key] += (value * value - averaged_square[key]) / (step - average_from + 1)
            visits[batch] += 1.0
            for key, value in loc.items():
                local_averaged[key][batch] += (value[batch] - local_averaged[key][batch]) / visits[batch, None]
        if (step + 1) % every == 0:
            recent = float(np.mean(elbo[max(0, step + 1 - every):step + 1]))
            progress(f"step {step + 1}/{steps}, mean ELBO {recent:.6g}")
    # a customer whose batch was not in the last tenth keeps its last values
    unvisited = visits == 0
    unshuffled = {key: np.empty_like(value) for key, value in local_averaged.items()}
    for key, value in local_averaged.items():
        value[unvisited] = loc[key][unvisited]
        unshuffled[key][order] = value
    return Approximation(
        global_mean={n: averaged[f"mean:{n}"] for n in global_names},
        global_log_sd={n: averaged[f"log_sd:{n}"] for n in global_names},
        local=tuple(local_values), local_mean=unshuffled["mean"], local_log_diag=unshuffled["log_diag"],
        local_lower=unshuffled["lower"], elbo=elbo, batches=batches,
        drift=_drift(averaged, averaged_before, averaged_square, global_names) if steps >= 2 * window
        else float("inf"))


def _drift(averaged, averaged_before, averaged_square, names) -> float:
    """Largest change of a global mean between the last two tenths of the steps, in units of the larger of
    its sd in the approximation and the sd of its iterates over the last tenth (the optimiser's jitter,
    which does not shrink with more customers as the approximation's sd does)."""
    out = 0.0
    for n in names:
        mean, before = averaged[f"mean:{n}"], averaged_before[f"mean:{n}"]
        jitter = np.sqrt(np.maximum(averaged_square[f"mean:{n}"] - mean**2, 0.0))
        scale = np.maximum(np.exp(averaged[f"log_sd:{n}"]), jitter)
        out = max(out, float(np.max(np.abs(mean - before) / scale, initial=0.0)))
    return out


def elbo_converged(elbo: np.ndarray, batches: np.ndarray, n_customers: int) -> tuple[bool, float]:
    """Whether the ELBO has stopped rising: the last tenth of the steps against the tenth before.

    Each step's estimate depends on which customers its batch holds, by far
    more than the rise near the end, so each batch is compared with
    itself: the rise is the mean over batches (``batches``: each step's batch)
    of its mean estimate in the last tenth minus that in the tenth before,
    per customer (nats). Converged when its size is below ``_CONVERGED_RISE``
    (a falling ELBO, from too large steps, is not); not when no batch is in
    both windows.

    Returns
    -------
    tuple
        ``(converged, rise)``.
    """
    window = max(len(elbo) // 10, 1)
    last, before = slice(len(elbo) - window, None), slice(len(elbo) - 2 * window, len(elbo) - window)
    if len(elbo) < 2 * window:
        return False, float("nan")
    size = int(batches.max()) + 1

    def per_batch(part):
        counts = np.bincount(batches[part], minlength=size)
        return np.bincount(batches[part], weights=elbo[part], minlength=size) / np.maximum(counts, 1), counts > 0

    (mean_last, seen_last), (mean_before, seen_before) = per_batch(last), per_batch(before)
    both = seen_last & seen_before
    if not both.any():
        return False, float("nan")
    rise = float(np.mean(mean_last[both] - mean_before[both])) / n_customers
    return bool(abs(rise) < _CONVERGED_RISE), rise


def approximation_posterior(model: pm.Model, approx: Approximation, draws: int, deterministics: tuple[str, ...],
                            rng: np.random.Generator) -> xr.Dataset:
    """``draws`` draws of ``approx`` as a one-chain posterior of ``model`` (the model of all customers).

    Holds every free variable on its own (constrained) scale and the named
    ``deterministics`` of the global variables, dims ``(chain, draw, ...)``.
    """
    values = approx.sample(draws, rng)
    global_rvs = [rv for rv in model.free_RVs if model.rvs_to_values[rv].name in approx.global_mean]
    inputs = [model.rvs_to_values[rv] for rv in global_rvs]
    outputs = global_rvs + [model[name] for name in deterministics if model[name] not in global_rvs]
    constrained = pytensor.function(inputs, model.replace_rvs_by_values(outputs), on_unused_input="ignore")
    per_draw = [constrained(*(values[v.name][d] for v in inputs)) for d in range(draws)]
    names = [v.name for v in outputs]
    arrays = {name: np.stack([row[j] for row in per_draw]) for j, name in enumerate(names)}
    rv_of_value = {model.rvs_to_values[rv].name: rv.name for rv in model.free_RVs}
    arrays.update({rv_of_value[n]: values[n] for n in approx.local})  # local variables are untransformed

    def dims(name: str, array: np.ndarray) -> tuple[str, ...]:
        named = model.named_vars_to_dims.get(name)
        return ("chain", "draw", *(named or (f"{name}_dim_{i}" for i in range(array.ndim - 1))))

    coords = {k: np.asarray(v) for k, v in model.coords.items()}
    return xr.Dataset({name: (dims(name, a), a[None]) for name, a in arrays.items()},
                      coords={"chain": [0], "draw": np.arange(draws), **{
                          k: v for k, v in coords.items() if any(k in dims(n, a) for n, a in arrays.items())}})
