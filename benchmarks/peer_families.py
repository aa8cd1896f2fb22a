"""bayesclv vs PyMC-Marketing on the model families both offer: MBG/NBD, BG/BB, shifted-BG (same run, NUTS).

Data (each library gets the same customers in the shape it takes):

* MBG/NBD: CDNOW full (23,570 customers, 39-week calibration, weeks), the RFM frame.
* BG/BB: the donations data (Fader, Hardie & Shang 2010: 11,104 donors, 6 opportunities),
  ``bc.datasets.load_donations()``. bayesclv fits the compressed table as shipped (22 rows with
  ``weights``); the peer takes one row per customer, so it gets the table expanded to 11,104 rows.
* shifted-BG: the "regular" and "high end" segments of Fader & Hardie (2007), years 1-7
  (1,000 customers each, ``bc.datasets.load_retention()``), one parameter pair per segment
  (bayesclv ``group="segment", pooling="none"``; the peer's ``cohort``). The peer's format: a
  customer who left in year ``t`` has ``recency = t``; the survivors have ``recency = T = 8``
  (its censored shifted-geometric: lifetime >= 8, i.e. still a customer after year 7).

Priors: the peer's defaults differ (a Uniform mean and Pareto concentration per beta pair), so
it is given bayesclv's defaults through ``model_config`` (``HalfNormal(50)`` on every shape,
``HalfNormal(500)`` on the MBG/NBD's ``alpha``): the two posteriors are of the same model and
should agree within Monte Carlo error (the table gives the difference in combined Monte Carlo
standard errors).

Sampler: nutpie in both, ``--chains`` x ``--draws`` after ``--tune`` (default 4 x 1000 after
1000), chains on every available core. Each fit runs in its own subprocess, one after the
other; fit wall and CPU seconds (the process and its children), and the peak resident set size
of the process tree (sampled every 0.2 s; the subprocess only loads the data and fits) are
recorded. A peer fit still running after ``--peer-timeout`` seconds is stopped and recorded as
"did not finish". R-hat, bulk ESS and posterior means of both are computed here by the same
ArviZ code from the saved draws. ``--baseline`` then adds each worker's peak RSS when stopped right
before the fit (imports, data, model object), so that the fit's own memory (the increment) can be
told from each library's import floor. See ``benchmarks/peer_pymc_marketing.py`` for the peer's
environment (``benchmarks/.peer-venv``, PyMC-Marketing 1.3.0 and nutpie).

Both environments get their Python bytecode compiled first (``python -m compileall`` over their
site-packages and bayesclv's ``src``, as ``pip install`` does; a no-op once done): with
``PYTHONDONTWRITEBYTECODE`` set and uv's default of not compiling, every worker would otherwise
compile the source of each module it imports, and the modules a fit imports lazily (nutpie,
ArviZ, matplotlib) would put seconds of that into the fit's clock. Besides the fit, the worker's
whole CPU time (imports, data, fit, from the process start) is recorded::

    uv run python benchmarks/peer_families.py                       # all three, ~10 min on 2 cores
    uv run python benchmarks/peer_families.py --baseline            # then: the pre-fit memory floors
    uv run python benchmarks/peer_families.py --models shifted_bg --update   # re-run one family's rows
    uv run python benchmarks/peer_families.py --models shifted_bg --draws 200 --tune 200 --output smoke

Writes ``benchmarks/results/peer_families.json`` and ``.md``.
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
sys.path.insert(0, str(HERE))  # the process-tree memory, timing and convergence code of the first peer benchmark
from peer_pymc_marketing import _fmt, _timed, _tree_rss_mb, add_convergence, write_results  # noqa: E402

PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
RESULTS = HERE / "results"
NAMES = {"mbgnbd": "MBG/NBD", "bgbb": "BG/BB", "shifted_bg": "shifted-BG"}
DATA = {"mbgnbd": "CDNOW full (23,570 customers, 39-week calibration)",
        "bgbb": "donations (11,104 donors, 6 opportunities)",
        "shifted_bg": "Fader & Hardie (2007) regular + high end, years 1-7 (2 x 1,000 customers)"}
SEGMENTS = ("high end", "regular")
PARAMS = {"mbgnbd": ("r", "alpha", "a", "b"), "bgbb": ("alpha", "beta", "gamma", "delta"),
          "shifted_bg": tuple(f"{p}[{s}]" for p in ("alpha", "beta") for s in SEGMENTS)}
# bayesclv's default priors, given to the peer: (distribution, sigma)
PRIOR_SIGMA = {"mbgnbd": {"r": 50.0, "alpha": 500.0, "a": 50.0, "b": 50.0},
               "bgbb": {"alpha": 50.0, "beta": 50.0, "gamma": 50.0, "delta": 50.0},
               "shifted_bg": {"alpha": 50.0, "beta": 50.0}}


# --------------------------------------------------------------------------- data (written once, read by both)
def write_data(model: str, folder: Path) -> dict[str, str]:
    """Each library's input file for ``model``: paths by library."""
    import numpy as np
    import pandas as pd

    import bayesclv as bc
    from bayesclv.data.discrete import censor_retention

    paths = {"bayesclv": str(folder / f"{model}_bayesclv.csv"), "pymc-marketing": str(folder / f"{model}_peer.csv")}
    if model == "mbgnbd":
        rfm = bc.rfm_summary(bc.datasets.load_cdnow("full"), calibration_end="1997-09-30")
        rfm[["customer_id", "frequency", "recency", "T"]].to_csv(paths["bayesclv"], index=False)
        rfm[["customer_id", "frequency", "recency", "T"]].to_csv(paths["pymc-marketing"], index=False)
    elif model == "bgbb":
        table = bc.datasets.load_donations()
        table.to_csv(paths["bayesclv"], index=False)
        rows = table.loc[table.index.repeat(table["weights"])].reset_index(drop=True)
        peer = pd.DataFrame({"customer_id": np.arange(len(rows)), "frequency": rows["frequency"],
                             "recency": rows["recency"], "T": rows["periods"]})
        peer.to_csv(paths["pymc-marketing"], index=False)
    else:
        years = censor_retention(bc.datasets.load_retention(), 7)
        years.to_csv(paths["bayesclv"], index=False)
        horizon = years.groupby("segment")["periods"].transform("max") + 1  # T: lifetime >= T is censored
        peer = pd.DataFrame({"customer_id": years["customer_id"], "cohort": years["segment"], "T": horizon,
                             "recency": years["periods"].where(years["churned"] > 0, horizon)})
        peer.to_csv(paths["pymc-marketing"], index=False)
    return paths


# --------------------------------------------------------------------------- workers (one fit each)
def _draws(posterior, model: str) -> dict[str, list]:
    """Each parameter's (chain, draw) values; the shifted-BG's per segment as ``name[segment]``."""
    out = {}
    for name in PARAMS[model]:
        base, _, segment = name.partition("[")
        values = posterior[base]
        if segment:
            dim = next(d for d in values.dims if d not in ("chain", "draw"))
            values = values.sel({dim: segment.rstrip("]")})
        out[name] = values.transpose("chain", "draw").values.tolist()
    return out


def _sample_stats(stats) -> dict:
    return {"leapfrog_steps_per_draw": float(stats["n_steps" if "n_steps" in stats else "tree_size"].mean()),
            "divergences": int(stats["diverging"].sum())}


def worker_bayesclv(model: str, data_csv: str, args) -> dict:
    """Fit ``model`` with bayesclv (default priors)."""
    import pandas as pd

    import bayesclv as bc

    data = pd.read_csv(data_csv)
    if model != "bgbb":  # the BG/BB counts opportunities
        data.attrs["time_unit"] = {"mbgnbd": "W", "shifted_bg": "Y"}[model]
    # the class is looked up (and PyMC imported) before the clock starts, as the peer's import is
    cls, kwargs = {"mbgnbd": (bc.ModifiedBetaGeoModel, {}), "bgbb": (bc.BetaGeoBetaBinomModel, {}),
                   "shifted_bg": (bc.ShiftedBetaGeoModel, {"group": "segment", "pooling": "none"})}[model]
    if args.baseline:
        return {}
    fitted, fit_s = _timed(lambda: cls(**kwargs).fit(data, sampler="nutpie", draws=args.draws, tune=args.tune,
                                                     chains=args.chains, random_seed=args.seed, progressbar=False),
                           "fit")
    return {"fit_s": fit_s, **_sample_stats(fitted.idata["sample_stats"]), "draws": _draws(fitted.posterior, model)}


def worker_peer(model: str, data_csv: str, args) -> dict:
    """Fit ``model`` with PyMC-Marketing (runs in the peer's environment), bayesclv's priors."""
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing import clv

    data = pd.read_csv(data_csv)
    if model == "shifted_bg":
        config = {n: Prior("HalfNormal", sigma=s, dims="cohort") for n, s in PRIOR_SIGMA[model].items()}
    else:
        config = {n: Prior("HalfNormal", sigma=s) for n, s in PRIOR_SIGMA[model].items()}
    cls = {"mbgnbd": clv.ModifiedBetaGeoModel, "bgbb": clv.BetaGeoBetaBinomModel,
           "shifted_bg": clv.ShiftedBetaGeoModel}[model]
    fitted = cls(model_config=config)
    if args.baseline:
        return {}
    _, fit_s = _timed(lambda: fitted.fit(data, method="mcmc", draws=args.draws, tune=args.tune, chains=args.chains,
                                         random_seed=args.seed, nuts_sampler="nutpie", progressbar=False,
                                         cores=min(args.chains, len(os.sched_getaffinity(0)))),
                      "fit")
    posterior = fitted.idata["posterior"]
    names = set(posterior.data_vars)
    priors_used = {n: str(fitted.model_config[n]) for n in PRIOR_SIGMA[model]}
    return {"fit_s": fit_s, **_sample_stats(fitted.idata["sample_stats"]), "draws": _draws(posterior, model),
            "priors": priors_used, "posterior_variables": sorted(names)}


# --------------------------------------------------------------------------- orchestration
def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants so far (their threads included)."""
    from peer_pymc_marketing import _children_map

    children, total, stack = _children_map(), 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(p, []))
    return total


def compile_bytecode(python: str) -> None:
    """Compile the bytecode of ``python``'s site-packages (and bayesclv's ``src`` for ours), as pip install does."""
    code = ("import compileall, site, sys; ok = all(compileall.compile_dir(d, quiet=1, workers=0) "
            "for d in site.getsitepackages() + sys.argv[1:]); sys.exit(0 if ok else 1)")
    extra = [str(HERE.parent / "src")] if python == sys.executable else []
    print(f"[{time.strftime('%H:%M:%S')}] compiling the bytecode of {python} ...", flush=True)
    subprocess.run([python, "-c", code, *extra], check=False, capture_output=True)


def run_job(library: str, model: str, data_csv: str, args, timeout: float) -> dict:
    """Run one worker subprocess; add wall time, peak tree RSS and status."""
    python = str(PEER_PYTHON) if library == "pymc-marketing" else sys.executable
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out_path = fh.name
    cmd = [python, str(Path(__file__).resolve()), "--worker", library, model, data_csv, out_path,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--seed", str(args.seed)] + (["--baseline"] if args.baseline else [])
    print(f"[{time.strftime('%H:%M:%S')}] {library} {NAMES[model]} ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    peak, status, cpu_at_stop = 0.0, "ok", None
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        if time.perf_counter() - start > timeout:
            cpu_at_stop = _tree_cpu_s(proc.pid)  # what the unfinished worker had used, a lower bound
            os.killpg(proc.pid, 9)  # the worker's own process group: it and its chain processes
            status = f"did not finish within {timeout:.0f} s"
            break
        time.sleep(0.2)
    log = proc.communicate()[0]
    result = {"library": library, "model": model, "sampler": "nutpie", "status": status,
              "process_wall_s": time.perf_counter() - start, "peak_rss_mb": peak}
    if cpu_at_stop is not None:
        result["process_cpu_s_at_stop"] = cpu_at_stop
    if status == "ok" and proc.returncode != 0:
        result["status"] = f"failed (exit {proc.returncode})"
        result["log_tail"] = log[-2000:]
    elif status == "ok":
        result.update(json.loads(Path(out_path).read_text()))
    os.unlink(out_path)
    print(f"    -> {result['status']}; fit {result.get('fit_s', float('nan')):.1f} s "
          f"(CPU {result.get('cpu_s', {}).get('fit', float('nan')):.1f} s), peak RSS {peak:.0f} MB", flush=True)
    return result


def _mcse_gap(ours: dict, peer: dict, name: str) -> float | None:
    """|difference of the posterior means| in units of their combined Monte Carlo standard error."""
    if name not in ours.get("mcse", {}) or name not in peer.get("mcse", {}):
        return None
    se = (ours["mcse"][name] ** 2 + peer["mcse"][name] ** 2) ** 0.5
    return abs(ours["posterior_mean"][name] - peer["posterior_mean"][name]) / se


def add_mcse(result: dict, draws: dict) -> None:
    """Monte Carlo standard error of each posterior mean (ArviZ, from the saved draws)."""
    import arviz_stats as azs
    import numpy as np
    import xarray as xr

    ds = xr.Dataset({n: (("chain", "draw"), np.asarray(v)) for n, v in draws.items()})
    mcse = azs.mcse(ds, method="mean")
    result["mcse"] = {n: float(mcse[n]) for n in ds.data_vars}


def ratios(results: list[dict]) -> list[dict]:
    """PyMC-Marketing / bayesclv per model (> 1: bayesclv better); a peer that did not finish: at least."""
    out = []
    for peer in (r for r in results if r["library"] == "pymc-marketing"):
        ours = next((r for r in results if r["library"] == "bayesclv" and r["model"] == peer["model"]), None)
        if ours is None or "fit_s" not in ours:
            continue
        ratio = {"model": peer["model"], "peak_rss": peer["peak_rss_mb"] / ours["peak_rss_mb"]}
        if "fit_rss_increment_mb" in peer and "fit_rss_increment_mb" in ours:
            ratio["fit_rss_increment"] = peer["fit_rss_increment_mb"] / max(ours["fit_rss_increment_mb"], 1.0)
        if "fit_s" in peer:
            ratio.update(fit_wall=peer["fit_s"] / ours["fit_s"], fit_cpu=peer["cpu_s"]["fit"] / ours["cpu_s"]["fit"],
                         ess_per_s=ours["ess_per_s"] / peer["ess_per_s"])
            if "process" in peer["cpu_s"] and "process" in ours["cpu_s"]:
                ratio["process_cpu"] = peer["cpu_s"]["process"] / ours["cpu_s"]["process"]
        else:
            ratio.update(fit_wall_at_least=peer["process_wall_s"] / ours["fit_s"], note=f"peer {peer['status']}")
            if "process_cpu_s_at_stop" in peer:
                ratio["fit_cpu_at_least"] = peer["process_cpu_s_at_stop"] / ours["cpu_s"]["fit"]
        out.append(ratio)
    return out


def _load(values) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def markdown(results: list[dict], meta: dict) -> str:
    runs = meta.get("runs") or [{**{k: meta[k] for k in ("models", "started", "load_before", "load_after")},
                                 "bytecode": meta.get("bytecode", False)}]
    lines = [
        "# bayesclv vs PyMC-Marketing: MBG/NBD, BG/BB, shifted-BG (same run)", "",
        f"NUTS (nutpie in both) {meta['chains']} chains x {meta['draws']} draws after {meta['tune']} tuning steps; "
        f"the same priors (bayesclv's defaults, given to the peer). PyMC-Marketing {meta['peer_version']}. "
        f"Machine: {meta['cpus']} CPUs, shared. Each family's two fits ran in the same run, one after the other: "
        + "; ".join(f"{', '.join(NAMES[m] for m in run['models'])}: started {run['started']}, load average "
                    f"before {_load(run['load_before'])}, after {_load(run['load_after'])}"
                    + ("" if run.get("bytecode", False) else " (source compiled on import: no bytecode)")
                    for run in runs) + ".", "",
        "Data: " + "; ".join(f"{NAMES[m]}: {DATA[m]}" for m in meta["models"]) + ".", "",
        "Fit seconds are wall-clock (CPU seconds of the process and its children in brackets); process CPU is the "
        "worker's whole CPU time (imports, data, fit) where recorded; peak RSS is the "
        "largest resident set size of the fitting process tree; 'before the fit' is the peak of the same worker "
        "stopped right before the fit (imports, data, model object: the floor of each library's process), so the "
        "difference is the fit's own memory.", "",
        "| library | model | status | fit wall (s) | process CPU (s) | peak RSS (MB) | of which before the fit (MB) "
        "| leapfrog steps/draw | divergences | min bulk ESS | ESS/s | max R-hat |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu = r.get("cpu_s", {}).get("fit")
        fit = _fmt(r.get("fit_s")) + ("" if cpu is None else f" ({cpu:.1f})")
        if "process_cpu_s_at_stop" in r:  # stopped: its wall and CPU seconds so far are lower bounds
            fit = f"> {r['process_wall_s']:.0f} (> {r['process_cpu_s_at_stop']:.0f})"
        lines.append(f"| {r['library']} | {NAMES[r['model']]} | {r['status']} | {fit} "
                     f"| {_fmt(r.get('cpu_s', {}).get('process'))} | {_fmt(r['peak_rss_mb'], 0)} "
                     f"| {_fmt(r.get('baseline_rss_mb'), 0)} | {_fmt(r.get('leapfrog_steps_per_draw'))} "
                     f"| {r.get('divergences', '-')} "
                     f"| {_fmt(r.get('min_ess_bulk'), 0)} | {_fmt(r.get('ess_per_s'), 2)} "
                     f"| {_fmt(r.get('max_r_hat'), 4)} |")
    lines += ["", "## Ratios (PyMC-Marketing / bayesclv, same run; > 1 means bayesclv is better)", "",
              "| model | fit wall | fit CPU | process CPU | peak RSS | peak RSS above the pre-fit level "
              "| ESS/s (bayesclv / peer) |",
              "|---|---|---|---|---|---|---|"]
    for q in meta["ratios"]:
        wall = (f"{q['fit_wall']:.1f}x" if "fit_wall" in q
                else f">= {q['fit_wall_at_least']:.1f}x ({q['note']})")
        cpu = (f"{q['fit_cpu']:.1f}x" if "fit_cpu" in q
               else f">= {q['fit_cpu_at_least']:.1f}x" if "fit_cpu_at_least" in q else "-")
        ess = f"{q['ess_per_s']:.1f}x" if "ess_per_s" in q else "-"
        increment = f"{q['fit_rss_increment']:.1f}x" if "fit_rss_increment" in q else "-"
        process = f"{q['process_cpu']:.1f}x" if "process_cpu" in q else "-"
        lines.append(f"| {NAMES[q['model']]} | {wall} | {cpu} | {process} | {q['peak_rss']:.1f}x | {increment} "
                     f"| {ess} |")
    lines += ["", "## Posterior means (sd) side by side", "",
              "| model | parameter | bayesclv | PyMC-Marketing | difference / combined MCSE |", "|---|---|---|---|---|"]
    for model in meta["models"]:
        ours = next((r for r in results if r["library"] == "bayesclv" and r["model"] == model), {})
        peer = next((r for r in results if r["library"] == "pymc-marketing" and r["model"] == model), {})
        for name in PARAMS[model]:
            cells = [f"{r['posterior_mean'][name]:.4g} ({r['posterior_sd'][name]:.2g})" if "posterior_mean" in r
                     else "-" for r in (ours, peer)]
            gap = _mcse_gap(ours, peer, name)
            lines.append(f"| {NAMES[model]} | {name} | {cells[0]} | {cells[1]} | {_fmt(gap, 2)} |")
    return "\n".join(lines) + "\n"


def add_baselines(args) -> None:
    """Peak RSS of each library's worker that stops right before the fit, added to the saved results."""
    path = RESULTS / f"{args.output}.json"
    saved = json.loads(path.read_text())
    folder = Path(tempfile.mkdtemp())
    for model in [m for m in saved["meta"]["models"] if not args.update or m in args.models]:
        paths = write_data(model, folder)
        for r in saved["results"]:
            if r["model"] == model:
                job = run_job(r["library"], model, paths[r["library"]], args, timeout=600.0)
                r["baseline_rss_mb"] = job["peak_rss_mb"]
                r["fit_rss_increment_mb"] = r["peak_rss_mb"] - job["peak_rss_mb"]
    saved["meta"]["ratios"] = ratios(saved["results"])
    path.write_text(json.dumps(saved, indent=2))
    (RESULTS / f"{args.output}.md").write_text(markdown(saved["results"], saved["meta"]))
    print(markdown(saved["results"], saved["meta"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("LIBRARY", "MODEL", "DATA", "OUT"))
    parser.add_argument("--models", nargs="+", default=list(NAMES), choices=list(NAMES))
    parser.add_argument("--peer-timeout", type=float, default=1200.0, help="cap on a peer fit (s)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default="peer_families", help="results file stem")
    parser.add_argument("--update", action="store_true",
                        help="replace only the rows of --models in the saved results (the others keep their run)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="do not compile the environments' bytecode first (see the module docstring)")
    parser.add_argument("--baseline", action="store_true",
                        help="add to the saved results each worker's peak RSS up to the fit (imports, data, "
                             "model object), and rewrite the .md (with --update: for --models only)")
    args = parser.parse_args()

    if args.worker:
        library, model, data_csv, out_path = args.worker
        import peer_pymc_marketing as timing

        result = (worker_peer if library == "pymc-marketing" else worker_bayesclv)(model, data_csv, args)
        result["cpu_s"] = {**timing.CPU_SECONDS, "process": timing._cpu_seconds()}  # imports, data and fit
        Path(out_path).write_text(json.dumps(result))
        return

    if args.baseline and not args.worker:
        add_baselines(args)
        return
    if not PEER_PYTHON.exists():
        sys.exit(f"no peer environment at {PEER_PYTHON}: see the commands at the top of peer_pymc_marketing.py")
    if not args.no_bytecode:
        compile_bytecode(str(PEER_PYTHON))
        compile_bytecode(sys.executable)
    folder = Path(tempfile.mkdtemp())
    peer_version = subprocess.run([str(PEER_PYTHON), "-c", "import pymc_marketing as m, pymc; "
                                   "print(m.__version__, '(PyMC', pymc.__version__ + ')')"],
                                  capture_output=True, text=True).stdout.strip()
    meta = {"models": args.models, "draws": args.draws, "tune": args.tune, "chains": args.chains,
            "peer_version": peer_version, "cpus": os.cpu_count(), "peer_timeout_s": args.peer_timeout,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()}
    results = []
    for model in args.models:
        paths = write_data(model, folder)
        results.append(run_job("pymc-marketing", model, paths["pymc-marketing"], args, args.peer_timeout))
        results.append(run_job("bayesclv", model, paths["bayesclv"], args, timeout=3600.0))
    for r in results:
        draws = r.get("draws")
        add_convergence(r)  # pops the draws
        if draws:
            add_mcse(r, draws)
    meta["load_after"] = os.getloadavg()
    meta["bytecode"] = not args.no_bytecode
    if args.update:
        meta, results = merged(args.output, meta, results)
    meta["ratios"] = ratios(results)
    write_results(args.output, meta, results, markdown(results, meta))


def merged(output: str, meta: dict, results: list[dict]) -> tuple[dict, list[dict]]:
    """The saved results of ``output`` with this run's families replaced, and the runs each row comes from."""
    path = RESULTS / f"{output}.json"
    if not path.exists():
        return meta, results
    saved = json.loads(path.read_text())
    old = saved["meta"]
    if (old["draws"], old["tune"], old["chains"]) != (meta["draws"], meta["tune"], meta["chains"]):
        sys.exit(f"--update: {path} has other sampler settings; re-run all families or use another --output")
    run = {k: meta[k] for k in ("models", "started", "load_before", "load_after", "bytecode")}
    runs = [{**r, "models": [m for m in r["models"] if m not in meta["models"]]}
            for r in old.get("runs") or [{**{k: old.get(k) for k in ("models", "started", "load_before", "load_after")},
                                          "bytecode": old.get("bytecode", False)}]]
    kept = [r for r in saved["results"] if r["model"] not in meta["models"]]
    models = [m for m in NAMES if m in old["models"] or m in meta["models"]]
    order = {m: i for i, m in enumerate(models)}
    results = sorted(kept + results, key=lambda r: order[r["model"]])
    return {**meta, "models": models, "runs": [r for r in runs if r["models"]] + [run]}, results


if __name__ == "__main__":
    main()
