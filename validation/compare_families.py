"""CDNOW 39/39-week comparison of every continuous-time purchase family present at run time (issue 18, item 8).

The families are found in the public API when the script runs: every model class
whose instances are purchase-count models (``bayesclv.models.TransactionModel``)
and whose likelihood columns the RFM frame of ``rfm_summary`` carries (so a
discrete-time family, or one needing statistics the frame lacks, is listed as
skipped with the reason). A family with a regularity ``k`` (CNBD-k) is fitted
with k = 2 and 3 (k = 1 is its base family). Each pooled family is also fitted grouped by the
first-purchase-week cohort (partial pooling). Each model is fitted by its own
default posterior method and settings (NUTS for the pooled families, NUTS with
the latents integrated out for the individual-level ones, the compiled sweeps
for the Pareto/GGG) unless ``--method``, ``--draws``, ``--tune`` or ``--chains``
says otherwise, and all are compared by ``bayesclv.compare``: PSIS-LOO, holdout
MAE/RMSE/total, randomised-PIT coverage, AUC of P(alive), Brier, fit time.

LOO is comparable only between models with the same observations per customer
(``frequency, recency, T``): ``bayesclv.compare`` refuses it for any other (a joint
spend model's spend columns, a model fitted to other data), and the table says why.
The hierarchical models' pointwise terms integrate each customer's latents out
(``log p(y_i | population draw)``, ``models/integrated_loglik.py``), the pooled
models' kind of term; the Pareto/GGG's are its own sweeps' population terms of the
same three statistics.

Usage::

    uv run python validation/compare_families.py [sample|full] [--draws N --tune N --chains N --method M]
                                                 [--skip "MODEL=REASON" ...] [--only MODEL ...] [--rewrite]
                                                 [--fitted "MODEL=PATH" ...]

Writes ``validation/results/compare_families_<kind>.{csv,md,html,json}`` (``..._<kind>_map...`` with ``--method map``).
With ``--only`` just the named models are fitted and scored, and their rows replace
those of the existing table (the others are kept, each row labelled with its run):
a partial refresh when a few models changed and the whole table would not fit the
time at hand. Fit times of different runs are not comparable (other code, other load),
and ``se_diff`` needs both models' pointwise elpd, so it is given only within a run.
``--rewrite`` fits nothing: it writes the .csv/.html/.md again from the .json, with
the notes as this script now words them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

import bayesclv as bc
from bayesclv.errors import ArgumentError
from bayesclv.models import CLVModel, TransactionModel
from bayesclv.models.joint_spend import JointSpendPredictions
from bayesclv.report.comparison import comparison_page

RESULTS = Path(__file__).parent / "results"
LOO_NOTE = [
    "LOO: every row's pointwise term is a density of the same observations, each customer's purchase times "
    "(`frequency, recency, T`; the CNBD-k's and Pareto/GGG's log inter-purchase-time sum `litt` is a statistic of "
    "those times, not a further observation), so `elpd_loo` compares across rows. The pooled models' terms "
    "integrate the customer's rates out; so do the hierarchical models' (`log p(y_i | population draw)`, "
    "`models/integrated_loglik.py`), which keeps their Pareto k low. The Pareto/GGG's terms are still taken at "
    "each draw's own latents of the customer (regularity, rates), which leaving the customer out moves: its "
    "Pareto k are high (the note gives how many customers) and its `elpd_loo` is likely too high, so do not "
    "rank it by LOO (such terms overstated the hierarchical models' elpd by 199 and 348 on the sample before "
    "they were integrated: `hb_integrated_loo_sample.md`); compare it by the holdout columns. "
    "The joint spend models are not rows: their observations add spend, so `bayesclv.compare` would refuse "
    "their LOO against these. The hierarchical rows are fitted without covariates here; "
    "`hb_integrated_loo_*.md` fits them with the covariate log first-purchase amount, hence other figures.",
]
MERGE_NOTE = [
    "Rows of two runs (column `run`): the refitted rows are this run's, the others were kept from the earlier "
    "table. Fit times of different runs are not comparable (other code, other machine load). `elpd_diff` is "
    "against the best row of either run; `se_diff` is given only within the best row's run (it needs both "
    "models' pointwise elpd, which the results file does not keep).",
]


def families(rfm: pd.DataFrame) -> tuple[dict[str, type], dict[str, str]]:
    """Continuous-time purchase-model classes of the public API that can fit ``rfm``, and the skipped ones."""
    found, skipped = {}, {}
    for name in bc.__all__:
        cls = getattr(bc, name)
        if not (isinstance(cls, type) and issubclass(cls, CLVModel)):
            continue
        needs_k = "k" in inspect.signature(cls).parameters
        try:
            model = cls(k=2) if needs_k else cls()
        except (TypeError, ArgumentError) as exc:  # a family that needs another setting (e.g. covariates)
            skipped[name] = f"needs constructor arguments ({exc})"
            continue
        if not isinstance(model, TransactionModel):
            continue  # spend or retention models
        if isinstance(model, JointSpendPredictions):
            skipped[name] = "its purchase model is the hierarchical family's, with spend joined to its latents"
            continue
        missing = [c for c in model.data_columns if c not in rfm.columns]
        if missing:
            skipped[name] = f"likelihood columns {missing} not in the continuous-time RFM frame"
            continue
        found[name] = cls
    return found, skipped


def specs(found: dict[str, type]) -> tuple[dict[str, CLVModel], dict[str, str]]:
    """One model per family and a cohort-grouped variant of each family that pools by group."""
    out, skipped = {}, {}
    for name, cls in found.items():
        if "k" in inspect.signature(cls).parameters:  # Erlang-k regularity: k = 2 and 3 beside the k = 1 family
            for k in (2, 3):
                model = cls(k=k)
                out[model.display_name] = model
            continue
        model = cls()
        out[model.display_name] = model
        if {"group", "pooling"} <= set(inspect.signature(cls).parameters):
            out[f"{model.display_name} grouped by cohort"] = cls(group="cohort", pooling="partial")
    first = [n for n in out if n == "BG/NBD"]  # the LOO reference: the classic model first
    return {n: out[n] for n in first + [n for n in out if n not in first]}, skipped


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (numbers to 4 decimals, missing as "-")."""
    def cell(v):
        return "-" if pd.isna(v) else f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)

    rows = [[str(i), *(cell(v) for v in row)] for i, row in zip(table.index, table.itertuples(index=False))]
    head = [table.index.name or "", *table.columns]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def run_label() -> str:
    """The commit this run's code is (short hash, ``+`` when the worktree has uncommitted changes)."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=RESULTS).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+" if git("status", "--porcelain", "--", "../../src") else "")


def merged(table: pd.DataFrame, previous: dict, label: str) -> pd.DataFrame:
    """This run's rows, each labelled ``run``, with the rows of ``previous`` (a results JSON) it did not refit.

    The rows are re-ranked by ``elpd_loo`` and ``elpd_diff`` recomputed against the
    best row of either run; ``se_diff`` needs both models' pointwise elpd, which a
    results file does not keep, so it is kept only for the rows of the run whose own
    reference (``se_diff`` 0) is the best row now.
    """
    old = pd.DataFrame.from_dict(previous["table"], orient="index")
    old = old.drop(index=[n for n in table.index if n in old.index])
    old["run"] = old["run"] if "run" in old.columns else previous.get("run", "earlier run")
    new = table.assign(run=label)
    both = pd.concat([new, old[[c for c in new.columns if c in old.columns]]])
    both.index.name = "model"
    both = both.sort_values("elpd_loo", ascending=False, kind="stable", na_position="last")
    loo = both["elpd_loo"].notna()
    both["rank"] = pd.array([pd.NA] * len(both), dtype="Int64")
    both.loc[loo, "rank"] = range(int(loo.sum()))
    if loo.any():
        best = both.index[0]
        both.loc[loo, "elpd_diff"] = both.loc[best, "elpd_loo"] - both.loc[loo, "elpd_loo"]
        # a run's se_diff are against that run's best row (se_diff 0): valid only if it is the best row now
        valid = (both["run"] == both.loc[best, "run"]) & (both.loc[best, "se_diff"] == 0)
        both.loc[~valid, "se_diff"] = float("nan")
        both.loc[best, "se_diff"] = 0.0
    both.attrs = dict(table.attrs)  # the interval's probability and the LOO reference, for the HTML page
    return both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="sample", choices=["sample", "full"])
    parser.add_argument("--draws", type=int, help="posterior draws per chain (default: each model's own)")
    parser.add_argument("--tune", type=int, help="warm-up steps (default: each model's own)")
    parser.add_argument("--chains", type=int, help="chains (default: each model's own)")
    parser.add_argument("--method", choices=["nuts", "map"], help="one method for all (default: each model's own)")
    parser.add_argument("--skip", action="append", default=[], metavar="MODEL=REASON",
                        help="leave a model out, with the reason the results file gives (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="MODEL",
                        help="fit only this model and merge its row into the existing table (repeatable)")
    parser.add_argument("--previous-run", default="earlier run", metavar="LABEL",
                        help="label of the kept rows when the existing table does not record its run")
    parser.add_argument("--note", action="append", default=[], metavar="MODEL=TEXT",
                        help="add TEXT to a row's note (e.g. what changed since a kept row's run; repeatable)")
    parser.add_argument("--fitted", action="append", default=[], metavar="MODEL=PATH",
                        help="take this model's fit from a file written by its save() instead of fitting it "
                             "(e.g. the long Pareto/GGG fit of paretoggg_cdnow.py --save-full; repeatable)")
    parser.add_argument("--rewrite", action="store_true",
                        help="fit nothing: write the existing table's .csv/.html/.md again from its .json")
    args = parser.parse_args()
    stem = RESULTS / f"compare_families_{args.kind}{'_map' if args.method == 'map' else ''}"
    if args.rewrite:
        print(rewrite(stem, args.note))
        return
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    label = run_label()

    tx = bc.datasets.load_cdnow(args.kind)
    rfm = bc.rfm_summary(tx, calibration_end="1997-09-30", cohort="W", litt=True)
    found, skipped = families(rfm)
    models, more = specs(found)
    skipped.update(more)
    for item in args.skip:
        name, _, reason = item.partition("=")
        if name not in models:
            parser.error(f"--skip {name!r}: no such model (models: {', '.join(models)})")
        del models[name]
        skipped[name] = f"left out of this run: {reason or 'no reason given'}"
    if args.method == "map":
        for name in [n for n, m in models.items() if "map" in m.unsupported_methods]:
            skipped[name] = f"cannot be fitted by MAP ({models.pop(name).unsupported_methods['map']})"
    previous = None
    if args.only:
        unknown = [n for n in args.only if n not in models]
        if unknown:
            parser.error(f"--only {unknown}: no such model (models: {', '.join(models)})")
        models = {n: m for n, m in models.items() if n in args.only}
        previous = json.loads(stem.with_suffix(".json").read_text())
        previous.setdefault("run", args.previous_run)
        skipped = {n: why for n, why in {**previous["skipped"], **skipped}.items()
                   if n not in models and n not in previous["table"]}
    fit = {"random_seed": 2026, "progressbar": False}
    fit.update({key: value for key, value in [("method", args.method), ("draws", args.draws), ("tune", args.tune),
                                              ("chains", args.chains)] if value is not None})
    fitted = dict(item.partition("=")[::2] for item in args.fitted)
    unknown = [n for n in fitted if n not in models]
    if unknown:
        parser.error(f"--fitted {unknown}: no such model (models: {', '.join(models)})")
    for name, model in models.items():  # fitted here, one by one, so the log shows progress
        if name in fitted:
            models[name] = model = bc.load(fitted[name])
            post = model.posterior
            d = model.diagnostics
            args.note.append(f"{name}=not refitted here: the fit saved in {fitted[name]} (max R-hat "
                             f"{d.get('max_r_hat', float('nan')):.3f}, min bulk ESS "
                             f"{d.get('min_ess_bulk', float('nan')):.0f}), scored on the "
                             f"{post.sizes['chain']} x {post.sizes['draw']} draws it stores")
            print(f"{name}: loaded from {fitted[name]}; {model.diagnostics}", flush=True)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(rfm, **fit)
        print(f"{name}: {model.diagnostics['fit_seconds']:.1f} s wall, {model.diagnostics['fit_cpu_seconds']:.1f} s "
              f"CPU; {model.diagnostics}" + "".join(f"\n  warning: {w.message}" for w in caught), flush=True)
    start = time.process_time()
    table = bc.compare(models, rfm, random_seed=7)
    compare_cpu = time.process_time() - start
    table = annotated(merged(table, previous, label) if previous else table.assign(run=label), args.note)
    meta = {"data": f"CDNOW {args.kind}", "customers": len(rfm),
            "command": "uv run python validation/compare_families.py " + " ".join(
                f"'{a}'" if " " in a else a for a in sys.argv[1:]),
            "run": label, "runs": sorted(set(table["run"])), "started_utc": started,
            "ended_utc": time.strftime("%H:%M", time.gmtime()), "fit": fit, "skipped": skipped,
            "refitted": list(models), "loo_reference": table.attrs.get("loo_reference"),
            "compare_cpu_seconds": compare_cpu, "load_average": os.getloadavg(),
            "cpus": os.cpu_count(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "python": platform.python_version(), "bayesclv": bc.__version__,
            "table": json.loads(table.to_json(orient="index"))}
    print(write(stem, table, meta))


def write(stem: Path, table: pd.DataFrame, meta: dict) -> str:
    """Write the table as ``stem``.csv/.html/.md and ``meta`` (holding the table) as .json; return the markdown."""
    table.to_csv(stem.with_suffix(".csv"))
    settings = ("each model's default fit" if set(meta["fit"]) <= {"random_seed", "progressbar"} else
                ", ".join(f"{key} {value}" for key, value in meta["fit"].items()
                          if key not in ("random_seed", "progressbar")))
    subtitle = f"{meta['data']}: {meta['customers']:,} customers, calibration weeks 1-39, holdout weeks 40-78; {settings}"
    label, merged_runs = meta["run"], len(meta["runs"]) > 1
    others = ", ".join(r for r in meta["runs"] if r != label)
    runs_said = (f"; {', '.join(meta['refitted'])} refitted at {label}, the other rows kept from {others} "
                 "(fit times of different runs are not comparable)" if merged_runs else "")
    stem.with_suffix(".html").write_text(comparison_page(table, title="CDNOW: purchase-model families compared",
                                                         subtitle=subtitle + runs_said), encoding="utf-8")
    shown = ["family", "fit_method", "fit_seconds", "fit_cpu_seconds", "elpd_loo", "se", "elpd_diff", "se_diff",
             "max_pareto_k", "mae", "rmse", "predicted_total", "actual_total", "pit_coverage_90", "coverage_90",
             "auc_p_alive", "auc", "brier", "run"]
    span = f"{meta['started_utc']}-{meta['ended_utc']}" if "ended_utc" in meta else f"started {meta['started_utc']}"
    runs = f"commit `{label}`, {span} UTC" + (
        f", {len(meta['refitted'])} model(s) refitted, the other rows kept from the earlier table ({others})"
        if merged_runs else "")
    lines = [f"# {subtitle}", "", f"Command: `{meta['command']}` ({runs}); "
             f"load average at the end {meta['load_average'][0]:.1f} on {meta['cpus']} CPUs (wall times inflated: "
             "CPU seconds, all threads of the process, are the fit-time figures)."
             + (f" Written again without fitting by `{meta['rewritten']}`." if "rewritten" in meta else ""), "",
             markdown(table[shown]), "", "Notes:", ""]
    lines += [f"- {name}: {note}" for name, note in table["note"].items() if isinstance(note, str) and note]
    lines += [f"- skipped {name}: {why}" for name, why in meta["skipped"].items()]
    if table["elpd_loo"].notna().any():
        lines += ["", *LOO_NOTE]
    if merged_runs:
        lines += ["", *MERGE_NOTE]
    lines += ["", f"compare (LOO + holdout scoring of this run's models) took {meta['compare_cpu_seconds']:.0f} s CPU."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
    return "\n".join(lines)


def annotated(table: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """``table`` with each ``MODEL=TEXT`` of ``notes`` added to that row's note."""
    table = table.copy()
    for item in notes:
        name, _, text = item.partition("=")
        if name not in table.index:
            raise SystemExit(f"--note {name!r}: no such row (rows: {', '.join(table.index)})")
        note = table.loc[name, "note"]
        table.loc[name, "note"] = "; ".join(filter(None, [note if isinstance(note, str) else "", text]))
    return table


def rewrite(stem: Path, notes: list[str]) -> str:
    """Write the .csv/.html/.md of ``stem`` again from its .json (no fit): the script's text as it is now."""
    meta = json.loads(stem.with_suffix(".json").read_text())
    table = pd.DataFrame.from_dict(meta["table"], orient="index")
    table.index.name = "model"
    table["rank"] = table["rank"].astype("Int64")
    table.attrs = {"prob": 0.9, "loo_reference": meta.get("loo_reference", "BG/NBD")}
    table = annotated(table, notes)
    meta["table"] = json.loads(table.to_json(orient="index"))
    meta["rewritten"] = "uv run python validation/compare_families.py " + " ".join(
        f"'{a}'" if " " in a else a for a in sys.argv[1:])
    return write(stem, table, meta)


if __name__ == "__main__":
    main()
