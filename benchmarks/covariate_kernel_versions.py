"""CPU per call of the covariate kernels, this checkout's against a git revision's, in one process.

Loads ``formulas/_covariate_summed.py`` and the siblings it calls (``_lane_math``, ``_lifetime_lanes``) as they were at
``--against`` (default ``main``) next to the installed ones,
builds each version's tables from the same distinct rows of CDNOW (covariates ``log_first_amount`` and
``first_week`` as in ``peer_covariates.py``) and times each kernel at a point near the posterior, alternating
the versions; it also checks that both give the same value and gradient, on CDNOW's rows and, for the
Pareto/NBD, on an extreme grid (``x`` up to 500, ``T`` up to 1,000 weeks, tiny and huge scales and shapes).
For the Pareto/NBD it also splits the old kernel's CPU into its lifetime integrals (the same rows' integrals
alone, :func:`log_piecewise_integral` row by row) and the rest, and counts the quadrature nodes each way
evaluates (row by row: each row's own piece count; in lanes: a block's layout on every lane of the block, under the
row-by-row rule's 8-node pieces and under this checkout's calibrated rules).

    nice -n 10 uv run python benchmarks/covariate_kernel_versions.py full

Writes ``benchmarks/results/covariate_kernel_versions_<dataset>.json`` and ``.md`` (``_<label>`` appended with
``--label``, so a run under load leaves the quiet run's file alone).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_covariates import COVARIATES, cdnow_with_covariates

from bayesclv.formulas import _covariate_summed as current
from bayesclv.formulas import _lifetime_integral as rule
from bayesclv.formulas import _lifetime_lanes as lanes

SOURCE = "src/bayesclv/formulas/_covariate_summed.py"
# siblings whose functions the kernels call, also taken at the revision (each with its imports of the others)
LOADED_AT_REVISION = ("_lane_math", "_lifetime_lanes")
A = lambda *v: np.array(v, dtype=float)
POINTS = {"bgnbd": (A(0.26), A(5.1), A(0.8), A(2.4), A(0.25, 0.0), A(0.0, 0.1), A(0.1, 0.2)),
          # the posterior means of the default fit (covariate_sampling_full.md)
          "paretonbd": (A(0.63), A(12.4), A(0.52), A(8.4), A(0.17, -0.014), A(-0.23, 0.006))}
EXTREME_POINTS = [(0.6, 5.0, 0.8, 12.0), (0.05, 1e-4, 0.05, 1e4), (20.0, 1e4, 30.0, 1e-4), (1.5, 1e6, 0.3, 1e6),
                  (0.3, 1e-6, 2.0, 1e-6)]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, text=True, check=True).stdout


def load_revision(rev: str):
    """The kernel module as it was at ``rev`` (imported from a temporary file), with the lane math of ``rev``."""
    folder = Path(tempfile.mkdtemp())

    def at_revision(text: str) -> str:
        for sibling in LOADED_AT_REVISION:
            text = text.replace(f"from bayesclv.formulas.{sibling} import", f"from {sibling}_at_revision import")
        return text

    source = at_revision(_git("show", f"{rev}:{SOURCE}"))
    for sibling in LOADED_AT_REVISION:
        sibling_source = _git("show", f"{rev}:{SOURCE.rsplit('/', 1)[0]}/{sibling}.py")
        (folder / f"{sibling}_at_revision.py").write_text(at_revision(sibling_source))
    path = folder / "covariate_summed_at_revision.py"
    path.write_text(source)
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("covariate_summed_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_ms(kernel, args, seconds: float) -> float:
    kernel(*args)
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        kernel(*args)
        calls += 1
    return (time.process_time() - start) / calls * 1e3


@numba.njit(cache=True)
def _integrals(rho, sigma, ca, cb, q0, q1):  # pragma: no cover - compiled
    """The rows' lifetime integrals with gradient, row by row (the old kernel's calls), and their node counts."""
    total, nodes = 0.0, 0
    for i in range(rho.size):
        if q0[i] < q1[i]:
            total += rule.log_piecewise_integral(rho[i], sigma, ca[i], cb[i], q0[i], q1[i], True)[0]
            width = q1[i] - q0[i]
            change = width * max(abs(rule._log_slope(q0[i], rho[i], sigma, ca[i], cb[i])),
                                 abs(rule._log_slope(q1[i], rho[i], sigma, ca[i], cb[i])))
            if width <= rule._SHORT_WIDTH and change <= rule._SHORT_SLOPE:
                nodes += 4
            else:
                nodes += 8 * int(max(1.0, np.ceil(max(change / rule._PIECE_SLOPE, width / rule._PIECE_WIDTH))))
    return total, nodes


def _eight_node_pieces(widest: float, steepest: float) -> int:
    """Nodes of a block under the row-by-row rule's bounds: 4 where every row fits the short rule, else the
    largest piece count of 8-node pieces (width 1, change 3)."""
    if widest <= rule._SHORT_WIDTH and steepest <= rule._SHORT_SLOPE:
        return 4
    return 8 * int(np.ceil(max(steepest / rule._PIECE_SLOPE, widest / rule._PIECE_WIDTH, 1.0)))


def _calibrated_rules(widest: float, steepest: float) -> int:
    """Nodes of a block under :data:`bayesclv.formulas._lifetime_lanes.RULES` (this checkout's layout)."""
    pieces, chosen = lanes.block_layout(widest, steepest)
    return pieces * lanes.RULES[chosen][0]


def _lane_nodes(args, block_start, layout) -> int:
    """Nodes evaluated in lanes: each block's ``layout(widest, steepest)`` on all its lanes."""
    rho, sigma, ca, cb, q0, q1 = args
    e0, e1 = np.exp(q0), np.exp(q1)
    width = q1 - q0
    slope = [1.0 - rho * e / (e + ca) - sigma * e / (e + cb) for e in (e0, e1)]
    change = width * np.maximum(np.abs(slope[0]), np.abs(slope[1]))
    valid = (width > 0) & (change <= rule._WINDOW_DROP)
    total = 0
    for lo, hi in zip(block_start[:-1], block_start[1:], strict=True):
        on = valid[lo:hi]
        widest, steepest = (width[lo:hi][on].max(), change[lo:hi][on].max()) if on.any() else (0.0, 0.0)
        total += (hi - lo) * layout(widest, steepest)
    return int(total)


def paretonbd_profile(rows, z, point, tables, seconds: float) -> dict:
    """CPU ms of the rows' lifetime integrals alone (row by row) and the node counts of both layouts."""
    r, alpha, s, beta, pc, dc = point
    x, t, T = (rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    a, b = alpha[0] * np.exp(-z @ pc), beta[0] * np.exp(-z @ dc)
    m = np.minimum(a, b)
    args = (r[0] + x, s[0] + 1.0, a - m, b - m, np.log(m + t), np.log(m + T))
    _, row_nodes = _integrals(*args)
    order_t = np.lexsort((z[:, 0], t, x, np.where(x == 0, 0, np.where(x <= 32, 1, 2))))  # the new tables' row order
    lane_args = tuple(v[order_t] if np.ndim(v) else v for v in args)
    return {"integrals_ms": cpu_ms(_integrals, args, seconds), "row_nodes": row_nodes,
            "lane_nodes_8": _lane_nodes(lane_args, tables[7], _eight_node_pieces),
            "lane_nodes": _lane_nodes(lane_args, tables[7], _calibrated_rules)}


def extreme_grid(old, new) -> dict:
    """Largest relative differences of the old and new Pareto/NBD kernels' values and gradients over the grid."""
    grid = [(x, f * T, T) for x in (0.0, 1.0, 7.0, 60.0, 500.0) for T in (1.0, 40.0, 1000.0)
            for f in ((0.0,) if x == 0 else (0.01, 0.5, 0.999, 1.0))]
    x, t, T = (np.array(v) for v in zip(*grid))
    rng = np.random.default_rng(11)
    w, zp, zd = rng.integers(1, 4, x.size).astype(float), rng.standard_normal((x.size, 1)), rng.standard_normal(
        (x.size, 1))
    worst = {"value_rel_diff": 0.0, "grad_max_rel_diff": 0.0}
    for point in EXTREME_POINTS:
        values = [module.paretonbd_kernel(*(A(v) for v in point), A(0.4), A(-0.3),
                                          *module.covariate_tables(x, t, T, w, zp, zd)) for module in (old, new)]
        grads = [np.concatenate(v[1]) for v in values]
        worst["value_rel_diff"] = max(worst["value_rel_diff"], abs(values[1][0] - values[0][0]) / abs(values[0][0]))
        worst["grad_max_rel_diff"] = max(worst["grad_max_rel_diff"], float(np.max(
            np.abs(grads[1] - grads[0]) / np.maximum(np.abs(grads[0]), 1e-300))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sample", "full"])
    parser.add_argument("--against", default="main")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="", help="suffix of the result files' names")
    args = parser.parse_args()
    old = load_revision(args.against)
    rfm = cdnow_with_covariates(args.dataset)
    rows = rfm.groupby(["frequency", "recency", "T", *COVARIATES], sort=False).size().reset_index(name="weight")
    z = rows[COVARIATES].to_numpy()
    results = {}
    for family, point in POINTS.items():
        tables = {name: module.covariate_tables(rows["frequency"], rows["recency"], rows["T"], rows["weight"], z, z)
                  for name, module in (("old", old), ("new", current))}
        kernels = {name: getattr(module, f"{family}_kernel") for name, module in (("old", old), ("new", current))}
        values = {name: kernels[name](*point, *tables[name]) for name in kernels}
        grads = [np.concatenate(values[name][1]) for name in ("old", "new")]
        times = {"old": [], "new": []}
        for _ in range(args.repeats):
            for name in ("old", "new"):
                times[name].append(cpu_ms(kernels[name], (*point, *tables[name]), args.seconds))
        results[family] = {"rows": len(rows), "old_ms": times["old"], "new_ms": times["new"],
                           "ratio": float(np.median(times["new"]) / np.median(times["old"])),
                           "value_rel_diff": abs(values["new"][0] - values["old"][0]) / abs(values["old"][0]),
                           "grad_max_rel_diff": float(np.max(np.abs(grads[1] - grads[0]) /
                                                             np.maximum(np.abs(grads[0]), 1e-300)))}
        if family == "paretonbd":
            results[family]["extreme_grid"] = extreme_grid(old, current)
            results[family]["profile"] = paretonbd_profile(rows, z, point, tables["new"], args.seconds)
        print(family, json.dumps(results[family]), flush=True)
    meta = {"dataset": args.dataset, "against": args.against, "against_commit": _git("rev-parse", "--short",
            args.against).strip(), "commit": _git("rev-parse", "--short", "HEAD").strip(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg()}
    stem = HERE / "results" / f"covariate_kernel_versions_{args.dataset}{'_' + args.label if args.label else ''}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [f"# Covariate kernels: this checkout against {args.against} (CDNOW {args.dataset}, one process)\n",
             (f"`nice -n 10 uv run python benchmarks/covariate_kernel_versions.py {args.dataset} --repeats "
              f"{args.repeats}{' --label ' + args.label if args.label else ''}`; checkout "
             f"{meta['commit']} (uncommitted changes included) against {args.against} = {meta['against_commit']}; "
             f"{meta['started']}, load average {meta['load'][0]:.1f} (shared 2-core machine: the ratio, measured "
             f"alternately in one process, is the comparison). CPU ms per call (value and gradient), "
             f"{args.repeats} alternating repeats of {args.seconds:.0f} CPU s each.\n"),
             ("| model | distinct rows | before (ms) | now (ms) | now / before (medians) | value rel. diff "
             "| gradient max rel. diff |"), "|---|---|---|---|---|---|---|"]
    labels = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}
    for family, r in results.items():
        lines.append(f"| {labels[family]} | {r['rows']} | {', '.join(f'{t:.2f}' for t in r['old_ms'])} "
                     f"| {', '.join(f'{t:.2f}' for t in r['new_ms'])} | {r['ratio']:.2f}x "
                     f"| {r['value_rel_diff']:.1e} | {r['grad_max_rel_diff']:.1e} |")
    if "paretonbd" in results:
        r = results["paretonbd"]
        prof, grid = r["profile"], r["extreme_grid"]
        lines += ["", "Pareto/NBD, where the old kernel's CPU goes: its rows' lifetime integrals alone (row by row, "
                  f"with gradient) {prof['integrals_ms']:.2f} ms of {np.median(r['old_ms']):.2f} ms per call; "
                  f"quadrature nodes evaluated per call: {prof['row_nodes']} row by row (each row's own piece count), "
                  f"{prof['lane_nodes_8']} in lanes of 8-node pieces (each block's largest count on all its lanes), "
                  f"{prof['lane_nodes']} in lanes under this checkout's rules (`_lifetime_lanes.RULES`). Extreme grid "
                  f"({len(EXTREME_POINTS)} points, x up to 500, T up to 1,000, t_x == T, scales 1e-6 to 1e6): "
                  f"value rel. diff {grid['value_rel_diff']:.1e}, gradient max rel. diff "
                  f"{grid['grad_max_rel_diff']:.1e}."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
