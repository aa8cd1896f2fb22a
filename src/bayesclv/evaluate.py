"""Holdout evaluation, calibration/coverage and model comparison of purchase-count models.

:func:`evaluate` scores a fitted BG/NBD or Pareto/NBD model on the holdout
period of an RFM frame built by ``rfm_summary(..., calibration_end=...)``:
point accuracy of the expected number of holdout purchases, discrimination
and calibration of the probability of buying at all in the holdout, and the
coverage of predictive intervals of the holdout count.

:func:`compare` puts several models side by side: PSIS-LOO (``arviz_stats``)
on the calibration data for sampled fits, and the holdout metrics.

The metric helpers (:func:`auc`, :func:`brier_score`, :func:`coverage`,
:func:`calibration_table`, :func:`pit_bounds`, :func:`pit_coverage`) are small
pure functions of arrays. :func:`expected_tracking` predicts the cohort's
cumulative repeat purchases per period (the tracking plot), draw by draw.

Coverage of discrete outcomes. A predictive interval of a count is a set of
whole numbers; with inclusive bounds it holds *at least* its nominal mass
(for a customer with P(0 purchases) = 0.93 the 90% interval is ``[0, 0]`` and
holds 0.93), so the share of customers inside it exceeds the nominal level
even for a perfectly calibrated model. :func:`evaluate` therefore reports,
next to that plain ``coverage_<p>``, ``interval_mass_<p>`` (the mean
predictive mass the inclusive intervals actually hold: what ``coverage_<p>``
should be under calibration) and ``pit_coverage_<p>``, the coverage of the
central ``p`` interval of the *randomised* probability integral transform
(PIT) ``u = F(y-1) + V (F(y) - F(y-1))``, ``V ~ U(0, 1)``, which is exactly
Uniform(0, 1) for a calibrated model of a discrete outcome (Czado, Gneiting
& Held 2009). ``pit_coverage_<p>`` is the expectation over ``V`` (no
randomness), so its nominal value is exactly ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from bayesclv.clv import intervals
from bayesclv.data import repeat_purchase_tracking, validate_rfm
from bayesclv.errors import DataValidationError, NotFittedError
from bayesclv.models.transaction import TransactionModel

__all__ = [
    "EvaluationResult",
    "auc",
    "brier_score",
    "calibration_table",
    "compare",
    "coverage",
    "evaluate",
    "expected_tracking",
    "pit_bounds",
    "pit_coverage",
]

HOLDOUT_COLUMNS = ("frequency_holdout", "T_holdout")
PARETO_K_THRESHOLD = 0.7
SAMPLE = ("chain", "draw")
_LOO_COLUMNS = ("elpd_loo", "p_loo", "se", "elpd_diff", "se_diff", "max_pareto_k", "n_pareto_k_gt_0_7")
_HOLDOUT_METRICS = ("mae", "rmse", "predicted_total", "actual_total", "auc", "brier", "coverage_90",
                    "interval_mass_90", "pit_coverage_90")
_TRACKING_CHUNK_ELEMENTS = 2_000_000  # draws x (cohort-day, period) lags evaluated at once


# --------------------------------------------------------------------------- result
@dataclass
class EvaluationResult:
    """Holdout evaluation of one model.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer: ``customer_id, actual, predicted, p_alive,
        p_active_holdout`` and, for each interval probability ``p`` (labelled
        e.g. ``90``), ``lower_90, upper_90, inside_90``.
    metrics : dict of str to float
        Aggregate metrics (see :func:`evaluate`).
    calibration : pandas.DataFrame
        Calibration of ``p_active_holdout`` by decile (see :func:`calibration_table`).
    horizon : float
        Length of the holdout period, in ``time_unit``.
    time_unit : str or None
        Unit of ``horizon``.
    prob : tuple of float
        Interval probabilities evaluated.
    tracking : xarray.Dataset or None
        With ``transactions``: actual and predicted repeat purchases of the
        cohort per period (see :func:`expected_tracking`).
    """

    customers: pd.DataFrame
    metrics: dict[str, float]
    calibration: pd.DataFrame
    horizon: float = math.nan
    time_unit: str | None = None
    prob: tuple[float, ...] = field(default_factory=tuple)
    tracking: xr.Dataset | None = None

    def to_frame(self) -> pd.DataFrame:
        """The metrics as a one-row DataFrame (columns in the order of ``metrics``)."""
        return pd.DataFrame([self.metrics])

    def _repr_html_(self) -> str:
        """Jupyter view: metrics and calibration tables (see :mod:`bayesclv.display`)."""
        from bayesclv.display import evaluation_html

        return evaluation_html(self)


# --------------------------------------------------------------------------- pure metrics
def _as_labels(labels: Any) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be boolean or 0/1")
        y = y.astype(bool)
    return y


def auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve, by the rank (Mann-Whitney U) formula.

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the
    sum of the ranks of the positives among all scores. Tied scores get their
    average rank, so a positive/negative pair with equal scores counts 1/2:
    the result equals the share of (positive, negative) pairs in which the
    positive scores higher, ties counting half.

    Parameters
    ----------
    scores : array_like of float
        Higher means more likely positive.
    labels : array_like of bool or {0, 1}
        True outcome.

    Returns
    -------
    float
        In [0, 1]; NaN if all labels are equal.

    Examples
    --------
    >>> auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s = np.asarray(scores, dtype=float)
    y = _as_labels(labels)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-d of the same length, got {s.shape} and {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s, method="average")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def brier_score(probs: Any, labels: Any) -> float:
    """Brier score: mean squared difference between predicted probability and outcome.

    Parameters
    ----------
    probs : array_like of float
        Predicted probabilities of the event, in [0, 1].
    labels : array_like of bool or {0, 1}
        Whether the event happened.

    Returns
    -------
    float
        0 is perfect; always predicting 0.5 scores 0.25.

    Examples
    --------
    >>> round(brier_score([0.9, 0.2, 0.5], [1, 0, 0]), 6)
    0.1
    """
    p = np.asarray(probs, dtype=float)
    y = _as_labels(labels)
    if p.shape != y.shape:
        raise ValueError(f"probs and labels must have the same shape, got {p.shape} and {y.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probs must be in [0, 1]")
    return float(np.mean((p - y) ** 2))


def coverage(actual: Any, lower: Any, upper: Any) -> float:
    """Share of outcomes inside their interval, bounds included (``lower <= actual <= upper``).

    Parameters
    ----------
    actual, lower, upper : array_like of float
        Outcomes and interval bounds, elementwise.

    Returns
    -------
    float
        In [0, 1].
    """
    a, lo, hi = (np.asarray(v, dtype=float) for v in (actual, lower, upper))
    return float(np.mean((lo <= a) & (a <= hi)))


def pit_bounds(draws: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    """Predictive CDF just below and at each observed count: ``F(y-1)`` and ``F(y)``.

    The randomised PIT of a count ``y`` is uniform on ``[F(y-1), F(y)]``.

    Parameters
    ----------
    draws : array_like
        Simulated predictive counts, shape ``(n_draws, n_customers)``.
    actual : array_like
        Observed count per customer, shape ``(n_customers,)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(F(y-1), F(y))``, each of shape ``(n_customers,)``.

    Examples
    --------
    >>> pit_bounds([[0, 1], [0, 0], [1, 2], [0, 1]], [0, 1])
    (array([0.  , 0.25]), array([0.75, 0.75]))
    """
    d = np.asarray(draws)
    y = np.asarray(actual)
    if d.ndim != 2 or y.shape != d.shape[1:]:
        raise ValueError(f"draws must be (n_draws, n_customers) and actual (n_customers,), "
                         f"got {d.shape} and {y.shape}")
    return (d < y).mean(axis=0), (d <= y).mean(axis=0)


def pit_coverage(cdf_below: Any, cdf_at: Any, prob: float) -> float:
    """Expected coverage of the central ``prob`` interval of the randomised PIT.

    For each customer the randomised PIT ``u`` is uniform on
    ``[F(y-1), F(y)]``; the probability that it falls in
    ``[(1 - prob)/2, (1 + prob)/2]`` is the overlap length divided by
    ``F(y) - F(y-1)`` (an indicator when the two are equal). The mean over
    customers is ``prob`` for a calibrated model.

    Parameters
    ----------
    cdf_below, cdf_at : array_like
        ``F(y-1)`` and ``F(y)`` per customer (see :func:`pit_bounds`).
    prob : float
        Nominal probability, in (0, 1).

    Returns
    -------
    float

    Examples
    --------
    >>> pit_coverage([0.0, 0.5], [0.5, 1.0], 0.5)
    0.5
    """
    a = np.asarray(cdf_below, dtype=float)
    b = np.asarray(cdf_at, dtype=float)
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    width = b - a
    overlap = np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)
    point = ((a >= lo) & (a <= hi)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(width > 0, overlap / np.where(width > 0, width, 1.0), point)
    return float(share.mean())


def point_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """Accuracy of point predictions of counts.

    Parameters
    ----------
    actual, predicted : array_like of float
        Observed and predicted values per customer.

    Returns
    -------
    dict
        ``mae``, ``rmse``, ``bias`` (mean of predicted - actual), ``predicted_total``,
        ``actual_total``, ``total_error_pct`` (100 x (predicted_total - actual_total)
        / actual_total, NaN if actual_total is 0) and ``correlation`` (Pearson; NaN
        if either side is constant).
    """
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    err = p - a
    actual_total, predicted_total = float(a.sum()), float(p.sum())
    if a.size > 1 and a.std() > 0 and p.std() > 0:
        corr = float(np.corrcoef(a, p)[0, 1])
    else:
        corr = math.nan
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
        "predicted_total": predicted_total,
        "actual_total": actual_total,
        "total_error_pct": 100.0 * (predicted_total - actual_total) / actual_total if actual_total else math.nan,
        "correlation": corr,
    }


def calibration_table(p_active: Any, active: Any, actual: Any | None = None,
                      predicted: Any | None = None, n_bins: int = 10) -> pd.DataFrame:
    """Calibration of predicted probabilities by equal-count bins (deciles by default).

    Customers are sorted by ``p_active`` and cut into ``n_bins`` groups of
    (nearly) equal size; customers with tied probabilities may fall into
    neighbouring bins, which leaves each bin's means unbiased.

    Parameters
    ----------
    p_active : array_like of float
        Predicted probability of the event per customer.
    active : array_like of bool or {0, 1}
        Whether the event happened.
    actual, predicted : array_like of float, optional
        Observed and predicted counts, summarised per bin as well when given.
    n_bins : int, default 10
        Number of bins (fewer if there are fewer customers).

    Returns
    -------
    pandas.DataFrame
        One row per bin (``bin`` = 1 for the lowest probabilities): ``n``,
        ``p_min``, ``p_max``, ``mean_predicted`` (mean probability),
        ``observed`` (share with the event) and, with counts,
        ``mean_predicted_purchases`` and ``mean_actual_purchases``.
    """
    p = np.asarray(p_active, dtype=float)
    y = _as_labels(active)
    n_bins = int(min(n_bins, p.size))
    if n_bins < 1:
        raise ValueError("calibration_table needs at least one customer and one bin")
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, dtype=int)
    bins[order] = np.arange(p.size) * n_bins // p.size + 1
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y.astype(float)})
    if actual is not None and predicted is not None:
        frame["actual"] = np.asarray(actual, dtype=float)
        frame["predicted"] = np.asarray(predicted, dtype=float)
    g = frame.groupby("bin")
    table = pd.DataFrame({
        "n": g.size(),
        "p_min": g["p"].min(),
        "p_max": g["p"].max(),
        "mean_predicted": g["p"].mean(),
        "observed": g["y"].mean(),
    })
    if "actual" in frame:
        table["mean_predicted_purchases"] = g["predicted"].mean()
        table["mean_actual_purchases"] = g["actual"].mean()
    return table


# --------------------------------------------------------------------------- checks
def _prob_label(p: float) -> str:
    return f"{100 * p:g}"


def _check_prob(prob: Any) -> tuple[float, ...]:
    values = (prob,) if np.isscalar(prob) else tuple(prob)
    if not values:
        raise ValueError("prob must hold at least one probability")
    out = []
    for p in values:
        if not isinstance(p, (int, float, np.floating)) or not 0 < p < 1:
            raise ValueError(f"each prob must be in (0, 1), got {p!r}")
        out.append(float(p))
    if len(set(out)) != len(out):
        raise ValueError(f"prob has duplicates: {values!r}")
    return tuple(sorted(out))


def _check_model(model: Any) -> None:
    if not isinstance(model, TransactionModel):
        raise TypeError(
            f"evaluate needs a purchase-count model (BetaGeoModel or ParetoNBDModel), "
            f"got {type(model).__name__}"
        )
    if getattr(model, "idata", None) is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: call .fit(data) first")


def has_holdout(data: Any) -> bool:
    """Whether an RFM frame carries the holdout columns ``frequency_holdout`` and ``T_holdout``."""
    return data is not None and all(c in getattr(data, "columns", ()) for c in HOLDOUT_COLUMNS)


def _holdout_data(model: TransactionModel, data: Any | None) -> tuple[pd.DataFrame, float]:
    """Validated RFM frame with holdout columns, and the common holdout length."""
    df = model.data if data is None else validate_rfm(data, time_unit=model.time_unit)
    for col in HOLDOUT_COLUMNS:
        if col not in df.columns:
            raise DataValidationError(
                "missing: evaluation needs holdout columns; build the data with "
                "bayesclv.rfm_summary(..., calibration_end=...)",
                column=col,
            )
    ids = df["customer_id"].to_numpy()
    freq = pd.to_numeric(df["frequency_holdout"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(freq) | (freq < 0) | (freq != np.round(freq))
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} value(s) not a non-negative whole number of purchases",
            column="frequency_holdout", rows=ids[bad],
        )
    t_hold = pd.to_numeric(df["T_holdout"], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(t_hold)
    if not finite.any():
        raise DataValidationError("no finite holdout length", column="T_holdout", rows=ids)
    values, counts = np.unique(t_hold[finite], return_counts=True)
    horizon = float(values[np.argmax(counts)])
    off = ~np.isclose(t_hold, horizon, rtol=1e-9, atol=0.0)
    if off.any():
        raise DataValidationError(
            f"the holdout length must be the same for all customers; most have {horizon:g}, "
            f"{int(off.sum())} differ",
            column="T_holdout", rows=ids[off],
        )
    if horizon <= 0:
        raise DataValidationError(f"holdout length must be > 0, got {horizon:g}", column="T_holdout")
    return df, horizon


# --------------------------------------------------------------------------- predictive draws
def predictive_draws(model: TransactionModel, horizon: float, data: pd.DataFrame,
                     n_draws: int = 1000, random_seed: int | None = None) -> xr.DataArray:
    """Posterior-predictive holdout counts, at least ``n_draws`` per customer.

    Each call of ``model.sample_purchases`` simulates one count per posterior
    draw. When the posterior has fewer than ``n_draws`` draws (a MAP fit has
    one), it is called again with independent random streams and the results
    are stacked along ``draw``: every posterior draw is paired with several
    simulated outcomes, which is still a sample of the posterior predictive.

    Returns
    -------
    xarray.DataArray
        Integer counts, dims ``(chain, draw, customer_id)``, ``attrs["quantity"] == "outcome"``.
    """
    post = model.posterior
    per_call = int(post.sizes["chain"] * post.sizes["draw"])
    reps = max(1, math.ceil(n_draws / per_call))
    streams = np.random.SeedSequence(random_seed).spawn(reps)
    parts = [model.sample_purchases(horizon, data, random_seed=int(ss.generate_state(1)[0]))
             for ss in streams]
    if reps == 1:
        return parts[0]
    stacked = xr.concat(parts, dim="draw", coords="minimal", compat="override")
    stacked = stacked.assign_coords(draw=np.arange(stacked.sizes["draw"]))
    stacked.attrs = dict(parts[0].attrs)
    return stacked


def _interval_columns(draws: xr.DataArray, prob: tuple[float, ...]) -> pd.DataFrame:
    """Whole-number predictive interval bounds per customer for each probability."""
    columns = {}
    for p in prob:
        table = intervals(draws, prob=p, kind="predictive")
        label = _prob_label(p)
        # counts are integers: round interpolated quantiles outward to whole purchases
        columns[f"lower_{label}"] = np.floor(table["lower"].to_numpy() + 1e-9) + 0.0
        columns[f"upper_{label}"] = np.ceil(table["upper"].to_numpy() - 1e-9) + 0.0
    return pd.DataFrame(columns, index=draws["customer_id"].to_numpy())


# --------------------------------------------------------------------------- evaluate
def evaluate(
    model: TransactionModel,
    data: Any | None = None,
    *,
    prob: float | tuple[float, ...] = (0.5, 0.8, 0.9),
    random_seed: int | None = None,
    n_draws: int = 1000,
    transactions: Any | None = None,
    customer_id: str = "customer_id",
    date: str = "date",
) -> EvaluationResult:
    """Score a fitted purchase-count model on the holdout period.

    The holdout horizon is ``T_holdout``, the same for every customer. For
    each customer the model predicts, from the calibration history alone:

    - ``predicted``: posterior mean of the expected number of holdout purchases;
    - ``p_alive``: posterior mean of P(alive at the end of calibration);
    - ``p_active_holdout``: posterior mean of P(at least one purchase in the holdout);
    - ``lower_<p>``, ``upper_<p>``: the ``p`` equal-tailed posterior *predictive*
      interval of the holdout count (simulated with ``model.sample_purchases``,
      summarised by :func:`bayesclv.intervals`), and ``inside_<p>``.

    Counts are discrete, so the interval is a set of whole numbers: its
    bounds are rounded outward to whole purchases and are **inclusive**
    (``lower <= actual <= upper``). The interval therefore holds at least
    ``p`` of the predictive mass and often more, and coverage can exceed
    its nominal ``p`` even for a perfectly calibrated model (for a customer
    whose predictive mass at 0 exceeds ``p``, the interval is ``[0, 0]``
    and holds the whole of that mass).

    Parameters
    ----------
    model : BetaGeoModel or ParetoNBDModel
        A fitted model (any fit method).
    data : DataFrame, optional
        RFM frame in the model's time unit with holdout columns
        ``frequency_holdout`` and ``T_holdout``, as made by
        ``bayesclv.rfm_summary(..., calibration_end=...)``. Default: the
        data the model was fitted to.
    prob : float or tuple of float, default (0.5, 0.8, 0.9)
        Probabilities of the predictive intervals.
    random_seed : int, optional
        Seed of the posterior-predictive simulation.
    n_draws : int, default 1000
        Minimum number of simulated holdout counts per customer; posteriors
        with fewer draws (a MAP fit has one) are simulated repeatedly.
    transactions : DataFrame, optional
        The transaction log the RFM frame was built from. When given, the
        result's ``tracking`` holds the cohort's actual and predicted repeat
        purchases per period (:func:`bayesclv.data.repeat_purchase_tracking`,
        :func:`expected_tracking`), and ``metrics`` gains
        ``tracking_calibration_error_pct`` and ``tracking_holdout_error_pct``
        (100 x (predicted - actual) / actual of the cumulative repeat purchases
        at the end of calibration and of the holdout).
    customer_id, date : str
        Columns of ``transactions``.

    Returns
    -------
    EvaluationResult
        ``customers`` (per-customer frame), ``metrics`` and ``calibration``.
        ``metrics`` holds ``mae``, ``rmse``, ``bias`` (mean predicted - actual),
        ``predicted_total``, ``actual_total``, ``total_error_pct``, ``correlation``
        (Pearson, predicted vs actual), ``auc`` and ``brier`` (of
        ``p_active_holdout`` against ``actual > 0``) and ``coverage_<p>`` for
        each ``p`` (share of customers inside their interval), with
        ``interval_mass_<p>`` (mean predictive mass of those inclusive
        intervals: the coverage a calibrated model would show) and
        ``pit_coverage_<p>`` (randomised-PIT coverage, nominal exactly ``p``;
        see the module notes). ``customers`` also holds ``pit_lower`` and
        ``pit_upper`` (``F(y-1)``, ``F(y)`` of the predictive CDF). ``calibration``
        compares mean ``p_active_holdout`` with the observed share of active
        customers by decile of ``p_active_holdout``.

    Raises
    ------
    bayesclv.errors.DataValidationError
        A holdout column is missing or invalid, or ``T_holdout`` differs
        between customers (the offending ids are named).
    bayesclv.errors.NotFittedError
        The model is not fitted.
    TypeError
        Not a purchase-count model.
    """
    _check_model(model)
    prob = _check_prob(prob)
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive whole number, got {n_draws!r}")
    df, horizon = _holdout_data(model, data)

    def posterior_mean(da: xr.DataArray) -> np.ndarray:
        return da.mean(SAMPLE).to_numpy()

    actual = df["frequency_holdout"].to_numpy(dtype=float)
    customers = pd.DataFrame({
        "customer_id": df["customer_id"].to_numpy(),
        "actual": actual,
        "predicted": posterior_mean(model.expected_purchases(horizon, df)),
        "p_alive": posterior_mean(model.probability_alive(df)),
        "p_active_holdout": 1.0 - posterior_mean(model.probability_of_purchases(0, horizon, df)),
    })
    draws = predictive_draws(model, horizon, df, n_draws=int(n_draws), random_seed=random_seed)
    bounds = _interval_columns(draws, prob)
    sims = draws.stack(sample=SAMPLE).transpose("sample", "customer_id").to_numpy()
    masses = {}
    for p in prob:
        label = _prob_label(p)
        lower = bounds[f"lower_{label}"].to_numpy()
        upper = bounds[f"upper_{label}"].to_numpy()
        customers[f"lower_{label}"] = lower
        customers[f"upper_{label}"] = upper
        customers[f"inside_{label}"] = (lower <= actual) & (actual <= upper)
        masses[label] = float(((sims >= lower) & (sims <= upper)).mean())
    customers["pit_lower"], customers["pit_upper"] = pit_bounds(sims, actual)

    active = actual > 0
    p_active = customers["p_active_holdout"].to_numpy()
    metrics = point_metrics(actual, customers["predicted"].to_numpy())
    metrics["auc"] = auc(p_active, active)
    metrics["brier"] = brier_score(np.clip(p_active, 0.0, 1.0), active)
    for p in prob:
        label = _prob_label(p)
        metrics[f"coverage_{label}"] = float(customers[f"inside_{label}"].mean())
        metrics[f"interval_mass_{label}"] = masses[label]
        metrics[f"pit_coverage_{label}"] = pit_coverage(customers["pit_lower"], customers["pit_upper"], p)
    calibration = calibration_table(p_active, active, actual, customers["predicted"].to_numpy())
    tracking = None
    if transactions is not None:
        actual_tracking = repeat_purchase_tracking(
            transactions, customer_id=customer_id, date=date, time_unit=model.time_unit,
            calibration_end=df.attrs.get("calibration_end"), observation_end=df.attrs.get("observation_end"))
        tracking = expected_tracking(model, actual_tracking, df)
        for part, mask in (("calibration", ~tracking["holdout"].values), ("holdout", tracking["holdout"].values)):
            last = int(np.flatnonzero(mask)[-1])
            pred = float(tracking["predicted_cumulative"].isel(period=last).mean())
            act = float(tracking["actual_cumulative"].isel(period=last))
            metrics[f"tracking_{part}_error_pct"] = 100.0 * (pred - act) / act if act else math.nan
    return EvaluationResult(customers=customers, metrics=metrics, calibration=calibration,
                            horizon=horizon, time_unit=model.time_unit, prob=prob, tracking=tracking)


# --------------------------------------------------------------------------- tracking
def expected_tracking(model: TransactionModel, tracking: pd.DataFrame, data: Any | None = None) -> xr.Dataset:
    """Predicted cumulative and incremental repeat purchases of the cohort per period, per draw.

    Customer ``i`` is acquired at ``b_i = c - T_i`` (``c`` the calibration end
    in units since the cohort start, ``tracking.attrs["calibration_end_time"]``,
    ``T_i`` from the RFM frame); by the end ``e_k`` of period ``k`` the cohort is
    expected to have made ``sum_i E[X(e_k - b_i)]`` repeat purchases, with
    ``E[X(t)]`` the expected purchases of a new customer in their first ``t``
    units (:meth:`expected_purchases_new_customer`), evaluated for every
    posterior draw (Fader, Hardie & Lee 2005, the tracking plot). Customers
    acquired on the same day share a lag, so the work grows with distinct
    acquisition times x periods, in chunks bounded by draws x lags.

    Parameters
    ----------
    model : BetaGeoModel or ParetoNBDModel
        Fitted model.
    tracking : DataFrame
        From :func:`bayesclv.data.repeat_purchase_tracking` on the same
        cohort and time unit.
    data : DataFrame, optional
        The cohort's RFM frame (``T`` to the calibration end); default: the fitted data.

    Returns
    -------
    xarray.Dataset
        ``predicted_cumulative`` and ``predicted_incremental`` (dims ``chain,
        draw, period``), ``actual_cumulative``, ``actual_incremental``,
        ``start``, ``end``, ``holdout`` (dim ``period``); ``attrs`` hold the
        time unit and ``calibration_end_time``.

    Raises
    ------
    bayesclv.errors.DataValidationError
        The RFM frame and the tracking disagree (other customers, a unit, or a
        ``T`` longer than the time from cohort start to calibration end).
    """
    _check_model(model)
    df = model._data_for_prediction(data)
    unit = tracking.attrs.get("time_unit")
    if unit != model.time_unit:
        raise DataValidationError(f"tracking is in unit {unit!r}, the model in {model.time_unit!r}",
                                  column="T")
    if tracking.attrs.get("customers") != len(df):
        raise DataValidationError(
            f"tracking counts {tracking.attrs.get('customers')} cohort customers, the RFM frame {len(df)}: "
            "build both from the same transactions and calibration_end", column="customer_id")
    cal_time = float(tracking.attrs["calibration_end_time"])
    T = df["T"].to_numpy(dtype=float)
    late = T > cal_time + 1e-9
    if late.any():
        raise DataValidationError(f"T exceeds the {cal_time:g} units from cohort start to calibration end",
                                  column="T", rows=df["customer_id"].to_numpy()[late])
    births, counts = np.unique(np.round(cal_time - T, 9), return_counts=True)
    ends = tracking["end"].to_numpy(dtype=float)
    lags = ends[None, :] - births[:, None]  # (birth, period)
    positive = lags > 0
    post = model.posterior
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])
    cumulative = np.zeros((post.sizes["chain"], post.sizes["draw"], ends.size))
    birth_idx, period_idx = np.nonzero(positive)
    step = max(1, _TRACKING_CHUNK_ELEMENTS // max(n_samples, 1))
    for start in range(0, birth_idx.size, step):
        b, k = birth_idx[start:start + step], period_idx[start:start + step]
        expected = model.expected_purchases_new_customer(lags[b, k]).to_numpy()  # (chain, draw, lag)
        # customers acquired at b, summed into period k: a (lag, period) weight matrix
        weights = np.zeros((b.size, ends.size))
        weights[np.arange(b.size), k] = counts[b]
        cumulative += expected @ weights
    incremental = np.diff(cumulative, axis=-1, prepend=0.0)
    period = tracking["period"].to_numpy()
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "period": period}
    sample_dims = ("chain", "draw", "period")
    return xr.Dataset(
        {
            "predicted_cumulative": (sample_dims, cumulative),
            "predicted_incremental": (sample_dims, incremental),
            "actual_cumulative": ("period", tracking["cumulative"].to_numpy(dtype=float)),
            "actual_incremental": ("period", tracking["incremental"].to_numpy(dtype=float)),
            "start": ("period", tracking["start"].to_numpy(dtype=float)),
            "end": ("period", ends),
            "holdout": ("period", tracking["holdout"].to_numpy(dtype=bool)),
        },
        coords=coords,
        attrs={"time_unit": model.time_unit, "calibration_end_time": cal_time, "quantity": "expectation"},
    )


# --------------------------------------------------------------------------- compare
def _check_same_customers(models: dict[str, TransactionModel]) -> None:
    """All models were fitted to the same customers with the same calibration data."""
    names = list(models)
    ref_name = names[0]
    ref = models[ref_name].data.set_index("customer_id")
    for name in names[1:]:
        other = models[name].data.set_index("customer_id")
        diff = ref.index.symmetric_difference(other.index)
        if len(diff):
            raise DataValidationError(
                f"models {ref_name!r} and {name!r} were fitted to different customers; "
                "compare needs models fitted to the same data",
                column="customer_id", rows=list(diff),
            )
        aligned = other.reindex(ref.index)
        for col in TransactionModel.data_columns:
            bad = ~np.isclose(ref[col].to_numpy(float), aligned[col].to_numpy(float), rtol=1e-9, atol=1e-12)
            if bad.any():
                raise DataValidationError(
                    f"models {ref_name!r} and {name!r} were fitted to different values; "
                    "compare needs models fitted to the same data",
                    column=col, rows=list(ref.index[bad]),
                )


def loo_tree(model: TransactionModel) -> xr.DataTree:
    """DataTree for ``arviz_stats.loo``: the posterior and a ``log_likelihood`` group.

    The ``log_likelihood`` group holds one variable, ``purchases``, the
    pointwise log-likelihood of each customer's calibration history
    (``model.log_likelihood()``, dims ``chain, draw, customer_id``).
    """
    ll = model.log_likelihood()
    return xr.DataTree.from_dict({
        "posterior": model.posterior,
        "log_likelihood": xr.Dataset({"purchases": ll.drop_attrs()}),
    })


def _loo(model: TransactionModel) -> tuple[dict[str, float], xr.DataArray | None, str]:
    """LOO summary, pointwise elpd (or None) and a note."""
    post = model.posterior
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])
    empty = {c: math.nan for c in ("elpd_loo", "p_loo", "se", "max_pareto_k", "n_pareto_k_gt_0_7")}
    if model.fit_method == "map" or n_samples < 2:
        return empty, None, "MAP fit: a point estimate has no posterior draws, LOO not computed"
    result = azs.loo(loo_tree(model), pointwise=True)
    k = np.asarray(result.pareto_k.values, dtype=float)
    n_high = int((k > PARETO_K_THRESHOLD).sum())
    notes = []
    if model.fit_method == "advi":
        notes.append("ADVI fit: draws from the variational approximation, LOO approximate")
    if n_high:
        notes.append(f"{n_high} customer(s) with Pareto k > {PARETO_K_THRESHOLD}: LOO unreliable for them")
    row = {
        "elpd_loo": float(result.elpd),
        "p_loo": float(result.p),
        "se": float(result.se),
        "max_pareto_k": float(np.nanmax(k)),
        "n_pareto_k_gt_0_7": float(n_high),
    }
    return row, result.elpd_i, "; ".join(notes)


def compare(
    models: dict[str, TransactionModel],
    data: Any | None = None,
    *,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Compare fitted purchase-count models by PSIS-LOO and holdout accuracy.

    LOO (``arviz_stats.loo``) estimates each model's expected log predictive
    density of a left-out customer's calibration history, from the posterior
    draws and the pointwise log-likelihood ``model.log_likelihood()``. It
    needs posterior draws: for MAP fits the LOO columns are NaN and ``note``
    says so (ADVI fits get LOO with a note that it is approximate).

    Parameters
    ----------
    models : dict of str to BetaGeoModel or ParetoNBDModel
        Fitted models by display name, all fitted to the same customers and
        calibration data.
    data : DataFrame, optional
        RFM frame with holdout columns for the holdout metrics (see
        :func:`evaluate`). Default: each model's fitted data. Without holdout
        columns the holdout metric columns are NaN.
    random_seed : int, optional
        Seed of the predictive simulation behind ``coverage_90``.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name (``model``), best LOO first: ``rank`` (0 = highest
        ``elpd_loo``; missing without LOO), ``fit_method``, ``elpd_loo``,
        ``p_loo``, ``se``, ``elpd_diff`` (best ``elpd_loo`` minus this one's),
        ``se_diff`` (standard error of that difference, from the pointwise
        differences), ``max_pareto_k``, ``n_pareto_k_gt_0_7`` (customers with
        Pareto k > 0.7), the holdout metrics ``mae, rmse, predicted_total,
        actual_total, auc, brier, coverage_90`` and ``note``.

    Raises
    ------
    bayesclv.errors.DataValidationError
        The models were fitted to different customers or calibration values.
    TypeError, bayesclv.errors.NotFittedError
        A model is not a fitted purchase-count model.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict of name -> fitted model")
    for model in models.values():
        _check_model(model)
    _check_same_customers(models)

    rows, pointwise = {}, {}
    for name, model in models.items():
        loo_row, elpd_i, note = _loo(model)
        hold = data if data is not None else model.data
        if has_holdout(hold):
            metrics = evaluate(model, hold, prob=(0.9,), random_seed=random_seed).metrics
            holdout = {c: metrics[c] for c in _HOLDOUT_METRICS}
        else:
            holdout = dict.fromkeys(_HOLDOUT_METRICS, math.nan)
        rows[name] = {"fit_method": model.fit_method, **loo_row, **holdout, "note": note}
        if elpd_i is not None:
            pointwise[name] = elpd_i
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table = _rank(table, pointwise)
    return table[["rank", "fit_method", *_LOO_COLUMNS, *_HOLDOUT_METRICS, "note"]]


def _rank(table: pd.DataFrame, pointwise: dict[str, xr.DataArray]) -> pd.DataFrame:
    """Add ``rank``, ``elpd_diff`` and ``se_diff``; sort best first (models without LOO last)."""
    table = table.copy()
    table["rank"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table["elpd_diff"] = math.nan
    table["se_diff"] = math.nan
    if pointwise:
        order = table.loc[list(pointwise), "elpd_loo"].sort_values(ascending=False, kind="stable")
        best = order.index[0]
        ref = pointwise[best]
        ids = ref["customer_id"].to_numpy()
        for rank, name in enumerate(order.index):
            diff = ref.to_numpy() - pointwise[name].sel(customer_id=ids).to_numpy()
            table.loc[name, "rank"] = rank
            table.loc[name, "elpd_diff"] = float(order[best] - order[name])
            table.loc[name, "se_diff"] = float(np.sqrt(diff.size * np.var(diff))) if name != best else 0.0
    key = table["rank"].astype("Float64").fillna(np.inf).to_numpy(dtype=float)
    return table.iloc[np.argsort(key, kind="stable")]
