"""bayesclv vs PyMC-Marketing on CDNOW full: NUTS wall time, peak memory, ESS/s, posteriors, predictions.

Both libraries fit the same RFM frame (CDNOW full, 39-week calibration, weeks)
with the same sampler settings (4 chains x 1000 draws after 1000 tuning steps,
chains on every available core: the peer gets ``cores=`` explicitly, since PyMC's
default of half the CPUs would give nutpie one thread on a 2-core machine)
in the same run, one fit per subprocess, one after the other, so that the
ratios compare like with like on the same (shared, noisy) machine. Each
subprocess fits one model, then times the predictions for all customers x all
draws: expected purchases in the next 39 weeks, P(alive), and a 12-month CLV
(1% per month discount; the spend model is a Gamma-Gamma MAP fit in both
libraries, so the CLV time is that of the transaction model's draws).

PyMC-Marketing is a benchmark-only dependency. It pins its own PyMC, so it
lives in a separate virtual environment, ignored by git, and runs as a
subprocess::

    uv venv benchmarks/.peer-venv --python 3.12
    uv pip install --python benchmarks/.peer-venv/bin/python "pymc-marketing==1.3.0" nutpie
    uv sync --extra nutpie
    uv run python benchmarks/peer_pymc_marketing.py            # full run: ~30-60 min on 2 cores
    uv run python benchmarks/peer_pymc_marketing.py --dataset sample --draws 200 --tune 200  # smoke run

Peak memory is the largest sum of the resident set sizes of a fit's process
tree (the subprocess and any chain processes it starts), sampled every 0.2 s;
both workers let go of each prediction's result before the next one.
The peer's Pareto/NBD NUTS is stopped after ``--peer-timeout`` seconds and
recorded as "did not finish". Convergence numbers (R-hat, bulk ESS) of both
libraries are computed here, by the same ArviZ code, from the saved draws.

Writes ``benchmarks/results/peer_pymc_marketing.json`` and ``.md`` (with the
``uptime`` load averages: the machine is shared, so absolute seconds are
inflated; the ratios are the headline).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
RESULTS = HERE / "results"
PARAMS = {"bgnbd": ("r", "alpha", "a", "b"), "paretonbd": ("r", "alpha", "s", "beta")}
NAMES = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}
HORIZON_WEEKS = 39.0


# --------------------------------------------------------------------------- workers (one fit each)
def _peak_rss_self_mb() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return usage / 1024.0


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (chain processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


CPU_SECONDS: dict[str, float] = {}  # CPU time of each timed step: less sensitive to a shared machine


def _timed(fn, label=None):
    start, cpu = time.perf_counter(), _cpu_seconds()
    value = fn()
    if label:
        CPU_SECONDS[label] = _cpu_seconds() - cpu
    return value, time.perf_counter() - start


def _posterior_draws(posterior, names) -> dict[str, list]:
    return {n: posterior[n].transpose("chain", "draw").values.tolist() for n in names}


def worker_bayesclv(model: str, sampler: str, data_csv: str, args) -> dict:
    """Fit and predict with bayesclv; returns timings and draws."""
    import pandas as pd

    import bayesclv as bc

    rfm = pd.read_csv(data_csv)
    rfm.attrs["time_unit"] = "W"
    cls = {"bgnbd": bc.BetaGeoModel, "paretonbd": bc.ParetoNBDModel}[model]
    fitted, fit_s = _timed(lambda: cls().fit(rfm, sampler=sampler, draws=args.draws, tune=args.tune,
                                             chains=args.chains, random_seed=args.seed, progressbar=False),
                            "fit")
    fit_rss = _peak_rss_self_mb()
    stats = fitted.idata["sample_stats"]
    out = {"fit_s": fit_s, "fit_rss_self_mb": fit_rss,
           "leapfrog_steps_per_draw": float(stats["n_steps" if "n_steps" in stats else "tree_size"].mean()),
           "draws": _posterior_draws(fitted.posterior, PARAMS[model]), "predict_s": {}}
    out["cpu_s"] = CPU_SECONDS
    Path(args.worker[4]).write_text(json.dumps(out))  # the fit's results survive a cap during predictions
    gg = bc.GammaGammaModel().fit(rfm, method="map", progressbar=False)
    for name, call in {
        "expected_purchases": lambda: fitted.expected_purchases(HORIZON_WEEKS).values,
        "probability_alive": lambda: fitted.probability_alive().values,
        "clv_12_months": lambda: bc.customer_lifetime_value(
            fitted, gg, horizon=12, time_unit="M", discount_rate=0.01).values,
    }.items():
        values, seconds = _timed(call, name)
        out["predict_s"][name] = seconds
        out.setdefault("prediction_means", {})[name] = float(values.mean())
        out.setdefault("prediction_shapes", {})[name] = list(values.shape)
        del values  # as in the peer's worker: the peak memory is that of one prediction at a time
    return out


def worker_peer(model: str, sampler: str, data_csv: str, args) -> dict:
    """Fit and predict with PyMC-Marketing (runs in the peer's environment)."""
    import pandas as pd
    from pymc_marketing import clv

    rfm = pd.read_csv(data_csv)
    cls = {"bgnbd": clv.BetaGeoModel, "paretonbd": clv.ParetoNBDModel}[model]
    data = rfm[["customer_id", "frequency", "recency", "T"]]
    fitted = cls()
    _, fit_s = _timed(lambda: fitted.fit(data, method="mcmc", draws=args.draws, tune=args.tune, chains=args.chains,
                                         random_seed=args.seed, nuts_sampler=sampler, progressbar=False,
                                         cores=min(args.chains, len(os.sched_getaffinity(0)))),
                      "fit")
    fit_rss = _peak_rss_self_mb()
    stats = fitted.idata["sample_stats"]
    out = {"fit_s": fit_s, "fit_rss_self_mb": fit_rss,
           "leapfrog_steps_per_draw": float(stats["n_steps" if "n_steps" in stats else "tree_size"].mean()),
           "draws": _posterior_draws(fitted.idata["posterior"], PARAMS[model]), "predict_s": {}}
    out["cpu_s"] = CPU_SECONDS
    Path(args.worker[4]).write_text(json.dumps(out))  # the fit's results survive a cap during predictions
    # the peer's spend model rejects a zero mean spend (bayesclv leaves those rows out itself)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)][["customer_id", "frequency", "monetary_value"]]
    gg = clv.GammaGammaModel()
    try:
        gg.fit(repeat, method="map", progressbar=False)
    except Exception as exc:  # keep the NUTS results; the CLV timing is then recorded as an error
        out["errors"] = {"gamma_gamma_fit": f"{type(exc).__name__}: {exc}"[:300]}
    full = rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    for name, call in {
        "expected_purchases": lambda: fitted.expected_purchases(future_t=HORIZON_WEEKS).values,
        "probability_alive": lambda: fitted.expected_probability_alive().values,
        "clv_12_months": lambda: gg.expected_customer_lifetime_value(
            fitted, data=full, future_t=12, discount_rate=0.01, time_unit="W").values,
    }.items():
        try:
            values, seconds = _timed(call, name)
        except Exception as exc:  # a failing peer prediction is a result, not a crash of the benchmark
            out.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        out["predict_s"][name] = seconds
        out.setdefault("prediction_means", {})[name] = float(values.mean())
        out.setdefault("prediction_shapes", {})[name] = list(values.shape)
        del values  # as in bayesclv's worker: the peak memory is that of one prediction at a time
    return out


# --------------------------------------------------------------------------- orchestration
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def _tree_rss_mb(pid: int) -> float:
    """Sum of the resident set sizes of ``pid`` and all its descendants (MiB)."""
    children, total, stack = _children_map(), 0.0, [pid]
    page_kib = os.sysconf("SC_PAGE_SIZE") / 1024.0
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page_kib / 1024.0
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(p, []))
    return total


def run_job(library: str, model: str, sampler: str, data_csv: str, args, timeout: float) -> dict:
    """Run one worker subprocess; add wall time, peak tree RSS and status."""
    python = str(PEER_PYTHON) if library == "pymc-marketing" else sys.executable
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out_path = fh.name
    cmd = [python, str(Path(__file__).resolve()), "--worker", library, model, sampler, data_csv, out_path,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--seed", str(args.seed)]
    print(f"[{time.strftime('%H:%M:%S')}] {library} {NAMES[model]} ({sampler}) ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    peak, status = 0.0, "ok"
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        if time.perf_counter() - start > timeout:
            os.killpg(proc.pid, 9)  # the worker's own process group: it and its chain processes
            status = f"did not finish within {timeout:.0f} s"
            break
        time.sleep(0.2)
    log = proc.communicate()[0]
    wall = time.perf_counter() - start
    result = {"library": library, "model": model, "sampler": sampler, "status": status,
              "process_wall_s": wall, "peak_rss_mb": peak}
    if status == "ok" and proc.returncode != 0:
        result["status"] = f"failed (exit {proc.returncode})"
        result["log_tail"] = log[-2000:]
    elif status == "ok":
        result.update(json.loads(Path(out_path).read_text()))
    elif Path(out_path).stat().st_size:  # stopped during its predictions: the fit itself finished
        result.update(json.loads(Path(out_path).read_text()))
        result["status"] = f"fit ok; predictions {status}"
    os.unlink(out_path)
    print(f"    -> {result['status']}; fit {result.get('fit_s', float('nan')):.1f} s, "
          f"peak RSS {peak:.0f} MB, predictions {result.get('predict_s', {})}", flush=True)
    return result


def add_convergence(result: dict) -> None:
    """R-hat, bulk ESS and posterior means from the saved draws (same ArviZ code for both libraries)."""
    import arviz_stats as azs
    import numpy as np
    import xarray as xr

    if "draws" not in result:
        return
    ds = xr.Dataset({n: (("chain", "draw"), np.asarray(v)) for n, v in result.pop("draws").items()})
    rhat, ess = azs.rhat(ds), azs.ess(ds, method="bulk")
    result["posterior_mean"] = {n: float(ds[n].mean()) for n in ds.data_vars}
    result["posterior_sd"] = {n: float(ds[n].std()) for n in ds.data_vars}
    result["max_r_hat"] = float(max(float(rhat[n]) for n in ds.data_vars))
    result["min_ess_bulk"] = float(min(float(ess[n]) for n in ds.data_vars))
    result["ess_per_s"] = result["min_ess_bulk"] / result["fit_s"]


def _fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# bayesclv vs PyMC-Marketing (same run)",
        "",
        f"Data: CDNOW {meta['dataset']} ({meta['customers']} customers, 39-week calibration, weeks). "
        f"NUTS {meta['chains']} chains x {meta['draws']} draws after {meta['tune']} tuning steps. "
        f"PyMC-Marketing {meta['peer_version']}. Machine: {meta['cpus']} CPUs, shared; load average "
        f"before {meta['load_before']}, after {meta['load_after']}. Started {meta['started']}.",
        "",
        "Seconds are wall-clock (CPU seconds of the process and its chain processes in brackets).",
        "",
        "| library | model | sampler | status | fit wall (s) | peak RSS (MB) | leapfrog steps/draw | min bulk ESS "
        "| ESS/s | max R-hat | E[purchases] (s) | P(alive) (s) | CLV 12 months (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p, c = r.get("predict_s", {}), r.get("cpu_s", {})

        def cell(wall, cpu, digits):
            return _fmt(wall, digits) + ("" if cpu is None else f" ({cpu:.{digits}f})")

        lines.append(
            f"| {r['library']} | {NAMES[r['model']]} | {r['sampler']} | {r['status']} "
            f"| {cell(r.get('fit_s'), c.get('fit'), 1)} "
            f"| {_fmt(r['peak_rss_mb'], 0)} | {_fmt(r.get('leapfrog_steps_per_draw'), 1)} "
            f"| {_fmt(r.get('min_ess_bulk'), 0)} | {_fmt(r.get('ess_per_s'), 2)} | {_fmt(r.get('max_r_hat'), 4)} | "
            + " | ".join(cell(p.get(k), c.get(k), 2)
                         for k in ("expected_purchases", "probability_alive", "clv_12_months")) + " |")
    lines += ["", "## Ratios (PyMC-Marketing / bayesclv, same run; > 1 means bayesclv is better)", "",
              "| model | bayesclv sampler | peer sampler | fit wall | fit CPU | peak RSS | ESS/s (bayesclv / peer) "
              "| E[purchases] | P(alive) | CLV |", "|---|---|---|---|---|---|---|---|---|---|"]
    for ratio in meta["ratios"]:
        lines.append(
            f"| {NAMES[ratio['model']]} | {ratio['ours']} | {ratio['peer']} | "
            + (f"{_fmt(ratio.get('fit_wall'), 1)}x " if "fit_wall_at_least" not in ratio
               else f">= {ratio['fit_wall_at_least']:.1f}x ({ratio['note']}) ")
            + 
            f"| {_fmt(ratio.get('fit_cpu'), 1)}x "
            f"| {_fmt(ratio.get('peak_rss'), 1)}x | {_fmt(ratio.get('ess_per_s'), 1)}x "
            f"| {_fmt(ratio.get('expected_purchases'), 1)}x | {_fmt(ratio.get('probability_alive'), 1)}x "
            f"| {_fmt(ratio.get('clv_12_months'), 1)}x |")
    lines += ["", "## Posterior means (sd) side by side", "",
              "| model | parameter | " + " | ".join(f"{r['library']} ({r['sampler']})" for r in results) + " |",
              "|---|---|" + "---|" * len(results)]
    for model in dict.fromkeys(r["model"] for r in results):
        for name in PARAMS[model]:
            cells = []
            for r in results:
                if r["model"] == model and "posterior_mean" in r:
                    cells.append(f"{r['posterior_mean'][name]:.4g} ({r['posterior_sd'][name]:.2g})")
                else:
                    cells.append("")
            lines.append(f"| {NAMES[model]} | {name} | " + " | ".join(cells) + " |")
    errors = [(r, e) for r in results for e in r.get("errors", {}).items()]
    if errors:
        lines += ["", "## Prediction errors", ""] + [
            f"- {r['library']} {NAMES[r['model']]}: {name}: {msg}" for r, (name, msg) in errors]
    return "\n".join(lines) + "\n"


def _ratios(results: list[dict]) -> list[dict]:
    out = []
    for peer in (r for r in results if r["library"] == "pymc-marketing"):
        for ours in (r for r in results if r["library"] == "bayesclv" and r["model"] == peer["model"]):
            ratio = {"model": peer["model"], "ours": ours["sampler"], "peer": peer["sampler"]}
            if "fit_s" in ours and "fit_s" in peer:
                ratio["fit_wall"] = peer["fit_s"] / ours["fit_s"]
                if "cpu_s" in peer and "cpu_s" in ours:
                    ratio["fit_cpu"] = peer["cpu_s"]["fit"] / ours["cpu_s"]["fit"]
                ratio["peak_rss"] = peer["peak_rss_mb"] / ours["peak_rss_mb"]
                ratio["ess_per_s"] = ours["ess_per_s"] / peer["ess_per_s"]
                for name, secs in peer.get("predict_s", {}).items():
                    if name in ours.get("predict_s", {}):
                        ratio[name] = secs / ours["predict_s"][name]
            elif "fit_s" in ours:
                # the peer did not finish: its time is at least the cap
                ratio["note"] = f"peer {peer['status']}"
                ratio["fit_wall_at_least"] = peer["process_wall_s"] / ours["fit_s"]
                ratio["peak_rss_at_least"] = peer["peak_rss_mb"] / ours["peak_rss_mb"]
            out.append(ratio)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=5, metavar=("LIBRARY", "MODEL", "SAMPLER", "DATA", "OUT"))
    parser.add_argument("--dataset", default="full", choices=("full", "sample"))
    parser.add_argument("--models", nargs="+", default=["bgnbd", "paretonbd"], choices=list(PARAMS))
    parser.add_argument("--samplers", nargs="+", default=["nutpie", "pymc"], help="bayesclv samplers")
    parser.add_argument("--peer-samplers", nargs="+", default=["nutpie"])
    parser.add_argument("--peer-timeout", type=float, default=1200.0, help="cap on a peer fit (s)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default="peer_pymc_marketing", help="results file stem")
    parser.add_argument("--render", action="store_true",
                        help="only recompute the ratios and rewrite the .md from the .json")
    args = parser.parse_args()

    if args.render:
        saved = json.loads((RESULTS / f"{args.output}.json").read_text())
        saved["meta"]["ratios"] = _ratios(saved["results"])
        (RESULTS / f"{args.output}.json").write_text(json.dumps(saved, indent=2))
        (RESULTS / f"{args.output}.md").write_text(markdown(saved["results"], saved["meta"]))
        return

    if args.worker:
        library, model, sampler, data_csv, out_path = args.worker
        worker = worker_peer if library == "pymc-marketing" else worker_bayesclv
        result = worker(model, sampler, data_csv, args)
        result["cpu_s"] = CPU_SECONDS
        Path(out_path).write_text(json.dumps(result))
        return

    import bayesclv as bc

    if not PEER_PYTHON.exists():
        sys.exit(f"no peer environment at {PEER_PYTHON}: see the commands at the top of {__file__}")
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(args.dataset), value="value", calibration_end="1997-09-30")
    data_csv = str(Path(tempfile.mkdtemp()) / "rfm.csv")
    rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]].to_csv(data_csv, index=False)
    peer_version = subprocess.run([str(PEER_PYTHON), "-c", "import pymc_marketing as m, pymc; "
                                   "print(m.__version__, '(PyMC', pymc.__version__ + ')')"],
                                  capture_output=True, text=True).stdout.strip()
    meta = {"dataset": args.dataset, "customers": len(rfm), "draws": args.draws, "tune": args.tune,
            "chains": args.chains, "peer_version": peer_version, "cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": os.getloadavg()}
    results = []
    for model in args.models:
        for sampler in args.peer_samplers:
            timeout = args.peer_timeout
            results.append(run_job("pymc-marketing", model, sampler, data_csv, args, timeout))
        for sampler in args.samplers:
            results.append(run_job("bayesclv", model, sampler, data_csv, args, timeout=3600.0))
    for r in results:
        add_convergence(r)
    meta["load_after"] = os.getloadavg()
    meta["ratios"] = _ratios(results)
    write_results(args.output, meta, results, markdown(results, meta))


def write_results(output: str, meta: dict, results: list[dict], text: str) -> None:
    """``benchmarks/results/<output>.json`` (meta and results) and ``.md`` (``text``, also printed)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{output}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (RESULTS / f"{output}.md").write_text(text)
    print(text)
    print(f"written to {RESULTS / output}.json and .md")


if __name__ == "__main__":
    main()
