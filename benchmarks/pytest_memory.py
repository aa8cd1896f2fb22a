"""pytest plugin: resident memory after each test and per test file, for finding what the suite keeps alive.

Load it like ``benchmarks/pytest_cputime.py`` (``PYTHONPATH=$PWD uv run pytest -p benchmarks.pytest_memory ...``)
and set ``BAYESCLV_MEMORY_LOG`` to a JSON-lines path: one line per test as it ends with the process's current
resident set (``VmRSS`` of ``/proc/self/status``), its peak so far (``VmHWM``) and the CPU seconds so far (this
process plus waited-for children). The terminal summary lists per file the growth of the current RSS across the
file (what the file left behind for the rest of the session) and the peak reached while it ran. Linux only.
Under pytest-xdist (the suite's default) the tests run in the workers and the controller's summary is empty:
each log line names its ``worker``, whose RSS it is (or run with ``-n 0``).

With ``BAYESCLV_MEMORY_PROBE=1`` the end of each file also logs the RSS after a full garbage collection and
after glibc's ``malloc_trim(0)`` (what the allocator holds freed but not returned), and the number of live
objects of the types that hold compiled code or fitted results (``PROBE_TYPES``): a costly census, for
finding what the session keeps, not for timing.
"""

import ctypes
import gc
import json
import os
import resource
from collections import Counter, defaultdict

import pytest

_files: dict[str, dict[str, float]] = defaultdict(lambda: {"start_mb": 0.0, "end_mb": 0.0, "peak_mb": 0.0, "cpu_s": 0.0})


def _status_mb() -> tuple[float, float]:
    """Current and peak resident set of this process, in MB."""
    values = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb, _ = line.split()
                values[key[:-1]] = int(kb) / 1024
    return values["VmRSS"], values["VmHWM"]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: Type names counted by the probe: compiled PyTensor functions, numba dispatchers, PyMC models, DataTrees, models.
PROBE_TYPES = ("Function", "CPUDispatcher", "Model", "DataTree", "FunctionGraph", "ModuleType")


def _probe(path: str) -> dict:
    gc.collect()
    after_gc, _ = _status_mb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after_trim, _ = _status_mb()
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    fitted = sum(1 for o in gc.get_objects() if str(getattr(type(o), "__module__", "")).startswith("bayesclv.models"))
    return {"file_end": path, "rss_gc_mb": round(after_gc, 1), "rss_trim_mb": round(after_trim, 1),
            "bayesclv_model_objects": fitted, **{t: counts.get(t, 0) for t in PROBE_TYPES}}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    path = item.nodeid.split("::")[0]
    rss, _ = _status_mb()
    cpu = _cpu()
    if path not in _files:
        _files[path]["start_mb"] = rss
    yield
    rss, hwm = _status_mb()
    entry = _files[path]
    entry["end_mb"] = rss
    entry["peak_mb"] = max(entry["peak_mb"], hwm)
    entry["cpu_s"] += _cpu() - cpu
    log = os.environ.get("BAYESCLV_MEMORY_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"test": item.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                 "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1),
                                 "cpu_s": round(_cpu(), 2)}) + "\n")
            if os.environ.get("BAYESCLV_MEMORY_PROBE") and (nextitem is None or nextitem.nodeid.split("::")[0] != path):
                fh.write(json.dumps(_probe(path)) + "\n")


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("resident memory per file (MB): start, end, growth, peak so far; CPU s")
    for path, e in _files.items():
        terminalreporter.write_line(f"{e['start_mb']:8.0f} {e['end_mb']:8.0f} {e['end_mb'] - e['start_mb']:+8.0f} "
                                    f"{e['peak_mb']:8.0f} {e['cpu_s']:8.1f}  {path}")
