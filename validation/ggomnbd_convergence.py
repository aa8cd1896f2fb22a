"""The GGom/NBD's default NUTS fit (nutpie, 4 chains x 1000 draws) on CDNOW: convergence and posterior means.

Fits ``GompertzNBDModel()`` with its defaults on the weekly RFM frame of the lead's family comparison
(``rfm_summary(load_cdnow(kind), calibration_end="1997-09-30", cohort="W", litt=True)``) once per seed
and records max R-hat, min bulk and tail ESS, divergences, CPU seconds, the posterior means and sds,
and where any divergent draws lie (b, dropout_mean, dropout_cv2).

Usage::

    nice -n 10 uv run python validation/ggomnbd_convergence.py [sample|full] [--seeds 2026 7]

Writes ``validation/results/ggomnbd_convergence_<kind>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import bayesclv as bc

RESULTS = Path(__file__).parent / "results"
SHOWN = ("r", "alpha", "b", "dropout_mean", "dropout_cv2", "s", "beta")


def fit(rfm, seed: int) -> dict:
    cpu = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the diagnostics are recorded below
        model = bc.GompertzNBDModel().fit(rfm, progressbar=False, random_seed=seed)
    cpu = time.process_time() - cpu
    post = model.posterior
    diverging = model.idata["sample_stats"]["diverging"].values.astype(bool)
    diag = {k: v for k, v in dict(model.diagnostics).items() if isinstance(v, int | float | str | bool)}
    return {"seed": seed, "cpu_seconds": round(cpu, 1), "diagnostics": diag,
            "mean": {n: float(post[n].mean()) for n in SHOWN},
            "sd": {n: float(post[n].std()) for n in SHOWN},
            "b_q90": float(post["b"].quantile(0.9)),
            "divergent_draws": {n: post[n].values[diverging].round(5).tolist() for n in ("b", "dropout_mean",
                                                                                          "dropout_cv2")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 7])
    args = parser.parse_args()
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(args.kind), calibration_end="1997-09-30", cohort="W", litt=True)
    runs = []
    for seed in args.seeds:
        runs.append(fit(rfm, seed))
        print(json.dumps({k: runs[-1][k] for k in ("seed", "cpu_seconds", "diagnostics", "mean")}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ggomnbd_convergence_{args.kind}.json"
    out.write_text(json.dumps({"kind": args.kind, "customers": len(rfm), "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
