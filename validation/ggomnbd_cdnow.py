"""GGom/NBD beside the Pareto/NBD on CDNOW (calibration weeks 1-39, holdout weeks 40-78), MAP and NUTS.

For each model: the MAP estimates (the GGom/NBD's against Bemmaor & Glady 2012, Table 2), the NUTS
posterior (summary, R-hat, ESS, divergences, wall and CPU time), the holdout MAE/RMSE of the
posterior-mean forecast with predicted and actual totals, and the customer base's total DERT at
15% a year (``delta = log(1.15) / 52`` per week) with a 90% credible interval. The GGom/NBD's ``b``
is reported by its 90% quantile: on CDNOW the likelihood is flat towards ``b = 0``.

Usage::

    uv run python validation/ggomnbd_cdnow.py [sample|full] [--draws 1000] [--tune 1000] [--chains 2]

Writes ``validation/results/ggomnbd_cdnow_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

import bayesclv as bc

RESULTS = Path(__file__).parent / "results"
PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.603, "loglik": -9594.98}  # Bemmaor & Glady (2012), sample
DELTA = float(np.log(1.15) / 52.0)


def holdout(model, rfm) -> dict:
    horizon = float(rfm["T_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy()
    mean = model.expected_purchases(horizon).mean(("chain", "draw")).to_numpy()
    return {"mae": float(np.abs(mean - actual).mean()), "rmse": float(np.sqrt(((mean - actual) ** 2).mean())),
            "predicted_total": float(mean.sum()), "actual_total": float(actual.sum())}


def run(cls, rfm, args) -> dict:
    fitted = {}
    for method in ("map", "nuts"):
        kwargs = {"method": method, "progressbar": False, "random_seed": 2026}
        if method == "nuts":
            kwargs.update(draws=args.draws, tune=args.tune, chains=args.chains)
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the diagnostics are recorded below
            model = cls().fit(rfm, **kwargs)
        entry = {"wall_seconds": round(time.perf_counter() - wall, 1),
                 "cpu_seconds": round(time.process_time() - cpu, 1),
                 "loglik_at_mean": None, **holdout(model, rfm)}
        table = model.summary()
        entry["estimates"] = table["mean"].round(6).to_dict()
        if method == "nuts":
            entry["summary"] = table.round(4).reset_index().to_dict("records")
            entry["diagnostics"] = {k: v for k, v in dict(model.diagnostics).items()
                                    if isinstance(v, int | float | str | bool)}
            if "b" in model.parameter_names:
                entry["b_q90"] = float(model.posterior["b"].quantile(0.9).item())
        else:
            entry["loglik_at_mean"] = float(model.log_likelihood().sum())
        total = model.discounted_expected_residual_transactions(DELTA).sum("customer_id")
        entry["dert_total"] = {"mean": float(total.mean()),
                               "q05": float(total.quantile(0.05)), "q95": float(total.quantile(0.95))}
        fitted[method] = entry
    return fitted


def markdown(result: dict) -> str:
    lines = [f"# GGom/NBD and Pareto/NBD on CDNOW {result['kind']}", "",
             f"Load average {result['load_average']}; NUTS {result['settings']}; DERT at delta = {DELTA:.6f} "
             "per week (15% a year).", "",
             "| model | method | estimates | holdout MAE | predicted / actual | total DERT (90%) | wall s | CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, fits in result["models"].items():
        for method, e in fits.items():
            est = ", ".join(f"{k} {v:.4g}" for k, v in e["estimates"].items())
            d = e["dert_total"]
            interval = f"{d['mean']:.0f}" if method == "map" else f"{d['mean']:.0f} ({d['q05']:.0f}-{d['q95']:.0f})"
            lines.append(f"| {name} | {method} | {est} | {e['mae']:.4f} | {e['predicted_total']:.0f} / "
                         f"{e['actual_total']:.0f} | {interval} | {e['wall_seconds']} | {e['cpu_seconds']} |")
    ggom = result["models"]["GGom/NBD"]["nuts"]
    lines += ["", f"GGom/NBD NUTS: {ggom['diagnostics']}; b below {ggom['b_q90']:.4g} per week with 90% "
              "posterior probability.", "", f"Published (Bemmaor & Glady 2012, sample): {PUBLISHED}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="sample", choices=["sample", "full"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(args.kind), calibration_end="1997-09-30")
    result = {"kind": args.kind, "load_average": [round(x, 2) for x in os.getloadavg()],
              "settings": {"draws": args.draws, "tune": args.tune, "chains": args.chains},
              "models": {"GGom/NBD": run(bc.GompertzNBDModel, rfm, args),
                         "Pareto/NBD": run(bc.ParetoNBDModel, rfm, args)}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ggomnbd_cdnow_{args.kind}.json").write_text(json.dumps(result, indent=2, default=float))
    (RESULTS / f"ggomnbd_cdnow_{args.kind}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
