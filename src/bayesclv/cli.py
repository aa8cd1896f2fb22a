"""Command line: ``bayesclv demo``, ``fit``, ``report`` and ``evaluate``.

Conventions (each tested in ``tests/test_cli.py``):

- every option and path is checked before any data is read or any model is
  fitted; a bad one, and any :class:`bayesclv.errors.BayesCLVError` raised on
  the way, is one line on stderr (``error: ...``) with exit status 2, never a
  traceback;
- an existing output is never replaced without ``--force``, and outputs are
  written whole or not at all (a temporary file in the target folder, then
  ``os.replace``);
- Ctrl-C ends the command with one line on stderr and exit status 130, leaving
  no partial output;
- customer ids are read as text: ``007`` and ``7`` stay two customers.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from typer.core import TyperGroup

from bayesclv.errors import BayesCLVError, ConvergenceWarning, DataValidationError


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


MODEL_CLASSES = {ModelName.bgnbd: "BetaGeoModel", ModelName.pnbd: "ParetoNBDModel"}
_PARQUET = (".parquet", ".pq")
_CSV_COMPRESSION = ("", ".gz", ".bz2", ".zip", ".xz", ".zst")


class _Run:
    """State of the running command: whether Ctrl-C arrived, and what has been written.

    Some fitting code catches KeyboardInterrupt and returns what it has (nutpie's
    sampler, PyMC's optimisers), so the command keeps its own record of the
    interrupt and stops at the next step instead of going on with a partial fit.
    """

    interrupted = False
    written: list[Path] = []

    @classmethod
    def on_sigint(cls, signum, frame) -> None:
        cls.interrupted = True
        raise KeyboardInterrupt


def _stop_if_interrupted() -> None:
    if _Run.interrupted:
        raise KeyboardInterrupt


def _one_line(message: object) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if not _Run.interrupted:  # after Ctrl-C, warnings are about a fit cut short: only the interrupt is news
        typer.echo(f"warning: {_one_line(message)}", err=True)


class _Commands(TyperGroup):
    """Typer's command group with this CLI's error, warning and Ctrl-C conventions."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # a bad option or path, from the parser or the checks below
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            code = 2
        except typer.Abort:  # end of input at a prompt
            code = 1
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx):
        _Run.interrupted, _Run.written = False, []
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, _Run.on_sigint) if main_thread else None
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning  # one line each, not Python's two with a file name
                warnings.simplefilter("always", ConvergenceWarning)
                return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except BayesCLVError as exc:
            if _Run.interrupted:
                _interrupted()
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(2) from None
        except Exception:
            if _Run.interrupted:  # a fit stopped by Ctrl-C that failed on its partial draws
                _interrupted()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _interrupted() -> None:
    written = ", ".join(str(p) for p in _Run.written)
    typer.echo("interrupted (Ctrl-C): " + (f"stopped after writing {written}" if written else "no output written"),
               err=True)
    raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Commands,
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


# ------------------------------------------------------------------ checks of options and paths
def _in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
              hint: str = "") -> Callable[[float], float]:
    """Callback refusing values outside the interval, NaN and (with an open end) infinity."""
    def check(value: float) -> float:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise typer.BadParameter(f"{value:g} is not in {interval}{hint}")
        return value
    return check


def _transactions_kind(path: Path) -> Path:
    """Refuse a transaction log whose name says neither CSV nor Parquet."""
    name = path.name.lower()
    if not (name.endswith(_PARQUET) or any(name.endswith(".csv" + c) for c in _CSV_COMPRESSION)):
        raise typer.BadParameter(f"{path.name!r} is neither CSV (.csv, also .csv.gz/.bz2/.zip/.xz/.zst) "
                                 "nor Parquet (.parquet, .pq)")
    return path


def _date(value: str | None) -> str | None:
    if value is not None:
        try:
            pd.Timestamp(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


def _check_output(path: Path, option: str, suffixes: tuple[str, ...], force: bool) -> None:
    """An output path that can be written: known suffix, existing folder, no file to replace unless forced."""
    def refuse(message: str) -> None:
        raise typer.BadParameter(message, param_hint=f"'{option}'")

    if not path.name.lower().endswith(suffixes):
        refuse(f"{str(path)!r} must end in {', '.join(suffixes)}")
    if path.is_dir():
        refuse(f"{str(path)!r} is a folder")
    folder = path.parent
    if not folder.is_dir():
        refuse(f"folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        refuse(f"folder {str(folder)!r} is not writable")
    if path.exists() and not force:
        refuse(f"{str(path)!r} already exists; pass --force to overwrite it")


def _check_tables_dir(path: Path, force: bool) -> None:
    def refuse(message: str) -> None:
        raise typer.BadParameter(message, param_hint="'--tables-dir'")

    if path.exists() and not path.is_dir():
        refuse(f"{str(path)!r} is a file, not a folder")
    if not path.parent.is_dir():
        refuse(f"folder {str(path.parent)!r} does not exist")
    if path.is_dir() and any(path.iterdir()) and not force:
        refuse(f"{str(path)!r} is not empty; pass --force to write into it (files of the same name are replaced)")


TABLE_SUFFIXES = tuple(".csv" + c for c in _CSV_COMPRESSION) + _PARQUET

# options shared by the commands (one declaration each)
TransactionsArg = Annotated[Path, typer.Argument(
    help="transaction log (.csv, .csv.gz or .parquet), one row per transaction", exists=True, dir_okay=False,
    readable=True, callback=_transactions_kind)]
CustomerIdOpt = Annotated[str, typer.Option("--customer-id", help="column with the customer id (read as text)")]
DateOpt = Annotated[str, typer.Option(help="column with the transaction date")]
DateFormatOpt = Annotated[str | None, typer.Option(
    help="strftime format of the date column, e.g. %Y%m%d (default: let pandas infer)")]
ValueOpt = Annotated[str, typer.Option(help="column with the transaction value")]
ModelOpt = Annotated[ModelName, typer.Option(help="transaction model: BG/NBD or Pareto/NBD")]
MethodOpt = Annotated[Method, typer.Option(
    help="nuts: the full posterior (intervals to quote); map or advi: a quick look")]
CalibrationEndOpt = Annotated[str | None, typer.Option(
    help="last date of the calibration period (YYYY-MM-DD)", callback=_date)]
TimeUnitOpt = Annotated[TimeUnit, typer.Option(help="model time unit: day, week, month, year")]
DrawsOpt = Annotated[int, typer.Option(min=1, help="posterior draws per chain")]
TuneOpt = Annotated[int, typer.Option(min=0, help="NUTS tuning steps per chain")]
ChainsOpt = Annotated[int, typer.Option(min=1, help="NUTS chains")]
SeedOpt = Annotated[int, typer.Option(min=0, help="random seed")]
HorizonOpt = Annotated[int, typer.Option(min=1, help="CLV horizon in periods of --horizon-unit")]
HorizonUnitOpt = Annotated[TimeUnit, typer.Option(help="CLV period")]
DiscountRateOpt = Annotated[float, typer.Option(
    help="discount rate per CLV period, a fraction (0.01 = 1%)",
    callback=_in_range(0, 1, high_open=True, hint=": a rate per period, write 1% as 0.01"))]
MarginOpt = Annotated[float, typer.Option(
    help="profit margin applied to revenue, a fraction (1 = all revenue)",
    callback=_in_range(0, 1, low_open=True, hint=": a share of revenue, write 30% as 0.3"))]
ProbCheck = _in_range(0, 1, low_open=True, high_open=True)
ForceOpt = Annotated[bool, typer.Option("--force", help="overwrite existing output files")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="no progress bars")]


# ------------------------------------------------------------------ reading, fitting, writing
def _read_transactions(path: Path, customer_id: str, date: str, date_format: str | None) -> pd.DataFrame:
    """CSV (also compressed) or Parquet, customer ids as text; with ``date_format`` the dates parsed by it.

    Read as numbers, ids ``007`` and ``7`` would become one customer.
    """
    try:
        if path.name.lower().endswith(_PARQUET):
            table = pd.read_parquet(path)
            if customer_id in table.columns:
                table[customer_id] = table[customer_id].astype(str)
        else:
            table = pd.read_csv(path, dtype={customer_id: str, **({date: str} if date_format else {})})
    except Exception as exc:  # any parser failure becomes a one-line message
        raise DataValidationError(f"cannot read {path}: {exc}") from None
    if date_format and date in table.columns:
        raw = table[date]
        table[date] = pd.to_datetime(raw.astype(str), format=date_format, errors="coerce")
        bad = table[date].isna() & raw.notna()
        if bad.any():
            raise DataValidationError(
                f"{int(bad.sum()):,} date(s) do not match --date-format {date_format!r} (first: "
                f"{raw[bad].iloc[0]!r}); rows counted from 1 below the header", column=date,
                rows=(bad.to_numpy().nonzero()[0] + 1).tolist())
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
        _stop_if_interrupted()
        # with progress shown, Model.fit prints a sampled fit's convergence line itself
        shown = not quiet and method is Method.nuts
        typer.echo(f"  done in {time.perf_counter() - start:.1f} s" + ("" if shown else f"; {fitting.diagnostics}"))
    return rfm, fitted


def _write_atomic(path: Path, write: Callable[[Path], object], *, force: bool) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``.

    A rename within a folder is atomic, so a failed or interrupted write leaves
    the old file or none, never half a file. The temporary name ends like
    ``path`` so pandas infers the same compression (``.csv.gz``).
    """
    _stop_if_interrupted()
    if path.exists() and not force:  # appeared while the models were fitted
        raise typer.BadParameter(f"{str(path)!r} appeared while the models were fitted; pass --force to "
                                 "overwrite it")
    temporary = path.with_name(f".{secrets.token_hex(4)}.{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _Run.written.append(path)


def _write_table(table: pd.DataFrame, out: Path, *, force: bool) -> None:
    """CSV, or Parquet for a .parquet/.pq name."""
    parquet = out.name.lower().endswith(_PARQUET)
    _write_atomic(out, table.to_parquet if parquet else table.to_csv, force=force)


def _run(transactions, *, customer_id, date, value, model, calibration_end, time_unit, draws, tune, chains,
         seed, horizon, horizon_unit, discount_rate, margin, out, force, prob, method, quiet):
    rfm, (transaction_model, spend_model) = _fit_models(
        transactions, customer_id=customer_id, date=date, value=value, model=model,
        calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
        seed=seed, method=method, quiet=quiet)
    pd.set_option("display.width", 140)
    for fitted in (transaction_model, spend_model):
        typer.echo(f"\n{fitted.display_name} parameters ({prob:.0%} HDI):")
        typer.echo(fitted.summary(prob=prob).round(4).to_string())
    table = _customer_table(transaction_model, spend_model, rfm, horizon=horizon, time_unit=horizon_unit.value,
                            discount_rate=discount_rate, margin=margin, prob=prob)
    top = table.sort_values("clv_mean", ascending=False).head(10)
    typer.echo(f"\nTop 10 customers by CLV ({horizon} x {horizon_unit.value!r} periods, "
               f"{discount_rate:g} discount per period; {prob:.0%} credible intervals):")
    typer.echo(top[["clv_mean", "clv_lower", "clv_upper", "p_alive_mean", "expected_purchases_mean"]]
               .round(2).to_string())
    typer.echo(f"\nsum of posterior-mean CLV over all customers: {table['clv_mean'].sum():,.0f}")
    if out is None:
        typer.echo("per-customer table not saved (pass --out FILE.csv to save it)")
        return
    _write_table(table, out, force=force)
    typer.echo(f"per-customer table written to {out.resolve()}")


# ------------------------------------------------------------------ commands
@app.command()
def demo(
    full: Annotated[bool, typer.Option("--full", help="use all 23,570 CDNOW customers instead of the 2,357 sample")] = False,
    model: ModelOpt = ModelName.bgnbd,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
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
        _check_output(out, "--out", TABLE_SUFFIXES, force)
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
    tune: TuneOpt = 1000,
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
    _check_output(out, "--out", TABLE_SUFFIXES, force)
    _run(_read_transactions(transactions, customer_id, date, date_format), customer_id=customer_id, date=date,
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
        help="last date of the calibration period (YYYY-MM-DD); adds a holdout section", callback=_date)] = None,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    seed: SeedOpt = 2026,
    horizon: HorizonOpt = 12,
    horizon_unit: HorizonUnitOpt = TimeUnit.M,
    discount_rate: DiscountRateOpt = 0.01,
    margin: MarginOpt = 1.0,
    prob: Annotated[float, typer.Option(help="probability inside every interval", callback=ProbCheck)] = 0.9,
    offer_cost: Annotated[float, typer.Option(
        help="targeting: cost of the offer per customer", callback=_in_range(0, float("inf"), high_open=True))] = 5.0,
    uplift: Annotated[float, typer.Option(
        help="targeting: assumed relative CLV uplift of the offer (0.1 = +10%)",
        callback=_in_range(-1, float("inf"), low_open=True, high_open=True, hint=": relative, write +10% as 0.1"))
    ] = 0.1,
    uplift_sd: Annotated[float, typer.Option(
        help="targeting: standard deviation of the uplift (normal); 0 = known uplift",
        callback=_in_range(0, float("inf"), high_open=True))] = 0.0,
    min_prob_positive: Annotated[float, typer.Option(
        help="targeting: target customers whose P(offer pays back) is at least this",
        callback=_in_range(0, 1))] = 0.8,
    out: Annotated[Path, typer.Option(help="the HTML report")] = Path("bayesclv_report.html"),
    tables_dir: Annotated[Path | None, typer.Option(
        help="also write the report's tables (customers, tiers, stages, rfm_segments, targeting, total, "
        "parameters, holdout) into this folder (new or empty, or with --force)")] = None,
    tables_format: Annotated[TableFormat, typer.Option(help="format of --tables-dir files")] = TableFormat.csv,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit the models and write one self-contained HTML report (opens offline).

    The report holds a data overview, convergence diagnostics, parameters with
    intervals, CLV per customer with credible bands, value tiers, lifecycle
    stages and RFM segments with CLV totals, top customers, targeting of an
    offer and, with --calibration-end, a holdout check.
    """
    _check_output(out, "--out", (".html", ".htm"), force)
    if tables_dir is not None:
        _check_tables_dir(tables_dir, force)
    from scipy import stats

    from bayesclv.report import build_report

    tx = _read_transactions(transactions, customer_id, date, date_format)
    rfm, (transaction_model, spend_model) = _fit_models(
        tx, customer_id=customer_id, date=date, value=value, model=model,
        calibration_end=calibration_end, time_unit=time_unit, draws=draws, tune=tune, chains=chains,
        seed=seed, method=method, quiet=quiet)
    result = build_report(
        transaction_model, spend_model, rfm, transactions=tx, customer_id=customer_id, date=date,
        horizon=horizon, horizon_unit=horizon_unit.value, discount_rate=discount_rate, margin=margin, prob=prob,
        offer_cost=offer_cost, uplift=stats.norm(uplift, uplift_sd) if uplift_sd > 0 else uplift,
        min_prob_positive=min_prob_positive, title=f"Customer lifetime value report: {transactions.name}",
        progressbar=not quiet, random_seed=seed)
    if tables_dir is not None:
        tables_dir.mkdir(exist_ok=True)
        for name, table in result.tables.items():
            _write_table(table, tables_dir / f"{name}.{tables_format.value}", force=force)
        typer.echo(f"tables written to {tables_dir.resolve()}/ ({', '.join(result.tables)})")
    _write_atomic(out, lambda path: path.write_text(result.html, encoding="utf-8"), force=force)
    typer.echo(f"report written to {out.resolve()}")


@app.command("evaluate")
def evaluate_command(
    transactions: TransactionsArg,
    calibration_end: Annotated[str, typer.Option(
        help="last date of the calibration period (YYYY-MM-DD); later transactions are the holdout",
        callback=_date)],
    customer_id: CustomerIdOpt = "customer_id",
    date: DateOpt = "date",
    date_format: DateFormatOpt = None,
    model: ModelOpt = ModelName.bgnbd,
    time_unit: TimeUnitOpt = TimeUnit.W,
    method: MethodOpt = Method.nuts,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
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
    _check_output(out, "--out", TABLE_SUFFIXES, force)
    from bayesclv import evaluate

    tx = _read_transactions(transactions, customer_id, date, date_format)
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
    _write_table(result.customers.set_index("customer_id"), out, force=force)
    typer.echo(f"per-customer table written to {out.resolve()}")


def main() -> None:
    """Entry point of ``python -m bayesclv``."""
    app(prog_name="bayesclv")
