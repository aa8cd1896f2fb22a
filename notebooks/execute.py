"""Execute the notebooks in place (outputs kept) and record their run times.

Usage::

    uv run --group docs python notebooks/execute.py [NOTEBOOK ...]

Without arguments every ``notebooks/*.ipynb`` is run top to bottom. Each is
executed in a fresh kernel with nbclient; its outputs are written back into the
file, and the wall time of each run, the CPU time of its kernel (steadier than the wall time on a shared
machine) and the machine's load average go to
``notebooks/run_times.json``. CI does not write: it runs ``pytest --nbmake
notebooks`` (see ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 600  # per cell


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(path: Path) -> tuple[float, float]:
    """Run ``path`` in place; return its wall time and its kernel's CPU time in seconds."""
    nb = nbformat.read(path, as_version=4)
    print(f"running {path.name} ...", flush=True)
    start, cpu = time.perf_counter(), _children_cpu()
    # the kernel is a child process: its CPU time is counted once it has exited, at the end of execute()
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    seconds, cpu_seconds = time.perf_counter() - start, _children_cpu() - cpu
    nbformat.write(nb, path)
    print(f"  {path.name}: {seconds:.1f} s, kernel CPU {cpu_seconds:.1f} s", flush=True)
    return seconds, cpu_seconds


def main(names: list[str]) -> None:
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    record_path = HERE / "run_times.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for path in paths:
        seconds, cpu_seconds = execute(path)
        record[path.name] = {"seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                             "load_average_1m_5m_15m": list(os.getloadavg()),
                             "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    record_path.write_text(json.dumps(dict(sorted(record.items())), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
