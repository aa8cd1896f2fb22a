"""Mixing of the Pareto/GGG sampler: sweeps per effective draw of each population parameter, CPU per sweep.

Runs ``bayesclv.formulas._paretoggg_gibbs.sample`` (the default ``fit()``'s
sampler) on a CDNOW calibration frame and reports, per population parameter
``t, gamma, r, alpha, s, beta``: the mean, R-hat, bulk and tail ESS, the bulk
ESS per 1,000 sweeps (both chains' sweeps after tuning counted), the lag-1
autocorrelation of the kept draws and the posterior correlation matrix (which
directions the sampler must move along), and the CPU seconds per sweep of one
chain (chains run one after the other in this process, so ``process_time`` is
the sampler's alone).

Usage::

    nice -n 10 uv run python validation/paretoggg_mixing.py --data sample --tune 1000 --draws 4000 --label NAME

Each run is merged into ``validation/results/paretoggg_mixing.json`` under
``--label`` and the table ``validation/results/paretoggg_mixing.md`` is
rewritten from it (the text from "## Notes" on is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import arviz_stats as azs
import numpy as np
import xarray as xr

import bayesclv as bc
from bayesclv.formulas import _paretoggg_gibbs as gibbs
from bayesclv.models.paretoggg import ParetoGGGModel, gibbs_priors

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ("t", "gamma", "r", "alpha", "s", "beta")
NOTES = "## Notes"


def _prior() -> np.ndarray:
    model = ParetoGGGModel()
    return gibbs_priors(model.priors, model.latent_names)


def _node(tree: xr.DataTree) -> xr.Dataset:
    """The posterior's dataset of a diagnostic (ArviZ returns the group's node or the tree)."""
    return (tree["posterior"] if "posterior" in tree.children else tree).to_dataset()


def run(data: str, tune: int, draws: int, thin: int, chains: int, seed: int, moves: tuple | None) -> dict:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(data), calibration_end="1997-09-30", litt=True)
    columns = [rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "litt")]
    prior = _prior()
    gibbs.sample(*(c[:50] for c in columns), prior, draws=2, tune=2, chains=1, thin=1, random_seed=0, cores=1,
                 **({} if moves is None else {"moves": moves}))
    settings = {} if moves is None else {"moves": moves}
    start = time.process_time()
    out = gibbs.sample(*columns, prior, draws=draws, tune=tune, chains=chains, thin=thin, random_seed=seed, cores=1,
                       **settings)
    cpu = time.process_time() - start
    pop = out["population"]
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {name: (("chain", "draw"), pop[..., j]) for j, name in enumerate(NAMES)})})
    rhat, bulk, tail = (_node(f(tree)) for f in (azs.rhat, lambda t: azs.ess(t, method="bulk"),
                                                  lambda t: azs.ess(t, method="tail")))
    flat = np.log(pop.reshape(-1, 6))
    centred = pop - pop.mean(axis=1, keepdims=True)
    lag1 = (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / (centred ** 2).sum(axis=(0, 1))
    per = {name: {"mean": float(pop[..., j].mean()), "sd": float(pop[..., j].std()), "r_hat": float(rhat[name]),
                  "ess_bulk": float(bulk[name]),
                  "ess_tail": float(tail[name]), "ess_per_1000_sweeps": float(bulk[name]) / (chains * draws) * 1000,
                  "lag1": float(lag1[j])} for j, name in enumerate(NAMES)}
    return {"data": data, "customers": len(rfm), "tune": tune, "draws": draws, "thin": thin, "chains": chains,
            "seed": seed, "moves": moves or getattr(gibbs, "MOVES", None), "cpu_s": cpu,
            "cpu_ms_per_sweep": cpu / (chains * (tune + draws)) * 1000,
            "parameters": per, "log_correlation": np.corrcoef(flat.T).round(2).tolist(),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=RESULTS.parent).stdout.strip(),
            "command": "nice -n 10 uv run python validation/paretoggg_mixing.py " + " ".join(sys.argv[1:]),
            "load_average": os.getloadavg()}


def write(results: dict) -> None:
    (RESULTS / "paretoggg_mixing.json").write_text(json.dumps(results, indent=1) + "\n")
    md = RESULTS / "paretoggg_mixing.md"
    notes = md.read_text().split(NOTES, 1)[1] if md.exists() and NOTES in md.read_text() else "\n"
    lines = ["# Pareto/GGG sampler: mixing of the population parameters", "",
             "Written by `validation/paretoggg_mixing.py` (commands and settings in the `.json`). ESS/1k: bulk ESS "
             "per 1,000 sweeps after tuning (both chains counted); lag 1: autocorrelation of the kept draws; "
             "CPU: ms per sweep of one chain (`process_time`, chains one after the other).", ""]
    for label, r in results.items():
        lines += [f"## {label}", "",
                  f"CDNOW {r['data']} ({r['customers']} customers), commit {r['commit']}, {r['chains']} chains x "
                  f"({r['tune']} tuning + {r['draws']} sweeps, every {r['thin']} kept), moves {r.get('moves')}; "
                  f"{r['cpu_s']:.0f} CPU s, "
                  f"{r['cpu_ms_per_sweep']:.1f} ms per sweep.", "",
                  "| parameter | mean | R-hat | bulk ESS | tail ESS | ESS/1k sweeps | lag 1 |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | {p['mean']:.4g} | {p['r_hat']:.3f} | {p['ess_bulk']:.0f} | {p['ess_tail']:.0f} | "
                  f"{p['ess_per_1000_sweeps']:.1f} | {p['lag1']:.2f} |" for n, p in r["parameters"].items()]
        lines += ["", "Posterior correlation of the logs (t, gamma, r, alpha, s, beta): "
                  + "; ".join(" ".join(f"{v:+.2f}" for v in row) for row in r["log_correlation"]), ""]
    md.write_text("\n".join(lines) + "\n" + NOTES + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["sample", "full"], default="sample")
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--thin", type=int, default=2)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", required=True)
    parser.add_argument("--moves", type=lambda v: tuple(int(m) for m in v.split(",")),
                        help="moves per sweep (gibbs.MOVES), comma separated; default the sampler's")
    args = parser.parse_args()
    result = run(args.data, args.tune, args.draws, args.thin, args.chains, args.seed, args.moves)
    print(json.dumps(result, indent=1), flush=True)
    path = RESULTS / "paretoggg_mixing.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.label] = result
    write(results)


if __name__ == "__main__":
    main()
