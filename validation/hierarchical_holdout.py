"""Holdout accuracy (CDNOW weeks 40-78) of pooled vs individual-level hierarchical models.

Per-customer MAE of the posterior-mean forecast of each customer's holdout
purchases, and the predicted vs actual total. Pooled BG/NBD and Pareto/NBD are
fitted by MAP (their posterior means are within a fraction of a percent of the
MAP here; see validation/results/cdnow_*_holdout.json); the hierarchical models
by NUTS with the log first-purchase amount as covariate. Grouped (``group=``)
variants of the pooled models are not on this branch and are left out.

Usage::

    uv run --extra nutpie python validation/hierarchical_holdout.py [sample|full] [--draws N --tune N --chains N]
        [--fitted PATH ...]   # reuse saved hierarchical fits (e.g. from hierarchical_cdnow.py --save)

Writes ``validation/results/hierarchical_holdout_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import bayesclv as bc
from hierarchical_cdnow import cdnow_with_covariates, holdout_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--sampler", choices=["pymc", "nutpie"], default="nutpie")
    parser.add_argument("--fitted", type=Path, nargs="*", default=[],
                        help="saved hierarchical models to evaluate instead of fitting them")
    args = parser.parse_args()
    rfm = cdnow_with_covariates(args.kind)
    rows = []

    def record(name, fit, model, seconds):
        entry = {"model": name, "fit": fit, "wall_seconds": round(seconds, 1),
                 **holdout_accuracy(model, rfm)}
        if model.diagnostics and "max_r_hat" in model.diagnostics:
            entry["max_r_hat"] = model.diagnostics["max_r_hat"]
            entry["min_ess_bulk"] = model.diagnostics["min_ess_bulk"]
        rows.append(entry)
        print(json.dumps(entry), flush=True)

    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel):
        start = time.perf_counter()
        model = cls().fit(rfm, method="map", progressbar=False)
        record(cls.display_name + " (pooled)", "map", model, time.perf_counter() - start)
    if args.fitted:
        for path in args.fitted:
            model = bc.load(path)
            record(f"{model.display_name} (covariates: {', '.join(model.covariates) or 'none'})",
                   f"nuts (saved: {path.name})", model, float("nan"))
    else:
        for cls in (bc.HierarchicalParetoNBDModel, bc.HierarchicalBetaGeoModel):
            model = cls(covariates=["log_first_amount"])
            extra = {"cores": min(args.chains, 2)} if args.sampler == "pymc" else {}
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # recorded in the table
                model.fit(rfm, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=2026,
                          progressbar=False, sampler=args.sampler, **extra)
            record(f"{model.display_name} (covariates: log_first_amount)", f"nuts {args.chains}x{args.draws}",
                   model, time.perf_counter() - start)
    out = Path(__file__).parent / "results" / f"hierarchical_holdout_{args.kind}"
    meta = {"data": f"CDNOW {args.kind}", "customers": len(rfm), "settings": {**vars(args), "fitted": [str(p) for p in args.fitted]},
            "load_average_1_5_15_end": os.getloadavg(), "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
    lines = [f"CDNOW {args.kind} ({len(rfm)} customers), holdout weeks 40-78, actual total "
             f"{rows[0]['actual_total']:.0f}", "",
             "| model | fit | predicted total | per-customer MAE | max R-hat |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['fit']} | {r['predicted_total']:.1f} | {r['mae']:.4f} | "
                     f"{r.get('max_r_hat', float('nan')):.3f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
