"""Array namespaces that let one formula run on NumPy arrays or PyTensor tensors.

Each likelihood is written once, against a small namespace ``xp`` of elementwise
functions. ``PT`` builds a PyTensor graph (for PyMC models and gradients);
``NP`` evaluates on NumPy arrays (for pointwise log-likelihoods and predictions
over posterior draws).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor.gradient
import pytensor.tensor as pt
from scipy import special

__all__ = ["NP", "PT", "discounted_increments", "gauss_legendre"]

NP = SimpleNamespace(
    name="numpy",
    asarray=lambda x: np.asarray(x, dtype=float),
    log=np.log,
    log1p=np.log1p,
    exp=np.exp,
    expm1=np.expm1,
    sqrt=np.sqrt,
    abs=np.abs,
    maximum=np.maximum,
    minimum=np.minimum,
    where=np.where,
    clip=np.clip,
    gammaln=special.gammaln,
    softplus=lambda x: np.logaddexp(0.0, x),
    sigmoid=special.expit,
    logsumexp=lambda x, axis=-1: special.logsumexp(x, axis=axis),
    zero_grad=lambda x: x,
)

PT = SimpleNamespace(
    name="pytensor",
    asarray=lambda x: pt.as_tensor_variable(x, dtype="float64") if not isinstance(x, pt.TensorVariable) else x,
    log=pt.log,
    log1p=pt.log1p,
    exp=pt.exp,
    expm1=pt.expm1,
    sqrt=pt.sqrt,
    abs=pt.abs,
    maximum=pt.maximum,
    minimum=pt.minimum,
    where=pt.where,
    clip=pt.clip,
    gammaln=pt.gammaln,
    softplus=pt.softplus,
    sigmoid=pt.sigmoid,
    logsumexp=lambda x, axis=-1: pt.logsumexp(x, axis=axis),
    zero_grad=pytensor.gradient.zero_grad,
)


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights mapped to the unit interval [0, 1].

    Parameters
    ----------
    n : int
        Number of nodes; the rule is exact for polynomials of degree ``2n - 1``.

    Returns
    -------
    nodes, weights : numpy.ndarray
        Arrays of length ``n`` with ``sum(weights) == 1``.
    """
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


def discounted_increments(expectation, ends, factors):
    """``sum_k factors[k] (expectation(ends[k]) - expectation(ends[k-1]))`` with ``expectation(ends[-1]) = 0``.

    The present value of a cumulative expectation (purchases up to each horizon),
    its increment in period ``k`` discounted by ``factors[k]``.
    """
    total, previous = 0.0, 0.0
    for end, factor in zip(ends, factors, strict=True):
        cumulative = expectation(end)
        total = total + factor * (cumulative - previous)
        previous = cumulative
    return total
