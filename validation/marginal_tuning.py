"""How many tuning steps the marginal hierarchical fit needs: R-hat, ESS and divergences against ``tune``.

The default fit (latents integrated out) samples only the 7-12 population parameters. For each family
and each ``--tunes`` value this fits the CDNOW sample (covariate log first-purchase amount, 4 chains x
1000 draws, the same seed) and records max R-hat, min bulk and tail ESS over the population parameters,
divergences, and CPU and wall seconds of the fit.

Usage::

    uv run python validation/marginal_tuning.py [sample|full] [--tunes 300 1000] [--families paretonbd bgnbd]

Writes ``validation/results/marginal_tuning_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import bayesclv as bc
from hierarchical_cdnow import cdnow_with_covariates

RESULTS = Path(__file__).parent / "results"
MODELS = {"paretonbd": bc.HierarchicalParetoNBDModel, "bgnbd": bc.HierarchicalBetaGeoModel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sample", "full"], nargs="?", default="sample")
    parser.add_argument("--tunes", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--families", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    rfm = cdnow_with_covariates(args.kind)
    runs = []
    for family in args.families:
        for tune in args.tunes:
            wall, cpu = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
                # never the latent-variable fallback here: this study is about the marginal fit's tuning
                warnings.filterwarnings("error", message=r".*\(method='latent'\)", category=UserWarning)
                try:
                    model = MODELS[family](covariates=["log_first_amount"]).fit(
                        rfm, tune=tune, random_seed=2026, progressbar=False)
                except UserWarning as fallback:
                    runs.append({"family": family, "tune": tune, "fell_back": str(fallback)})
                    continue
            d = model.diagnostics
            runs.append({"family": family, "tune": tune, "cpu_seconds": round(time.process_time() - cpu, 1),
                         "wall_seconds": round(time.perf_counter() - wall, 1), "max_r_hat": d.get("max_r_hat"),
                         "min_ess_bulk": d.get("min_ess_bulk"), "min_ess_tail": d.get("min_ess_tail"),
                         "divergences": d.get("divergences"), "nodes": d.get("nodes")})
            print(json.dumps(runs[-1], default=float), flush=True)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"marginal_tuning_{args.kind}.json").write_text(
                json.dumps({"kind": args.kind, "runs": runs}, indent=2, default=float))
    lines = [f"# Tuning steps of the marginal fit, CDNOW {args.kind}", "",
             "Written by `validation/marginal_tuning.py`: 4 chains x 1000 draws, seed 2026; CPU s over all "
             "threads of the process (shared machine: wall inflated).", "",
             "| family | tune | max R-hat | min bulk ESS | min tail ESS | divergences | CPU s | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "fell_back" in r:
            lines.append(f"| {r['family']} | {r['tune']} | fell back to latent NUTS: skipped |")
            continue
        lines.append(f"| {r['family']} | {r['tune']} | {r['max_r_hat']:.4f} | {r['min_ess_bulk']:.0f} | "
                     f"{r['min_ess_tail']:.0f} | {r['divergences']} | {r['cpu_seconds']} | {r['wall_seconds']} |")
    (RESULTS / f"marginal_tuning_{args.kind}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
