"""Execute the notebooks in place (outputs kept) and record their run times.

Usage::

    uv run --group docs python notebooks/execute.py [NOTEBOOK ...]

Without arguments every ``notebooks/*.ipynb`` is run top to bottom. Each is
executed in a fresh kernel with nbclient; its outputs are written back into the
file, and the wall time of each run, with the machine's load average, goes to
``notebooks/run_times.json``. CI does not write: it runs ``pytest --nbmake
notebooks`` (see ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 600  # per cell


def execute(path: Path) -> float:
    """Run ``path`` in place; return its wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    print(f"running {path.name} ...", flush=True)
    start = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    print(f"  {path.name}: {seconds:.1f} s", flush=True)
    return seconds


def main(names: list[str]) -> None:
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    record_path = HERE / "run_times.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for path in paths:
        seconds = execute(path)
        record[path.name] = {"seconds": round(seconds, 1), "load_average_1m_5m_15m": list(os.getloadavg()),
                             "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    record_path.write_text(json.dumps(dict(sorted(record.items())), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
