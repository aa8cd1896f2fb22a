"""CLV cost against the horizon (issue #20 item 5): 12 / 120 / 1,200 months on the CDNOW sample.

The posteriors are synthetic (MAP estimates with 1% multiplicative jitter per draw,
``bayesclv.testing.jittered_posterior``), which cost the same to predict from as NUTS
posteriors. Each horizon is timed with and without a service cost (the service cost
adds the discounted periods alive). CPU seconds are measured in this process (the
machine may be shared; wall seconds are recorded too). A linear cost means the
ratio ``seconds / horizon`` stays flat; the issue's target is 120 months in at most
10x the time of 12 months.

Usage::

    uv run python benchmarks/clv_horizon.py                      # 12 120 1200 months, 4 x 100 draws
    uv run python benchmarks/clv_horizon.py --horizons 12 120 --draws 25 --out /tmp/clv.json

Writes ``benchmarks/results/clv_horizon.json`` and ``.md`` (or ``--out`` and its ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.testing import jittered_posterior

RESULTS = Path(__file__).parent / "results" / "clv_horizon.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[12, 120, 1200])
    parser.add_argument("--draws", type=int, default=100, help="draws per chain (4 chains)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    fit = {"method": "map", "progressbar": False}
    gg = jittered_posterior(bc.GammaGammaModel().fit(rfm, **fit), chains=4, draws=args.draws, random_seed=rng)
    rows = []
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        model = jittered_posterior(cls().fit(rfm, **fit), chains=4, draws=args.draws, random_seed=rng)
        bc.customer_lifetime_value(model, gg, horizon=2, time_unit="M", discount_rate=0.01)  # compile
        for horizon in args.horizons:
            for service_cost in (0.0, 1.0):
                cpu, wall = time.process_time(), time.perf_counter()
                bc.customer_lifetime_value(model, gg, horizon=horizon, time_unit="M", discount_rate=0.01,
                                           service_cost_per_period=service_cost)
                rows.append({"model": cls.__name__, "horizon_months": horizon, "service_cost": service_cost,
                             "cpu_s": round(time.process_time() - cpu, 3),
                             "wall_s": round(time.perf_counter() - wall, 3)})
                print(rows[-1], flush=True)
    result = {"customers": len(rfm), "draws": 4 * args.draws, "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# CLV cost against the horizon", "",
             f"Written by `benchmarks/clv_horizon.py`: CDNOW sample ({len(rfm):,} customers), 4 x {args.draws} "
             "jittered draws, discount 1% a month; CPU seconds of one `customer_lifetime_value` call. "
             f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.", "",
             "| model | months | service cost | CPU s | CPU s / 12 months' |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["service_cost"] == row["service_cost"]
                    and r["horizon_months"] == min(args.horizons))
        lines.append(f"| {row['model']} | {row['horizon_months']:,} | {row['service_cost']:g} | {row['cpu_s']:.2f} "
                     f"| {row['cpu_s'] / max(base['cpu_s'], 1e-9):.1f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
