"""Could rows use fewer nodes? Each row's error of smaller rules against the default one, and a gradient's CPU by nodes.

For the HB Pareto/NBD (or BG/NBD) on CDNOW with the covariate log first-purchase amount: the
reference point and node count of the default fit; then, for 3,000 rows drawn at random, each
row's corrected log-likelihood (the kernel of the fit, one row at a time) under rules of other
node counts built at the same reference, at the reference and at 8 draws of the Laplace
approximation with its sds widened 1.5 times (where NUTS goes). A row could use a smaller rule
where its largest relative difference to the default rule stays below the tolerance. The
error of the default rule itself is the difference of finer rules (16, 24 nodes) to it. Last, the
CPU milliseconds of one kernel call (all rows) per node count.

Usage::

    uv run python benchmarks/hierarchical_marginal_rows.py [full|sample] [--family paretonbd|bgnbd]

Writes ``benchmarks/results/hierarchical_marginal_rows_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"
OTHER_NODES = (4, 6, 8, 16, 24)
TOLERANCES = (1e-8, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["full", "sample"], nargs="?", default="full")
    parser.add_argument("--family", choices=["paretonbd", "bgnbd"], default="paretonbd")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "validation"))
    from bayesclv.formulas import _marginal as kernel
    from bayesclv.formulas import _marginal_rule as rule
    from bayesclv.models.marginal import MarginalGraph
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    rfm = cdnow_with_covariates(args.kind)
    model = hb_model(args.family)
    graph = MarginalGraph(model, model._prepare(rfm))
    x = graph.reference_point()
    dense, rows = graph.nodes, graph.rows
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(rows.weight), size=min(len(rows.weight), 3000), replace=False)
    points = [x, *rng.multivariate_normal(x, 1.5**2 * graph.laplace, size=8)]

    def tables(nodes: int) -> dict:
        graph.powers, graph.log_weights = rule.product_rule(nodes)
        graph.adapt(*graph.population(x))
        return {k: v.get_value() for k, v in graph.tables.items()}

    def per_row(nodes: int) -> np.ndarray:
        t = tables(nodes)
        out = np.empty((len(points), len(chosen)))
        for p, z in enumerate(points):
            B, offset, sigma, rho = graph.population(z)
            for c, i in enumerate(chosen):
                one = slice(i, i + 1)
                out[p, c] = kernel.marginal_loglik(
                    B, offset, sigma, rho, rows.X[one], rows.group[one], np.ones(1), t["centre"][one],
                    t["chol"][one], t["log_terms"][one], t["top_terms"][one], t["powers"], t["correction"][one],
                    np.exp(t["log_terms"][one] - t["top_terms"][one, None]))[0]  # the row's node masses
        return out

    default = per_row(dense)
    no_repeat = rows.history[chosen, 0] == 0
    errors = {}
    for nodes in OTHER_NODES:
        gap = np.abs(per_row(nodes) - default).max(axis=0)
        relative = gap / np.maximum(np.abs(default).max(axis=0), 1.0)
        errors[nodes] = {
            "abs_quantiles_50_90_99_max": np.quantile(gap, [0.5, 0.9, 0.99, 1.0]).tolist(),
            **{f"share_within_{tol:g}": {"all": float((relative <= tol).mean()),
                                          "x=0": float((relative[no_repeat] <= tol).mean()),
                                          "x>0": float((relative[~no_repeat] <= tol).mean())} for tol in TOLERANCES}}
        print(nodes, json.dumps(errors[nodes]), flush=True)
    timing = {}
    for nodes in sorted({2, 4, 6, 8, dense, 12}):
        t = tables(nodes)
        B, offset, sigma, rho = graph.population(x)
        call = (B, offset, sigma, rho, rows.X, rows.group, rows.weight, t["centre"], t["chol"], t["log_terms"],
                t["top_terms"], t["powers"], t["correction"], t["node_mass"])
        kernel.marginal_loglik(*call)
        start = time.process_time()
        for _ in range(30):
            kernel.marginal_loglik(*call)
        timing[nodes] = round((time.process_time() - start) / 30 * 1e3, 2)
    out = {"kind": args.kind, "family": args.family, "rows": len(rows.weight), "rows_checked": len(chosen),
           "default_nodes": dense, "errors_against_default": errors, "kernel_cpu_ms_by_nodes": timing}
    RESULTS.mkdir(exist_ok=True)
    stem = f"hierarchical_marginal_rows_{args.kind}" + ("" if args.family == "paretonbd" else f"_{args.family}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    lines = [f"# Could rows use fewer nodes? {args.family}, CDNOW {args.kind}", "",
             "Written by `benchmarks/hierarchical_marginal_rows.py`: each row's corrected log-likelihood under a rule "
             f"of other nodes against the default {dense} x {dense} rule, largest difference over the reference and "
             f"8 draws of the widened Laplace approximation; {len(chosen)} of {len(rows.weight)} rows.", "",
             "| nodes | abs. difference 50% / 90% / 99% / max (nats) | rows within 1e-8 relative (all / x=0 / x>0) "
             "| within 1e-6 relative |", "|---|---|---|---|"]
    for nodes, e in errors.items():
        q = " / ".join(f"{v:.2g}" for v in e["abs_quantiles_50_90_99_max"])
        cells = [" / ".join(f"{e[f'share_within_{tol:g}'][k]:.3f}" for k in ("all", "x=0", "x>0"))
                 for tol in TOLERANCES]
        lines.append(f"| {nodes} | {q} | {cells[0]} | {cells[1]} |")
    lines += ["", f"Kernel CPU ms (all {len(rows.weight)} rows, value and gradient) by nodes per dimension: {timing}."]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
