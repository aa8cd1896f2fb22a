"""CPU per block of one Pareto/GGG sweep (``formulas/_paretoggg_gibbs.py``) on a CDNOW calibration frame.

Tunes one chain for 100 sweeps from the sampler's starting point, times 30
sweeps, then times each compiled block of a sweep 20 times at the chain's state
(``process_time``, one thread): a likelihood pass with the lifetime and the next
gap integrated out, a pass of k given the gaps, the per-customer steps, the
collapsed population steps (mu's also given the next gaps, the lifetimes then
drawn), a partial non-centred move of lam's population, a joint move, a move of
k's population with every k and the whole population update.

Usage::

    nice -n 10 uv run python validation/paretoggg_sweep_profile.py --data full

Writes ``validation/results/paretoggg_sweep_profile.json`` (ms per block, keyed by ``--data``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from paretoggg_mixing import _prior

import bayesclv as bc
from bayesclv.formulas import _paretoggg_gibbs as gibbs
from bayesclv.formulas import _paretoggg_population as population
from bayesclv.formulas import _paretoggg_regularity as regularity

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(f, repeats: int = 20) -> float:
    f()
    start = time.process_time()
    for _ in range(repeats):
        f()
    return (time.process_time() - start) / repeats * 1000


def profile(data: str) -> dict:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(data), calibration_end="1997-09-30", litt=True)
    x, t_x, T, litt = (np.ascontiguousarray(rfm[c].to_numpy(dtype=float)) for c in ("frequency", "recency", "T", "litt"))
    n, prior = x.size, _prior()
    state = gibbs._initial_state(x, t_x, T, np.random.default_rng(1))
    names = ("k", "lam", "mu", "alive", "u", "w", "k_step", "coords", "steps")
    moves = np.asarray(gibbs.MOVES, dtype=np.int64)
    chol, chol_rates, scale, trace = np.eye(6), np.eye(4), np.zeros(2), np.empty((100, 6))
    stored = [np.empty((1, 6)), *(np.empty((1, n)) for _ in range(3))]
    args = [x, t_x, T, litt, *(state[m] for m in names), prior, moves]
    gibbs.run_chain(1, 100, True, 1, *args, chol, chol_rates, scale, trace, *stored)
    scale[0] = 0.5
    start = time.process_time()
    gibbs.run_chain(2, 30, False, 1000, *args, chol, chol_rates, scale, trace, *stored)
    out = {"sweep": (time.process_time() - start) / 30 * 1000}
    k, lam, mu, alive, u, w, k_step, coords, steps = (state[m] for m in names)
    pop, work, data_ = np.empty(6), np.empty((4, n)), (x, t_x, T, litt)
    population.to_population(coords, pop)
    gaps = (x + 1.0, litt + np.log(w), t_x + w)
    copies = [v.copy() for v in (k, lam, mu, alive, u, w, k_step)]
    c, s = coords.copy(), steps.copy()
    sums = np.array([k.sum(), np.log(k).sum()])
    current = population.latent_total(0, 0, k, data_, k, lam, mu, (x, x, x), pop, work)

    def _partial(lam_):  # one move of lam's log cv2 on a copy of the rates (the move updates them in place)
        return population.partial_noncentred_move(1, 1, lam_, x * k, k * t_x, current, coords.copy(), prior,
                                                  steps.copy(), False, 0.0, data_, k, lam_, mu, pop, work)

    out.update({
        "likelihood pass, lifetime and next gap integrated out (mode 0)":
            _ms(lambda: population.latent_total(0, 0, k, data_, k, lam, mu, (x, x, x), pop, work)),
        "pass of k given the gaps (mode 1)": _ms(lambda: population.latent_total(1, 0, k, data_, k, lam, mu, gaps, pop,
                                                                                 work)),
        "per-customer steps (_customers)": _ms(lambda: gibbs._customers(x, t_x, T, litt, *copies, pop, False, 0.0)),
        "collapsed steps of lam's population (x10)": _ms(lambda: population.population_steps(
            c, 1, (x + 1.0) * k, k * gaps[2], sums, prior, s, 10, False, 0.0)),
        "collapsed steps of mu's population (x10)": _ms(lambda: population.population_steps(
            c, 2, 1.0 - alive, np.where(alive == 1, T, t_x + u), sums, prior, s, 10, False, 0.0)),
        "collapsed steps of mu's population given the next gaps (x10), the lifetimes drawn":
            _ms(lambda: (population.population_steps(c, 3, t_x, np.where(w <= T - t_x, w, np.inf), sums, prior, s,
                                                     10, False, 0.0),
                         population.lifetime_given_gap(t_x, T, w, pop[4], pop[5], copies[3], copies[4]))),
        "move of k's population with every k (one coordinate)":
            _ms(lambda: regularity.regularity_move(1, k.copy(), gaps, c, prior, s, False, 0.0, pop, work)),
        "partial non-centred move of lam's population (one coordinate)": _ms(lambda: _partial(lam.copy())),
        "joint move": _ms(lambda: population.joint_noncentred_move(current, coords.copy(), prior, chol, scale, False,
                                                                   0.0, data_, k.copy(), lam.copy(), mu.copy(), work)),
        "population update (_augmented_population)": _ms(lambda: gibbs._augmented_population(
            data_, *copies[:6], c, s, prior, moves, False, 0.0, pop, work)),
    })
    return {"data": data, "customers": n, "moves": list(gibbs.MOVES), "ms": out,
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=RESULTS.parent).stdout.strip(),
            "command": f"nice -n 10 uv run python validation/paretoggg_sweep_profile.py --data {data}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["sample", "full"], default="full")
    result = profile(parser.parse_args().data)
    print(json.dumps(result, indent=1))
    path = RESULTS / "paretoggg_sweep_profile.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[result["data"]] = result
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
