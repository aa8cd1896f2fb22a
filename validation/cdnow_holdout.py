"""CDNOW 39/39-week study: NUTS (4 chains x 1000 draws after 1000 tuning) and MAP fits of
BG/NBD and Pareto/NBD, convergence, wall time, and holdout accuracy (weeks 40-78).

Usage::

    uv run python validation/cdnow_holdout.py [sample|full] [--draws N --tune N --chains N]
    uv run python validation/cdnow_holdout.py [sample|full] --evaluate [--draws N --tune N --chains N]

Writes ``validation/results/cdnow_<kind>_holdout.json`` and prints a markdown table.
With ``--evaluate``: the issue-4 comparison table instead, from NUTS fits of both
models (``bayesclv.evaluate`` with the transaction log, ``bayesclv.compare`` for
PSIS-LOO): MAE, RMSE, totals, AUC, Brier, LOO, coverage of 50/80/90% predictive
intervals (inclusive whole-number intervals, their predictive mass, randomised-PIT
coverage) and the tracking errors; written to ``cdnow_<kind>_evaluation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path


import bayesclv as bc
from grouped_holdout import holdout_metrics as forecast_metrics

# per-customer holdout MAE of maximum-likelihood fits by a peer library on the same split (issue 4)
PEER_MAE = {"sample": {"BG/NBD": 0.7855, "Pareto/NBD": 0.7545}, "full": {"BG/NBD": 0.8187, "Pareto/NBD": 0.7938}}


def holdout_metrics(model, rfm) -> dict:
    """Posterior-mean forecast vs actual holdout counts, and 90% predictive-interval coverage."""
    out = forecast_metrics(model, rfm)
    if model.fit_method == "nuts":
        horizon = float(rfm["T_holdout"].iloc[0])
        actual = rfm["frequency_holdout"].to_numpy()
        iv = bc.intervals(model.sample_purchases(horizon, random_seed=1), prob=0.9)
        out["coverage_90_predictive"] = float(((actual >= iv["lower"]) & (actual <= iv["upper"])).mean())
    return out


def evaluation_table(kind: str, draws: int, tune: int, chains: int, method: str = "nuts") -> None:
    """Fit both models (NUTS, or MAP as a fast fallback without LOO) and write the comparison table of issue 4."""
    tx = bc.datasets.load_cdnow(kind)
    rfm = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30")
    calibration = rfm[["customer_id", "frequency", "recency", "T"]].copy()
    calibration.attrs = dict(rfm.attrs)
    models, rows, timings = {}, {}, {}
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        start = time.perf_counter()
        fit = {"draws": draws, "tune": tune, "chains": chains, "cores": min(chains, 2)} if method == "nuts" else {}
        models[cls.display_name] = cls().fit(rfm, method=method, random_seed=2026, progressbar=False, **fit)
        timings[cls.display_name] = round(time.perf_counter() - start, 1)
        print(cls.display_name, "fitted in", timings[cls.display_name], "s:", models[cls.display_name].diagnostics,
              flush=True)
    loo = bc.compare(models, calibration)  # calibration columns only: LOO, no second holdout pass
    for name, model in models.items():
        start = time.perf_counter()
        # a MAP fit has one draw: the predictive simulation repeats it (draws outcomes per customer)
        res = bc.evaluate(model, rfm, prob=(0.5, 0.8, 0.9), random_seed=7, transactions=tx,
                          n_draws=1000 if method == "nuts" else draws)
        rows[name] = {
            **{k: round(float(v), 4) for k, v in res.metrics.items()},
            **{c: float(loo.loc[name, c]) for c in ("elpd_loo", "se", "p_loo", "elpd_diff", "se_diff",
                                                    "max_pareto_k", "n_pareto_k_gt_0_7")},
            "fit_seconds": timings[name], "evaluate_seconds": round(time.perf_counter() - start, 1),
            "diagnostics": dict(model.diagnostics),
        }
        print(name, json.dumps(rows[name], default=str), flush=True)
    out = {"data": f"CDNOW {kind}", "customers": len(rfm), "split": "39/39 weeks (calibration to 1997-09-30)",
           "fit": {"method": method, "draws": draws, "tune": tune, "chains": chains},
           "load_average": os.getloadavg(), "models": rows,
           "peer_mae_mle": PEER_MAE[kind]}
    stem = Path(__file__).parent / "results" / f"cdnow_{kind}_evaluation{'' if method == 'nuts' else '_map'}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2, default=str))
    cols = [("MAE", "mae"), ("RMSE", "rmse"), ("predicted total", "predicted_total"), ("actual total", "actual_total"),
            ("AUC", "auc"), ("Brier", "brier"), ("elpd LOO", "elpd_loo"), ("LOO se", "se"),
            ("cov 50", "coverage_50"), ("cov 80", "coverage_80"), ("cov 90", "coverage_90"),
            ("mass 90", "interval_mass_90"), ("PIT cov 50", "pit_coverage_50"), ("PIT cov 80", "pit_coverage_80"),
            ("PIT cov 90", "pit_coverage_90"), ("tracking err % (cal/hold)", None)]
    how = f"NUTS {chains}x{draws} (tune {tune})" if method == "nuts" else f"MAP, {draws} predictive draws"
    lines = [f"# CDNOW {kind}: BG/NBD vs Pareto/NBD, 39/39 weeks, {how}", "",
             "| model | " + " | ".join(c for c, _ in cols) + " | peer MAE (MLE) |",
             "|---" * (len(cols) + 2) + "|"]
    for name, r in rows.items():
        cells = [f"{r[k]:.4f}" if k not in ("predicted_total", "actual_total", "elpd_loo", "se") else f"{r[k]:.1f}"
                 for _, k in cols[:-1]]
        cells.append(f"{r['tracking_calibration_error_pct']:.1f} / {r['tracking_holdout_error_pct']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {PEER_MAE[kind][name]} |")
    lines += ["", ("cov = share of customers inside the inclusive whole-number predictive interval; mass 90 = mean "
                   "predictive probability of that interval (the coverage a calibrated model shows); PIT cov = "
                   "randomised-PIT coverage (nominal exactly p for a calibrated model of counts)."),
              f"Load average during the run: {tuple(round(x, 2) for x in out['load_average'])}."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--evaluate", action="store_true", help="write the issue-4 comparison table instead")
    parser.add_argument("--method", choices=["nuts", "map"], default="nuts", help="fit method of --evaluate")
    args = parser.parse_args()
    if args.evaluate:
        evaluation_table(args.kind, args.draws, args.tune, args.chains, args.method)
        return
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
