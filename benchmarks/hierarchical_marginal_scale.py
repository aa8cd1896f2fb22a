"""What one gradient of the marginal hierarchical likelihood costs at 1M customers, and the fit it implies.

Simulates ``--customers`` customers of the hierarchical Pareto/NBD (CDNOW-like population, a continuous
covariate, T from 1 to 39 weeks: every customer is a distinct row), builds each row's frame, node terms and
rule corrections at the simulated population (one adaptation; the fit repeats it a few times while it
searches the reference point) and times the kernel (:func:`bayesclv.formulas._marginal.marginal_loglik`,
value and gradient) for several node counts. The fit's cost is then extrapolated from the number of
gradients of a default fit (4 chains x (1000 tuning + 1000 draws) x mean leapfrog steps, given on the
command line, measured on CDNOW full). CPU seconds of one thread (the kernel is single-threaded; nutpie
runs the chains on separate threads).

Usage::

    uv run python benchmarks/hierarchical_marginal_scale.py [--customers 1000000] [--target 1000000] [--steps 6]

Writes ``benchmarks/results/hierarchical_marginal_scale.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from bayesclv.formulas import _marginal as kernel
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas.individual_paretonbd import simulate_population

RESULTS = Path(__file__).parent / "results"
B = np.array([[-2.5, -4.0], [0.2, -0.1]])  # intercept and slope per sd of the covariate (purchase, dropout)
SIGMA, RHO = np.array([1.2, 1.6]), 0.3


def _cpu(fn, repeats: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--steps", type=float, default=6.0, help="mean leapfrog steps per iteration")
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 6, 8, 10])
    parser.add_argument("--target", type=int, default=1_000_000,
                        help="customers the fit is projected to (a gradient's cost is linear in the rows)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n = args.customers
    z = rng.normal(size=n)
    X = np.column_stack([np.ones(n), z])
    cov = np.array([[SIGMA[0] ** 2, RHO * SIGMA[0] * SIGMA[1]], [RHO * SIGMA[0] * SIGMA[1], SIGMA[1] ** 2]])
    T = rng.uniform(1.0, 39.0, size=n)
    sim = simulate_population(T, B, cov, covariates=X, rng=rng)
    x, t_x = sim["frequency"].astype(float), sim["recency"].astype(float)
    mean = X @ B
    start = time.process_time()
    centre, chol = rule.adapt_rows(rule.PARETONBD, x, t_x, T, mean, SIGMA, RHO)
    frames_cpu = time.process_time() - start
    group, weight = np.zeros(n, dtype=np.int64), np.ones(n)
    runs = []
    for nodes in args.nodes:
        powers, log_weights = rule.product_rule(nodes)
        start = time.process_time()
        terms = rule.node_log_terms(rule.PARETONBD, x, t_x, T, centre, chol, powers, log_weights)
        tilts = rule.row_tilts(mean, SIGMA, RHO, centre, chol)
        correction = rule.rule_corrections(rule.PARETONBD, x, t_x, T, centre, chol, terms, powers, tilts)
        tables_cpu = time.process_time() - start
        top = terms.max(axis=1)
        gradient = _cpu(lambda: kernel.marginal_loglik(B, np.zeros((1, 2)), SIGMA * 1.05, RHO, X, group, weight,
                                                       centre, chol, terms, top, powers, correction), 5)
        gradients = 4 * 2000 * args.steps
        scale = args.target / n
        runs.append({"nodes": nodes, "node_terms": int(powers.shape[1]), "gradient_cpu_seconds": round(gradient, 4),
                     "ns_per_row_and_node": round(gradient / (n * powers.shape[1]) * 1e9, 2),
                     "tables_cpu_seconds": round(tables_cpu, 1), "gradients_of_a_default_fit": gradients,
                     "fit_cpu_seconds_at_target": round(gradient * scale * gradients, 0),
                     "fit_wall_minutes_on_2_cores_at_target": round(gradient * scale * gradients / 2 / 60, 1),
                     "tables_mb": round((terms.nbytes + correction.nbytes + centre.nbytes + chol.nbytes) / 2**20)})
        print(json.dumps(runs[-1]), flush=True)
        del terms, correction
    results = {"customers": n, "target_customers": args.target, "frames_cpu_seconds": round(frames_cpu, 1), "mean_leapfrog_steps": args.steps,
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hierarchical_marginal_scale.json").write_text(json.dumps(results, indent=2))
    lines = [f"# Marginal hierarchical Pareto/NBD: cost of a gradient at {n:,} customers, the fit at {args.target:,}", "",
             "Written by `benchmarks/hierarchical_marginal_scale.py`: simulated customers, every one a distinct row; "
             f"frames {frames_cpu:.0f} s CPU; peak RSS {results['peak_rss_mb']} MB. Fit = gradient x 4 chains x 2000 "
             f"iterations x {args.steps} leapfrog steps (CDNOW full's mean), one thread per chain, times "
             f"{args.target:,} / {n:,} (a gradient is one pass over the rows).", "",
             "| nodes per dim | node terms | gradient CPU s | ns per row x node | tables (terms, corrections) CPU s | "
             f"tables MB | fit CPU s at {args.target:,} | fit wall min on 2 cores at {args.target:,} |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['nodes']} | {r['node_terms']} | {r['gradient_cpu_seconds']} | {r['ns_per_row_and_node']} | "
                     f"{r['tables_cpu_seconds']} | {r['tables_mb']} | {r['fit_cpu_seconds_at_target']:.0f} | "
                     f"{r['fit_wall_minutes_on_2_cores_at_target']} |")
    (RESULTS / "hierarchical_marginal_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
