"""Population parameters per group: how groups share information, their labels and codes, each row's parameters.

With ``group="col"`` each group gets its own population parameters (posterior
dim ``group``, coordinates = the sorted labels); ``pooling`` says how they
share information. Rows carry the code of their group's label, and
:func:`row_params` hands each row its group's parameters, in a PyMC graph and
in NumPy predictions alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayesclv.errors import DataValidationError
from bayesclv.formulas import PT
from bayesclv.models.engine import compress_rows
from bayesclv.priors import Prior

__all__ = ["GROUP_CODE", "POOLINGS", "check_pooling", "create_quantity", "distinct_rows", "group_codes",
           "group_labels", "pooled_priors", "quantity_dims", "row_params", "summed_tables"]

POOLINGS = ("complete", "partial", "none")
GROUP_CODE = "group_code"  # column of a design frame: index of each row's group label
# hyperpriors of partial pooling, on the log scale of each sampled quantity
HYPER_MEAN_PRIOR = Prior("Normal", mu=0.0, sigma=3.0)
HYPER_SD_PRIOR = Prior("HalfNormal", sigma=1.0)


def check_pooling(group: Any, pooling: str | None) -> str:
    """The pooling to use: ``pooling``, or ``"partial"`` with a group and ``"complete"`` without one."""
    if pooling is None:
        pooling = "complete" if group is None else "partial"
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if group is None and pooling != "complete":
        raise ValueError(f"pooling={pooling!r} needs a group column: pass group='<column>'")
    if group is not None and not isinstance(group, str):
        raise TypeError(f"group must be a column name (str), got {type(group).__name__}")
    return pooling


def pooled_priors(default_priors: dict[str, Prior], pooling: str) -> dict[str, Prior]:
    """Default priors of every prior-carrying quantity: with partial pooling also ``log_<q>_mean``, ``log_<q>_sd``."""
    out = dict(default_priors)
    if pooling == "partial":
        for name in default_priors:
            out[f"log_{name}_mean"] = HYPER_MEAN_PRIOR
            out[f"log_{name}_sd"] = HYPER_SD_PRIOR
    return out


def quantity_dims(pooling: str) -> tuple[str, ...]:
    """Dims of a population parameter in the PyMC model."""
    return () if pooling == "complete" else ("group",)


def create_quantity(name: str, priors: dict[str, Prior], pooling: str):
    """Create the sampled quantity ``name`` under ``pooling`` (inside a PyMC model).

    Complete pooling: one variable with its prior. No pooling: one per group,
    each with that prior. Partial pooling: non-centred on the log scale,
    ``exp(log_<name>_mean + log_<name>_sd * log_<name>_offset)``, so that small
    groups borrow strength from large ones without a funnel.
    """
    if pooling == "complete":
        return priors[name].create(name)
    if pooling == "none":
        return priors[name].create(name, dims="group")
    mean = priors[f"log_{name}_mean"].create(f"log_{name}_mean")
    sd = priors[f"log_{name}_sd"].create(f"log_{name}_sd")
    offset = pm.Normal(f"log_{name}_offset", 0.0, 1.0, dims="group")
    return pm.Deterministic(name, pt.exp(mean + sd * offset), dims="group")


def group_labels(df: pd.DataFrame, column: str) -> list:
    """Sorted distinct labels of ``column``; raises on a missing column or a missing label."""
    if column not in df.columns:
        raise DataValidationError(
            f"missing group column; the data have columns {list(df.columns)!r}", column=column)
    missing = df[column].isna().to_numpy()
    if missing.any():
        raise DataValidationError(f"{int(missing.sum())} customer(s) without a group label",
                                  column=column, rows=df.loc[missing, "customer_id"].tolist())
    return pd.Index(pd.unique(df[column])).sort_values().tolist()


def group_codes(df: pd.DataFrame, column: str, labels: list) -> np.ndarray:
    """Each row's index in ``labels`` (compared as labels, not as text); a label not among them is an error."""
    codes = pd.Index(labels).get_indexer(df[column])
    unknown = codes < 0
    if unknown.any():
        found = pd.unique(df.loc[unknown, column]).tolist()
        raise DataValidationError(
            f"group label(s) {found[:5]!r} not in the fitted groups {labels!r}; "
            "a grouped model predicts only for the groups it was fitted on",
            column=column, rows=df.loc[unknown, "customer_id"].tolist())
    return codes


def row_params(params: dict[str, Any], codes: np.ndarray | None, xp) -> dict[str, Any]:
    """Each row's parameters: its group's (``codes``), or the population's for every row (``codes`` None).

    ``params`` are PyTensor variables (``xp=PT``: scalars, or vectors over
    groups) or NumPy draws (``xp=NP``: shape ``(..., [group])``); NumPy results
    get a trailing axis over the rows to broadcast against them.
    """
    if codes is not None:
        return {k: v[..., codes] for k, v in params.items()}
    return params if xp is PT else {k: np.asarray(v)[..., None] for k, v in params.items()}


def distinct_rows(design: pd.DataFrame, weights: Any = None) -> pd.DataFrame:
    """The distinct rows of a design frame (identical rows of one group merged), with their ``weight``.

    ``weights``: the customers each row stands for (a compressed table's column); None: one each.
    """
    return compress_rows(design, list(design.columns), weights)[0]


def summed_tables(formulas: Any, rows: pd.DataFrame, data_columns: tuple[str, ...], grouped: bool,
                  options: Any) -> tuple[np.ndarray, ...]:
    """A family's summed-kernel tables (``formulas.loglik_tables``) of the distinct ``rows``."""
    return formulas.loglik_tables(*(rows[c] for c in data_columns), rows["weight"],
                                  group=rows[GROUP_CODE] if grouped else None, **options)
