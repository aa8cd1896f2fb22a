"""The grouped GGom/NBD in its window coordinates against the same model in its old log-mean coordinates.

Commit 19ee9d2 moved the partially pooled GGom/NBD's population triple ``(log_b_mean,
log_dropout_mean_mean, log_dropout_cv2_mean)``, each sampled as its own ``Normal(0, 3)`` variable,
into ``DropoutWindow``'s coordinates. A change of sampling coordinates must keep the posterior; two checks:

1. **Densities through the change of variables** (cheap, decisive) on the CDNOW sample grouped by
   first-purchase week (13 cohorts): at random points of the old coordinates, the new model's log
   density (Jacobian included) at the mapped point plus ``log |d(w, l_m, u) / d(l_b, l_m, l_c)| =
   log(x e^x / (e^x - 1))`` (``x = e^l_b``) must equal the old model's log density.
2. **Posterior means from both samplers** on a simulated grouped data set small enough for the old
   coordinates (whose default fit did not finish in 587 CPU s on the CDNOW sample,
   ``ggomnbd_grouped_cdnow.md``): ``GROUPS`` groups of customers drawn from the GGom/NBD with ``b``
   well inside the data's ages, each group's parameters shifted a little; whole-week recencies so
   that the summed kernel compresses rows. Each coordinate system fitted by NUTS (nutpie, the
   model's defaults but ``--draws``/``--tune``); per parameter (population and per group) the gap of
   the two posterior means over the combined Monte Carlo standard error, ``z = (m_new - m_old) /
   sqrt(mcse_new^2 + mcse_old^2)``.

The old coordinates live here only (recovered from ``git show 19ee9d2^:src/bayesclv/models/ggomnbd.py``:
``b, mean, cv2 = (self._quantity(n) for n in _DROPOUT)``), not in the package.

Usage::

    nice -n 10 uv run python validation/ggomnbd_grouped_coordinates.py [--points 20] [--customers 250]
        [--draws 1000 --tune 1000] [--seed 2026] [--skip-sampling]

Writes ``validation/results/ggomnbd_grouped_coordinates_<dataset>.json`` and ``.md`` (dataset:
``cdnow_sample`` for the density check, ``simulated`` for the sampling comparison; one file pair each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt

import bayesclv as bc
from bayesclv.formulas import ggomnbd

RESULTS = Path(__file__).parent / "results"
MEANS = ("log_b_mean", "log_dropout_mean_mean", "log_dropout_cv2_mean")
QUANTITIES = ("r", "alpha", "b", "dropout_mean", "dropout_cv2")
#: the simulated population (per week): dropout_mean = s b / beta = 0.05, b T ~ 1.2-2: the hazard rises
POPULATION = {"r": 0.6, "alpha": 8.0, "b": 0.04, "s": 0.8, "beta": 0.64}
GROUPS = {"g1": 30.0, "g2": 36.0, "g3": 42.0, "g4": 48.0}  # each group's observation length T (weeks)
GROUP_LOG_SD = 0.15  # spread of each group's log parameters around the population's


class LogMeanCoordinates(bc.GompertzNBDModel):
    """The grouped GGom/NBD as sampled before 19ee9d2: the three log means each their own variable."""

    def _parameters(self):
        if not (self.pooling == "partial" and self._centred):
            return super()._parameters()
        r, alpha, b, mean, cv2 = (self._quantity(n) for n in QUANTITIES)
        s = pm.Deterministic("s", 1.0 / cv2, dims="group")
        beta = pm.Deterministic("beta", b / (cv2 * mean), dims="group")
        return {"r": r, "alpha": alpha, "b": b, "s": s, "beta": beta}


def header() -> dict:
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "../../src", "../ggomnbd_grouped_coordinates.py"],
                           capture_output=True, text=True, cwd=RESULTS).stdout.strip()
    return {"command": "nice -n 10 uv run python validation/ggomnbd_grouped_coordinates.py " + " ".join(sys.argv[1:]),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "commit": git.stdout.strip() + ("+" if dirty else ""), "load_average_start": os.getloadavg()}


def density_check(data: pd.DataFrame, points: int, seed: int) -> dict:
    """Largest relative gap of ``new + log|det| - old`` over random points of the old coordinates."""
    old_graph = LogMeanCoordinates(group="cohort").build_model(data)
    new_graph = bc.GompertzNBDModel(group="cohort").build_model(data)
    shared = [v.name for v in old_graph.value_vars if v.name not in MEANS]
    transform = new_graph.rvs_to_transforms[new_graph["dropout"]]
    value = pt.dvector("value")
    to_coords = pytensor.function([value], transform.forward(value))
    old_logp, new_logp = old_graph.compile_logp(), new_graph.compile_logp()
    rng = np.random.default_rng(seed)
    start = old_graph.initial_point()
    rows = []
    for log_b in np.linspace(-16.0, 1.5, points):
        point = {n: rng.normal(size=np.shape(start[n])) if n.endswith("_offset")
                 else rng.uniform(np.log(0.05), np.log(1.5), size=np.shape(start[n])) if n.endswith("_sd_log__")
                 else np.asarray(rng.uniform(-3.0, 2.0)) for n in shared}
        old = {**point, "log_b_mean": log_b, "log_dropout_mean_mean": rng.uniform(-4.0, -1.0),
               "log_dropout_cv2_mean": rng.uniform(-2.0, 2.0)}
        new = {**point, "dropout_dropout_window__": to_coords(np.exp([old[n] for n in MEANS]))}
        x = np.exp(log_b)
        log_det = float(np.log(x) + x - np.log(np.expm1(x)))
        want, got = float(old_logp(old)), float(new_logp(new))
        rows.append({"log_b_mean": round(float(log_b), 3), "old_logp": want, "new_logp": got, "log_det": log_det,
                     "gap": got + log_det - want, "rel_gap": abs(got + log_det - want) / abs(want)})
    return {"customers": len(data), "groups": int(data["cohort"].nunique()), "points": rows,
            "max_abs_gap": max(abs(r["gap"]) for r in rows), "max_rel_gap": max(r["rel_gap"] for r in rows)}


def simulated(customers: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """``customers`` per group from the GGom/NBD, each group's parameters the population's times
    ``exp(Normal(0, GROUP_LOG_SD))``; recency rounded up to whole weeks (at most ``T``)."""
    rng = np.random.default_rng(seed)
    frames, truth = [], {}
    for g, T in GROUPS.items():
        params = {k: v * float(np.exp(rng.normal(0.0, GROUP_LOG_SD))) for k, v in POPULATION.items()}
        sim = ggomnbd.simulate_population(np.full(customers, T), rng=rng, **params)
        x = sim["frequency"]
        recency = np.where(x > 0, np.minimum(np.ceil(sim["recency"]), T), 0.0)
        frames.append(pd.DataFrame({"frequency": x, "recency": recency, "T": T, "cohort": g}))
        truth[g] = {**params, "dropout_mean": params["s"] * params["b"] / params["beta"],
                    "dropout_cv2": 1.0 / params["s"]}
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "customer_id", np.arange(len(df)))
    return df, truth


def sampled(model, data: pd.DataFrame, draws: int, tune: int, seed: int) -> dict:
    cpu = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the diagnostics are recorded
        model.fit(data, time_unit="W", draws=draws, tune=tune, random_seed=seed, progressbar=False)
    cpu = time.process_time() - cpu
    post = model.posterior
    names = [n for n in (*QUANTITIES, "s", "beta", *(f"log_{q}_{k}" for q in QUANTITIES for k in ("mean", "sd")))
             if n in post]
    stats = model.idata["sample_stats"]
    diag = {k: v for k, v in dict(model.diagnostics).items() if isinstance(v, int | float | str | bool)}
    mcse = azs.mcse(model.idata, var_names=names, method="mean")
    return {"cpu_seconds": round(cpu, 1), "diagnostics": diag, "steps_per_draw": float(stats["n_steps"].mean()),
            "mean": {n: np.atleast_1d(post[n].mean(("chain", "draw")).values).tolist() for n in names},
            "sd": {n: np.atleast_1d(post[n].std(("chain", "draw")).values).tolist() for n in names},
            "mcse": {n: np.atleast_1d(mcse[n].values).tolist() for n in names}}


def compared(old: dict, new: dict) -> list[dict]:
    rows = []
    for name in new["mean"]:
        for i, (m_new, m_old) in enumerate(zip(new["mean"][name], old["mean"][name])):
            se = float(np.hypot(new["mcse"][name][i], old["mcse"][name][i]))
            rows.append({"parameter": name if len(new["mean"][name]) == 1 else f"{name}[{i}]", "old": m_old,
                         "new": m_new, "mcse": se, "z": (m_new - m_old) / se, "sd_new": new["sd"][name][i]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--customers", type=int, default=250, help="customers per simulated group")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-sampling", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    head = header()
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30", cohort="W")
    cpu = time.process_time()
    check = density_check(rfm, args.points, args.seed)
    check["cpu_seconds"] = round(time.process_time() - cpu, 1)
    out = {**head, "load_average_end": os.getloadavg(), **check}
    (RESULTS / "ggomnbd_grouped_coordinates_cdnow_sample.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"density check: max |gap| {check['max_abs_gap']:.2e}, max relative {check['max_rel_gap']:.2e}", flush=True)
    if args.skip_sampling:
        return
    data, truth = simulated(args.customers, args.seed)
    fits = {}
    for label, cls in (("new", bc.GompertzNBDModel), ("old", LogMeanCoordinates)):
        fits[label] = sampled(cls(group="cohort"), data, args.draws, args.tune, args.seed)
        print(label, json.dumps({k: fits[label][k] for k in ("cpu_seconds", "diagnostics", "steps_per_draw")}),
              flush=True)
    rows = compared(fits["old"], fits["new"])
    out = {**head, "load_average_end": os.getloadavg(), "customers": len(data), "distinct_rows":
           int(data[["frequency", "recency", "T", "cohort"]].drop_duplicates().shape[0]),
           "population": POPULATION, "group_T": GROUPS, "truth": truth, "draws": args.draws, "tune": args.tune,
           "fits": fits, "comparison": rows, "max_abs_z": max(abs(r["z"]) for r in rows),
           "count_abs_z_over_2": sum(abs(r["z"]) > 2 for r in rows), "compared": len(rows)}
    (RESULTS / "ggomnbd_grouped_coordinates_simulated.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"max |z| {out['max_abs_z']:.2f} over {len(rows)}; |z| > 2: {out['count_abs_z_over_2']}")


if __name__ == "__main__":
    main()
