"""pytest plugin: CPU seconds numba spends compiling, per function and per test.

Load it with ``-p benchmarks.pytest_numba_compile`` (repository root on the import path, as for
``benchmarks/pytest_cputime.py``) and set ``BAYESCLV_COMPILE_OUT`` to a JSON path. Numba fires its
``numba:compile`` event only for a real compilation (a signature not found in its on-disk cache), so what is
recorded is the compilation a cold or uncacheable function costs, not the loading of cached ones. A function
compiled inside another's compilation (a callee typed for the first time) is booked to itself: the times are
exclusive. The package's ``@njit`` kernels are named ``module.qualname``; PyTensor's generated functions
(``<string>`` sources: graphs, Ops' elemwise loops) are grouped under ``pytensor:qualname``.

Under pytest-xdist each worker writes the path with its id before the suffix (``out.gw0.json``).
"""

import json
import os
import time
from collections import defaultdict

import pytest
from numba.core import event

from benchmarks.pytest_cputime import per_worker

_by_function: dict[str, dict] = defaultdict(lambda: {"compiles": 0, "cpu_s": 0.0, "signatures": []})
_by_test: dict[str, float] = defaultdict(float)
_state = {"test": "<collection>", "stack": []}


def _name(dispatcher) -> str:
    func = dispatcher.py_func
    module = getattr(func, "__module__", None) or "?"
    if func.__code__.co_filename.startswith("<"):
        return f"pytensor:{func.__qualname__}"
    return f"{module}.{func.__qualname__}"


class _Listener(event.Listener):
    """Exclusive CPU per compilation: a nested compilation's time is taken off its caller's."""

    def on_start(self, ev):
        _state["stack"].append([time.process_time(), 0.0])

    def on_end(self, ev):
        start, nested = _state["stack"].pop()
        spent = time.process_time() - start
        if _state["stack"]:
            _state["stack"][-1][1] += spent
        own = spent - nested
        data = ev.data or {}
        dispatcher = data.get("dispatcher")
        name = _name(dispatcher) if dispatcher is not None else "?"
        entry = _by_function[name]
        entry["compiles"] += 1
        entry["cpu_s"] += own
        entry["signatures"].append(str(data.get("args")))
        _by_test[_state["test"]] += own


_listener = _Listener()


def pytest_configure(config):
    event.register("numba:compile", _listener)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _state["test"] = item.nodeid
    yield
    _state["test"] = "<between tests>"


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("BAYESCLV_COMPILE_OUT")
    if not out or not _by_function:
        return
    out = per_worker(out)
    result = {
        "total_compile_cpu_s": sum(e["cpu_s"] for e in _by_function.values()),
        "by_function": dict(sorted(_by_function.items(), key=lambda kv: -kv[1]["cpu_s"])),
        "by_test": dict(sorted(_by_test.items(), key=lambda kv: -kv[1])),
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
