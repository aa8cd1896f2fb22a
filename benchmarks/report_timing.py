"""Time the report on the CDNOW sample: the NUTS fits, the holdout step and the whole build.

Usage::

    uv run python benchmarks/report_timing.py [--label NAME]

Fits BG/NBD and Gamma-Gamma by NUTS (4 chains x 1000 draws, as ``bayesclv report`` does), then
times ``evaluate`` called as the report's holdout step calls it and ``build_report`` as a whole
(with the transaction log, so the tracking figure is drawn). Writes
``benchmarks/results/report_timing.json`` (one entry per ``--label``): wall and CPU seconds
(``time.process_time``: all threads of this process; the machine is shared, so CPU seconds are
the steadier measure) with the load averages before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import bayesclv as bc
from bayesclv.evaluate import evaluate

RESULTS = Path(__file__).parent / "results" / "report_timing.json"


def _timed(call):
    start, cpu = time.perf_counter(), time.process_time()
    out = call()
    return out, round(time.perf_counter() - start, 2), round(time.process_time() - cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    tx = bc.datasets.load_cdnow("sample")
    rfm = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30")
    entry = {"customers": len(rfm), "load_before": os.getloadavg(), "seconds": {}, "cpu_seconds": {}}

    def record(name, call):
        out, wall, cpu = _timed(call)
        entry["seconds"][name], entry["cpu_seconds"][name] = wall, cpu
        print(f"{name}: {wall} s ({cpu} s CPU)", flush=True)
        return out

    fit = dict(random_seed=2026, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = record("fit BG/NBD (NUTS 4 x 1000)", lambda: bc.BetaGeoModel().fit(rfm, **fit))
        gg = record("fit Gamma-Gamma (NUTS 4 x 1000)", lambda: bc.GammaGammaModel().fit(rfm, **fit))
    record("holdout step: evaluate(n_draws=200, transactions=...)",
           lambda: evaluate(bg, rfm, prob=(0.9,), random_seed=2026, n_draws=200, transactions=tx))
    record("build_report (all steps)",
           lambda: bc.build_report(bg, gg, rfm, transactions=tx, progressbar=False, random_seed=2026))
    entry["load_after"] = os.getloadavg()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = entry
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS} ({args.label})")


if __name__ == "__main__":
    main()
