"""CDNOW 39/39-week study of the hierarchical Pareto/NBD (Abe 2009) with a covariate.

``(log lambda_i, log mu_i) ~ MvNormal(B' [1, log first-purchase amount_i], Sigma)``,
NUTS (nutpie by default: its mass-matrix adaptation needs ~15-60 leapfrog steps per
draw here where PyMC's needs hundreds). Records wall time, max R-hat, min bulk/tail ESS over the
hyperparameters (coefficients, sigma, correlation), divergences, the load
average of the (shared) machine, the posterior summary and the holdout
accuracy (weeks 40-78). BTYDplus's Gibbs sampler for the same model needs
110 s for 10,000 iterations on CDNOW full and ends unconverged (R-hat 1.3-1.5),
as measured in the issue.

Usage::

    uv run python validation/hierarchical_cdnow.py [sample|full] [--draws N --tune N --chains N --thin K --sampler nutpie|pymc]

Writes ``validation/results/hierarchical_cdnow_<kind>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from grouped_holdout import holdout_metrics

BTYDPLUS_SECONDS = 110.0  # BTYDplus abe.mcmc.DrawParameters, 10,000 iterations, CDNOW full (issue 3)


def first_purchase_amount(transactions: pd.DataFrame) -> pd.Series:
    """Value of each customer's first purchase day (transactions on one day merged, as in rfm_summary)."""
    days = transactions.assign(day=transactions["date"].dt.normalize())
    per_day = days.groupby(["customer_id", "day"], sort=True)["value"].sum().reset_index()
    return per_day.groupby("customer_id")["value"].first()


def cdnow_with_covariates(kind: str) -> pd.DataFrame:
    """CDNOW RFM (calibration to 1997-09-30, weeks) with ``log_first_amount = log(1 + first purchase value)``."""
    transactions = bc.datasets.load_cdnow(kind)
    rfm = bc.rfm_summary(transactions, value="value", calibration_end="1997-09-30")
    first = first_purchase_amount(transactions)
    rfm["log_first_amount"] = np.log1p(first.reindex(rfm["customer_id"]).to_numpy())
    return rfm


#: the hierarchical model of each family this study (and the HB benchmarks) fits, by its ``--family`` name
HB_MODELS = {"paretonbd": bc.HierarchicalParetoNBDModel, "bgnbd": bc.HierarchicalBetaGeoModel}


def hb_model(family: str = "paretonbd") -> bc.HierarchicalParetoNBDModel | bc.HierarchicalBetaGeoModel:
    """The unfitted HB model of ``family`` with this study's covariate, ``log_first_amount``."""
    return HB_MODELS[family](covariates=["log_first_amount"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--thin", type=int, default=1, help="keep every THIN-th of the --draws draws")
    parser.add_argument("--target-accept", type=float, default=0.8)
    parser.add_argument("--sampler", choices=["pymc", "nutpie"], default="nutpie")
    parser.add_argument("--save", type=Path, default=None, help="also write the fitted model (netCDF) here")
    args = parser.parse_args()
    rfm = cdnow_with_covariates(args.kind)
    model = hb_model()
    load_before = os.getloadavg()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bc.errors.ConvergenceWarning)
        start = time.perf_counter()
        extra = {"cores": min(args.chains, 2)} if args.sampler == "pymc" else {}
        model.fit(rfm, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=2026,
                  target_accept=args.target_accept, sampler=args.sampler, thin=args.thin, **extra)
        seconds = time.perf_counter() - start
    if args.save is not None:
        model.save(args.save)
    stats = model.idata["sample_stats"]
    summary = model.summary(prob=0.9)
    results = {
        "data": f"CDNOW {args.kind}", "customers": len(rfm), "latent_parameters": 2 * len(rfm),
        "settings": vars(args),
        "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "wall_seconds": round(seconds, 1),
        "btydplus_gibbs_seconds_unconverged": BTYDPLUS_SECONDS,
        "wall_ratio_vs_btydplus": round(seconds / BTYDPLUS_SECONDS, 2),
        "diagnostics": dict(model.diagnostics),
        "acceptance": {"max_r_hat_below_1.01": model.diagnostics["max_r_hat"] < 1.01,
                       "min_ess_bulk_above_400": model.diagnostics["min_ess_bulk"] > 400,
                       "divergence_share": model.diagnostics["divergences"] / model.diagnostics["n_draws"]},
        "mean_tree_depth": float(stats["tree_depth"].mean()) if "tree_depth" in stats else None,
        "mean_step_size": float(stats["step_size"].mean()) if "step_size" in stats else None,
        "mean_leapfrog_steps": float(stats["n_steps"].mean()) if "n_steps" in stats else None,
        "warnings": [str(w.message) for w in caught],
        "hyperparameters": summary.reset_index().to_dict(orient="records"),
        "covariate_scaling": model.scaling.reset_index().to_dict(orient="records"),
        "holdout_weeks_40_78": holdout_metrics(model, rfm),
    }
    path = Path(__file__).parent / "results" / f"hierarchical_cdnow_{args.kind}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(summary.to_string())
    print(json.dumps({k: results[k] for k in ("wall_seconds", "diagnostics", "holdout_weeks_40_78")}, default=str))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
