"""One holdout table for CDNOW (calibration weeks 1-39, holdout weeks 40-78): pooled vs grouped vs
individual-level hierarchical variants of BG/NBD and Pareto/NBD, on the sample and the full data.

Variants (all fitted by NUTS with nutpie, seed 2026):

- pooled: ``BetaGeoModel()``, ``ParetoNBDModel()``;
- grouped: the same with ``group="cohort"`` (first-purchase week: 13 groups) and partial pooling;
- hierarchical: ``HierarchicalBetaGeoModel`` / ``HierarchicalParetoNBDModel`` with the log
  first-purchase amount as covariate (Abe 2009), run longer and thinned (``--hb-draws``,
  ``--hb-thin``) because their population sds mix slowly.

Each row records the per-customer MAE and RMSE of the posterior-mean forecast of the holdout
purchases, the predicted and actual holdout totals, the convergence numbers and the wall time with
the machine's load average (a shared 2-core machine).

Usage::

    uv run python validation/holdout_variants.py sample|full [--only NAME ...] [--fitted NAME=PATH ...]
    uv run python validation/holdout_variants.py --table   # only rewrite the markdown from the json files

``--fitted`` evaluates a saved model (``model.save``; e.g. the CDNOW full hierarchical Pareto/NBD of
``hierarchical_cdnow.py --save``) instead of fitting it. Results are merged into
``validation/results/holdout_variants_<kind>.json`` after every variant; the table of both data sets
is written to ``validation/results/holdout_variants.md``.
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
from grouped_holdout import holdout_metrics
from hierarchical_cdnow import cdnow_with_covariates

RESULTS = Path(__file__).parent / "results"
VARIANTS = {
    "BG/NBD pooled": lambda: bc.BetaGeoModel(),
    "Pareto/NBD pooled": lambda: bc.ParetoNBDModel(),
    "BG/NBD grouped by cohort": lambda: bc.BetaGeoModel(group="cohort", pooling="partial"),
    "Pareto/NBD grouped by cohort": lambda: bc.ParetoNBDModel(group="cohort", pooling="partial"),
    "hierarchical BG/NBD": lambda: bc.HierarchicalBetaGeoModel(covariates=["log_first_amount"]),
    "hierarchical Pareto/NBD": lambda: bc.HierarchicalParetoNBDModel(covariates=["log_first_amount"]),
}


def variant_data(kind: str):
    """CDNOW RFM with the covariate (log first-purchase amount) and the weekly first-purchase cohort."""
    rfm = cdnow_with_covariates(kind)
    transactions = bc.datasets.load_cdnow(kind)
    cohort = bc.data.first_purchase_cohort(transactions, freq="W")
    rfm["cohort"] = cohort.reindex(rfm["customer_id"]).to_numpy()
    return rfm


def evaluate(model, rfm, seconds: float, fit: str) -> dict:
    """Holdout accuracy of the posterior-mean forecast, with the fit's diagnostics."""
    diag = model.diagnostics
    return {
        "fit": fit, "wall_seconds": None if np.isnan(seconds) else round(seconds, 1),
        "load_average_1min": os.getloadavg()[0], **holdout_metrics(model, rfm),
        "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
        "divergences": int(diag["divergences"]), "n_draws": int(diag["n_draws"]),
    }


def table() -> str:
    lines = [
        "# CDNOW holdout (weeks 40-78): pooled vs grouped vs hierarchical", "",
        "Calibration weeks 1-39. MAE/RMSE: per customer, of the posterior-mean forecast of holdout "
        "purchases. Grouped: partial pooling over the first-purchase-week cohorts. Hierarchical: "
        "per-customer rates with the log first-purchase amount as covariate. Written by "
        "`validation/holdout_variants.py`; wall seconds on a shared 2-core machine (load in the json).", "",
        "| data | variant | fit | MAE | RMSE | predicted total | actual total | max R-hat | min bulk ESS | "
        "divergences | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for kind in ("sample", "full"):
        path = RESULTS / f"holdout_variants_{kind}.json"
        if not path.exists():
            continue
        rows = json.loads(path.read_text())["variants"]
        for name in VARIANTS:
            if name not in rows:
                continue
            r = rows[name]
            lines.append(
                f"| {kind} | {name} | {r['fit']} | {r['mae']:.4f} | {r['rmse']:.4f} | {r['predicted_total']:.0f} | "
                f"{r['actual_total']:.0f} | {r['max_r_hat']:.4f} | {r['min_ess_bulk']:.0f} | "
                f"{r['divergences']} of {r['n_draws']} | {r['wall_seconds'] or '-'} |")
            if "note" in r:
                notes.append(f"- {r['note']}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--fitted", nargs="*", default=[], metavar="NAME=PATH")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--hb-draws", type=int, default=3000)
    parser.add_argument("--hb-thin", type=int, default=3)
    parser.add_argument("--table", action="store_true", help="only rewrite the markdown table")
    args = parser.parse_args()
    out_md = RESULTS / "holdout_variants.md"
    if args.table or args.kind is None:
        out_md.write_text(table())
        print(table())
        return
    fitted = dict(item.split("=", 1) for item in args.fitted)
    unknown = set(fitted) - set(VARIANTS)
    if unknown:
        parser.error(f"--fitted names must be variants, got {sorted(unknown)}")
    rfm = variant_data(args.kind)
    path = RESULTS / f"holdout_variants_{args.kind}.json"
    results = json.loads(path.read_text()) if path.exists() else {"data": f"CDNOW {args.kind}",
                                                                   "customers": len(rfm),
                                                                   "cohorts": int(rfm["cohort"].nunique()),
                                                                   "variants": {}}
    for name in args.only:
        if name in fitted:
            model = bc.load(fitted[name])
            sizes = model.posterior.sizes
            row = evaluate(model, rfm, float("nan"),
                           f"nuts {sizes['chain']}x{sizes['draw']} kept (saved: {Path(fitted[name]).name})")
            row["note"] = (f"{args.kind} / {name}: evaluates the fit saved at `{fitted[name]}` "
                           f"({sizes['chain']} x {sizes['draw']} draws kept); how it was fitted and its wall "
                           f"time are in `hierarchical_cdnow_{args.kind}.json` when it comes from "
                           "`hierarchical_cdnow.py --save`.")
        else:
            model = VARIANTS[name]()
            hierarchical = name.startswith("hierarchical")
            draws, thin = (args.hb_draws, args.hb_thin) if hierarchical else (args.draws, 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # recorded in the table
                start = time.perf_counter()
                model.fit(rfm, draws=draws, tune=args.tune, chains=args.chains, thin=thin, random_seed=2026,
                          progressbar=False)
                seconds = time.perf_counter() - start
            thinned = f", thin {thin}" if thin > 1 else ""
            row = evaluate(model, rfm, seconds, f"nuts {args.chains}x{draws}{thinned}")
        results["variants"][name] = row
        print(name, json.dumps(row), flush=True)
        path.write_text(json.dumps(results, indent=2))
        out_md.write_text(table())
    print(table())


if __name__ == "__main__":
    main()
