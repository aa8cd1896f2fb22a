"""The HB Pareto/NBD's default integrated fit on large simulated bases: cost measured, parameters against the truth.

Simulates ``N`` customers of the hierarchical Pareto/NBD with one standard-normal covariate ``z`` (a
CDNOW-like population: the same as ``benchmarks/hierarchical_marginal_scale.py``; T from 1 to 39 weeks, so every
customer is a distinct row, the worst case for the rule's tables), fits
``HierarchicalParetoNBDModel(covariates=["z"])`` with ``fit()``'s defaults (or the ``--draws`` and ``--tune``
given: at a million customers the defaults' 4 x 1,000 draws give far more effective draws than the 400 needed to
quote intervals) and predicts P(alive) and the
expected purchases over 39 weeks for every customer (or the first ``--predict``) in one pass, in chunks
(per-customer posterior means kept, the draws x customers arrays dropped chunk by chunk). Each size runs in its
own subprocess, so its peak RSS is its own.

Records wall and CPU seconds (``time.process_time``: all threads), peak RSS, R-hat/ESS/divergences over the
population parameters, steps per draw, and for each population parameter its posterior mean and sd against the
simulated value (z = (mean - truth) / sd: a posterior that covers the truth has |z| mostly below 2).

Usage::

    uv run python benchmarks/hierarchical_scale_fit.py [--customers 100000 ...] [--predict N] [--draws D]
        [--tune T] [--label L]

Writes ``benchmarks/results/hierarchical_scale_fit[_L].json`` and ``.md``.
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
from hierarchical_marginal_scale import B, RHO, SIGMA  # the population whose gradient cost that script projects

HERE = Path(__file__).parent
RESULTS = HERE / "results"
CHUNK = 20_000  # customers per prediction chunk: 4000 draws x 20,000 x 8 bytes = 640 MB per array


def truth() -> dict[str, float]:
    """The simulated population, by the model's summary names."""
    return {"coefficients[intercept, purchase]": B[0, 0], "coefficients[intercept, dropout]": B[0, 1],
            "coefficients[z, purchase]": B[1, 0], "coefficients[z, dropout]": B[1, 1],
            "sigma[purchase]": SIGMA[0], "sigma[dropout]": SIGMA[1], "correlation": RHO}


def simulate(n: int, seed: int):
    """An RFM frame of ``n`` simulated customers with covariate ``z``."""
    import pandas as pd

    from bayesclv.formulas.individual_paretonbd import simulate_population

    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    cov = np.array([[SIGMA[0] ** 2, RHO * SIGMA[0] * SIGMA[1]], [RHO * SIGMA[0] * SIGMA[1], SIGMA[1] ** 2]])
    T = rng.uniform(1.0, 39.0, size=n)
    sim = simulate_population(T, B, cov, covariates=np.column_stack([np.ones(n), z]), rng=rng)
    return pd.DataFrame({"customer_id": np.arange(n), "frequency": sim["frequency"], "recency": sim["recency"],
                         "T": T, "z": z})


def one(n: int, seed: int, predict: int | None = None, draws: int | None = None, tune: int | None = None) -> dict:
    """Fit ``n`` customers in this process and predict the first ``predict`` (all by default); returns the figures.

    ``draws`` and ``tune`` (per chain) replace ``fit()``'s defaults where given.
    """
    import bayesclv as bc

    rfm = simulate(n, seed)
    model = bc.HierarchicalParetoNBDModel(covariates=["z"])
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # the fallback to latent NUTS warns before sampling; as an error it stops this benchmark there
        warnings.filterwarnings("error", message=r".*\(method='latent'\)", category=UserWarning)
        settings = {key: value for key, value in (("draws", draws), ("tune", tune)) if value is not None}
        model.fit(rfm, random_seed=seed, progressbar=False, time_unit="W", **settings)
    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predicted = n if predict is None else min(predict, n)
    alive, expected = np.empty(predicted), np.empty(predicted)
    for start in range(0, predicted, CHUNK):
        chunk = rfm.iloc[start:min(start + CHUNK, predicted)]
        both = model.customer_predictions(39.0, chunk).mean(("chain", "draw"), skipna=False)
        alive[start:start + len(chunk)] = both["probability_alive"].values
        expected[start:start + len(chunk)] = both["expected_purchases"].values
    diag = dict(model.diagnostics)
    stats = model.idata["sample_stats"] if "sample_stats" in model.idata.children else None
    table = model.summary()
    recovery = {name: {"truth": float(value), "mean": float(table.loc[name, "mean"]),
                       "sd": float(table.loc[name, "sd"]),
                       "z": float((table.loc[name, "mean"] - value) / table.loc[name, "sd"])}
                for name, value in truth().items()}
    return {"customers": n, "predicted_customers": predicted, "seed": seed, "draws": draws, "tune": tune,
            "fit_wall_seconds": round(fit_wall, 1), "fit_cpu_seconds": round(fit_cpu, 1),
            "wall_seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "fit_peak_rss_mb": round(fit_rss), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "max_r_hat": diag.get("max_r_hat"), "min_ess_bulk": diag.get("min_ess_bulk"),
            "min_ess_tail": diag.get("min_ess_tail"), "divergences": diag.get("divergences"),
            "nodes": diag.get("nodes"),
            "leapfrog_steps_per_draw": None if stats is None else float(stats["n_steps"].mean()),
            "mean_probability_alive": float(alive.mean()), "mean_expected_purchases_39": float(expected.mean()),
            "recovery": recovery, "load_average": os.getloadavg()}


def markdown(results: dict) -> str:
    """The result file's text."""
    lines = ["# HB Pareto/NBD, default integrated fit on simulated bases: cost and recovery", "",
             f"Command: `{results['command']}` (commit `{results['commit']}`, {results['date']}). Simulated: one "
             "standard-normal covariate z, T uniform on 1-39 weeks (every customer a distinct row); fit + P(alive) "
             "and 39-week expected purchases in one pass (`customer_predictions`, chunks of 20,000) for the customers "
             "in the 'predicted' column. CPU seconds: all threads of the "
             "process; the load average at the end of each run says what else shared the 2 cores.", "",
             "| customers | predicted | draws per chain (tune) | fit wall s | fit CPU s | wall s (fit + predictions) | CPU s | "
             "peak RSS MB (fit; all) | "
             "max R-hat | min bulk / tail ESS | divergences | steps per draw | nodes | max abs z vs truth | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"| {r['customers']} | failed: {r['error'][:300]} |")
            continue
        worst = max(abs(v["z"]) for v in r["recovery"].values())
        setting = f"{r.get('draws') or 'default'} ({r.get('tune') or 'default'})"
        lines.append(f"| {r['customers']:,} | {r.get('predicted_customers', r['customers']):,} | {setting} | "
                     f"{r['fit_wall_seconds']} | {r['fit_cpu_seconds']} | {r['wall_seconds']} | "
                     f"{r['cpu_seconds']} | {r['fit_peak_rss_mb']}; {r['peak_rss_mb']} | {r['max_r_hat']:.4f} | "
                     f"{r['min_ess_bulk']:.0f} / {r['min_ess_tail']:.0f} | {r['divergences']} | "
                     f"{r['leapfrog_steps_per_draw']:.2f} | {r['nodes']} | {worst:.2f} | "
                     f"{', '.join(f'{v:.1f}' for v in r['load_average'])} |")
    for r in results["runs"]:
        if "recovery" not in r:
            continue
        lines += ["", f"Population parameters at {r['customers']:,} customers:", "",
                  "| parameter | truth | posterior mean (sd) | z |", "|---|---|---|---|"]
        lines += [f"| {name} | {v['truth']} | {v['mean']:.4f} ({v['sd']:.4f}) | {v['z']:+.2f} |"
                  for name, v in r["recovery"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--label", default="")
    parser.add_argument("--predict", type=int, default=None,
                        help="predict only the first this many customers (prediction cost is linear in customers)")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (fit()'s default if not given)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain (fit()'s default if not given)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.seed, args.predict, args.draws, args.tune)))
        return
    runs = []
    for n in args.customers:
        extra = [f"--{key}={value}" for key, value in (("predict", args.predict), ("draws", args.draws),
                                                        ("tune", args.tune)) if value is not None]
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--seed", str(args.seed), *extra],
                              capture_output=True, text=True)
        if done.returncode != 0:
            runs.append({"customers": n, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "exit"})
        else:
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results = {"command": "uv run python benchmarks/hierarchical_scale_fit.py " + " ".join(sys.argv[1:]),
               "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs}
    stem = "hierarchical_scale_fit" + (f"_{args.label}" if args.label else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
