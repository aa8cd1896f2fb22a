"""Simulation-based calibration (Talts et al. 2018) of the pooled models with their shipped priors.

For each model (BG/NBD, Pareto/NBD, Gamma-Gamma, MBG/NBD, BG/CNBD-2, MBG/CNBD-2,
GGom/NBD, Pareto/GGG) and each of ``--sims``
replications: draw the parameters from the model's *default* priors (the
Pareto/GGG: the narrower priors of :data:`SBC_PRIORS`, see there) and
simulate a data set with the library's population simulators
(``model.sample_prior_predictive``), fit it with the model's default method
(NUTS, nutpie by default, short chains; the Pareto/GGG's compiled Gibbs
sampler, ``--draws``/``--tune`` then count sweeps, every ``--thin``-th kept), thin the
posterior to ``L`` draws and record the rank of each true parameter value.
Then test the ranks for uniformity on ``0..L`` (chi-square on 20 bins and a
KS test on randomised ranks, see :func:`bayesclv.checks.rank_uniformity`).

Data per replication: ``--customers`` customers, observation lengths ``T``
spread evenly over 13-39 weeks (a cohort acquired over six months, observed to
week 39); for Gamma-Gamma, repeat-purchase counts cycling through 1, 2, 3, 4,
6, 10. Every replication is kept, also those with poor diagnostics (dropping
them would bias the ranks); their R-hat, ESS and divergences are recorded.

Usage::

    uv run python validation/sbc.py [--sims 200] [--workers 2] [--sampler nutpie|pymc] [--models ...] [--thin 1]

Writes ``validation/results/sbc_ranks.csv`` (appended as replications finish;
an existing file is resumed) and ``validation/results/sbc_summary.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.checks import rank_uniformity, sbc_simulation
from bayesclv.priors import Prior

#: Priors that replace a model's defaults in SBC, with the reason. The Pareto/GGG's default
#: ``k_cv2 ~ HalfNormal(10)`` puts most of its mass on populations with regularity shapes ``t`` below 1, whose
#: customers with k near 0 have inter-purchase times that underflow (``litt = -inf``) or more than 100,000
#: purchases in 39 weeks (the simulator refuses): 72% of default prior draws cannot be simulated and 18% give
#: non-finite ``litt`` (``--check-defaults``). Narrower, in the same families the Gibbs sampler evaluates:
#: ``k_cv2 ~ HalfNormal(0.2)`` and ``k_mean ~ LogNormal(0, 1)`` (HalfNormal(5)'s mass near 0 alone gives k near 0);
#: the purchase and dropout priors stay the defaults.
SBC_PRIORS = {"paretoggg": {"k_mean": Prior("LogNormal", mu=0.0, sigma=1.0), "k_cv2": Prior("HalfNormal", sigma=0.2)}}
# model factories (a CNBD-k's k is its structure, fixed per entry)
MODELS = {"bgnbd": bc.BetaGeoModel, "paretonbd": bc.ParetoNBDModel, "gammagamma": bc.GammaGammaModel,
          "mbgnbd": bc.ModifiedBetaGeoModel, "bgcnbd2": partial(bc.BetaGeoCNBDModel, k=2),
          "mbgcnbd2": partial(bc.ModifiedBetaGeoCNBDModel, k=2), "ggomnbd": bc.GompertzNBDModel,
          "paretoggg": partial(bc.ParetoGGGModel, priors=SBC_PRIORS["paretoggg"])}
#: the method each model is fitted with (the one users run by default); NUTS where not named
METHODS = {"paretoggg": "gibbs"}
SIMULATED = ("frequency", "recency", "litt", "monetary_value")
RESULTS = Path(__file__).parent / "results"


def base_data(n_customers: int) -> pd.DataFrame:
    """Fixed columns of every replication: T evenly over 13-39 weeks; GG frequencies 1,2,3,4,6,10.

    ``litt`` (CNBD-k) is a possible value for those histories (equal inter-purchase times), replaced by the simulation.
    """
    frequency = np.resize([1.0, 2.0, 3.0, 4.0, 6.0, 10.0], n_customers)
    df = pd.DataFrame({
        "customer_id": np.arange(n_customers),
        "frequency": frequency,
        "recency": np.full(n_customers, 13.0),
        "litt": frequency * np.log(13.0 / frequency),
        "T": np.linspace(13.0, 39.0, n_customers),
        "monetary_value": np.ones(n_customers),
    })
    df.attrs["time_unit"] = "W"
    return df


def prior_draws(model_key: str, n_customers: int, n_sims: int, seed: int) -> list[tuple[dict, dict]]:
    """(true parameters, simulated columns) of each replication, from the model's default priors."""
    model = MODELS[model_key]()
    prior = model.sample_prior_predictive(base_data(n_customers), draws=n_sims, random_seed=seed)
    cols = [c for c in SIMULATED if c in prior]
    return [({n: float(prior[n][i]) for n in model.parameter_names}, {c: prior[c].values[i] for c in cols})
            for i in range(n_sims)]


def cpu_time() -> float:
    """CPU seconds of this process (every thread) and of its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def in_child(cpu_limit: float | None, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, in a forked child that the kernel stops past ``cpu_limit`` CPU seconds.

    A compiled sampler cannot be interrupted from Python; a fit that stalls would hold its worker for
    ever. ``None``: call ``fn`` here. Raises ``TimeoutError`` when the child was stopped.
    """
    if cpu_limit is None:
        return fn(*args, **kwargs)
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)

    def target():
        limit = math.ceil(cpu_limit)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
        try:
            writer.send(("ok", fn(*args, **kwargs)))
        except Exception as exc:  # noqa: BLE001 -- passed to the parent, which raises it
            writer.send(("error", f"{type(exc).__name__}: {exc}"))

    child = ctx.Process(target=target)
    child.start()
    writer.close()
    try:
        status, value = reader.recv()
    except EOFError:
        child.join()
        raise TimeoutError(f"stopped past {cpu_limit} CPU s (exit code {child.exitcode})") from None
    child.join()
    if status == "error":
        raise RuntimeError(value)
    return value


def one(model_key: str, sim: int, truth: dict, simulated: dict, n_customers: int, seed: int,
        n_ranks: int, fit: dict, cpu_limit: float | None = None) -> dict:
    """Replication ``sim`` of ``model_key``: fit the simulated data and rank the truth (a fit past
    ``cpu_limit`` CPU seconds is stopped and recorded as failed)."""
    cls = MODELS[model_key]
    start, cpu = time.perf_counter(), cpu_time()
    row = {"model": model_key, "sim": sim, **{f"true_{k}": v for k, v in truth.items()}}
    method = METHODS.get(model_key, "nuts")
    kwargs = {**fit, "random_seed": seed + 1 + sim}
    if method == "nuts":
        kwargs.pop("thin", None)  # the NUTS fits keep every draw, as before --thin existed
    try:
        row.update(in_child(cpu_limit, sbc_simulation, cls, base_data(n_customers), truth, simulated,
                            n_ranks=n_ranks, method=method, fit_kwargs=kwargs))
        row["error"] = ""
    except Exception as exc:  # noqa: BLE001 -- recorded, not hidden: a failed fit is a finding
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
    row["seconds"] = round(time.perf_counter() - start, 2)
    # every thread of this process (the Gibbs chains run on threads); a shared machine inflates wall time
    row["cpu_seconds"] = round(cpu_time() - cpu, 2)
    return row


def summarise(ranks: pd.DataFrame, n_ranks: int, settings: dict, wall: float | None) -> dict:
    """Uniformity tests per model and parameter; ``wall`` is None when only summarising earlier runs."""
    out = {"settings": settings, "wall_seconds": None if wall is None else round(wall, 1),
           "total_replication_seconds": round(float(ranks["seconds"].sum()), 1),
           "total_replication_cpu_seconds": (round(float(ranks["cpu_seconds"].sum()), 1)
                                             if "cpu_seconds" in ranks else None),
           "load_average": os.getloadavg(),
           "reference": "Talts et al. 2018, arXiv:1804.06788", "models": {}}
    for key, make in MODELS.items():
        cls = make()
        part = ranks[(ranks["model"] == key)]
        if part.empty:
            continue
        out["models"][key] = model_entry(part, cls, n_ranks)
    return out


def model_entry(part: pd.DataFrame, model, n_ranks: int) -> dict:
    """One model's replications summarised: failures, diagnostics and the rank-uniformity test per parameter.

    ``model`` is the model (its ``priors``) or its class (its ``default_priors``), and ``parameter_names``.
    Failed replications (an ``error``) are counted, not ranked.
    """
    ok = part[part["error"].fillna("") == ""]
    priors = getattr(model, "priors", model.default_priors)
    return {"priors": {k: repr(v) for k, v in priors.items()},
            "priors_are_defaults": priors == model.default_priors,
            "n_sims": len(part), "n_failed": int(len(part) - len(ok)),
            # by exception (a fit stopped in its child raises RuntimeError carrying the child's exception)
            "failures": {k: int(v) for k, v in part["error"].dropna().loc[lambda e: e != ""].map(
                lambda e: e.removeprefix("RuntimeError: ").split(":")[0]).value_counts().items()},
            "share_divergent_fits": float((ok["divergences"] > 0).mean()),
            "share_rhat_gt_1_01": float((ok["max_r_hat"] > 1.01).mean()),
            "median_min_ess_bulk": float(ok["min_ess_bulk"].median()),
            "median_fit_seconds": float(ok["seconds"].median()),
            "parameters": {name: rank_uniformity(ok[f"rank_{name}"].astype(int).to_numpy(), n_ranks)
                           for name in model.parameter_names}}


def run_replications(jobs: list, workers: int, record) -> None:
    """Run ``(fn, *args)`` jobs in this process (``workers <= 1``, as the smoke tests do) or in a pool,
    calling ``record(k, row)`` as each finishes."""
    if workers <= 1:
        for k, (fn, *job) in enumerate(jobs, 1):
            record(k, fn(*job))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(*job) for job in jobs]
        for k, fut in enumerate(as_completed(futures), 1):
            record(k, fut.result())


def markdown(summary: dict) -> str:
    lines = [f"# SBC of {', '.join(summary['models'])} (L = {summary['settings']['n_ranks']} ranks)", "",
             (f"Settings: {json.dumps(summary['settings'])}; wall {summary['wall_seconds']} s "
              f"(replications summed: {summary['total_replication_seconds']} s wall, "
              f"{summary.get('total_replication_cpu_seconds')} CPU s); "
              f"load average {tuple(round(x, 2) for x in summary['load_average'])}."), "",
             "| model | parameter | sims | chi2 (19 df) | chi2 p | KS | KS p | divergent fits | R-hat>1.01 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, entry in summary["models"].items():
        for name, t in entry["parameters"].items():
            lines.append(f"| {key} | {name} | {t['n_sims']} | {t['chi2']:.1f} | {t['chi2_pvalue']:.3f} | "
                         f"{t['ks']:.3f} | {t['ks_pvalue']:.3f} | {entry['share_divergent_fits']:.2f} | "
                         f"{entry['share_rhat_gt_1_01']:.2f} |")
    pvalues = [t[k] for entry in summary["models"].values() for t in entry["parameters"].values()
               for k in ("chi2_pvalue", "ks_pvalue")]
    lines += ["", (f"{len(pvalues)} tests: under uniformity about {0.05 * len(pvalues):.1f} p-values below 0.05 are "
                   f"expected by chance; observed {sum(p < 0.05 for p in pvalues)}, smallest {min(pvalues):.3f} "
                   f"(Bonferroni threshold 0.05/{len(pvalues)} = {0.05 / len(pvalues):.4f}). Divergent fits: share "
                   "of replications with at least one divergent transition.")]
    for key, entry in summary["models"].items():
        if entry["n_failed"]:
            lines += ["", f"{key}: {entry['n_failed']} of {entry['n_sims']} replications failed and are not "
                          f"ranked: {entry.get('failures', {})}."]
    lines += ["", "Priors (the shipped defaults unless marked):", ""]
    lines += [f"- {key}{'' if entry.get('priors_are_defaults', True) else ' (NOT the shipped defaults)'}: "
              f"{entry['priors']}" for key, entry in summary["models"].items()]
    for key, check in summary.get("default_prior_check", {}).items():
        lines += ["", (f"{key} with its shipped default priors: of {check['n_draws']} prior draws "
                       f"({check['customers']} customers each, seed {check['seed']}) {check['refused']} could not be "
                       f"simulated ({check['example_error']!r}) and {check['nonfinite']} gave a non-finite column "
                       f"(inter-purchase times underflowing to 0: litt = -inf); hence the SBC priors above "
                       "(validation/sbc.py, SBC_PRIORS).")]
    return "\n".join(lines) + "\n"


def commit() -> str:
    """The checked-out commit (and ``+dirty`` with uncommitted changes), for the result header."""
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else "")


def default_prior_check(model_key: str, n_customers: int, n_draws: int, seed: int) -> dict:
    """How many draws of ``model_key``'s *shipped* default priors simulate usable data (finite columns)."""
    model = MODELS[model_key].func()  # the class without the SBC priors
    refused = nonfinite = 0
    example = ""
    for i in range(n_draws):
        try:
            prior = model.sample_prior_predictive(base_data(n_customers), draws=1, random_seed=seed + i)
        except Exception as exc:  # noqa: BLE001 -- counted: a refused simulation is the finding
            refused += 1
            example = example or f"{type(exc).__name__}: {exc}"[:200]
            continue
        nonfinite += not all(np.isfinite(prior[c].values).all() for c in SIMULATED if c in prior)
    return {"n_draws": n_draws, "customers": n_customers, "seed": seed, "refused": refused,
            "nonfinite": nonfinite, "example_error": example}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=99, help="L: thinned posterior draws per fit")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--thin", type=int, default=1, help="keep every thin-th Gibbs sweep (NUTS keeps all)")
    parser.add_argument("--cpu-limit", type=float, default=None,
                        help="stop a replication's fit past this many CPU seconds (recorded as failed)")
    parser.add_argument("--check-defaults", type=int, default=200,
                        help="prior draws of the shipped defaults simulated for the models with SBC_PRIORS")
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--summarise-only", action="store_true",
                        help="only summarise the replications already in sbc_ranks.csv")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ranks_path = out_dir / "sbc_ranks.csv"
    done = pd.read_csv(ranks_path) if ranks_path.exists() else pd.DataFrame(columns=["model", "sim"])
    seen = set(zip(done["model"], done["sim"].astype(int), strict=True))
    fit = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "sampler": args.sampler, "thin": args.thin}
    # simulation-major order: an interrupted run still has comparable counts of every model
    tasks = [(m, i) for i in range(args.sims) for m in args.models if (m, i) not in seen]
    if args.summarise_only:
        tasks = []
    settings = {"n_sims": args.sims, "customers": args.customers, "n_ranks": args.ranks, "seed": args.seed,
                "fit": fit, "methods": {m: METHODS.get(m, "nuts") for m in args.models}, "workers": args.workers,
                "cpu_limit": args.cpu_limit, "command": " ".join(["validation/sbc.py", *sys.argv[1:]]),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit()}
    print(f"SBC: {len(tasks)} replications to run ({len(seen)} already in {ranks_path})", flush=True)
    start = time.perf_counter()
    rows = [] if done.empty else done.to_dict("records")
    seeds = {m: args.seed + 1000 * list(MODELS).index(m) for m in args.models}
    draws = {m: prior_draws(m, args.customers, args.sims, seeds[m]) for m in args.models} if tasks else {}
    jobs = [(one, m, i, *draws[m][i], args.customers, seeds[m], args.ranks, fit, args.cpu_limit)
            for m, i in tasks]

    def record(k: int, row: dict) -> None:
        rows.append(row)
        pd.DataFrame(rows).to_csv(ranks_path, index=False)
        print(f"[{k}/{len(tasks)}] {row['model']} sim {row['sim']}: {row['seconds']} s "
              f"{row['error'] or ''} elapsed {time.perf_counter() - start:.0f} s", flush=True)

    run_replications(jobs, args.workers, record)
    ranks = pd.DataFrame(rows)
    wall = None if args.summarise_only else time.perf_counter() - start
    previous = json.loads((out_dir / "sbc_summary.json").read_text()) if args.summarise_only and (
        out_dir / "sbc_summary.json").exists() else None
    if previous:  # summarising again: the run's own settings, wall time and prior check stand
        settings = {**previous["settings"], "summarised_again_by": f"{settings['command']} at {commit()}"}
        wall = previous["wall_seconds"]
    summary = summarise(ranks, args.ranks, settings, wall)
    if previous and "default_prior_check" in previous:
        summary["default_prior_check"] = previous["default_prior_check"]
    elif args.check_defaults:
        summary["default_prior_check"] = {m: default_prior_check(m, args.customers, args.check_defaults, seeds[m])
                                          for m in args.models if m in SBC_PRIORS}
    (out_dir / "sbc_summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "sbc_summary.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
