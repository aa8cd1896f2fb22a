"""Model comparison: PSIS-LOO on the calibration data and holdout accuracy, side by side."""

from __future__ import annotations

import math
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.errors import DataValidationError
from bayesclv.evaluate import check_transaction_model, evaluate, has_holdout
from bayesclv.models.contract import TransactionModel

__all__ = ["compare"]

PARETO_K_THRESHOLD = 0.7
_LOO_COLUMNS = ("elpd_loo", "p_loo", "se", "elpd_diff", "se_diff", "max_pareto_k", "n_pareto_k_gt_0_7")
_HOLDOUT_METRICS = ("mae", "rmse", "predicted_total", "actual_total", "auc", "brier", "coverage_90",
                    "interval_mass_90", "pit_coverage_90")


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
        for col in models[ref_name].data_columns:
            bad = ~np.isclose(ref[col].to_numpy(float), aligned[col].to_numpy(float), rtol=1e-9, atol=1e-12)
            if bad.any():
                raise DataValidationError(
                    f"models {ref_name!r} and {name!r} were fitted to different values; "
                    "compare needs models fitted to the same data",
                    column=col, rows=list(ref.index[bad]),
                )


def _loo(model: TransactionModel) -> tuple[dict[str, float], xr.DataArray | None, str]:
    """LOO summary, pointwise elpd (or None) and a note."""
    post = model.posterior
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])
    empty = {c: math.nan for c in ("elpd_loo", "p_loo", "se", "max_pareto_k", "n_pareto_k_gt_0_7")}
    if model.fit_method == "map" or n_samples < 2:
        return empty, None, "MAP fit: a point estimate has no posterior draws, LOO not computed"
    # the model's own ArviZ tree, the one az.loo / az.compare take directly
    result = azs.loo(model.to_datatree(), pointwise=True)
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

    LOO (``arviz_stats.loo`` of ``model.to_datatree()``) estimates each model's
    expected log predictive density of a left-out customer's calibration
    history, from the posterior draws and the pointwise log-likelihood. It
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
        check_transaction_model(model)
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
