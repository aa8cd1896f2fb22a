"""Segmentation and decisions with uncertainty, computed per posterior draw.

Every function takes per-customer posterior draws -- an ``xarray.DataArray``
with dims ``(chain, draw, customer_id)`` such as the output of
:func:`bayesclv.customer_lifetime_value` or ``model.probability_alive()`` --
does its work **draw by draw**, and only then summarises over the draws
(probabilities, or intervals from :func:`bayesclv.intervals`). A tier, stage
or total therefore carries the uncertainty of the posterior it came from.

- :func:`value_tiers` / :func:`top_membership`: each customer's posterior
  probability of being in the top 10% / 20% by CLV, and a tier with its
  certainty.
- :func:`lifecycle_stages` / :func:`stage_summary`: new, active, at risk and
  lost from P(alive), recency and tenure.
- :func:`rfm_scores`: classic quintile RFM scores and named segments.
- :func:`group_totals`: the sum over a segment (or the whole base) per draw,
  with intervals and the segment's share of the total.

Offers and campaigns (incremental value, targeting, group comparisons) are in
:mod:`bayesclv.offers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import bayesclv.chunks as chunks
from bayesclv.arguments import check_prob
from bayesclv.data.validation import TIME_UNITS, check_time_unit, to_pandas
from bayesclv.errors import DataValidationError
from bayesclv.summaries import SAMPLE_DIMS, check_draws, intervals

__all__ = [
    "STAGES",
    "group_totals",
    "lifecycle_stages",
    "rfm_scores",
    "stage_summary",
    "top_membership",
    "value_tiers",
]

STAGES = ("new", "active", "at risk", "lost")


# --------------------------------------------------------------------------- labels
def _labels_for(customers: np.ndarray, groups: Any, name: str) -> np.ndarray:
    """One label per customer, looked up by customer id; every customer must have one."""
    if isinstance(groups, pd.DataFrame):
        raise TypeError(f"{name} must be a Series or mapping customer_id -> label, not a DataFrame")
    if isinstance(groups, Mapping):
        groups = pd.Series(groups)
    if not isinstance(groups, pd.Series):
        groups = np.asarray(groups)
        if groups.shape != customers.shape:
            raise ValueError(f"{name}: {groups.shape[0] if groups.ndim else 0} labels for "
                             f"{customers.shape[0]} customers; pass a Series indexed by customer_id")
        return groups
    if groups.index.has_duplicates:
        raise DataValidationError("duplicate customer ids", column=name,
                                  rows=groups.index[groups.index.duplicated()].unique().tolist())
    labels = groups.reindex(customers)
    missing = labels.isna().to_numpy()
    if missing.any():
        raise DataValidationError("no label for these customers", column=name,
                                  rows=customers[missing].tolist())
    return labels.to_numpy()


# --------------------------------------------------------------------------- value tiers
def _top_count(share: float, n: int) -> int:
    """Number of customers in the top ``share`` of ``n``: ceil(share * n), at least one."""
    return max(1, math.ceil(share * n - 1e-9))


def _top_membership_block(block: np.ndarray, k: int) -> np.ndarray:
    """Membership of the ``k`` largest values in each row of ``block`` (draws x customers).

    Customers tied at the k-th largest value share the remaining places
    equally, so every row's memberships sum to exactly ``k``.
    """
    n = block.shape[1]
    kth = np.partition(block, n - k, axis=1)[:, n - k][:, None]
    above = block > kth
    tied = block == kth
    places = k - above.sum(axis=1, keepdims=True)
    return above + tied * (places / tied.sum(axis=1, keepdims=True))


def top_membership(values: xr.DataArray, share: float) -> xr.DataArray:
    """Per draw, each customer's membership of the top ``share`` of customers by ``values``.

    In each posterior draw the ``k = ceil(share * n)`` customers with the
    largest values are in the top (membership 1); the rest are out (0).
    Customers tied at the boundary share the remaining places equally
    (fractional membership), so memberships sum to ``k`` in every draw. The
    mean over draws is the posterior probability of being in the top.

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)``, e.g. CLV.
    share : float
        Share of customers in the top, in (0, 1), e.g. 0.1.

    Returns
    -------
    xarray.DataArray
        Memberships in [0, 1], same dims and coordinates as ``values``.
    """
    values = check_draws(values)
    share = check_prob(share, "share")
    k = _top_count(share, values.sizes["customer_id"])
    flat = values.to_numpy().reshape(-1, values.sizes["customer_id"])
    step = chunks.chunk_length(flat.shape[1])  # draws ranked at a time
    member = np.concatenate([_top_membership_block(flat[i:i + step], k) for i in range(0, flat.shape[0], step)])
    out = values.copy(data=member.reshape(values.shape))
    out.name = f"top_{share:.0%}"
    out.attrs = {"share": share, "k": k}
    return out


def _tier_names(top: Sequence[float]) -> list[str]:
    names, previous = [], 0.0
    for share in top:
        names.append(f"top {share:.0%}" if previous == 0 else f"top {previous:.0%}-{share:.0%}")
        previous = share
    return [*names, "rest"]


def value_tiers(clv: xr.DataArray, top: Sequence[float] = (0.1, 0.2)) -> pd.DataFrame:
    """Value tiers from the posterior of CLV, with how sure each assignment is.

    For each share ``q`` in ``top``, :func:`top_membership` gives, per draw,
    whether the customer is among the top ``q`` by CLV; its mean over draws is
    ``p_top_<q>``. The tiers are nested bands -- with the default, "top 10%",
    "top 10%-20%" and "rest" -- whose probabilities are the differences of
    consecutive ``p_top`` values. Each customer is assigned the most probable
    band; ``certainty`` is that band's posterior probability (1 = the same band
    in every draw).

    Parameters
    ----------
    clv : xarray.DataArray
        CLV draws with dims ``(chain, draw, customer_id)``.
    top : sequence of float, default (0.1, 0.2)
        Increasing shares of customers in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``clv_mean``, ``p_top_<q>`` for each share
        (e.g. ``p_top_10``), ``tier`` (ordered categorical, best first) and
        ``certainty``; sorted by ``clv_mean``, largest first.
    """
    top = [check_prob(q, "top") for q in top]
    if not top or any(b <= a for a, b in zip(top, top[1:], strict=False)):
        raise ValueError(f"top must be a non-empty increasing sequence of shares, got {top!r}")
    clv = check_draws(clv, "clv")
    p_top = np.column_stack([top_membership(clv, q).mean(SAMPLE_DIMS).to_numpy() for q in top])
    bands = np.diff(np.column_stack([np.zeros(len(p_top)), p_top, np.ones(len(p_top))]), axis=1)
    names = _tier_names(top)
    best = bands.argmax(axis=1)
    table = pd.DataFrame({"clv_mean": clv.mean(SAMPLE_DIMS).to_numpy()},
                         index=pd.Index(clv["customer_id"].to_numpy(), name="customer_id"))
    for q, column in zip(top, p_top.T, strict=True):
        table[f"p_top_{round(100 * q):d}"] = column
    table["tier"] = pd.Categorical.from_codes(best, categories=names, ordered=True)
    table["certainty"] = bands[np.arange(len(best)), best]
    return table.sort_values("clv_mean", ascending=False)


# --------------------------------------------------------------------------- group totals
def group_totals(values: xr.DataArray, groups: Any = None, prob: float = 0.9,
                 method: str = "eti") -> pd.DataFrame:
    """Posterior of the total of ``values`` over each group of customers (sum per draw).

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)``, e.g. CLV.
    groups : pandas.Series, mapping or array, optional
        A label per customer: a Series (or dict) indexed by ``customer_id``, or
        an array in the order of ``values.customer_id``. Default: one group
        ``"all"`` holding every customer.
    prob : float, default 0.9
        Probability inside the intervals.
    method : {"eti", "hdi"}, default "eti"
        Interval kind (see :func:`bayesclv.intervals`).

    Returns
    -------
    pandas.DataFrame
        Indexed by group: ``customers``, the total's ``mean, median, lower,
        upper, interval`` and its share of the grand total per draw
        (``share_mean, share_lower, share_upper``). Categorical labels keep
        their category order (empty categories have zero customers and total).
    """
    values = check_draws(values)
    prob = check_prob(prob)
    customers = values["customer_id"].to_numpy()
    labels = np.full(customers.shape, "all", dtype=object) if groups is None else \
        _labels_for(customers, groups, "groups")
    codes, names = pd.factorize(pd.Series(labels), sort=True)
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        names = groups.cat.categories
        codes = pd.Categorical(labels, categories=names).codes
    onehot = np.zeros((len(customers), len(names)))
    onehot[np.arange(len(customers)), codes] = 1.0
    totals = xr.DataArray(values.to_numpy() @ onehot, dims=("chain", "draw", "group"),
                          coords={"chain": values["chain"], "draw": values["draw"], "group": list(names)},
                          name=f"total {values.name}" if values.name else "total", attrs=dict(values.attrs))
    grand = totals.sum("group")
    share = totals / xr.where(grand == 0, np.nan, grand)
    share.attrs = {"quantity": values.attrs.get("quantity", "expectation")}
    table = intervals(totals, prob=prob, method=method)
    share_table = intervals(share, prob=prob, method=method)
    table.insert(0, "customers", onehot.sum(axis=0).astype(int))
    for column in ("mean", "lower", "upper"):
        table[f"share_{column}"] = share_table[column].to_numpy()
    return table


# --------------------------------------------------------------------------- lifecycle
def lifecycle_stages(
    p_alive: xr.DataArray,
    data: Any,
    *,
    new_within: float = 13.0,
    inactive_after: float = 26.0,
    unit: str = "W",
    active_from: float = 0.7,
    lost_below: float = 0.3,
) -> xr.DataArray:
    """Each customer's lifecycle stage in each posterior draw.

    Stages, checked in this order:

    - ``new``: first purchase less than ``new_within`` ago (tenure ``T < new_within``);
    - ``lost``: P(alive) below ``lost_below`` in this draw;
    - ``active``: P(alive) at least ``active_from`` in this draw and the last
      purchase no more than ``inactive_after`` ago (``T - recency <= inactive_after``);
    - ``at risk``: everyone else (P(alive) in between, or likely alive but
      silent for longer than ``inactive_after``).

    The defaults -- new for a quarter (13 weeks), silent for half a year (26
    weeks), active from P(alive) = 0.7, lost below 0.3 -- suit a retailer with
    purchases every few months; set them for your business.

    Parameters
    ----------
    p_alive : xarray.DataArray
        P(alive) draws with dims ``(chain, draw, customer_id)``.
    data : DataFrame
        RFM frame with ``customer_id, recency, T`` (the frame the P(alive)
        came from); its ``attrs["time_unit"]`` gives the unit of
        ``recency`` and ``T`` (weeks if absent).
    new_within, inactive_after : float
        Thresholds in ``unit``.
    unit : {"D", "W", "M", "Y"}, default "W"
        Unit of ``new_within`` and ``inactive_after``.
    active_from, lost_below : float
        Thresholds on P(alive), ``0 <= lost_below <= active_from <= 1``.

    Returns
    -------
    xarray.DataArray
        Integer codes into :data:`STAGES` with dims ``(chain, draw,
        customer_id)``; ``attrs["labels"]`` holds the stage names.
    """
    p_alive = check_draws(p_alive, "p_alive")
    check_time_unit(unit)
    if not 0 <= lost_below <= active_from <= 1:
        raise ValueError(f"need 0 <= lost_below <= active_from <= 1, got {lost_below!r}, {active_from!r}")
    if new_within < 0 or inactive_after < 0:
        raise ValueError(f"new_within and inactive_after must be >= 0, got {new_within!r}, {inactive_after!r}")
    p = p_alive.to_numpy()
    if ((p < 0) | (p > 1)).any():
        bad = ((p < 0) | (p > 1)).any(axis=(0, 1))
        raise DataValidationError("P(alive) outside [0, 1]", column=p_alive.name or "p_alive",
                                  rows=p_alive["customer_id"].to_numpy()[bad].tolist())
    df = to_pandas(data)
    missing = [c for c in ("customer_id", "recency", "T") if c not in df.columns]
    if missing:
        raise DataValidationError("missing column", column=missing[0])
    df = df.set_index("customer_id")
    ids = p_alive["customer_id"].to_numpy()
    absent = ~pd.Index(ids).isin(df.index)
    if absent.any():
        raise DataValidationError("customers of p_alive not in data", column="customer_id",
                                  rows=ids[absent].tolist())
    df = df.loc[ids]
    data_unit = (getattr(data, "attrs", None) or {}).get("time_unit", "W")
    scale = TIME_UNITS[unit] / TIME_UNITS[data_unit]  # thresholds in the data's unit
    tenure = df["T"].to_numpy(dtype=float)
    silent = tenure - df["recency"].to_numpy(dtype=float)
    codes = np.where(p >= active_from, STAGES.index("active"), STAGES.index("at risk"))
    codes = np.where((p >= active_from) & (silent > inactive_after * scale), STAGES.index("at risk"), codes)
    codes = np.where(p < lost_below, STAGES.index("lost"), codes)
    codes = np.where(tenure < new_within * scale, STAGES.index("new"), codes)
    out = p_alive.copy(data=codes.astype(np.int8))
    out.name = "stage"
    out.attrs = {"labels": STAGES, "new_within": new_within, "inactive_after": inactive_after, "unit": unit,
                 "active_from": active_from, "lost_below": lost_below}
    return out


def stage_summary(stages: xr.DataArray, prob: float = 0.9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer stage probabilities and stage sizes with intervals.

    Parameters
    ----------
    stages : xarray.DataArray
        Output of :func:`lifecycle_stages` (codes with ``attrs["labels"]``).
    prob : float, default 0.9
        Probability inside the intervals of the stage sizes.

    Returns
    -------
    customers : pandas.DataFrame
        Indexed by ``customer_id``: ``p_<stage>`` for each stage (share of
        draws in that stage), ``stage`` (the most probable) and ``certainty``
        (its probability).
    sizes : pandas.DataFrame
        Indexed by stage: number of customers in the stage per draw,
        summarised as ``mean, median, lower, upper, interval``, and
        ``assigned`` (customers whose most probable stage it is).
    """
    labels = tuple(stages.attrs.get("labels", STAGES))
    stages = check_draws(stages, "stages")
    codes = stages.to_numpy()
    onehot = np.stack([codes == i for i in range(len(labels))], axis=-1)  # chain, draw, customer, stage
    p = onehot.mean(axis=(0, 1))
    best = p.argmax(axis=1)
    customers = pd.DataFrame({f"p_{name.replace(' ', '_')}": p[:, i] for i, name in enumerate(labels)},
                             index=pd.Index(stages["customer_id"].to_numpy(), name="customer_id"))
    customers["stage"] = pd.Categorical.from_codes(best, categories=list(labels), ordered=True)
    customers["certainty"] = p[np.arange(len(best)), best]
    counts = xr.DataArray(onehot.sum(axis=2).astype(float), dims=("chain", "draw", "stage"),
                          coords={"chain": stages["chain"], "draw": stages["draw"], "stage": list(labels)},
                          name="customers", attrs={"quantity": "expectation"})
    sizes = intervals(counts, prob=check_prob(prob))
    sizes["assigned"] = np.bincount(best, minlength=len(labels))
    return customers, sizes


# --------------------------------------------------------------------------- classic RFM
_RFM_SEGMENTS = (  # (name, rule on recency score R and frequency score F), first match wins
    ("champions", lambda r, f: (r >= 4) & (f >= 4)),
    ("loyal", lambda r, f: (r >= 3) & (f >= 3)),
    ("promising", lambda r, f: r >= 4),
    ("needs attention", lambda r, f: r == 3),
    ("slipping away", lambda r, f: f >= 3),
    ("hibernating", lambda r, f: np.ones_like(r, dtype=bool)),
)
RFM_SEGMENTS = tuple(name for name, _ in _RFM_SEGMENTS)


def _quintile(values: np.ndarray) -> np.ndarray:
    """Score 1..5 = ceil(5 * average rank / n); tied values share a score."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return np.clip(np.ceil(5 * ranks / len(values) - 1e-9), 1, 5).astype(int)


def rfm_scores(data: Any) -> pd.DataFrame:
    """Classic RFM quintile scores and named segments (no model; for familiarity).

    ``R`` scores the time since the last purchase (``T - recency``; recent = 5),
    ``F`` the ``frequency`` and ``M`` the ``monetary_value`` (high = 5). A
    score is ``ceil(5 * rank / n)`` with tied values given their average rank,
    so ties share a score. Segments by R and F, first match wins:
    champions (R >= 4, F >= 4), loyal (R >= 3, F >= 3), promising (R >= 4),
    needs attention (R = 3), slipping away (F >= 3), hibernating (the rest).

    Parameters
    ----------
    data : DataFrame
        RFM frame with ``customer_id, frequency, recency, T`` and optionally
        ``monetary_value`` (without it there is no ``M``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``R, F, (M,) rfm`` (e.g. "545") and ``segment``.
    """
    df = to_pandas(data)
    for column in ("customer_id", "frequency", "recency", "T"):
        if column not in df.columns:
            raise DataValidationError("missing column", column=column)
    if df.empty:
        raise DataValidationError("no customers", column="customer_id")
    for column in ("frequency", "recency", "T", "monetary_value"):
        if column in df.columns:
            bad = ~np.isfinite(df[column].to_numpy(dtype=float))
            if bad.any():
                raise DataValidationError("non-finite values", column=column,
                                          rows=df["customer_id"][bad].tolist())
    r = _quintile(-(df["T"] - df["recency"]).to_numpy(dtype=float))
    f = _quintile(df["frequency"].to_numpy(dtype=float))
    table = pd.DataFrame({"R": r, "F": f}, index=pd.Index(df["customer_id"].to_numpy(), name="customer_id"))
    code = table["R"].astype(str) + table["F"].astype(str)
    if "monetary_value" in df.columns:
        table["M"] = _quintile(df["monetary_value"].to_numpy(dtype=float))
        code = code + table["M"].astype(str)
    table["rfm"] = code
    segment = np.select([rule(r, f) for _, rule in _RFM_SEGMENTS], list(range(len(_RFM_SEGMENTS))))
    table["segment"] = pd.Categorical.from_codes(segment, categories=list(RFM_SEGMENTS), ordered=True)
    return table
