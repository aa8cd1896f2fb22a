"""bayesclv vs PyMC-Marketing with static covariates: BG/NBD and Pareto/NBD, same data, same run.

Both libraries fit the CDNOW RFM frame (39-week calibration, weeks) with two
customer covariates, standardised here (mean 0, sd 1) so that both see the
same numbers: ``log_first_amount = log(1 + value of the first purchase)`` and
``first_week`` (week of the first purchase since 1997-01-01). Both use
the parameterisation ``alpha_i = alpha exp(-purchase_coef . z_i)``,
``a_i = a exp(dropout_coef_a . z_i)``, ``b_i = b exp(dropout_coef_b . z_i)``
(BG/NBD) and ``beta_i = beta exp(-dropout_coef . z_i)`` (Pareto/NBD).

Priors: the BG/NBD priors are matched (``r, a, b ~ HalfNormal(50)``,
``alpha ~ HalfNormal(500)``, each coefficient ``Normal(0, 1)``), so the two
posteriors should agree within Monte Carlo error; the table gives each
parameter's difference in units of the combined Monte Carlo standard error.
The Pareto/NBD priors cannot be matched (bayesclv puts its priors on the mean
and squared CV of the dropout rate, the peer on ``s`` and ``beta``): the
coefficients are compared all the same, as data-dominated quantities.

Every fit runs in its own subprocess, one after the other (NUTS, nutpie,
``--chains`` x ``--draws`` kept draws). Each library samples with its own
defaults, what a user gets from ``fit()``: bayesclv's covariate fits sample in
coordinates whitened at the Laplace mode with a short warm-up and its own target
acceptance (:mod:`bayesclv.models.sampling`), the peer with ``pm.sample``'s
defaults, which leave warm-up and target acceptance to nutpie (400 steps and 0.8
in nutpie 0.16); ``--tune`` forces one warm-up on both.
Both run their chains on every core (the peer gets ``cores=`` explicitly, as in
``benchmarks/peer_pymc_marketing.py``). Wall time and CPU time (the
process and its children) are measured around the fit, so the ratios compare
like with like on the same, shared machine. The peer's fits are stopped after
``--peer-timeout`` seconds and recorded as "did not finish".

    uv run python benchmarks/peer_covariates.py                      # CDNOW sample and full, 4 x 1000
    nice -n 10 uv run python benchmarks/peer_covariates.py --datasets full --models bgnbd --peer-timeout 3000

Writes ``benchmarks/results/peer_covariates_<dataset>.json`` and ``.md`` per data set.
bayesclv's likelihood with covariates is one compiled kernel over the distinct
(history, covariates) rows (:mod:`bayesclv.formulas._covariate_summed`); the
peer's is its PyTensor graph, row by row. Besides the times, each fit records
its NUTS leapfrog steps per draw and divergences, so per-gradient cost and
number of gradients can be told apart.
See ``benchmarks/peer_pymc_marketing.py`` for the peer's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
RESULTS = HERE / "results"
COVARIATES = ["log_first_amount", "first_week"]
# bayesclv name -> peer name, per model
NAMES = {
    "bgnbd": {"r": "r", "alpha": "alpha_scale", "a": "a_scale", "b": "b_scale",
              "purchase_coef": "purchase_coefficient_alpha", "dropout_coef_a": "dropout_coefficient_a",
              "dropout_coef_b": "dropout_coefficient_b"},
    "paretonbd": {"r": "r", "alpha": "alpha_scale", "s": "s", "beta": "beta_scale",
                  "purchase_coef": "purchase_coefficient", "dropout_coef": "dropout_coefficient"},
}
LABELS = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _draws(posterior, names: dict[str, str], peer: bool) -> dict[str, list]:
    """Draws ``(chain, draw[, covariate])`` of each parameter, under bayesclv's names."""
    out = {}
    for ours, theirs in names.items():
        da = posterior[theirs if peer else ours]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        out[ours] = da.transpose("chain", "draw", *extra).values.tolist()
    return out


def worker(library: str, model: str, data_csv: str, out_path: str, args) -> None:
    import pandas as pd

    rfm = pd.read_csv(data_csv)
    settings = {"draws": args.draws, "chains": args.chains, "random_seed": args.seed, "progressbar": False}
    if args.tune is not None:
        settings["tune"] = args.tune
    if library == "bayesclv":
        import bayesclv as bc
        from bayesclv.models.inference import DEFAULT_TUNE
        from bayesclv.models.sampling import WHITENED_TARGET_ACCEPT, WHITENED_TUNE

        rfm.attrs["time_unit"] = "W"
        cls = {"bgnbd": bc.BetaGeoModel, "paretonbd": bc.ParetoNBDModel}[model]
        fitted = cls(covariates=COVARIATES)
        whiten = fitted.nutpie_whiten  # fit()'s defaults follow it (models/inference.py)
        used = {"tune": settings.get("tune", WHITENED_TUNE if whiten else DEFAULT_TUNE), "whitened": whiten,
                "target_accept": WHITENED_TARGET_ACCEPT if whiten else fitted.default_target_accept}
        start, cpu = time.perf_counter(), _cpu()
        fitted.fit(rfm, **settings)
        posterior = fitted.posterior
        stats = fitted.idata["sample_stats"]
        predict = lambda: fitted.expected_purchases(39.0).values  # noqa: E731
    else:
        from pymc_extras.prior import Prior
        from pymc_marketing import clv

        config = {"purchase_covariate_cols": COVARIATES, "dropout_covariate_cols": COVARIATES,
                  "purchase_coefficient": Prior("Normal", mu=0, sigma=1),
                  "dropout_coefficient": Prior("Normal", mu=0, sigma=1)}
        if model == "bgnbd":
            config.update(r=Prior("HalfNormal", sigma=50.0), alpha=Prior("HalfNormal", sigma=500.0),
                          a=Prior("HalfNormal", sigma=50.0), b=Prior("HalfNormal", sigma=50.0))
            cls = clv.BetaGeoModel
        else:
            cls = clv.ParetoNBDModel
        fitted = cls(model_config=config)
        data = rfm[["customer_id", "frequency", "recency", "T", *COVARIATES]]
        start, cpu = time.perf_counter(), _cpu()
        fitted.fit(data, method="mcmc", nuts_sampler="nutpie", cores=min(args.chains, os.cpu_count() or 1),
                   **settings)
        posterior = fitted.idata["posterior"]
        stats = fitted.idata["sample_stats"]
        # pm.sample passes tune=None on to nutpie, whose own default applies; PyMC records the steps taken
        used = {"tune": posterior.attrs.get("tuning_steps", settings.get("tune")), "whitened": False,
                "target_accept": "nutpie's default"}
        predict = lambda: fitted.expected_purchases(future_t=39.0).values  # noqa: E731
    out = {"fit_s": time.perf_counter() - start, "fit_cpu_s": _cpu() - cpu, **used,
           "steps_per_draw": float(np.mean(stats["n_steps"].values)),
           "divergences": int(np.sum(stats["diverging"].values)),
           "draws": _draws(posterior, NAMES[model], library != "bayesclv")}
    start, cpu = time.perf_counter(), _cpu()
    values = predict()
    out.update(predict_s=time.perf_counter() - start, predict_cpu_s=_cpu() - cpu,
               expected_purchases_mean=float(np.mean(values)))
    Path(out_path).write_text(json.dumps(out))


def run(library: str, model: str, data_csv: str, args, timeout: float) -> dict:
    python = str(PEER_PYTHON) if library == "pymc-marketing" else sys.executable
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out_path = fh.name
    cmd = [python, __file__, "--worker", library, model, data_csv, out_path,
           "--draws", str(args.draws), "--chains", str(args.chains), "--seed", str(args.seed)]
    if args.tune is not None:
        cmd += ["--tune", str(args.tune)]
    start, cpu = time.perf_counter(), _children_cpu()
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:  # killed and reaped: its CPU time is in this process's children's
        return {"status": f"did not finish within {timeout:.0f} s", "wall_s": time.perf_counter() - start,
                "process_cpu_s": _children_cpu() - cpu}
    if proc.returncode != 0:
        return {"status": "error", "stderr": proc.stderr[-2000:]}
    result = json.loads(Path(out_path).read_text())
    result["status"] = "ok"
    return result


def cdnow_with_covariates(dataset: str):
    import pandas as pd

    import bayesclv as bc

    log = bc.datasets.load_cdnow(dataset)
    rfm = bc.rfm_summary(log, calibration_end="1997-09-30", time_unit="W")
    first = log.sort_values(["customer_id", "date"]).groupby("customer_id").first()
    rfm["log_first_amount"] = np.log1p(first["value"].reindex(rfm["customer_id"]).to_numpy())
    rfm["first_week"] = ((first["date"] - pd.Timestamp("1997-01-01")).dt.days // 7).reindex(rfm["customer_id"]).to_numpy()
    for col in COVARIATES:  # standardised here, so both libraries see the same numbers
        rfm[col] = (rfm[col] - rfm[col].mean()) / rfm[col].std(ddof=1)
    return rfm


def compare(ours: dict, peer: dict) -> list[dict]:
    """Per parameter (and covariate): means, sds and the difference in combined Monte Carlo standard errors."""
    import arviz_stats as azs
    import xarray as xr

    rows = []
    for name, values in ours["draws"].items():
        a, b = np.asarray(values), np.asarray(peer["draws"][name])
        a, b = a.reshape(*a.shape[:2], -1), b.reshape(*b.shape[:2], -1)
        for k in range(a.shape[2]):
            label = name if a.shape[2] == 1 else f"{name}[{COVARIATES[k]}]"
            mcse = [float(azs.mcse(xr.DataArray(x[:, :, k], dims=("chain", "draw")))) for x in (a, b)]
            diff = a[:, :, k].mean() - b[:, :, k].mean()
            rows.append({"parameter": label, "bayesclv_mean": float(a[:, :, k].mean()),
                         "bayesclv_sd": float(a[:, :, k].std()), "peer_mean": float(b[:, :, k].mean()),
                         "peer_sd": float(b[:, :, k].std()), "diff_in_mcse": float(diff / np.hypot(*mcse))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=4)
    parser.add_argument("--datasets", nargs="+", default=["sample", "full"], choices=["sample", "full"])
    parser.add_argument("--models", nargs="+", default=["bgnbd", "paretonbd"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None, help="warm-up for both (default: each library's own)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peer-timeout", type=float, default=1800.0)
    parser.add_argument("--suffix", default="", help="appended to the result files' names (a partial run)")
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args)
        return
    RESULTS.mkdir(exist_ok=True)
    for dataset in args.datasets:
        benchmark(dataset, args)


def benchmark(dataset: str, args) -> None:
    """Fit every model of ``args.models`` with both libraries on ``dataset``; write its result files."""
    rfm = cdnow_with_covariates(dataset)
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as fh:
        data_csv = fh.name
    rfm.to_csv(data_csv, index=False)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {}
    for model in args.models:
        ours = run("bayesclv", model, data_csv, args, timeout=3600.0)
        peer = run("pymc-marketing", model, data_csv, args, timeout=args.peer_timeout)
        entry = {"bayesclv": {k: v for k, v in ours.items() if k != "draws"},
                 "pymc-marketing": {k: v for k, v in peer.items() if k != "draws"}}
        if ours["status"] == "ok" and peer["status"] == "ok":
            entry["ratios"] = {k: peer[k] / ours[k] for k in ("fit_s", "fit_cpu_s", "predict_s", "predict_cpu_s")}
            entry["posterior"] = compare(ours, peer)
        elif ours["status"] == "ok" and "wall_s" in peer:  # the peer's whole process (imports too) until stopped
            entry["ratios"] = {"fit_s": f">= {peer['wall_s'] / ours['fit_s']:.1f} (process)",
                               "fit_cpu_s": f">= {peer['process_cpu_s'] / ours['fit_cpu_s']:.1f} (process)"}
        results[model] = entry
        print(LABELS[model], json.dumps(entry.get("ratios")), flush=True)
    meta = {"dataset": dataset, "customers": len(rfm), "covariates": COVARIATES, "draws": args.draws,
            "tune": args.tune, "chains": args.chains, "started": started, "load_before": load_before,
            "load_after": os.getloadavg(), "cpus": os.cpu_count()}
    stem = RESULTS / f"peer_covariates_{dataset}{args.suffix}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    stem.with_suffix(".md").write_text(markdown(meta, results))


def markdown(meta: dict, results: dict) -> str:
    lines = [f"# bayesclv vs PyMC-Marketing with covariates (same run)\n",
             f"CDNOW {meta['dataset']} ({meta['customers']} customers, 39-week calibration, weeks), covariates "
             f"{', '.join(meta['covariates'])} (standardised). NUTS (nutpie) {meta['chains']} chains x "
             f"{meta['draws']} kept draws, warm-up "
             f"{'each library' + chr(39) + 's default (table)' if meta['tune'] is None else meta['tune']}. "
             f"Started {meta['started']}; "
             f"{meta['cpus']} CPUs, shared: load average before {meta['load_before']}, after {meta['load_after']}. "
             "Wall seconds are inflated by other work on the machine; CPU seconds (process and children) "
             "and the ratios are the comparison.\n",
             "| model | library | status | fit wall (s) | fit CPU (s) | E[purchases 39 wk] wall (s) | CPU (s) | mean "
             "| leapfrog steps/draw | divergences | warm-up | target accept | whitened |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, entry in results.items():
        for lib in ("bayesclv", "pymc-marketing"):
            r = entry[lib]
            cells = [f"{r[k]:.1f}" if isinstance(r.get(k), float) else "-" for k in
                     ("fit_s", "fit_cpu_s", "predict_s", "predict_cpu_s")]
            mean = f"{r['expected_purchases_mean']:.4f}" if "expected_purchases_mean" in r else "-"
            steps = f"{r['steps_per_draw']:.1f} | {r['divergences']}" if "steps_per_draw" in r else "- | -"
            used = " | ".join(str(r.get(k, "-")) for k in ("tune", "target_accept", "whitened"))
            lines.append(f"| {LABELS[model]} | {lib} | {r['status']} | " + " | ".join(cells)
                         + f" | {mean} | {steps} | {used} |")
    lines += ["", "## Ratios (PyMC-Marketing / bayesclv; > 1: bayesclv faster)\n",
              "| model | fit wall | fit CPU | prediction wall | prediction CPU |", "|---|---|---|---|---|"]
    for model, entry in results.items():
        ratios = entry.get("ratios", {})
        cells = [f"{ratios[k]:.1f}x" if isinstance(ratios.get(k), float) else str(ratios.get(k, "-"))
                 for k in ("fit_s", "fit_cpu_s", "predict_s", "predict_cpu_s")]
        lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + " |")
    for model, entry in results.items():
        peer = entry["pymc-marketing"]
        if "process_cpu_s" in peer:
            lines.append(f"\n{LABELS[model]}: the peer's process was stopped after {peer['wall_s']:.0f} s wall, "
                         f"{peer['process_cpu_s']:.0f} CPU s (imports and model building included); '>= (process)' "
                         "ratios divide those by bayesclv's fit.")
    lines += ["", "## Posteriors side by side (difference in combined Monte Carlo standard errors)\n",
              "| model | parameter | bayesclv mean (sd) | PyMC-Marketing mean (sd) | diff / MCSE |", "|---|---|---|---|---|"]
    for model, entry in results.items():
        for row in entry.get("posterior", []):
            lines.append(f"| {LABELS[model]} | {row['parameter']} | {row['bayesclv_mean']:.4g} ({row['bayesclv_sd']:.2g}) "
                         f"| {row['peer_mean']:.4g} ({row['peer_sd']:.2g}) | {row['diff_in_mcse']:+.1f} |")
    lines.append("\nBG/NBD priors are matched; Pareto/NBD priors differ (see the script's docstring).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
