"""Time the GGom/NBD summed kernel and the infinite-horizon predictions (formulas level, no model layer yet).

Usage::

    uv run python benchmarks/ggomnbd_residual_timing.py

On CDNOW full (distinct histories) it times one GGom/NBD log-likelihood gradient (summed kernel,
what NUTS pays per leapfrog step; the Pareto/NBD kernel beside it) and, per distinct history at
the published or fitted parameters, P(alive), DERT and the expected residual lifetime of the
GGom/NBD, Pareto/NBD and BG/NBD. CPU time (``time.process_time``), one thread. Writes
``benchmarks/results/ggomnbd_residual_timing.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.formulas import NP, bgnbd, ggomnbd, paretonbd
from bayesclv.models.engine import compress_rows

GGOM = (0.55, 10.6, 0.05, 0.6, 0.6)  # an interior point (b away from the CDNOW boundary)
PARETO = (0.553, 10.578, 0.606, 11.669)
BG = (0.2426, 4.414, 0.793, 2.426)
DELTA = 0.0027  # 15% a year, per week


def _cpu(f, repeats):
    f()
    start = time.process_time()
    for _ in range(repeats):
        f()
    return (time.process_time() - start) / repeats


def main() -> None:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("full"), value="value", calibration_end="1997-09-30")
    rows, _ = compress_rows(rfm, ["frequency", "recency", "T"])
    x, t_x, T, w = (rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "weight"))
    results = {"customers": len(rfm), "distinct_histories": len(x), "gradient_ms": {}, "per_history_us": {}}
    gg_tables = ggomnbd.loglik_tables(x, t_x, T, w)
    pn_tables = paretonbd.loglik_tables(x, t_x, T, w)
    from bayesclv.formulas._ggom_integral import summed_loglik_kernel
    from bayesclv.formulas.paretonbd import _summed_loglik_kernel as pareto_kernel
    gg_args = [np.array([p]) for p in GGOM]
    pn_args = [np.array([p]) for p in PARETO]
    results["gradient_ms"]["ggomnbd"] = round(_cpu(lambda: summed_loglik_kernel(*gg_args, *gg_tables), 50) * 1e3, 3)
    results["gradient_ms"]["paretonbd"] = round(_cpu(lambda: pareto_kernel(*pn_args, *pn_tables), 50) * 1e3, 3)
    timings = {
        "ggomnbd_probability_alive": lambda: ggomnbd.probability_alive(x, t_x, T, *GGOM),
        "ggomnbd_dert": lambda: ggomnbd.discounted_expected_residual_transactions(DELTA, x, t_x, T, *GGOM),
        "ggomnbd_residual_lifetime": lambda: ggomnbd.expected_residual_lifetime(x, t_x, T, *GGOM),
        "ggomnbd_loglik_per_row": lambda: ggomnbd.loglik(x, t_x, T, *(np.full(x.size, p) for p in GGOM), xp=NP),
        "paretonbd_dert": lambda: paretonbd.discounted_expected_residual_transactions(DELTA, x, t_x, T,
                                                                                              *PARETO),
        "bgnbd_dert": lambda: bgnbd.discounted_expected_residual_transactions(DELTA, x, t_x, T, *BG),
    }
    for name, f in timings.items():
        results["per_history_us"][name] = round(_cpu(f, 3) / len(x) * 1e6, 2)
        print(name, results["per_history_us"][name], "us per distinct history", flush=True)
    print(results["gradient_ms"])
    path = Path(__file__).parent / "results" / "ggomnbd_residual_timing.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
