"""Command line: ``bayesclv demo``, ``fit``, ``report``, ``evaluate`` and ``compare`` (also ``python -m bayesclv``).

Its conventions (checks before any work, one-line errors with exit status 2,
``--force`` and atomic writes, Ctrl-C with exit status 130, ids as text) live in
:mod:`bayesclv.cli_conventions`.
"""

from __future__ import annotations

import time
import warnings
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from bayesclv.cli_conventions import (
    TABLE_SUFFIXES,
    CommandGroup,
    check_output,
    check_tables_dir,
    date_option,
    in_range,
    read_transactions,
    stop_if_interrupted,
    transactions_kind,
    write_atomic,
    write_table,
)


class ModelName(str, Enum):
    """Transaction models the command line fits."""

    bgnbd = "bgnbd"
    pnbd = "pnbd"


class Method(str, Enum):
    """Fitting methods: the full posterior (nuts) or a quick look (map, advi)."""

    nuts = "nuts"
    map = "map"
    advi = "advi"


class TimeUnit(str, Enum):
    """Units of time: day, week, month, year."""

    D = "D"
    W = "W"
    M = "M"
    Y = "Y"


class TableFormat(str, Enum):
    """File formats of the report's tables."""

    csv = "csv"
    parquet = "parquet"


class ComparedModel(str, Enum):
    """Purchase models the compare command fits: population and individual-level (hierarchical) ones."""

    bgnbd = "bgnbd"
    pnbd = "pnbd"
    mbgnbd = "mbgnbd"
    ggomnbd = "ggomnbd"
    hbgnbd = "hbgnbd"
    hpnbd = "hpnbd"


MODEL_CLASSES = {ModelName.bgnbd: "BetaGeoModel", ModelName.pnbd: "ParetoNBDModel"}
COMPARED_CLASSES = {ComparedModel.bgnbd: "BetaGeoModel", ComparedModel.pnbd: "ParetoNBDModel",
                    ComparedModel.mbgnbd: "ModifiedBetaGeoModel", ComparedModel.ggomnbd: "GompertzNBDModel",
                    ComparedModel.hbgnbd: "HierarchicalBetaGeoModel", ComparedModel.hpnbd: "HierarchicalParetoNBDModel"}

app = typer.Typer(
    cls=CommandGroup,
    help="Bayesian customer-lifetime-value models: fit BG/NBD or Pareto/NBD with Gamma-Gamma spend "
    "and get each customer's CLV, P(alive) and expected purchases with credible intervals.",
    pretty_exceptions_show_locals=False,
)


def _show_version(value: bool) -> None:
    if value:
        stack = ", ".join(f"{name} {version(name)}" for name in ("pymc", "arviz", "nutpie"))
        typer.echo(f"bayesclv {version('bayesclv')} ({stack})")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Options of the whole command line (its help text is the app's); alone, the help."""
    if ctx.invoked_subcommand is None:
        text = ctx.get_help()  # with rich installed, printed on the way and empty
        if text:
            typer.echo(text)


# options shared by the commands (one declaration each)
TransactionsArg = Annotated[Path, typer.Argument(
    help="transaction log (.csv, .csv.gz or .parquet), one row per transaction", exists=True, dir_okay=False,
    readable=True, callback=transactions_kind)]
CustomerIdOpt = Annotated[str, typer.Option("--customer-id", help="column with the customer id (read as text)")]
DateOpt = Annotated[str, typer.Option(help="column with the transaction date")]
DateFormatOpt = Annotated[str | None, typer.Option(
    help="strftime format of the date column, e.g. %Y%m%d (default: let pandas infer)")]
ValueOpt = Annotated[str, typer.Option(help="column with the transaction value")]
ModelOpt = Annotated[ModelName, typer.Option(help="transaction model: BG/NBD or Pareto/NBD")]
MethodOpt = Annotated[Method, typer.Option(
    help="nuts: the full posterior (intervals to quote); map or advi: a quick look")]
CalibrationEndOpt = Annotated[str | None, typer.Option(
    help="last date of the calibration period (YYYY-MM-DD)", callback=date_option)]
TimeUnitOpt = Annotated[TimeUnit, typer.Option(help="model time unit: day, week, month, year")]
DrawsOpt = Annotated[int, typer.Option(min=1, help="posterior draws per chain")]
TuneOpt = Annotated[int | None, typer.Option(min=0, help="NUTS tuning steps per chain [default: the model's, 1000 or 300 for an integrated hierarchical fit]")]
ChainsOpt = Annotated[int, typer.Option(min=1, help="NUTS chains")]
SeedOpt = Annotated[int, typer.Option(min=0, help="random seed")]
HorizonOpt = Annotated[int, typer.Option(min=1, help="CLV horizon in periods of --horizon-unit")]
HorizonUnitOpt = Annotated[TimeUnit, typer.Option(help="CLV period")]
DiscountRateOpt = Annotated[float, typer.Option(
    help="discount rate per CLV period, a fraction (0.01 = 1%)",
    callback=in_range(0, 1, high_open=True, hint=": a rate per period, write 1% as 0.01"))]
MarginOpt = Annotated[float, typer.Option(
    help="profit margin applied to revenue, a fraction (1 = all revenue)",
    callback=in_range(0, 1, low_open=True, hint=": a share of revenue, write 30% as 0.3"))]
ProbCheck = in_range(0, 1, low_open=True, high_open=True)
ForceOpt = Annotated[bool, typer.Option("--force", help="overwrite existing output files")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="no progress bars")]


def _customer_table(transaction_model, spend_model, rfm, *, horizon, time_unit, discount_rate, margin, prob):
    """Per-customer CLV, P(alive) and expected purchases with intervals: ``<name>_mean/_lower/_upper``.

    A point estimate (a MAP fit) has no interval: one column ``<name>_point_estimate`` each, and
    ``attrs["interval"]`` reads "point estimate (no posterior uncertainty)".
    """
    from bayesclv import customer_lifetime_value, intervals
    from bayesclv.data import TIME_UNITS
    from bayesclv.errors import PointEstimateWarning

    clv = customer_lifetime_value(transaction_model, spend_model, rfm, horizon=horizon,
                                  time_unit=time_unit, discount_rate=discount_rate, margin=margin)
    t = horizon * TIME_UNITS[time_unit] / TIME_UNITS[transaction_model.time_unit]
    parts = {
        "clv": clv,
        "p_alive": transaction_model.probability_alive(rfm),
        "expected_purchases": transaction_model.expected_purchases(t, rfm),
    }
    table = pd.DataFrame(index=pd.Index(rfm["customer_id"].to_numpy(), name="customer_id"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PointEstimateWarning)  # the printed text says it, once
        for name, values in parts.items():
            summary = intervals(values, prob=prob)
            table.attrs.setdefault("interval", summary["interval"].iloc[0])  # the CLV's
            if summary.attrs["point_estimate"]:
                table[f"{name}_point_estimate"] = summary["mean"].to_numpy()
            else:
                for col in ("mean", "lower", "upper"):
                    table[f"{name}_{col}"] = summary[col].to_numpy()
    for col in ("frequency", "recency", "T", "monetary_value"):
        table[col] = rfm[col].to_numpy()
    return table


def _fit_models(transactions, *, customer_id, date, value, model, calibration_end, time_unit, draws, tune,
                chains, seed, method, quiet, spend=True):
    """RFM summary, then the transaction model (and the Gamma-Gamma spend model) fitted with progress."""
    from bayesclv import GammaGammaModel, rfm_summary
    from bayesclv import models as model_module

    rfm = rfm_summary(transactions, customer_id=customer_id, date=date, value=value if spend else None,
                      time_unit=time_unit.value, calibration_end=calibration_end)
    typer.echo(f"{len(rfm):,} customers, {int(rfm['frequency'].sum()):,} repeat purchases "
               f"(time unit {time_unit.value!r})")
    fitted = [getattr(model_module, MODEL_CLASSES[model])()] + ([GammaGammaModel()] if spend else [])
    for fitting in fitted:
        start = time.perf_counter()
        typer.echo(f"fitting {fitting.display_name} ({method.value}) ...")
        fitting.fit(rfm, method=method.value, draws=draws, tune=tune, chains=chains, random_seed=seed,
                    progressbar=not quiet)
        stop_if_interrupted()
        # with progress shown, Model.fit prints a sampled fit's convergence line itself
        shown = not quiet and method is Method.nuts
        typer.echo(f"  done in {time.perf_counter() - start:.1f} s" + ("" if shown else f"; {fitting.diagnostics}"))
    return rfm, fitted


def _run(transactions, *, customer_id, date, value, model, calibration_end, time_unit, draws, tune, chains,
         seed, horizon, horizon_unit, discount_rate, margin, out, force, prob, method, quiet):
    rfm, (transaction_model, spend_model) = _fit_models(
        transactions, customer_id=customer_id, date=date, value=value, model=model,
        calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
        seed=seed, method=method, quiet=quiet)
    from bayesclv.errors import PointEstimateWarning
    from bayesclv.plots.labels import duration, unit_name
    from bayesclv.summaries import POINT_ESTIMATE, is_point_estimate

    pd.set_option("display.width", 140)
    point = any(is_point_estimate(m.posterior) for m in (transaction_model, spend_model))
    if point:
        typer.echo(f"\nMAP fit: {POINT_ESTIMATE}; no intervals. Refit with --method nuts (the default) for intervals.")
    for fitted in (transaction_model, spend_model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PointEstimateWarning)
            summary = fitted.summary(prob=prob)
        typer.echo(f"\n{fitted.display_name} parameters ({summary.attrs['interval']}):")
        if summary.attrs["point_estimate"]:
            summary = summary[["mean"]].rename(columns={"mean": "point_estimate"})
        else:  # an effective sample size is a count of draws
            summary = summary.assign(**{c: summary[c].round().astype("Int64") for c in ("ess_bulk", "ess_tail")
                                        if c in summary})
        typer.echo(summary.round(4).to_string())
    table = _customer_table(transaction_model, spend_model, rfm, horizon=horizon, time_unit=horizon_unit.value,
                            discount_rate=discount_rate, margin=margin, prob=prob)
    stat = "point_estimate" if "clv_point_estimate" in table else "mean"
    shown = [f"clv_{stat}", *([] if stat == "point_estimate" else ["clv_lower", "clv_upper"]),
             f"p_alive_{stat}", f"expected_purchases_{stat}"]
    top = table.sort_values(f"clv_{stat}", ascending=False).head(10)
    per = unit_name(horizon_unit.value, 1)
    typer.echo(f"\nTop 10 customers by CLV over the next {duration(horizon, horizon_unit.value)} "
               f"({discount_rate:.4g} discount per {per}, margin {margin:g}; {table.attrs['interval']}):")
    typer.echo(top[shown].round(2).to_string())
    what = "point-estimate" if stat == "point_estimate" else "posterior-mean"
    typer.echo(f"\nsum of {what} CLV over all customers: {table[f'clv_{stat}'].sum():,.0f}")
    if out is None:
        typer.echo("per-customer table not saved (pass --out FILE.csv to save it)")
        return
    write_table(table, out, force=force)
    typer.echo(f"per-customer table written to {out.resolve()}")


# ------------------------------------------------------------------ commands
@app.command()
def demo(
    full: Annotated[bool, typer.Option("--full", help="use all 23,570 CDNOW customers instead of the 2,357 sample")] = False,
    model: ModelOpt = ModelName.bgnbd,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    out: Annotated[Path | None, typer.Option(
        help="save the per-customer table here (.csv or .parquet); default: print only")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit BG/NBD (or Pareto/NBD) + Gamma-Gamma on the bundled CDNOW data and print the top customers.

    Calibration ends 1997-09-30 (39 weeks); CLV over 12 months at 1% per month.
    """
    if out is not None:
        check_output(out, "--out", TABLE_SUFFIXES, force)
    from bayesclv.datasets import load_cdnow

    kind = "full" if full else "sample"
    typer.echo(f"bayesclv demo: CDNOW {kind}, {model.value} + Gamma-Gamma")
    _run(load_cdnow(kind), customer_id="customer_id", date="date", value="value", model=model,
         calibration_end="1997-09-30", time_unit=TimeUnit.W, draws=draws, tune=tune, chains=chains, seed=seed,
         horizon=12, horizon_unit=TimeUnit.M, discount_rate=0.01, margin=1.0, out=out, force=force, prob=0.9,
         method=method, quiet=quiet)


@app.command()
def fit(
    transactions: TransactionsArg,
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    value: ValueOpt = "value",
    model: ModelOpt = ModelName.bgnbd,
    calibration_end: CalibrationEndOpt = None,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    horizon: HorizonOpt = 12,
    horizon_unit: HorizonUnitOpt = TimeUnit.M,
    discount_rate: DiscountRateOpt = 0.01,
    margin: MarginOpt = 1.0,
    prob: Annotated[float, typer.Option(help="credible interval probability", callback=ProbCheck)] = 0.9,
    out: Annotated[Path, typer.Option(help="per-customer output (.csv or .parquet)")] = Path("bayesclv_output.csv"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit a model to your own transaction log and write per-customer CLV, P(alive), purchases."""
    check_output(out, "--out", TABLE_SUFFIXES, force)
    _run(read_transactions(transactions, customer_id, date, date_format), customer_id=customer_id, date=date,
         value=value, model=model, calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune,
         chains=chains, seed=seed, horizon=horizon, horizon_unit=horizon_unit, discount_rate=discount_rate,
         margin=margin, out=out, force=force, prob=prob, method=method, quiet=quiet)


@app.command()
def report(
    transactions: TransactionsArg,
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    value: ValueOpt = "value",
    model: ModelOpt = ModelName.bgnbd,
    calibration_end: Annotated[str | None, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); adds a holdout section", callback=date_option)] = None,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    horizon: HorizonOpt = 12,
    horizon_unit: HorizonUnitOpt = TimeUnit.M,
    discount_rate: DiscountRateOpt = 0.01,
    margin: MarginOpt = 1.0,
    currency: Annotated[str | None, typer.Option(
        help="currency of the value column, written with every amount (e.g. USD or €)")] = None,
    prob: Annotated[float, typer.Option(help="probability inside every interval", callback=ProbCheck)] = 0.9,
    offer_cost: Annotated[float, typer.Option(
        help="targeting: cost of the offer per customer", callback=in_range(0, float("inf"), high_open=True))] = 5.0,
    uplift: Annotated[float, typer.Option(
        help="targeting: assumed relative CLV uplift of the offer (0.1 = +10%)",
        callback=in_range(-1, float("inf"), low_open=True, high_open=True, hint=": relative, write +10% as 0.1"))
    ] = 0.1,
    uplift_sd: Annotated[float, typer.Option(
        help="targeting: standard deviation of the uplift (normal); 0 = known uplift",
        callback=in_range(0, float("inf"), high_open=True))] = 0.0,
    min_prob_positive: Annotated[float, typer.Option(
        help="targeting: target customers whose P(offer pays back) is at least this",
        callback=in_range(0, 1))] = 0.8,
    out: Annotated[Path, typer.Option(help="the HTML report")] = Path("bayesclv_report.html"),
    tables_dir: Annotated[Path | None, typer.Option(
        help="also write the report's tables (customers, tiers, stages, rfm_segments, targeting, total, "
        "parameters, holdout) into this folder (new or empty, or with --force)")] = None,
    tables_format: Annotated[TableFormat, typer.Option(help="format of --tables-dir files")] = TableFormat.csv,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit the models and write one self-contained HTML report (opens offline).

    Its first screen gives the value of the customer base over the horizon,
    the customers likely still active and the share of value in the top 10%,
    each with its interval (in --currency), a one-sentence convergence verdict,
    the value tiers, the top customers and what an offer returns. Then a
    glossary, CLV per customer, tiers, lifecycle and RFM segments, top
    customers, targeting, with --calibration-end a holdout check, and the
    statistician's details.
    """
    check_output(out, "--out", (".html", ".htm"), force)
    if tables_dir is not None:
        check_tables_dir(tables_dir, force)
    from scipy import stats

    from bayesclv.report import build_report

    tx = read_transactions(transactions, customer_id, date, date_format)
    rfm, (transaction_model, spend_model) = _fit_models(
        tx, customer_id=customer_id, date=date, value=value, model=model,
        calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
        seed=seed, method=method, quiet=quiet)
    result = build_report(
        transaction_model, spend_model, rfm, transactions=tx, customer_id=customer_id, date=date,
        horizon=horizon, horizon_unit=horizon_unit.value, discount_rate=discount_rate, margin=margin,
        currency=currency, prob=prob,
        offer_cost=offer_cost, uplift=stats.norm(uplift, uplift_sd) if uplift_sd > 0 else uplift,
        min_prob_positive=min_prob_positive, title=f"Customer lifetime value report: {transactions.name}",
        progressbar=not quiet, random_seed=seed)
    if tables_dir is not None:
        tables_dir.mkdir(exist_ok=True)
        for name, table in result.tables.items():
            write_table(table, tables_dir / f"{name}.{tables_format.value}", force=force)
        typer.echo(f"tables written to {tables_dir.resolve()}/ ({', '.join(result.tables)})")
    write_atomic(out, lambda path: path.write_text(result.html, encoding="utf-8"), force=force)
    typer.echo(f"report written to {out.resolve()}")


@app.command("evaluate")
def evaluate_command(
    transactions: TransactionsArg,
    calibration_end: Annotated[str, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); later transactions are the holdout",
        callback=date_option)],
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    model: ModelOpt = ModelName.bgnbd,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    prob: Annotated[float, typer.Option(
        help="probability of the predictive intervals of holdout counts", callback=ProbCheck)] = 0.9,
    out: Annotated[Path, typer.Option(
        help="per-customer holdout table (.csv or .parquet): actual, predicted, interval, inside")
    ] = Path("bayesclv_evaluation.csv"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit on the calibration period and score the predictions on the holdout.

    Prints MAE/RMSE/bias of the expected holdout purchases, predicted vs
    actual totals, AUC and Brier score of P(active in holdout), coverage of
    the predictive intervals, and calibration by decile.
    """
    check_output(out, "--out", TABLE_SUFFIXES, force)
    from bayesclv import evaluate

    tx = read_transactions(transactions, customer_id, date, date_format)
    rfm, (transaction_model,) = _fit_models(
        tx, customer_id=customer_id, date=date, value=None, model=model,
        calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
        seed=seed, method=method, quiet=quiet, spend=False)
    typer.echo("simulating holdout purchases ...")
    result = evaluate(transaction_model, rfm, prob=(prob,), random_seed=seed)
    typer.echo(f"\nholdout: {result.horizon:g} {result.time_unit!r} units, {len(rfm):,} customers")
    for name, number in result.metrics.items():
        typer.echo(f"  {name:<18} {number:,.4f}")
    typer.echo("\ncalibration of P(active in holdout) by decile:")
    typer.echo(result.calibration.round(3).to_string())
    write_table(result.customers.set_index("customer_id"), out, force=force)
    typer.echo(f"per-customer table written to {out.resolve()}")


@app.command("compare")
def compare_command(
    transactions: TransactionsArg,
    calibration_end: Annotated[str, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); later transactions are the holdout",
        callback=date_option)],
    model: Annotated[list[ComparedModel] | None, typer.Option(
        help="a model to compare (repeat the option for each); default: bgnbd and pnbd")] = None,
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = None,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    prob: Annotated[float, typer.Option(
        help="probability of the predictive intervals whose coverage is scored", callback=ProbCheck)] = 0.9,
    out: Annotated[Path, typer.Option(help="the comparison table (.csv or .parquet)")
                   ] = Path("bayesclv_comparison.csv"),
    html: Annotated[Path, typer.Option(help="the comparison as an HTML page in the report's style")
                    ] = Path("bayesclv_comparison.html"),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit several models on the calibration period and compare them in one table.

    Per model: PSIS-LOO (posterior draws needed: not for --method map), holdout
    MAE/RMSE and total against the actual, randomised-PIT coverage of the
    predictive intervals, AUC of P(alive) and Brier score for buying in the
    holdout, and fit time. Writes the table (--out) and an HTML page (--html).
    """
    chosen = list(model or [ComparedModel.bgnbd, ComparedModel.pnbd])
    repeated = sorted({m.value for m in chosen if chosen.count(m) > 1})
    if repeated:
        raise typer.BadParameter(f"{', '.join(repeated)} given more than once", param_hint="'--model'")
    check_output(out, "--out", TABLE_SUFFIXES, force)
    check_output(html, "--html", (".html", ".htm"), force)
    if out.resolve() == html.resolve():
        raise typer.BadParameter("--out and --html name the same file", param_hint="'--html'")
    from bayesclv import compare, rfm_summary
    from bayesclv import models as model_module
    from bayesclv.report.comparison import comparison_page

    specs = {m.value: getattr(model_module, COMPARED_CLASSES[m]) for m in chosen}
    for name, cls in specs.items():
        if method.value in cls.unsupported_methods:
            raise typer.BadParameter(f"{name} cannot be fitted by {method.value}: "
                                     f"{cls.unsupported_methods[method.value]}", param_hint="'--method'")
    tx = read_transactions(transactions, customer_id, date, date_format)
    rfm = rfm_summary(tx, customer_id=customer_id, date=date, time_unit=time_unit.value,
                      calibration_end=calibration_end)
    typer.echo(f"{len(rfm):,} customers; fitting {', '.join(specs)} ({method.value}) and scoring the holdout ...")
    table = compare(specs, rfm, fit_kwargs={"method": method.value, "draws": draws, "tune": tune,
                                             "chains": chains, "random_seed": seed, "progressbar": not quiet},
                    prob=prob, random_seed=seed)
    stop_if_interrupted()
    pd.set_option("display.width", 160)
    label = f"{100 * prob:g}"
    shown = ["family", "fit_method", "fit_seconds", "elpd_loo", "elpd_diff", "se_diff", "mae", "rmse", "predicted_total",
             "actual_total", f"pit_coverage_{label}", "auc_p_alive", "brier"]
    typer.echo(table[shown].round(4).to_string())
    for name, note in table["note"].items():
        if note:
            typer.echo(f"  {name}: {note}")
    write_table(table, out, force=force)
    page = comparison_page(table, title=f"Model comparison: {transactions.name}",
                           subtitle=f"{len(rfm):,} customers · calibration to {calibration_end} · "
                                    f"fitted by {method.value.upper()}")
    write_atomic(html, lambda path: path.write_text(page, encoding="utf-8"), force=force)
    typer.echo(f"table written to {out.resolve()}; page written to {html.resolve()}")


def main() -> None:
    """Entry point of ``python -m bayesclv``."""
    app(prog_name="bayesclv")
