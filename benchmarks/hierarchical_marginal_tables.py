"""CPU of the marginal fit's rule tables (one frame adaptation) before and after a change, in one process.

A frame adaptation (:func:`bayesclv.formulas._marginal_rule.row_frames`: the rows' frames, node terms and the
second-order error corrections against a 36 x 36 rule) runs once per round of the reference search (about ten
rounds with the corrected rule on CDNOW full). This times ``row_frames`` and its parts for the HB BG/NBD or
Pareto/NBD on CDNOW full at a population near the posterior (the search's start stage: the mode of the coarse
5 x 5 rule), alternating the current module with an older copy of ``_marginal_rule.py`` (``--old PATH``, e.g.
``git show main:src/bayesclv/formulas/_marginal_rule.py > /tmp/old_rule.py``), and the largest difference of
their tables. With ``--search N`` it also times the whole reference search
(:meth:`~bayesclv.models.marginal.MarginalGraph.reference_point`, a fresh graph each time) N times with each
module, alternating, and compares the references they reach.

Usage::

    uv run python benchmarks/hierarchical_marginal_tables.py --old /tmp/old_rule.py \
        [--family bgnbd] [--nodes 12] [--search 2]

Writes ``benchmarks/results/hierarchical_marginal_tables_<family>.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="path of the older _marginal_rule.py")
    parser.add_argument("--family", choices=["paretonbd", "bgnbd"], default="bgnbd")
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--search", type=int, default=0, help="reference searches per module")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "validation"))
    from bayesclv.chunks import available_cpus
    from bayesclv.formulas import _marginal_rule as new
    from bayesclv.models import marginal
    from bayesclv.models.marginal import MarginalGraph
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    spec = importlib.util.spec_from_file_location("old_marginal_rule", args.old)
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old  # numba's cache finds the module of its functions by name
    spec.loader.exec_module(old)
    model = hb_model(args.family)
    df = model._prepare(cdnow_with_covariates("full"))
    graph = MarginalGraph(model, df)
    graph.kernel_op.threads = available_cpus()
    graph.powers, graph.log_weights = new.product_rule(5)  # the reference search's coarse stage
    graph.corrected = False
    start = graph.initial_population()
    graph.adapt(*start, refinements=1)
    x = graph._optimise(graph.flat_point(*start), 12, 1.0, 0.05, refinements=1, frozen=graph.group_coordinates)
    B, offset, sigma, rho = graph.population(x)
    history, mean = graph.rows.history, graph.rows.means(B, offset)
    family = new.BGNBD if args.family == "bgnbd" else new.PARETONBD
    powers, log_weights = new.product_rule(args.nodes)
    xs = [np.ascontiguousarray(history[:, j]) for j in range(3)]

    def parts(module):
        times = {}
        t = time.process_time()
        centre, chol = module.adapt_rows(family, *xs, mean, sigma, rho)
        times["adapt_rows"] = time.process_time() - t
        t = time.process_time()
        terms = module.node_log_terms(family, *xs, centre, chol, powers, log_weights)
        times["node_log_terms"] = time.process_time() - t
        tilts = module.row_tilts(mean, sigma, rho, centre, chol)
        t = time.process_time()
        correction = module.rule_corrections(family, *xs, centre, chol, terms, powers, tilts)
        times["rule_corrections"] = time.process_time() - t
        t = time.process_time()
        module.row_frames(family, history, mean, sigma, rho, powers, log_weights)
        times["row_frames"] = time.process_time() - t
        return times, {"centre": centre, "chol": chol, "log_terms": terms, "correction": correction}

    parts(old), parts(new)  # compile
    runs = {"old": [], "new": []}
    for _ in range(args.rounds):
        for name, module in (("old", old), ("new", new)):
            times, tables = parts(module)
            runs[name].append(times)
            runs[name + "_tables"] = tables
    diffs = {k: float(np.abs(runs["old_tables"][k] - runs["new_tables"][k]).max()) for k in runs["old_tables"]}
    title = f"# Rule tables of one frame adaptation: HB {args.family}, CDNOW full, {args.nodes} x {args.nodes} rule"
    lines = [title, "",
             "Written by `benchmarks/hierarchical_marginal_tables.py` (old module: `" + args.old + "`); CPU seconds of "
             f"all threads ({available_cpus()} cores), old and new alternating, {args.rounds} rounds; min / median. "
             f"{len(history)} rows, population at the coarse rule's mode.", "",
             "| part | old CPU s | new CPU s | new / old (medians) |", "|---|---|---|---|"]
    for part in runs["old"][0]:
        o = np.array([r[part] for r in runs["old"]])
        n = np.array([r[part] for r in runs["new"]])
        lines.append(f"| {part} | {o.min():.3f} / {np.median(o):.3f} | {n.min():.3f} / {np.median(n):.3f} | "
                     f"{np.median(n) / np.median(o):.2f} |")
    lines += ["", "Largest absolute difference of the tables, new against old: "
              + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()) + "."]
    searches = {"old": [], "new": []}
    for _ in range(args.search):
        for name, module in (("old", old), ("new", new)):
            marginal.rule = module
            fresh = MarginalGraph(model, df)
            t = time.process_time()
            x = fresh.reference_point()
            searches[name].append((time.process_time() - t, x, fresh.nodes))
    marginal.rule = new
    if args.search:
        o, n = [c for c, _, _ in searches["old"]], [c for c, _, _ in searches["new"]]
        gap = max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(searches["old"], searches["new"], strict=True))
        lines += ["", "Whole reference search (`MarginalGraph.reference_point`, fresh graph, "
                  f"{args.search} per module, "
                  f"alternating): old {', '.join(f'{c:.1f}' for c in o)} CPU s, new {', '.join(f'{c:.1f}' for c in n)} "
                  f"CPU s; nodes old {searches['old'][0][2]}, new {searches['new'][0][2]}; largest difference of the "
                  f"references (sampler coordinates) {gap:.2g}."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hierarchical_marginal_tables_{args.family}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
