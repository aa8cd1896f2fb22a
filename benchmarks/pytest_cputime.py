"""pytest plugin: CPU seconds per test and per test file, for sizing the default suite.

Load it with ``-p benchmarks.pytest_cputime`` from the repository root with the root on the
import path (``PYTHONPATH=$PWD uv run pytest ...`` or ``uv run python -m pytest ...``: the ``pytest``
script alone does not put it there) and set ``BAYESCLV_CPUTIME_OUT`` to a JSON path (the totals, written at the end)
and/or ``BAYESCLV_CPUTIME_LOG`` to a JSON-lines path (one line per test as it ends). Wall-clock durations on a shared
machine are inflated by other work; the process's own CPU time (user + system, this process plus
the waited-for children such as compilers and CLI subprocesses) is what a change to the suite
saves. Time is booked to the test whose setup, call or teardown spent it, so a module fixture's
cost lands on the first test that requests it.

Under pytest-xdist (the suite's default: two workers) the tests run in the workers, so the controller's
terminal summary is empty: read the log (each line names its ``worker``) or run with ``-n 0``; each worker
writes its totals to ``BAYESCLV_CPUTIME_OUT`` with the worker's id before the suffix (``out.gw0.json``).
"""

import json
import os
import resource
import time
from collections import defaultdict

import pytest

_per_test: dict[str, float] = defaultdict(float)
_start = {"wall": 0.0, "cpu": 0.0}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _per_file() -> dict[str, float]:
    """CPU seconds per test file, most first."""
    per_file: dict[str, float] = defaultdict(float)
    for nodeid, seconds in _per_test.items():
        per_file[nodeid.split("::")[0]] += seconds
    return dict(sorted(per_file.items(), key=lambda kv: -kv[1]))


def pytest_sessionstart(session):
    _start["wall"] = time.perf_counter()
    _start["cpu"] = _cpu()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before, wall = _cpu(), time.perf_counter()
    yield
    spent = _cpu() - before
    _per_test[item.nodeid] += spent
    log = os.environ.get("BAYESCLV_CPUTIME_LOG")
    if log:  # one line per test as it ends, so an interrupted run still says where the time went
        with open(log, "a") as fh:
            fh.write(json.dumps({"test": item.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                 "cpu_s": round(spent, 3),
                                 "wall_s": round(time.perf_counter() - wall, 3)}) + "\n")


def per_worker(path: str) -> str:
    """``path`` with the xdist worker's id before its suffix, so that each worker writes its own file."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}.{worker}{suffix}"


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("BAYESCLV_CPUTIME_OUT")
    if not out or not _per_test:  # an xdist controller runs no tests: it leaves the workers' files alone
        return
    out = per_worker(out)
    result = {
        "wall_s": time.perf_counter() - _start["wall"],
        "cpu_s": _cpu() - _start["cpu"],
        "per_file_cpu_s": _per_file(),
        "per_test_cpu_s": dict(sorted(_per_test.items(), key=lambda kv: -kv[1])),
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)


def pytest_terminal_summary(terminalreporter):
    per_file = _per_file()
    terminalreporter.section("CPU seconds per file")
    for path, seconds in per_file.items():
        terminalreporter.write_line(f"{seconds:8.1f}  {path}")
    terminalreporter.write_line(f"{sum(per_file.values()):8.1f}  total in tests")
