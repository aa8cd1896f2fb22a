"""Command line: ``bayesclv demo`` and ``bayesclv fit``.

Errors in the user's input are reported on one line (``error: ...``) with exit
status 2, never as a traceback.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

app = typer.Typer(
    help="Bayesian customer-lifetime-value models: fit BG/NBD or Pareto/NBD with Gamma-Gamma spend "
    "and get each customer's CLV, P(alive) and expected purchases with credible intervals.",
    no_args_is_help=True,
    add_completion=False,
)

MODELS = {"bgnbd": "BetaGeoModel", "pnbd": "ParetoNBDModel"}


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        _fail(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # any parser failure becomes a one-line message
        _fail(f"cannot read {path}: {exc}")


def _customer_table(transaction_model, spend_model, rfm, *, horizon, time_unit, discount_rate, margin, prob):
    """Per-customer CLV, P(alive) and expected purchases with intervals."""
    from bayesclv import customer_lifetime_value, intervals
    from bayesclv.data import TIME_UNITS

    clv = customer_lifetime_value(transaction_model, spend_model, rfm, horizon=horizon,
                                  time_unit=time_unit, discount_rate=discount_rate, margin=margin)
    t = horizon * TIME_UNITS[time_unit] / TIME_UNITS[transaction_model.time_unit]
    parts = {
        "clv": clv,
        "p_alive": transaction_model.probability_alive(rfm),
        "expected_purchases": transaction_model.expected_purchases(t, rfm),
    }
    table = pd.DataFrame(index=pd.Index(rfm["customer_id"].to_numpy(), name="customer_id"))
    for name, values in parts.items():
        summary = intervals(values, prob=prob)
        for col in ("mean", "lower", "upper"):
            table[f"{name}_{col}"] = summary[col].to_numpy()
    for col in ("frequency", "recency", "T", "monetary_value"):
        table[col] = rfm[col].to_numpy()
    return table


def _run(transactions, *, customer_id, date, value, model_name, calibration_end, time_unit, draws, tune,
         chains, seed, horizon, horizon_unit, discount_rate, margin, out, prob, method, quiet):
    from bayesclv import GammaGammaModel, rfm_summary
    from bayesclv import models as model_module
    from bayesclv.errors import BayesCLVError, ConvergenceWarning

    if model_name not in MODELS:
        _fail(f"--model must be one of {sorted(MODELS)}, got {model_name!r}")
    try:
        rfm = rfm_summary(transactions, customer_id=customer_id, date=date, value=value,
                          time_unit=time_unit, calibration_end=calibration_end)
        typer.echo(f"{len(rfm):,} customers, {int(rfm['frequency'].sum()):,} repeat purchases "
                   f"(time unit {time_unit!r})")
        transaction_model = getattr(model_module, MODELS[model_name])()
        spend_model = GammaGammaModel()
        fit_args = dict(method=method, draws=draws, tune=tune, chains=chains, random_seed=seed,
                        progressbar=not quiet)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            for model in (transaction_model, spend_model):
                start = time.perf_counter()
                typer.echo(f"fitting {model.display_name} ({method}) ...")
                model.fit(rfm, **fit_args)
                typer.echo(f"  done in {time.perf_counter() - start:.1f} s; {model.diagnostics}")
        for w in caught:  # convergence and data warnings (e.g. customers left out of a fit)
            if issubclass(w.category, UserWarning):
                typer.echo(f"warning: {w.message}", err=True)
        pd.set_option("display.width", 140)
        for model in (transaction_model, spend_model):
            typer.echo(f"\n{model.display_name} parameters ({prob:.0%} HDI):")
            typer.echo(model.summary(prob=prob).round(4).to_string())
        table = _customer_table(transaction_model, spend_model, rfm, horizon=horizon, time_unit=horizon_unit,
                                discount_rate=discount_rate, margin=margin, prob=prob)
    except BayesCLVError as exc:
        _fail(str(exc))
    top = table.sort_values("clv_mean", ascending=False).head(10)
    typer.echo(f"\nTop 10 customers by CLV ({horizon} x {horizon_unit!r} periods, "
               f"{discount_rate:g} discount per period; {prob:.0%} credible intervals):")
    typer.echo(top[["clv_mean", "clv_lower", "clv_upper", "p_alive_mean", "expected_purchases_mean"]]
               .round(2).to_string())
    total = table["clv_mean"].sum()
    typer.echo(f"\nsum of posterior-mean CLV over all customers: {total:,.0f}")
    out = Path(out)
    if out.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(out)
    else:
        table.to_csv(out)
    typer.echo(f"per-customer table written to {out}")


@app.command()
def demo(
    full: Annotated[bool, typer.Option("--full", help="use all 23,570 CDNOW customers instead of the 2,357 sample")] = False,
    model: Annotated[str, typer.Option(help="transaction model: bgnbd or pnbd")] = "bgnbd",
    draws: Annotated[int, typer.Option(help="posterior draws per chain")] = 1000,
    tune: Annotated[int, typer.Option(help="NUTS tuning steps per chain")] = 1000,
    chains: Annotated[int, typer.Option(help="NUTS chains")] = 4,
    seed: Annotated[int, typer.Option(help="random seed")] = 2026,
    out: Annotated[Path, typer.Option(help="per-customer output (.csv or .parquet)")] = Path("bayesclv_demo_output.csv"),
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Fit BG/NBD (or Pareto/NBD) + Gamma-Gamma by NUTS on the bundled CDNOW data.

    Calibration ends 1997-09-30 (39 weeks); CLV over 12 months at 1% per month.
    """
    from bayesclv.datasets import load_cdnow

    kind = "full" if full else "sample"
    typer.echo(f"bayesclv demo: CDNOW {kind}, {model} + Gamma-Gamma")
    _run(load_cdnow(kind), customer_id="customer_id", date="date", value="value", model_name=model,
         calibration_end="1997-09-30", time_unit="W", draws=draws, tune=tune, chains=chains, seed=seed,
         horizon=12, horizon_unit="M", discount_rate=0.01, margin=1.0, out=out, prob=0.9, method="nuts",
         quiet=quiet)


@app.command()
def fit(
    transactions: Annotated[Path, typer.Argument(help="transaction log (.csv or .parquet), one row per transaction")],
    customer_id: Annotated[str, typer.Option("--customer-id", help="column with the customer id")] = "customer_id",
    date: Annotated[str, typer.Option(help="column with the transaction date")] = "date",
    value: Annotated[str, typer.Option(help="column with the transaction value")] = "value",
    model: Annotated[str, typer.Option(help="transaction model: bgnbd or pnbd")] = "bgnbd",
    calibration_end: Annotated[str | None, typer.Option(help="last date of the calibration period (YYYY-MM-DD)")] = None,
    time_unit: Annotated[str, typer.Option(help="model time unit: D, W, M or Y")] = "W",
    method: Annotated[str, typer.Option(help="nuts, map or advi")] = "nuts",
    draws: Annotated[int, typer.Option(help="posterior draws per chain")] = 1000,
    tune: Annotated[int, typer.Option(help="NUTS tuning steps per chain")] = 1000,
    chains: Annotated[int, typer.Option(help="NUTS chains")] = 4,
    seed: Annotated[int, typer.Option(help="random seed")] = 2026,
    horizon: Annotated[int, typer.Option(help="CLV horizon in periods of --horizon-unit")] = 12,
    horizon_unit: Annotated[str, typer.Option(help="CLV period: D, W, M or Y")] = "M",
    discount_rate: Annotated[float, typer.Option(help="discount rate per CLV period")] = 0.01,
    margin: Annotated[float, typer.Option(help="profit margin applied to revenue")] = 1.0,
    prob: Annotated[float, typer.Option(help="credible interval probability")] = 0.9,
    out: Annotated[Path, typer.Option(help="per-customer output (.csv or .parquet)")] = Path("bayesclv_output.csv"),
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Fit a model to your own transaction log and write per-customer CLV, P(alive), purchases."""
    if method not in ("nuts", "map", "advi"):
        _fail(f"--method must be nuts, map or advi, got {method!r}")
    for name, unit in (("--time-unit", time_unit), ("--horizon-unit", horizon_unit)):
        if unit not in ("D", "W", "M", "Y"):
            _fail(f"{name} must be one of D, W, M, Y, got {unit!r}")
    _run(_read_table(transactions), customer_id=customer_id, date=date, value=value, model_name=model,
         calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
         seed=seed, horizon=horizon, horizon_unit=horizon_unit, discount_rate=discount_rate, margin=margin,
         out=out, prob=prob, method=method, quiet=quiet)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m bayesclv``."""
    app(prog_name="bayesclv")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
