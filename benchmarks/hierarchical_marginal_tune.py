"""How many warm-up steps the integrated hierarchical fit needs on CDNOW: convergence and gradients by ``tune``.

Fits HB Pareto/NBD or HB BG/NBD (covariate log first-purchase amount, latents integrated out) with the default
settings except the number of tuning steps, keeping the warm-up's sampler statistics, and records the fit's CPU
seconds (all threads), the gradients of warm-up and draws (leapfrog steps), steps per kept draw, max R-hat and
min bulk / tail ESS over the population parameters, divergences and the posterior means with their MCSE (for the
agreement between settings and seeds). Fit only: predictions do not depend on the warm-up.

Usage::

    uv run python benchmarks/hierarchical_marginal_tune.py [full|sample] --family paretonbd --tune 200 --seed 2026

Appends one record per run to ``benchmarks/results/hierarchical_marginal_tune_<kind>.json``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
import warnings
from pathlib import Path


HERE = Path(__file__).parent
RESULTS = HERE / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["full", "sample"], nargs="?", default="full")
    parser.add_argument("--family", choices=["paretonbd", "bgnbd"], default="paretonbd")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps (default: the fit's own)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "validation"))
    import bayesclv as bc
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    rfm = cdnow_with_covariates(args.kind)
    model = hb_model(args.family)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        model.fit(rfm, random_seed=args.seed, progressbar=False, tune=args.tune, nuts={"save_warmup": True})
    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    tree = model.idata
    steps = tree["sample_stats"]["n_steps"]
    warm = tree["warmup_sample_stats"]["n_steps"] if "warmup_sample_stats" in tree.children else None
    diag = dict(model.diagnostics)
    table = model.summary()
    record = {
        "family": args.family, "kind": args.kind, "seed": args.seed,
        "tune": int(warm.sizes["draw"]) if warm is not None else args.tune,
        "fit_cpu_seconds": round(fit_cpu, 1), "fit_wall_seconds": round(fit_wall, 1),
        "gradients": int(steps.sum()) + (int(warm.sum()) if warm is not None else 0),
        "warmup_gradients": int(warm.sum()) if warm is not None else None,
        "steps_per_draw": float(steps.mean()),
        "steps_per_warmup_iteration": float(warm.mean()) if warm is not None else None,
        "max_r_hat": diag.get("max_r_hat"), "min_ess_bulk": diag.get("min_ess_bulk"),
        "min_ess_tail": diag.get("min_ess_tail"), "divergences": diag.get("divergences"), "nodes": diag.get("nodes"),
        "means": table["mean"].round(5).to_dict(), "sds": table["sd"].round(5).to_dict(),
        "ess_bulk": table["ess_bulk"].round(0).to_dict(), "load_average": os.getloadavg(),
    }
    print(json.dumps(record), flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"hierarchical_marginal_tune_{args.kind}.json"
    with open(path, "a+") as handle:  # runs of several settings may end at once
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        runs = json.loads(text) if text.strip() else []
        runs.append(record)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(runs, indent=1, default=float))


if __name__ == "__main__":
    main()
