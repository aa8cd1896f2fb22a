"""Simulation-based calibration (Talts et al. 2018) of the discrete-time models with their shipped priors.

For the BG/BB and the shifted-BG and each of ``--sims`` replications: draw
the parameters from the model's *default* priors and simulate a data set with
the library's population simulator (``model.sample_prior_predictive``), fit it
with NUTS (short chains), thin the posterior to ``L`` draws and record the rank
of each true parameter value; then test the ranks for uniformity on ``0..L``
(:func:`bayesclv.checks.rank_uniformity`: chi-square on 20 bins, KS on
randomised ranks).

Data per replication, ``--customers`` customers:

* BG/BB: customers acquired at six successive opportunities and observed to
  the same end, so ``periods`` cycles through 1..6 (as a yearly donation
  cohort observed for 1-6 drives); ``frequency`` and ``recency`` simulated.
* shifted-BG: one cohort observed for 8 periods; ``periods`` (until churn,
  or 8) and ``churned`` simulated.

Every replication is kept, also those with poor diagnostics (dropping them
would bias the ranks); their R-hat, ESS and divergences are recorded.

Usage::

    uv run python validation/sbc_discrete.py [--sims 200] [--workers 2] [--models bgbb shifted_bg]

Writes ``validation/results/sbc_discrete_ranks.csv`` (appended as replications
finish; an existing file is resumed) and ``sbc_discrete_summary.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.checks import sbc_simulation

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ranks' summary and the job loop of sbc.py
from sbc import model_entry, run_replications  # noqa: E402

MODELS = {"bgbb": bc.BetaGeoBetaBinomModel, "shifted_bg": bc.ShiftedBetaGeoModel}
RESULTS = Path(__file__).parent / "results"


def base_data(model_key: str, n_customers: int) -> pd.DataFrame:
    """Fixed columns of every replication (the simulated ones are placeholders)."""
    ids = np.arange(n_customers)
    if model_key == "bgbb":
        periods = np.resize(np.arange(1.0, 7.0), n_customers)
        return pd.DataFrame({"customer_id": ids, "frequency": 0.0, "recency": 0.0, "periods": periods})
    return pd.DataFrame({"customer_id": ids, "periods": 8.0, "churned": 0.0})


def prior_draws(model_key: str, n_customers: int, n_sims: int, seed: int) -> list[tuple[dict, dict]]:
    """(true parameters, simulated columns) of each replication, from the model's default priors."""
    cls = MODELS[model_key]
    prior = cls().sample_prior_predictive(base_data(model_key, n_customers), draws=n_sims, random_seed=seed)
    cols = [c for c in cls.data_columns if c in prior]
    return [({n: float(prior[n][i]) for n in cls.parameter_names}, {c: prior[c].values[i] for c in cols})
            for i in range(n_sims)]


def one(model_key: str, sim: int, truth: dict, simulated: dict, n_customers: int, seed: int,
        n_ranks: int, fit: dict) -> dict:
    """Replication ``sim`` of ``model_key``: fit the simulated data and rank the truth."""
    start = time.perf_counter()
    row = {"model": model_key, "sim": sim, **{f"true_{k}": v for k, v in truth.items()}}
    try:
        row.update(sbc_simulation(MODELS[model_key], base_data(model_key, n_customers), truth, simulated,
                                  n_ranks=n_ranks, fit_kwargs={**fit, "random_seed": seed + 1 + sim}))
        row["error"] = ""
    except Exception as exc:  # noqa: BLE001 -- recorded, not hidden: a failed fit is a finding
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def summarise(ranks: pd.DataFrame, n_ranks: int, settings: dict, wall: float | None) -> dict:
    """Uniformity tests per model and parameter."""
    out = {"settings": settings, "wall_seconds": None if wall is None else round(wall, 1),
           "load_average": os.getloadavg(), "reference": "Talts et al. 2018, arXiv:1804.06788", "models": {}}
    for key, cls in MODELS.items():
        part = ranks[ranks["model"] == key]
        if part.empty:
            continue
        out["models"][key] = model_entry(part, cls, n_ranks)
    return out


def markdown(summary: dict) -> str:
    lines = [f"# SBC of the BG/BB and the shifted-BG (L = {summary['settings']['n_ranks']} ranks)", "",
             f"Settings: {json.dumps(summary['settings'])}; wall {summary['wall_seconds']} s.", "",
             "| model | parameter | sims | failed | chi2 p | KS p | divergent fits | R-hat>1.01 |",
             "|---|---|---|---|---|---|---|---|"]
    for key, entry in summary["models"].items():
        for name, t in entry["parameters"].items():
            lines.append(f"| {key} | {name} | {entry['n_sims']} | {entry['n_failed']} | {t['chi2_pvalue']:.3f} | "
                         f"{t['ks_pvalue']:.3f} | {entry['share_divergent_fits']:.2f} | "
                         f"{entry['share_rhat_gt_1_01']:.2f} |")
    lines += ["", "Priors (the shipped defaults):", ""]
    lines += [f"- {key}: {entry['priors']}" for key, entry in summary["models"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=99, help="L: thinned posterior draws per fit")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--summarise-only", action="store_true",
                        help="only summarise the replications already in sbc_discrete_ranks.csv")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ranks_path = out_dir / "sbc_discrete_ranks.csv"
    done = pd.read_csv(ranks_path) if ranks_path.exists() else pd.DataFrame(columns=["model", "sim"])
    seen = set(zip(done["model"], done["sim"].astype(int), strict=True))
    fit = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "sampler": args.sampler}
    tasks = [(m, i) for i in range(args.sims) for m in args.models if (m, i) not in seen]
    if args.summarise_only:
        tasks = []
    settings = {"n_sims": args.sims, "customers": args.customers, "n_ranks": args.ranks, "seed": args.seed,
                "fit": {**fit, "method": "nuts"}, "workers": args.workers}
    print(f"SBC: {len(tasks)} replications to run ({len(seen)} already in {ranks_path})", flush=True)
    start = time.perf_counter()
    rows = [] if done.empty else done.to_dict("records")
    seeds = {m: args.seed + 1000 * list(MODELS).index(m) for m in args.models}
    draws = {m: prior_draws(m, args.customers, args.sims, seeds[m]) for m in args.models} if tasks else {}
    jobs = [(one, m, i, *draws[m][i], args.customers, seeds[m], args.ranks, fit) for m, i in tasks]

    def record(k: int, row: dict) -> None:
        rows.append(row)
        pd.DataFrame(rows).to_csv(ranks_path, index=False)
        print(f"[{k}/{len(tasks)}] {row['model']} sim {row['sim']}: {row['seconds']} s {row['error'] or ''}",
              flush=True)

    run_replications(jobs, args.workers, record)
    summary = summarise(pd.DataFrame(rows), args.ranks, settings,
                        None if args.summarise_only else time.perf_counter() - start)
    (out_dir / "sbc_discrete_summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "sbc_discrete_summary.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
