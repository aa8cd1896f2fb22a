"""The marginal hierarchical posterior against the latent-variable NUTS posterior (the oracle), CDNOW sample.

Both fit the same model (covariate: log first-purchase amount; default priors) to the CDNOW sample
(2,357 customers): the latent version samples every customer's two latent rates with NUTS, long and
thinned so that its Monte Carlo error is small; the marginal version integrates them out by the
adaptive quadrature of ``bayesclv.formulas._marginal`` and samples the population parameters with the
default settings (4 chains x 1000 draws after 300 tuning steps, whitened coordinates). For each population parameter the
table gives both posterior means and sds and the difference of the means in units of its Monte Carlo
standard error ``sqrt(mcse_latent^2 + mcse_marginal^2)``.

Usage::

    uv run python validation/marginal_vs_latent.py paretonbd|bgnbd [--latent-draws 6000 --latent-thin 3]
        [--oracle PATH.nc] [--marginal PATH.nc]

``--oracle`` reuses a saved latent posterior (written there by an earlier run, ``method="latent"``);
``--marginal`` a saved marginal posterior (else the marginal model is fitted with its defaults).
Writes ``validation/results/marginal_vs_latent_<family>.json`` and the markdown table of both families
``validation/results/marginal_vs_latent.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import xarray as xr

import bayesclv as bc
from hierarchical_cdnow import cdnow_with_covariates

RESULTS = Path(__file__).parent / "results"
NAMES = ["coefficients", "sigma", "correlation"]
LATENT = {"paretonbd": bc.HierarchicalParetoNBDModel, "bgnbd": bc.HierarchicalBetaGeoModel}


def summary(posterior: xr.Dataset) -> dict:
    table = azs.summary(xr.DataTree.from_dict({"posterior": posterior[NAMES]}), round_to="none")
    return {name: {k: float(row[k]) for k in ("mean", "sd", "mcse_mean", "ess_bulk", "ess_tail", "r_hat")}
            for name, row in table.iterrows()}


def latent_posterior(family: str, rfm, draws: int, thin: int, oracle: Path | None) -> tuple[xr.Dataset, dict]:
    if oracle is not None and oracle.exists():
        provenance = oracle.with_suffix(".json")
        info = json.loads(provenance.read_text()) if provenance.exists() else {}
        return xr.open_dataset(oracle), {"reused": str(oracle), **info}
    model = LATENT[family](covariates=["log_first_amount"])
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        model.fit(rfm, method="latent", draws=draws, tune=1500, chains=4, thin=thin, random_seed=11,
                  progressbar=False)
    info = {"settings": f"latent NUTS (nutpie) 4 x {draws} after 1500 tuning, thinned by {thin}",
            "wall_seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "diagnostics": dict(model.diagnostics)}
    posterior = model.posterior[NAMES]
    if oracle is not None:
        posterior.to_netcdf(oracle)
    return posterior, info


def marginal_posterior(family: str, rfm, saved: Path | None) -> tuple[xr.Dataset, dict]:
    if saved is not None:
        provenance = saved.with_suffix(".json")
        info = json.loads(provenance.read_text()) if provenance.exists() else {}
        return xr.open_datatree(saved)["posterior"].to_dataset()[NAMES], {"reused": str(saved), **info}
    model = LATENT[family](covariates=["log_first_amount"])
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        model.fit(rfm, random_seed=12, progressbar=False)
    stats = model.idata["sample_stats"]
    return model.posterior[NAMES], {
        "settings": "model defaults: latents integrated out, nutpie 4 x 1000 after 300 tuning (whitened)",
        "wall_seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
        "diagnostics": dict(model.diagnostics), "mean_leapfrog_steps": float(stats["n_steps"].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=list(LATENT))
    parser.add_argument("--latent-draws", type=int, default=6000)
    parser.add_argument("--latent-thin", type=int, default=3)
    parser.add_argument("--oracle", type=Path, default=None)
    parser.add_argument("--marginal", type=Path, default=None)
    args = parser.parse_args()
    rfm = cdnow_with_covariates("sample")
    latent, latent_info = latent_posterior(args.family, rfm, args.latent_draws, args.latent_thin, args.oracle)
    marginal, marginal_info = marginal_posterior(args.family, rfm, args.marginal)
    a, b = summary(latent), summary(marginal)
    rows = {name: {"latent_mean": a[name]["mean"], "marginal_mean": b[name]["mean"],
                   "latent_sd": a[name]["sd"], "marginal_sd": b[name]["sd"],
                   "difference_in_mcse": (b[name]["mean"] - a[name]["mean"])
                   / np.hypot(a[name]["mcse_mean"], b[name]["mcse_mean"]),
                   "sd_ratio": b[name]["sd"] / a[name]["sd"],
                   "marginal_ess_bulk": b[name]["ess_bulk"], "marginal_ess_tail": b[name]["ess_tail"],
                   "marginal_r_hat": b[name]["r_hat"], "latent_ess_bulk": a[name]["ess_bulk"]}
            for name in a}
    results = {
        "data": "CDNOW sample (2,357 customers), covariate log first-purchase amount",
        "latent": latent_info,
        "marginal": marginal_info,
        "parameters": rows,
        "max_abs_difference_in_mcse": max(abs(r["difference_in_mcse"]) for r in rows.values()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"marginal_vs_latent_{args.family}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / "marginal_vs_latent.md").write_text(table())
    print(table())


def table() -> str:
    lines = ["# Marginal vs latent-variable NUTS, CDNOW sample", "",
             "Written by `validation/marginal_vs_latent.py`. Difference: (marginal mean - latent mean) / "
             "sqrt(mcse_latent^2 + mcse_marginal^2).", "",
             "| family | parameter | latent mean | marginal mean | latent sd | marginal sd | difference (MCSE) |",
             "|---|---|---|---|---|---|---|"]
    for family in LATENT:
        path = RESULTS / f"marginal_vs_latent_{family}.json"
        if not path.exists():
            continue
        res = json.loads(path.read_text())
        for name, r in res["parameters"].items():
            lines.append(f"| {family} | {name} | {r['latent_mean']:.4f} | {r['marginal_mean']:.4f} | "
                         f"{r['latent_sd']:.4f} | {r['marginal_sd']:.4f} | {r['difference_in_mcse']:+.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
