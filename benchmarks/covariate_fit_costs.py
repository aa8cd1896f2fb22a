"""Fixed costs of a covariate BG/NBD / Pareto/NBD fit on CDNOW, apart from sampling.

A fit costs its fixed part (building the model and its tables, compiling the log density with PyTensor's C
linker, which caches compiled modules on disk, nutpie's start, diagnostics and the posterior's assembly) plus
its gradients. This script times ``fit(draws=1, tune=1, chains=4)`` (four gradients a chain or so: all fixed
costs) three times per model: in a fresh process after the on-disk caches were cleared of this model's graphs
("cold": what the first fit after an install or a change of ``formulas/`` costs; PyTensor then compiles and
caches), in a fresh process with those caches ("warm cache": a user's usual first fit in a session), and again
in that process ("same process"). Each is measured in CPU seconds of the process (threads included) and its
children (the C compiler) and wall
seconds, and the process's imports (``import bayesclv`` and the model class's modules) separately.

    nice -n 10 uv run python benchmarks/covariate_fit_costs.py full

Cold runs are approximated by a fresh PyTensor compile directory (``PYTENSOR_FLAGS=compiledir=...``) and a
fresh numba cache directory (``NUMBA_CACHE_DIR``), so nothing else on the machine is disturbed. Python's own
bytecode is cached for every run (an installed package has its ``.pyc`` files; a shell that sets
``PYTHONDONTWRITEBYTECODE``, as this machine's does, compiles every imported module's source in every process,
~10 CPU s): the workers run with bytecode written to a private ``PYTHONPYCACHEPREFIX``, filled by an import-only
run first.
Writes ``benchmarks/results/covariate_fit_costs_<dataset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LABELS = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the C compiler PyTensor runs)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def worker(dataset: str, model: str, imports_only: bool = False) -> dict:
    start, cpu = time.perf_counter(), _cpu()
    sys.path.insert(0, str(HERE))
    from peer_covariates import COVARIATES, cdnow_with_covariates

    import bayesclv as bc

    cls = {"bgnbd": bc.BetaGeoModel, "paretonbd": bc.ParetoNBDModel}[model]
    import pymc  # noqa: F401  (the model's imports, counted with the imports)

    out = {"import_s": time.perf_counter() - start, "import_cpu_s": _cpu() - cpu}
    if imports_only:  # the bytecode cache's filling run: the fit's lazy imports too
        import arviz_stats  # noqa: F401
        import nutpie  # noqa: F401
        import scipy.stats  # noqa: F401
        return out
    rfm = cdnow_with_covariates(dataset)
    rfm.attrs["time_unit"] = "W"
    for label in ("first", "same process"):
        start, cpu = time.perf_counter(), _cpu()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one draw: no convergence to speak of
            cls(covariates=COVARIATES).fit(rfm, draws=1, tune=1, chains=4, random_seed=1, progressbar=False)
        out[label] = {"wall_s": time.perf_counter() - start, "cpu_s": _cpu() - cpu}
    return out


def run(dataset: str, model: str, env: dict, imports_only: bool = False) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = [sys.executable, __file__, dataset, "--worker", model, path, *(["--imports-only"] if imports_only else [])]
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, env={**environ, **env})
    return json.loads(Path(path).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sample", "full"])
    parser.add_argument("--models", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--worker", nargs=2)
    parser.add_argument("--imports-only", action="store_true")
    args = parser.parse_args()
    if args.worker:
        Path(args.worker[1]).write_text(json.dumps(worker(args.dataset, args.worker[0], args.imports_only)))
        return
    bytecode = tempfile.mkdtemp()
    results, started, load = {}, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    for model in args.models:
        with tempfile.TemporaryDirectory() as cold:
            env = {"PYTENSOR_FLAGS": f"compiledir={cold}/pytensor", "NUMBA_CACHE_DIR": f"{cold}/numba",
                   "PYTHONPYCACHEPREFIX": bytecode}
            run(args.dataset, model, env, imports_only=True)
            cold_run = run(args.dataset, model, env)
            warm_run = run(args.dataset, model, env)
        results[model] = {"cold": cold_run, "warm": warm_run}
        print(model, json.dumps(results[model]), flush=True)
    meta = {"dataset": args.dataset, "started": started, "commit": commit, "load_before": load,
            "load_after": os.getloadavg()}
    stem = RESULTS / f"covariate_fit_costs_{args.dataset}"
    path = stem.with_suffix(".json")
    saved = json.loads(path.read_text()) if path.exists() else {"results": {}}
    if "meta" in saved:  # one run's file: each model's row gets the run's meta
        saved = {"results": {m: {**r, "meta": saved["meta"]} for m, r in saved["results"].items()}}
    saved["results"].update({m: {**r, "meta": meta} for m, r in results.items()})  # runs may add models
    path.write_text(json.dumps(saved, indent=1))
    lines = [f"# Covariate fits on CDNOW {args.dataset}: fixed costs apart from sampling\n",
             (f"`nice -n 10 uv run python benchmarks/covariate_fit_costs.py {args.dataset} [--models ...]`; each "
              "row from its own run (commit, start, load average before and after; shared 2-core machine: CPU "
              "seconds are the measure, wall seconds are inflated by the load). Each cell: "
              "`fit(draws=1, tune=1, chains=4)`, CPU s (wall s).\n"),
             "| model | imports | cold caches: first fit | warm caches: first fit in a process | same process, again "
             "| commit, started, load before / after |",
             "|---|---|---|---|---|---|"]
    for model, r in saved["results"].items():
        def cell(d):
            return f"{d['cpu_s']:.1f} ({d['wall_s']:.1f})"

        m = r["meta"]
        lines.append(f"| {LABELS[model]} | {r['warm']['import_cpu_s']:.1f} ({r['warm']['import_s']:.1f}) "
                     f"| {cell(r['cold']['first'])} | {cell(r['warm']['first'])} | {cell(r['warm']['same process'])} "
                     f"| {m['commit']}, {m['started']}, {m['load_before'][0]:.1f} / {m['load_after'][0]:.1f} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
