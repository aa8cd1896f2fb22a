"""Time the BG/NBD DERT (discounted expected residual transactions) before and after its speed-up.

Usage::

    uv run python benchmarks/dert_timing.py [--baseline COMMIT] [--baseline-draws N]

A BG/NBD fitted by MAP on the CDNOW sample is given a 1 x 200-draw posterior
(the estimate jittered by 5% per draw: the cost depends on the number of draws,
not their values) and its DERT at 15% a year is computed per customer. The
library in this checkout times all 200 draws; the ``--baseline`` commit's
``src`` (``git archive``) runs in a child process on its first
``--baseline-draws`` draws, whose values are compared with this checkout's.
CPU time (``time.process_time``, one thread, compilation excluded) per
element, an element being one (draw, distinct (x, T)) pair. Writes
``benchmarks/results/dert_timing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.testing import jittered_posterior

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "12376a6"  # main before the speed-up
DRAWS = 200
DELTA = np.log(1.15) / 52.0  # 15% a year, per week


def _model():
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    model = bc.BetaGeoModel().fit(rfm, method="map", progressbar=False)
    return rfm, jittered_posterior(model, chains=1, draws=DRAWS, jitter=0.05, random_seed=0)


def measure(draws: int) -> dict:
    """CPU seconds of the DERT over the first ``draws`` draws, with its values."""
    rfm, model = _model()
    model.idata["posterior"] = model.idata["posterior"].isel(draw=slice(0, draws))
    model.discounted_expected_residual_transactions(DELTA, rfm.iloc[:1])  # compile or load the numba cache
    start = time.process_time()
    dert = model.discounted_expected_residual_transactions(DELTA, rfm)
    cpu = time.process_time() - start
    distinct = len(np.unique(rfm[["frequency", "T"]].to_numpy(dtype=float), axis=0))
    return {"draws": draws, "customers": len(rfm), "distinct_histories": distinct, "cpu_s": cpu,
            "cpu_us_per_element": cpu / (draws * distinct) * 1e6, "values": np.asarray(dert).tolist()}


def _baseline(commit: str, draws: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        out = subprocess.run([sys.executable, __file__, "--child", str(draws)], env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--baseline-draws", type=int, default=10)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    new = measure(DRAWS)
    print(f"this checkout: {new['cpu_s']:.2f} s CPU, {new['cpu_us_per_element']:.2f} us per element", flush=True)
    old = _baseline(args.baseline, args.baseline_draws)
    print(f"{args.baseline}: {old['cpu_s']:.2f} s CPU, {old['cpu_us_per_element']:.2f} us per element", flush=True)
    want, got = np.asarray(old.pop("values")), np.asarray(new.pop("values"))[..., :args.baseline_draws, :]
    results = {
        "delta_per_week": DELTA, "baseline_commit": args.baseline, "baseline": old, "this_checkout": new,
        "speedup_per_element": old["cpu_us_per_element"] / new["cpu_us_per_element"],
        "max_relative_difference": float(np.max(np.abs(got / want - 1.0))),
        "load_average": os.getloadavg(),
    }
    print(f"speed-up {results['speedup_per_element']:.1f}x, max relative difference "
          f"{results['max_relative_difference']:.2e}")
    path = ROOT / "benchmarks" / "results" / "dert_timing.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
