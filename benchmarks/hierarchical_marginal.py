"""HB Pareto/NBD and HB BG/NBD on CDNOW with each customer's latents integrated out: fit + predictions, cost.

Each family runs in its own subprocess (so its peak RSS is its own): ``fit()`` with the
default settings (4 chains x 1000 draws after 200 tuning steps, 300 below 10,000 customers; covariate log
first-purchase amount, latents integrated out), then P(alive) and the expected
purchases over the 39-week holdout for every customer (per draw, computed in chunks),
and the holdout MAE of their posterior mean. The pooled Pareto/NBD is fitted in the
same run for the ratio. Records wall and CPU seconds (``time.process_time``: all
threads of the process), peak RSS (``ru_maxrss``), max R-hat and min bulk/tail ESS over
the population parameters, divergences, the rule's node count and the load average.

Usage::

    uv run python benchmarks/hierarchical_marginal.py [full|sample] [--families paretonbd bgnbd] [--seed N] [--label L]

A seed other than the default 2026 writes ``..._<kind>_seed<N>.*`` (a second posterior for the
between-seed agreement check) instead of the main result file; ``--label L`` appends ``_L`` to the name.

Where the integration rule cannot resolve the posterior's covariance range, ``fit()`` would fall back to
the latent-variable NUTS; the benchmark records "fell back" for that family and skips it instead.

Writes ``benchmarks/results/hierarchical_marginal_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"
FAMILIES = ("paretonbd", "bgnbd")
TARGETS = {"wall_seconds": 110.0, "peak_rss_mb": 2048.0, "max_r_hat": 1.01, "min_ess": 400}


def _mcse(model) -> dict:
    """ArviZ's Monte Carlo standard error of each population parameter's posterior mean, by summary row."""
    from arviz_stats import mcse

    table = model.summary()
    values = []
    for var in model.posterior.data_vars:
        values.extend(np.atleast_1d(np.asarray(mcse(model.posterior[var], method="mean"))).ravel().tolist())
    if len(values) != len(table):  # the posterior holds more than the summary's parameters
        return {}
    return dict(zip(table.index, values, strict=True))


PREDICTION_CHUNK = 6_000  # customers per prediction pass: 4000 draws x 6000 x 2 quantities x 8 bytes = 384 MB


def _one(kind: str, family: str, seed: int = 2026) -> dict:
    """Fit and predict one family in this process; returns its figures."""
    sys.path.insert(0, str(HERE.parent / "validation"))
    import bayesclv as bc
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    rfm = cdnow_with_covariates(kind)
    model = bc.ParetoNBDModel() if family == "pooled_paretonbd" else hb_model(family)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        # the fallback warns before any sampling: as an error it stops the fit there, so this benchmark
        # never runs the latent-variable NUTS (13 GB on CDNOW full) and records the fallback instead
        warnings.filterwarnings("error", message=r".*\(method='latent'\)", category=UserWarning)
        try:
            model.fit(rfm, random_seed=seed, progressbar=False)
        except UserWarning as fallback:
            return {"family": family, "customers": len(rfm), "fell_back": str(fallback),
                    "seconds_to_fallback": round(time.perf_counter() - wall, 1),
                    "cpu_seconds_to_fallback": round(time.process_time() - cpu, 1)}
    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # P(alive) and the holdout's expected purchases in one pass (customer_predictions), by chunks of customers:
    # both for all of CDNOW full at once (draws x customers x 2) would hold 1.5 GB; each chunk's are summarised
    # and dropped. skipna=False: xarray's NaN-skipping mean would copy the whole array
    horizon = float(rfm["T_holdout"].iloc[0])
    alive_sum, expected = 0.0, []
    for chunk in np.array_split(np.arange(len(rfm)), -(-len(rfm) // PREDICTION_CHUNK)):
        both = model.customer_predictions(horizon, rfm.iloc[chunk])
        alive_sum += float(both["probability_alive"].mean(("chain", "draw"), skipna=False).sum())
        expected.append(both["expected_purchases"].mean(("chain", "draw"), skipna=False).values)
        del both
    mean_alive, expected = alive_sum / len(rfm), np.concatenate(expected)
    total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    actual = rfm["frequency_holdout"].to_numpy()
    diag = dict(model.diagnostics)
    stats = model.idata["sample_stats"] if "sample_stats" in model.idata.children else None
    steps = None if stats is None or "n_steps" not in stats else float(stats["n_steps"].mean())
    return {
        "family": family, "customers": len(rfm),
        "fit_wall_seconds": round(fit_wall, 1), "fit_cpu_seconds": round(fit_cpu, 1),
        "wall_seconds": round(total_wall, 1), "cpu_seconds": round(total_cpu, 1),
        "prediction_cpu_seconds": round(total_cpu - fit_cpu, 1), "fit_peak_rss_mb": round(fit_rss, 0),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "max_r_hat": diag.get("max_r_hat"), "min_ess_bulk": diag.get("min_ess_bulk"),
        "min_ess_tail": diag.get("min_ess_tail"), "divergences": diag.get("divergences"),
        "nodes": diag.get("nodes"), "mean_probability_alive": mean_alive, "leapfrog_steps_per_draw": steps,
        "fit_parallel_efficiency": round(fit_cpu / fit_wall, 2),
        "parallel_efficiency": round(total_cpu / total_wall, 2),
        "holdout_mae": float(np.abs(expected - actual).mean()), "holdout_predicted_total": float(expected.sum()),
        "holdout_actual_total": float(actual.sum()), "load_average": os.getloadavg(),
        "seed": seed, "summary": model.summary().round(4).to_dict(orient="index"), "mcse_mean": _mcse(model),
    }


def _table(results: dict) -> str:
    lines = [f"# Hierarchical models, latents integrated out: CDNOW {results['kind']}", "",
             "Written by `benchmarks/hierarchical_marginal.py`; defaults (4 x 1000 after 200 tuning steps and target "
             "acceptance 0.65 for the integrated fit of 10,000 customers or more, else 300 and 0.8), "
             "covariate log first-purchase amount; fit + P(alive) and holdout expectations for all customers. "
             "CPU seconds: all threads of the process (the machine is shared: wall times are inflated).", "",
             "| model | customers | wall s | CPU s | fit wall s | fit CPU s | prediction CPU s | CPU / wall | peak RSS MB | "
             "max R-hat | min bulk ESS | min tail ESS | divergences | steps per draw | nodes | holdout MAE | "
             "predicted / actual total |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"| {r['family']} | failed: {r['error'][:200]} |")
            continue
        if "fell_back" in r:
            lines.append(f"| {r['family']} | {r['customers']} | fell back to latent NUTS: skipped "
                         f"({r['seconds_to_fallback']} s to decide) |")
            continue
        fmt = (lambda v, f: "-" if v is None else format(v, f))
        lines.append(
            f"| {r['family']} | {r['customers']} | {r['wall_seconds']} | {r['cpu_seconds']} | {r['fit_wall_seconds']} "
            f"| {r['fit_cpu_seconds']} | {r.get('prediction_cpu_seconds', '-')} | {fmt(r.get('parallel_efficiency'), '.2f')} "
            f"| {r['peak_rss_mb']:.0f} | {fmt(r['max_r_hat'], '.4f')} | {fmt(r['min_ess_bulk'], '.0f')} | "
            f"{fmt(r['min_ess_tail'], '.0f')} | {r['divergences']} | {fmt(r.get('leapfrog_steps_per_draw'), '.2f')} | "
            f"{r['nodes'] or '-'} | {r['holdout_mae']:.4f} | "
            f"{r['holdout_predicted_total']:.0f} / {r['holdout_actual_total']:.0f} |")
    lines += ["", f"Targets: wall <= {TARGETS['wall_seconds']:.0f} s, peak RSS <= 2 GB, R-hat < 1.01, "
              "bulk and tail ESS > 400, 0 divergences.", "",
              "Load average (1, 5, 15 min) at the end of each run (its own threads count in it; wall times mean "
              "little once others share the 2 cores): "
              + "; ".join(f"{r['family']} {', '.join(f'{v:.1f}' for v in r['load_average'])}"
                          for r in results["runs"] if "load_average" in r) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["full", "sample"], nargs="?", default="full")
    parser.add_argument("--families", nargs="+", default=[*FAMILIES, "pooled_paretonbd"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--label", default="", help="suffix of the result files (a run that must not replace the main one)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.kind, args.one, args.seed), default=float))
        return
    stem = (f"hierarchical_marginal_{args.kind}" + ("" if args.seed == 2026 else f"_seed{args.seed}")
            + (f"_{args.label}" if args.label else ""))
    runs = []
    for family in args.families:
        proc = subprocess.run([sys.executable, __file__, args.kind, "--one", family, "--seed", str(args.seed)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            runs.append({"family": family, "error": proc.stderr[-2000:]})
        else:
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "summary"}, default=float), flush=True)
        results = {"kind": args.kind, "seed": args.seed, "runs": runs}  # written after each model: a long run keeps what it has
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
        (RESULTS / f"{stem}.md").write_text(_table(results))
    print(_table(results))


if __name__ == "__main__":
    main()
