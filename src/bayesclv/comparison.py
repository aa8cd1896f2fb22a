"""Model comparison: fit (or take fitted) purchase-count models on one data set and score them side by side.

:func:`compare` works through the model contract only
(:mod:`bayesclv.models.contract`), so any family that implements
:class:`~bayesclv.models.contract.TransactionModel` (pooled, grouped,
hierarchical, a family added later) takes part unchanged. Per model it reports:

- PSIS-LOO (``arviz_stats.loo``) of each customer's calibration history, and
  the difference to the best model with its standard error. LOO compares
  models only on the same observations: the same customers with the same
  values in the same likelihood columns. A model fitted to other customers or
  values, or whose likelihood observes other columns (a discrete-time
  family's opportunities, say), gets no LOO and its ``note`` says why.
- Holdout accuracy from :func:`bayesclv.evaluate.evaluate`: MAE/RMSE of the
  expected holdout purchases, predicted vs actual total, the randomised-PIT
  coverage of the predictive intervals, how well P(alive) ranks holdout buyers
  (AUC) and the Brier score of P(active in the holdout).
- What the fit cost (wall and CPU seconds, from the model's diagnostics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.arguments import check_prob
from bayesclv.evaluate import check_transaction_model, evaluate, has_holdout
from bayesclv.models.contract import TransactionModel

__all__ = ["compare", "observation_difference"]

PARETO_K_THRESHOLD = 0.7
_LOO_COLUMNS = ("elpd_loo", "p_loo", "se", "elpd_diff", "se_diff", "max_pareto_k", "n_pareto_k_gt_0_7")
_POINT_METRICS = ("mae", "rmse", "predicted_total", "actual_total", "total_error_pct")
_RANK_METRICS = ("auc_p_alive", "auc", "brier")


# --------------------------------------------------------------------------- models from specs
def _instance(spec: Any, name: str) -> tuple[Any, dict[str, Any]]:
    """The model a spec names (a class is instantiated) and the spec's own fit arguments."""
    fit_kwargs: dict[str, Any] = {}
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[1], Mapping):
            raise TypeError(f"model {name!r}: a spec pair is (model or class, dict of fit arguments), got {spec!r}")
        spec, fit_kwargs = spec[0], dict(spec[1])
    model = spec() if isinstance(spec, type) else spec
    if not isinstance(model, TransactionModel):
        raise TypeError(f"model {name!r}: compare takes purchase-count models (BG/NBD, Pareto/NBD and the "
                        f"other TransactionModel families), got {type(model).__name__}")
    return model, fit_kwargs


def _named(models: Any) -> dict[str, Any]:
    """Specs by name: a mapping as given, a sequence named by display name (numbered when repeated)."""
    if isinstance(models, Mapping):
        named = {str(k): v for k, v in models.items()}
    elif isinstance(models, (list, tuple)):
        named = {}
        for spec in models:
            target = spec[0] if isinstance(spec, tuple) and spec else spec
            base = getattr(target, "display_name", type(target).__name__)
            base = base if isinstance(base, str) else type(target).__name__
            name, n = base, 1
            while name in named:
                n += 1
                name = f"{base} ({n})"
            named[name] = spec
    else:
        raise TypeError(f"models must be a dict of name -> model or a list of models, got {type(models).__name__}")
    if not named:
        raise ValueError("models is empty: give at least one model, model class or fitted model")
    return named


def _fit_all(specs: dict[str, Any], data: Any, fit_kwargs: dict[str, Any]) -> dict[str, TransactionModel]:
    """Each spec's model, fitted to ``data`` unless it came fitted; every spec is checked before any fit."""
    planned = {}
    for name, spec in specs.items():
        model, own = _instance(spec, name)
        if getattr(model, "idata", None) is None:
            if data is None:
                raise ValueError(f"model {name!r} is not fitted: pass data to fit it on")
            kwargs = {"progressbar": False, **fit_kwargs, **own}
            refused = getattr(model, "unsupported_methods", {}).get(kwargs.get("method", "nuts"))
            if refused:
                raise ValueError(f"model {name!r} cannot be fitted by {kwargs['method']!r}: {refused}; "
                                 "give it its own fit arguments as (model, {'method': ...})")
            planned[name] = (model, kwargs)
        else:
            check_transaction_model(model)
            planned[name] = (model, None)
    for model, kwargs in planned.values():
        if kwargs is not None:
            model.fit(data, **kwargs)
    return {name: model for name, (model, _) in planned.items()}


# --------------------------------------------------------------------------- LOO
def _observed(model: TransactionModel) -> tuple[str, ...]:
    """The likelihood columns that are observations: ``data_columns`` and any further ``observed_columns`` (the
    joint spend models' spend statistics), without ``likelihood_only_columns``.

    A likelihood-only column is a statistic of the same purchase times that
    enters the likelihood as a constant (the CNBD-k's sum of log inter-purchase
    times, ``litt``): every continuous-time family's likelihood is the density
    of a customer's purchase times, and the CNBD-k's includes that constant so
    that it is, so the observations are still ``frequency, recency, T``.
    """
    extra = set(getattr(model, "likelihood_only_columns", ()))
    columns = dict.fromkeys((*model.data_columns, *getattr(model, "observed_columns", ())))
    return tuple(c for c in columns if c not in extra)


def observation_difference(model: TransactionModel, reference: TransactionModel) -> str | None:
    """Why ``model``'s log-likelihood is not over the same observations as ``reference``'s (None if it is).

    The same observations: the same customers, the same observed likelihood
    columns (``data_columns`` less any ``likelihood_only_columns``) and the
    same values in them.

    Returns
    -------
    str or None
        A sentence naming the difference, or None.
    """
    ours_cols, ref_cols = _observed(model), _observed(reference)
    if set(ours_cols) != set(ref_cols):
        return f"its likelihood observes {', '.join(ours_cols)}, the reference's {', '.join(ref_cols)}"
    ours = model.data.set_index("customer_id")
    theirs = reference.data.set_index("customer_id")
    extra = ours.index.difference(theirs.index)
    missing = theirs.index.difference(ours.index)
    if len(extra) or len(missing):
        return (f"fitted to other customers ({len(extra):,} not in the reference's data, "
                f"{len(missing):,} of its customers missing)")
    aligned = ours.reindex(theirs.index)
    for col in ref_cols:
        differ = ~np.isclose(aligned[col].to_numpy(float), theirs[col].to_numpy(float), rtol=1e-9, atol=1e-12)
        if differ.any():
            return f"fitted to other values of {col} ({int(differ.sum()):,} customers differ)"
    return None


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


def _rank(table: pd.DataFrame, pointwise: dict[str, xr.DataArray]) -> pd.DataFrame:
    """Add ``rank``, ``elpd_diff`` and ``se_diff``; sort best first (models without LOO last, in order)."""
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


# --------------------------------------------------------------------------- holdout
def _holdout_columns(label: str) -> tuple[str, ...]:
    return (*_POINT_METRICS, f"pit_coverage_{label}", f"coverage_{label}", f"interval_mass_{label}", *_RANK_METRICS)


def _holdout(model: TransactionModel, frame: Any, prob: float, n_draws: int,
             random_seed: int | None) -> dict[str, float]:
    label = f"{100 * prob:g}"
    if not has_holdout(frame):
        return dict.fromkeys(_holdout_columns(label), math.nan)
    metrics = evaluate(model, frame, prob=(prob,), n_draws=n_draws, random_seed=random_seed).metrics
    return {c: metrics[c] for c in _holdout_columns(label)}


# --------------------------------------------------------------------------- compare
def compare(
    models: Mapping[str, Any] | list[Any],
    data: Any | None = None,
    *,
    holdout: Any | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    prob: float = 0.9,
    n_draws: int = 1000,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Fit (or take fitted) purchase-count models on the same data and compare them in one table.

    Parameters
    ----------
    models : dict of str to spec, or list of specs
        What to compare, by name (a list is named by each model's
        ``display_name``, numbered when repeated). A spec is a model class
        (fitted with its default priors), an unfitted model (fitted in place,
        so you keep it), a fitted model (used as it is), or a pair
        ``(class or model, dict of fit arguments)`` for arguments of its own
        (e.g. NUTS for a hierarchical model among MAP fits).
    data : DataFrame, optional
        The RFM frame the unfitted models are fitted to (``bayesclv.rfm_summary``).
        With holdout columns (``calibration_end=``) and no ``holdout``, it is also
        the holdout frame. Needed unless every model comes fitted.
    holdout : DataFrame, optional
        RFM frame with ``frequency_holdout`` and ``T_holdout`` for the holdout
        metrics (see :func:`bayesclv.evaluate`). Default: ``data``, or else the
        first model's fitted data. Without holdout columns those metrics are NaN.
    fit_kwargs : dict, optional
        Arguments of every fit (e.g. ``{"method": "map"}`` or ``{"draws": 500}``),
        under a spec's own; ``progressbar`` defaults to False.
    prob : float, default 0.9
        Probability of the predictive intervals whose coverage is reported.
    n_draws : int, default 1000
        Simulated holdout counts per customer for the coverage.
    random_seed : int, optional
        Seed of the predictive simulation (the same for every model).

    Returns
    -------
    pandas.DataFrame
        One row per model (index ``model``), best LOO first, then the models
        without LOO in the order given. Columns:

        - ``rank`` (0 = highest ``elpd_loo``), ``family`` (display name),
          ``fit_method``, ``fit_seconds``, ``fit_cpu_seconds``;
        - ``elpd_loo``, ``p_loo``, ``se``, ``elpd_diff`` (best ``elpd_loo``
          minus this one's), ``se_diff`` (its standard error from the
          pointwise differences), ``max_pareto_k``, ``n_pareto_k_gt_0_7``:
          NaN for a MAP fit and for a model whose observations differ from
          those of the first model given (the LOO reference);
        - ``mae``, ``rmse``, ``predicted_total``, ``actual_total``,
          ``total_error_pct`` of the expected holdout purchases;
          ``pit_coverage_<p>`` (randomised-PIT coverage of the ``prob``
          predictive interval; a calibrated model shows exactly ``prob``),
          ``coverage_<p>`` and ``interval_mass_<p>`` (plain coverage of the
          whole-number intervals and the mass they hold); ``auc_p_alive``
          (how well P(alive) ranks holdout buyers above non-buyers), ``auc``
          and ``brier`` (of P(active in the holdout), the probability of the
          event observed: a Brier score of P(alive) itself would count every
          alive customer who happens not to buy as a miss);
        - ``note``: why LOO is missing or unreliable, and whether an MCMC fit
          did not converge (its ``diagnostics["ok"]`` is false).

        ``attrs`` hold ``prob`` and ``loo_reference`` (the first model's name).

    Raises
    ------
    TypeError
        A spec is not a purchase-count model or model class.
    ValueError
        ``models`` is empty, a model needs fitting and there is no ``data``, or
        a model cannot be fitted by the method asked for (checked before any fit).
    bayesclv.errors.NotFittedError
        A model given as fitted is not.

    Examples
    --------
    >>> import bayesclv as bc
    >>> rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30")
    >>> table = bc.compare([bc.BetaGeoModel, bc.ParetoNBDModel], rfm,
    ...                    fit_kwargs={"method": "map"}, random_seed=1)  # doctest: +SKIP
    >>> table[["mae", "pit_coverage_90", "auc_p_alive"]]  # doctest: +SKIP
    """
    prob = check_prob(prob)
    fitted = _fit_all(_named(models), data, dict(fit_kwargs or {}))
    names = list(fitted)
    reference = fitted[names[0]]
    frame = holdout if holdout is not None else data if data is not None else reference.data

    rows, pointwise = {}, {}
    for name, model in fitted.items():
        differs = observation_difference(model, reference)
        if differs is None:
            loo_row, elpd_i, note = _loo(model)
        else:
            loo_row = dict.fromkeys(("elpd_loo", "p_loo", "se", "max_pareto_k", "n_pareto_k_gt_0_7"), math.nan)
            elpd_i, note = None, f"LOO refused: not the same observations as {names[0]!r}, {differs}"
        diag = dict(model.diagnostics or {})
        if "max_r_hat" in diag and not diag.get("ok", True):
            note = "; ".join(filter(None, [
                f"{'NUTS' if model.fit_method == 'nuts' else 'MCMC'} not converged (max R-hat {diag['max_r_hat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
                f"{int(diag['divergences'])} divergences): its numbers are provisional", note]))
        rows[name] = {
            "family": model.display_name, "fit_method": model.fit_method,
            "fit_seconds": float(diag.get("fit_seconds", math.nan)),
            "fit_cpu_seconds": float(diag.get("fit_cpu_seconds", math.nan)),
            **loo_row, **_holdout(model, frame, prob, n_draws, random_seed), "note": note,
        }
        if elpd_i is not None:
            pointwise[name] = elpd_i
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table = _rank(table, pointwise)
    label = f"{100 * prob:g}"
    table = table[["rank", "family", "fit_method", "fit_seconds", "fit_cpu_seconds", *_LOO_COLUMNS,
                   *_holdout_columns(label), "note"]]
    table.attrs = {"prob": prob, "loo_reference": names[0]}
    return table
