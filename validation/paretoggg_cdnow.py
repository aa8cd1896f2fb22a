"""Pareto/GGG beside the Pareto/NBD: CDNOW sample holdout and a simulated regular-timing customer base.

For each data set both models are fitted by NUTS on the calibration period and
scored on the holdout: MAE and RMSE of the posterior-mean expected purchases
against the actual counts, and the predicted and actual totals. The Pareto/GGG
fit also records its cost: CPU seconds, the leapfrog steps per draw, and the CPU
time of one gradient of the log density (the compiled likelihood pass over all
customers), from which the cost of a larger base follows. The simulated base has
regular purchase timing (``k`` around 4) as in Platzer & Reutterer (2016), where
the Pareto/NBD, blind to timing, keeps silent regular customers alive too long.

Usage::

    nice -n 10 uv run python validation/paretoggg_cdnow.py [--tune 400] [--draws 400] [--keep 200]

Writes ``validation/results/paretoggg_cdnow.md`` and ``.json``.
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
from bayesclv.formulas import paretoggg

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = "## Notes"  # the heading from which the result file's text is written by hand and kept on a rerun


def holdout(model, rfm: pd.DataFrame) -> dict:
    """Holdout accuracy of the posterior-mean expected purchases."""
    horizon = float(rfm["T_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy()
    mean = model.expected_purchases(horizon, rfm).mean(("chain", "draw")).values
    return {"mae": float(np.abs(mean - actual).mean()), "rmse": float(np.sqrt(((mean - actual) ** 2).mean())),
            "predicted_total": float(mean.sum()), "actual_total": float(actual.sum())}


def gradient_seconds(rfm: pd.DataFrame, repeats: int = 20) -> float:
    """CPU seconds of one pass of the likelihood and its gradient over every customer (typical latents)."""
    n = len(rfm)
    data = [rfm[c].to_numpy(dtype=float) for c in ("litt", "frequency", "recency", "T")]
    rng = np.random.default_rng(0)
    latents = rng.gamma(2.0, 0.5, n), rng.gamma(0.5, 0.2, n) + 1e-3, rng.gamma(0.5, 0.1, n) + 1e-4
    paretoggg.loglik_gradient(*data, *latents)  # compile
    start = time.process_time()
    for _ in range(repeats):
        paretoggg.loglik_gradient(*data, *latents)
    return (time.process_time() - start) / repeats


def fit(model, rfm: pd.DataFrame, args, keep_latents: bool) -> dict:
    """Fit by NUTS, time it, score the holdout."""
    thin = max(1, args.draws * args.chains // args.keep) if keep_latents else 1
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(rfm.drop(columns=["frequency_holdout", "T_holdout"]), tune=args.tune, draws=args.draws,
                  chains=args.chains, thin=thin, random_seed=args.seed, progressbar=False)
    fit_cpu, fit_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    start = time.process_time()
    scores = holdout(model, rfm)
    out = {"fit_cpu_s": fit_cpu, "fit_wall_s": fit_wall, "predict_cpu_s": time.process_time() - start,
           "estimates": model.summary()["mean"].round(4).to_dict(), **scores,
           "population": population_convergence(model),
           "diagnostics": {k: v for k, v in dict(model.diagnostics).items()
                           if isinstance(v, (int, float, str, list))}}
    if "sample_stats" in model.idata.children and "n_steps" in model.idata["sample_stats"]:
        out["leapfrog_steps_per_draw"] = float(model.idata["sample_stats"]["n_steps"].mean())
    return out


def population_convergence(model) -> dict:
    """R-hat and bulk/tail ESS of each population parameter (the latents' convergence is not summarised)."""
    table = model.summary()
    return {name: {c: float(table.loc[name, c]) for c in ("mean", "r_hat", "ess_bulk", "ess_tail")}
            for name in table.index}


def simulated_base(n: int, seed: int) -> pd.DataFrame:
    """Regular customers (k ~ Gamma(16, 4): mean 4) observed 52 weeks, then a 52-week holdout."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(26.0, 52.0, n)
    horizon = 52.0
    k, lam, mu = rng.gamma(16.0, 1 / 4.0, n), rng.gamma(2.0, 1 / 8.0, n), rng.gamma(1.0, 1 / 40.0, n)
    sim = paretoggg.simulate_histories(T + horizon, k, lam, mu, rng, times=True)
    rows = []
    for i, times in enumerate(sim["times"]):
        calib = times[times <= T[i]]
        gaps = np.diff(np.concatenate([[0.0], calib]))
        rows.append({"customer_id": i, "frequency": float(calib.size), "recency": float(calib[-1]) if calib.size else 0.0,
                     "T": T[i], "litt": float(np.log(gaps).sum()), "frequency_holdout": float(times.size - calib.size),
                     "T_holdout": horizon})
    df = pd.DataFrame(rows)
    df.attrs["time_unit"] = "W"
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=int, default=400)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--keep", type=int, default=200, help="Pareto/GGG draws kept for the predictions")
    parser.add_argument("--simulated", type=int, default=1000, help="customers of the simulated base")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-cdnow", action="store_true")
    parser.add_argument("--cost-only", action="store_true",
                        help="only time the likelihood gradient on CDNOW sample and full (-> paretoggg_cost.md)")
    args = parser.parse_args()
    if args.cost_only:
        write_cost()
        return
    results = {"settings": vars(args), "load_average": os.getloadavg()}
    cdnow = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30", litt=True)
    sets = {"simulated regular": simulated_base(args.simulated, args.seed)}
    if not args.skip_cdnow:
        sets = {"CDNOW sample": cdnow, **sets}
    for name, rfm in sets.items():  # written after each data set, so a run cut short keeps what it finished
        results[name] = {"customers": len(rfm), "gradient_cpu_s": gradient_seconds(rfm),
                         "Pareto/NBD": fit(bc.ParetoNBDModel(), rfm, args, keep_latents=False)}
        results[name]["Pareto/GGG"] = fit(bc.ParetoGGGModel(), rfm, args, keep_latents=True)
        print(name, json.dumps(results[name], default=float), flush=True)
        results["load_average"] = os.getloadavg()
        write(results)


def write_cost() -> None:
    """CPU seconds of one likelihood + gradient pass on CDNOW sample and full, and what NUTS would cost."""
    lines = ["# Pareto/GGG latent sampler: cost per gradient on CDNOW", "",
             f"Load average {tuple(round(v, 1) for v in os.getloadavg())}; CPU seconds (process time).", "",
             "| data | customers | likelihood + gradient, ms CPU | 1,000 draws x 2 chains at 64 / 256 leapfrog steps, CPU s |",
             "|---|---|---|---|"]
    for name in ("sample", "full"):
        rfm = bc.rfm_summary(bc.datasets.load_cdnow(name), calibration_end="1997-09-30", litt=True)
        g = gradient_seconds(rfm, repeats=5)
        lines.append(f"| CDNOW {name} | {len(rfm)} | {1000 * g:.1f} | {2000 * 64 * g:.0f} / {2000 * 256 * g:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "paretoggg_cost.md").write_text("\n".join(lines) + "\n")


def write(results: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "paretoggg_cdnow.json").write_text(json.dumps(results, indent=1, default=float))
    s = results["settings"]
    lines = ["# Pareto/GGG beside the Pareto/NBD (holdout, NUTS)", "",
             f"NUTS tune {s['tune']}, draws {s['draws']}, chains {s['chains']} (Pareto/GGG predictions on "
             f"{s['keep']} kept draws); load average {tuple(round(v, 1) for v in results['load_average'])} "
             "(a shared machine: CPU seconds are the figures to compare).", "",
             "| data | customers | model | holdout MAE | RMSE | predicted / actual | fit CPU s | max R-hat | "
             "min bulk ESS | divergences |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, block in results.items():
        if not isinstance(block, dict) or "customers" not in block:
            continue
        for model in ("Pareto/NBD", "Pareto/GGG"):
            e, d = block[model], block[model]["diagnostics"]
            lines.append(f"| {name} | {block['customers']} | {model} | {e['mae']:.4f} | {e['rmse']:.4f} | "
                         f"{e['predicted_total']:.0f} / {e['actual_total']:.0f} | {e['fit_cpu_s']:.0f} | "
                         f"{d.get('max_r_hat', float('nan')):.3f} | {d.get('min_ess_bulk', float('nan')):.0f} | "
                         f"{d.get('divergences', 0)} |")
    lines += ["", "## Convergence of the population parameters (Pareto/GGG)", "",
              "| data | parameter | mean | R-hat | bulk ESS | tail ESS |", "|---|---|---|---|---|---|"]
    for name, block in results.items():
        if not isinstance(block, dict) or "customers" not in block:
            continue
        for par, row in block["Pareto/GGG"]["population"].items():
            lines.append(f"| {name} | {par} | {row['mean']:.4g} | {row['r_hat']:.3f} | {row['ess_bulk']:.0f} | "
                         f"{row['ess_tail']:.0f} |")
    lines += ["", "## Cost of the latent sampler", ""]
    for name, block in results.items():
        if not isinstance(block, dict) or "customers" not in block:
            continue
        g, e = block["gradient_cpu_s"], block["Pareto/GGG"]
        steps = e.get("leapfrog_steps_per_draw", float("nan"))
        lines.append(f"- {name}: one likelihood + gradient pass over {block['customers']} customers "
                     f"{1000 * g:.2f} ms CPU; {steps:.0f} leapfrog steps per draw, so about {g * steps:.2f} CPU s "
                     f"per draw; estimates {e['estimates']}; prediction CPU {e['predict_cpu_s']:.0f} s.")
    target = RESULTS / "paretoggg_cdnow.md"
    notes = target.read_text().partition(NOTES)[2] if target.exists() else ""
    if notes:  # the hand-written notes below the generated tables are kept
        lines += ["", NOTES + notes.rstrip("\n")]
    target.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
