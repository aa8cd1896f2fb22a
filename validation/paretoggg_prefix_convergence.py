"""Would fewer sweeps have converged? R-hat and ESS of prefixes of one long Pareto/GGG fit's chains.

The sampler's sweeps after tuning are one compiled loop per chain
(``formulas/_paretoggg_gibbs.run_chain``) seeded once: a fit with ``draws = D``
runs exactly the first ``D`` sweeps of a fit with more draws and the same seed,
tuning and data. So the first ``D / thin`` kept draws of each chain of a long
run *are* the kept draws of the shorter run with the same ``thin``, and its
convergence figures (max R-hat, min bulk and tail ESS of the six population
parameters, judged as ``models/diagnostics.py`` judges a fit) can be read off
without refitting. Input: the population draws that
``validation/paretoggg_cdnow.py --population-draws CSV`` writes (columns
``chain, draw, t, gamma, r, alpha, s, beta``) and the settings of that fit.

Usage::

    uv run python validation/paretoggg_prefix_convergence.py validation/results/paretoggg_full_population_draws.csv \
        --thin 9 --tune 1000 --label "CDNOW full, fit() defaults"

Writes ``validation/results/paretoggg_prefix_convergence.md`` and ``.json`` (merged by ``--label``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.models.diagnostics import ESS_MIN, RHAT_MAX, compute_diagnostics, summary_table

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ["t", "gamma", "r", "alpha", "s", "beta"]


def posterior(draws: pd.DataFrame, kept: int) -> xr.DataTree:
    """The first ``kept`` draws of every chain as a posterior group."""
    frame = draws[draws["draw"] < kept].set_index(["chain", "draw"])[NAMES]
    return xr.DataTree.from_dict({"posterior": xr.Dataset.from_dataframe(frame)})


def prefixes(draws: pd.DataFrame, thin: int, fractions: list[float]) -> list[dict]:
    """Convergence of each prefix (a fraction of the kept draws per chain), shortest first."""
    total = int(draws["draw"].max()) + 1
    rows = []
    for fraction in fractions:
        kept = max(4, round(total * fraction))
        tree = posterior(draws, kept)
        diag = compute_diagnostics(tree, NAMES)
        table = summary_table(tree, NAMES, 0.94, False)
        ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
        rows.append({"sweeps_per_chain": kept * thin, "kept_per_chain": kept,
                     "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
                     "min_ess_tail": diag["min_ess_tail"], "slowest": str(ess.idxmin()),
                     "worst_r_hat": str(table["r_hat"].idxmax()),
                     "converged": bool(diag["max_r_hat"] < RHAT_MAX and diag["min_ess_bulk"] >= ESS_MIN
                                       and diag["min_ess_tail"] >= ESS_MIN),
                     "ess_bulk_per_1k_sweeps": (table["ess_bulk"] / (draws["chain"].nunique() * kept * thin)
                                                * 1000).round(1).to_dict()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--thin", type=int, required=True, help="the fit's thin (sweeps per kept draw)")
    parser.add_argument("--tune", type=int, required=True, help="the fit's tuning sweeps per chain")
    parser.add_argument("--label", required=True)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    args = parser.parse_args()
    draws = pd.read_csv(args.csv)
    rows = prefixes(draws, args.thin, args.fractions)
    path = RESULTS / "paretoggg_prefix_convergence.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.label] = {"command": "uv run python validation/paretoggg_prefix_convergence.py "
                           + " ".join(f"'{a}'" if " " in a else a for a in sys.argv[1:]),
                           "thin": args.thin, "tune": args.tune, "chains": int(draws["chain"].nunique()),
                           "rows": rows}
    path.write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Pareto/GGG: convergence of shorter runs, read from prefixes of one long fit's chains", "",
             "Written by `validation/paretoggg_prefix_convergence.py` (command per block). A prefix of each chain "
             "is exactly the shorter run with the same seed, tuning and thin (the sweeps after tuning are one "
             f"seeded loop). Converged: max R-hat < {RHAT_MAX}, min bulk and tail ESS >= {ESS_MIN:.0f} over "
             "`t, gamma, r, alpha, s, beta` (`models/diagnostics.py`).", ""]
    for label, block in results.items():
        lines += [f"## {label}", "", f"`{block['command']}`; {block['chains']} chains, {block['tune']} tuning "
                  f"sweeps each, every {block['thin']}th sweep kept.", "",
                  "| sweeps per chain after tuning | max R-hat (parameter) | min bulk ESS | min tail ESS | "
                  "lowest ESS | converged | bulk ESS per 1,000 sweeps (t, gamma, r, alpha, s, beta) |",
                  "|---|---|---|---|---|---|---|"]
        for row in block["rows"]:
            rates = ", ".join(f"{v:.0f}" for v in row["ess_bulk_per_1k_sweeps"].values())
            lines.append(f"| {row['sweeps_per_chain']} | {row['max_r_hat']:.3f} ({row['worst_r_hat']}) | "
                         f"{row['min_ess_bulk']:.0f} | {row['min_ess_tail']:.0f} | {row['slowest']} | "
                         f"{'yes' if row['converged'] else 'no'} | {rates} |")
        lines.append("")
    (RESULTS / "paretoggg_prefix_convergence.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
