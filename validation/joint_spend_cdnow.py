"""The joint spend model on CDNOW: the spend-frequency correlation and holdout spend / revenue against
pooled BG/NBD + Gamma-Gamma on the same split (calibration to 1997-09-30, holdout weeks 40-78).

For each data set (``sample``, then ``full``) it fits ``JointSpendParetoNBDModel`` and
``JointSpendBetaGeoModel`` (NUTS, latents integrated out) and the pooled ``BetaGeoModel`` +
``GammaGammaModel`` and reports:

- the posterior mean and 90% interval of the three correlations of ``(log lambda, dropout, m)``;
- holdout spend: MAE of the mean value per holdout purchase day, over customers who buy in the holdout,
  of the posterior-mean expected spend;
- holdout revenue: MAE over all customers of the posterior-mean expected holdout revenue against each
  customer's holdout revenue, and the total predicted (mean, 90% interval over draws) vs actual.

With ``--cohort M`` (or ``W``, ``Q``) the joint models are fitted with ``group="cohort"``, each customer's
first-purchase period, and the rows are filed as ``<kind>, grouped by cohort (M)`` with the posterior
mean of each process's ``group_sd`` and each cohort's spend intercept.

Run: ``nice -n 10 uv run python validation/joint_spend_cdnow.py [sample|full ...] [--draws N --chains C]
[--cohort M]``; writes ``validation/results/joint_spend_cdnow.{md,json}`` (CPU seconds per fit recorded).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import bayesclv as bc

RESULTS = Path(__file__).parent / "results"
HOLDOUT = 39.0  # weeks 40-78


def _cpu() -> float:
    return time.process_time()


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.quantile(values, 0.05)), float(np.quantile(values, 0.95))]


def _scores(name: str, spend, revenue, rfm, cpu: float, extra: dict | None = None) -> dict:
    """Holdout accuracy of per-draw expected spend and revenue (DataArrays over chain, draw, customer_id)."""
    buyers = rfm["frequency_holdout"].to_numpy() > 0
    actual_spend = rfm["monetary_value_holdout"].to_numpy()
    actual_revenue = rfm["frequency_holdout"].to_numpy() * actual_spend
    spend_mean = spend.mean(("chain", "draw")).values
    revenue_mean = revenue.mean(("chain", "draw")).values
    totals = revenue.sum("customer_id").values.ravel()
    return {
        "model": name, "cpu_s": round(cpu, 1),
        "spend_mae_holdout_buyers": float(np.mean(np.abs(spend_mean[buyers] - actual_spend[buyers]))),
        "revenue_mae": float(np.mean(np.abs(revenue_mean - actual_revenue))),
        "revenue_total_predicted": float(totals.mean()), "revenue_total_90": _interval(totals),
        "revenue_total_actual": float(actual_revenue.sum()),
        **(extra or {}),
    }


def _joint(cls, rfm, settings: dict, group: str | None = None) -> dict:
    cpu = _cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = cls(group=group).fit(rfm, **settings)
    fit_cpu = _cpu() - cpu
    corr = model.posterior["correlation"]
    correlations = {str(pair): {"mean": float(corr.sel(pair=pair).mean()),
                                "interval_90": _interval(corr.sel(pair=pair).values.ravel())}
                    for pair in corr["pair"].values}
    diag = model.diagnostics
    extra = {"fit_cpu_s": round(fit_cpu, 1), "correlations": correlations,
             "spend_sd": float(model.posterior["spend_sd"].mean()),
             "max_r_hat": float(diag["max_r_hat"]), "min_bulk_ess": float(diag["min_ess_bulk"]),
             "min_tail_ess": float(diag["min_ess_tail"]), "divergences": int(diag["divergences"]),
             "nodes": int(diag["nodes"])}
    if group is not None:
        post = model.posterior
        extra["group_sd"] = {str(p): float(post["group_sd"].sel(process=p).mean()) for p in post["process"].values}
        spend = post["coefficients"].sel(covariate="intercept", process="spend") + post["group_offset"].sel(
            process="spend")
        extra["spend_intercepts"] = {str(g): {"mean": float(spend.sel(group=g).mean()),
                                              "interval_90": _interval(spend.sel(group=g).values.ravel())}
                                     for g in spend["group"].values}
    spend, revenue = model.expected_spend(), model.expected_revenue(HOLDOUT)
    return _scores(model.display_name, spend, revenue, rfm, _cpu() - cpu, extra)


def _pooled(rfm, settings: dict) -> dict:
    cpu = _cpu()
    keep = {k: settings[k] for k in ("draws", "tune", "chains", "random_seed", "progressbar")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bgnbd = bc.BetaGeoModel().fit(rfm, **keep)
        gg = bc.GammaGammaModel().fit(rfm, **keep)
    spend = gg.expected_spend(rfm)
    revenue = bgnbd.expected_purchases(HOLDOUT, rfm) * spend  # paired draw by draw
    return _scores("BG/NBD + Gamma-Gamma (pooled)", spend, revenue, rfm, _cpu() - cpu)


def run(kind: str, settings: dict, cohort: str | None = None) -> dict:
    tx = bc.datasets.load_cdnow(kind)
    try:
        rfm = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30", log_spend=True, cohort=cohort)
        dropped = []
    except bc.errors.DataValidationError as err:  # a repeat purchase day of value 0 has no log value
        dropped = [int(c) for c in err.rows]
        rfm = bc.rfm_summary(tx[~tx["customer_id"].isin(dropped)], value="value", calibration_end="1997-09-30",
                             log_spend=True, cohort=cohort)
    out = {"customers": len(rfm), "dropped_zero_value_customers": dropped,
           "settings": {k: v for k, v in settings.items() if k != "progressbar"}}
    group = None
    if cohort is not None:
        group = "cohort"
        out["groups"] = {str(k): int(v) for k, v in rfm["cohort"].value_counts().sort_index().items()}
    out["fits"] = [_pooled(rfm, settings)]
    for cls in (bc.JointSpendParetoNBDModel, bc.JointSpendBetaGeoModel):
        try:
            out["fits"].append(_joint(cls, rfm, settings, group))
        except bc.errors.DataValidationError as err:  # the rule cannot resolve the population covariance
            out["fits"].append({"model": cls.display_name, "error": str(err)})
        print(kind, json.dumps(out["fits"][-1]), flush=True)
    return out


def _markdown(results: dict) -> str:
    lines = ["# Joint spend model on CDNOW (holdout weeks 40-78)", "",
             "Written by `validation/joint_spend_cdnow.py`. Correlations: posterior mean [90% interval] of the",
             "population correlations of (log purchase rate, dropout latent, log mean spend); `purchase-spend` is",
             "the spend-frequency correlation that Gamma-Gamma takes to be 0. Spend MAE: mean value per holdout",
             "purchase day, customers who buy in the holdout. Revenue: each customer's holdout revenue.", ""]
    for kind, res in results.items():
        dropped = (f"; left out for a repeat purchase day of value 0: {res['dropped_zero_value_customers']}"
                   if res.get("dropped_zero_value_customers") else "")
        groups = f"; customers per cohort {res['groups']}" if res.get("groups") else ""
        lines += [f"## CDNOW {kind} ({res['customers']} customers; {res['settings']}{dropped}{groups})", "",
                  "| model | purchase-dropout | purchase-spend | dropout-spend | spend MAE | revenue MAE | "
                  "total predicted [90%] | total actual | max R-hat | min ESS bulk/tail | div | CPU s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for f in res["fits"]:
            if "error" in f:
                lines.append(f"| {f['model']} | not fitted: {f['error']} |")
                continue
            c = f.get("correlations", {})
            cells = [f"{c[p]['mean']:+.3f} [{c[p]['interval_90'][0]:+.3f}, {c[p]['interval_90'][1]:+.3f}]"
                     if p in c else "0 (assumed)" if p == "purchase-spend" else "-"
                     for p in ("purchase-dropout", "purchase-spend", "dropout-spend")]
            lo, hi = f["revenue_total_90"]
            conv = (f"{f['max_r_hat']:.3f}", f"{f['min_bulk_ess']:.0f}/{f['min_tail_ess']:.0f}",
                    str(f["divergences"])) if "max_r_hat" in f else ("-", "-", "-")
            lines.append(f"| {f['model']} | " + " | ".join(cells)
                         + f" | {f['spend_mae_holdout_buyers']:.2f} | {f['revenue_mae']:.2f} | "
                         f"{f['revenue_total_predicted']:,.0f} [{lo:,.0f}, {hi:,.0f}] | "
                         f"{f['revenue_total_actual']:,.0f} | {' | '.join(conv)} | {f['cpu_s']:.0f} |")
        lines.append("")
        grouped = [f for f in res["fits"] if "group_sd" in f]
        if grouped:
            lines += ["| model | group sd (purchase, dropout, spend) | spend intercept per cohort [90%] |",
                      "|---|---|---|"]
            for f in grouped:
                sds = ", ".join(f"{v:.3f}" for v in f["group_sd"].values())
                cohorts = "; ".join(f"{g}: {v['mean']:.3f} [{v['interval_90'][0]:.3f}, {v['interval_90'][1]:.3f}]"
                                    for g, v in f["spend_intercepts"].items())
                lines.append(f"| {f['model']} | {sds} | {cohorts} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kinds", nargs="*", default=["sample", "full"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cohort", choices=["W", "M", "Q"], help="group the joint models by first-purchase cohort")
    args = parser.parse_args()
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "random_seed": 17,
                "progressbar": False}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "joint_spend_cdnow.json"
    for kind in args.kinds:
        result = run(kind, settings, args.cohort)
        results = json.loads(path.read_text()) if path.exists() else {}  # another kind may have been written
        results[kind if args.cohort is None else f"{kind}, grouped by cohort ({args.cohort})"] = result
        path.write_text(json.dumps(results, indent=2))
        (RESULTS / "joint_spend_cdnow.md").write_text(_markdown(results))


if __name__ == "__main__":
    main()
