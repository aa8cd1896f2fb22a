"""CDNOW 39/39-week holdout (weeks 40-78) of BG/NBD and Pareto/NBD with a first-purchase cohort
group: complete vs partial vs no pooling.

For each data set (CDNOW sample: 2,357 customers; full: 23,570) and model, the three poolings are
fitted by MAP; on the sample they are also fitted by NUTS (``--chains`` x ``--draws`` after
``--tune``, ``target_accept`` 0.95). Each fit's per-customer holdout MAE of the posterior-mean
forecast and its holdout total are recorded, with convergence numbers and wall time (inflated by
other load on a shared machine: the load average is recorded with each timing).

Usage::

    uv run python validation/grouped_holdout.py [--cohort M] [--draws 500 --tune 1000 --chains 4]
        [--skip-nuts]

Writes ``validation/results/grouped_holdout.json`` (after every fit, so a partial run leaves its
results) and ``validation/results/grouped_holdout.md`` (the table).
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
MODELS = (bc.BetaGeoModel, bc.ParetoNBDModel)
POOLINGS = ("complete", "partial", "none")


def holdout_metrics(model, rfm) -> dict:
    """Per-customer MAE/RMSE of the posterior-mean forecast, and predicted vs actual holdout totals."""
    horizon = float(rfm["T_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy()
    mean = model.expected_purchases(horizon).mean(("chain", "draw")).to_numpy()
    return {
        "mae": float(np.abs(mean - actual).mean()),
        "rmse": float(np.sqrt(((mean - actual) ** 2).mean())),
        "predicted_total": float(mean.sum()),
        "actual_total": float(actual.sum()),
    }


def fit_one(cls, rfm, pooling, method, args) -> dict:
    model = cls(group="cohort", pooling=pooling) if pooling != "complete" else cls()
    kwargs = dict(method=method, progressbar=False, random_seed=2026)
    if method == "nuts":
        kwargs.update(draws=args.draws, tune=args.tune, chains=args.chains, target_accept=0.95,
                      cores=min(args.chains, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.errors.ConvergenceWarning)
        start = time.perf_counter()
        model.fit(rfm, **kwargs)
        seconds = time.perf_counter() - start
    return {
        "wall_seconds": round(seconds, 1),
        "load_average_1min": os.getloadavg()[0],
        "diagnostics": dict(model.diagnostics),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, bc.errors.ConvergenceWarning)],
        "parameters": model.summary()["mean"].round(4).to_dict(),
        "holdout": holdout_metrics(model, rfm),
    }


def write_table(results: dict) -> str:
    lines = [
        f"CDNOW, calibration weeks 1-39, holdout weeks 40-78; group = first-purchase cohort "
        f"({results['settings']['cohort']}). MAE: per-customer mean absolute error of the posterior-mean "
        "forecast of holdout purchases. Wall times on a shared 2-core machine (load average in the json).",
        "",
        "| data | model | pooling | fit | groups | holdout MAE | predicted total | actual total | "
        "max R-hat | min bulk ESS | divergences | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, e in results["fits"].items():
        data, model, pooling, method = key.split("/")
        d, h = e["diagnostics"], e["holdout"]
        lines.append(
            f"| {data} | {model} | {pooling} | {method} | {results['groups'][data]} | {h['mae']:.4f} | "
            f"{h['predicted_total']:.0f} | {h['actual_total']:.0f} | "
            f"{d.get('max_r_hat', float('nan')):.3f} | {d.get('min_ess_bulk', float('nan')):.0f} | "
            f"{d.get('divergences', '-')} | {e['wall_seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="M", choices=list(bc.data.COHORT_FREQUENCIES))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--skip-nuts", action="store_true")
    args = parser.parse_args()
    results = {"settings": vars(args), "groups": {}, "customers": {}, "fits": {}}
    data = {kind: bc.rfm_summary(bc.datasets.load_cdnow(kind), value="value", calibration_end="1997-09-30",
                                 cohort=args.cohort) for kind in ("sample", "full")}
    plan = [(kind, cls, pooling, "map") for kind in ("full", "sample") for cls in MODELS for pooling in POOLINGS]
    if not args.skip_nuts:
        plan += [("sample", cls, pooling, "nuts") for cls in MODELS for pooling in POOLINGS]
    json_path = RESULTS / "grouped_holdout.json"
    for kind, cls, pooling, method in plan:
        rfm = data[kind]
        results["groups"][kind] = int(rfm["cohort"].nunique())
        results["customers"][kind] = len(rfm)
        key = f"{kind}/{cls.__name__}/{pooling}/{method}"
        results["fits"][key] = entry = fit_one(cls, rfm, pooling, method, args)
        print(key, json.dumps({k: entry[k] for k in ("wall_seconds", "holdout", "diagnostics")}, default=str),
              flush=True)
        json_path.write_text(json.dumps(results, indent=2, default=str))
        (RESULTS / "grouped_holdout.md").write_text(write_table(results))
    print(write_table(results))
    print(f"written to {json_path}")


if __name__ == "__main__":
    main()
