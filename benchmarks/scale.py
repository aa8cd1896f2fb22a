"""Scale benchmark: fits on 1M customers, bounded-memory CLV summaries for 100k / 1M / 10M customers.

Customer bases are simulated by :mod:`bayesclv.datasets.synthetic` (BG/NBD purchases and
Gamma-Gamma spend at the published CDNOW estimates; first purchases on whole
days over 12 weeks, observation to week 39, recorded in weeks at day
resolution). Every step runs in its own subprocess so that its wall time and
peak memory are its own: peak RSS is ``ru_maxrss`` of the subprocess (from
``os.wait4``) and, for steps that start worker processes (NUTS chains), the
largest sum of RSS over the process tree, polled every 0.1 s.

Steps::

    uv run python benchmarks/scale.py fit [N]             # NUTS on 1M (or N): BG/NBD, Gamma-Gamma, Pareto/NBD
    uv run python benchmarks/scale.py fit N --only hierarchical --tune 5000 --draws 20  # HB by minibatch ADVI
    uv run python benchmarks/scale.py resolution          # MAP on 1M: continuous-time vs day-resolution data
    uv run python benchmarks/scale.py predict 100000 --draws 1000
    uv run python benchmarks/scale.py predict 10000000 --draws 250 [--dask]
    uv run python benchmarks/scale.py report              # results -> markdown table

``predict`` loads the posteriors written by ``fit`` (under ``--work``, default
``/tmp/bayesclv-scale``), simulates the N customers and times P(alive) and
1-year CLV summaries (mean, sd, 90% ETI; ``CLV_ARGS``) for all of them. ``--draws`` is the
number of posterior draws per chain used (4 chains). ``--dask`` writes the
customers to Parquet first and runs the dask path (``dd.read_parquet`` ->
summaries -> ``to_parquet``), so not even the customer table is held in memory.

Each step merges its numbers into ``benchmarks/results/scale.json``; ``report``
writes ``benchmarks/results/scale.md``. Load averages (``uptime``) are recorded
with every timing: the machine is shared and timings are inflated by other load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
JSON_PATH = RESULTS / "scale.json"
SEED = 2024
FIT_CUSTOMERS = 1_000_000
SPEND_FIT_CUSTOMERS = 100_000  # customers of the posterior that predictions are timed with
FITS = ["bgnbd", "gammagamma", "paretonbd", "hierarchical"]
#: hierarchical Pareto/NBD simulated for the ADVI fit (as in validation/hierarchical_recovery.py)
HB_TRUTH = {"coefficients": [[-2.3, -3.2], [0.5, -0.4]], "sigma": [0.8, 0.7], "correlation": 0.3}
HB_BATCHES_PER_EPOCH = 50  # minibatch ADVI: batches of customers / 50, so cost per visit is the same at any N
CHUNK = 1_000_000
#: CLV over the next year, one annual period discounted at 10% (one expectation per customer and draw)
CLV_ARGS = {"horizon": 1, "time_unit": "Y", "discount_rate": 0.1}


# --------------------------------------------------------------------------- measurement (parent)
def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measured(args: list[str]) -> dict:
    """Run ``scale.py _child <args>`` in a subprocess; its result plus wall time and peak memory."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bayesclv-scale-{os.getpid()}.json"
    out.unlink(missing_ok=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "_child", str(out), *args])
    peak = [0]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"step {args} failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    out.unlink()
    result.update({
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "peak_tree_rss_mb": round(peak[0] / 2**20, 1),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    })
    return result


def merge(key: str, value: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    results = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    results[key] = value
    JSON_PATH.write_text(json.dumps(results, indent=2, default=str))
    print(f"{key}: {json.dumps(value, default=str)}\nmerged into {JSON_PATH}", flush=True)


# --------------------------------------------------------------------------- steps (child)
def _customers(n: int):
    from bayesclv.datasets.synthetic import PUBLISHED_PARAMS, synthetic_rfm

    return synthetic_rfm(n, model="bgnbd", spend_params=PUBLISHED_PARAMS["gammagamma"], random_seed=SEED,
                         chunk_customers=CHUNK)


def child_fit(work: Path, what: str, draws: int, tune: int, chains: int, n: int = FIT_CUSTOMERS) -> dict:
    import numpy as np

    import bayesclv as bc
    from bayesclv.datasets.synthetic import PUBLISHED_PARAMS, synthetic_rfm
    from bayesclv.models.engine import compress_rows

    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if what == "paretonbd":
        rfm = synthetic_rfm(n, model="paretonbd", random_seed=SEED, chunk_customers=CHUNK)
    else:
        rfm = _customers(n)
    result = {"customers": len(rfm), "generate_s": round(time.perf_counter() - t0, 2)}
    nuts = f"nutpie NUTS, {chains} chains x {draws} draws after {tune} tuning steps"
    if what in ("bgnbd", "paretonbd"):
        cls = bc.BetaGeoModel if what == "bgnbd" else bc.ParetoNBDModel
        result["distinct_histories"] = len(compress_rows(rfm, ["frequency", "recency", "T"])[0])
        t0 = time.perf_counter()
        model = cls().fit(rfm, chains=chains, draws=draws, tune=tune, random_seed=SEED, progressbar=False)
    elif what == "gammagamma":
        buyers = rfm[rfm["frequency"] > 0]
        result["repeat_buyers"] = len(buyers)
        result["distinct_histories"] = len(compress_rows(buyers, ["frequency", "monetary_value"])[0])
        t0 = time.perf_counter()
        model = bc.GammaGammaModel().fit(rfm, chains=chains, draws=draws, tune=tune, random_seed=SEED,
                                         progressbar=False)
    else:  # the individual-level hierarchical Pareto/NBD: two latent rates per customer, by ADVI
        import pandas as pd

        from bayesclv.simulate import simulate_hierarchical_paretonbd

        rng = np.random.default_rng(SEED)
        x, T = rng.normal(size=n), np.round(rng.uniform(26, 52, size=n))
        sd, corr = np.asarray(HB_TRUTH["sigma"]), HB_TRUTH["correlation"]
        cov = np.array([[1.0, corr], [corr, 1.0]]) * np.outer(sd, sd)
        sim = simulate_hierarchical_paretonbd(T, HB_TRUTH["coefficients"], cov,
                                              covariates=np.column_stack([np.ones(len(x)), x]), rng=rng)
        rfm = pd.DataFrame({"customer_id": np.arange(len(x)), "frequency": sim["frequency"],
                            "recency": sim["recency"], "T": T, "x": x})
        rfm.attrs["time_unit"] = "W"
        result.update(customers=len(rfm), latent_parameters=2 * len(rfm), truth=HB_TRUTH)
        batch = max(n // HB_BATCHES_PER_EPOCH, 1)
        t0 = time.perf_counter()
        model = bc.HierarchicalParetoNBDModel(covariates=["x"]).fit(
            rfm, method="advi", batch_size=batch, draws=draws, tune=tune, random_seed=SEED, progressbar=False)
        result["fit_s"] = round(time.perf_counter() - t0, 1)
        result["sampler"] = (f"minibatch ADVI, {tune * 10} steps of {batch:,} customers "
                             f"({tune * 10 * batch // n} visits per customer), {draws} draws")
        result["diagnostics"] = dict(model.diagnostics)
        table = model.summary()
        result["hyperparameters"] = {k: {"mean": round(float(table.loc[k, "mean"]), 4),
                                         "sd": round(float(table.loc[k, "sd"]), 4)} for k in table.index}
        return result
    result["fit_s"] = round(time.perf_counter() - t0, 1)
    result["sampler"] = nuts
    result["diagnostics"] = dict(model.diagnostics)
    result["posterior"] = _posterior_table(model, PUBLISHED_PARAMS[what])
    model.save(work / f"{what}.nc", overwrite=True)
    return result


def child_resolution() -> dict:
    """MAP on 1M customers recorded in continuous time and at day resolution (as the fits above see them).

    Separates what recording purchases on whole days does to the estimates
    from the likelihood: the continuous-time histories come straight from the
    population simulators, the day-resolution ones from ``synthetic_rfm``.
    """
    import numpy as np
    import pandas as pd

    import bayesclv as bc
    from bayesclv.datasets.synthetic import PUBLISHED_PARAMS, synthetic_rfm
    from bayesclv.simulate import simulate_bgnbd, simulate_paretonbd

    rng = np.random.default_rng(SEED)
    T = 39.0 - rng.integers(0, 84, FIT_CUSTOMERS) / 7.0  # first purchases over 12 weeks, observed to week 39
    result = {}
    for name, simulate, cls in (("bgnbd", simulate_bgnbd, bc.BetaGeoModel),
                                ("paretonbd", simulate_paretonbd, bc.ParetoNBDModel)):
        sim = simulate(T, **PUBLISHED_PARAMS[name], rng=rng)
        continuous = pd.DataFrame({"customer_id": np.arange(FIT_CUSTOMERS), "frequency": sim["frequency"],
                                   "recency": sim["recency"], "T": T})
        continuous.attrs["time_unit"] = "W"
        days = synthetic_rfm(FIT_CUSTOMERS, model=name, random_seed=SEED, chunk_customers=CHUNK)
        result[name] = {"true": PUBLISHED_PARAMS[name], **{
            label: {k: round(float(v), 4) for k, v in cls().fit(df, method="map", progressbar=False)
                    .summary()["mean"].items()}
            for label, df in (("continuous_time_map", continuous), ("day_resolution_map", days))}}
    return result


def _posterior_table(model, truth: dict) -> dict:
    table = model.summary(prob=0.9, method="hdi").rename(columns={"lower": "hdi_lower", "upper": "hdi_upper"})
    return {name: {"true": truth[name], **{c: round(float(table.loc[name, c]), 4)
                                          for c in ("mean", "sd", "hdi_lower", "hdi_upper", "r_hat")}}
            for name in table.index}


def child_posterior(work: Path) -> dict:
    """Posteriors that predictions are timed with: MAP on 100k synthetic customers, jittered to 4 x 1000 draws.

    Prediction cost depends on the number of draws, not on their values, so
    this stands in for a NUTS posterior at a fraction of the cost.
    """
    import numpy as np

    import bayesclv as bc
    from bayesclv.testing import jittered_posterior

    work.mkdir(parents=True, exist_ok=True)
    rfm = _customers(SPEND_FIT_CUSTOMERS)
    rng = np.random.default_rng(SEED)
    result = {"customers": len(rfm), "draws": "4 x 1000 (MAP x 1% jitter)"}
    for cls, name in ((bc.BetaGeoModel, "bgnbd"), (bc.GammaGammaModel, "gammagamma")):
        model = jittered_posterior(cls().fit(rfm, method="map", progressbar=False), random_seed=rng)
        model.save(work / f"predict-{name}.nc", overwrite=True)
        result[name] = {k: round(float(v), 4) for k, v in model.summary()["mean"].items()}
    return result


def child_predict(work: Path, n: int, draws: int, use_dask: bool, quantities: list[str]) -> dict:
    import bayesclv as bc
    from bayesclv import scale
    from bayesclv.datasets.synthetic import PUBLISHED_PARAMS, iter_synthetic_rfm

    bg, gg = bc.load(work / "predict-bgnbd.nc"), bc.load(work / "predict-gammagamma.nc")
    clv_args = CLV_ARGS
    result = {"customers": n, "draws_per_chain": draws, "chains": 4, "path": "dask" if use_dask else "pandas"}
    t0 = time.perf_counter()
    if use_dask:
        import dask.dataframe as dd

        folder = work / f"customers-{n}"
        if not folder.exists():
            folder.mkdir(parents=True)
            for i, chunk in enumerate(iter_synthetic_rfm(n, spend_params=PUBLISHED_PARAMS["gammagamma"],
                                                         random_seed=SEED, chunk_customers=CHUNK)):
                chunk.to_parquet(folder / f"part-{i:04d}.parquet")
        data = dd.read_parquet(folder)
    else:
        data = _customers(n)
    result["generate_s"] = round(time.perf_counter() - t0, 2)

    for name, call in {
        "probability_alive": lambda: scale.predict_summary(bg, "probability_alive", data, draws=draws,
                                                           progressbar=False),
        "clv_1_year": lambda: scale.clv_summary(bg, gg, data, draws=draws, progressbar=False, **clv_args),
    }.items():
        if name not in quantities:
            continue
        t0 = time.perf_counter()
        summary = call()
        if use_dask:
            target = work / f"summary-{name}-{n}"
            summary.repartition(npartitions=max(1, n // CHUNK)).to_parquet(target, overwrite=True)
            rows = len(dd.read_parquet(target).index)
            mean_total = float(dd.read_parquet(target)["mean"].sum().compute())
        else:
            rows, mean_total = len(summary), float(summary["mean"].sum())
        seconds = time.perf_counter() - t0
        result[name] = {"seconds": round(seconds, 2), "us_per_customer": round(seconds / n * 1e6, 2),
                        "rows": rows, "mean_of_means": round(mean_total / rows, 6)}
        del summary
    return result


# --------------------------------------------------------------------------- report
def report() -> None:
    results = json.loads(JSON_PATH.read_text())
    lines = ["# Scale benchmark (benchmarks/scale.py)", "",
             "Synthetic BG/NBD + Gamma-Gamma customers (CDNOW estimates, day resolution in weeks); "
             "2 shared CPU cores; load averages recorded per row. Peak RSS: ru_maxrss of the step's "
             "process; tree: largest sum over its process tree (NUTS chain workers included).", ""]
    fits = {k: v for k, v in results.items() if k.startswith("fit_")}
    if fits:
        lines += ["## Fits on 1M customers", "",
                  "| step | customers | distinct rows (latent rates) | wall (s) | fit (s) | peak RSS (MB) | tree peak (MB) "
                  "| diagnostics | load (1 min) |", "|---|---|---|---|---|---|---|---|---|"]
        for key, r in fits.items():
            diag = r.get("diagnostics", {})
            diag_text = (f"R-hat {diag['max_r_hat']:.4f}, ESS {diag['min_ess_bulk']:.0f}, div "
                         f"{diag['divergences']}" if "max_r_hat" in diag else r.get("sampler", "-"))
            if "elbo_rise" in diag:
                diag_text += (f"; over the last tenth ELBO rise {diag['elbo_rise']:.4f} nats/customer -> "
                              f"{'converged' if diag['ok'] else 'NOT converged'} (population parameters moved "
                              f"{diag['drift']:.2f} sds)")
            rows = r.get("distinct_histories", r.get("latent_parameters"))
            lines.append(f"| {key} | {r['customers']:,} | {rows:,} | {r['wall_s']} | {r.get('fit_s', '-')} | "
                         f"{r['peak_rss_mb']} | {r['peak_tree_rss_mb']} | {diag_text} | "
                         f"{r['load_avg_before'][0]} |")
        lines.append("")
        for key, r in fits.items():
            if "posterior" in r:
                lines += [f"Posterior ({key}) vs the simulated truth:", "",
                          "| parameter | true | mean | sd | 90% HDI | R-hat |", "|---|---|---|---|---|---|"]
                for name, p in r["posterior"].items():
                    lines.append(f"| {name} | {p['true']} | {p['mean']} | {p['sd']} | "
                                 f"[{p['hdi_lower']}, {p['hdi_upper']}] | {p['r_hat']} |")
                lines.append("")
        for key, r in fits.items():
            if "hyperparameters" in r:
                truth = _hb_truth_by_name(r["truth"])
                lines += [f"Hyperparameters ({key}, minibatch ADVI) vs the simulated truth:", "",
                          "| parameter | true | mean | sd (of the approximation) |", "|---|---|---|---|",
                          *(f"| {name} | {truth.get(name, '-')} | {v['mean']} | {v['sd']} |"
                            for name, v in r["hyperparameters"].items()), ""]
    if "resolution" in results:
        lines += ["MAP on 1M simulated customers, recorded in continuous time and at day resolution "
                  "(`scale.py resolution`):", "", "| model | parameter | true | continuous time | day resolution |",
                  "|---|---|---|---|---|"]
        for model, r in results["resolution"].items():
            if not isinstance(r, dict) or "true" not in r:
                continue
            for name, value in r["true"].items():
                lines.append(f"| {model} | {name} | {value} | {r['continuous_time_map'][name]} | "
                             f"{r['day_resolution_map'][name]} |")
        lines.append("")
    preds = sorted((v for k, v in results.items() if k.startswith("predict_")),
                   key=lambda r: (r["path"], r["draws_per_chain"], r["customers"]))
    if preds:
        lines += ["## Per-customer summaries (mean, sd, 90% ETI) for all customers", "",
                  "| path | customers | draws | P(alive) (s) | P(alive) ns/(customer x draw) | "
                  "cost ratio vs smallest | CLV 1 year (s) | CLV us/customer | peak RSS (MB) | load (1 min) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        base = {}
        for r in preds:
            n_draws = r["chains"] * r["draws_per_chain"]
            group = (r["path"], r["draws_per_chain"])
            palive = r.get("probability_alive", {})
            per_palive = palive.get("seconds", float("nan")) / (r["customers"] * n_draws) * 1e9
            base.setdefault(group, per_palive)
            clv = r.get("clv_1_year", {})
            lines.append(f"| {r['path']} | {r['customers']:,} | {n_draws} | {palive.get('seconds', '-')} | "
                         f"{per_palive:.1f} | {per_palive / base[group]:.2f} | {clv.get('seconds', '-')} | "
                         f"{clv.get('us_per_customer', '-')} | {r['peak_rss_mb']} | {r['load_avg_before'][0]} |")
        lines.append("")
        lines.append("Cost ratio: P(alive) seconds per customer and draw relative to the smallest run with "
                     "the same path and draws (1.00 = linear).")
    if results.get("notes"):
        lines += ["", "## Notes", "", *(f"- {note}" for note in results["notes"])]
    (RESULTS / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _hb_truth_by_name(truth: dict) -> dict[str, float]:
    """The simulated hierarchical Pareto/NBD truth under the names of ``model.summary()``."""
    out = {}
    for i, covariate in enumerate(("intercept", "x")):
        for j, process in enumerate(("purchase", "dropout")):
            out[f"coefficients[{covariate}, {process}]"] = truth["coefficients"][i][j]
    out.update({"sigma[purchase]": truth["sigma"][0], "sigma[dropout]": truth["sigma"][1],
                "correlation": truth["correlation"]})
    return out


# --------------------------------------------------------------------------- entry point
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        out, step, *rest = sys.argv[2:]
        work = Path(rest[0])
        if step == "fit":
            result = child_fit(work, rest[1], int(rest[2]), int(rest[3]), int(rest[4]), int(rest[5]))
        elif step == "posterior":
            result = child_posterior(work)
        elif step == "resolution":
            result = child_resolution()
        else:
            result = child_predict(work, int(rest[1]), int(rest[2]), rest[3] == "dask", rest[4].split(","))
        Path(out).write_text(json.dumps(result, default=str))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["fit", "resolution", "posterior", "predict", "report"])
    parser.add_argument("customers", nargs="?", type=int, default=FIT_CUSTOMERS)
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps (fit)")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains (fit)")
    parser.add_argument("--dask", action="store_true", help="predict from Parquet through dask")
    parser.add_argument("--quantities", default="probability_alive,clv_1_year",
                        help="comma-separated summaries to time (predict)")
    parser.add_argument("--only", choices=FITS, help="one fit")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bayesclv-scale"))
    args = parser.parse_args()
    if args.step == "fit":
        for what in [args.only] if args.only else FITS:
            settings = [str(args.draws), str(args.tune), str(args.chains), str(args.customers)]
            suffix = "" if args.customers == FIT_CUSTOMERS else f"_{args.customers}"
            merge(f"fit_{what}{suffix}", measured(["fit", str(args.work), what, *settings]))
    elif args.step == "posterior":
        merge("posterior_for_predictions", measured(["posterior", str(args.work)]))
    elif args.step == "resolution":
        merge("resolution", measured(["resolution", str(args.work)]))
    elif args.step == "predict":
        path = "dask" if args.dask else "pandas"
        merge(f"predict_{path}_{args.customers}_{args.draws}",
              measured(["predict", str(args.work), str(args.customers), str(args.draws), path, args.quantities]))
    report()


if __name__ == "__main__":
    main()
