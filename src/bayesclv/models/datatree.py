"""The fit as one ArviZ DataTree: every group ``arviz_stats`` and ``arviz_plots`` read.

``model.idata`` keeps what the fit produced: ``posterior`` (attrs
``fit_method`` and ``point_estimate``) and, for NUTS, the sampler's
``sample_stats``; ``az.summary``, ``az.rhat``, ``az.ess`` and ``az.bfmi`` take
it as it is. The groups that describe the data, and the heavy ones, are built
on demand by :func:`fit_datatree` (``model.to_datatree()``) from the model's
fitted data and its contract (``log_likelihood``, ``simulate_population``),
so every model class, present or to come, gets them alike: the pointwise
log-likelihood of 23,570 CDNOW customers x 4,000 draws is 750 MB, too much to
carry in every fitted model and every saved file.

Pairing: ArviZ pairs ``observed_data``, ``log_likelihood`` and
``posterior_predictive`` by variable name, ``az.loo``/``az.compare`` need a
single log-likelihood variable and ``az.loo_pit`` one per observed variable,
each a value per customer. A customer's likelihood is that of their whole
history (``frequency`` and ``recency`` given ``T``; the mean spend given the
number of purchases), so the tree observes one column per customer, the
model's first observed column (``frequency``; ``monetary_value`` for the
Gamma-Gamma), under whose name it files that whole-history log-likelihood and
the simulated replicates; LOO weighs customers by their whole history and the
predictive checks compare that column. The rest of each customer's data
(``recency``, ``T``, the group, covariates) is ``constant_data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["COUNT_COLUMNS", "fit_datatree", "observed_name"]

#: Observed columns that count purchases (whole numbers, checked by the data validation).
COUNT_COLUMNS = ("frequency",)


def observed_name(model: Any) -> str:
    """The column the tree observes (``observed_data``, ``log_likelihood``, ``posterior_predictive``).

    The model's first observed column that its predictions also read: not a
    likelihood-only summary such as CNBD-k's ``litt``.
    """
    only = getattr(model, "likelihood_only_columns", ())
    return next(c for c in model.observed_columns if c not in only)


def _as_counts(name: str, values: np.ndarray) -> np.ndarray:
    """Repeat-purchase counts as integers (ArviZ's discrete-data plots, e.g. the rootogram, test the dtype)."""
    return values.astype(np.int64) if name in COUNT_COLUMNS else values


def _posterior_predictive(model: Any, name: str, customer_id: np.ndarray,
                          random_seed: int | np.random.Generator | None) -> xr.DataArray:
    """A simulated history of every customer for every posterior draw (``simulate_population``), its ``name`` column."""
    post = model.posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    simulated = model.simulate_population(np.arange(n_chain * n_draw), random_seed=random_seed)
    return xr.DataArray(_as_counts(name, np.asarray(simulated[name]).reshape(n_chain, n_draw, -1)),
                        dims=("chain", "draw", "customer_id"),
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                "customer_id": customer_id})


def fit_datatree(model: Any, *, log_likelihood: bool = True, posterior_predictive: bool = False,
                 random_seed: int | np.random.Generator | None = None) -> xr.DataTree:
    """The fitted model as an ArviZ DataTree (see :meth:`bayesclv.models.CLVModel.to_datatree`)."""
    model.check_fitted()
    df: pd.DataFrame = model.data
    customer_id = df["customer_id"].to_numpy()
    name = observed_name(model)
    constant = [c for c in (*model.observed_columns, *model.constant_columns) if c != name]
    groups = {child: model.idata[child].to_dataset() for child in model.idata.children}
    groups["observed_data"] = xr.Dataset({name: ("customer_id", _as_counts(name, df[name].to_numpy()))},
                                         coords={"customer_id": customer_id})
    groups["constant_data"] = xr.Dataset({c: ("customer_id", df[c].to_numpy()) for c in dict.fromkeys(constant)},
                                         coords={"customer_id": customer_id})
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset({name: model.log_likelihood().drop_attrs()})
    if posterior_predictive:
        groups["posterior_predictive"] = xr.Dataset(
            {name: _posterior_predictive(model, name, customer_id, random_seed)})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {"bayesclv_model": type(model).__name__, "fit_method": str(model.fit_method),
                  "time_unit": str(model.time_unit)}
    return tree
