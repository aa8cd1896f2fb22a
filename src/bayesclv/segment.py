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
- :func:`incremental_value` / :func:`targeting` / :func:`cumulative_gain`:
  value of an offer with a cost and an assumed (possibly uncertain) uplift,
  ranked, with the customers worth targeting at a chosen P(positive return).
- :func:`compare_groups`: posterior difference between two customer groups
  (e.g. test and control of a campaign).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.clv import intervals
from bayesclv.data import TIME_UNITS
from bayesclv.data.validation import check_time_unit, to_pandas
from bayesclv.errors import DataValidationError

__all__ = [
    "STAGES",
    "compare_groups",
    "cumulative_gain",
    "group_totals",
    "incremental_value",
    "lifecycle_stages",
    "rfm_scores",
    "stage_summary",
    "targeting",
    "top_membership",
    "value_tiers",
]

SAMPLE = ("chain", "draw")
DIMS = ("chain", "draw", "customer_id")
STAGES = ("new", "active", "at risk", "lost")
_DRAW_BLOCK = 256  # draws ranked at a time: bounds memory at a few copies of 256 x customers


# --------------------------------------------------------------------------- checks
def _check_draws(values: Any, name: str = "values") -> xr.DataArray:
    """``values`` is a finite DataArray with dims exactly ``(chain, draw, customer_id)``."""
    if not isinstance(values, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.DataArray with dims {DIMS}, got {type(values).__name__}")
    if set(values.dims) != set(DIMS):
        raise ValueError(f"{name} must have dims {DIMS}, got {values.dims}")
    values = values.transpose(*DIMS)
    bad = ~np.isfinite(values.to_numpy()).all(axis=(0, 1))
    if bad.any():
        raise DataValidationError("has non-finite draws", column=values.name or name,
                                  rows=values["customer_id"].to_numpy()[bad].tolist())
    return values


def _check_prob(prob: float, name: str = "prob") -> float:
    if not 0 < prob < 1:
        raise ValueError(f"{name} must be in (0, 1), got {prob!r}")
    return float(prob)


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
    values = _check_draws(values)
    share = _check_prob(share, "share")
    k = _top_count(share, values.sizes["customer_id"])
    flat = values.to_numpy().reshape(-1, values.sizes["customer_id"])
    member = np.concatenate([_top_membership_block(flat[i:i + _DRAW_BLOCK], k)
                             for i in range(0, flat.shape[0], _DRAW_BLOCK)])
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
    top = [_check_prob(q, "top") for q in top]
    if not top or any(b <= a for a, b in zip(top, top[1:], strict=False)):
        raise ValueError(f"top must be a non-empty increasing sequence of shares, got {top!r}")
    clv = _check_draws(clv, "clv")
    p_top = np.column_stack([top_membership(clv, q).mean(SAMPLE).to_numpy() for q in top])
    bands = np.diff(np.column_stack([np.zeros(len(p_top)), p_top, np.ones(len(p_top))]), axis=1)
    names = _tier_names(top)
    best = bands.argmax(axis=1)
    table = pd.DataFrame({"clv_mean": clv.mean(SAMPLE).to_numpy()},
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
    values = _check_draws(values)
    prob = _check_prob(prob)
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
    p_alive = _check_draws(p_alive, "p_alive")
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
    stages = _check_draws(stages, "stages")
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
    sizes = intervals(counts, prob=_check_prob(prob))
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


# --------------------------------------------------------------------------- targeting
def _uplift_draws(uplift: Any, values: xr.DataArray, random_seed: int | None) -> Any:
    """The uplift as a number or as a DataArray over (chain, draw) (and optionally customer_id)."""
    if isinstance(uplift, xr.DataArray):
        return uplift
    if hasattr(uplift, "rvs"):  # a frozen scipy.stats distribution: one uplift per posterior draw
        sample = np.asarray(uplift.rvs(size=values.shape[:2], random_state=np.random.default_rng(random_seed)),
                            dtype=float)
        return xr.DataArray(sample, dims=SAMPLE, coords={"chain": values["chain"], "draw": values["draw"]})
    array = np.asarray(uplift, dtype=float)
    if array.ndim == 0:
        if not np.isfinite(array):
            raise ValueError(f"uplift must be finite, got {uplift!r}")
        return float(array)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError("uplift draws must be a non-empty 1-d array of finite numbers")
    rng = np.random.default_rng(random_seed)
    n = values.shape[0] * values.shape[1]
    picked = array if array.size == n else rng.choice(array, size=n, replace=True)
    return xr.DataArray(picked.reshape(values.shape[:2]), dims=SAMPLE,
                        coords={"chain": values["chain"], "draw": values["draw"]})


def incremental_value(
    value: xr.DataArray,
    *,
    cost: float,
    uplift: Any,
    random_seed: int | None = None,
) -> xr.DataArray:
    """Per draw, the net value of giving each customer an offer: ``uplift * value - cost``.

    Parameters
    ----------
    value : xarray.DataArray
        What the offer lifts, per draw, dims ``(chain, draw, customer_id)``:
        usually CLV (a retention or promotion offer that raises it by a
        share ``uplift``).
    cost : float
        Cost of the offer per customer (same currency as ``value``), >= 0.
    uplift : float, array of draws, scipy.stats frozen distribution or DataArray
        Relative lift of ``value`` caused by the offer (0.1 = +10%). A number
        is taken as known; an array of draws (resampled if its length is not
        chains x draws) or a distribution (one draw per posterior draw) makes
        the uplift uncertain, independently of the posterior; a DataArray
        with dims among ``(chain, draw, customer_id)`` is used as given.
    random_seed : int, optional
        Seed for drawing the uplift.

    Returns
    -------
    xarray.DataArray
        Incremental value, dims ``(chain, draw, customer_id)``; an expectation
        (its intervals are credible intervals).
    """
    value = _check_draws(value, "value")
    if not np.isfinite(cost) or cost < 0:
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
    lift = _uplift_draws(uplift, value, random_seed)
    if isinstance(lift, xr.DataArray):
        extra = set(lift.dims) - set(DIMS)
        if extra:
            raise ValueError(f"uplift dims must be among {DIMS}, got {lift.dims}")
        lift = lift.assign_coords({d: value[d].to_numpy() for d in lift.dims})
    out = (lift * value - cost).transpose(*DIMS)
    out.name = "incremental_value"
    out.attrs = {"quantity": "expectation", "cost": float(cost)}
    return out


def targeting(incremental: xr.DataArray, *, prob: float = 0.9, min_prob_positive: float = 0.8) -> pd.DataFrame:
    """Customers ranked by expected incremental value, with who is worth targeting.

    Parameters
    ----------
    incremental : xarray.DataArray
        Output of :func:`incremental_value`, dims ``(chain, draw, customer_id)``.
    prob : float, default 0.9
        Probability inside the credible intervals.
    min_prob_positive : float, default 0.8
        A customer is worth targeting when the posterior probability that the
        offer returns more than it costs (incremental value > 0) is at least
        this.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, sorted by ``mean`` (largest first):
        ``rank`` (1 = best), ``mean, median, lower, upper, interval`` of the
        incremental value, ``p_positive`` and ``target`` (bool).
    """
    incremental = _check_draws(incremental, "incremental")
    table = intervals(incremental, prob=_check_prob(prob), kind="credible")
    table["p_positive"] = (incremental > 0).mean(SAMPLE).to_numpy()
    table["target"] = table["p_positive"] >= _check_prob(min_prob_positive, "min_prob_positive")
    table = table.sort_values("mean", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def cumulative_gain(incremental: xr.DataArray, order: Sequence) -> xr.DataArray:
    """Per draw, total incremental value of targeting the first ``n`` customers of ``order``.

    Parameters
    ----------
    incremental : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)``.
    order : sequence
        Customer ids in targeting order (e.g. ``targeting(...).index``).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, n_targeted)`` with ``n_targeted = 1..len(order)``.
    """
    incremental = _check_draws(incremental, "incremental")
    ordered = incremental.sel(customer_id=list(order))
    gain = ordered.cumsum("customer_id").rename(customer_id="n_targeted")
    gain = gain.assign_coords(n_targeted=np.arange(1, len(order) + 1))
    gain.name = "cumulative_incremental_value"
    gain.attrs = {"quantity": "expectation"}
    return gain


# --------------------------------------------------------------------------- campaigns
def compare_groups(
    values: xr.DataArray,
    group_a: Sequence,
    group_b: Sequence,
    *,
    prob: float = 0.9,
    names: tuple[str, str] = ("a", "b"),
) -> pd.DataFrame:
    """Posterior difference of the per-customer mean of ``values`` between two groups.

    Per draw: ``mean over group a - mean over group b``. Use CLV draws to
    compare value, or ``model.expected_purchases(t) / t`` to compare purchase
    rates (e.g. the test and control groups of a campaign, each fitted or
    predicted on its own data).

    Parameters
    ----------
    values : xarray.DataArray
        Draws with dims ``(chain, draw, customer_id)`` covering both groups.
    group_a, group_b : sequence
        Customer ids of each group (disjoint, non-empty).
    prob : float, default 0.9
        Probability inside the credible intervals.
    names : tuple of str, default ("a", "b")
        Row labels of the two groups.

    Returns
    -------
    pandas.DataFrame
        Rows ``names[0]``, ``names[1]`` and ``"difference"`` (a - b); columns
        ``customers, mean, median, lower, upper, interval, p_positive``
        (posterior probability that the row's value is above zero).
    """
    values = _check_draws(values)
    customers = pd.Index(values["customer_id"].to_numpy())
    members = []
    for label, group in zip(names, (group_a, group_b), strict=True):
        group = pd.Index(list(group))
        if group.empty:
            raise DataValidationError(f"group {label!r} is empty", column="customer_id")
        absent = ~group.isin(customers)
        if absent.any():
            raise DataValidationError(f"customers of group {label!r} not in values", column="customer_id",
                                      rows=group[absent].tolist())
        members.append(group.unique())
    both = members[0].intersection(members[1])
    if len(both):
        raise DataValidationError("customers in both groups", column="customer_id", rows=both.tolist())
    means = [values.sel(customer_id=list(m)).mean("customer_id") for m in members]
    stacked = xr.concat([means[0], means[1], means[0] - means[1]],
                        dim=xr.DataArray([*names, "difference"], dims="row", name="row"))
    stacked.name = values.name
    stacked.attrs = {"quantity": values.attrs.get("quantity", "expectation")}
    table = intervals(stacked, prob=_check_prob(prob))
    table.insert(0, "customers", [len(members[0]), len(members[1]), len(members[0]) + len(members[1])])
    table["p_positive"] = (stacked > 0).mean(SAMPLE).to_numpy()
    return table
