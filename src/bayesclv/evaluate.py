"""Holdout evaluation, calibration/coverage and model comparison of purchase-count models.

:func:`evaluate` scores a fitted BG/NBD or Pareto/NBD model on the holdout
period of an RFM frame built by ``rfm_summary(..., calibration_end=...)``:
point accuracy of the expected number of holdout purchases, discrimination
and calibration of the probability of buying at all in the holdout, and the
coverage of predictive intervals of the holdout count.

:func:`compare` puts several models side by side: PSIS-LOO (``arviz_stats``)
on the calibration data for sampled fits, and the holdout metrics.

The metric helpers (:func:`auc`, :func:`brier_score`, :func:`coverage`,
:func:`calibration_table`) are small pure functions of arrays.
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
from bayesclv.data import validate_rfm
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
]

HOLDOUT_COLUMNS = ("frequency_holdout", "T_holdout")
PARETO_K_THRESHOLD = 0.7
SAMPLE = ("chain", "draw")
_LOO_COLUMNS = ("elpd_loo", "p_loo", "se", "elpd_diff", "se_diff", "max_pareto_k", "n_pareto_k_gt_0_7")
_HOLDOUT_METRICS = ("mae", "rmse", "predicted_total", "actual_total", "auc", "brier", "coverage_90")


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
    """

    customers: pd.DataFrame
    metrics: dict[str, float]
    calibration: pd.DataFrame
    horizon: float = math.nan
    time_unit: str | None = None
    prob: tuple[float, ...] = field(default_factory=tuple)

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

    Returns
    -------
    EvaluationResult
        ``customers`` (per-customer frame), ``metrics`` and ``calibration``.
        ``metrics`` holds ``mae``, ``rmse``, ``bias`` (mean predicted - actual),
        ``predicted_total``, ``actual_total``, ``total_error_pct``, ``correlation``
        (Pearson, predicted vs actual), ``auc`` and ``brier`` (of
        ``p_active_holdout`` against ``actual > 0``) and ``coverage_<p>`` for
        each ``p`` (share of customers inside their interval). ``calibration``
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
    for p in prob:
        label = _prob_label(p)
        lower = bounds[f"lower_{label}"].to_numpy()
        upper = bounds[f"upper_{label}"].to_numpy()
        customers[f"lower_{label}"] = lower
        customers[f"upper_{label}"] = upper
        customers[f"inside_{label}"] = (lower <= actual) & (actual <= upper)

    active = actual > 0
    p_active = customers["p_active_holdout"].to_numpy()
    metrics = point_metrics(actual, customers["predicted"].to_numpy())
    metrics["auc"] = auc(p_active, active)
    metrics["brier"] = brier_score(np.clip(p_active, 0.0, 1.0), active)
    for p in prob:
        label = _prob_label(p)
        metrics[f"coverage_{label}"] = float(customers[f"inside_{label}"].mean())
    calibration = calibration_table(p_active, active, actual, customers["predicted"].to_numpy())
    return EvaluationResult(customers=customers, metrics=metrics, calibration=calibration,
                            horizon=horizon, time_unit=model.time_unit, prob=prob)


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
