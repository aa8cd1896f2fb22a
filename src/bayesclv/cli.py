"""Command line: ``bayesclv demo``, ``fit``, ``report`` and ``evaluate``.

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

from bayesclv.arguments import check_prob

app = typer.Typer(
    help="Bayesian customer-lifetime-value models: fit BG/NBD or Pareto/NBD with Gamma-Gamma spend "
    "and get each customer's CLV, P(alive) and expected purchases with credible intervals.",
    no_args_is_help=True,
    add_completion=False,
)

MODELS = {"bgnbd": "BetaGeoModel", "pnbd": "ParetoNBDModel"}

# options shared by the commands (one declaration each)
TransactionsArg = Annotated[Path, typer.Argument(
    help="transaction log (.csv or .parquet), one row per transaction")]
CustomerIdOpt = Annotated[str, typer.Option("--customer-id", help="column with the customer id")]
DateOpt = Annotated[str, typer.Option(help="column with the transaction date")]
DateFormatOpt = Annotated[str | None, typer.Option(
    help="strftime format of the date column, e.g. %Y%m%d (default: let pandas infer)")]
ValueOpt = Annotated[str, typer.Option(help="column with the transaction value")]
ModelOpt = Annotated[str, typer.Option(help="transaction model: bgnbd or pnbd")]
TimeUnitOpt = Annotated[str, typer.Option(help="model time unit: D, W, M or Y")]
DrawsOpt = Annotated[int, typer.Option(help="posterior draws per chain")]
TuneOpt = Annotated[int, typer.Option(help="NUTS tuning steps per chain")]
ChainsOpt = Annotated[int, typer.Option(help="NUTS chains")]
SeedOpt = Annotated[int, typer.Option(help="random seed")]
HorizonOpt = Annotated[int, typer.Option(help="CLV horizon in periods of --horizon-unit")]
HorizonUnitOpt = Annotated[str, typer.Option(help="CLV period: D, W, M or Y")]
DiscountRateOpt = Annotated[float, typer.Option(help="discount rate per CLV period")]
MarginOpt = Annotated[float, typer.Option(help="profit margin applied to revenue")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="no progress bars")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _read_table(path: Path, date: str | None = None, date_format: str | None = None) -> pd.DataFrame:
    """CSV (also .csv.gz) or Parquet; with ``date_format``, the ``date`` column is parsed with it.

    Dates that do not match the format become missing, and the data layer names their customers.
    """
    if not path.exists():
        _fail(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={date: str} if date_format else None)
    except Exception as exc:  # any parser failure becomes a one-line message
        _fail(f"cannot read {path}: {exc}")
    if date_format and date in table.columns:
        raw = table[date]
        table[date] = pd.to_datetime(raw.astype(str), format=date_format, errors="coerce")
        bad = table[date].isna() & raw.notna()
        if bad.any():
            _fail(f"column {date!r}: {int(bad.sum()):,} date(s) do not match --date-format {date_format!r} "
                  f"(first: {raw[bad].iloc[0]!r} in row {int(bad.to_numpy().argmax()) + 1})")
    return table


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


def _fit_models(transactions, *, customer_id, date, value, model_name, calibration_end, time_unit, draws, tune,
                chains, seed, method, quiet, spend=True):
    """RFM summary, then the transaction model (and the Gamma-Gamma spend model) fitted with progress."""
    from bayesclv import GammaGammaModel, rfm_summary
    from bayesclv import models as model_module
    from bayesclv.errors import ConvergenceWarning

    if model_name not in MODELS:
        _fail(f"--model must be one of {sorted(MODELS)}, got {model_name!r}")
    rfm = rfm_summary(transactions, customer_id=customer_id, date=date, value=value if spend else None,
                      time_unit=time_unit, calibration_end=calibration_end)
    typer.echo(f"{len(rfm):,} customers, {int(rfm['frequency'].sum()):,} repeat purchases "
               f"(time unit {time_unit!r})")
    fitted = [getattr(model_module, MODELS[model_name])()] + ([GammaGammaModel()] if spend else [])
    fit_args = dict(method=method, draws=draws, tune=tune, chains=chains, random_seed=seed,
                    progressbar=not quiet)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for model in fitted:
            start = time.perf_counter()
            typer.echo(f"fitting {model.display_name} ({method}) ...")
            model.fit(rfm, **fit_args)
            typer.echo(f"  done in {time.perf_counter() - start:.1f} s; {model.diagnostics}")
    for w in caught:  # convergence and data warnings (e.g. customers left out of a fit)
        if issubclass(w.category, UserWarning):
            typer.echo(f"warning: {w.message}", err=True)
    return rfm, fitted


def _write_table(table: pd.DataFrame, out: Path) -> None:
    """CSV, or Parquet for a .parquet/.pq suffix."""
    if out.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(out)
    else:
        table.to_csv(out)


def _run(transactions, *, customer_id, date, value, model_name, calibration_end, time_unit, draws, tune,
         chains, seed, horizon, horizon_unit, discount_rate, margin, out, prob, method, quiet):
    from bayesclv.errors import BayesCLVError

    try:
        rfm, (transaction_model, spend_model) = _fit_models(
            transactions, customer_id=customer_id, date=date, value=value, model_name=model_name,
            calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
            seed=seed, method=method, quiet=quiet)
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
    _write_table(table, Path(out))
    typer.echo(f"per-customer table written to {out}")


@app.command()
def demo(
    full: Annotated[bool, typer.Option("--full", help="use all 23,570 CDNOW customers instead of the 2,357 sample")] = False,
    model: ModelOpt = "bgnbd",
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    out: Annotated[Path, typer.Option(help="per-customer output (.csv or .parquet)")] = Path("bayesclv_demo_output.csv"),
    quiet: QuietOpt = False,
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
    transactions: TransactionsArg,
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    value: ValueOpt = "value",
    model: ModelOpt = "bgnbd",
    calibration_end: Annotated[str | None, typer.Option(help="last date of the calibration period (YYYY-MM-DD)")] = None,
    time_unit: TimeUnitOpt = "W",
    method: Annotated[str, typer.Option(help="nuts, map or advi")] = "nuts",
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    horizon: HorizonOpt = 12,
    horizon_unit: HorizonUnitOpt = "M",
    discount_rate: DiscountRateOpt = 0.01,
    margin: MarginOpt = 1.0,
    prob: Annotated[float, typer.Option(help="credible interval probability")] = 0.9,
    out: Annotated[Path, typer.Option(help="per-customer output (.csv or .parquet)")] = Path("bayesclv_output.csv"),
    quiet: QuietOpt = False,
) -> None:
    """Fit a model to your own transaction log and write per-customer CLV, P(alive), purchases."""
    _check_options(method=method, time_unit=time_unit, horizon_unit=horizon_unit)
    _run(_read_table(transactions, date, date_format), customer_id=customer_id, date=date, value=value, model_name=model,
         calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
         seed=seed, horizon=horizon, horizon_unit=horizon_unit, discount_rate=discount_rate, margin=margin,
         out=out, prob=prob, method=method, quiet=quiet)


def _check_options(*, method: str, time_unit: str, horizon_unit: str = "M", prob: float = 0.9) -> None:
    if method not in ("nuts", "map", "advi"):
        _fail(f"--method must be nuts, map or advi, got {method!r}")
    for name, unit in (("--time-unit", time_unit), ("--horizon-unit", horizon_unit)):
        if unit not in ("D", "W", "M", "Y"):
            _fail(f"{name} must be one of D, W, M, Y, got {unit!r}")
    try:
        check_prob(prob, "--prob")
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def report(
    transactions: TransactionsArg,
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    value: ValueOpt = "value",
    model: ModelOpt = "bgnbd",
    calibration_end: Annotated[str | None, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); adds a holdout section")] = None,
    time_unit: TimeUnitOpt = "W",
    method: Annotated[str, typer.Option(help="nuts (intervals to quote), map or advi (quick look)")] = "nuts",
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    horizon: HorizonOpt = 12,
    horizon_unit: HorizonUnitOpt = "M",
    discount_rate: DiscountRateOpt = 0.01,
    margin: MarginOpt = 1.0,
    prob: Annotated[float, typer.Option(help="probability inside every interval")] = 0.9,
    offer_cost: Annotated[float, typer.Option(help="targeting: cost of the offer per customer")] = 5.0,
    uplift: Annotated[float, typer.Option(help="targeting: assumed relative CLV uplift of the offer (0.1 = +10%)")] = 0.1,
    uplift_sd: Annotated[float, typer.Option(
        help="targeting: standard deviation of the uplift (normal); 0 = known uplift")] = 0.0,
    min_prob_positive: Annotated[float, typer.Option(
        help="targeting: target customers whose P(offer pays back) is at least this")] = 0.8,
    out: Annotated[Path, typer.Option(help="the HTML report")] = Path("bayesclv_report.html"),
    tables_dir: Annotated[Path | None, typer.Option(
        help="also write the report's tables (customers, tiers, stages, rfm_segments, targeting, total, "
        "parameters, holdout) into this folder")] = None,
    tables_format: Annotated[str, typer.Option(help="format of --tables-dir files: csv or parquet")] = "csv",
    quiet: QuietOpt = False,
) -> None:
    """Fit the models and write one self-contained HTML report (opens offline).

    The report holds a data overview, convergence diagnostics, parameters with
    intervals, CLV per customer with credible bands, value tiers, lifecycle
    stages and RFM segments with CLV totals, top customers, targeting of an
    offer and, with --calibration-end, a holdout check.
    """
    from scipy import stats

    from bayesclv.errors import BayesCLVError
    from bayesclv.report import build_report

    _check_options(method=method, time_unit=time_unit, horizon_unit=horizon_unit, prob=prob)
    if out.suffix.lower() not in (".html", ".htm"):
        _fail(f"--out must end in .html, got {out}")
    if tables_format not in ("csv", "parquet"):
        _fail(f"--tables-format must be csv or parquet, got {tables_format!r}")
    if uplift_sd < 0:
        _fail(f"--uplift-sd must be >= 0, got {uplift_sd!r}")
    tx = _read_table(transactions, date, date_format)
    try:
        rfm, (transaction_model, spend_model) = _fit_models(
            tx, customer_id=customer_id, date=date, value=value, model_name=model,
            calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
            seed=seed, method=method, quiet=quiet)
        result = build_report(
            transaction_model, spend_model, rfm, transactions=tx, customer_id=customer_id, date=date,
            horizon=horizon, horizon_unit=horizon_unit,
            discount_rate=discount_rate, margin=margin, prob=prob, offer_cost=offer_cost,
            uplift=stats.norm(uplift, uplift_sd) if uplift_sd > 0 else uplift,
            min_prob_positive=min_prob_positive, title=f"Customer lifetime value report: {transactions.name}",
            out=out, progressbar=not quiet, random_seed=seed)
    except BayesCLVError as exc:
        _fail(str(exc))
    except ValueError as exc:  # bad settings (e.g. a probability outside (0, 1))
        _fail(str(exc))
    typer.echo(f"report written to {out}")
    if tables_dir is not None:
        tables_dir.mkdir(parents=True, exist_ok=True)
        for name, table in result.tables.items():
            _write_table(table, tables_dir / f"{name}.{tables_format}")
        typer.echo(f"tables written to {tables_dir}/ ({', '.join(result.tables)})")


@app.command("evaluate")
def evaluate_command(
    transactions: TransactionsArg,
    calibration_end: Annotated[str, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); later transactions are the holdout")],
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    model: ModelOpt = "bgnbd",
    time_unit: TimeUnitOpt = "W",
    method: Annotated[str, typer.Option(help="nuts, map or advi")] = "nuts",
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    prob: Annotated[float, typer.Option(help="probability of the predictive intervals of holdout counts")] = 0.9,
    out: Annotated[Path, typer.Option(
        help="per-customer holdout table (.csv or .parquet): actual, predicted, interval, inside")
    ] = Path("bayesclv_evaluation.csv"),
    quiet: QuietOpt = False,
) -> None:
    """Fit on the calibration period and score the predictions on the holdout.

    Prints MAE/RMSE/bias of the expected holdout purchases, predicted vs
    actual totals, AUC and Brier score of P(active in holdout), coverage of
    the predictive intervals, and calibration by decile.
    """
    from bayesclv import evaluate
    from bayesclv.errors import BayesCLVError

    _check_options(method=method, time_unit=time_unit, prob=prob)
    tx = _read_table(transactions, date, date_format)
    try:
        rfm, (transaction_model,) = _fit_models(
            tx, customer_id=customer_id, date=date, value=None, model_name=model,
            calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
            seed=seed, method=method, quiet=quiet, spend=False)
        typer.echo("simulating holdout purchases ...")
        result = evaluate(transaction_model, rfm, prob=(prob,), random_seed=seed)
    except BayesCLVError as exc:
        _fail(str(exc))
    typer.echo(f"\nholdout: {result.horizon:g} {result.time_unit!r} units, {len(rfm):,} customers")
    for name, number in result.metrics.items():
        typer.echo(f"  {name:<18} {number:,.4f}")
    typer.echo("\ncalibration of P(active in holdout) by decile:")
    typer.echo(result.calibration.round(3).to_string())
    _write_table(result.customers.set_index("customer_id"), out)
    typer.echo(f"per-customer table written to {out}")


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m bayesclv``."""
    app(prog_name="bayesclv")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
