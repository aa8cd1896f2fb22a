"""Transactions in a database -> RFM summary, aggregated by the database itself.

:func:`bayesclv.rfm_summary` hands its input here when it is a DuckDB relation
or connection, a path to a DuckDB file or to Parquet files (read by DuckDB), a
SQLAlchemy engine or connection, or a database URL. The database merges
same-day transactions into purchase days and groups them by customer; only one
row per customer comes back (in chunks with :func:`rfm_summary_chunks`), so
memory follows the number of customers, not of transactions. The checks of the
pandas path run as queries and raise the same errors (offending customers
listed in id order; row positions, where ids are missing, in the order the
database returns the rows).

One SQL text serves every database: the portable core of SQL (CTEs, GROUP BY,
JOIN, CASE, ``CAST(... AS DATE)``, ``DATE - DATE`` in days). A :class:`_Dialect`
holds the few pieces that differ (type names, safe parsing of date and number
strings, finiteness, byte order for text ids). DuckDB runs through its own
Python API; other databases through SQLAlchemy (``pip install 'bayesclv[sql]'``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.purchases import LOG_SPEND_ZERO, check_cohort_frequency, check_log_spend_argument, cohort_labels
from bayesclv.data.validation import (
    check_columns,
    check_not_empty,
    check_period,
    check_time_unit,
)
from bayesclv.errors import DataValidationError

__all__ = ["is_database_source", "rfm_summary_chunks", "rfm_summary_database"]

#: Customers per chunk fetched from the database.
CHUNK_CUSTOMERS = 1_000_000
_EPOCH = pd.Timestamp("1970-01-01")
_ALIAS = "bayesclv_source"
_QUERY_START = re.compile(r"^\s*(select|with|from|values|table)\b", re.IGNORECASE)
#: ISO 8601 day, optionally followed by a time and offset (the offset is ignored: wall-clock day,
#: as the pandas path reads time-zone-aware strings)
_ISO_DAY = (r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
            r"([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?)?\s*$")
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_OTHER_FILES = (".csv", ".tsv", ".txt", ".json", ".xlsx")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _day(ts: pd.Timestamp) -> str:
    return f"DATE '{ts.strftime('%Y-%m-%d')}'"


# --------------------------------------------------------------------------- dialects
@dataclass(frozen=True)
class _Dialect:
    """The SQL that differs between databases; everything else is shared."""

    name: str
    type_of: Callable[[str], str]
    parse_day: Callable[[str], str]  # ISO string -> DATE, NULL where not a calendar day
    parse_number: Callable[[str], str]  # numeric string -> DOUBLE PRECISION, NULL where not a number
    not_finite: Callable[[str], str]
    text_order: str  # ORDER BY suffix giving byte (code point) order, as pandas sorts strings


def _duckdb_day(s: str) -> str:
    return (f"CASE WHEN regexp_matches({s}, {_literal(_ISO_DAY)}) THEN TRY_CAST("
            f"regexp_extract({s}, {_literal(_ISO_DAY)}, 1) || '-' || regexp_extract({s}, {_literal(_ISO_DAY)}, 2)"
            f" || '-' || regexp_extract({s}, {_literal(_ISO_DAY)}, 3) AS DATE) END")


def _postgres_day(s: str) -> str:
    # no TRY_CAST: nested CASEs (evaluated in order, unlike AND) keep make_date to valid days
    y, m, d = (f"(regexp_match({s}, {_literal(_ISO_DAY)}))[{i}]::int" for i in (1, 2, 3))
    last = f"EXTRACT(DAY FROM make_date({y}, {m}, 1) + INTERVAL '1 month' - INTERVAL '1 day')"
    return (f"CASE WHEN {s} ~ {_literal(_ISO_DAY)} THEN CASE WHEN {y} >= 1 AND {m} BETWEEN 1 AND 12 "
            f"AND {d} >= 1 THEN CASE WHEN {d} <= {last} THEN make_date({y}, {m}, {d}) END END END")


DUCKDB = _Dialect(
    name="duckdb",
    type_of=lambda c: f"typeof({c})",
    parse_day=_duckdb_day,
    parse_number=lambda s: f"CASE WHEN regexp_matches({s}, {_literal(_NUMBER)}) THEN TRY_CAST({s} AS DOUBLE) END",
    not_finite=lambda v: f"NOT isfinite({v})",
    text_order="",  # DuckDB compares strings bytewise unless a collation is set
)
POSTGRES = _Dialect(
    name="postgresql",
    type_of=lambda c: f"pg_typeof({c})::text",
    parse_day=_postgres_day,
    parse_number=lambda s: f"CASE WHEN {s} ~ {_literal(_NUMBER)} THEN CAST({s} AS DOUBLE PRECISION) END",
    not_finite=lambda v: f"{v} IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8)",
    text_order=' COLLATE "C"',
)
_DIALECTS = {d.name: d for d in (DUCKDB, POSTGRES)}


def _kind(type_name: str) -> str:
    """``date``, ``string``, ``number``, ``bool`` or ``other`` for a database type name."""
    t = type_name.lower()
    if t == "date" or t.startswith("timestamp"):
        return "date"
    if t in ("varchar", "text", "string", "bpchar", "name") or t.startswith(("varchar", "character")):
        return "string"
    if t in ("boolean", "bool"):
        return "bool"
    if re.fullmatch(r"u?(tiny|small|big|huge)?int(eger)?\d*|double( precision)?|float\d*|real"
                    r"|(decimal|numeric)(\(.*\))?", t):
        return "number"
    return "other"


# --------------------------------------------------------------------------- sources
class _DuckDBSource:
    """A DuckDB relation; queries see it as the view ``bayesclv_source``."""

    dialect = DUCKDB
    from_sql = _ALIAS

    def __init__(self, relation: Any):
        self._relation = relation

    def columns(self) -> list[str]:
        return list(self._relation.columns)

    @staticmethod
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def rows(self, sql: str) -> list[tuple]:
        return self._relation.query(_ALIAS, sql).fetchall()

    def batches(self, sql: str, size: int) -> Iterator[dict[str, np.ndarray]]:
        for batch in self._relation.query(_ALIAS, sql).to_arrow_reader(size):
            yield {name: batch.column(i).to_numpy(zero_copy_only=False)
                   for i, name in enumerate(batch.schema.names)}


class _SQLAlchemySource:
    """A table or query on a SQLAlchemy connection."""

    def __init__(self, connection: Any, table: str):
        name = connection.dialect.name
        if name not in _DIALECTS:
            raise ValueError(f"no SQL dialect for {name!r} databases yet; supported: {sorted(_DIALECTS)}")
        self.dialect = _DIALECTS[name]
        self._connection = connection
        self._preparer = connection.dialect.identifier_preparer
        self.from_sql = _from_clause(table, self.quote)

    def quote(self, name: str) -> str:
        return self._preparer.quote_identifier(name)

    def _execute(self, sql: str, **options):
        from sqlalchemy import text

        # text() takes ":word" for a bind parameter; escaped colons reach the database as they are
        return self._connection.execution_options(**options).execute(
            text(re.sub(r"(?<![:\\]):(?=\w)", r"\\:", sql)))

    def columns(self) -> list[str]:
        return list(self._execute(f"SELECT * FROM {self.from_sql} LIMIT 0").keys())

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self._execute(sql).fetchall()]

    def batches(self, sql: str, size: int) -> Iterator[dict[str, np.ndarray]]:
        result = self._execute(sql, stream_results=True, yield_per=size)
        names = list(result.keys())
        for part in result.partitions(size):
            columns = list(zip(*part, strict=True))
            yield {n: np.array(c, dtype=object if isinstance(c[0], str) else None)
                   for n, c in zip(names, columns, strict=True)}


def _from_clause(table: str, quote: Callable[[str], str]) -> str:
    if not isinstance(table, str) or not table.strip():
        raise ValueError(f"table must be a table name or a SQL query, got {table!r}")
    if _QUERY_START.match(table):
        return f"({table}) AS {_ALIAS}"
    return ".".join(quote(part) for part in table.split("."))


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0].lstrip("_")  # duckdb classes live in _duckdb


def is_database_source(transactions: Any, table: str | None = None) -> bool:
    """Whether :func:`bayesclv.rfm_summary` should hand ``transactions`` to the database path."""
    return (table is not None or isinstance(transactions, (str, os.PathLike))
            or _module(transactions) in ("duckdb", "sqlalchemy"))


@contextlib.contextmanager
def _open(transactions: Any, table: str | None) -> Iterator[_DuckDBSource | _SQLAlchemySource]:
    """The source of ``transactions`` (+ ``table``); connections opened here are closed on exit."""
    if isinstance(transactions, (str, os.PathLike)) and "://" not in str(transactions):
        with _open_path(Path(transactions), table) as source:
            yield source
    elif isinstance(transactions, str):  # a database URL
        from sqlalchemy import create_engine

        engine = create_engine(transactions)
        try:
            with engine.connect() as connection:
                yield _SQLAlchemySource(connection, _require_table(table, "a database URL"))
        finally:
            engine.dispose()
    elif _module(transactions) == "duckdb":
        import duckdb

        if isinstance(transactions, duckdb.DuckDBPyRelation):
            if table is not None:
                raise ValueError("table= is for connections; a DuckDB relation is itself the table")
            yield _DuckDBSource(transactions)
        else:
            yield _duckdb_table(transactions, table)
    elif _module(transactions) == "sqlalchemy":
        from sqlalchemy.engine import Engine

        if isinstance(transactions, Engine):
            with transactions.connect() as connection:
                yield _SQLAlchemySource(connection, _require_table(table, "a SQLAlchemy engine"))
        else:
            yield _SQLAlchemySource(transactions, _require_table(table, "a SQLAlchemy connection"))
    else:
        raise TypeError(f"table= needs a database connection, a DuckDB file or a database URL, got "
                        f"{type(transactions).__module__}.{type(transactions).__name__}")


@contextlib.contextmanager
def _open_path(path: Path, table: str | None) -> Iterator[_DuckDBSource]:
    """A DuckDB database file (read only), or Parquet files read by an in-memory DuckDB."""
    import duckdb

    if path.suffix.lower() in _OTHER_FILES:
        raise TypeError(f"{str(path)!r}: rfm_summary reads DuckDB files and Parquet files from a path; "
                        "read other files with pandas (e.g. pd.read_csv) or DuckDB first")
    glob = any(c in str(path) for c in "*?[")
    if path.is_dir() or glob or path.suffix.lower() == ".parquet":
        if table is not None:
            raise ValueError("table= is for databases; a Parquet path is itself the table")
        if not (path.is_dir() or glob or path.exists()):
            raise FileNotFoundError(f"no such Parquet file: {str(path)!r}")
        with duckdb.connect() as con:
            yield _DuckDBSource(con.read_parquet(str(path / "**" / "*.parquet") if path.is_dir() else str(path)))
        return
    if not path.exists():
        raise FileNotFoundError(f"no such DuckDB database file: {str(path)!r}")
    with duckdb.connect(str(path), read_only=True) as con:
        yield _duckdb_table(con, table)


def _require_table(table: str | None, what: str) -> str:
    if table is None:
        raise ValueError(f"{what} needs table= (a table name or a SQL query)")
    return table


def _duckdb_table(con: Any, table: str | None) -> _DuckDBSource:
    if table is None:
        names = [r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()]
        if len(names) != 1:
            raise ValueError(f"a DuckDB database needs table= (a table name or a SQL query); it has tables {names!r}")
        table = names[0]
    return _DuckDBSource(con.sql(f"SELECT * FROM {_from_clause(table, _DuckDBSource.quote)}"))


# --------------------------------------------------------------------------- checks
def _transactions_sql(source, customer_id: str, date: str, value: str | None) -> tuple[str, dict]:
    """SELECT of ``cid``, ``raw`` (date as stored), ``day`` and ``v`` per transaction, and the column types.

    Raises for an empty source or missing columns, as the pandas path does.
    """
    q, dialect = source.quote, source.dialect
    required = [customer_id, date] + ([value] if value is not None else [])
    names = source.columns()
    if any(c not in names for c in required):
        if not source.rows(f"SELECT 1 FROM {source.from_sql} LIMIT 1"):
            check_not_empty(pd.DataFrame(columns=names))
        check_columns(pd.DataFrame(columns=names), required)
    found = source.rows(f"SELECT {', '.join(dialect.type_of(q(c)) for c in required)} FROM {source.from_sql} LIMIT 1")
    if not found:
        check_not_empty(pd.DataFrame(columns=names))
    types = dict(zip(["id", "date", "value"], found[0], strict=False))
    kind = _kind(types["date"])
    day = {"date": f"CAST({q(date)} AS DATE)", "string": dialect.parse_day(q(date))}.get(kind, "CAST(NULL AS DATE)")
    v = "0.0"
    if value is not None:
        kind = _kind(types["value"])
        v = {"number": f"CAST({q(value)} AS DOUBLE PRECISION)",
             "string": dialect.parse_number(q(value))}.get(kind, "CAST(NULL AS DOUBLE PRECISION)")
    sql = (f"SELECT {q(customer_id)} AS cid, {q(date)} AS raw, {day} AS day, {v} AS v "
           f"FROM {source.from_sql}")
    return sql, types


def _customers(source, tx_sql: str, where: str, order: str) -> list:
    # GROUP BY, not DISTINCT: PostgreSQL refuses ORDER BY cid COLLATE "C" after SELECT DISTINCT cid
    return [r[0] for r in source.rows(f"SELECT cid FROM ({tx_sql}) AS t WHERE {where} GROUP BY cid ORDER BY cid{order}")]


def _missing_id_positions(source, customer_id: str) -> list[int]:
    """Row positions (in the order the database returns the rows) of missing customer ids."""
    positions, offset = [], 0
    sql = f"SELECT CASE WHEN {source.quote(customer_id)} IS NULL THEN 1 ELSE 0 END AS missing FROM {source.from_sql}"
    for batch in source.batches(sql, CHUNK_CUSTOMERS):
        missing = batch["missing"].astype(bool)
        positions.extend((np.flatnonzero(missing) + offset).tolist())
        offset += missing.size
    return positions


def _check(source, tx_sql: str, types: dict, *, customer_id: str, date: str, value: str | None,
           order: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The pandas path's row checks, in its order, as one scan (plus queries naming the culprits).

    Returns the first and last purchase day.
    """
    bad_value = "CASE WHEN v IS NULL THEN 1 WHEN " + source.dialect.not_finite("v") + " THEN 1 END"
    (n_rows, n_no_id, n_bad_day, n_no_day, n_bad_value, n_negative, first, last), = source.rows(
        "SELECT COUNT(*), COUNT(CASE WHEN cid IS NULL THEN 1 END), COUNT(CASE WHEN day IS NULL THEN 1 END), "
        f"COUNT(CASE WHEN raw IS NULL THEN 1 END), COUNT({bad_value}), COUNT(CASE WHEN v < 0 THEN 1 END), "
        f"MIN(day) - DATE '1970-01-01', MAX(day) - DATE '1970-01-01' FROM ({tx_sql}) AS t")
    if n_rows == 0:
        check_not_empty(pd.DataFrame(columns=source.columns()))
    if n_no_id:
        raise DataValidationError("missing (NaN/None) customer ids at the listed row positions",
                                  column=customer_id, rows=_missing_id_positions(source, customer_id))
    date_kind = _kind(types["date"])
    if date_kind not in ("date", "string"):
        what = "numeric" if date_kind in ("number", "bool") else "not dates"
        raise DataValidationError(
            f"dates are {what} (type {types['date']}); store them as DATE or TIMESTAMP, or as ISO 8601 "
            "strings ('YYYY-MM-DD', optionally with a time)",
            column=date, rows=[r[0] for r in source.rows(f"SELECT cid FROM ({tx_sql}) AS t LIMIT 1")])
    if n_bad_day:
        what = "missing" if n_no_day == n_bad_day else "missing or unparseable"
        raise DataValidationError(f"{n_bad_day} {what} date(s) for the listed customers", column=date,
                                  rows=_customers(source, tx_sql, "day IS NULL", order))
    if value is not None:
        value_kind = _kind(types["value"])
        if value_kind == "bool":
            raise DataValidationError("values are booleans, expected amounts", column=value)
        if value_kind not in ("number", "string"):
            raise DataValidationError(f"values have type {types['value']}, expected amounts", column=value)
        if n_bad_value:
            raise DataValidationError(
                f"{n_bad_value} missing, non-numeric or infinite value(s) for the listed customers",
                column=value, rows=_customers(source, tx_sql, f"({bad_value}) = 1", order))
        if n_negative:
            raise DataValidationError(
                f"{n_negative} negative value(s) for the listed customers "
                "(returns/refunds must be netted out before summarising)",
                column=value, rows=_customers(source, tx_sql, "v < 0", order))
    return _EPOCH + pd.Timedelta(days=int(first)), _EPOCH + pd.Timedelta(days=int(last))


def _check_no_transactions_after(source, tx_sql: str, last: pd.Timestamp, observation_end: pd.Timestamp, *,
                                 date: str, order: str) -> None:
    if last > observation_end:
        after = f"day > {_day(observation_end)}"
        (n,), = source.rows(f"SELECT COUNT(*) FROM ({tx_sql}) AS t WHERE {after}")
        raise DataValidationError(
            f"{n} transaction(s) dated after observation_end {observation_end.date()} (last one {last.date()}); "
            "filter them out explicitly or move observation_end",
            column=date, rows=_customers(source, tx_sql, after, order))


# --------------------------------------------------------------------------- the summary
def _days_sql(has_value: bool) -> str:
    """One row per customer and purchase day (with the day's total value)."""
    return ("SELECT cid, day, SUM(v) AS v FROM tx GROUP BY cid, day" if has_value
            else "SELECT DISTINCT cid, day FROM tx")


def _check_log_spend(source, tx_sql: str, end: pd.Timestamp, *, value: str, order: str) -> None:
    """The pandas path's error for repeat purchase days worth 0, which have no log spend."""
    days = (f"WITH tx AS ({tx_sql}), days AS ({_days_sql(True)}), "
            "firsts AS (SELECT cid, MIN(day) AS first_day FROM days GROUP BY cid) "
            "SELECT d.cid, d.day, d.v, f.first_day FROM days AS d JOIN firsts AS f ON d.cid = f.cid")
    zero = _customers(source, days, f"day > first_day AND day <= {_day(end)} AND v <= 0", order)
    if zero:
        raise DataValidationError(LOG_SPEND_ZERO, column=value, rows=zero)


def _summary_sql(tx_sql: str, *, has_value: bool, end: pd.Timestamp, calibration_end: pd.Timestamp | None,
                 order: str, log_spend: bool = False) -> str:
    """Customer-days, then one row per cohort customer: first day, recency and counts in days, mean values."""
    end_day = _day(end)
    days = _days_sql(has_value)
    # each purchase day's gap to the customer's previous one, for the log inter-purchase times
    daily = f"SELECT p.*, p.day - LAG(p.day) OVER (PARTITION BY p.cid ORDER BY p.day) AS gap FROM ({days}) AS p"
    columns = [
        "d.cid AS customer_id",
        "f.first_day - DATE '1970-01-01' AS first_day",
        f"MAX(CASE WHEN d.day <= {end_day} THEN d.day END) - f.first_day AS recency_days",
        f"COUNT(CASE WHEN d.day <= {end_day} THEN 1 END) AS n_days",
        f"COALESCE(SUM(CASE WHEN d.day <= {end_day} AND d.gap IS NOT NULL THEN LN(d.gap) END), 0.0) "
        "AS log_gap_days",
    ]
    repeat = f"d.day > f.first_day AND d.day <= {end_day}"  # a repeat purchase day in calibration
    if has_value:  # mean over the repeat purchase days (first one excluded), 0 without any
        columns.append(f"COALESCE(AVG(CASE WHEN {repeat} THEN d.v END), 0.0) AS monetary_value")
    joins = ""
    if log_spend:  # mean and within sum of squares of the repeat days' log values, in two passes as pandas
        columns.append("COALESCE(MAX(m.log_mean), 0.0) AS log_spend_mean")
        columns.append(f"COALESCE(SUM(CASE WHEN {repeat} THEN (LN(d.v) - m.log_mean) * (LN(d.v) - m.log_mean) "
                       "END), 0.0) AS log_spend_ss")
        joins = (" LEFT JOIN (SELECT d.cid, AVG(LN(d.v)) AS log_mean FROM daily AS d JOIN firsts AS f "
                 f"ON d.cid = f.cid WHERE {repeat} GROUP BY d.cid) AS m ON d.cid = m.cid")
    if calibration_end is not None:
        cal_day = _day(calibration_end)
        columns.append(f"COUNT(CASE WHEN d.day > {cal_day} THEN 1 END) AS frequency_holdout")
        if has_value:
            columns.append(f"COALESCE(AVG(CASE WHEN d.day > {cal_day} THEN d.v END), 0.0) "
                           "AS monetary_value_holdout")
    return (f"WITH tx AS ({tx_sql}), daily AS ({daily}), "
            f"firsts AS (SELECT cid, MIN(day) AS first_day FROM daily GROUP BY cid HAVING MIN(day) <= {end_day}) "
            f"SELECT {', '.join(columns)} FROM daily AS d JOIN firsts AS f ON d.cid = f.cid{joins} "
            f"GROUP BY d.cid, f.first_day ORDER BY d.cid{order}")


def _finish(batch: dict[str, np.ndarray], *, days_per_unit: float, time_unit: str, end: pd.Timestamp,
            calibration_end: pd.Timestamp | None, observation_end: pd.Timestamp,
            cohort: str | None, litt: bool, log_spend: bool = False) -> pd.DataFrame:
    """The pandas path's frame (columns, dtypes, attrs) from one batch of database rows."""
    first_day = batch["first_day"].astype(np.int64)
    out = pd.DataFrame({"customer_id": pd.Series(batch["customer_id"])})
    out["frequency"] = (batch["n_days"].astype(np.int64) - 1).astype("float64")
    out["recency"] = batch["recency_days"].astype("float64") / days_per_unit
    out["T"] = ((end - _EPOCH).days - first_day).astype("float64") / days_per_unit
    if "monetary_value" in batch:
        out["monetary_value"] = batch["monetary_value"].astype("float64")
    if log_spend:
        out["log_spend_mean"] = batch["log_spend_mean"].astype("float64")
        out["log_spend_ss"] = batch["log_spend_ss"].astype("float64")
    if litt:  # sum_j log(gap_j / days_per_unit) from the database's sum of log gaps in days
        out["litt"] = batch["log_gap_days"].astype("float64") - out["frequency"] * np.log(days_per_unit)
    if calibration_end is not None:
        out["frequency_holdout"] = batch["frequency_holdout"].astype("float64")
        if "monetary_value_holdout" in batch:
            out["monetary_value_holdout"] = batch["monetary_value_holdout"].astype("float64")
        out["T_holdout"] = np.float64((observation_end - calibration_end).days) / days_per_unit
    if cohort is not None:
        out["cohort"] = cohort_labels(pd.Series(first_day.astype("datetime64[D]").astype("datetime64[s]")), cohort)
    out.attrs["time_unit"] = time_unit
    out.attrs["observation_end"] = observation_end
    if calibration_end is not None:
        out.attrs["calibration_end"] = calibration_end
    return out


def rfm_summary_chunks(
    transactions: Any,
    *,
    table: str | None = None,
    customer_id: str = "customer_id",
    date: str = "date",
    value: str | None = None,
    time_unit: str = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
    cohort: str | None = None,
    litt: bool = True,
    log_spend: bool = False,
    chunk_customers: int = CHUNK_CUSTOMERS,
) -> Iterator[pd.DataFrame]:
    """:func:`bayesclv.rfm_summary` of transactions in a database, streamed in chunks of customers.

    The database does all the grouping; this holds one chunk of the summary at a
    time (write each one out, e.g. ``chunk.to_parquet(...)``, for customer bases
    that do not fit in memory). The input is checked before the first chunk is
    returned.

    Parameters
    ----------
    transactions
        A DuckDB relation or connection, a path to a DuckDB database file, a Parquet
        file, folder or glob (read by an in-memory DuckDB), a SQLAlchemy engine or
        connection, or a database URL (``"postgresql://user@host/db"``; needs
        ``pip install 'bayesclv[sql]'``).
    table : str, optional
        For a connection, database file or URL: a table name (``"schema.table"``
        allowed) or a SQL query (starting with ``SELECT``, ``WITH``, ``FROM``,
        ``VALUES`` or ``TABLE``). A DuckDB file with a single table needs none.
    customer_id, date, value, time_unit, calibration_end, observation_end, cohort, litt, log_spend
        As for :func:`bayesclv.rfm_summary`. Dates must be ``DATE``/``TIMESTAMP``
        columns (time-zone-aware ones are read in the connection's time zone) or
        ISO 8601 strings (``YYYY-MM-DD``, optionally with a time); values numbers
        or numeric strings.
    chunk_customers : int, default 1,000,000
        Customers per chunk.

    Returns
    -------
    iterator of pandas.DataFrame
        Consecutive pieces of the frame :func:`bayesclv.rfm_summary` returns, in
        ``customer_id`` order, each with its ``attrs``; a connection opened here
        is closed when the iterator is exhausted.

    Raises
    ------
    ValueError, bayesclv.errors.DataValidationError
        As :func:`bayesclv.rfm_summary`; customers named by an error are listed
        in id order, row positions (missing ids) in the order the database
        returns the rows.
    """
    days_per_unit = check_time_unit(time_unit)
    if cohort is not None:
        check_cohort_frequency(cohort)
    if not isinstance(chunk_customers, (int, np.integer)) or chunk_customers < 1:
        raise ValueError(f"chunk_customers must be a positive integer, got {chunk_customers!r}")
    check_log_spend_argument(log_spend, value)
    stack = contextlib.ExitStack()
    try:
        source = stack.enter_context(_open(transactions, table))
        tx_sql, types = _transactions_sql(source, customer_id, date, value)
        order = source.dialect.text_order if _kind(types["id"]) == "string" else ""
        first, last = _check(source, tx_sql, types, customer_id=customer_id, date=date, value=value, order=order)
        cal_end, obs_end = check_period(first, last, calibration_end, observation_end, column=date)
        _check_no_transactions_after(source, tx_sql, last, obs_end, date=date, order=order)
        end = obs_end if cal_end is None else cal_end
        if log_spend:
            _check_log_spend(source, tx_sql, end, value=value, order=order)
    except BaseException:
        stack.close()
        raise
    sql = _summary_sql(tx_sql, has_value=value is not None, end=end, calibration_end=cal_end, order=order,
                       log_spend=log_spend)
    options = {"days_per_unit": days_per_unit, "time_unit": time_unit, "end": end, "calibration_end": cal_end,
               "observation_end": obs_end, "cohort": cohort, "litt": litt, "log_spend": log_spend}
    return _stream(stack, source, sql, int(chunk_customers), options)


def _stream(stack: contextlib.ExitStack, source, sql: str, size: int, options: dict) -> Iterator[pd.DataFrame]:
    with stack:
        for batch in source.batches(sql, size):
            if len(batch["customer_id"]):
                yield _finish(batch, **options)


def rfm_summary_database(transactions: Any, *, table: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """:func:`bayesclv.rfm_summary` of transactions in a database, as one frame (see :func:`rfm_summary_chunks`)."""
    chunks = list(rfm_summary_chunks(transactions, table=table, **kwargs))
    out = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    out.attrs = dict(chunks[0].attrs)
    return out
