"""Summed log-likelihoods: a data set's total log-likelihood and its gradient in one compiled pass.

NUTS needs the total log-likelihood and its gradient in the population
parameters, not one term per customer. Each model family's formula module
writes that total as a numba kernel over *tables* of the data, built once when
the model is built:

- data-only quantities are computed once, never per gradient;
- a term that depends on the parameters through one data column (``gammaln(r + x)``
  through ``x``, ``log(alpha + T)`` through ``T``) is evaluated once per distinct
  value of that column within a group, and the table carries the summed weights
  of the rows that share it;
- only the terms that couple the parameters with a whole history are evaluated
  per distinct history.

The kernels return the exact gradient with the value (derived by hand in each
formula module, tested against finite differences and against PyTensor's
automatic derivative of the per-customer formulas). :class:`SummedLoglikOp`
puts a kernel into a PyTensor graph, so that PyMC adds the priors and the
transforms and every sampler and optimiser sees one log density.

Parameters are vectors over groups (length 1 without groups); every table
entry records the group it belongs to.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT
from bayesclv.formulas._ops import PT

__all__ = ["SummedLoglikOp", "Table", "digamma", "distinct", "lbeta", "softplus_and_sigmoid", "summed_loglik_function",
           "summed_total", "unique_rows", "weighted_rows"]


class Table(NamedTuple):
    """Distinct ``(group, value)`` pairs of a data column and each row's index into them.

    Attributes
    ----------
    group : numpy.ndarray of int64
        Group code of each entry.
    value : numpy.ndarray of float64
        The distinct values.
    index : numpy.ndarray of int64
        For every row, the entry it belongs to.
    """

    group: np.ndarray
    value: np.ndarray
    index: np.ndarray

    def total(self, weight: np.ndarray) -> np.ndarray:
        """Sum of ``weight`` (one per row) over the rows of each entry."""
        return np.bincount(self.index, weights=weight, minlength=self.value.size)


def unique_rows(*columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct rows of the columns, sorted by the first column, then the next, ..., and each row's index.

    The result of ``np.unique`` on the stacked columns with ``axis=0``, by one
    ``lexsort`` (``axis=0`` sorts a structured view, several times slower).

    Returns
    -------
    tuple of numpy.ndarray
        Each column's values on the distinct rows, then ``inverse``: row ``i``
        is distinct row ``inverse[i]``.
    """
    columns = [np.asarray(c) for c in columns]
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    new = np.ones(order.size, dtype=bool)
    new[1:] = np.any([c[1:] != c[:-1] for c in ordered], axis=0)
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return (*(np.ascontiguousarray(c[new]) for c in ordered), inverse)


def weighted_rows(weight, group, *columns) -> tuple[np.ndarray, ...]:
    """Distinct ``(group, *columns)`` rows with their total ``weight``, and each group's total weight.

    The tables of a summed kernel whose terms are per distinct history (``group``
    None: one group). Returns the group code and each column on the distinct
    rows, their total weights, and the total weight of each group.
    """
    w = np.asarray(weight, dtype=float)
    g = np.zeros(w.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    *rows, index = unique_rows(g, *(np.asarray(c, dtype=float) for c in columns))
    return (*rows, np.bincount(index, weights=w, minlength=rows[0].size),
            np.bincount(g, weights=w, minlength=int(g.max(initial=0)) + 1))


def distinct(group: np.ndarray, value: np.ndarray) -> Table:
    """The :class:`Table` of ``value`` within ``group`` (both one per row)."""
    groups, values, index = unique_rows(np.asarray(group, dtype=np.int64), np.asarray(value, dtype=float))
    return Table(groups, values, index)


def draw_vectors(params, *histories) -> tuple[tuple[int, ...], list[np.ndarray]] | None:
    """Parameters that vary along draws only, as flat vectors, for draws x histories kernels.

    ``histories`` are arrays of one shape ``(rows,)``; each parameter a scalar
    or of shape ``(..., 1)``. Returns ``(lead, vectors)``: the parameters'
    leading shape and each parameter broadcast to it and flattened (one entry
    per draw); None where the arrays are not laid out so.
    """
    params = [np.asarray(p, dtype=float) for p in params]
    shape = np.shape(histories[0])
    if not (len(shape) == 1 and all(np.shape(h) == shape for h in histories)
            and all(p.ndim == 0 or p.shape[-1] == 1 for p in params)):
        return None
    lead = np.broadcast_shapes(*(p.shape[:-1] if p.ndim else () for p in params))
    # always a fresh writable copy: a broadcast view that needs no copy is read-only, and numba compiles the
    # kernels that take these vectors once per read-only flag
    return lead, [np.broadcast_to(p.reshape(p.shape[:-1]) if p.ndim else p, lead).flatten() for p in params]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def digamma(x):  # pragma: no cover - compiled
    """Digamma function for ``x > 0``: recurrence up to ``x >= 6``, then the asymptotic series.

    The series is truncated after the ``x^-12`` term, whose successor is below
    ``1e-16`` of the result for ``x >= 6``.
    """
    shift = 0.0
    while x < 6.0:
        shift -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))))
    return shift + math.log(x) - 0.5 / x - series


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lbeta(a, b):  # pragma: no cover - compiled
    """``log B(a, b)``."""
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def softplus_and_sigmoid(d):  # pragma: no cover - compiled
    """``log(1 + e^d)`` and its derivative ``1 / (1 + e^-d)``, without overflow."""
    if d > 0.0:
        e = math.exp(-d)
        return d + math.log1p(e), 1.0 / (1.0 + e)
    e = math.exp(d)
    return math.log1p(e), e / (1.0 + e)


def kernel_arguments(params, tables) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A kernel's arguments in the one layout every caller passes: C-contiguous float64 parameters, read-only
    C-contiguous tables.

    Numba compiles a kernel once per argument type, and an array's layout and read-only flag are part of it:
    a graph hands the kernel its tables as read-only constants, a NumPy call as writable arrays, and each
    variant was a separate compilation of the same kernel (1-2 CPU s each, cold;
    ``benchmarks/results/test_suite_time.md``, session 12). The tables are viewed, not copied.
    """
    params = [np.ascontiguousarray(p, dtype=float) for p in params]
    frozen = []
    for table in tables:
        table = np.require(table, requirements="C")
        if table.flags.writeable:
            table = table.view()
            table.flags.writeable = False
        frozen.append(table)
    return params, frozen


def read_only_tables(build):
    """Decorator of a family's table builder: its tables come back read-only (:func:`kernel_arguments`), the
    type they have as a graph's constants, so a kernel called on them directly compiles no second variant."""
    @functools.wraps(build)
    def read_only(*args, **kwargs):
        return tuple(kernel_arguments([], build(*args, **kwargs))[1])
    return read_only


class SummedLoglikOp(Op):
    """PyTensor Op of a summed log-likelihood kernel: outputs the total and its gradient.

    Parameters
    ----------
    kernel : numba dispatcher
        ``kernel(*params, *tables) -> (loglik, grad)`` with each parameter a
        float64 vector over groups and ``grad`` of shape ``(n_params, n_groups)``.
    n_params : int
        Number of leading parameter inputs; the other inputs are the data tables.
    """

    __props__ = ("kernel", "n_params")

    def __init__(self, kernel, n_params: int):
        self.kernel = kernel
        self.n_params = n_params

    def make_node(self, *inputs):
        params = [pt.as_tensor_variable(v, dtype="float64") for v in inputs[:self.n_params]]
        tables = [pt.as_tensor_variable(v) for v in inputs[self.n_params:]]
        outputs = [pt.dscalar()] + [p.type() for p in params]
        return Apply(self, params + tables, outputs)

    def perform(self, node, inputs, outputs):
        params, tables = kernel_arguments(inputs[:self.n_params], inputs[self.n_params:])
        value, grad = self.kernel(*params, *tables)
        outputs[0][0] = np.asarray(value)
        for k in range(self.n_params):
            outputs[k + 1][0] = grad[k]

    def infer_shape(self, node, shapes):
        return [()] + list(shapes[:self.n_params])

    def connection_pattern(self, node):
        n_out = len(node.outputs)
        return [[True] * n_out] * self.n_params + [[False] * n_out] * (len(node.inputs) - self.n_params)

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        return [g * d for d in outputs[1:]] + [disconnected_type() for _ in inputs[self.n_params:]]


@register_funcify_default_op_cache_key(SummedLoglikOp)
def _numba_funcify_summed_loglik(op, node=None, **kwargs):
    """Native numba implementation, for graphs compiled with numba (PyMC's NUTS, ``find_MAP``).

    Without it PyTensor would call :meth:`SummedLoglikOp.perform` in numba object mode.
    """
    kernel = op.kernel
    c = np.ascontiguousarray  # PyTensor types array inputs layout 'A'; the Python callers pass C (kernel_arguments)
    if op.n_params == 2:
        @numba.njit(nogil=True, error_model="numpy")
        def summed_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), *inputs[2:])
            return np.full((), value), grad[0].copy(), grad[1].copy()
    elif op.n_params == 3:
        @numba.njit(nogil=True, error_model="numpy")
        def summed_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), c(inputs[2]), *inputs[3:])
            return np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy()
    elif op.n_params == 4:
        @numba.njit(nogil=True, error_model="numpy")
        def summed_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), c(inputs[2]), c(inputs[3]), *inputs[4:])
            return np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy(), grad[3].copy()
    elif op.n_params == 5:
        @numba.njit(nogil=True, error_model="numpy")
        def summed_loglik(*inputs):  # pragma: no cover - compiled
            value, grad = kernel(c(inputs[0]), c(inputs[1]), c(inputs[2]), c(inputs[3]), c(inputs[4]), *inputs[5:])
            return (np.full((), value), grad[0].copy(), grad[1].copy(), grad[2].copy(), grad[3].copy(),
                    grad[4].copy())
    else:  # pragma: no cover - every kernel has 2 to 5 parameters
        raise NotImplementedError(f"no numba implementation for {op.n_params} parameters")
    return summed_loglik, KERNEL_SOURCE_SALT


def summed_total(kernel, params: list, tables: tuple, xp):
    """Total log-likelihood from ``kernel`` for ``params`` (scalars, or vectors over groups) and ``tables``.

    ``xp=PT``: a PyTensor scalar (:class:`SummedLoglikOp`), whose gradient comes
    from the same compiled pass; scalar parameters (complete pooling) reach the
    kernel as vectors of length 1. ``xp=NP``: a float.
    """
    if xp is PT:
        if params[0].ndim == 0:
            params = [pt.reshape(p, (1,)) for p in params]
        return SummedLoglikOp(kernel, len(params))(*params, *tables)[0]
    params, tables = kernel_arguments([np.atleast_1d(p) for p in params], tables)
    return kernel(*params, *tables)[0]


def summed_loglik_function(kernel, names: tuple[str, ...], family: str):
    """A family's ``summed_loglik(tables, *params, xp=PT)``: :func:`summed_total` of ``kernel`` with its parameters named.

    Every family's summed log-likelihood is the same call on its own kernel; this
    writes it once, with the docstring naming the family and its parameters.

    Parameters
    ----------
    kernel : numba function
        ``kernel(*params, *tables) -> (total, gradient)``, parameters as vectors over groups.
    names : tuple of str
        The parameters, in the kernel's order.
    family : str
        Name of the family in the docstring.

    Returns
    -------
    callable
    """
    listed = ", ".join(names)

    def summed_loglik(tables, *params, xp=PT):
        if len(params) != len(names):
            raise TypeError(f"summed_loglik takes the {family} parameters ({listed}), got {len(params)} values")
        return summed_total(kernel, list(params), tables, xp)

    summed_loglik.__doc__ = f"""Total {family} log-likelihood of the rows of ``loglik_tables``, value and gradient in one pass.

    Parameters
    ----------
    tables : tuple of numpy.ndarray
        From the family's ``loglik_tables``.
    {listed} : TensorVariable or array_like
        Population parameters: scalars, or vectors over the groups of ``tables``.
    xp : namespace, default PT
        ``PT`` for a PyTensor scalar whose gradient comes from the same
        compiled pass, ``NP`` for a float.

    Returns
    -------
    TensorVariable or float
        The weighted sum of the rows' log-likelihoods.
    """
    return summed_loglik
