"""The HB BG/NBD without covariate on CDNOW full: where its divergences sat and that the default fit now agrees
with a finer rule.

Fits ``HierarchicalBetaGeoModel()`` (no covariate, default priors) to CDNOW full (23,570 customers, calibration
to 1997-09-30, weeks) with the default ``fit()`` (4 x 1000, seed 2026) and with ``nodes=16`` (a rule resolving
a wider range of population covariances, its wall further out). For each fit: the divergences and, for each
divergent draw, the smallest and largest eigenvalue of ``Sigma^-1 Sigma_ref`` (where the rule's range wall
acts: ``_marginal_rule.resolved_range``), those eigenvalues' extremes over all draws, the frames' reference
population, and the posterior mean, sd and Monte Carlo error of each population parameter; then the difference
of the two fits' means in units of their combined Monte Carlo error.

With ``--covariate`` (log first-purchase amount, as in ``benchmarks/hierarchical_marginal.py``) only the
16-node fit runs; its means are compared with the default fit of a benchmark result file (``--benchmark``, its
summary's means, sds and bulk ESS: MCSE taken as sd / sqrt(ESS)).

Usage::

    uv run python validation/hb_bgnbd_reference.py [--covariate --benchmark benchmarks/results/X.json]

Writes ``validation/results/hb_bgnbd_reference.json`` and ``.md`` (``..._covariate.*`` with ``--covariate``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
from arviz_stats import mcse

import bayesclv as bc
from bayesclv.formulas import _marginal_rule as rule

RESULTS = Path(__file__).parent / "results"


def one_fit(rfm, covariates=(), **settings) -> dict:
    model = bc.HierarchicalBetaGeoModel(covariates=list(covariates))
    cpu = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(rfm, random_seed=2026, progressbar=False, **settings)
    post, stats = model.posterior, model.idata["sample_stats"]
    ref = json.loads(post.attrs["marginal_reference"])
    s, r = ref["sigma"], ref["rho"]
    sigma_ref = np.array([[s[0] ** 2, r * s[0] * s[1]], [r * s[0] * s[1], s[1] ** 2]])
    sigma = post["sigma"].values.reshape(-1, 2)
    low, high = rule.covariance_range(sigma.T, post["correlation"].values.ravel(), sigma_ref, xp=np)
    divergent = stats["diverging"].values.ravel()
    table = {}
    for name, value in model.summary().iterrows():
        table[name] = {"mean": float(value["mean"]), "sd": float(value["sd"])}
    for var in ("coefficients", "sigma", "correlation"):
        values = np.atleast_1d(np.asarray(mcse(post[var], method="mean"))).ravel()
        names = [n for n in table if n.startswith(var)]
        for name, v in zip(names, values, strict=True):
            table[name]["mcse"] = float(v)
    return {"settings": settings, "fit_cpu_seconds": round(time.process_time() - cpu, 1),
            "nodes": model.diagnostics["nodes"], "walls": list(rule.resolved_range(model.diagnostics["nodes"])),
            "divergences": int(divergent.sum()), "max_r_hat": float(model.diagnostics["max_r_hat"]),
            "min_ess_bulk": float(model.diagnostics["min_ess_bulk"]),
            "min_ess_tail": float(model.diagnostics["min_ess_tail"]),
            "steps_per_draw": float(stats["n_steps"].mean()), "reference": ref,
            "range_over_draws": [float(low.min()), float(high.max())],
            "range_quantiles_0.001_0.999": [float(np.quantile(low, 1e-3)), float(np.quantile(high, 1 - 1e-3))],
            "divergent_draws_range": [[float(a), float(b)] for a, b in zip(low[divergent], high[divergent], strict=True)],
            "summary": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--covariate", action="store_true")
    parser.add_argument("--benchmark", type=Path)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    if args.covariate:
        sys.path.insert(0, str(Path(__file__).parent))
        from hierarchical_cdnow import cdnow_with_covariates

        rfm = cdnow_with_covariates("full")
        bench = json.loads(args.benchmark.read_text())["runs"]
        run = next(r for r in bench if r.get("family") == "bgnbd")
        default = {"nodes": run["nodes"], "walls": list(rule.resolved_range(run["nodes"])), "range_over_draws": [np.nan, np.nan],
                   "divergences": run["divergences"], "max_r_hat": run["max_r_hat"], "min_ess_bulk": run["min_ess_bulk"],
                   "min_ess_tail": run["min_ess_tail"], "steps_per_draw": run["leapfrog_steps_per_draw"],
                   "fit_cpu_seconds": run["fit_cpu_seconds"],
                   "summary": {k: {"mean": v["mean"], "sd": v["sd"], "mcse": v["sd"] / np.sqrt(v["ess_bulk"])}
                               for k, v in run["summary"].items()}}
        fits = {f"default ({args.benchmark.name})": default,
                "nodes=16": one_fit(rfm, covariates=["log_first_amount"], nodes=16)}
    else:
        rfm = bc.rfm_summary(bc.datasets.load_cdnow("full"), calibration_end="1997-09-30")
        fits = {"default": one_fit(rfm), "nodes=16": one_fit(rfm, nodes=16)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"command": "uv run python validation/hb_bgnbd_reference.py " + " ".join(sys.argv[1:]), "commit": commit, "started_utc": started,
           "load_average": os.getloadavg(), "fits": fits}
    RESULTS.mkdir(exist_ok=True)
    stem = "hb_bgnbd_reference" + ("_covariate" if args.covariate else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    a, b = fits.values()
    lines = [f"# HB BG/NBD {'with covariate log first-purchase amount' if args.covariate else 'without covariate'}, "
             "CDNOW full: default fit against a 16-node rule", "",
             f"Command: `{out['command']}` (commit `{commit}`, {started} UTC, load average at the end "
             f"{out['load_average'][0]:.1f} on 2 CPUs). Seed 2026, 4 x 1000 draws, defaults otherwise.", "",
             "| fit | nodes | walls of Sigma^-1 Sigma_ref | range over draws | divergences | max R-hat | min bulk / tail ESS "
             "| steps per draw | fit CPU s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, f in fits.items():
        lines.append(f"| {name} | {f['nodes']} | {f['walls'][0]:.3f} - {f['walls'][1]:.2f} | {f['range_over_draws'][0]:.3f} - "
                     f"{f['range_over_draws'][1]:.3f} | {f['divergences']} | {f['max_r_hat']:.4f} | "
                     f"{f['min_ess_bulk']:.0f} / {f['min_ess_tail']:.0f} | {f['steps_per_draw']:.2f} | "
                     f"{f['fit_cpu_seconds']} |")
    lines += ["", "| parameter | default mean (sd) | nodes=16 mean (sd) | difference / combined MCSE |", "|---|---|---|---|"]
    for name, x in a["summary"].items():
        y = b["summary"][name]
        z = (x["mean"] - y["mean"]) / np.hypot(x.get("mcse", np.nan), y.get("mcse", np.nan))
        lines.append(f"| {name} | {x['mean']:.4f} ({x['sd']:.4f}) | {y['mean']:.4f} ({y['sd']:.4f}) | {z:+.2f} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
