"""Parameter recovery of the hierarchical Pareto/NBD and BG/NBD on simulated data.

Each replication simulates customers with the library's own simulator
(:func:`bayesclv.simulate.simulate_hierarchical_paretonbd` /
``simulate_hierarchical_bgnbd``) from known coefficients ``B`` (intercept and
one standard-normal covariate) and covariance ``Sigma``, fits the model by
NUTS and records whether the 90% equal-tailed posterior interval of each
hyperparameter (4 coefficients, 2 sds, the correlation) covers the true value.
Over many replications a calibrated posterior covers ~90% of the time.

Usage::

    uv run --extra nutpie python validation/hierarchical_recovery.py [--model paretonbd|bgnbd] [--reps 20]
        [--customers 500] [--draws 400] [--tune 400] [--chains 2] [--sampler nutpie|pymc]

Writes ``validation/results/hierarchical_recovery_<model>.csv`` (one row per
replication and parameter) and ``..._<model>.json`` (coverage overall and per
parameter, settings, load), both rewritten after every replication so that an
interrupted run leaves its partial result.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.simulate import simulate_hierarchical_bgnbd, simulate_hierarchical_paretonbd

TRUTH = {
    # rows: intercept, covariate; columns: purchase (log lambda), dropout (log mu / logit p); weeks
    "paretonbd": {"coefficients": [[-2.3, -3.2], [0.5, -0.4]], "sigma": [0.8, 0.7], "correlation": 0.3},
    "bgnbd": {"coefficients": [[-2.0, -1.8], [0.5, -0.4]], "sigma": [0.8, 0.7], "correlation": 0.3},
}
MODELS = {
    "paretonbd": (bc.HierarchicalParetoNBDModel, simulate_hierarchical_paretonbd),
    "bgnbd": (bc.HierarchicalBetaGeoModel, simulate_hierarchical_bgnbd),
}


def true_values(model: str) -> dict[str, float]:
    """The true hyperparameters, named as in the model's summary."""
    truth = TRUTH[model]
    out = {}
    for i, cov in enumerate(["intercept", "x"]):
        for j, proc in enumerate(["purchase", "dropout"]):
            out[f"coefficients[{cov}, {proc}]"] = truth["coefficients"][i][j]
    for j, proc in enumerate(["purchase", "dropout"]):
        out[f"sigma[{proc}]"] = truth["sigma"][j]
    out["correlation"] = truth["correlation"]
    return out


def simulate(model: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """One simulated RFM frame (weeks) with covariate ``x``, observed 26 to 52 weeks."""
    truth = TRUTH[model]
    sd = np.asarray(truth["sigma"])
    corr = np.array([[1.0, truth["correlation"]], [truth["correlation"], 1.0]])
    x = rng.normal(size=n)
    T = np.round(rng.uniform(26, 52, size=n))
    sim = MODELS[model][1](T, truth["coefficients"], corr * np.outer(sd, sd),
                           covariates=np.column_stack([np.ones(n), x]), rng=rng)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": sim["frequency"],
                       "recency": sim["recency"], "T": T, "x": x})
    df.attrs["time_unit"] = "W"
    return df


def interval_rows(model, truth: dict[str, float], prob: float) -> list[dict]:
    """Per-hyperparameter posterior mean, 90% ETI and whether it covers the truth."""
    post = model.posterior
    rows = []
    for name, value in truth.items():
        base, _, idx = name.partition("[")
        da = post[base]
        if idx:
            labels = [s.strip() for s in idx.rstrip("]").split(",")]
            da = da.sel(dict(zip([d for d in da.dims if d not in ("chain", "draw")], labels, strict=True)))
        bounds = azs.eti(da, prob=prob, dim=["chain", "draw"])
        lo, hi = float(bounds.sel(ci_bound="lower")), float(bounds.sel(ci_bound="upper"))
        rows.append({"parameter": name, "true": value, "mean": float(da.mean()), "lower": lo, "upper": hi,
                     "covered": bool(lo <= value <= hi)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="paretonbd")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--tune", type=int, default=400)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--prob", type=float, default=0.9)
    parser.add_argument("--sampler", choices=["pymc", "nutpie"], default="nutpie")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "results"
    truth = true_values(args.model)
    rows, fits = [], []
    start_all = time.perf_counter()
    for rep in range(args.reps):
        rng = np.random.default_rng(1000 + rep)
        df = simulate(args.model, args.customers, rng)
        model = MODELS[args.model][0](covariates=["x"])
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", bc.errors.ConvergenceWarning)
            extra = {"cores": min(args.chains, 2)} if args.sampler == "pymc" else {}
            model.fit(df, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=rep,
                      progressbar=False, sampler=args.sampler, **extra)
        diag = dict(model.diagnostics)
        fits.append({"rep": rep, "seconds": round(time.perf_counter() - start, 1), **diag,
                     "convergence_warning": bool(caught)})
        for row in interval_rows(model, truth, args.prob):
            rows.append({"rep": rep, **row})
        table = pd.DataFrame(rows)
        table.to_csv(out_dir / f"hierarchical_recovery_{args.model}.csv", index=False)
        summary = summarise(table, fits, args, time.perf_counter() - start_all)
        (out_dir / f"hierarchical_recovery_{args.model}.json").write_text(json.dumps(summary, indent=2))
        print(f"rep {rep + 1}/{args.reps}: {fits[-1]['seconds']} s, max R-hat {diag['max_r_hat']:.3f}, "
              f"running coverage {table['covered'].mean():.3f}", flush=True)
    print(json.dumps({k: summary[k] for k in ("coverage_overall", "coverage_by_parameter", "within_target")}, indent=1))


def summarise(table: pd.DataFrame, fits: list[dict], args: argparse.Namespace, seconds: float) -> dict:
    """Coverage overall and per parameter over the replications done so far (rewritten after each)."""
    return {
        "model": args.model, "settings": vars(args), "truth": TRUTH[args.model],
        "replications_done": len(fits), "replications_planned": args.reps, "intervals": int(len(table)),
        "coverage_overall": float(table["covered"].mean()),
        "coverage_by_parameter": table.groupby("parameter")["covered"].mean().to_dict(),
        "target": "0.80-0.98 for nominal 0.90",
        "within_target": bool(0.80 <= table["covered"].mean() <= 0.98),
        "mean_abs_error_by_parameter":
            (table["mean"] - table["true"]).abs().groupby(table["parameter"]).mean().to_dict(),
        "fits": fits, "max_r_hat_over_fits": float(max(f["max_r_hat"] for f in fits)),
        "fits_with_divergences": int(sum(f["divergences"] > 0 for f in fits)),
        "total_seconds": round(seconds, 1), "load_average_1_5_15": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
