"""rfm_summary on transactions in a database equals the pandas path: DuckDB file, Parquet via DuckDB, PostgreSQL.

Every backend is real: a DuckDB database file on disk, Parquet files read by
DuckDB, and a PostgreSQL server whose URL is in ``BAYESCLV_TEST_POSTGRES_URL``
(``.ci/run`` installs Debian's ``postgresql`` and starts one; without the
variable the PostgreSQL cases are skipped, except under CI where that is an
error). Each case summarises the same transactions with the pandas path and
requires the same frame (columns, dtypes, values, row order, attrs) or the same
error (type, column, offending rows, message).
"""

from __future__ import annotations

import os
import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest

import bayesclv as bc
from bayesclv.data.database import rfm_summary_chunks
from bayesclv.errors import DataValidationError

POSTGRES_URL = os.environ.get("BAYESCLV_TEST_POSTGRES_URL")
BACKENDS = ["duckdb_file", "parquet", "postgres"]


# --------------------------------------------------------------------------- backends
class DuckDBFile:
    """Tables in one DuckDB database file on disk, read through its path."""

    def __init__(self, path):
        self.path = str(path)

    def load(self, frame: pd.DataFrame, sql_types: dict | None = None):
        name = f"t_{uuid.uuid4().hex[:12]}"
        with duckdb.connect(self.path) as con:
            con.register("frame", frame)
            casts = ", ".join(f'CAST("{c}" AS {sql_types[c]}) AS "{c}"' if sql_types and c in sql_types
                              else f'"{c}"' for c in frame.columns)
            con.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM frame")
        return self.path, name


class ParquetFolder:
    """A folder of Parquet files (the frame split in ``parts`` files), read by DuckDB."""

    def __init__(self, root):
        self.root = root

    def load(self, frame: pd.DataFrame, sql_types: dict | None = None, parts: int = 3):
        folder = self.root / f"t_{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        bounds = np.linspace(0, len(frame), min(parts, max(len(frame), 1)) + 1).astype(int)
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            table = frame.iloc[lo:hi]
            if sql_types:  # store as the database would (e.g. decimals)
                with duckdb.connect() as con:
                    con.register("part", table)
                    casts = ", ".join(f'CAST("{c}" AS {sql_types[c]}) AS "{c}"' if c in sql_types else f'"{c}"'
                                      for c in frame.columns)
                    con.execute(f"COPY (SELECT {casts} FROM part) TO '{folder / f'part-{i}.parquet'}'")
            else:
                table.to_parquet(folder / f"part-{i}.parquet", index=False)
        return str(folder), None


_PG_TYPES = {"i": "BIGINT", "f": "DOUBLE PRECISION", "M": "TIMESTAMP", "b": "BOOLEAN"}


class Postgres:
    """Tables in a schema of the PostgreSQL test server, loaded by COPY, read through the URL."""

    def __init__(self, url: str):
        import sqlalchemy as sa

        self.url = url
        self.schema = f"bayesclv_test_{os.getpid()}"
        self.engine = sa.create_engine(url)
        with self.engine.begin() as con:
            con.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            con.exec_driver_sql(f"CREATE SCHEMA {self.schema}")
            # text in a linguistic collation (b < B, ' a' after 'B'), where the database's own order is not pandas'
            icu = con.exec_driver_sql("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'").first()
        self.text = 'TEXT COLLATE "und-x-icu"' if icu else "TEXT"

    def load(self, frame: pd.DataFrame, sql_types: dict | None = None):
        name = f"{self.schema}.t_{uuid.uuid4().hex[:12]}"
        types = {c: (sql_types or {}).get(c) or _PG_TYPES.get(frame[c].dtype.kind, self.text) for c in frame.columns}
        if any(isinstance(frame[c].dtype, pd.DatetimeTZDtype) for c in frame.columns):
            raise NotImplementedError("time-zone-aware columns are loaded in the DuckDB tests only")
        columns = ", ".join(f'"{c}" {t}' for c, t in types.items())
        rows = frame.astype(object).where(frame.notna(), None) if len(frame) else frame
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute(f"CREATE TABLE {name} ({columns})")
                with cur.copy(f"COPY {name} FROM STDIN") as copy:
                    for row in rows.itertuples(index=False):
                        copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        return self.url, name

    def close(self):
        with self.engine.begin() as con:
            con.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.engine.dispose()


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("databases")
    made = {"duckdb_file": DuckDBFile(root / "transactions.duckdb"), "parquet": ParquetFolder(root)}
    if POSTGRES_URL:
        made["postgres"] = Postgres(POSTGRES_URL)
    yield made
    if "postgres" in made:
        made["postgres"].close()


@pytest.fixture(params=BACKENDS)
def backend(request, backends):
    if request.param == "postgres" and "postgres" not in backends:
        if os.environ.get("CI"):
            pytest.fail("BAYESCLV_TEST_POSTGRES_URL is unset under CI: .ci/run starts a PostgreSQL server")
        pytest.skip("no PostgreSQL server: set BAYESCLV_TEST_POSTGRES_URL (e.g. by sourcing .ci/postgres.sh "
                    "and calling start_test_postgres)")
    return backends[request.param]


def summarise(source, **kwargs) -> pd.DataFrame:
    transactions, table = source
    return bc.rfm_summary(transactions, table=table, **kwargs)


def assert_same(out: pd.DataFrame, ref: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-12)
    means = ("monetary_value", "monetary_value_holdout", "log_spend_mean", "log_spend_ss")
    exact = [c for c in ref.columns if c not in means]
    pd.testing.assert_frame_equal(out[exact], ref[exact])  # counts and times are exact; means to rounding
    assert out.attrs == ref.attrs


# --------------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow():
    return {"sample": bc.datasets.load_cdnow("sample"), "full": bc.datasets.load_cdnow("full")}


CDNOW_CASES = [
    {},
    {"value": "value", "calibration_end": "1997-09-30"},
    {"value": "value", "time_unit": "D", "calibration_end": "1997-09-30", "observation_end": "1998-07-15",
     "cohort": "M"},
    {"time_unit": "Y", "cohort": "W"},
    {"value": "value", "calibration_end": "1997-09-30", "log_spend": True},
]


@pytest.mark.parametrize("which", ["sample", "full"])
def test_cdnow_equals_pandas(backend, cdnow, which):
    tx = cdnow[which].sample(frac=1.0, random_state=3)  # row order must not matter
    source = backend.load(tx)
    for kwargs in CDNOW_CASES if which == "sample" else CDNOW_CASES[:2]:
        out = summarise(source, **kwargs)
        assert_same(out, bc.rfm_summary(tx, **kwargs))
    if which == "sample":  # the published totals (Fader, Hardie & Lee 2005), straight from the database
        rfm = summarise(source, value="value", calibration_end="1997-09-30")
        assert (len(rfm), rfm["frequency"].sum(), rfm["frequency_holdout"].sum()) == (2357, 2457, 1882)


def test_chunks_concatenate_to_the_summary(backend, cdnow):
    tx = cdnow["sample"]
    transactions, table = backend.load(tx)
    kwargs = {"value": "value", "calibration_end": "1997-09-30", "cohort": "Q"}
    chunks = list(rfm_summary_chunks(transactions, table=table, chunk_customers=500, **kwargs))
    assert [len(c) for c in chunks] == [500, 500, 500, 500, 357]
    ref = bc.rfm_summary(tx, **kwargs)
    for chunk in chunks:
        assert chunk.attrs == ref.attrs
    assert_same(pd.concat(chunks, ignore_index=True).__finalize__(chunks[0]), ref)


# --------------------------------------------------------------------------- hostile cases
def _hostile() -> pd.DataFrame:
    """Text ids whose byte order differs from locale order, times of day, same-day purchases, extreme values."""
    rows = [
        ("b", "2021-01-01 00:00:00", 10.0), ("b", "2021-01-01 23:59:59.999", 5.0),  # one purchase day of 15
        ("b", "2021-01-15 12:00", 1e9), ("b", "2021-01-16 00:00", 0.01),  # spend spanning 11 digits
        ("B", "2021-01-02 08:00", 0.0), ("B", "2021-02-20 08:00", 0.0),  # zero spend
        ("10", "2021-01-03", 3.0), ("9", "2021-01-03", 4.0), ("9", "2021-02-27", 2.5),  # "10" < "9"
        ("é", "2021-01-31", 7.0),  # first purchase on calibration_end, nothing else
        ("O'Brien \"x\"", "2021-01-04", 1.0), ("O'Brien \"x\"", "2021-02-01", 2.0),  # holdout-only repeat
        ("O'Brien \"x\"", "2021-02-01 18:00", 3.0),
        ("late", "2021-02-05", 9.0), ("late", "2021-02-06", 9.0),  # first purchase after calibration_end
        (" a", "2021-01-10", 1.5), (" a", "2021-01-20", 2.5), (" a", "2021-01-31 23:00", 3.5),
    ]
    frame = pd.DataFrame(rows, columns=["cust", "when", "amount"])
    return frame.assign(when=pd.to_datetime(frame["when"], format="mixed")).sample(frac=1.0, random_state=1)


HOSTILE_CASES = [
    {"value": "amount"},
    {"value": "amount", "time_unit": "D", "calibration_end": "2021-01-31", "observation_end": "2021-03-01"},
    {"value": "amount", "time_unit": "M", "calibration_end": "2021-01-31", "cohort": "W"},
    {"time_unit": "Y", "calibration_end": "2021-02-01 17:00", "cohort": "Y"},
    {"value": "amount", "calibration_end": "2021-01-31", "litt": False},
]


def test_log_spend_of_the_hostile_log_equals_pandas(backend):
    # one purchase day of 15 from two rows, spend spanning 11 digits, a first purchase on calibration_end
    tx = _hostile().query("cust != 'B'")  # B's repeat day is worth 0: an error case below
    kwargs = {"customer_id": "cust", "date": "when", "value": "amount", "log_spend": True}
    for extra in ({}, {"calibration_end": "2021-01-31", "time_unit": "D", "litt": False}):
        out = summarise(backend.load(tx), **kwargs, **extra)
        ref = bc.rfm_summary(tx, **kwargs, **extra)
        assert ref["log_spend_ss"].max() > 10  # the 1e9 and 0.01 days of customer b
        assert_same(out, ref)
    with pytest.raises(DataValidationError) as expected:  # text ids in the error, in the pandas order
        bc.rfm_summary(_hostile(), **kwargs)
    with pytest.raises(DataValidationError) as got:
        summarise(backend.load(_hostile()), **kwargs)
    assert (got.value.column, got.value.rows, str(got.value)) == ("amount", ["B"], str(expected.value))


@pytest.mark.parametrize("kwargs", HOSTILE_CASES)
def test_hostile_equals_pandas(backend, kwargs):
    tx = _hostile()
    out = summarise(backend.load(tx), customer_id="cust", date="when", **kwargs)
    ref = bc.rfm_summary(tx, customer_id="cust", date="when", **kwargs)
    assert out["customer_id"].tolist()[:3] == [" a", "10", "9"]  # code point order, as pandas sorts
    assert_same(out, ref)


def test_text_dates_and_values_equal_pandas(backend):
    # dates and amounts stored as text: ISO days with and without times, one-digit months, padding
    tx = pd.DataFrame({
        "customer_id": [1, 1, 1, 2, 2, 3, 3],
        "date": ["2021-01-05", "2021-01-05T10:00:00", "2021-1-9 07:30", " 2021-02-01 ",
                 "2021-01-06 00:00:00.25", "2021-01-07T23:59", "2021-02-28"],
        "value": [" 12.5", "1e2", "3", "0.5", "+7", ".25", "4."],
    })
    kwargs = {"value": "value", "calibration_end": "2021-01-31", "time_unit": "D"}
    assert_same(summarise(backend.load(tx), **kwargs), bc.rfm_summary(tx, **kwargs))


def test_decimal_values_and_integer_ids(backend):
    tx = _hostile().assign(cust=lambda f: f["cust"].astype("category").cat.codes.astype("int64"))
    source = backend.load(tx, sql_types={"amount": "DECIMAL(14, 2)", "when": "TIMESTAMP"})
    kwargs = {"customer_id": "cust", "date": "when", "value": "amount", "calibration_end": "2021-01-31"}
    assert_same(summarise(source, **kwargs), bc.rfm_summary(tx, **kwargs))


def test_date_columns_and_queries(backend):
    tx = bc.datasets.load_cdnow("sample").assign(date=lambda f: f["date"].dt.date)
    transactions, table = backend.load(tx, sql_types={"date": "DATE"})
    kwargs = {"value": "value", "calibration_end": "1997-09-30"}
    ref = bc.rfm_summary(tx, **kwargs)
    if table is None:  # Parquet: the path is the table; DuckDB reads it like this for a query
        transactions, table = duckdb.connect(), f"SELECT * FROM read_parquet('{transactions}/*.parquet')"
    else:
        table = f"SELECT * FROM {table} WHERE value >= 0 AND CAST(customer_id AS TEXT) NOT LIKE '%x%'"
    assert_same(bc.rfm_summary(transactions, table=table, **kwargs), ref)


# --------------------------------------------------------------------------- the same errors
def _tx(**overrides) -> pd.DataFrame:
    base = {
        "customer_id": [10, 10, 20, 30],
        "date": pd.to_datetime(["2021-01-01", "2021-01-05", "2021-01-02", "2021-01-10"]),
        "value": [1.0, 2.0, 3.0, 4.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


ERROR_CASES = {
    "missing ids": (_tx(customer_id=[10, None, 20, np.nan]), {}),
    "missing date": (_tx(date=["2021-01-01", "2021-01-05", None, "2021-01-10"]), {}),
    "unparseable date": (_tx(date=["2021-01-01", "someday", "2021-01-02", "2021-13-45"]), {}),
    "numeric dates": (_tx(date=[20210101, 20210105, 20210102, 20210110]), {}),
    "negative value": (_tx(value=[1.0, -2.0, 3.0, -4.0]), {"value": "value"}),
    "negative value, text ids": (_tx(customer_id=["b", "B", "b", "a"], value=[1.0, -2.0, 3.0, -4.0]),
                                 {"value": "value"}),
    "missing value": (_tx(value=[1.0, 2.0, np.nan, 4.0]), {"value": "value"}),
    "text value": (_tx(value=["1", "2", "3", "abc"]), {"value": "value"}),
    "infinite value": (_tx(value=[1.0, np.inf, 3.0, 4.0]), {"value": "value"}),
    "boolean values": (_tx(value=[True, False, True, True]), {"value": "value"}),
    "future dates": (_tx(), {"observation_end": "2021-01-04"}),
    "future dates, holdout": (_tx(), {"calibration_end": "2021-01-02", "observation_end": "2021-01-04"}),
    "calibration before data": (_tx(), {"calibration_end": "2020-12-31"}),
    "calibration after data": (_tx(), {"calibration_end": "2021-01-11"}),
    "observation before calibration": (_tx(), {"calibration_end": "2021-01-05", "observation_end": "2021-01-04"}),
    "bad calibration_end": (_tx(), {"calibration_end": "soon"}),
    "missing column": (_tx(), {"value": "amount"}),
    "empty": (_tx().iloc[:0], {"value": "value"}),
    "repeat day worth 0, log spend": (_tx(value=[1.0, 0.0, 3.0, 4.0], amount=[1.0, 0.0, 3.0, 4.0]),
                                      {"value": "amount", "log_spend": True}),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_equal_pandas(backend, case):
    tx, kwargs = ERROR_CASES[case]
    with pytest.raises(DataValidationError) as expected:
        bc.rfm_summary(tx, **kwargs)
    source = backend.load(tx, parts=1) if isinstance(backend, ParquetFolder) else backend.load(tx)
    with pytest.raises(DataValidationError) as got:
        summarise(source, **kwargs)
    assert type(got.value) is type(expected.value)
    assert got.value.column == expected.value.column
    assert got.value.rows == expected.value.rows
    if case == "numeric dates":  # the type is named the database's way
        assert "dates are numeric" in str(got.value)
    else:
        assert str(got.value) == str(expected.value)


def test_argument_errors(backends, tmp_path):
    path, table = backends["duckdb_file"].load(_tx())
    backends["duckdb_file"].load(_tx())
    with pytest.raises(ValueError, match="table="):  # two or more tables
        bc.rfm_summary(path)
    with pytest.raises(ValueError, match="time_unit"):
        bc.rfm_summary(path, table=table, time_unit="H")
    with pytest.raises(ValueError, match="cohort"):
        bc.rfm_summary(path, table=table, cohort="D")
    with pytest.raises(ValueError, match="chunk_customers"):
        rfm_summary_chunks(path, table=table, chunk_customers=0)
    with pytest.raises(TypeError, match="pandas"):
        bc.rfm_summary(tmp_path / "tx.csv")
    with pytest.raises(FileNotFoundError):
        bc.rfm_summary(tmp_path / "nothing.duckdb", table="tx")
    with pytest.raises(TypeError, match="table="):
        bc.rfm_summary(_tx(), table="tx")
    with pytest.raises(ValueError, match="no SQL dialect for 'sqlite'"):  # refused by name, not guessed
        bc.rfm_summary("sqlite://", table="tx")
    with pytest.raises(ValueError, match="table="):
        bc.rfm_summary("sqlite://")
    with duckdb.connect(path, read_only=True) as con:
        with pytest.raises(ValueError, match="relation"):
            bc.rfm_summary(con.table(table), table=table)
        with pytest.raises(ValueError, match="table="):
            bc.rfm_summary(con)


def test_relation_and_time_zone_in_duckdb():
    # a relation of an in-memory database; time-zone-aware stamps read in the session's zone, as pandas
    # reads them in theirs
    tx = _hostile().assign(when=lambda f: f["when"].dt.tz_localize("America/New_York"))
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'America/New_York'")
        con.register("frame", tx)
        relation = con.sql("SELECT * FROM frame")
        assert "TIME ZONE" in str(relation.types[1])
        kwargs = {"customer_id": "cust", "date": "when", "value": "amount", "calibration_end": "2021-01-31"}
        assert_same(bc.rfm_summary(relation, **kwargs), bc.rfm_summary(tx, **kwargs))
