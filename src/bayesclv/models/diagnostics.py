"""Convergence diagnostics of a fit, the one place that reports them, and the parameter table.

A sampled fit is judged by R-hat, bulk and tail ESS, divergences, E-BFMI per
chain and the share of draws at the maximum tree depth (``arviz_stats`` and
the sampler's ``sample_stats``); a MAP fit by its optimiser's success flag; a
minibatch ADVI fit by the rise of its ELBO. :func:`report_fit` logs, prints and
warns for every kind, so models never write their own report.
"""

from __future__ import annotations

import logging
import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from bayesclv.errors import ConvergenceWarning
from bayesclv.summaries import POINT_ESTIMATE, interval_kind, interval_label, interval_settings, warn_point_estimate

__all__ = ["ESS_MIN", "RHAT_MAX", "TREE_DEPTH_SHARE_MAX", "FitDiagnostics", "bfmi_min", "compute_diagnostics",
           "optimizer_diagnostics", "report_fit", "summary_table"]

logger = logging.getLogger("bayesclv")

RHAT_MAX = 1.01
ESS_MIN = 400.0
#: Largest share of draws whose trajectory stopped at the maximum tree depth. A few such draws cost
#: efficiency only (which ESS measures); many say the step size or the mass matrix does not fit the posterior.
TREE_DEPTH_SHARE_MAX = 0.01
# the sampler's flag for a draw that reached the maximum tree depth: nutpie's, then PyMC's (and numpyro's via PyMC)
_TREE_DEPTH_FLAGS = ("maxdepth_reached", "reached_max_treedepth")


def bfmi_min() -> float:
    """Smallest acceptable E-BFMI of a chain: ArviZ's ``rcParams["stats.bfmi_threshold"]`` (0.3 unless set)."""
    return float(rcParams["stats.bfmi_threshold"])


class FitDiagnostics(dict):
    """Convergence numbers of a fit: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
    ``divergences``, ``n_draws``, ``bfmi`` (E-BFMI of each chain, when the sampler records
    the energy), ``tree_depth_share`` (share of draws at the maximum tree depth, when it
    records that) for sampled fits, and ``ok``; ``fit_seconds`` and ``fit_cpu_seconds``
    (wall and CPU time of the fit, set by ``fit``)."""

    def __str__(self) -> str:
        if "elbo_rise" in self:
            return (f"minibatch ADVI, {self['steps']} steps of {self['batch_size']} customers: over the last "
                    f"tenth ELBO rise {self['elbo_rise']:.4f} nats per customer -> "
                    f"{'OK' if self['ok'] else 'NOT CONVERGED'} (population parameters moved {self['drift']:.2f} sds)")
        if self.get("method") == "map":
            state = "converged" if self.get("ok", True) else f"failed ({self.get('message', '')})"
            return f"MAP fit, {POINT_ESTIMATE}: optimiser {state}"
        if "max_r_hat" not in self:
            return f"{self.get('method', 'fit')}: no sampling diagnostics (an approximation)"
        extra = ""
        if self.get("bfmi") is not None:
            extra += f", min E-BFMI {min(self['bfmi']):.2f}"
        if self.get("tree_depth_share") is not None:
            extra += f", {self['tree_depth_share']:.1%} of draws at max tree depth"
        return (
            f"max R-hat {self['max_r_hat']:.4f}, min bulk ESS {self['min_ess_bulk']:.0f}, "
            f"min tail ESS {self['min_ess_tail']:.0f}, divergences {self['divergences']} "
            f"of {self['n_draws']} draws{extra} -> {'OK' if self['ok'] else 'POOR'}"
        )


def _sampler_stats(idata: xr.DataTree) -> xr.Dataset:
    """The sampler's statistics per draw (empty for a fit without them)."""
    return idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else xr.Dataset()


def _bfmi(idata: xr.DataTree) -> list[float] | None:
    """E-BFMI of each chain (``arviz_stats.bfmi`` of the sampler's ``energy``); None without energies."""
    if "energy" not in _sampler_stats(idata):
        return None
    return [float(v) for v in np.ravel(azs.bfmi(idata)["energy"].values)]


def _tree_depth_share(idata: xr.DataTree) -> float | None:
    """Share of draws whose trajectory reached the maximum tree depth; None if the sampler does not say."""
    stats = _sampler_stats(idata)
    for flag in _TREE_DEPTH_FLAGS:
        if flag in stats:
            return float(stats[flag].values.astype(bool).mean())
    return None


def compute_diagnostics(idata: xr.DataTree, var_names: list[str]) -> FitDiagnostics:
    """R-hat, bulk/tail ESS (ArviZ), divergences, E-BFMI and tree-depth saturation of a sampled posterior."""
    rhat = azs.rhat(idata, var_names=var_names)
    ess_bulk = azs.ess(idata, var_names=var_names, method="bulk")
    ess_tail = azs.ess(idata, var_names=var_names, method="tail")

    def extreme(tree, fn):
        return float(fn([float(fn(tree[v].values)) for v in var_names]))

    post = idata["posterior"]
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    stats = _sampler_stats(idata)
    div = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
    diag = FitDiagnostics(
        method="nuts",
        max_r_hat=extreme(rhat, np.nanmax),
        min_ess_bulk=extreme(ess_bulk, np.nanmin),
        min_ess_tail=extreme(ess_tail, np.nanmin),
        divergences=div,
        n_draws=n_draws,
        bfmi=_bfmi(idata),
        tree_depth_share=_tree_depth_share(idata),
    )
    diag["ok"] = not _problems(diag)
    return diag


def optimizer_diagnostics(groups: dict[str, xr.DataTree]) -> FitDiagnostics:
    """Success flag and message of the optimiser behind a MAP fit."""
    diag = FitDiagnostics(method="map", ok=True)
    for tree in groups.values():
        ds = tree.to_dataset()
        if "success" in ds:
            diag["ok"] = bool(ds["success"].values)
            diag["message"] = str(ds["message"].values) if "message" in ds else ""
    return diag


def _problems(diag: FitDiagnostics) -> list[str]:
    """Each number of a sampled fit that fails its threshold, in words."""
    problems = []
    if not diag["max_r_hat"] < RHAT_MAX:
        problems.append(f"max R-hat {diag['max_r_hat']:.3f} >= {RHAT_MAX}")
    if not diag["min_ess_bulk"] >= ESS_MIN:
        problems.append(f"min bulk ESS {diag['min_ess_bulk']:.0f} < {ESS_MIN:.0f}")
    if not diag["min_ess_tail"] >= ESS_MIN:
        problems.append(f"min tail ESS {diag['min_ess_tail']:.0f} < {ESS_MIN:.0f}")
    if diag["divergences"]:
        problems.append(f"{diag['divergences']} divergent transitions")
    low = [f"{value:.2f} (chain {chain})" for chain, value in enumerate(diag.get("bfmi") or [])
           if not value >= bfmi_min()]
    if low:
        problems.append(f"E-BFMI {', '.join(low)} < {bfmi_min():g}: the sampler explores the energy levels poorly")
    share = diag.get("tree_depth_share")
    if share is not None and share > TREE_DEPTH_SHARE_MAX:
        problems.append(f"{share:.1%} of draws at the maximum tree depth (> {TREE_DEPTH_SHARE_MAX:.0%}): "
                        "trajectories cut short")
    return problems


def report_fit(name: str, diag: FitDiagnostics, progressbar: bool) -> None:
    """Log and (with ``progressbar``) print a fit's diagnostics; warn with the numbers when it did not converge.

    Called by the model's ``fit``: the warnings point at the caller's line.
    """
    if diag.get("method") == "map":
        if not diag["ok"]:
            warnings.warn(f"{name}: MAP optimisation did not converge: {diag.get('message')}",
                          ConvergenceWarning, stacklevel=3)
        return
    if "max_r_hat" not in diag and "elbo_rise" not in diag:
        return  # full-batch ADVI: nothing to judge by
    logger.info("%s fit: %s", name, diag)
    if progressbar:
        print(f"{name} convergence: {diag}")
    if diag["ok"]:
        return
    if "elbo_rise" in diag:
        message = (f"minibatch ADVI has not converged: the mean ELBO rose by {diag['elbo_rise']:.4f} nats per "
                   "customer over the last tenth of the steps; run more steps (tune)")
    else:
        message = ("poor convergence: " + "; ".join(_problems(diag))
                   + ". Run more tuning/draws or check the data and priors.")
    warnings.warn(f"{name}: {message}", ConvergenceWarning, stacklevel=3)


def summary_table(idata: xr.DataTree, names: list[str], prob: float | None, point_estimate: bool,
                  method: str | None = None) -> pd.DataFrame:
    """Parameter table ``mean, sd, lower, upper, r_hat, ess_bulk, ess_tail`` of ``names``.

    The interval is ``arviz_stats.summary``'s ETI or HDI of probability
    ``prob`` (ArviZ's configuration where None: :func:`bayesclv.summaries.interval_settings`);
    ``attrs`` hold ``prob``, ``method``, ``kind``, ``interval`` (its label) and
    ``point_estimate``. A point estimate (``point_estimate``, one draw) has
    ``mean`` = the value, ``lower = upper`` = the value, the interval
    "point estimate (no posterior uncertainty)" and ``sd``, R-hat and ESS NaN,
    and warns (:class:`~bayesclv.errors.PointEstimateWarning`). A variable with a
    dim gets one row per coordinate, ``"r[<label>]"``.
    """
    prob, method = interval_settings(prob, method)
    if point_estimate:
        warn_point_estimate(stacklevel=4)
        post = idata["posterior"].to_dataset()
        rows = {}
        for n in names:
            point = post[n].isel(chain=0, draw=0)
            if point.ndim == 0:
                rows[n] = float(point)
            else:
                dim = point.dims[0]
                rows.update({f"{n}[{label}]": float(v)
                             for label, v in zip(point[dim].values, point.values, strict=True)})
        values = list(rows.values())
        table = pd.DataFrame({"mean": values, "sd": np.nan, "lower": values, "upper": values}, index=list(rows))
        for col in ("r_hat", "ess_bulk", "ess_tail"):
            table[col] = np.nan
    else:
        raw = azs.summary(idata, var_names=names, ci_prob=prob, ci_kind=method, round_to="none")
        lo, hi = (c for c in raw.columns if c.startswith(method))
        table = raw.rename(columns={lo: "lower", hi: "upper"})
        table = table[["mean", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]]
        table = table.astype(float)
    table.index.name = "parameter"
    kind = "point estimate" if point_estimate else interval_kind("expectation")
    table.attrs = {"prob": prob, "method": method, "kind": kind, "point_estimate": int(point_estimate),
                   "interval": interval_label(prob, kind, method, point_estimate)}
    return table
