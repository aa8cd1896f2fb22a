"""CDNOW 39/39-week study: NUTS (4 chains x 1000 draws after 1000 tuning) and MAP fits of
BG/NBD and Pareto/NBD, convergence, wall time, and holdout accuracy (weeks 40-78).

Usage::

    uv run python validation/cdnow_holdout.py [sample|full] [--draws N --tune N --chains N]

Writes ``validation/results/cdnow_<kind>_holdout.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import bayesclv as bc


def holdout_metrics(model, rfm) -> dict:
    """Posterior-mean forecast vs actual holdout counts, and 90% predictive-interval coverage."""
    horizon = float(rfm["T_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy()
    mean = model.expected_purchases(horizon).mean(("chain", "draw")).to_numpy()
    out = {
        "predicted_total": float(mean.sum()),
        "actual_total": float(actual.sum()),
        "mae": float(np.abs(mean - actual).mean()),
        "rmse": float(np.sqrt(((mean - actual) ** 2).mean())),
    }
    if model.fit_method == "nuts":
        iv = bc.intervals(model.sample_purchases(horizon, random_seed=1), prob=0.9)
        out["coverage_90_predictive"] = float(((actual >= iv["lower"]) & (actual <= iv["upper"])).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    args = parser.parse_args()
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(args.kind), value="value", calibration_end="1997-09-30")
    results = {"data": f"CDNOW {args.kind}", "customers": len(rfm), "machine": platform.processor() or platform.machine(),
               "settings": vars(args), "models": {}}
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        for method in ("map", "nuts"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", bc.errors.ConvergenceWarning)
                start = time.perf_counter()
                model = cls().fit(rfm, method=method, draws=args.draws, tune=args.tune, chains=args.chains,
                                  random_seed=2026, progressbar=False, cores=min(args.chains, 2)) \
                    if method == "nuts" else cls().fit(rfm, method="map", progressbar=False)
                seconds = time.perf_counter() - start
            entry = {
                "wall_seconds": round(seconds, 1),
                "diagnostics": {k: v for k, v in model.diagnostics.items()},
                "warnings": [str(w.message) for w in caught],
                "parameters": model.summary()["mean"].round(4).to_dict(),
                "holdout": holdout_metrics(model, rfm),
            }
            results["models"][f"{cls.__name__}/{method}"] = entry
            print(cls.__name__, method, json.dumps(entry, default=str), flush=True)
    path = Path(__file__).parent / "results" / f"cdnow_{args.kind}_holdout.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n| model | fit | wall s | max R-hat | divergences | holdout total (actual {results['models']['BetaGeoModel/map']['holdout']['actual_total']:.0f}) | MAE | 90% PI coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for key, e in results["models"].items():
        d, h = e["diagnostics"], e["holdout"]
        print(f"| {key.split('/')[0]} | {key.split('/')[1]} | {e['wall_seconds']} | {d.get('max_r_hat', float('nan')):.4f} | "
              f"{d.get('divergences', '-')} | {h['predicted_total']:.0f} | {h['mae']:.4f} | {h.get('coverage_90_predictive', float('nan')):.3f} |")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
