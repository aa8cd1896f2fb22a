"""PSIS-LOO of the hierarchical models with each customer's latents integrated out, against the old terms.

On CDNOW (calibration weeks 1-39) the hierarchical Pareto/NBD and BG/NBD with the
covariate log first-purchase amount (as ``validation/hierarchical_cdnow.py``) are
fitted by their default (integrated) fit, and their PSIS-LOO is computed twice:

* **conditional** (the pointwise log-likelihood before): ``log p(y_i | theta_i^(d))``
  at each draw's own latents of the customer (drawn from ``p(theta_i | y_i, phi_d)``,
  ``model.rates()``), which leaving the customer out moves, so PSIS's weights are
  heavy-tailed, and which is another predictive target than the pooled models';
* **integrated** (``model.log_likelihood()`` now): ``log p(y_i | phi_d, x_i)``, the
  latents integrated out by the fit's own rule (Vehtari et al. 2016).

Each is compared with the pooled Pareto/NBD (default NUTS fit, same customers and
observations): elpd difference and its SE from the pointwise differences. CPU seconds
(``time.process_time``, all threads) of each fit and of ``log_likelihood()``.

Usage::

    uv run python validation/hb_integrated_loo.py [sample|full] [--families paretonbd bgnbd] [--no-conditional]

Writes ``validation/results/hb_integrated_loo_<kind>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import xarray as xr

import bayesclv as bc
from bayesclv.formulas import NP, individual_bgnbd, individual_paretonbd
from hierarchical_cdnow import cdnow_with_covariates

RESULTS = Path(__file__).parent / "results"
COVARIATE = "log_first_amount"
CHUNK = 4000  # customers per piece of the conditional terms (draws x customers x 3 arrays at a time)


def _loo(model, loglik: xr.DataArray) -> dict:
    """PSIS-LOO of the model's tree with this pointwise log-likelihood."""
    tree = model.to_datatree(log_likelihood=False)
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({"frequency": loglik.drop_attrs()}))
    result = azs.loo(tree, pointwise=True)
    k = np.asarray(result.pareto_k)
    return {"elpd_loo": float(result.elpd), "se": float(result.se), "p_loo": float(result.p),
            "pareto_k_gt_0_7": int((k > 0.7).sum()), "max_pareto_k": float(k.max()),
            "elpd_i": np.asarray(result.elpd_i)}


def conditional_loglik(model) -> xr.DataArray:
    """The old pointwise terms: the individual likelihood at each draw's sampled latents of the customer."""
    formulas = individual_paretonbd if isinstance(model, bc.HierarchicalParetoNBDModel) else individual_bgnbd
    df = model.data
    pieces = []
    for start in range(0, len(df), CHUNK):
        part = df.iloc[start:start + CHUNK]
        rates = model.rates(part)
        values = formulas.loglik(part["frequency"].to_numpy(float), part["recency"].to_numpy(float),
                                 part["T"].to_numpy(float), *(rates[n].values for n in model.rate_names), xp=NP)
        pieces.append(xr.DataArray(values, dims=rates[model.rate_names[0]].dims,
                                   coords=rates[model.rate_names[0]].coords))
    return xr.concat(pieces, dim="customer_id")


def _difference(ours: np.ndarray, reference: np.ndarray) -> dict:
    diff = ours - reference
    return {"elpd_diff": float(diff.sum()), "se_diff": float(np.sqrt(diff.size * diff.var()))}


def _fit(model, rfm) -> tuple[object, dict]:
    start = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(rfm, random_seed=2026, progressbar=False)
    d = model.diagnostics
    return model, {"fit_cpu_seconds": time.process_time() - start, "max_r_hat": float(d["max_r_hat"]),
                   "divergences": int(d["divergences"]), "nodes": d.get("nodes"),
                   "latents": d.get("latents"), "warnings": [str(w.message) for w in caught]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="sample", choices=["sample", "full"])
    parser.add_argument("--families", nargs="+", default=["paretonbd", "bgnbd"], choices=["paretonbd", "bgnbd"],
                        help="hierarchical families to fit (default both)")
    parser.add_argument("--no-conditional", action="store_true",
                        help="leave out the old (conditional) terms: on the full data they cost most")
    args = parser.parse_args()
    rfm = cdnow_with_covariates(args.kind)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"data": f"CDNOW {args.kind}", "customers": len(rfm), "commit": commit,
              "machine": platform.platform(), "models": {}}

    pooled, info = _fit(bc.ParetoNBDModel(), rfm)
    start = time.process_time()
    loglik = pooled.log_likelihood()
    info["loglik_cpu_seconds"] = time.process_time() - start
    reference = _loo(pooled, loglik)
    del loglik
    info.update({k: v for k, v in reference.items() if k != "elpd_i"})
    record["models"]["Pareto/NBD"] = info
    _write(record, args.kind)
    print("Pareto/NBD", info, flush=True)

    fitted = {}
    classes = {"paretonbd": bc.HierarchicalParetoNBDModel, "bgnbd": bc.HierarchicalBetaGeoModel}
    for cls in (classes[f] for f in args.families):
        model, info = _fit(cls(covariates=[COVARIATE]), rfm)
        record["models"][model.display_name] = info
        start = time.process_time()
        loglik = model.log_likelihood()
        info["loglik_cpu_seconds"] = time.process_time() - start
        after = _loo(model, loglik)
        del loglik
        info["integrated"] = _summary(after, reference)
        _write(record, args.kind)  # each step's result is kept should a long run be stopped
        print(model.display_name, info, flush=True)
        fitted[model.display_name] = model
    for name, model in ({} if args.no_conditional else fitted).items():  # the old terms last: they cost most
        info = record["models"][name]
        start = time.process_time()
        before = _loo(model, conditional_loglik(model))
        info["conditional_cpu_seconds"] = time.process_time() - start
        info["conditional"] = _summary(before, reference)
        _write(record, args.kind)
        print(name, info["conditional"], flush=True)


def _summary(result: dict, reference: dict) -> dict:
    return {**{k: v for k, v in result.items() if k != "elpd_i"},
            "vs_pooled_paretonbd": _difference(result["elpd_i"], reference["elpd_i"])}


def _write(record: dict, kind: str) -> None:
    record["load_average_end"] = os.getloadavg()
    stem = RESULTS / f"hb_integrated_loo_{kind}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(record) + "\n")


def markdown(record: dict) -> str:
    """The result as a short table per model."""
    pooled = record["models"]["Pareto/NBD"]
    lines = [f"# Integrated PSIS-LOO of the hierarchical models: {record['data']} ({record['customers']:,} customers)",
             "", f"Commit `{record['commit']}`; each model's default fit (seed 2026), covariate `{COVARIATE}` for the "
             "hierarchical models; CPU seconds of all threads.", "",
             f"Pooled Pareto/NBD: elpd_loo {pooled['elpd_loo']:.1f} (SE {pooled['se']:.1f}), "
             f"{pooled['pareto_k_gt_0_7']} customers with k > 0.7; fit {pooled['fit_cpu_seconds']:.0f} s CPU, "
             f"log_likelihood() {pooled['loglik_cpu_seconds']:.1f} s CPU.", "",
             "| model | pointwise terms | elpd_loo | SE | p_loo | k > 0.7 | max k | elpd - pooled Pareto/NBD | SE of diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, info in record["models"].items():
        for label in ("conditional", "integrated"):  # before, after
            if label in info:
                r, d = info[label], info[label]["vs_pooled_paretonbd"]
                lines.append(f"| {name} | {label} | {r['elpd_loo']:.1f} | {r['se']:.1f} | {r['p_loo']:.1f} | "
                             f"{r['pareto_k_gt_0_7']} | {r['max_pareto_k']:.2f} | {d['elpd_diff']:.1f} | "
                             f"{d['se_diff']:.1f} |")
    lines += ["", "| model | fit CPU s | max R-hat | divergences | nodes | log_likelihood() CPU s | "
              "conditional terms + PSIS CPU s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, info in record["models"].items():
        if "integrated" in info:
            lines.append(f"| {name} | {info['fit_cpu_seconds']:.0f} | {info['max_r_hat']:.3f} | {info['divergences']} | "
                         f"{info['nodes']} | {info['loglik_cpu_seconds']:.1f} | "
                         f"{info.get('conditional_cpu_seconds', float('nan')):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
