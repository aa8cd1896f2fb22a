"""Cost of one log-density gradient of the covariate BG/NBD and Pareto/NBD: compiled kernel vs per-row graph.

A NUTS fit costs (compile time) + (gradients) x (cost per gradient). This
script measures the first and the last for the covariate models on CDNOW
(39-week calibration, weeks, covariates ``log_first_amount`` and
``first_week`` as in ``peer_covariates.py``): the model's log density and its
gradient compiled as ``fit`` compiles them (PyTensor's C backend), with the
likelihood as the covariate kernel (``build_model(summed=True)``, the default)
or as the per-row PyTensor formula (``summed=False``, the path before the
kernel), timed in CPU seconds at the parameters of ``POINTS`` (near the
posterior: the quadrature's work depends on the parameters). The number of gradients
of a fit is its leapfrog steps per draw x (draws + tuning) x chains, recorded
by ``peer_covariates.py``.

    uv run python benchmarks/covariate_gradient_timing.py

Writes ``benchmarks/results/covariate_gradient_timing.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_covariates import COVARIATES, cdnow_with_covariates  # noqa: E402

import bayesclv as bc  # noqa: E402
from bayesclv.models.sampling import c_mode  # noqa: E402

FAMILIES = {"BG/NBD": bc.BetaGeoModel, "Pareto/NBD": bc.ParetoNBDModel}
# near the CDNOW posteriors (weeks), in each model's sampled coordinates
POINTS = {
    "BG/NBD": {"r": 0.25, "alpha": 4.5, "a": 1.0, "b": 3.5, "purchase_coef": [0.3, -0.05],
               "dropout_coef_a": [0.4, 0.4], "dropout_coef_b": [0.5, 0.5]},
    "Pareto/NBD": {"r": 0.55, "alpha": 10.5, "dropout_mean": 0.05, "dropout_cv2": 1.6, "purchase_coef": [0.3, -0.05],
                   "dropout_coef": [-0.2, 0.1]},
}


def timing(cls, rfm, values: dict, summed: bool, seconds: float = 3.0) -> dict:
    """Build and compile CPU seconds, and CPU milliseconds per gradient at ``values`` (repeated for ``seconds``)."""
    model = cls(covariates=COVARIATES)
    start = time.process_time()
    graph = model.build_model(rfm, summed=summed)
    free = [graph.rvs_to_values[rv] for rv in graph.free_RVs]
    logp = graph.logp(jacobian=True)
    fn = pytensor.function(free, [logp, *pt.grad(logp, free)], mode=c_mode())
    compile_s = time.process_time() - start
    args = []
    for rv in graph.free_RVs:  # the values in the sampler's unconstrained space
        value = np.asarray(values[rv.name], dtype=float)
        transform = graph.rvs_to_transforms[rv]
        args.append(transform.forward(value, *rv.owner.inputs).eval() if transform is not None else value)
    value = float(fn(*args)[0])
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        fn(*args)
        calls += 1
    return {"compile_cpu_s": compile_s, "gradient_cpu_ms": (time.process_time() - start) / calls * 1e3,
            "logp": value, "calls": calls}


def main() -> None:
    results = {}
    for dataset in ("sample", "full"):
        rfm = cdnow_with_covariates(dataset)
        rfm.attrs["time_unit"] = "W"
        distinct = len(rfm[["frequency", "recency", "T", *COVARIATES]].drop_duplicates())
        for label, cls in FAMILIES.items():
            kernel, rows = timing(cls, rfm, POINTS[label], True), timing(cls, rfm, POINTS[label], False)
            results[f"{dataset} {label}"] = {"customers": len(rfm), "distinct_rows": distinct, "kernel": kernel,
                                             "per_row_graph": rows}
            print(dataset, label, f"{rows['gradient_cpu_ms']:.2f} -> {kernel['gradient_cpu_ms']:.2f} ms", flush=True)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg(),
            "cpus": os.cpu_count()}
    out = HERE / "results" / "covariate_gradient_timing"
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = ["# Covariate models: one log-density gradient, compiled kernel vs per-row graph\n",
             f"CDNOW, covariates {', '.join(COVARIATES)}; CPU time per gradient near the posterior. {meta['started']}, "
             f"{meta['cpus']} CPUs, load average {meta['load']} (shared machine: ratios are the comparison).\n",
             "| data | model | customers | distinct rows | per-row graph (ms) | kernel (ms) | speed-up "
             "| compile, graph / kernel (CPU s) | log density equal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        k, g = r["kernel"], r["per_row_graph"]
        same = abs(k["logp"] - g["logp"]) <= 1e-9 * abs(g["logp"])
        lines.append(f"| {key.split()[0]} | {key.split(' ', 1)[1]} | {r['customers']} | {r['distinct_rows']} "
                     f"| {g['gradient_cpu_ms']:.2f} | {k['gradient_cpu_ms']:.2f} "
                     f"| {g['gradient_cpu_ms'] / k['gradient_cpu_ms']:.1f}x "
                     f"| {g['compile_cpu_s']:.1f} / {k['compile_cpu_s']:.1f} | {same} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
