"""Convergence diagnostics of a fit, the one place that reports them, and the parameter table.

A sampled fit is judged by R-hat, bulk and tail ESS and divergences
(``arviz_stats``); a MAP fit by its optimiser's success flag; a minibatch ADVI
fit by the rise of its ELBO. :func:`report_fit` logs, prints and warns for
every kind, so models never write their own report.
"""

from __future__ import annotations

import logging
import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.errors import ConvergenceWarning

__all__ = ["ESS_MIN", "RHAT_MAX", "FitDiagnostics", "compute_diagnostics", "optimizer_diagnostics", "report_fit",
           "summary_table"]

logger = logging.getLogger("bayesclv")

RHAT_MAX = 1.01
ESS_MIN = 400.0


class FitDiagnostics(dict):
    """Convergence numbers of a fit: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
    ``divergences``, ``n_draws`` (sampled fits) and ``ok``; ``fit_seconds`` and
    ``fit_cpu_seconds`` (wall and CPU time of the fit, set by ``fit``)."""

    def __str__(self) -> str:
        if "elbo_rise" in self:
            return (f"minibatch ADVI, {self['steps']} steps of {self['batch_size']} customers: over the last "
                    f"tenth ELBO rise {self['elbo_rise']:.4f} nats per customer -> "
                    f"{'OK' if self['ok'] else 'NOT CONVERGED'} (population parameters moved {self['drift']:.2f} sds)")
        if "max_r_hat" not in self:
            return f"{self.get('method', 'fit')}: no sampling diagnostics (point estimate or approximation)"
        return (
            f"max R-hat {self['max_r_hat']:.4f}, min bulk ESS {self['min_ess_bulk']:.0f}, "
            f"min tail ESS {self['min_ess_tail']:.0f}, divergences {self['divergences']} "
            f"of {self['n_draws']} draws -> {'OK' if self['ok'] else 'POOR'}"
        )


def compute_diagnostics(idata: xr.DataTree, var_names: list[str]) -> FitDiagnostics:
    """R-hat, bulk/tail ESS (ArviZ) and divergences of a sampled posterior."""
    rhat = azs.rhat(idata, var_names=var_names)
    ess_bulk = azs.ess(idata, var_names=var_names, method="bulk")
    ess_tail = azs.ess(idata, var_names=var_names, method="tail")

    def extreme(tree, fn):
        return float(fn([float(fn(tree[v].values)) for v in var_names]))

    post = idata["posterior"]
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        div = int(idata["sample_stats"]["diverging"].values.sum())
    diag = FitDiagnostics(
        method="nuts",
        max_r_hat=extreme(rhat, np.nanmax),
        min_ess_bulk=extreme(ess_bulk, np.nanmin),
        min_ess_tail=extreme(ess_tail, np.nanmin),
        divergences=div,
        n_draws=n_draws,
    )
    diag["ok"] = bool(
        diag["max_r_hat"] < RHAT_MAX
        and diag["min_ess_bulk"] >= ESS_MIN
        and diag["min_ess_tail"] >= ESS_MIN
        and div == 0
    )
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
    if diag["min_ess_bulk"] < ESS_MIN:
        problems.append(f"min bulk ESS {diag['min_ess_bulk']:.0f} < {ESS_MIN:.0f}")
    if diag["min_ess_tail"] < ESS_MIN:
        problems.append(f"min tail ESS {diag['min_ess_tail']:.0f} < {ESS_MIN:.0f}")
    if diag["divergences"]:
        problems.append(f"{diag['divergences']} divergent transitions")
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


def summary_table(idata: xr.DataTree, names: list[str], prob: float, point_estimate: bool) -> pd.DataFrame:
    """Parameter table ``mean, sd, hdi_lower, hdi_upper, r_hat, ess_bulk, ess_tail`` of ``names``.

    A point estimate (``point_estimate``, one draw) fills ``mean`` and leaves
    the other columns NaN; a variable with a dim gets one row per coordinate,
    ``"r[<label>]"``.
    """
    if point_estimate:
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
        table = pd.DataFrame({"mean": list(rows.values())}, index=list(rows))
        for col in ("sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"):
            table[col] = np.nan
    else:
        raw = azs.summary(idata, var_names=names, ci_prob=prob, ci_kind="hdi", round_to="none")
        lo, hi = (c for c in raw.columns if c.startswith("hdi"))
        table = raw.rename(columns={lo: "hdi_lower", hi: "hdi_upper"})
        table = table[["mean", "sd", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail"]]
        table = table.astype(float)
    table.index.name = "parameter"
    table.attrs["prob"] = prob
    return table
