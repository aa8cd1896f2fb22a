"""Pareto/GGG beside the Pareto/NBD: CDNOW holdout, a simulated regular-timing base, and the sampler against NUTS.

Parts (``--parts``, run in this order, each written to the result files when done):

- ``reference``: on 300 customers simulated from a known population, the
  Pareto/GGG's data-augmentation sampler (``method="gibbs"``) against the
  latent-variable NUTS fit of the same posterior: each population parameter's
  posterior mean, with the Monte Carlo standard error of the difference.
- ``sample`` / ``full``: CDNOW (calibration to 1997-09-30, holdout weeks 40-78),
  the Pareto/GGG by the sampler beside the pooled Pareto/NBD by NUTS.
- ``simulated``: a base with regular purchase timing (``k`` around 4) as in
  Platzer & Reutterer (2016), where the Pareto/NBD, blind to timing, keeps silent
  regular customers alive too long.

Scores: MAE and RMSE of the posterior-mean expected purchases against the
actual holdout counts, predicted and actual totals; R-hat and ESS of the six
population parameters; CPU seconds of each fit.

Usage::

    nice -n 10 uv run python validation/paretoggg_cdnow.py --parts reference sample simulated

Writes ``validation/results/paretoggg_cdnow.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.formulas import paretoggg
from bayesclv.models.paretoggg import GIBBS_DEFAULTS

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = "## Notes"  # the heading from which the result file's text is written by hand and kept on a rerun


def holdout(model, rfm: pd.DataFrame, keep: int) -> dict:
    """Holdout accuracy of the posterior-mean expected purchases (over at most ``keep`` evenly spaced draws)."""
    horizon = float(rfm["T_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy()
    draws = model.posterior.sizes["draw"]
    if "k" in model.posterior and draws * model.posterior.sizes["chain"] > keep:  # the latents' draws: thin them
        step = int(np.ceil(draws * model.posterior.sizes["chain"] / keep))
        model.idata["posterior"] = model.idata["posterior"].isel(draw=slice(None, None, step))
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


def fit(model, rfm: pd.DataFrame, args, **settings) -> dict:
    """Fit (NUTS for the Pareto/NBD, the sampler's ``settings`` for the Pareto/GGG), time it, score the holdout."""
    if not settings:
        settings = {"tune": args.tune, "draws": args.draws}
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(rfm.drop(columns=["frequency_holdout", "T_holdout"]), chains=args.chains, random_seed=args.seed,
                  progressbar=False, **settings)
    out = {"fit_cpu_s": time.process_time() - start_cpu, "fit_wall_s": time.perf_counter() - start_wall,
           "settings": {**GIBBS_DEFAULTS, "chains": args.chains, **settings} if settings.get("method") == "gibbs"
           else settings, "estimates": model.summary()["mean"].round(4).to_dict(),
           "population": population_convergence(model),
           "diagnostics": {k: v for k, v in dict(model.diagnostics).items()
                           if isinstance(v, (int, float, str, list))}}
    if "k" in model.posterior and args.population_draws:  # every kept draw, before the predictions thin them
        post = model.posterior[list(model.parameter_names)].to_dataframe()
        post.round(6).to_csv(args.population_draws)
    start = time.process_time()
    out.update(holdout(model, rfm, args.keep))
    out["predict_cpu_s"] = time.process_time() - start
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


REFERENCE = {"t": 8.0, "gamma": 4.0, "r": 1.5, "alpha": 6.0, "s": 1.0, "beta": 30.0}  # k ~ 2, lam ~ 0.25, mu ~ 0.03


def reference(args) -> dict:
    """The sampler against latent-variable NUTS on one simulated base: population means and their MC errors."""
    rng = np.random.default_rng(args.seed)
    sim = paretoggg.simulate_population(rng.uniform(40.0, 78.0, args.reference), *REFERENCE.values(), rng=rng)
    df = pd.DataFrame({"customer_id": np.arange(args.reference),
                       **{c: sim[c] for c in ("frequency", "recency", "T", "litt")}})
    df.attrs["time_unit"] = "W"
    out = {"customers": args.reference, "truth": REFERENCE}
    runs = {"nuts": dict(method="nuts", tune=args.nuts_tune, draws=args.nuts_draws),
            "gibbs": dict(method="gibbs", tune=args.gibbs_tune, draws=args.gibbs_draws, thin=args.gibbs_thin)}
    tables = {}
    stored = json.loads((RESULTS / "paretoggg_cdnow.json").read_text()).get("reference", {})
    if args.reuse_nuts and stored.get("customers") == args.reference and "nuts" in stored:
        # the NUTS fit of this very base (same seed and size) from the file: only the sampler is rerun
        out["nuts"] = stored["nuts"]
        tables["nuts"] = pd.DataFrame.from_dict(stored["nuts"]["table"], orient="index")
        runs.pop("nuts")
    for name, settings in runs.items():
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = bc.ParetoGGGModel().fit(df, chains=args.chains, random_seed=args.seed, progressbar=False,
                                            **settings)
        table = model.summary()
        table["mcse"] = table["sd"] / np.sqrt(table["ess_bulk"])
        tables[name] = table
        out[name] = {"fit_cpu_s": time.process_time() - start, "settings": settings,
                     "table": table.round(5).to_dict(orient="index")}
        print(name, out[name], flush=True)
    a, b = tables["gibbs"], tables["nuts"]
    z = (a["mean"] - b["mean"]) / np.sqrt(a["mcse"] ** 2 + b["mcse"] ** 2)
    out["z"] = z.round(3).to_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["reference", "sample", "simulated"],
                        choices=["reference", "sample", "full", "simulated"])
    parser.add_argument("--tune", type=int, default=1000, help="Pareto/NBD NUTS tuning steps")
    parser.add_argument("--draws", type=int, default=1000, help="Pareto/NBD NUTS draws")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--gibbs-tune", type=int, default=2000, help="Pareto/GGG sweeps while tuning")
    parser.add_argument("--gibbs-draws", type=int, default=16000, help="Pareto/GGG sweeps after tuning")
    parser.add_argument("--gibbs-thin", type=int, default=16)
    parser.add_argument("--full-draws", type=int, default=0,
                        help="Pareto/GGG sweeps after tuning on CDNOW full (0: fit()'s defaults, GIBBS_DEFAULTS)")
    parser.add_argument("--population-draws", type=Path, metavar="CSV",
                        help="write every kept draw of the Pareto/GGG's population parameters (chain, draw) to CSV "
                             "(for convergence of shorter settings: a prefix of each chain is a shorter run)")
    parser.add_argument("--save-full", type=Path, metavar="PATH",
                        help="save the CDNOW-full Pareto/GGG fit (its draws thinned to --keep) for compare_families.py")
    parser.add_argument("--nuts-tune", type=int, default=1000, help="latent NUTS tuning steps (reference)")
    parser.add_argument("--nuts-draws", type=int, default=1000, help="latent NUTS draws (reference)")
    parser.add_argument("--reference", type=int, default=300, help="customers of the reference comparison")
    parser.add_argument("--reuse-nuts", action="store_true",
                        help="reference: take the latent NUTS fit of the same base from the result file")
    parser.add_argument("--keep", type=int, default=400, help="Pareto/GGG draws kept for the predictions")
    parser.add_argument("--simulated", type=int, default=1000, help="customers of the simulated base")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cost-only", action="store_true",
                        help="only time the likelihood gradient on CDNOW sample and full (-> paretoggg_cost.md)")
    args = parser.parse_args()
    if args.save_full and not Path(args.save_full).resolve().parent.is_dir():  # before an hour of fitting, not after
        parser.error(f"--save-full {args.save_full}: the folder {Path(args.save_full).parent} does not exist")
    if args.cost_only:
        write_cost()
        return
    gibbs = dict(tune=args.gibbs_tune, draws=args.gibbs_draws, thin=args.gibbs_thin)
    for part in args.parts:  # written after each part, so a run cut short keeps what it finished
        if part == "reference":
            name, block = "reference", reference(args)
        else:
            name, rfm, settings = {
                "sample": ("CDNOW sample", _cdnow("sample"), gibbs),
                "full": ("CDNOW full", _cdnow("full"),
                         dict(tune=args.gibbs_tune, draws=args.full_draws, thin=max(1, args.full_draws // 250))
                         if args.full_draws else {"method": "gibbs"}),
                "simulated": ("simulated regular", simulated_base(args.simulated, args.seed), gibbs)}[part]
            block = {"customers": len(rfm), "Pareto/NBD": fit(bc.ParetoNBDModel(), rfm, args)}
            model = bc.ParetoGGGModel()
            block["Pareto/GGG"] = fit(model, rfm, args, **settings)
            if part == "full" and args.save_full:  # one fit for this table and compare_families.py's row
                model.save(args.save_full, overwrite=True)
        block["command"] = "nice -n 10 uv run python validation/paretoggg_cdnow.py " + " ".join(sys.argv[1:])
        print(name, json.dumps(block, default=float), flush=True)
        # merged into the file as it is now: parts may run in separate processes
        path = RESULTS / "paretoggg_cdnow.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        results = {k: v for k, v in results.items() if isinstance(v, dict) and "customers" in v}
        results[name] = block
        results["load_average"] = os.getloadavg()
        write(results)


def _cdnow(which: str) -> pd.DataFrame:
    return bc.rfm_summary(bc.datasets.load_cdnow(which), calibration_end="1997-09-30", litt=True)


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
    lines = ["# Pareto/GGG (data-augmentation sampler) beside the Pareto/NBD (NUTS): holdout, convergence, cost", "",
             "Written by the commands in the `.json` (one per part, `command`; settings of each fit there too); "
             "load average "
             f"{tuple(round(v, 1) for v in results['load_average'])} on a shared 2-core machine: CPU seconds "
             "are the figures to compare. Holdout MAE of the posterior-mean expected purchases per customer.", ""]
    if "reference" in results:
        ref = results["reference"]
        lines += ["## The sampler against latent-variable NUTS (same posterior)", "",
                  f"{ref['customers']} customers simulated from {ref['truth']}. z: difference of the posterior "
                  "means over the Monte Carlo standard error of the difference (sd / sqrt(bulk ESS) of each).", "",
                  "| parameter | NUTS mean (sd) | sampler mean (sd) | z | NUTS R-hat / ESS | sampler R-hat / ESS |",
                  "|---|---|---|---|---|---|"]
        for par, z in ref["z"].items():
            a, b = ref["nuts"]["table"][par], ref["gibbs"]["table"][par]
            lines.append(f"| {par} | {a['mean']:.4g} ({a['sd']:.3g}) | {b['mean']:.4g} ({b['sd']:.3g}) | {z:+.2f} | "
                         f"{a['r_hat']:.3f} / {a['ess_bulk']:.0f} | {b['r_hat']:.3f} / {b['ess_bulk']:.0f} |")
        lines += ["", f"CPU s: NUTS {ref['nuts']['fit_cpu_s']:.0f}, sampler {ref['gibbs']['fit_cpu_s']:.0f}.", ""]
    lines += ["## Holdout and convergence", "",
             "| data | customers | model | holdout MAE | RMSE | predicted / actual | fit CPU s | max R-hat | "
             "min bulk ESS | divergences |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, block in results.items():
        if not isinstance(block, dict) or "Pareto/GGG" not in block:
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
        if not isinstance(block, dict) or "Pareto/GGG" not in block:
            continue
        for par, row in block["Pareto/GGG"]["population"].items():
            lines.append(f"| {name} | {par} | {row['mean']:.4g} | {row['r_hat']:.3f} | {row['ess_bulk']:.0f} | "
                         f"{row['ess_tail']:.0f} |")
    lines += ["", "## Settings and estimates (Pareto/GGG)", ""]
    for name, block in results.items():
        if not isinstance(block, dict) or "Pareto/GGG" not in block:
            continue
        e = block["Pareto/GGG"]
        lines.append(f"- {name}: {e['settings']}, {e['fit_cpu_s']:.0f} CPU s ({e['fit_wall_s']:.0f} s wall); "
                     f"estimates {e['estimates']}; prediction CPU {e['predict_cpu_s']:.0f} s.")
    target = RESULTS / "paretoggg_cdnow.md"
    notes = target.read_text().partition(NOTES)[2] if target.exists() else ""
    if notes:  # the hand-written notes below the generated tables are kept
        lines += ["", NOTES + notes.rstrip("\n")]
    target.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
