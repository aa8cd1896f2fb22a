"""CPU of one gradient of the integrated HB fit's kernel on CDNOW full: this tree against an older source tree.

Builds each family's :class:`~bayesclv.models.marginal.MarginalGraph` once (this tree), at its reference point,
and stores the kernel's tables and two population values: the reference and a point moved off it (0.05 sd of
noise on every flat coordinate, as during sampling, where the rule's correction shifts). Then, in rounds that
alternate the two trees (fresh processes; ``PYTHONPATH`` puts the old ``src`` first), times
:func:`~bayesclv.formulas._marginal.marginal_loglik` on the fit's tables (node masses in the lane layout),
300 calls after a warm one, and keeps each value and gradient to compare the trees.

Usage::

    git -C /work/main archive <commit> src | tar -x -C /tmp/old   # the tree to compare with
    uv run python benchmarks/hierarchical_marginal_gradient.py --old /tmp/old/src --rounds 5

Writes ``benchmarks/results/hierarchical_marginal_gradient.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"
KEYS = ("X", "group", "weight", "centre", "chol", "log_terms", "top_terms", "powers", "correction", "node_mass")

_TIMER = """
import json, sys, time
import numpy as np
from bayesclv.formulas._marginal import marginal_loglik
d = dict(np.load(sys.argv[1]))
tables = [d[k] for k in {keys!r}]
out = {{}}
for name in ("reference", "moved"):
    args = (d[name + "_B"], d[name + "_offset"], d[name + "_sigma"], float(d[name + "_rho"]))
    v = marginal_loglik(*args, *tables)
    t = time.process_time()
    for _ in range(300):
        v = marginal_loglik(*args, *tables)
    out[name] = {{"ms": (time.process_time() - t) / 300 * 1e3,
                  "result": [float(v[0]), *np.ravel(v[1]).tolist(), *np.ravel(v[2]).tolist(), *v[3].tolist(),
                             float(v[4])]}}
print(json.dumps(out))
"""


def _tables(family: str, path: Path) -> int:
    sys.path.insert(0, str(HERE.parent / "validation"))
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    from bayesclv.models.marginal import MarginalGraph

    model = hb_model(family)
    graph = MarginalGraph(model, model._prepare(cdnow_with_covariates("full")))
    x = graph.reference_point()
    moved = x + 0.05 * np.random.default_rng(1).standard_normal(x.size)
    store = {k: v.get_value() for k, v in graph.tables.items() if k in KEYS}
    rows = graph.rows
    store.update(X=rows.X, group=rows.group, weight=rows.weight)
    for name, point in (("reference", x), ("moved", moved)):
        for key, value in zip(("B", "offset", "sigma", "rho"), graph.population(point), strict=True):
            store[f"{name}_{key}"] = value
    np.savez(path, **store)
    return graph.nodes


def _time(tables: Path, src: str | None) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", _TIMER.format(keys=KEYS), str(tables)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the older tree's src folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--families", nargs="+", default=["bgnbd", "paretonbd"])
    args = parser.parse_args()
    report = {"command": "uv run python benchmarks/hierarchical_marginal_gradient.py --old OLD_SRC --rounds "
                         f"{args.rounds}", "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            path = Path(tmp) / f"{family}.npz"
            nodes = _tables(family, path)
            runs = {"old": [], "new": []}
            for _ in range(args.rounds):
                for label, src in (("old", args.old), ("new", None)):
                    runs[label].append(_time(path, src))
            entry = {"nodes": nodes}
            for name in ("reference", "moved"):
                old = np.array(runs["old"][0][name]["result"])
                new = np.array(runs["new"][0][name]["result"])
                entry[name] = {
                    "old_ms": [r[name]["ms"] for r in runs["old"]], "new_ms": [r[name]["ms"] for r in runs["new"]],
                    "old_median_ms": float(np.median([r[name]["ms"] for r in runs["old"]])),
                    "new_median_ms": float(np.median([r[name]["ms"] for r in runs["new"]])),
                    "value_relative_difference": float(abs(new[0] - old[0]) / abs(old[0])),
                    "gradient_max_difference": float(np.abs(new[1:] - old[1:]).max()),
                    "gradient_max_abs": float(np.abs(old[1:]).max()),
                }
            report["families"][family] = entry
            print(family, json.dumps({k: (v if k == "nodes" else {q: v[q] for q in ("old_median_ms", "new_median_ms")})
                                      for k, v in entry.items()}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hierarchical_marginal_gradient.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# CPU of one gradient of the HB kernel, CDNOW full (this tree against --old)", "",
             f"`{report['command']}`; CPU ms per call (300 calls after a warm one, fresh process per run, the trees",
             "alternating); value/gradient differences between the trees.", "",
             "| family | nodes | point | old median ms | new median ms | old runs | new runs | value rel. diff | "
             "gradient max abs diff (max abs) |", "|---|---|---|---|---|---|---|---|---|"]
    for family, entry in report["families"].items():
        for name in ("reference", "moved"):
            e = entry[name]
            old_runs, new_runs = (", ".join(f"{v:.2f}" for v in e[k]) for k in ("old_ms", "new_ms"))
            lines.append(f"| {family} | {entry['nodes']} | {name} | {e['old_median_ms']:.3f} | "
                         f"{e['new_median_ms']:.3f} | {old_runs} | {new_runs} | "
                         f"{e['value_relative_difference']:.1e} | {e['gradient_max_difference']:.1e} "
                         f"({e['gradient_max_abs']:.3g}) |")
    (RESULTS / "hierarchical_marginal_gradient.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
