"""CLV cost against the horizon (issue #20 item 5): 12 / 120 / 1,200 months for every purchase family.

For each family that has ``discounted_expected_purchases``: BG/NBD, Pareto/NBD,
MBG/NBD, BG/CNBD-2, MBG/CNBD-2, GGom/NBD and the hierarchical BG/NBD on the CDNOW sample
(calibration to 1997-09-30, weeks), one ``customer_lifetime_value`` call per
horizon in months, with a service cost (which adds the discounted periods
alive) and without. The BG/BB counts opportunities, which have no calendar
length, so ``customer_lifetime_value`` refuses it: its rows time the CLV's
purchase part, ``discounted_expected_purchases`` and ``discounted_probability_alive``
over 12 / 120 / 1,200 opportunities of the donations table.

The posteriors are synthetic (MAP estimates with 1% multiplicative jitter per draw,
``bayesclv.testing.jittered_posterior``; the hierarchical model a short ADVI fit),
which cost the same to predict from as NUTS posteriors. CPU seconds are measured in
this process (the machine may be shared; wall seconds are recorded too). A linear
cost means ``seconds / horizon`` stays flat; the issue's target is 120 months in at
most 10x the time of 12 months.

Usage::

    uv run python benchmarks/clv_horizon.py                      # 12 120 1200 months, 4 x 100 draws
    uv run python benchmarks/clv_horizon.py --horizons 12 120 --draws 25 --out /tmp/clv.json
    uv run python benchmarks/clv_horizon.py --families BG/CNBD-2 MBG/CNBD-2 --draws 25   # re-run two families

Writes ``benchmarks/results/clv_horizon.json`` and ``.md`` (or ``--out`` and its ``.md``). Where
``--out`` exists with the same number of draws, the rows of the families not re-run are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.testing import jittered_posterior

RESULTS = Path(__file__).parent / "results" / "clv_horizon.json"
FAMILIES = {"BG/NBD": lambda: bc.BetaGeoModel(), "Pareto/NBD": lambda: bc.ParetoNBDModel(),
            "MBG/NBD": lambda: bc.ModifiedBetaGeoModel(), "BG/CNBD-2": lambda: bc.BetaGeoCNBDModel(k=2),
            "MBG/CNBD-2": lambda: bc.ModifiedBetaGeoCNBDModel(k=2), "GGom/NBD": lambda: bc.GompertzNBDModel()}


def timed(fn) -> tuple[float, float]:
    """CPU and wall seconds of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return round(time.process_time() - cpu, 3), round(time.perf_counter() - wall, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[12, 120, 1200])
    parser.add_argument("--draws", type=int, default=100, help="draws per chain (4 chains)")
    parser.add_argument("--families", nargs="+", default=[*FAMILIES, "hierarchical BG/NBD", "BG/BB"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30", litt=True)
    fit = {"method": "map", "progressbar": False}
    gg = jittered_posterior(bc.GammaGammaModel().fit(rfm, **fit), chains=4, draws=args.draws, random_seed=rng)
    rows = []

    def record(family, horizon, service_cost, seconds):
        rows.append({"model": family, "horizon": horizon, "service_cost": service_cost,
                     "cpu_s": seconds[0], "wall_s": seconds[1]})
        print(rows[-1], flush=True)

    for family in args.families:
        if family == "BG/BB":
            continue
        if family == "hierarchical BG/NBD":
            model = bc.HierarchicalBetaGeoModel().fit(rfm, method="advi", tune=200, draws=4 * args.draws,
                                                      random_seed=1, progressbar=False)
            spend = jittered_posterior(bc.GammaGammaModel().fit(rfm, **fit), chains=1, draws=4 * args.draws,
                                       random_seed=rng)
        else:
            model = jittered_posterior(FAMILIES[family]().fit(rfm, **fit), chains=4, draws=args.draws,
                                       random_seed=rng)
            spend = gg
        bc.customer_lifetime_value(model, spend, horizon=2, time_unit="M", discount_rate=0.01,
                                   service_cost_per_period=1.0)  # compile
        for horizon in args.horizons:
            for service_cost in (0.0, 1.0):
                record(family, horizon, service_cost, timed(lambda: bc.customer_lifetime_value(
                    model, spend, horizon=horizon, time_unit="M", discount_rate=0.01,
                    service_cost_per_period=service_cost)))
    if "BG/BB" in args.families:
        table = bc.datasets.load_donations()
        model = jittered_posterior(bc.BetaGeoBetaBinomModel().fit(table, **fit), chains=4, draws=args.draws,
                                   random_seed=rng)
        for horizon in args.horizons:
            ends = np.arange(1.0, horizon + 1)
            factors = 1.01 ** -ends
            record("BG/BB", horizon, 0.0, timed(lambda: model.discounted_expected_purchases(ends, factors)))
            record("BG/BB", horizon, 1.0, timed(lambda: (model.discounted_expected_purchases(ends, factors),
                                                         model.discounted_probability_alive(ends - 1.0, factors))))
    result = {"customers": len(rfm), "draws": 4 * args.draws, "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "rows": rows}
    write_results(merged(result, args.out), args.out)


def merged(result: dict, out: Path) -> dict:
    """``result`` with the rows (and notes) of ``out`` for the families it did not run, in the families' order."""
    if not out.exists():
        return result
    old = json.loads(out.read_text())
    if old.get("draws") != result["draws"] or old.get("customers") != result["customers"]:
        print(f"{out} has other draws or customers: its rows are not kept", flush=True)
        return result
    run = {row["model"] for row in result["rows"]}
    rows = [row for row in old["rows"] if row["model"] not in run] + result["rows"]
    order = [*FAMILIES, "hierarchical BG/NBD", "BG/BB"]
    rows.sort(key=lambda row: order.index(row["model"]) if row["model"] in order else len(order))
    return {**result, "rows": rows, "notes": old.get("notes", [])}


def write_results(result: dict, out: Path) -> None:
    """``out`` (JSON) and its ``.md`` table, each row's CPU time also as a multiple of its 12 periods'."""
    rows = result["rows"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# CLV cost against the horizon", "",
             f"Written by `benchmarks/clv_horizon.py`: CDNOW sample ({result['customers']:,} customers), "
             f"{result['draws']} draws (jittered MAP; the hierarchical BG/NBD by ADVI), discount 1% a period; CPU "
             "seconds of one `customer_lifetime_value` call over the horizon in months (BG/BB: the donations "
             "table, `discounted_expected_purchases` (+ `discounted_probability_alive` with a service cost) over "
             "opportunities). The target: 120 periods in at most 10x the CPU time of 12. "
             f"Load average at the end: {result['load_average'][0]:.1f} on {result['cpus']} CPUs.", "",
             "| model | periods | service cost | CPU s | wall s | CPU s / 12 periods' |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        base = min((r for r in rows if r["model"] == row["model"] and r["service_cost"] == row["service_cost"]),
                   key=lambda r: r["horizon"])
        lines.append(f"| {row['model']} | {row['horizon']:,} | {row['service_cost']:g} | {row['cpu_s']:.2f} "
                     f"| {row['wall_s']:.2f} | {row['cpu_s'] / max(base['cpu_s'], 1e-9):.1f} |")
    lines += ["", *result.get("notes", [])]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
