"""CPU per sweep of the Pareto/GGG sampler under several move mixes, measured in one process, interleaved.

Tunes one chain from the sampler's starting point (``--tune`` sweeps, default moves), fixes the joint moves'
proposals at a plain scale (the cost of a move does not depend on its acceptance beyond copying the latents),
then times ``--sweeps`` sweeps of each mix of moves in turn, ``--rounds`` times over, from copies of the same
state (``process_time``, one thread). Interleaving puts every mix under the same load, so the ratios hold on a
shared machine where the absolute figures do not.

Usage::

    nice -n 10 uv run python validation/paretoggg_sweep_cost.py --data full --mixes 0,0,1,2,10,3,0,10,1,2,0,0 ...

Writes ``validation/results/paretoggg_sweep_cost.json`` (keyed by ``--data``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from paretoggg_mixing import _prior

import bayesclv as bc
from bayesclv.formulas import _paretoggg_gibbs as gibbs

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ("k", "lam", "mu", "alive", "u", "w", "k_step", "coords", "steps")


def measure(data: str, mixes: list[tuple[int, ...]], tune: int, sweeps: int, rounds: int) -> dict:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(data), calibration_end="1997-09-30", litt=True)
    x, t_x, T, litt = (np.ascontiguousarray(rfm[c].to_numpy(dtype=float))
                       for c in ("frequency", "recency", "T", "litt"))
    n, prior = x.size, _prior()
    state = gibbs._initial_state(x, t_x, T, np.random.default_rng(1))
    chol, chol_rates, scale = 0.05 * np.eye(6), 0.05 * np.eye(4), np.array([0.5, 0.5])
    stored = [np.empty((1, 6)), *(np.empty((1, n)) for _ in range(3))]
    trace = np.empty((max(tune, sweeps), 6))
    args = [x, t_x, T, litt, *(state[m] for m in NAMES), prior, np.asarray(gibbs.MOVES, dtype=np.int64)]
    gibbs.run_chain(1, tune, True, 1, *args, chol, chol_rates, scale, trace, *stored)
    cpu = {",".join(map(str, mix)): [] for mix in mixes}
    for r in range(rounds):
        for mix in mixes:
            copies = [np.copy(state[m]) for m in NAMES]
            moves = np.asarray((*mix, *(0,) * (len(gibbs.MOVES) - len(mix))), dtype=np.int64)
            run = [x, t_x, T, litt, *copies, prior, moves, chol, chol_rates, scale.copy(), trace, *stored]
            if r == 0:  # compile-free warm-up of this mix
                gibbs.run_chain(2, 1, False, 1000, *run)
            start = time.process_time()
            gibbs.run_chain(3 + r, sweeps, False, 1000, *run)
            cpu[",".join(map(str, mix))].append((time.process_time() - start) / sweeps * 1000)
    return {"data": data, "customers": n, "tune": tune, "sweeps": sweeps, "rounds": rounds,
            "ms_per_sweep": {mix: {"mean": float(np.mean(v)), "rounds": [round(t, 1) for t in v]}
                             for mix, v in cpu.items()},
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=RESULTS.parent).stdout.strip(),
            "command": "nice -n 10 uv run python validation/paretoggg_sweep_cost.py " + " ".join(sys.argv[1:]),
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["sample", "full"], default="full")
    parser.add_argument("--mixes", nargs="+", required=True, type=lambda v: tuple(int(m) for m in v.split(",")),
                        help="moves per sweep (gibbs.MOVES), comma separated, one mix per argument")
    parser.add_argument("--tune", type=int, default=60)
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.data, args.mixes, args.tune, args.sweeps, args.rounds)
    print(json.dumps(result, indent=1))
    path = RESULTS / "paretoggg_sweep_cost.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.data] = result
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
