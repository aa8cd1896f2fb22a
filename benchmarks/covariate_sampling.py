"""NUTS on the covariate BG/NBD and Pareto/NBD: sampling coordinates, steps per draw, CPU, same posterior.

The data are those of ``benchmarks/peer_covariates.py`` (CDNOW, 39-week
calibration, weeks, covariates ``log_first_amount`` and ``first_week``,
standardised). Each case is one fit by ``fit()``'s defaults (nutpie, 4 chains
x 1000 draws; warm-up, target acceptance and whitening the fit's defaults unless
``--tune``/``--target-accept``/``--whiten`` say otherwise) in this process, one
after the other; it records the fit's CPU
seconds (``fit_cpu_seconds``: the process, nutpie's threads included), mean and
largest leapfrog steps per draw, each chain's final step size, divergences,
max R-hat and min ESS, and every published parameter's posterior mean with
its Monte Carlo standard error.

Parametrisations of the BG/NBD (``--param``; the Pareto/NBD is fitted as shipped, ``default``):

- ``paired``: the model as shipped, ``(a, b)`` sampled as mean and concentration
  and each covariate's ``(dropout_coef_a, dropout_coef_b)`` as difference and
  mean (:mod:`bayesclv.models.mean_concentration`);
- ``independent``: the earlier coordinates, ``log a``, ``log b`` and the two
  coefficient vectors each on its own axis (the reference: the same model and
  priors, so the posteriors must agree within Monte Carlo error).

    nice -n 10 uv run python benchmarks/covariate_sampling.py sample --models bgnbd --param paired independent
    nice -n 10 uv run python benchmarks/covariate_sampling.py full --models bgnbd paretonbd
    nice -n 10 uv run python benchmarks/covariate_sampling.py full --models bgnbd --tune 1000 --target-accept 0.8 \
        --whiten off --label lanes          # the earlier defaults on the current kernel

Writes ``benchmarks/results/covariate_sampling_<dataset>.json`` and ``.md``
(cases are merged into the JSON by key, so runs can add to it); with ``--file-suffix S``
``covariate_sampling_<dataset>_S.*`` instead, started with the main file's cases of the models run (so the
posterior comparison has its reference rows): runs under load or on a branch leave the main file alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import arviz_stats as azs
import numpy as np

import bayesclv as bc
from bayesclv.models.pooled import PooledModel
from peer_covariates import COVARIATES, cdnow_with_covariates

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}


class IndependentBetaGeoModel(bc.BetaGeoModel):
    """The covariate BG/NBD in its earlier sampling coordinates (the reference)."""

    coefficient_pairs = ()

    def _parameters(self):
        return PooledModel._parameters(self)


def fit_case(rfm, model: str, param: str, args) -> dict:
    """One default NUTS fit; its cost, geometry, diagnostics and posterior means with MCSE."""
    cls = {"bgnbd": {"paired": bc.BetaGeoModel, "independent": IndependentBetaGeoModel},
           "paretonbd": {"default": bc.ParetoNBDModel}}[model][param]
    fitted = cls(covariates=COVARIATES)
    settings = {} if args.target_accept is None else {"target_accept": args.target_accept}
    if args.tune is not None:
        settings["tune"] = args.tune
    if args.whiten is not None:
        settings["nuts"] = {"whiten": args.whiten == "on"}
    fitted.fit(rfm, draws=args.draws, chains=args.chains, random_seed=args.seed, progressbar=False, **settings)
    stats, diag = fitted.idata["sample_stats"], fitted.diagnostics
    means = {}
    for name in fitted._summary_names():
        da = fitted.posterior[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        for label, sub in ([(name, da)] if not extra else
                           [(f"{name}[{c}]", da.sel({extra[0]: c})) for c in da[extra[0]].values]):
            means[label] = {"mean": float(sub.mean()), "sd": float(sub.std()), "mcse": float(azs.mcse(sub))}
    return {"fit_cpu_s": diag["fit_cpu_seconds"], "fit_wall_s": diag["fit_seconds"],
            "steps_per_draw": float(stats["n_steps"].mean()), "max_steps": int(stats["n_steps"].max()),
            "step_size": [float(s) for s in stats["step_size"].values[:, -1]],
            "divergences": int(diag["divergences"]), "max_r_hat": float(diag["max_r_hat"]),
            "min_ess_bulk": float(diag["min_ess_bulk"]), "min_ess_tail": float(diag["min_ess_tail"]),
            "means": means, "load": os.getloadavg(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def markdown(dataset: str, customers: int, cases: dict) -> str:
    lines = [f"# Covariate BG/NBD and Pareto/NBD: NUTS sampling coordinates (CDNOW {dataset})\n",
             f"CDNOW {dataset} ({customers} customers, 39-week calibration, weeks), covariates "
             f"{', '.join(COVARIATES)} (standardised). Each case: one `fit()` by nutpie in its own run of "
             "`benchmarks/covariate_sampling.py`; CPU seconds are the process's (nutpie's threads included) "
             "on a shared 2-core machine (wall times are inflated by the load and not compared). A case's key: "
             "model / coordinates / chains x draws + tuning steps ('default': the fit's default), then the "
             "options given (`--target-accept`, `--whiten`) and `--label` (the code it ran).\n",
             "| model | coordinates | draws | fit CPU (s) | steps/draw (max) | step size per chain | divergences "
             "| max R-hat | min ESS bulk / tail | load at the end | finished |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, c in cases.items():
        model, param, size = key.split("/")
        lines.append(f"| {LABELS[model]} | {param} | {size} | {c['fit_cpu_s']:.1f} | {c['steps_per_draw']:.1f} "
                     f"({c['max_steps']}) | {', '.join(f'{s:.2f}' for s in c['step_size'])} | {c['divergences']} "
                     f"| {c['max_r_hat']:.3f} | {c['min_ess_bulk']:.0f} / {c['min_ess_tail']:.0f} "
                     f"| {c['load'][0]:.1f} | {c['finished']} |")
    firsts = {}
    for key in cases:
        firsts.setdefault(key.split("/")[0], key)
    lines += ["", "## Same posterior: every case against its model's first row\n",
              "Largest difference of a published parameter's posterior mean, in units of the two runs' combined "
              "Monte Carlo standard error, over all parameters (10 for the BG/NBD, 8 for the Pareto/NBD), and the "
              "parameter where it is largest.\n",
              "| case | against | max abs diff / MCSE | parameter |", "|---|---|---|---|"]
    for key, c in cases.items():
        first = cases[firsts[key.split("/")[0]]]
        if c is first:
            continue
        z = {n: (a["mean"] - first["means"][n]["mean"]) / np.hypot(a["mcse"], first["means"][n]["mcse"])
             for n, a in c["means"].items()}
        worst = max(z, key=lambda n: abs(z[n]))
        lines.append(f"| {key} | {firsts[key.split('/')[0]]} | {abs(z[worst]):.1f} | {worst} |")
    pairs = [(k, k.replace("/paired/", "/independent/")) for k in cases
             if "/paired/" in k and k.replace("/paired/", "/independent/") in cases]
    for new, old in pairs:
        lines += ["", f"## Same posterior: {new} against {old}\n",
                  "Difference of the posterior means in units of their combined Monte Carlo standard error.\n",
                  "| parameter | paired mean (sd) | independent mean (sd) | diff / MCSE |", "|---|---|---|---|"]
        for name, a in cases[new]["means"].items():
            b = cases[old]["means"][name]
            lines.append(f"| {name} | {a['mean']:.4g} ({a['sd']:.2g}) | {b['mean']:.4g} ({b['sd']:.2g}) "
                         f"| {(a['mean'] - b['mean']) / np.hypot(a['mcse'], b['mcse']):+.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["sample", "full"])
    parser.add_argument("--models", nargs="+", default=["bgnbd", "paretonbd"], choices=list(LABELS))
    parser.add_argument("--param", nargs="+", default=["paired"], choices=["paired", "independent"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None, help="tuning steps (default: the fit's default)")
    parser.add_argument("--target-accept", type=float, default=None, help="(default: the fit's default)")
    parser.add_argument("--whiten", choices=["on", "off"], default=None, help="(default: the model's default)")
    parser.add_argument("--label", default="", help="appended to the case's key (e.g. the code it ran)")
    parser.add_argument("--file-suffix", default="", help="write covariate_sampling_<dataset>_<suffix>.*")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rfm = cdnow_with_covariates(args.dataset)
    rfm.attrs["time_unit"] = "W"
    stem = RESULTS / f"covariate_sampling_{args.dataset}"
    if args.file_suffix:
        shared = json.loads(stem.with_suffix(".json").read_text()) if stem.with_suffix(".json").exists() else {}
        stem = stem.with_name(f"{stem.name}_{args.file_suffix}")
        if not stem.with_suffix(".json").exists():
            stem.with_suffix(".json").write_text(json.dumps(
                {k: c for k, c in shared.items() if k.split("/")[0] in args.models}, indent=1))
    path = stem.with_suffix(".json")
    for model in args.models:
        for param in (args.param if model == "bgnbd" else ["default"]):
            key = (f"{model}/{param}/{args.chains}x{args.draws}+{'default' if args.tune is None else args.tune}"
                   + ("" if args.target_accept is None else f" ta {args.target_accept}")
                   + ("" if args.whiten is None else f" whiten {args.whiten}")
                   + (f" {args.label}" if args.label else ""))
            case = fit_case(rfm, model, param, args)
            print(key, {k: v for k, v in case.items() if k != "means"}, flush=True)
            cases = json.loads(path.read_text()) if path.exists() else {}  # read late: runs may add cases
            cases[key] = case
            path.write_text(json.dumps(cases, indent=1))
            stem.with_suffix(".md").write_text(markdown(args.dataset, len(rfm), cases))


if __name__ == "__main__":
    main()
