"""Time per-customer predictions over 4 chains x 1000 draws on CDNOW full.

The posterior is synthetic (MAP estimate with 1% multiplicative jitter per
draw), which costs the same to predict from as a NUTS posterior and takes
seconds instead of minutes to make.

Usage::

    uv run python benchmarks/prediction_timing.py

Writes ``benchmarks/results/prediction_timing.json``: wall and CPU seconds of
each call, with the load averages before and after (the machine is shared: CPU
seconds are the steadier measure).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.testing import jittered_posterior


def main() -> None:
    rng = np.random.default_rng(0)
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("full"), value="value", calibration_end="1997-09-30")
    gg = jittered_posterior(bc.GammaGammaModel().fit(rfm, method="map", progressbar=False), random_seed=rng)
    results = {"customers": len(rfm), "draws": 4000, "load_before": os.getloadavg(), "seconds": {},
               "cpu_seconds": {}}
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        model = jittered_posterior(cls().fit(rfm, method="map", progressbar=False), random_seed=rng)
        for name, call in {
            "expected_purchases(39)": lambda m=model: m.expected_purchases(39.0),
            "probability_alive": lambda m=model: m.probability_alive(),
            "clv(12 months)": lambda m=model: bc.customer_lifetime_value(
                m, gg, horizon=12, time_unit="M", discount_rate=0.01),
        }.items():
            start, cpu = time.perf_counter(), time.process_time()
            call()
            seconds = round(time.perf_counter() - start, 2)
            cpu = round(time.process_time() - cpu, 2)
            results["seconds"][f"{cls.__name__}.{name}"] = seconds
            results["cpu_seconds"][f"{cls.__name__}.{name}"] = cpu
            print(f"{cls.__name__}.{name}: {seconds} s ({cpu} s CPU)", flush=True)
    results["load_after"] = os.getloadavg()
    path = Path(__file__).parent / "results" / "prediction_timing.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
