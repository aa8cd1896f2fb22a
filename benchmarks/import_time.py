"""Time ``import bayesclv`` against ``import pymc``, each in fresh interpreters.

Usage::

    uv run python benchmarks/import_time.py [--repeats N]

Each statement runs in a new ``python -c`` process, the statements interleaved round by round
so that a change in the machine's load touches all of them alike. For each statement the
median over the rounds of the wall seconds and of the child's CPU seconds (user + system,
``resource.getrusage``; the steadier measure on a shared machine) is written to
``benchmarks/results/import_time.json``, with the ratios to ``import pymc`` and the target
(``import bayesclv`` at most 1.2 times ``import pymc``). The public names are imported on
first use, so the file also times the first use of a model class (which loads PyMC, numba
and the formulas) and of the plots (which load matplotlib), for information.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "import_time.json"
TARGET_RATIO = 1.2
STATEMENTS = {
    "import pymc": "import pymc",
    "import bayesclv": "import bayesclv",
    "first use of a model: bayesclv.BetaGeoModel": "import bayesclv; bayesclv.BetaGeoModel",
    "first use of the plots: bayesclv.plots": "import bayesclv; bayesclv.plots",
}


def _run(statement: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``statement``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for statement in STATEMENTS.values():  # warm the file cache and compiled-code caches once
        _run(statement)
    load_before = list(os.getloadavg())
    runs = {label: [] for label in STATEMENTS}
    for _ in range(args.repeats):
        for label, statement in STATEMENTS.items():
            runs[label].append(_run(statement))
    wall = {label: round(statistics.median(w for w, _ in r), 3) for label, r in runs.items()}
    cpu = {label: round(statistics.median(c for _, c in r), 3) for label, r in runs.items()}
    ratio = {
        kind: {label: round(values[label] / values["import pymc"], 3) for label in STATEMENTS}
        for kind, values in (("wall", wall), ("cpu", cpu))
    }
    result = {
        "python": sys.version.split()[0],
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "median_wall_seconds": wall,
        "median_cpu_seconds": cpu,
        "ratio_to_import_pymc": ratio,
        "target": f"import bayesclv <= {TARGET_RATIO} x import pymc",
        "target_met": max(ratio["wall"]["import bayesclv"], ratio["cpu"]["import bayesclv"]) <= TARGET_RATIO,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median_cpu_seconds": cpu, "ratio_to_import_pymc": ratio,
                      "target_met": result["target_met"]}, indent=2))


if __name__ == "__main__":
    main()
