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
import pytensor
from pytensor.graph.replace import clone_replace
import pytensor.tensor as pt
from scipy import optimize

from bayesclv.errors import DataValidationError
from bayesclv.formulas import PT
from bayesclv.models.engine import compress_rows
from bayesclv.models.sampling import c_mode
from bayesclv.priors import Prior

__all__ = ["GROUP_CODE", "POOLINGS", "SPREAD_QUANTILE", "centred_groups", "centred_quantities", "check_pooling",
           "create_quantity", "distinct_rows", "group_codes", "group_labels", "group_spread", "partially_centred",
           "pooled_priors", "quantity_dims", "quantity_evidence", "row_params", "summed_tables"]

POOLINGS = ("complete", "partial", "none")
GROUP_CODE = "group_code"  # column of a design frame: index of each row's group label
# hyperpriors of partial pooling, on the log scale of each sampled quantity
HYPER_MEAN_PRIOR = Prior("Normal", mu=0.0, sigma=3.0)
HYPER_SD_PRIOR = Prior("HalfNormal", sigma=1.0)
#: quantile of the groups' spread that a group's standard error must stay below for its quantity to be centred:
#: with a few groups the spread's posterior is wide, and the centred funnel (towards a spread of 0) has no floor
#: while the non-centred one is bounded by the sd's prior, so a group is centred only where the spread is
#: larger than its standard error with 90% probability
SPREAD_QUANTILE = 0.1


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


def create_quantity(name: str, priors: dict[str, Prior], pooling: str, centred: np.ndarray | None = None,
                    log_mean: Any = None):
    """Create the sampled quantity ``name`` under ``pooling`` (inside a PyMC model).

    Complete pooling: one variable with its prior. No pooling: one per group,
    each with that prior. Partial pooling: on the log scale,
    ``exp(log_<name>_mean + offset)`` with each group's offset ``Normal(0,
    log_<name>_sd)`` sampled centred where ``centred`` (``(groups,)``, from
    :func:`quantity_evidence` and :func:`centred_groups`) says so and non-centred
    (``log_<name>_sd * log_<name>_offset``) elsewhere (all groups when None), so
    that small groups borrow strength from large ones without a funnel.
    ``log_mean``: ``log_<name>_mean`` created by the caller (a model that
    samples the means in joint coordinates, with their priors); None: here.
    """
    if pooling == "complete":
        return priors[name].create(name)
    if pooling == "none":
        return priors[name].create(name, dims="group")
    mean = priors[f"log_{name}_mean"].create(f"log_{name}_mean") if log_mean is None else log_mean
    sd = priors[f"log_{name}_sd"].create(f"log_{name}_sd")
    groups = len(pm.modelcontext(None).coords["group"])
    offset = partially_centred(f"log_{name}_offset", sd, np.zeros(groups) if centred is None else centred, "group")
    return pm.Deterministic(name, pt.exp(mean + offset), dims="group")


def quantity_evidence(graph: pm.Model, names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What the data say about each group's log quantity before the fit: estimates and standard errors.

    ``graph`` is a partially pooled model whose quantities ``names`` are all
    non-centred (``log_<name>_offset``). With every ``log_<name>_mean`` at 0 and
    ``log_<name>_sd`` at 1 (covariate effects at 0) the offsets are the groups'
    log quantities, so maximising the likelihood (the ``loglik`` potential)
    over them fits each group on its own; the standard errors are the marginal
    ones of each group's block of the inverse negative Hessian (central
    differences of the gradient). A group whose block is not positive definite
    has none (``inf``).

    Returns
    -------
    dict
        ``name -> (estimates, standard_errors)``, each ``(groups,)``.
    """
    offsets = [graph[f"log_{n}_offset"] for n in names]
    point = graph.initial_point()
    values = [graph.rvs_to_values[o] for o in offsets]
    # means, log sds and covariate effects at 0
    rest = {v: np.zeros_like(point[v.name]) for v in graph.value_vars if v not in values}
    loglik = graph.replace_rvs_by_values([graph["loglik"]])[0]
    loglik = clone_replace(loglik, {v: pt.as_tensor_variable(x) for v, x in rest.items()})
    flat = pt.dvector("flat")
    groups = int(point[values[0].name].size)
    pieces = {v: flat[k * groups:(k + 1) * groups] for k, v in enumerate(values)}
    loglik = clone_replace(loglik, pieces)
    # PyTensor's C linker, as nutpie's density (sampling.c_mode): its modules are cached per Op and shared in the
    # process, where the default numba backend compiles (and keeps for the process's life) code for each new graph
    fn = pytensor.function([flat], [-loglik, -pt.grad(loglik, flat)], mode=c_mode(), on_unused_input="ignore")
    # the groups share a start: first the log quantities common to all groups, then each group's own
    k = len(names)
    shared = optimize.minimize(lambda y: _common(fn, y, groups), np.zeros(k), jac=True, method="L-BFGS-B",
                               bounds=[(-12.0, 12.0)] * k)
    start = np.repeat(shared.x, groups)
    res = optimize.minimize(fn, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * start.size)
    x, h = res.x, 1e-4
    hessian = np.empty((x.size, x.size))
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        hessian[:, j] = (fn(x + e)[1] - fn(x - e)[1]) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    estimates, errors = x.reshape(k, groups), np.full((k, groups), np.inf)
    for g in range(groups):
        block = hessian[np.ix_(np.arange(k) * groups + g, np.arange(k) * groups + g)]
        if np.all(np.linalg.eigvalsh(block) > 0):
            errors[:, g] = np.sqrt(np.diag(np.linalg.inv(block)))
    return {n: (estimates[i], errors[i]) for i, n in enumerate(names)}


def centred_quantities(graph: pm.Model, priors: dict[str, Prior], names: list[str]) -> dict[str, np.ndarray]:
    """Which groups' offsets of each pooled quantity among ``names`` to sample centred, from the non-centred
    ``graph`` (:func:`quantity_evidence`, :func:`centred_groups` with the prior of ``log_<name>_sd``)."""
    names = [n for n in names if f"log_{n}_offset" in graph.named_vars]
    return {n: centred_groups(m[:, None], se[:, None],
                              float(priors[f"log_{n}_sd"].parameters.get("sigma", 1.0)))[:, 0]
            for n, (m, se) in quantity_evidence(graph, names).items()}


def _common(fn, y: np.ndarray, groups: int) -> tuple[float, np.ndarray]:
    """``fn`` (value, gradient) with each quantity the same for every group."""
    value, grad = fn(np.repeat(y, groups))
    return float(value), np.asarray(grad).reshape(len(y), groups).sum(axis=1)


def group_spread(estimates: np.ndarray, standard_errors: np.ndarray, prior_sd: float,
                 quantile: float = SPREAD_QUANTILE) -> np.ndarray:
    """The groups' spread ``tau`` per column: a posterior quantile given each group's estimate and standard error.

    Each column of ``estimates`` ``(groups, k)`` is one quantity's estimate per
    group, ``m_g ~ Normal(mu, tau^2 + se_g^2)``, with ``mu`` flat and ``tau ~
    HalfNormal(prior_sd)`` (the prior of the group sd); ``tau``'s posterior is
    evaluated on a grid. A group without an estimate (standard error not
    finite) is left out.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` posterior ``quantile`` of ``tau``.
    """
    m, se = np.atleast_2d(estimates).astype(float), np.atleast_2d(standard_errors).astype(float)
    tau = np.linspace(0.0, 5.0 * prior_sd, 2001)[1:]
    out = np.empty(m.shape[1])
    for k in range(m.shape[1]):
        ok = np.isfinite(se[:, k]) & np.isfinite(m[:, k])
        v = 1.0 / (tau[:, None] ** 2 + se[ok, k][None, :] ** 2)
        mean = (v * m[ok, k]).sum(axis=1) / v.sum(axis=1)
        log_post = (0.5 * np.log(v).sum(axis=1) - 0.5 * np.log(v.sum(axis=1))
                    - 0.5 * (v * (m[ok, k][None, :] - mean[:, None]) ** 2).sum(axis=1) - 0.5 * (tau / prior_sd) ** 2)
        cdf = np.cumsum(np.exp(log_post - log_post.max()))
        out[k] = tau[np.searchsorted(cdf, quantile * cdf[-1])]
    return out


def centred_groups(estimates: np.ndarray, standard_errors: np.ndarray, prior_sd: float) -> np.ndarray:
    """Which group-level quantities to sample centred: those whose data say more than the groups' spread.

    A group's offset ``u_g`` (``q_g = mu + u_g``, ``u_g ~ Normal(0, tau)``) is
    sampled centred (``u_g`` itself) where its standard error ``se_g`` is below
    the groups' spread ``tau`` with 90% posterior probability
    (:func:`group_spread` at ``SPREAD_QUANTILE``), that is where the data's
    information about it, ``1 / se_g^2``, exceeds the prior's, ``1 / tau^2``:
    the posterior then pins ``u_g`` down, and the non-centred ``u_g / tau``
    would follow ``tau`` along a funnel. Elsewhere (groups that hardly differ,
    or a small group) ``u_g`` is near its prior given ``tau`` for some of the
    posterior, which the non-centred form samples without the funnel towards
    ``tau -> 0`` (Papaspiliopoulos, Roberts & Skold 2007; the weight ``tau^2 /
    (tau^2 + se^2)`` of Gorinova, Moore & Hoffman 2020 rounded to 0 or 1, so
    that a group's coordinates are one or the other).

    Parameters
    ----------
    estimates, standard_errors : numpy.ndarray
        ``(groups, k)``: each group's estimate of each quantity (on the scale
        the groups are pooled on) and its standard error (``inf`` or NaN: none).
    prior_sd : float
        Scale of the half-normal prior of the groups' sd.

    Returns
    -------
    numpy.ndarray
        ``(groups, k)`` booleans, True where centred.
    """
    se = np.atleast_2d(standard_errors).astype(float)
    tau = group_spread(estimates, se, prior_sd)
    return np.isfinite(se) & (se < tau[None, :])


def partially_centred(name: str, sd: Any, centred: np.ndarray, dims: tuple[str, ...] | str) -> Any:
    """Group offsets ``Normal(0, sd)`` (inside a PyMC model), each centred or not as ``centred`` says.

    The free variable ``name ~ Normal(0, sd^c)`` gives the offsets ``name * sd^(1 - c)``
    (returned), ``c`` 1 where centred and 0 where not (:func:`centred_groups`): one
    variable for any mix, and the same offsets' distribution either way.
    """
    c = np.asarray(centred, dtype=float)
    z = pm.Normal(name, 0.0, sd**c, dims=dims)
    return z * sd ** (1.0 - c)


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
