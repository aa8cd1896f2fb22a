"""Holdout evaluation of purchase-count models, and the tracking forecast.

:func:`evaluate` scores a fitted purchase-count model on the holdout period of
an RFM frame built by ``rfm_summary(..., calibration_end=...)``: point
accuracy of the expected number of holdout purchases, discrimination and
calibration of the probability of buying at all in the holdout, and the
coverage of predictive intervals of the holdout count (the metrics are the
pure functions of :mod:`bayesclv.metrics`, whose notes explain the coverage of
discrete outcomes), the MAPE of the aggregate and per-period forecasts, and
churn classification at a P(alive) threshold scored per posterior draw.
:func:`expected_tracking` predicts the cohort's cumulative repeat purchases per
period (the tracking plot), draw by draw.

Churn. A customer counts as *churned* in the holdout when they made no
purchase in it (the model's hidden dropout is never observed, so holdout
inactivity is the observable stand-in), and as *predicted churned* in a
posterior draw when that draw's P(alive at the end of calibration) is below
the threshold. Churned is the positive class: precision is the share of
predicted churners who made no holdout purchase, recall the share of holdout
non-buyers the model flagged. Each draw gives its own confusion counts, so
accuracy, precision and recall come with intervals over the posterior.
:func:`bayesclv.comparison.compare` puts several models side by side.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import bayesclv.chunks as chunks
from bayesclv.arguments import check_prob, check_whole
from bayesclv.data.tracking import repeat_purchase_tracking
from bayesclv.errors import DataValidationError, NotFittedError
from bayesclv.metrics import (
    auc,
    brier_score,
    calibration_table,
    classification_rates,
    confusion_counts,
    mape,
    pit_bounds,
    pit_coverage,
    point_metrics,
)
from bayesclv.models.contract import TransactionModel
from bayesclv.summaries import SAMPLE_DIMS as SAMPLE
from bayesclv.summaries import interval_bounds, intervals, thin_posterior

__all__ = ["EvaluationResult", "check_transaction_model", "churn_draws", "evaluate", "expected_tracking",
           "has_holdout", "predictive_draws"]

HOLDOUT_COLUMNS = ("frequency_holdout", "T_holdout")


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
    churn : xarray.Dataset or None
        Churn classification per posterior draw (see :func:`churn_draws`).
    """

    customers: pd.DataFrame
    metrics: dict[str, float]
    calibration: pd.DataFrame
    horizon: float = math.nan
    time_unit: str | None = None
    prob: tuple[float, ...] = field(default_factory=tuple)
    tracking: xr.Dataset | None = None
    churn: xr.Dataset | None = None

    def to_frame(self) -> pd.DataFrame:
        """The metrics as a one-row DataFrame (columns in the order of ``metrics``)."""
        return pd.DataFrame([self.metrics])

    def _repr_html_(self) -> str:
        """Jupyter view: metrics and calibration tables (see :mod:`bayesclv.display`)."""
        from bayesclv.display import evaluation_html

        return evaluation_html(self.metrics, self.calibration, len(self.customers), self.horizon, self.time_unit)


# --------------------------------------------------------------------------- checks
def _prob_label(p: float) -> str:
    return f"{100 * p:g}"


def _check_prob(prob: Any) -> tuple[float, ...]:
    values = (prob,) if np.isscalar(prob) else tuple(prob)
    if not values:
        raise ValueError("prob must hold at least one probability")
    out = []
    for p in values:
        out.append(check_prob(p, "each prob"))
    if len(set(out)) != len(out):
        raise ValueError(f"prob has duplicates: {values!r}")
    return tuple(sorted(out))


def check_transaction_model(model: Any) -> None:
    """Raise TypeError unless ``model`` is a purchase-count model, NotFittedError unless it is fitted."""
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
    df = model.prediction_data(data)
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
    """Posterior-predictive holdout counts, about ``n_draws`` (at least) per customer.

    One call of ``model.sample_purchases`` simulates one count per posterior
    draw and customer, every count from its own random numbers. A posterior
    with more draws than needed is thinned first to ``ceil(n_draws / chains)``
    evenly spaced draws per chain: simulating every draw of a long NUTS run
    when a few hundred are asked for is wasted work. A posterior with fewer
    than ``n_draws`` draws (a MAP fit has one) is repeated along ``draw``
    until it has enough, and the one call simulates an independent outcome
    for each repeat: every posterior draw is paired with several simulated
    outcomes, which is still a sample of the posterior predictive. The data
    are validated and the design built once, whatever the number of repeats.

    The simulation draws from one stream, ``np.random.SeedSequence(random_seed)``'s
    first spawned child, so a given ``random_seed`` gives the same counts for a
    given posterior.

    Returns
    -------
    xarray.DataArray
        Integer counts, dims ``(chain, draw, customer_id)``, ``attrs["quantity"] == "outcome"``.
    """
    post = model.posterior
    keep = math.ceil(n_draws / post.sizes["chain"])
    if keep < post.sizes["draw"]:
        sized = thin_posterior(post, keep)
    else:
        reps = math.ceil(n_draws / (post.sizes["chain"] * post.sizes["draw"]))
        sized = post if reps == 1 else _repeat_draws(post, reps)
    if sized is not post:
        model = copy.copy(model)  # the same model on other draws; the caller's model is untouched
        model.idata = xr.DataTree.from_dict({"posterior": sized})
    stream = np.random.SeedSequence(random_seed).spawn(1)[0]
    return model.sample_purchases(horizon, data, random_seed=int(stream.generate_state(1)[0]))


def _repeat_draws(posterior: xr.Dataset, reps: int) -> xr.Dataset:
    """Each chain's draws ``reps`` times over, in order, numbered ``0, 1, ...`` again."""
    n = posterior.sizes["draw"]
    repeated = posterior.isel(draw=np.tile(np.arange(n), reps))
    return repeated.assign_coords(draw=np.arange(n * reps))


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


# --------------------------------------------------------------------------- churn
def churn_draws(p_alive: xr.DataArray, churned: Any, threshold: float = 0.5) -> xr.Dataset:
    """Churn classification at a P(alive) threshold, one confusion table per posterior draw.

    In each draw a customer is predicted churned when P(alive) < ``threshold``;
    churned is the positive class (see the module notes).

    Parameters
    ----------
    p_alive : xarray.DataArray
        P(alive) draws, dims ``(chain, draw, customer_id)`` (``model.probability_alive``).
    churned : array_like of bool
        Whether each customer churned (made no holdout purchase), in the order
        of ``p_alive``'s ``customer_id``.
    threshold : float, default 0.5
        P(alive) below which a customer is predicted churned, in (0, 1).

    Returns
    -------
    xarray.Dataset
        Dims ``(chain, draw)``: ``tp, fp, fn, tn`` (customers predicted churned
        who churned, predicted churned who bought, predicted alive who
        churned, predicted alive who bought) and ``accuracy, precision,
        recall`` (NaN in a draw where they are undefined, see
        :func:`bayesclv.metrics.classification_rates`); ``attrs`` hold
        ``threshold`` and ``customers``.
    """
    threshold = check_prob(threshold, "churn_threshold")
    predicted = p_alive.transpose(*SAMPLE, "customer_id").to_numpy() < threshold
    counts = confusion_counts(predicted, churned)
    rates = classification_rates(**counts)
    return xr.Dataset({k: (SAMPLE, v) for k, v in {**counts, **rates}.items()},
                      coords={d: p_alive[d].to_numpy() for d in SAMPLE},
                      attrs={"threshold": threshold, "customers": int(p_alive.sizes["customer_id"])})


def _churn_metrics(churn: xr.Dataset, prob: float) -> dict[str, float]:
    """Posterior means of the churn rates and counts, and the rates' ``prob`` intervals.

    A rate's mean and interval are over the draws where it is defined; with
    fewer than two such draws (a MAP fit has one) the interval is NaN: a
    point estimate has no posterior spread to show.
    """
    label = _prob_label(prob)
    out = {}
    for name in ("accuracy", "precision", "recall"):
        defined = churn[name].to_numpy().ravel()
        defined = defined[np.isfinite(defined)]
        out[f"churn_{name}"] = float(defined.mean()) if defined.size else math.nan
        lower = upper = math.nan
        if defined.size > 1:
            bounds = interval_bounds(xr.DataArray(defined[None, :], dims=SAMPLE), prob, "eti")
            lower, upper = (float(b) for b in bounds)
        out[f"churn_{name}_lower_{label}"] = lower
        out[f"churn_{name}_upper_{label}"] = upper
    for name in ("tp", "fp", "fn", "tn"):
        out[f"churn_{name}"] = float(churn[name].mean())
    return out


# --------------------------------------------------------------------------- evaluate
def evaluate(
    model: TransactionModel,
    data: Any | None = None,
    *,
    prob: float | tuple[float, ...] = (0.5, 0.8, 0.9),
    random_seed: int | None = None,
    n_draws: int = 1000,
    churn_threshold: float = 0.5,
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
    model : TransactionModel
        A fitted purchase-count model (any fit method).
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
        Simulated holdout counts per customer (at least, rounded up to whole
        draws per chain): a posterior with more draws is thinned to evenly
        spaced ones, one with fewer (a MAP fit has one) is simulated repeatedly.
    churn_threshold : float, default 0.5
        P(alive) below which a customer is predicted churned (see the module
        notes and :func:`churn_draws`).
    transactions : DataFrame, optional
        The transaction log the RFM frame was built from. When given, the
        result's ``tracking`` holds the cohort's actual and predicted repeat
        purchases per period (:func:`bayesclv.data.repeat_purchase_tracking`,
        :func:`expected_tracking`), and ``metrics`` gains
        ``tracking_calibration_error_pct`` and ``tracking_holdout_error_pct``
        (100 x (predicted - actual) / actual of the cumulative repeat purchases
        at the end of calibration and of the holdout), ``mape_periods_calibration``
        and ``mape_periods_holdout`` (MAPE of the posterior-mean repeat purchases
        per period against the actual ones, over the calibration and the holdout
        periods) with ``zero_periods_calibration`` and ``zero_periods_holdout``,
        the periods left out of them because nobody bought (see
        :func:`bayesclv.metrics.mape`).
    customer_id, date : str
        Columns of ``transactions``.

    Returns
    -------
    EvaluationResult
        ``customers`` (per-customer frame), ``metrics`` and ``calibration``.
        ``metrics`` holds ``mae``, ``rmse``, ``bias`` (mean predicted - actual),
        ``predicted_total``, ``actual_total``, ``total_error_pct``, ``correlation``
        (Pearson, predicted vs actual), ``mape_total`` (absolute percentage error
        of the predicted holdout total; NaN when nobody bought), ``auc`` and
        ``brier`` (of ``p_active_holdout`` against ``actual > 0``),
        ``auc_p_alive`` (how well P(alive) ranks holdout buyers above
        non-buyers), the churn classification at ``churn_threshold``
        (``churn_accuracy``, ``churn_precision``, ``churn_recall``: posterior
        means, each with ``_lower_<p>``/``_upper_<p>`` bounds of its interval at
        the largest ``p``, NaN for a point estimate; ``churn_tp``, ``churn_fp``,
        ``churn_fn``, ``churn_tn``: posterior mean counts; the draws are in
        ``churn``) and ``coverage_<p>`` for
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
    check_transaction_model(model)
    prob = _check_prob(prob)
    check_whole("n_draws", n_draws)
    churn_threshold = check_prob(churn_threshold, "churn_threshold")
    df, horizon = _holdout_data(model, data)

    def posterior_mean(da: xr.DataArray) -> np.ndarray:
        return da.mean(SAMPLE).to_numpy()

    actual = df["frequency_holdout"].to_numpy(dtype=float)
    p_alive = model.probability_alive(df)
    customers = pd.DataFrame({
        "customer_id": df["customer_id"].to_numpy(),
        "actual": actual,
        "predicted": posterior_mean(model.expected_purchases(horizon, df)),
        "p_alive": posterior_mean(p_alive),
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
    metrics["mape_total"] = mape([metrics["actual_total"]], [metrics["predicted_total"]])[0]
    metrics["auc"] = auc(p_active, active)
    metrics["brier"] = brier_score(np.clip(p_active, 0.0, 1.0), active)
    metrics["auc_p_alive"] = auc(customers["p_alive"].to_numpy(), active)
    churn = churn_draws(p_alive, ~active, churn_threshold)
    metrics.update(_churn_metrics(churn, prob[-1]))
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
        for part, mask in (("calibration", ~tracking["holdout"].values), ("holdout", tracking["holdout"].values)):
            predicted_periods = tracking["predicted_incremental"].mean(SAMPLE).to_numpy()[mask]
            value, n_zero = mape(tracking["actual_incremental"].to_numpy()[mask], predicted_periods)
            metrics[f"mape_periods_{part}"] = value
            metrics[f"zero_periods_{part}"] = float(n_zero)
    return EvaluationResult(customers=customers, metrics=metrics, calibration=calibration,
                            horizon=horizon, time_unit=model.time_unit, prob=prob, tracking=tracking, churn=churn)


# --------------------------------------------------------------------------- tracking
def expected_tracking(model: TransactionModel, tracking: pd.DataFrame, data: Any | None = None) -> xr.Dataset:
    """Predicted cumulative and incremental repeat purchases of the cohort per period, per draw.

    Customer ``i`` is acquired at ``b_i = c - T_i`` (``c`` the calibration end
    in units since the cohort start, ``tracking.attrs["calibration_end_time"]``,
    ``T_i`` from the RFM frame); by the end ``e_k`` of period ``k`` the cohort is
    expected to have made ``sum_i E[X(e_k - b_i)]`` repeat purchases, with
    ``E[X(t)]`` the expected purchases of a new customer in their first ``t``
    units (:meth:`expected_purchases_new_customer`), evaluated for every
    posterior draw (Fader, Hardie & Lee 2005, the tracking plot). Acquisition
    days and period ends lie on the day grid, so ``E[X]`` is evaluated once per
    distinct lag (at most the days of the tracking), in chunks bounded by
    draws x lags.

    Parameters
    ----------
    model : TransactionModel
        Fitted purchase-count model.
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
    check_transaction_model(model)
    df = model.prediction_data(data)
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
    ends = tracking["end"].to_numpy(dtype=float)
    post = model.posterior
    cumulative = np.zeros((post.sizes["chain"], post.sizes["draw"], ends.size))
    # a grouped population model predicts a new customer per group: each group's customers
    # are tracked with their own group's E[X(t)]
    groups = model.expected_purchases_new_customer(1.0).coords.get("group")
    if groups is None:
        cumulative += _cohort_cumulative(model, T, ends, cal_time, {})
    else:
        labels = df[model.group].to_numpy()
        for label in groups.values:
            cumulative += _cohort_cumulative(model, T[labels == label], ends, cal_time, {"group": label})
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


def _cohort_cumulative(model: Any, T: np.ndarray, ends: np.ndarray, cal_time: float,
                       select: dict) -> np.ndarray:
    """``sum_i E[X(e_k - b_i)]`` per draw and period end ``e_k`` for customers of ages ``T`` at ``cal_time``."""
    post = model.posterior
    cumulative = np.zeros((post.sizes["chain"], post.sizes["draw"], ends.size))
    if T.size == 0:
        return cumulative
    births, counts = np.unique(np.round(cal_time - T, 9), return_counts=True)
    lags = ends[None, :] - births[:, None]  # (birth, period)
    birth_idx, period_idx = np.nonzero(lags > 0)
    # births and period ends lie on the day grid, so the (birth, period) pairs share few lags: E[X(lag)]
    # once per distinct lag, then a (lag, period) weight matrix sums each period's customers
    distinct, lag_idx = np.unique(np.round(lags[birth_idx, period_idx], 9), return_inverse=True)
    weights = np.zeros((distinct.size, ends.size))
    np.add.at(weights, (lag_idx, period_idx), counts[birth_idx])
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])
    step = chunks.chunk_length(n_samples)  # lags per chunk: draws x lags in the chunk budget
    for start in range(0, distinct.size, step):
        expected = model.expected_purchases_new_customer(distinct[start:start + step]).sel(select)
        cumulative += expected.transpose("chain", "draw", "t").to_numpy() @ weights[start:start + step]
    return cumulative
