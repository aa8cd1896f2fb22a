"""P(alive) and expected purchases of an integrated HB fit: two calls against one pass (``customer_predictions``).

Fits the HB Pareto/NBD or HB BG/NBD (covariate log first-purchase amount, latents integrated out, ``fit()``'s
defaults) on CDNOW, then, alternating ``--repeats`` times in the same process, computes for the same
customers (the first ``--customers`` of the data, in the benchmark's chunk size) either
``probability_alive`` and ``expected_purchases(39)`` one after the other, or both from
``customer_predictions(39)``. Records the CPU seconds of each (``time.process_time``: all threads), their
ratio, and the largest relative difference between the two ways' values (they weigh the same nodes).

Usage::

    uv run python benchmarks/hb_prediction_passes.py [sample|full] [--family paretonbd|bgnbd] [--customers N]

Writes ``benchmarks/results/hb_prediction_passes_<kind>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def _cpu(call) -> tuple[float, object]:
    start = time.process_time()
    value = call()
    return time.process_time() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["full", "sample"], nargs="?", default="full")
    parser.add_argument("--family", choices=["paretonbd", "bgnbd"], default="paretonbd")
    parser.add_argument("--customers", type=int, default=6_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "validation"))
    import bayesclv as bc
    from hierarchical_cdnow import cdnow_with_covariates, hb_model

    rfm = cdnow_with_covariates(args.kind)
    model = hb_model(args.family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)
        fit_cpu, _ = _cpu(lambda: model.fit(rfm, random_seed=2026, progressbar=False))
    part = rfm.iloc[:args.customers]
    two, one, differences = [], [], []
    for _ in range(args.repeats):
        cpu, (alive, expected) = _cpu(lambda: (model.probability_alive(part), model.expected_purchases(39.0, part)))
        two.append(cpu)
        cpu, both = _cpu(lambda: model.customer_predictions(39.0, part))
        one.append(cpu)
        differences.append(max(float(np.max(np.abs(both[name].values - ref.values) / np.maximum(np.abs(ref.values),
                                                                                              1e-300)))
                               for name, ref in (("probability_alive", alive), ("expected_purchases", expected))))
        del alive, expected, both
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    result = {"command": "uv run python benchmarks/hb_prediction_passes.py " + " ".join(sys.argv[1:]),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
              "load_average": os.getloadavg(), "kind": args.kind, "family": args.family,
              "customers": len(part), "draws": int(model.posterior.sizes["chain"] * model.posterior.sizes["draw"]),
              "fit_cpu_seconds": round(fit_cpu, 1), "two_calls_cpu_seconds": [round(v, 2) for v in two],
              "one_pass_cpu_seconds": [round(v, 2) for v in one],
              "ratio_median": round(float(np.median(one) / np.median(two)), 3),
              "max_relative_difference": max(differences)}
    RESULTS.mkdir(exist_ok=True)
    stem = f"hb_prediction_passes_{args.kind}" + ("" if args.family == "paretonbd" else f"_{args.family}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{stem}.md").write_text(
        f"# P(alive) + expected purchases of an integrated HB fit: two calls vs one pass ({args.kind})\n\n"
        f"Command: `{result['command']}`; {result['date']}, commit `{commit}`, load average at the end "
        f"{', '.join(f'{v:.1f}' for v in result['load_average'])}.\n\n"
        f"HB {args.family}, {result['draws']} draws, the first {len(part):,} customers; CPU seconds per repeat "
        "(all threads of the process), alternating in one process.\n\n"
        "| way | CPU s per repeat |\n|---|---|\n"
        f"| `probability_alive` + `expected_purchases(39)` | {', '.join(map(str, result['two_calls_cpu_seconds']))} |\n"
        f"| `customer_predictions(39)` | {', '.join(map(str, result['one_pass_cpu_seconds']))} |\n\n"
        f"One pass / two calls (medians): **{result['ratio_median']}**. Largest relative difference between "
        f"the two ways' values: {result['max_relative_difference']:.1e}.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
