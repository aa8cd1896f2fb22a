"""The GGom/NBD's default NUTS fit (nutpie, 4 chains x 1000 draws) on CDNOW: convergence and posterior means.

Fits ``GompertzNBDModel()`` with its defaults on the weekly RFM frame of the lead's family comparison
(``rfm_summary(load_cdnow(kind), calibration_end="1997-09-30", cohort="W", litt=True)``) once per seed
and records max R-hat, min bulk and tail ESS, divergences, leapfrog steps per draw, CPU seconds, the
posterior means and sds, where any divergent draws lie (b, dropout_mean, dropout_cv2), and the variables
with the worst R-hat and bulk ESS. ``--group cohort`` fits the partially pooled model by first-purchase
week (``--b-pooling complete``: one ``b`` for every cohort).

Usage::

    nice -n 10 uv run python validation/ggomnbd_convergence.py [sample|full] [--seeds 2026 7]
        [--group cohort [--b-pooling partial|complete]] [--save DIR]

Writes ``validation/results/ggomnbd_convergence_<kind>.json`` (grouped:
``ggomnbd_convergence_<kind>_cohort_b_<b_pooling>.json``); ``--save DIR``: each fit also as
``DIR/ggomnbd_<kind>[_cohort_b_<b_pooling>]_seed<seed>.nc`` (its ``save()``; e.g. for
``compare_families.py --fitted``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np

import bayesclv as bc

RESULTS = Path(__file__).parent / "results"
SHOWN = ("r", "alpha", "b", "dropout_mean", "dropout_cv2", "s", "beta")


def _worst(idata, names: list[str]) -> dict:
    """The five variables (any group) with the largest R-hat and the five with the smallest bulk ESS."""
    rhat, ess = azs.rhat(idata, var_names=names), azs.ess(idata, var_names=names, method="bulk")
    by_rhat = sorted(((float(rhat[n].max()), n) for n in names), reverse=True)[:5]
    by_ess = sorted((float(ess[n].min()), n) for n in names)[:5]
    return {"rhat": [[n, round(v, 4)] for v, n in by_rhat], "ess_bulk": [[n, round(v)] for v, n in by_ess]}


def fit(rfm, seed: int, group: str | None, b_pooling: str, save: Path | None = None) -> dict:
    model = bc.GompertzNBDModel(group=group, b_pooling=b_pooling) if group else bc.GompertzNBDModel()
    cpu = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the diagnostics are recorded below
        model.fit(rfm, progressbar=False, random_seed=seed)
    cpu = time.process_time() - cpu
    if save is not None:
        model.save(save)
    post = model.posterior
    stats = model.idata["sample_stats"]
    diverging = stats["diverging"].values.astype(bool)
    diag = {k: v for k, v in dict(model.diagnostics).items() if isinstance(v, int | float | str | bool)}
    hyper = [f"log_{n}_{k}" for n in ("r", "alpha", "b", "dropout_mean", "dropout_cv2") for k in ("mean", "sd")]
    shown = [n for n in (*SHOWN, *hyper) if n in post]
    out = {"seed": seed, "cpu_seconds": round(cpu, 1), "diagnostics": diag,
           "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
           "mean": {n: np.round(post[n].mean(("chain", "draw")).values, 5).tolist() for n in shown},
           "sd": {n: np.round(post[n].std(("chain", "draw")).values, 5).tolist() for n in shown},
           "b_q90": float(post["b"].quantile(0.9)),
           "divergent_draws": {n: post[n].values[diverging].round(5).tolist() for n in ("b", "dropout_mean",
                                                                                          "dropout_cv2")}}
    if group:
        out["worst"] = _worst(model.idata, list(post.data_vars))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 7])
    parser.add_argument("--group", default=None, help="group column (cohort: first-purchase week)")
    parser.add_argument("--b-pooling", choices=["partial", "complete"], default="partial")
    parser.add_argument("--save", type=Path, default=None, help="folder to save each fitted model in")
    args = parser.parse_args()
    header = {"command": "nice -n 10 uv run python validation/ggomnbd_convergence.py " + " ".join(sys.argv[1:]),
              "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=RESULTS.parent).stdout.strip(),
              "load_average_start": os.getloadavg()}
    suffix = f"_{args.group}_b_{args.b_pooling}" if args.group else ""
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(args.kind), calibration_end="1997-09-30", cohort="W", litt=True)
    runs = []
    for seed in args.seeds:
        save = None if args.save is None else args.save / f"ggomnbd_{args.kind}{suffix}_seed{seed}.nc"
        runs.append(fit(rfm, seed, args.group, args.b_pooling, save))
        print(json.dumps({k: runs[-1][k] for k in ("seed", "cpu_seconds", "diagnostics", "steps_per_draw")}),
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ggomnbd_convergence_{args.kind}{suffix}.json"
    header.update(ended_utc=time.strftime("%H:%M", time.gmtime()), load_average_end=os.getloadavg())
    out.write_text(json.dumps({**header, "kind": args.kind, "customers": len(rfm), "group": args.group,
                               "b_pooling": args.b_pooling if args.group else None, "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
