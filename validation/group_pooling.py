"""Grouped fits on CDNOW cohorts and on simulated well-separated groups: convergence and cost of `group=`.

Each case fits one grouped model by its default NUTS settings and records the parameterisation of its
group-level quantities (which are centred), max R-hat, min bulk/tail ESS, divergences, mean leapfrog
steps per draw, fit CPU seconds (``time.process_time`` around ``fit``) and, for the simulated case,
each group's recovered intercepts against the truth.

Cases (CDNOW grouped by first-purchase month, ``rfm_summary(cohort="M")``, unless named ``-W``: weeks):

- ``joint``: ``JointSpendParetoNBDModel(group="cohort")`` on the sample (the fit of
  ``validation/joint_spend_cdnow.py --cohort M sample``);
- ``ggom``: ``GompertzNBDModel(group="cohort")`` on the sample;
- ``pnbd``: ``ParetoNBDModel(group="cohort")`` on the sample; ``pnbd-W`` by weekly cohorts (those of
  ``validation/compare_families.py``), ``pnbd-full`` on CDNOW full by month, ``pnbd-full-W`` by week;
- ``separated``: ``HierarchicalParetoNBDModel(group="segment")`` on 3 x 300 simulated customers whose
  intercepts are 0.5 apart (purchase) and 0.4 apart (dropout).

Run: ``nice -n 10 uv run python validation/group_pooling.py CASE ... [--label after]``; each case's record
is merged into ``validation/results/group_pooling.json`` under ``label`` and the table of
``validation/results/group_pooling.md`` is rewritten from it (its ``## Notes`` section is kept).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesclv as bc
from bayesclv.simulate import simulate_hierarchical_paretonbd

RESULTS = Path(__file__).parent / "results"
JSON = RESULTS / "group_pooling.json"
SEED = 17
HEADER = """# Grouped fits: which offsets are centred, convergence and cost

Written by `validation/group_pooling.py` (reproduce: `nice -n 10 uv run python validation/group_pooling.py joint ggom
pnbd pnbd-W separated --label after`; `pnbd-full-W` for CDNOW full by week). Each model's default NUTS fit, seed 17;
CPU seconds of `fit` (`time.process_time`, all threads); steps/draw: mean leapfrog steps per kept draw. `before`:
main 1e4e466 (offsets centred by group size, pooled families always non-centred); `after`: this branch (one rule,
`pooling.centred_groups`). Cohorts: first-purchase month (`-W`: week, those of `compare_families.py`).

"""


def _cdnow(kind: str, cohort: str, log_spend: bool = False) -> pd.DataFrame:
    tx = bc.datasets.load_cdnow(kind)
    if log_spend:
        rfm = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30", log_spend=True, cohort=cohort)
    else:
        rfm = bc.rfm_summary(tx, calibration_end="1997-09-30", cohort=cohort)
    return rfm


SEPARATED_B = np.array([[-1.6, -3.0]])
SEPARATED_SHIFTS = np.array([[-0.5, 0.4], [0.0, 0.0], [0.5, -0.4]])


def _separated(n: int = 300, seed: int = 5) -> pd.DataFrame:
    """3 x ``n`` customers of the hierarchical Pareto/NBD, intercepts ``SEPARATED_B + SEPARATED_SHIFTS``."""
    rng = np.random.default_rng(seed)
    frames = []
    for g, shift in enumerate(SEPARATED_SHIFTS):
        T = np.round(rng.uniform(30, 52, size=n))
        sim = simulate_hierarchical_paretonbd(T, SEPARATED_B + shift, np.diag([0.6**2, 0.6**2]),
                                              covariates=np.ones((n, 1)), rng=rng)
        frames.append(pd.DataFrame({"frequency": sim["frequency"], "recency": sim["recency"], "T": T,
                                    "segment": f"s{g}"}))
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "customer_id", [f"c{i}" for i in range(len(df))])
    df.attrs["time_unit"] = "W"
    return df


def _case(name: str):
    """``(model, data, groups column)`` of a case."""
    if name == "joint":
        df = _cdnow("sample", "M", log_spend=True)
        return bc.JointSpendParetoNBDModel(group="cohort"), df, "cohort"
    if name == "ggom":
        return bc.GompertzNBDModel(group="cohort"), _cdnow("sample", "M"), "cohort"
    if name.startswith("pnbd"):
        kind = "full" if "full" in name else "sample"
        return bc.ParetoNBDModel(group="cohort"), _cdnow(kind, "W" if name.endswith("-W") else "M"), "cohort"
    if name == "separated":
        return bc.HierarchicalParetoNBDModel(group="segment"), _separated(), "segment"
    raise SystemExit(f"unknown case {name!r}")


def _parameterisation(model, df: pd.DataFrame) -> str:
    """How many groups' offsets of each quantity the rule centres, e.g. ``purchase 0/3, dropout 0/3``."""
    from bayesclv.models.pooled import PooledModel

    if isinstance(model, PooledModel):
        decisions = dict(model._centred)
    else:
        from bayesclv.models.latent import group_evidence
        from bayesclv.models.pooling import centred_groups
        spend = "log_spend_mean" if "log_spend_mean" in df.columns else None
        m, se = group_evidence(model, df, spend)
        centred = centred_groups(m, se, float(model.priors["group_sd"].parameters.get("sigma", 1.0)))
        decisions = dict(zip(("purchase", "dropout", "spend"), centred.T, strict=False))
    return ", ".join(f"{k} {int(np.sum(v))}/{len(v)}" for k, v in decisions.items()) + " centred"


def run(name: str, label: str) -> dict:
    model, df, column = _case(name)
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(df, random_seed=SEED, progressbar=False)
    cpu = time.process_time() - start
    diag = model.diagnostics
    stats = model.idata["sample_stats"].to_dataset()
    groups = df[column].value_counts().sort_index()
    record = {"customers": len(df), "groups": {str(k): int(v) for k, v in groups.items()},
              "fit_cpu_s": round(cpu, 1), "max_r_hat": round(float(diag["max_r_hat"]), 4),
              "min_ess_bulk": round(float(diag["min_ess_bulk"])), "min_ess_tail": round(float(diag["min_ess_tail"])),
              "divergences": int(diag["divergences"]), "draws": int(diag["n_draws"]),
              "steps_per_draw": round(float(stats["n_steps"].mean()), 1) if "n_steps" in stats else None,
              "parameterisation": None if label == "before" else _parameterisation(model, df)}
    post = model.posterior
    if name == "separated":
        intercepts = (post["coefficients"].sel(covariate="intercept") + post["group_offset"]).transpose(
            "chain", "draw", "group", "process")
        record["intercepts_mean"] = np.round(intercepts.mean(("chain", "draw")).values, 3).tolist()
        record["intercepts_sd"] = np.round(intercepts.std(("chain", "draw")).values, 3).tolist()
        record["intercepts_true"] = (SEPARATED_B + SEPARATED_SHIFTS).tolist()
    if "group_sd" in post:
        record["group_sd"] = np.round(post["group_sd"].mean(("chain", "draw")).values, 3).tolist()
    return record


def table(results: dict) -> str:
    head = ("| case | label | commit | fit CPU s | max R-hat | min ESS bulk/tail | div | steps/draw | "
            "parameterisation |")
    lines = [head, "|" + "---|" * 9]
    for case, labels in results.items():
        for label, r in labels.items():
            lines.append(f"| {case} | {label} | {r.get('commit', '')} | {r['fit_cpu_s']} | {r['max_r_hat']} | "
                         f"{r['min_ess_bulk']}/{r['min_ess_tail']} | {r['divergences']} of {r['draws']} | "
                         f"{r['steps_per_draw']} | {r.get('parameterisation') or '-'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    for name in args.cases:
        record = run(name, args.label)
        record["commit"] = commit
        print(name, args.label, json.dumps(record), flush=True)
        results = json.loads(JSON.read_text()) if JSON.exists() else {}
        results.setdefault(name, {})[args.label] = record
        JSON.write_text(json.dumps(results, indent=2) + "\n")
        md = RESULTS / "group_pooling.md"
        notes = md.read_text().partition("## Notes")[2] if md.exists() else ""
        md.write_text(HEADER + table(results) + ("\n## Notes" + notes if notes else ""))


if __name__ == "__main__":
    main()
