"""The command line's conventions, used by :mod:`bayesclv.cli` (each tested in ``tests/test_cli.py``).

- Every option and path is checked before any data is read or any model is
  fitted; a bad one, and any :class:`bayesclv.errors.BayesCLVError` raised on
  the way, is one line on stderr (``error: ...``) with exit status 2, never a
  traceback.
- An existing output is never replaced without ``--force``, and outputs are
  written whole or not at all (a temporary file in the target folder, then
  ``os.replace``).
- Ctrl-C ends the command with one line on stderr and exit status 130, leaving
  no partial output.
- Customer ids are read as text: ``007`` and ``7`` stay two customers.
- Warnings are one line each (``warning: ...``).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pandas as pd
import typer
from typer.core import TyperGroup

from bayesclv.errors import BayesCLVError, ConvergenceWarning, DataValidationError

__all__ = ["TABLE_SUFFIXES", "CommandGroup", "check_output", "check_tables_dir", "date_option", "in_range",
           "read_transactions", "stop_if_interrupted", "transactions_kind", "write_atomic", "write_table"]

_PARQUET = (".parquet", ".pq")
_CSV_COMPRESSION = ("", ".gz", ".bz2", ".zip", ".xz", ".zst")
TABLE_SUFFIXES = tuple(".csv" + c for c in _CSV_COMPRESSION) + _PARQUET


class _Run:
    """State of the running command: whether Ctrl-C arrived, and what has been written.

    Some fitting code catches KeyboardInterrupt and returns what it has (nutpie's
    sampler, PyMC's optimisers), so the command keeps its own record of the
    interrupt and stops at the next step instead of going on with a partial fit.
    """

    interrupted = False
    written: ClassVar[list[Path]] = []

    @classmethod
    def on_sigint(cls, signum, frame) -> None:
        cls.interrupted = True
        raise KeyboardInterrupt


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C arrived, even where the code it interrupted went on."""
    if _Run.interrupted:
        raise KeyboardInterrupt


def _one_line(message: object) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if not _Run.interrupted:  # after Ctrl-C, warnings are about a fit cut short: only the interrupt is news
        typer.echo(f"warning: {_one_line(message)}", err=True)


class CommandGroup(TyperGroup):
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


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
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


def transactions_kind(path: Path) -> Path:
    """Refuse a transaction log whose name says neither CSV nor Parquet."""
    name = path.name.lower()
    if not (name.endswith(_PARQUET) or any(name.endswith(".csv" + c) for c in _CSV_COMPRESSION)):
        raise typer.BadParameter(f"{path.name!r} is neither CSV (.csv, also .csv.gz/.bz2/.zip/.xz/.zst) "
                                 "nor Parquet (.parquet, .pq)")
    return path


def date_option(value: str | None) -> str | None:
    """Callback refusing a date pandas cannot read."""
    if value is not None:
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            stamp = pd.NaT
        if pd.isna(stamp):  # also an empty string, which pandas reads as NaT
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)")
    return value


def check_output(path: Path, option: str, suffixes: tuple[str, ...], force: bool) -> None:
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


def check_tables_dir(path: Path, force: bool) -> None:
    """A folder for the report's tables: new (its parent exists) or empty, or any folder with ``force``."""
    def refuse(message: str) -> None:
        raise typer.BadParameter(message, param_hint="'--tables-dir'")

    if path.exists() and not path.is_dir():
        refuse(f"{str(path)!r} is a file, not a folder")
    if not path.parent.is_dir():
        refuse(f"folder {str(path.parent)!r} does not exist")
    if path.is_dir() and any(path.iterdir()) and not force:
        refuse(f"{str(path)!r} is not empty; pass --force to write into it (files of the same name are replaced)")


def read_transactions(path: Path, customer_id: str, date: str, date_format: str | None) -> pd.DataFrame:
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
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a one-line message
        raise DataValidationError(f"cannot read {path}: {exc}") from None
    if date not in table.columns:
        return table  # the data layer names the missing column
    raw = table[date]
    if date_format is None:
        if pd.api.types.is_numeric_dtype(raw):
            raise DataValidationError(f"dates are numbers (first: {raw.iloc[0]}); give their format, e.g. "
                                      "--date-format %Y%m%d", column=date)
        return table
    table[date] = pd.to_datetime(raw.astype(str), format=date_format, errors="coerce")
    bad = table[date].isna() & raw.notna()
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum()):,} date(s) do not match --date-format {date_format!r} (first: {raw[bad].iloc[0]!r}) "
            "at the listed row positions (0 = the first row below the header)", column=date,
            rows=bad.to_numpy().nonzero()[0].tolist())
    return table


def write_atomic(path: Path, write: Callable[[Path], object], *, force: bool) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``.

    A rename within a folder is atomic, so a failed or interrupted write leaves
    the old file or none, never half a file. The temporary name ends like
    ``path`` so pandas infers the same compression (``.csv.gz``).
    """
    stop_if_interrupted()
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


def write_table(table: pd.DataFrame, out: Path, *, force: bool) -> None:
    """CSV, or Parquet for a .parquet/.pq name."""
    parquet = out.name.lower().endswith(_PARQUET)
    write_atomic(out, table.to_parquet if parquet else table.to_csv, force=force)
