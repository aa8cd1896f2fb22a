"""Evaluate an expensive function of data columns once per distinct row of those columns.

Infinite-horizon quantities given alive depend on a history only through a few
columns (the GGom/NBD and Pareto/NBD through ``T``, the BG/NBD through ``(x, T)``),
which repeat across customers; for parameters that vary along leading axes only
(one set per draw), the function is evaluated on the distinct rows and the
result expanded.
"""

from __future__ import annotations

import numpy as np

__all__ = ["per_distinct"]


def per_distinct(fn, columns, params):
    """``fn(*columns, *params)``, computed once per distinct row of ``columns`` where possible.

    Parameters
    ----------
    fn : callable
        Broadcasting function of the columns and the parameters.
    columns : sequence of array_like
        Data columns of one shape ``(rows,)``.
    params : sequence of array_like
        Scalars or arrays of shape ``(..., 1)``; otherwise no rows are merged.

    Returns
    -------
    numpy.ndarray
        ``fn`` broadcast to ``(..., rows)``.
    """
    columns = [np.asarray(c, dtype=float) for c in columns]
    shape = columns[0].shape
    if not (len(shape) == 1 and all(c.shape == shape for c in columns)
            and all(np.ndim(p) == 0 or np.shape(p)[-1] == 1 for p in params)):
        return fn(*columns, *params)
    table, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    return fn(*table.T, *params)[..., inverse.ravel()]
