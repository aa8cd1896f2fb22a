"""Metrics of predictions against outcomes: pure functions of arrays.

Point accuracy (:func:`point_metrics`, :func:`mape`), discrimination and
calibration of predicted probabilities (:func:`auc`, :func:`brier_score`,
:func:`calibration_table`), a yes/no classification scored per posterior draw
(:func:`confusion_counts`, :func:`classification_rates`) and coverage of
predictive intervals (:func:`coverage`, :func:`pit_bounds`, :func:`pit_coverage`).

Zero actuals in the MAPE. The percentage error of a forecast of 0 is undefined
(any error divided by 0), and periods with no purchases are common in a
tracking series (holidays, the first days of a cohort). :func:`mape` leaves
them out of the mean and returns how many it left out, so a reader sees on
how many periods the figure rests; with no non-zero actual it is NaN.

Coverage of discrete outcomes. A predictive interval of a count is a set of
whole numbers; with inclusive bounds it holds *at least* its nominal mass
(for a customer with P(0 purchases) = 0.93 the 90% interval is ``[0, 0]`` and
holds 0.93), so the share of customers inside it exceeds the nominal level
even for a perfectly calibrated model. :func:`bayesclv.evaluate.evaluate`
therefore reports, next to that plain ``coverage_<p>``, ``interval_mass_<p>``
(the mean predictive mass the inclusive intervals actually hold: what
``coverage_<p>`` should be under calibration) and ``pit_coverage_<p>``, the
coverage of the central ``p`` interval of the *randomised* probability
integral transform (PIT) ``u = F(y-1) + V (F(y) - F(y-1))``, ``V ~ U(0, 1)``,
which is exactly Uniform(0, 1) for a calibrated model of a discrete outcome
(Czado, Gneiting & Held 2009). ``pit_coverage_<p>`` is the expectation over
``V`` (no randomness), so its nominal value is exactly ``p``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from bayesclv.arguments import check_prob

__all__ = ["auc", "brier_score", "calibration_table", "classification_rates", "confusion_counts", "coverage", "mape",
           "pit_bounds", "pit_coverage", "point_metrics"]


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
    check_prob(prob)
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


def mape(actual: Any, predicted: Any) -> tuple[float, int]:
    """Mean absolute percentage error over the non-zero actuals, and how many zero actuals were left out.

    ``MAPE = 100 / m * sum_{i: a_i != 0} |p_i - a_i| / |a_i|`` with ``m`` the
    number of non-zero actuals; zero actuals are left out (see the module notes).

    Parameters
    ----------
    actual, predicted : array_like of float
        Observed and forecast values (e.g. purchases per period), the same shape.

    Returns
    -------
    tuple
        ``(mape, n_zero)``: the MAPE in percent (NaN when every actual is 0)
        and the number of zero actuals left out.

    Examples
    --------
    >>> mape([10, 0, 20], [12, 3, 15])
    (22.5, 1)
    """
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted must have the same shape, got {a.shape} and {p.shape}")
    if not (np.isfinite(a).all() and np.isfinite(p).all()):
        raise ValueError("actual and predicted must be finite")
    kept = a != 0
    n_zero = int(a.size - kept.sum())
    if not kept.any():
        return math.nan, n_zero
    return float(100.0 * np.mean(np.abs(p[kept] - a[kept]) / np.abs(a[kept]))), n_zero


def confusion_counts(predicted: Any, actual: Any) -> dict[str, np.ndarray]:
    """Confusion counts of yes/no predictions against outcomes, for each set of predictions.

    Parameters
    ----------
    predicted : array_like of bool
        Predictions, shape ``(..., n)``: the leading axes index sets of
        predictions (e.g. posterior draws), the last one the cases.
    actual : array_like of bool or {0, 1}
        Outcomes, shape ``(n,)``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``tp`` (predicted yes, was yes), ``fp`` (predicted yes, was no),
        ``fn`` (predicted no, was yes), ``tn`` (predicted no, was no): integer
        arrays of the leading shape of ``predicted``.

    Examples
    --------
    >>> {k: v.tolist() for k, v in confusion_counts([[1, 1, 0, 0], [1, 0, 0, 0]], [1, 0, 1, 0]).items()}
    {'tp': [1, 1], 'fp': [1, 0], 'fn': [1, 1], 'tn': [1, 2]}
    """
    y = _as_labels(actual)
    pred = _as_labels(predicted)
    if y.ndim != 1 or pred.shape[-1:] != y.shape:
        raise ValueError(f"predicted must be (..., n) and actual (n,), got {pred.shape} and {y.shape}")
    tp = (pred & y).sum(axis=-1)
    fp = (pred & ~y).sum(axis=-1)
    n_yes = int(y.sum())
    return {"tp": tp, "fp": fp, "fn": n_yes - tp, "tn": (y.size - n_yes) - fp}


def classification_rates(tp: Any, fp: Any, fn: Any, tn: Any) -> dict[str, np.ndarray]:
    """Accuracy, precision and recall from confusion counts (elementwise).

    ``accuracy = (tp + tn) / n``, ``precision = tp / (tp + fp)`` (NaN where
    nothing was predicted yes), ``recall = tp / (tp + fn)`` (NaN where no
    case was yes).

    Parameters
    ----------
    tp, fp, fn, tn : array_like of int
        Confusion counts, as from :func:`confusion_counts`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``accuracy``, ``precision``, ``recall`` (float arrays of the counts' shape).

    Examples
    --------
    >>> {k: float(v) for k, v in classification_rates(3, 1, 2, 4).items()}
    {'accuracy': 0.7, 'precision': 0.75, 'recall': 0.6}
    """
    tp, fp, fn, tn = (np.asarray(v, dtype=float) for v in (tp, fp, fn, tn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
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
