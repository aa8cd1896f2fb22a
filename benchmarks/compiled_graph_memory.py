"""Resident memory a process keeps after compiling PyTensor graphs with the default (numba) backend.

For each of six model configurations on 1/20 of the CDNOW sample (BG/NBD, Pareto/NBD, grouped with partial or
no pooling, with covariates) the script builds the summed and the per-row graph, compiles and calls each one's
``logp`` and ``dlogp``, drops every reference, runs a full garbage collection and glibc's ``malloc_trim(0)``, and
prints the resident set; then it does all six again. Numba adds every compiled function's module to its one
LLVM execution engine and never removes it (``numba/core/codegen.py``, ``JITCPUCodegen._add_module``), so a
graph compiled for the first time leaves memory behind that no Python reference holds. Run:
``nice -n 10 uv run python benchmarks/compiled_graph_memory.py``; it prints one line per configuration and pass.
"""

import ctypes
import gc
import time

import numpy as np

import bayesclv as bc

_LIBC = ctypes.CDLL("libc.so.6")


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def _released_rss_mb() -> float:
    """Resident set after a full collection and after giving freed heap pages back to the system."""
    gc.collect()
    _LIBC.malloc_trim(0)
    return _rss_mb()


def main() -> None:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    df = rfm.iloc[::20].reset_index(drop=True)
    df.attrs = dict(rfm.attrs)
    rng = np.random.default_rng(0)
    df["cohort"] = np.where(df["T"] > df["T"].median(), "early", "late")
    df["age"] = rng.normal(40.0, 12.0, len(df))
    df["email"] = (rng.random(len(df)) < 0.4).astype(float)
    configs = [(bc.BetaGeoModel, {}), (bc.ParetoNBDModel, {}),
               (bc.BetaGeoModel, {"group": "cohort", "pooling": "partial"}),
               (bc.ParetoNBDModel, {"group": "cohort", "pooling": "none"}),
               (bc.BetaGeoModel, {"purchase_covariates": ["age"], "dropout_covariates": ["email"]}),
               (bc.ParetoNBDModel, {"purchase_covariates": ["age", "email"], "dropout_covariates": ["email"]})]
    print(f"start: {_released_rss_mb():.0f} MB")
    for rep in range(2):
        for cls, options in configs:
            cpu = time.process_time()
            for summed in (True, False):
                graph = cls(**options).build_model(df, summed=summed)
                point = graph.initial_point()
                graph.compile_logp()(point)
                graph.compile_dlogp()(point)
                del graph
            print(f"pass {rep + 1} {cls.__name__} {options}: {time.process_time() - cpu:.1f} CPU s, "
                  f"{_released_rss_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
