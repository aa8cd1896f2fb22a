"""Where the marginal hierarchical fit spends its time and memory, and which cuts keep the rule accurate.

For the HB Pareto/NBD (or BG/NBD) on CDNOW with the covariate log first-purchase amount this records:
the process's resident memory after the imports, the data and the graph; the distinct rows (history x
covariate) against the distinct histories; the CPU seconds of the reference-point search and the node
count it picks; the CPU cost of one gradient (log density and gradient, as nutpie calls it) for several
node counts, and at the chosen count with the rows summed node by node instead of by factors; each row's
curvature ratio (largest eigenvalue of ``R' Sigma^-1 R``: the conditional
posterior's width against the population's; a row far below 1 could use fewer nodes); and the error of
cheaper rules (fewer nodes, pruned corner nodes) against a 20 x 20 rule over 150 draws of the Laplace
approximation at the reference, its sds widened 1.5 times (where NUTS goes). The number of gradients of a
default fit is the fit CPU of ``benchmarks/results/hierarchical_marginal_<kind>.json`` over the cost of one.

Usage::

    uv run python benchmarks/hierarchical_marginal_profile.py [full|sample] [--family paretonbd|bgnbd]

Writes ``benchmarks/results/hierarchical_marginal_profile_<kind>.json`` and ``.md`` (``..._<kind>_bgnbd.*`` for the
BG/NBD).
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


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["full", "sample"], nargs="?", default="full")
    parser.add_argument("--family", choices=["paretonbd", "bgnbd"], default="paretonbd")
    args = parser.parse_args()
    memory = {"start": _rss_mb()}
    sys.path.insert(0, str(HERE.parent / "validation"))
    from bayesclv.formulas import _marginal_rule as rule
    from bayesclv.models.marginal import MarginalGraph
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    memory["imports"] = _rss_mb()
    rfm = cdnow_with_covariates(args.kind)
    memory["data"] = _rss_mb()
    model = hb_model(args.family)
    df = model._prepare(rfm)
    graph = MarginalGraph(model, df)
    memory["graph"] = _rss_mb()
    h = graph.rows.history
    out = {"kind": args.kind, "family": args.family, "customers": len(df), "rows": len(graph.rows.weight),
           "distinct_histories": len(np.unique(h, axis=0)), "rows_without_repeat_purchase": int((h[:, 0] == 0).sum())}
    start = time.process_time()
    x = graph.reference_point()
    out.update(reference_cpu_seconds=round(time.process_time() - start, 1), nodes=graph.nodes,
               covariance_range=[round(v, 3) for v in graph.range])
    memory["reference"] = _rss_mb()

    def use(nodes: int, prune: float = 0.0) -> int:
        graph.powers, graph.log_weights = rule.product_rule(nodes, prune)
        graph.adapt(*graph.population(x))
        return graph.powers.shape[1]

    gradient = {}
    for nodes in sorted({4, 6, 8, graph.nodes}):
        use(nodes)
        graph.logp_grad(x)
        start = time.process_time()
        for _ in range(30):
            graph.logp_grad(x)
        gradient[nodes] = (time.process_time() - start) / 30
    out["gradient_cpu_ms"] = {str(k): round(v * 1e3, 2) for k, v in gradient.items()}
    # the same rule's rows summed node by node (no node_mass): what the factored sum saves, same process
    use(graph.nodes)
    table = graph.tables["node_mass"]
    factored = table.get_value()
    table.set_value(np.zeros((0, 0, factored.shape[2])))  # the kernel's lane layout without nodes
    graph.logp_grad(x)
    start = time.process_time()
    for _ in range(30):
        graph.logp_grad(x)
    out["gradient_cpu_ms_node_by_node"] = round((time.process_time() - start) / 30 * 1e3, 2)
    table.set_value(factored)
    B, offset, sigma, rho = graph.population(x)
    use(graph.nodes)
    tilts = rule.row_tilts(graph.rows.means(B, offset), sigma, rho, graph.tables["centre"].get_value(),
                           graph.tables["chol"].get_value())
    trace, det = tilts[:, 2] + tilts[:, 4], tilts[:, 2] * tilts[:, 4] - tilts[:, 3] ** 2
    largest = 0.5 * trace + np.sqrt(np.maximum(0.25 * trace * trace - det, 0.0))
    out["curvature_ratio_quantiles"] = dict(zip(["1%", "10%", "50%", "90%"],
                                                np.quantile(largest, [0.01, 0.1, 0.5, 0.9]).round(3).tolist(),
                                                strict=True))
    out["rows_with_curvature_ratio_below_0.3"] = float((largest < 0.3).mean())
    draws = np.random.default_rng(0).multivariate_normal(x, 1.5**2 * graph.laplace, size=150)

    def densities() -> np.ndarray:
        return np.array([graph.logp_grad(z)[0] for z in draws])

    use(20)
    reference = densities()
    accuracy = []
    cheaper = [(n, 0.0) for n in (8, 10, 12) if n < graph.nodes]
    for nodes, prune in [(graph.nodes, 0.0), (graph.nodes, 1e-5), (graph.nodes, 1e-4), *cheaper, (12, 1e-4)]:
        terms = use(nodes, prune)
        start = time.process_time()
        gap = densities() - reference
        accuracy.append({"nodes": nodes, "prune": prune, "node_terms": terms,
                         "gradient_cpu_ms": round((time.process_time() - start) / len(draws) * 1e3, 2),
                         "error_sd": float(gap.std()), "error_max_from_mean": float(np.abs(gap - gap.mean()).max())})
        print(json.dumps(accuracy[-1]), flush=True)
    out["accuracy_against_20_nodes"] = accuracy
    memory["end"] = _rss_mb()
    out["resident_mb"] = {k: round(v) for k, v in memory.items()}
    bench = RESULTS / f"hierarchical_marginal_{args.kind}.json"
    if bench.exists():
        fits = [r for r in json.loads(bench.read_text())["runs"] if r.get("family") == args.family and "fit_cpu_seconds" in r]
        if fits and fits[-1].get("nodes") in gradient:
            fit = fits[-1]
            out["gradients_of_the_benchmark_fit"] = round((fit["fit_cpu_seconds"] - out["reference_cpu_seconds"])
                                                          / gradient[fit["nodes"]])
    RESULTS.mkdir(exist_ok=True)
    stem = f"hierarchical_marginal_profile_{args.kind}" + ("" if args.family == "paretonbd" else f"_{args.family}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    lines = [f"# Profile of the marginal hierarchical fit: {args.family}, CDNOW {args.kind}", "",
             "Written by `benchmarks/hierarchical_marginal_profile.py`. CPU of one thread; shared machine.", "",
             f"- customers {out['customers']}, distinct rows (history x covariate) {out['rows']}, distinct histories "
             f"{out['distinct_histories']}, rows without repeat purchase {out['rows_without_repeat_purchase']}",
             f"- reference point: {out['reference_cpu_seconds']} s CPU; nodes {out['nodes']} per dimension; range of "
             f"Sigma^-1 Sigma_ref {out['covariance_range']}",
             f"- one gradient, CPU ms by nodes per dimension: {out['gradient_cpu_ms']} (rows of the product rule "
             f"summed by factors); at {out['nodes']} nodes summed node by node: {out['gradient_cpu_ms_node_by_node']}",
             f"- gradients of the benchmark's fit (its fit CPU / one gradient): "
             f"{out.get('gradients_of_the_benchmark_fit', 'not measured')}",
             f"- curvature ratio (largest eigenvalue of R' Sigma^-1 R) quantiles: {out['curvature_ratio_quantiles']}; "
             f"rows below 0.3: {out['rows_with_curvature_ratio_below_0.3']:.4f}",
             f"- resident MB: {out['resident_mb']}", "",
             "Error of cheaper rules against 20 x 20 over 150 draws of the widened Laplace approximation (nats of the "
             "total log density; a constant offset does not matter to NUTS, its spread does):", "",
             "| nodes | prune | node terms | gradient CPU ms | error sd | max error from its mean |", "|---|---|---|---|---|---|"]
    for r in accuracy:
        lines.append(f"| {r['nodes']} | {r['prune']} | {r['node_terms']} | {r['gradient_cpu_ms']} | {r['error_sd']:.3g} | "
                     f"{r['error_max_from_mean']:.3g} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
