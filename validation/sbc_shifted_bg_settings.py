"""Which NUTS setting removes the shifted-BG's divergences: coordinates or step size (40 SBC replications each).

The first ``--sims`` replications of ``validation/sbc_discrete.py`` (same prior draws, data and
seeds: one cohort of 300 observed for 8 periods, 2 x 500 draws after 500 tuning steps, nutpie),
fitted under each variant:

* ``log``: the log shapes at ``target_accept`` 0.8, 0.9, 0.95 (``log-0.8`` is the former default);
* ``mc``: mean and concentration ``(log alpha - log beta, log(alpha + beta))``, the BG/BB's
  coordinates (:mod:`bayesclv.models.mean_concentration`), at 0.8;
* ``soft<K>``: mean and a concentration ``alpha + beta = K softplus(w)`` (log-like below ``K``,
  linear above, so the prior's Gaussian tail is not a doubly exponential wall), at 0.8.

Usage::

    uv run python validation/sbc_shifted_bg_settings.py [--sims 40]

Writes ``validation/results/sbc_shifted_bg_settings.{json,md}``: per variant the fits with a
divergent transition, the divergences in all, fits with R-hat > 1.01, the median bulk ESS and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytensor.tensor as pt

import bayesclv as bc
from bayesclv.models import mean_concentration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sbc_discrete import base_data, prior_draws  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SEED = 20261 + 1000  # sbc_discrete.py's seed of the shifted-BG


class SoftplusConcentration(mean_concentration.MeanConcentration):
    """``(alpha, beta)`` <-> ``(log alpha - log beta, w)`` with ``alpha + beta = K softplus(w)``."""

    K = 50.0

    def forward(self, value, *inputs):
        a, b = value[..., 0], value[..., 1]
        x = (a + b) / self.K
        return pt.stack([pt.log(a) - pt.log(b), x + pt.log(-pt.expm1(-x))], axis=-1)

    def backward(self, value, *inputs):
        u, w = value[..., 0], value[..., 1]
        c = self.K * pt.softplus(w)
        return pt.stack([c * pt.sigmoid(u), c * pt.sigmoid(-u)], axis=-1)

    def log_jac_det(self, value, *inputs):
        u, w = value[..., 0], value[..., 1]
        # d(alpha, beta)/d(c, m) = c, dm/du = m (1 - m), dc/dw = K sigmoid(w)
        return (pt.log(self.K * pt.softplus(w)) - pt.softplus(-u) - pt.softplus(u) + pt.log(self.K)
                - pt.softplus(-w))


class MeanConcentrationSBG(mean_concentration.BetaShapeSampling, bc.ShiftedBetaGeoModel):
    beta_pairs = (("alpha", "beta"),)


def fit(variant: str, sim: int, truth: dict, simulated: dict) -> dict:
    df = base_data("shifted_bg", 300)
    for col, values in simulated.items():
        df[col] = np.asarray(values, dtype=float)
    kind, _, setting = variant.partition("-")
    cls, target = bc.ShiftedBetaGeoModel, 0.8
    mean_concentration.MeanConcentration = ORIGINAL  # beta_shapes() looks the transform up at fit time
    if kind == "log":
        target = float(setting)
    elif kind == "mc":
        cls = MeanConcentrationSBG
    else:
        SoftplusConcentration.K = float(kind[4:])
        mean_concentration.MeanConcentration = SoftplusConcentration
        cls = MeanConcentrationSBG
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls().fit(df, method="nuts", draws=500, tune=500, chains=2, cores=1, progressbar=False,
                          sampler="nutpie", random_seed=SEED + 1 + sim, target_accept=target)
    d = model.diagnostics
    return {"divergences": int(d["divergences"]), "max_r_hat": float(d["max_r_hat"]),
            "min_ess_bulk": float(d["min_ess_bulk"]), "cpu_s": time.process_time() - start}


ORIGINAL = mean_concentration.MeanConcentration
VARIANTS = ["log-0.8", "mc", "soft50", "soft10", "log-0.9", "log-0.95"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=40)
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    args = parser.parse_args()
    draws = prior_draws("shifted_bg", 300, 200, SEED)[: args.sims]
    out = {}
    for variant in args.variants:
        rows = [fit(variant, sim, *draws[sim]) for sim in range(args.sims)]
        div = np.array([r["divergences"] for r in rows])
        out[variant] = {"fits": len(rows), "divergent_fits": int((div > 0).sum()), "divergences": int(div.sum()),
                        "rhat_gt_1_01": int(sum(r["max_r_hat"] > 1.01 for r in rows)),
                        "median_min_ess_bulk": float(np.median([r["min_ess_bulk"] for r in rows])),
                        "cpu_s": round(sum(r["cpu_s"] for r in rows), 1), "per_fit_divergences": div.tolist()}
        print(variant, {k: v for k, v in out[variant].items() if k != "per_fit_divergences"}, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sbc_shifted_bg_settings.json").write_text(json.dumps(out, indent=2))
    lines = ["# Shifted-BG: NUTS coordinates and step size against divergences",
             "", (f"The first {args.sims} replications of `validation/sbc_discrete.py` "
                  "(`validation/sbc_shifted_bg_settings.py`)."),
             "", "| variant | divergent fits | divergences | R-hat > 1.01 | median min bulk ESS | CPU s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v['divergent_fits']}/{v['fits']} | {v['divergences']} | {v['rhat_gt_1_01']} | "
              f"{v['median_min_ess_bulk']:.0f} | {v['cpu_s']} |" for k, v in out.items()]
    (RESULTS / "sbc_shifted_bg_settings.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
