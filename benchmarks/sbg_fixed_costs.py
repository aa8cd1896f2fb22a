"""Where a shifted-BG fit's CPU time and memory go: imports, the fit's phases, the direct density against the graph.

The shifted-BG's data are a few cohorts' survival counts, so a fit is mostly fixed costs. Each
measurement runs in a fresh process (fresh imports, numba and PyTensor caches warm on disk, as for a
user's second fit): the Fader-Hardie segments, years 1-7, one parameter pair per segment, nutpie
4 x 1000 draws after 1000, once with the direct density (``models/direct_density.py``, the default)
and once through the C-compiled graph (``samples_direct_density = False``), alternating, ``--repeats`` times.
Recorded per process: CPU seconds of each phase (imports before the fit, nutpie's import inside the
fit, building the graph, compiling the density, sampling, converting the trace, the rest) and the
resident set size after each. A last process records the RSS each import adds, in the order a fit
imports them. Run with bytecode compiled (``python -m compileall``), as ``peer_families.py`` does::

    uv run python benchmarks/sbg_fixed_costs.py            # ~1 min on 2 cores

Writes ``benchmarks/results/sbg_fixed_costs.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PHASES = ("imports before the fit", "import nutpie", "graph", "compile", "sampling", "trace to DataTree", "rest")
IMPORTS = ("numpy", "pandas", "scipy.stats", "xarray", "numba", "pytensor", "pymc", "arviz_stats",
           "bayesclv.models.shifted_bg", "nutpie")


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def _peak_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def worker(direct: bool) -> dict:
    """One fit in this process; CPU seconds and RSS after each phase."""
    cpu, rss, last = {}, {}, [time.process_time()]

    def mark(phase):
        now = time.process_time()
        cpu[phase], rss[phase], last[0] = cpu.get(phase, 0.0) + now - last[0], _rss_mb(), now

    import bayesclv as bc
    from bayesclv.data.discrete import censor_retention

    data = censor_retention(bc.datasets.load_retention(), 7)
    cls = bc.ShiftedBetaGeoModel
    cls.samples_direct_density = direct
    mark("imports before the fit")
    import nutpie  # noqa: F401  (the fit imports it; timed on its own)

    mark("import nutpie")
    import bayesclv.models.sampling as sampling

    nutpie_sample = sys.modules["nutpie.sample"]
    compile_model, extract = sampling.compile_nutpie_model, nutpie_sample._BackgroundSampler._extract

    def timed_compile(*args, **kwargs):
        mark("graph")
        value = compile_model(*args, **kwargs)
        mark("compile")
        return value

    def timed_extract(self, results):
        mark("sampling")
        value = extract(self, results)
        mark("trace to DataTree")
        return value

    sampling.compile_nutpie_model = timed_compile
    nutpie_sample._BackgroundSampler._extract = timed_extract
    start = time.process_time()
    cls(group="segment", pooling="none").fit(data, draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
    mark("rest")
    return {"direct": direct, "cpu_s": cpu, "rss_mb": rss, "fit_cpu_s": time.process_time() - start + cpu[
        "import nutpie"], "peak_rss_mb": _peak_mb()}


def import_steps() -> list[dict]:
    """RSS and CPU each import adds, in the order a shifted-BG fit loads them."""
    import importlib

    rows, before = [], _rss_mb()
    rows.append({"step": "python", "rss_mb": before, "added_mb": before, "cpu_s": time.process_time()})
    for name in IMPORTS:
        t = time.process_time()
        importlib.import_module(name)
        now = _rss_mb()
        rows.append({"step": name, "rss_mb": now, "added_mb": now - before, "cpu_s": time.process_time() - t})
        before = now
    return rows


def markdown(meta: dict, runs: list[dict], steps: list[dict]) -> str:
    def median(direct, key, phase=None):
        values = [r[key][phase] if phase else r[key] for r in runs if r["direct"] == direct]
        return statistics.median(values)

    lines = ["# Shifted-BG fit: fixed costs, direct density vs the compiled graph", "",
             f"Fader & Hardie (2007) segments, years 1-7, `group='segment', pooling='none'`, nutpie 4 x 1000 after "
             f"1000; a fresh process per fit, {meta['repeats']} per path, alternating; medians. Machine: "
             f"{meta['cpus']} CPUs, shared; load average before {meta['load_before']}, after {meta['load_after']}. "
             f"Started {meta['started']}. `uv run python benchmarks/sbg_fixed_costs.py`.", "",
             "| phase | direct density: CPU s | graph (C): CPU s | direct: RSS after (MB) | graph: RSS after (MB) |",
             "|---|---|---|---|---|"]
    for phase in PHASES:
        lines.append(f"| {phase} | {median(True, 'cpu_s', phase):.2f} | {median(False, 'cpu_s', phase):.2f} "
                     f"| {median(True, 'rss_mb', phase):.0f} | {median(False, 'rss_mb', phase):.0f} |")
    lines += [f"| **fit** (nutpie's import to the posterior) | **{median(True, 'fit_cpu_s'):.2f}** "
              f"| **{median(False, 'fit_cpu_s'):.2f}** | peak {median(True, 'peak_rss_mb'):.0f} "
              f"| peak {median(False, 'peak_rss_mb'):.0f} |", "",
              "## What the process holds, import by import (one process, in the order a fit imports)", "",
              "| import | RSS after (MB) | added (MB) | CPU s |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['rss_mb']:.0f} | {s['added_mb']:.0f} | {s['cpu_s']:.2f} |" for s in steps]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("direct", "graph", "imports"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="sbg_fixed_costs")
    args = parser.parse_args()
    if args.worker == "imports":
        print(json.dumps(import_steps()))
        return
    if args.worker:
        print(json.dumps(worker(args.worker == "direct")))
        return
    meta = {"repeats": args.repeats, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    runs = []
    for _ in range(args.repeats):
        for path in ("direct", "graph"):
            out = subprocess.run([*me, path], capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(path, f"fit CPU {runs[-1]['fit_cpu_s']:.2f} s, peak RSS {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)
    steps = json.loads(subprocess.run([*me, "imports"], capture_output=True, text=True, check=True)
                       .stdout.strip().splitlines()[-1])
    meta["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps({"meta": meta, "runs": runs, "imports": steps}, indent=2))
    text = markdown(meta, runs, steps)
    (RESULTS / f"{args.output}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
