"""Predictions and RFM summaries for millions of customers, in bounded memory, on one machine or a Dask cluster.

A posterior prediction has dims ``(chain, draw, customer_id)``: 4,000 draws for
10 million customers would be 320 GB. Everything here works on **blocks of
customers** instead, so memory is bounded by the block size, not by the number
of customers:

* :func:`predict_summary` / :func:`clv_summary`: per-customer posterior
  summaries (``mean, sd, lower, upper``) of any prediction method or of CLV,
  streamed block by block. Customers with identical histories (for every
  model involved) have identical posteriors: each distinct history is
  predicted and summarised once, in blocks sorted by history, and its
  summary copied to its customers.
* :func:`predict` / :func:`predict_clv`: the draws themselves as a lazy,
  dask-backed :class:`xarray.DataArray` chunked along ``customer_id`` (reduce
  or store it, e.g. ``.to_zarr``, without ever holding it whole).
* The same calls take a **dask DataFrame** (e.g. ``dd.read_parquet`` of an RFM
  table) and then return lazy dask results computed partition by partition on
  whatever Dask scheduler is active: the local threads, or a
  ``dask.distributed`` cluster once a ``Client`` is connected. No other code
  change: ``bayesclv.rfm_summary`` accepts a dask DataFrame of transactions
  the same way (:func:`bayesclv.data.dask.rfm_summary_dask`).

Each block is predicted by a copy of the model that holds only its posterior
(:func:`prediction_copy`), sent to each worker once. Blocks hold
:data:`bayesclv.chunks.BLOCK_ELEMENTS` draws x customers; the model's own
prediction engine chunks inside them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import bayesclv.chunks as chunks
from bayesclv.arguments import check_whole
from bayesclv.clv import customer_lifetime_value
from bayesclv.data.dask import is_dask_collection, require_dask
from bayesclv.data.validation import check_columns, to_pandas
from bayesclv.models.engine import compress_rows
from bayesclv.summaries import (
    collapses,
    interval_kind,
    interval_label,
    interval_settings,
    is_point_estimate,
    summary_arrays,
    thin_posterior,
    warn_point_estimate,
)

__all__ = [
    "clv_summary",
    "predict",
    "predict_clv",
    "predict_summary",
    "prediction_copy",
    "summarise",
]

SUMMARY_COLUMNS = ("mean", "sd", "lower", "upper")


# --------------------------------------------------------------------------- helpers
def prediction_copy(model: Any, draws: int | None = None) -> Any:
    """A copy of a fitted model that holds only what predictions need.

    The fit data are dropped (predictions always get their data passed), so
    the copy is small enough to ship to every worker of a cluster.

    Parameters
    ----------
    model : bayesclv.models.FittedModel
        A fitted model.
    draws : int, optional
        Keep this many draws per chain, evenly spaced (thinning) to make
        predictions for very many customers cheaper. Two models thinned to the
        same number of draws keep their draws paired by position.

    Returns
    -------
    FittedModel
        Same class, same posterior (or its thinned subset); ``data`` is an
        empty frame with the fit data's columns.
    """
    model.check_fitted()
    post = model.posterior
    if draws is not None:
        check_whole("draws", draws)
        post = thin_posterior(post, int(draws))
    light = copy.copy(model)
    light.idata = xr.DataTree.from_dict({"posterior": post})
    light.data = model.data.iloc[:0] if model.data is not None else None
    return light


def _n_samples(model: Any) -> int:
    post = model.posterior
    return int(post.sizes["chain"] * post.sizes["draw"])


def _block_size(block_customers: int | None, n_samples: int) -> int:
    if block_customers is None:
        return chunks.chunk_length(n_samples, chunks.BLOCK_ELEMENTS)
    return check_whole("block_customers", block_customers)


def _history_order(df: pd.DataFrame, history: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Positions (among ``rows``, default all) of the rows sorted by the ``history`` columns (a model's data
    columns), so that similar histories share blocks."""
    columns = [c for c in history if c in df.columns]
    n = len(df) if rows is None else len(rows)
    if not columns:
        return np.arange(n)
    keys = [pd.to_numeric(df[c], errors="coerce").to_numpy() for c in reversed(columns)]
    return np.lexsort([k if rows is None else k[rows] for k in keys])


def _summary_frame(values: xr.DataArray, prob: float, method: str) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": values["customer_id"].values, **summary_arrays(values, prob, method)})


def _label(frame, prob: float, method: str, values: xr.DataArray | None):
    """Name the interval of a summary frame after the summarised ``values`` (warns for a point estimate)."""
    name, attrs = (None, {}) if values is None else (values.name, values.attrs)
    point = values is not None and is_point_estimate(values)
    collapsed = values is not None and collapses(values)
    if collapsed:
        warn_point_estimate(stacklevel=4)
    kind = "point estimate" if collapsed else interval_kind(attrs.get("quantity", "expectation"))
    missing = "the parameters" if point and not collapsed else attrs.get("point_estimate_of")
    frame.attrs = {"prob": prob, "kind": kind, "method": method, "name": name, "point_estimate": int(point),
                   "interval": interval_label(prob, kind, method, collapsed, missing)}
    return frame


# --------------------------------------------------------------------------- blocks of predictions
def _method_block(model: Any, method: str, kwargs: dict[str, Any]) -> Callable[[pd.DataFrame], xr.DataArray]:
    bound = getattr(model, method, None)
    if not callable(bound):
        raise ValueError(f"{type(model).__name__} has no prediction method {method!r}")
    return lambda block: bound(data=block, **kwargs)


def _clv_block(transaction_model, spend_model, kwargs):
    return lambda block: customer_lifetime_value(transaction_model, spend_model, block, **kwargs)


def _history_codes(model: Any, df: pd.DataFrame) -> np.ndarray:
    """Each customer's index among the distinct histories of ``df`` that determine ``model``'s predictions.

    Read from the key columns alone (no validated copy of a frame of millions
    of rows); the blocks are validated when they are predicted, so bad values
    still raise :class:`~bayesclv.errors.DataValidationError` naming the rows.
    """
    columns = list(model.history_columns)
    check_columns(df, columns)
    return compress_rows(df[columns], columns)[1].astype(np.int64)


def _stream_summary(block_fn, df: pd.DataFrame, history: list[str], codes: np.ndarray, block: int, prob: float,
                    method: str, progressbar: bool, description: str) -> pd.DataFrame:
    """Summaries of ``block_fn`` over a pandas frame, block by block, in the frame's row order.

    Customers with the same ``codes`` (identical histories, for every model
    involved) have the same posterior, so ``block_fn`` runs on one customer
    of each code, in blocks of codes sorted by history, and the summaries are
    copied to the others.
    """
    _, first, code_index = np.unique(codes, return_index=True, return_inverse=True)  # one customer per code
    order = _history_order(df, history, first)  # no copy of the representatives' rows: blocks are taken one by one
    out = {name: np.empty(len(first)) for name in SUMMARY_COLUMNS}
    starts = range(0, len(first), block)
    if progressbar:
        from rich.progress import track

        starts = track(starts, description=description, total=len(starts))
    values = None
    for start in starts:
        rows = order[start:start + block]
        values = block_fn(df.iloc[first[rows]])
        for key, column in summary_arrays(values, prob, method).items():
            out[key][rows] = column
    code_index = code_index.ravel()
    frame = pd.DataFrame({"customer_id": df["customer_id"].to_numpy(),
                          **{key: column[code_index] for key, column in out.items()}}, copy=False)
    return _label(frame, prob, method, values)


def _dask_blocks(data, history: list[str], block: int):
    """Delayed pandas blocks (at most ``block`` rows, sorted by history) of a dask DataFrame."""
    dask = require_dask()
    lengths = dask.compute(*[dask.delayed(len)(p) for p in data["customer_id"].to_delayed()])
    blocks = []
    for part, n in zip(data.to_delayed(), lengths, strict=True):
        ordered = dask.delayed(_sort_by_history)(part, history)  # one task per partition, sliced below
        for start in range(0, int(n), block):
            blocks.append((dask.delayed(_rows)(ordered, start, start + block), min(block, n - start)))
    return blocks


def _sort_by_history(df: pd.DataFrame, history: list[str]) -> pd.DataFrame:
    return df.iloc[_history_order(df, history)]


def _pandas_blocks(df: pd.DataFrame, history: list[str], block: int):
    dask = require_dask()
    whole = dask.delayed(_sort_by_history(df, history), pure=True)
    return [(dask.delayed(_rows)(whole, start, start + block), min(block, len(df) - start))
            for start in range(0, len(df), block)]


def _rows(df: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    return df.iloc[start:stop]


def _lazy(block_fn_factory, models, data, block: int) -> xr.DataArray:
    """Dask-backed ``(chain, draw, customer_id)`` DataArray of ``block_fn`` over blocks of ``data``.

    The block function is first run on one customer, eagerly: a wrong method
    name or argument fails here, and the result's name and ``attrs`` label the
    lazy array.
    """
    dask = require_dask()
    import dask.array as dsa

    first = data.head(1) if is_dask_collection(data) else to_pandas(data).iloc[:1]
    probe = block_fn_factory(*models)(first)
    shared = [dask.delayed(m, pure=False) for m in models]  # one graph key each, shipped once per worker
    history = list(models[0].data_columns)
    blocks = (_dask_blocks(data, history, block) if is_dask_collection(data)
              else _pandas_blocks(to_pandas(data), history, block))
    post = models[0].posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    arrays, ids = [], []
    for rows, n in blocks:
        values = dask.delayed(_block_values)(block_fn_factory, shared, rows)
        arrays.append(dsa.from_delayed(dask.delayed(np.asarray)(values), shape=(n_chain, n_draw, n), dtype=float))
        ids.append(dsa.from_delayed(dask.delayed(_block_ids)(rows), shape=(n,), dtype=object))
    customer_ids = dsa.concatenate(ids).compute() if ids else np.array([], dtype=object)
    return xr.DataArray(
        dsa.concatenate(arrays, axis=2),
        dims=("chain", "draw", "customer_id"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "customer_id": np.asarray(customer_ids.tolist())},
        name=probe.name,
        attrs=dict(probe.attrs),
    )


def _block_values(block_fn_factory, models, rows: pd.DataFrame) -> np.ndarray:
    return block_fn_factory(*models)(rows).transpose("chain", "draw", "customer_id").values


def _block_ids(rows: pd.DataFrame) -> np.ndarray:
    return rows["customer_id"].to_numpy().astype(object)


# --------------------------------------------------------------------------- public API
def predict(model: Any, method: str, data: Any | None = None, *, draws: int | None = None,
            block_customers: int | None = None, **kwargs: Any) -> xr.DataArray:
    """Lazy, dask-backed draws of a prediction method, chunked along ``customer_id``.

    Parameters
    ----------
    model : bayesclv.models.FittedModel
        Fitted model.
    method : str
        Name of a method returning dims ``(chain, draw, customer_id)``, e.g.
        ``"expected_purchases"``, ``"probability_alive"``, ``"expected_spend"``.
    data : pandas, polars or dask DataFrame, optional
        RFM frame in the model's time unit; default: the fitted data.
    draws : int, optional
        Posterior draws per chain to use (evenly thinned); default all.
    block_customers : int, optional
        Customers per chunk; default such that a chunk has about
        ``bayesclv.chunks.BLOCK_ELEMENTS`` draws x customers.
    **kwargs
        Arguments of the method, e.g. ``t=52``.

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims ``(chain, draw, customer_id)``; customers appear in
        order of their history (the model's data columns, e.g. ``frequency,
        recency, T``) within each partition. Nothing is computed until the array is reduced or stored;
        data problems (:class:`~bayesclv.errors.DataValidationError`) surface then.
    """
    light = prediction_copy(model, draws)
    data = model.data if data is None else data
    block = _block_size(block_customers, _n_samples(light))
    return _lazy(lambda m: _method_block(m, method, kwargs), [light], data, block)


def predict_clv(transaction_model: Any, spend_model: Any, data: Any | None = None, *,
                draws: int | None = None, block_customers: int | None = None,
                **clv_kwargs: Any) -> xr.DataArray:
    """Lazy, dask-backed CLV draws (:func:`bayesclv.customer_lifetime_value`) chunked along ``customer_id``.

    Parameters are those of :func:`predict` plus the keyword arguments of
    :func:`~bayesclv.customer_lifetime_value` (``horizon``, ``time_unit``,
    ``discount_rate``, ...). Both models are thinned to the same ``draws`` so
    their draws stay paired.
    """
    tm, sm = prediction_copy(transaction_model, draws), prediction_copy(spend_model, draws)
    data = transaction_model.data if data is None else data
    block = _block_size(block_customers, _n_samples(tm))
    return _lazy(lambda t, s: _clv_block(t, s, clv_kwargs), [tm, sm], data, block)


def summarise(values: xr.DataArray, prob: float | None = None, method: str | None = None):
    """Per-customer ``mean, sd, lower, upper`` of draws with dims ``(chain, draw, customer_id)``.

    Parameters
    ----------
    values : xarray.DataArray
        In memory or dask-backed (e.g. from :func:`predict`); dask chunks are
        summarised one at a time.
    prob : float, optional
        Probability inside the interval; default ArviZ's ``rcParams["stats.ci_prob"]``.
    method : {"eti", "hdi"}, optional
        Interval computed by ``arviz_stats``; default ArviZ's ``rcParams["stats.ci_kind"]``.

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        Columns ``customer_id, mean, sd, lower, upper`` (``sd`` of the draws);
        a lazy dask DataFrame (one partition per chunk) for dask-backed input.
        A pandas result's ``attrs`` name the interval; a point estimate's
        (:func:`bayesclv.summaries.is_point_estimate`) has ``lower = upper =
        mean``, ``sd`` NaN and the interval "point estimate (no posterior uncertainty)".
    """
    prob, method = interval_settings(prob, method)
    values = values.transpose("chain", "draw", "customer_id")
    if not is_dask_collection(values.data):
        return _label(_summary_frame(values, prob, method), prob, method, values)
    dask = require_dask()
    import dask.dataframe as dd

    values = values.chunk({"chain": -1, "draw": -1})
    chain, draw = values["chain"].values, values["draw"].values
    ids = values["customer_id"].values
    parts, start = [], 0
    for chunk, n in zip(values.data.to_delayed().ravel(), values.data.chunks[2], strict=True):
        parts.append(dask.delayed(_summary_of_chunk)(chunk, chain, draw, ids[start:start + n], prob, method))
        start += n
    meta = pd.DataFrame({"customer_id": ids[:0], **{c: np.empty(0) for c in SUMMARY_COLUMNS}})
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _summary_of_chunk(chunk: np.ndarray, chain: np.ndarray, draw: np.ndarray, ids: np.ndarray,
                      prob: float, method: str) -> pd.DataFrame:
    values = xr.DataArray(chunk, dims=("chain", "draw", "customer_id"),
                          coords={"chain": chain, "draw": draw, "customer_id": ids})
    return _summary_frame(values, prob, method)


def predict_summary(model: Any, method: str, data: Any | None = None, *, prob: float | None = None,
                    interval: str | None = None, draws: int | None = None, block_customers: int | None = None,
                    progressbar: bool = True, **kwargs: Any):
    """Per-customer posterior summaries of a prediction method without holding all draws.

    Parameters
    ----------
    model : bayesclv.models.FittedModel
        Fitted model.
    method : str
        Prediction method, e.g. ``"expected_purchases"`` (pass ``t=``),
        ``"probability_alive"``, ``"expected_spend"``.
    data : pandas, polars or dask DataFrame, optional
        RFM frame in the model's time unit; default: the fitted data.
    prob : float, optional
        Probability inside the interval; default ArviZ's ``rcParams["stats.ci_prob"]``.
    interval : {"eti", "hdi"}, optional
        Equal-tailed or highest-density interval (``arviz_stats``); default
        ArviZ's ``rcParams["stats.ci_kind"]``.
    draws : int, optional
        Posterior draws per chain to use (evenly thinned); default all.
    block_customers : int, optional
        Customers per block; default about ``bayesclv.chunks.BLOCK_ELEMENTS`` / (chains x draws).
    progressbar : bool, default True
        Show progress over blocks (in-memory data).
    **kwargs
        Arguments of the method, e.g. ``t=52``.

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        Columns ``customer_id, mean, sd, lower, upper``, one row per customer
        in the input's order; for a dask DataFrame input a lazy dask DataFrame
        (rows ordered by history within each partition) to ``.compute()`` or
        ``.to_parquet()`` on the active scheduler. A pandas result's ``attrs`` name the interval
        (see :func:`summarise` for a point estimate).

    Examples
    --------
    >>> summary = predict_summary(bg, "expected_purchases", rfm, t=52)  # doctest: +SKIP
    """
    prob, interval = interval_settings(prob, interval)
    if data is not None and is_dask_collection(data):
        return summarise(predict(model, method, data, draws=draws, block_customers=block_customers,
                                 **kwargs), prob, interval)
    light = prediction_copy(model, draws)
    df = model.data if data is None else to_pandas(data)
    block = _block_size(block_customers, _n_samples(light))
    codes = _history_codes(model, df)
    return _stream_summary(_method_block(light, method, kwargs), df, list(model.data_columns), codes, block, prob,
                           interval, progressbar, method)


def clv_summary(transaction_model: Any, spend_model: Any, data: Any | None = None, *, prob: float | None = None,
                interval: str | None = None, draws: int | None = None, block_customers: int | None = None,
                progressbar: bool = True, **clv_kwargs: Any):
    """Per-customer CLV posterior summaries (``mean, sd, lower, upper``) in bounded memory.

    The CLV draws of one block of customers are computed by
    :func:`bayesclv.customer_lifetime_value` (paired draws, discounting),
    summarised and dropped before the next block.

    Parameters
    ----------
    transaction_model, spend_model : fitted models
        As for :func:`bayesclv.customer_lifetime_value`.
    data : pandas, polars or dask DataFrame, optional
        RFM frame with ``monetary_value``; default: the transaction model's data.
    prob, interval, draws, block_customers, progressbar
        As for :func:`predict_summary`.
    **clv_kwargs
        ``horizon``, ``time_unit``, ``discount_rate``, ``margin``, ... of
        :func:`~bayesclv.customer_lifetime_value`.

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        As for :func:`predict_summary`.
    """
    prob, interval = interval_settings(prob, interval)
    if data is not None and is_dask_collection(data):
        return summarise(predict_clv(transaction_model, spend_model, data, draws=draws,
                                     block_customers=block_customers, **clv_kwargs), prob, interval)
    tm, sm = prediction_copy(transaction_model, draws), prediction_copy(spend_model, draws)
    df = transaction_model.data if data is None else to_pandas(data)
    block = _block_size(block_customers, _n_samples(tm))
    purchase_codes, spend_codes = _history_codes(transaction_model, df), _history_codes(spend_model, df)
    codes = purchase_codes * (int(spend_codes.max(initial=0)) + 1) + spend_codes  # the pair as one key
    return _stream_summary(_clv_block(tm, sm, clv_kwargs), df, list(transaction_model.data_columns), codes, block,
                           prob, interval, progressbar, "clv")
