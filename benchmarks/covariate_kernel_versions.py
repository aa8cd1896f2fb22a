"""CPU per call of the covariate kernels, this checkout's against a git revision's, in one process.

Loads ``formulas/_covariate_summed.py`` as it was at ``--against`` (default ``main``) next to the installed one,
builds each version's tables from the same distinct rows of CDNOW (covariates ``log_first_amount`` and
``first_week`` as in ``peer_covariates.py``) and times each kernel at a point near the posterior, alternating
the versions; it also checks that both give the same value and gradient.

    nice -n 10 uv run python benchmarks/covariate_kernel_versions.py full

Writes ``benchmarks/results/covariate_kernel_versions_<dataset>.json`` and ``.md``.
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_covariates import COVARIATES, cdnow_with_covariates

from bayesclv.formulas import _covariate_summed as current

SOURCE = "src/bayesclv/formulas/_covariate_summed.py"
A = lambda *v: np.array(v, dtype=float)
POINTS = {"bgnbd": (A(0.26), A(5.1), A(0.8), A(2.4), A(0.25, 0.0), A(0.0, 0.1), A(0.1, 0.2)),
          "paretonbd": (A(0.55), A(10.5), A(0.6), A(12.0), A(0.25, 0.0), A(-0.2, 0.1))}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, text=True, check=True).stdout


def load_revision(rev: str):
    """The kernel module as it was at ``rev`` (imported from a temporary file)."""
    path = Path(tempfile.mkdtemp()) / "covariate_summed_at_revision.py"
    path.write_text(_git("show", f"{rev}:{SOURCE}"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sample", "full"])
    parser.add_argument("--against", default="main")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
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
        print(family, json.dumps(results[family]), flush=True)
    meta = {"dataset": args.dataset, "against": args.against, "against_commit": _git("rev-parse", "--short",
            args.against).strip(), "commit": _git("rev-parse", "--short", "HEAD").strip(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg()}
    stem = HERE / "results" / f"covariate_kernel_versions_{args.dataset}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [f"# Covariate kernels: this checkout against {args.against} (CDNOW {args.dataset}, one process)\n",
             (f"`nice -n 10 uv run python benchmarks/covariate_kernel_versions.py {args.dataset}`; checkout "
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
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
