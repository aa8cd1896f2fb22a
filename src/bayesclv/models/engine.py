"""The chunked prediction engine: a formula for every posterior draw and distinct row, in bounded memory, on every core.

A model hands the engine its likelihood variables' draws (dims ``chain,
draw, ...``), a function giving each row its parameters from a chunk of
those draws, and a *design frame*: one row per distinct history with the
data columns the formulas read plus any columns that change a row's
parameters (group code, covariates, a customer's position among the fitted
latents). The engine

- evaluates a formula ``func(columns, params)`` over chunks of
  :data:`~bayesclv.chunks.CHUNK_ELEMENTS` draw x row elements on a thread per
  core (:meth:`Predictor.evaluate`). While every row fits in one chunk the
  chunks run over draws, so that formulas which share work across rows (the
  Pareto/NBD integrals of one ``x``, the BG/NBD horizon series) share it over
  all of them; random simulations run chunks of rows in order, so a seed
  reproduces them;
- expands values on distinct rows to the customers inside each chunk of
  draws, optionally times a weight on another row set (:meth:`Predictor.expand`),
  so that besides the result no draws x rows array exists at full size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
import xarray as xr

import bayesclv.chunks as chunks
from bayesclv.chunks import map_chunks

__all__ = ["Predictor", "as_dataarray", "compress_rows", "distinct_rows", "gather_rows", "prediction_attrs"]


def compress_rows(df: pd.DataFrame, columns: list[str], weights: np.ndarray | None = None
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique rows of ``columns`` with their multiplicities (``weight``), and each row's index into them.

    Identical customers contribute identical likelihood terms and have identical
    predictions, so they are evaluated once. Sorted, so that neighbouring rows
    share ``x`` (and the chunks of a prediction their integrals). ``weights``
    (one per row of ``df``) counts the customers each row stands for (a table
    already compressed, like the donations data); the default counts each row once.
    """
    grouped = df.groupby(columns, sort=True)
    if weights is None:
        unique = grouped.size().reset_index(name="weight")
    else:
        unique = pd.Series(np.asarray(weights, dtype=float), index=df.index).groupby(
            [df[c] for c in columns], sort=True).sum().reset_index(name="weight")
    unique["weight"] = unique["weight"].astype(float)
    return unique, grouped.ngroup().to_numpy()


def distinct_rows(rows: pd.DataFrame, columns: Sequence[str], data_columns: Sequence[str]
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct ``columns`` of a design frame, within the same values of its other key columns.

    Columns of ``rows`` that are not ``data_columns`` (group code, covariates,
    a customer's position) always stay keys: rows that differ in them have
    different parameters. Returns the distinct rows and each row's index into them.
    """
    keys = [c for c in rows.columns if (c in columns or c not in data_columns) and c != "weight"]
    unique, codes = compress_rows(rows, keys)
    return unique[keys], codes


@numba.njit(cache=True, nogil=True)
def _gather_kernel(out, values, codes, factor, factor_codes, start, stop):  # pragma: no cover - compiled
    """``out[d, i] = values[d, codes[i]]`` (times ``factor[d, factor_codes[i]]`` unless ``factor`` is empty)."""
    for d in range(start, stop):
        if factor.shape[1] == 0:
            for i in range(out.shape[1]):
                out[d, i] = values[d, codes[i]]
        else:
            for i in range(out.shape[1]):
                out[d, i] = values[d, codes[i]] * factor[d, factor_codes[i]]


def gather_rows(values: np.ndarray, codes: np.ndarray, factor: np.ndarray | None = None,
                factor_codes: np.ndarray | None = None) -> np.ndarray:
    """``values[..., codes]`` (times ``factor[..., factor_codes]``), one pass over draw chunks on every core.

    Each thread takes a chunk of draws and writes all customers of each, so a
    draw's row of ``values`` stays in cache (NumPy's fancy indexing, and a
    product of two expanded arrays, are several times slower and make a
    temporary of the full size).
    """
    lead, n = values.shape[:-1], len(codes)
    flat = np.ascontiguousarray(values, dtype=float).reshape(-1, values.shape[-1])
    if factor is None:
        factor_flat, factor_codes = np.empty((flat.shape[0], 0)), np.zeros(0, dtype=np.int64)
    else:
        factor_flat = np.ascontiguousarray(factor, dtype=float).reshape(flat.shape[0], -1)
    out = np.empty((flat.shape[0], n))
    codes, factor_codes = np.asarray(codes, dtype=np.int64), np.asarray(factor_codes, dtype=np.int64)
    map_chunks(lambda start: _gather_kernel(out, flat, codes, factor_flat, factor_codes, start,
                                            min(start + chunks.PASS_DRAWS, len(out))),
               len(out), chunks.PASS_DRAWS)
    return out.reshape(*lead, n)


def prediction_attrs(posterior: xr.Dataset, quantity: str, time_unit: str | None) -> dict[str, Any]:
    """The ``attrs`` of a prediction from ``posterior``: ``quantity``, ``time_unit`` and ``point_estimate``.

    ``point_estimate`` is 1 for a posterior marked as one (a MAP fit) or of a
    single draw, else 0 (an int, not a bool: netCDF files cannot hold bools).
    """
    point = bool(posterior.attrs.get("point_estimate")) or posterior.sizes["chain"] * posterior.sizes["draw"] == 1
    return {"quantity": quantity, "time_unit": time_unit, "point_estimate": int(point)}


def as_dataarray(values: np.ndarray, posterior: xr.Dataset, customer_id: np.ndarray, name: str,
                 quantity: str, time_unit: str | None) -> xr.DataArray:
    """Per-customer draws as a DataArray ``(chain, draw, customer_id)``.

    ``attrs["quantity"]`` ("expectation" or "outcome") tells
    :func:`bayesclv.intervals` whether its interval is credible or predictive,
    ``attrs["point_estimate"]`` whether there is an interval at all (:func:`prediction_attrs`).
    """
    return xr.DataArray(
        values, dims=("chain", "draw", "customer_id"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values, "customer_id": customer_id},
        name=name,
        attrs=prediction_attrs(posterior, quantity, time_unit),
    )


Formula = Callable[[dict[str, np.ndarray], dict[str, Any]], Any]


class Predictor:
    """Evaluates formulas for every posterior draw and row of a design frame.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Draws of the likelihood's variables, each ``(chain, draw, ...)``.
    row_params : callable
        ``row_params(params, rows)``: each row's parameters from ``params``
        (all draws, or a chunk of them flattened to ``(draws, ...)``), shaped
        to broadcast against the rows (last axis).
    data_columns : sequence of str
        The design frame's columns that the formulas read (as ``columns``).
    """

    def __init__(self, params: dict[str, np.ndarray], row_params: Callable, data_columns: Sequence[str]):
        self.params, self.row_params, self.data_columns = params, row_params, tuple(data_columns)
        self.n_chain, self.n_draw = next(iter(params.values())).shape[:2]

    def evaluate(self, func: Formula, rows: pd.DataFrame, dtype=float, parallel: bool = True) -> np.ndarray:
        """``func(columns, params)`` for every draw and row, in chunks -> array ``(chain, draw, row)``.

        ``rows`` is a design frame, possibly with only some of the data
        columns; ``func`` gets those columns and each row's parameters. Pass
        ``parallel=False`` for a ``func`` that draws random numbers.
        """
        n_samples = self.n_chain * self.n_draw
        columns = [c for c in self.data_columns if c in rows.columns]
        values = np.empty((self.n_chain, self.n_draw, len(rows)), dtype=dtype)
        if parallel and len(rows) <= chunks.CHUNK_ELEMENTS:
            cols = {c: rows[c].to_numpy(dtype=float) for c in columns}
            flat = values.reshape(n_samples, len(rows))

            def evaluate_draws(start: int, n_draws: int, chunk: dict[str, np.ndarray]) -> None:
                flat[start:start + n_draws] = func(cols, self.row_params(chunk, rows))

            self._map_draw_chunks(evaluate_draws, len(rows))
            return values
        step = chunks.chunk_length(n_samples)

        def evaluate_chunk(start: int) -> None:
            chunk = rows.iloc[start:start + step]
            cols = {c: chunk[c].to_numpy(dtype=float) for c in columns}
            values[..., start:start + step] = func(cols, self.row_params(self.params, chunk))

        map_chunks(evaluate_chunk, len(rows), step, parallel)
        return values

    def on_distinct(self, func: Formula, rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """``func`` once per distinct ``columns`` of ``rows`` (see :func:`distinct_rows`), expanded to all ``rows``."""
        return self.expand(func, *distinct_rows(rows, columns, self.data_columns))

    def expand(self, func: Formula, rows: pd.DataFrame, codes: np.ndarray,
               weight: tuple[Formula, pd.DataFrame, np.ndarray] | None = None) -> np.ndarray:
        """``func`` on distinct ``rows`` expanded to the output's rows, optionally times a weight.

        Returns an array ``(chain, draw, n)`` with element ``[..., i]`` equal to
        ``func(...)[..., codes[i]]``, times ``weight_func(...)[..., weight_codes[i]]``
        for ``weight = (weight_func, weight_rows, weight_codes)``. While the row
        sets fit in a chunk of draws, each thread evaluates them for its draws
        and expands them at once.
        """
        parts = [(func, rows)] + ([] if weight is None else [weight[:2]])
        weight_codes = np.zeros(0, dtype=np.int64) if weight is None else np.asarray(weight[2], dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        n_rows = max(max(len(r) for _, r in parts), 1)
        if n_rows > chunks.CHUNK_ELEMENTS:
            values = [self.evaluate(f, r) for f, r in parts]
            return gather_rows(values[0], codes, *(values[1:] or [None]), weight_codes if weight else None)
        columns = [{c: r[c].to_numpy(dtype=float) for c in self.data_columns if c in r.columns} for _, r in parts]
        out = np.empty((self.n_chain * self.n_draw, len(codes)))

        def evaluate_draws(start: int, n_draws: int, chunk: dict[str, np.ndarray]) -> None:
            values = [np.ascontiguousarray(np.broadcast_to(f(cols, self.row_params(chunk, r)), (n_draws, len(r))),
                                           dtype=float)
                      for (f, r), cols in zip(parts, columns, strict=True)]
            factor = values[1] if weight is not None else np.empty((n_draws, 0))
            _gather_kernel(out[start:start + n_draws], values[0], codes, factor, weight_codes, 0, n_draws)

        self._map_draw_chunks(evaluate_draws, n_rows)
        return out.reshape(self.n_chain, self.n_draw, len(codes))

    def _map_draw_chunks(self, evaluate_draws: Callable[[int, int, dict[str, np.ndarray]], None], n_rows: int) -> None:
        """Call ``evaluate_draws(start, n_draws, params)`` for chunks of about ``CHUNK_ELEMENTS / n_rows``
        posterior draws (flattened over chains) on every core; ``params`` holds the chunk's draws. At least one
        chunk per core: a formula that costs much per element (a quadrature per draw and row) then keeps every
        core busy even where all the draws fit in one chunk's memory."""
        n_samples = self.n_chain * self.n_draw
        by_sample = {k: v.reshape(n_samples, *v.shape[2:]) for k, v in self.params.items()}
        step = min(chunks.chunk_length(n_rows), -(-n_samples // chunks.available_cpus()))
        map_chunks(lambda start: evaluate_draws(start, min(step, n_samples - start),
                                                {k: v[start:start + step] for k, v in by_sample.items()}),
                   n_samples, step)
