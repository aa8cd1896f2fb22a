"""Parameter recovery of the Pareto/NBD with time-varying covariates on simulated bases.

Bases from :func:`bayesclv.datasets.time_varying.synthetic_time_varying` (4-weekly
``contact`` and ``season`` covariates on both processes, 52 calibration and 26
holdout weeks) with known parameters:

1. MAP on ``REPLICATES`` bases of ``MAP_CUSTOMERS`` customers: mean and sd of
   each estimate across bases against the truth (effects per unit).
2. NUTS (4 chains x ``DRAWS``) on one base of ``NUTS_CUSTOMERS`` customers:
   posterior mean, 90% credible interval (whether it holds the truth), R-hat,
   ESS; holdout purchases predicted along the covariates' path against the
   simulated holdout.

Run: ``nice -n 10 uv run python validation/tv_covariates_recovery.py`` -> ``validation/results/tv_covariates_recovery.md``
(and ``.json``). CPU seconds are recorded per step.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.datasets.time_varying import TRUE_PARAMETERS, synthetic_time_varying
from bayesclv.errors import ConvergenceWarning, PointEstimateWarning

RESULTS = Path(__file__).resolve().parent / "results"
COVARIATES = ["contact", "season"]
REPLICATES = 3
MAP_CUSTOMERS = 1000
NUTS_CUSTOMERS = 500
DRAWS = 300
PERIOD_WEEKS = 4  # covariate periods of 4 weeks: 13 a year (the cost grows with the periods after t_x)


def truth() -> dict[str, float]:
    out = {n: TRUE_PARAMETERS[n] for n in ("r", "alpha", "s", "beta")}
    for process in ("purchase", "dropout"):
        for cov in COVARIATES:
            out[f"{process}:{cov}"] = TRUE_PARAMETERS[f"{process}_coef"][cov]
    return out


def estimates(model) -> dict[str, np.ndarray]:
    """Draws (or the point estimate) of each compared quantity; effects per unit of the covariate."""
    post = model.posterior
    out = {n: post[n].values.ravel() for n in ("r", "alpha", "s", "beta")}
    scaling = model.scaling
    for (cov, process), (_, effect) in model.covariate_effects().items():
        out[f"{process}:{cov}"] = effect.values.ravel() / scaling.loc[cov, "sd"]
        # the model's alpha, beta are at the covariates' fitted means; the simulator's at covariates 0
        scale = "alpha" if process == "purchase" else "beta"
        out[scale] = out[scale] * np.exp(out[f"{process}:{cov}"] * scaling.loc[cov, "mean"])
    return out


def base(n: int, seed: int):
    tx, cov, cal = synthetic_time_varying(n, period_weeks=PERIOD_WEEKS, seed=seed)
    paths = bc.covariate_paths(cov, COVARIATES, period=f"{7 * PERIOD_WEEKS}D")
    return bc.time_varying_summary(tx, paths, calibration_end=cal), paths


def map_study() -> tuple[pd.DataFrame, float]:
    cpu = time.process_time()
    rows = []
    for seed in range(REPLICATES):
        data, paths = base(MAP_CUSTOMERS, 100 + seed)
        model = bc.TimeVaryingParetoNBDModel(covariates=COVARIATES).fit(data, paths=paths, method="map",
                                                                         progressbar=False)
        rows.append({k: float(v[0]) for k, v in estimates(model).items()})
    table = pd.DataFrame(rows)
    true = pd.Series(truth())
    out = pd.DataFrame({"truth": true, "mean": table.mean(), "sd": table.std(ddof=1)})
    out["bias / sd"] = (out["mean"] - out["truth"]) / out["sd"]
    return out, time.process_time() - cpu


def nuts_study() -> tuple[pd.DataFrame, dict, float]:
    cpu = time.process_time()
    data, paths = base(NUTS_CUSTOMERS, 7)
    model = bc.TimeVaryingParetoNBDModel(covariates=COVARIATES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in the table instead
        model.fit(data, paths=paths, draws=DRAWS, tune=DRAWS, chains=4, random_seed=3, progressbar=False)
    fit_cpu = time.process_time() - cpu
    draws = estimates(model)
    rows = {}
    summary = model.summary(prob=0.9, method="eti")
    names = {"purchase:contact": "purchase_coef[contact]", "purchase:season": "purchase_coef[season]",
             "dropout:contact": "dropout_coef[contact]", "dropout:season": "dropout_coef[season]"}
    for name, true in truth().items():
        lo, hi = np.quantile(draws[name], [0.05, 0.95])
        row = summary.loc[names.get(name, name)]
        rows[name] = {"truth": true, "mean": float(draws[name].mean()), "lower": float(lo), "upper": float(hi),
                      "covered": bool(lo <= true <= hi), "r_hat": float(row["r_hat"]), "ess_bulk": float(row["ess_bulk"])}
    expected = model.expected_purchases(26.0)
    total = expected.sum("customer_id").values.ravel()
    holdout = {"actual": float(data["frequency_holdout"].sum()), "predicted_mean": float(total.mean()),
               "lower": float(np.quantile(total, 0.05)), "upper": float(np.quantile(total, 0.95)),
               "mae": float(np.abs(expected.mean(("chain", "draw")).values - data["frequency_holdout"].to_numpy()).mean())}
    info = {"holdout": holdout, "fit_cpu_seconds": fit_cpu, "divergences": int(model.diagnostics.get("divergences", -1))}
    return pd.DataFrame(rows).T, info, time.process_time() - cpu


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (no optional dependency)."""
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| | " + " | ".join(map(str, table.columns)) + " |", "|---" * (len(table.columns) + 1) + "|"]
    lines += ["| " + str(i) + " | " + " | ".join(cell(v) for v in row) + " |" for i, row in table.iterrows()]
    return "\n".join(lines)


def main() -> None:
    warnings.simplefilter("ignore", PointEstimateWarning)
    map_table, map_cpu = map_study()
    nuts_table, info, nuts_cpu = nuts_study()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tv_covariates_recovery.json").write_text(json.dumps(
        {"map": map_table.to_dict(orient="index"), "nuts": nuts_table.to_dict(orient="index"), **info,
         "map_cpu_seconds": map_cpu, "nuts_cpu_seconds": nuts_cpu}, indent=2, default=float))
    lines = [
        "# Time-varying covariates: parameter recovery (Pareto/NBD)",
        "",
        "Written by `validation/tv_covariates_recovery.py`. Simulated bases: 4-weekly `contact` (0/1, 30% of periods)",
        "and `season` (yearly sine) on both the purchase rate and the dropout hazard; 52 calibration and 26",
        "holdout weeks; customers acquired over the first 12 weeks. Effects per unit of the covariate.",
        "",
        f"## MAP on {REPLICATES} bases of {MAP_CUSTOMERS} customers ({map_cpu:.0f} CPU s)",
        "",
        markdown(map_table),
        "",
        f"## NUTS, 4 chains x {DRAWS} draws, one base of {NUTS_CUSTOMERS} customers ({nuts_cpu:.0f} CPU s, fit "
        f"{info['fit_cpu_seconds']:.0f})",
        "",
        f"Divergences: {info['divergences']}. 90% equal-tailed credible intervals.",
        "",
        markdown(nuts_table),
        "",
        "Holdout (26 weeks, expected purchases along the simulated covariates' future path): "
        f"actual {info['holdout']['actual']:.0f}, predicted {info['holdout']['predicted_mean']:.0f} "
        f"(90% credible {info['holdout']['lower']:.0f} to {info['holdout']['upper']:.0f}); "
        f"per-customer MAE {info['holdout']['mae']:.3f}.",
        "",
    ]
    (RESULTS / "tv_covariates_recovery.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
