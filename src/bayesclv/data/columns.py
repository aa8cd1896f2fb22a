"""Column checks of a transaction log: customer ids, dates and values.

Each check returns the column ready to use or raises
:class:`~bayesclv.errors.DataValidationError` naming the column and the offending
customers (row positions where the ids themselves are unusable). The rules:

- **Customer ids** are never coerced: missing or blank ids are refused, and so is a
  column mixing kinds of values (numbers and strings: ``1`` and ``"1"`` would be two
  customers that print the same; ``True`` and ``1`` would be one). Convert the column
  to one type first. Integers and floats are one kind (``1`` and ``1.0`` are one
  customer); booleans are not ids.
- **Dates**: one format per column. The format is the one pandas infers from the first
  string (ambiguous day/month strings such as ``"05/01/2020"`` read month first, as
  pandas reads them); other strings may add or drop a time of day but must write the
  date the same way, else the rows written another way are listed. Time-zone-aware
  stamps keep their local wall-clock date, and aware and naive stamps do not mix.
  Numbers are never read as dates.
- **Values** are finite and non-negative numbers.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from bayesclv.errors import DataValidationError

__all__ = ["check_customer_ids", "check_values", "offending_ids", "parse_dates", "unique_list"]

# kinds of id values that never mix in one column (infer_dtype results that hold one kind)
_ONE_KIND = {"string", "integer", "floating", "mixed-integer-float", "decimal", "boolean", "bytes", "datetime",
             "datetime64", "date", "timedelta", "timedelta64", "period", "time", "complex", "interval", "empty"}
# a time-of-day or time-zone directive starts the part of a date format that may vary within a column
_TIME_DIRECTIVES = ("%H", "%I", "%p", "%M", "%S", "%f", "%z", "%Z")


def unique_list(values: Iterable) -> list:
    """Unique values in order of first appearance, as plain Python objects."""
    if isinstance(values, (pd.Series, pd.Index, np.ndarray)):
        values = values.tolist()
    seen: dict = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def offending_ids(ids: pd.Series, mask: np.ndarray | pd.Series) -> list:
    """The distinct ids of the rows where ``mask`` is true, in order of appearance."""
    mask = np.asarray(mask, dtype=bool)
    return unique_list(ids[mask])


def _kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


def check_customer_ids(df: pd.DataFrame, column: str) -> pd.Series:
    """Return the customer-id column; raise on missing, blank, boolean or mixed-type ids.

    Missing and blank ids are reported by row position, mixed types by the ids of
    the less common kinds.
    """
    ids = df[column]
    bad = ids.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            "missing (NaN/None) customer ids at the listed row positions",
            column=column,
            rows=np.flatnonzero(bad).tolist(),
        )
    values = ids.cat.categories if isinstance(ids.dtype, pd.CategoricalDtype) else ids
    inferred = pd.api.types.infer_dtype(values, skipna=False)
    if inferred not in _ONE_KIND:
        kinds = ids.map(_kind)
        counts = kinds.value_counts()
        minority = (kinds != counts.index[0]).to_numpy()
        listed = ", ".join(f"{k}: {n} row{'s' if n > 1 else ''}" for k, n in counts.items())
        raise DataValidationError(
            f"customer ids mix types ({listed}): 1 and '1' would be two customers that print the same, "
            f"True and 1 one customer. Convert the column to one type first, e.g. df[{column!r}].astype(str); "
            "the listed ids are the ones not of the most common type",
            column=column,
            rows=offending_ids(ids, minority),
        )
    if inferred == "boolean":
        raise DataValidationError("customer ids are booleans (at most two customers); use the real ids",
                                  column=column)
    if inferred == "string":
        blank = ids.astype(str).str.strip().eq("").to_numpy()
        if blank.any():
            raise DataValidationError(
                "empty (blank) customer ids at the listed row positions", column=column,
                rows=np.flatnonzero(blank).tolist())
    return ids


# --------------------------------------------------------------------------- dates
def _date_part(fmt: str) -> str:
    """The date half of a strftime format: up to its first time-of-day or zone directive."""
    cut = min((fmt.find(d) for d in _TIME_DIRECTIVES if d in fmt), default=len(fmt))
    return fmt[:cut].rstrip(" T")


def _guess_format(text: str) -> str | None:
    with warnings.catch_warnings():  # pandas warns when a guess reads day first; we compare formats instead
        warnings.simplefilter("ignore", UserWarning)
        return guess_datetime_format(text)


def _to_datetime(strings: pd.Series, fmt: str, column: str) -> pd.Series:
    try:
        return pd.to_datetime(strings, format=fmt, errors="coerce")
    except (TypeError, ValueError) as exc:  # e.g. several UTC offsets in one column
        raise DataValidationError(
            f"could not parse the dates as {fmt!r} ({exc}); convert them yourself, e.g. "
            "pd.to_datetime(col, utc=True) for one time zone", column=column) from exc


def _parse_strings(strings: pd.Series, ids: pd.Series, column: str) -> list[tuple[pd.Series, bool]]:
    """Parse date strings in the format of the first one (time of day may vary).

    Returns ``(dates, aware)`` pieces: dates parsed in one format each, and whether that
    format carries a time zone. Unparseable strings stay NaT (reported by the caller);
    strings that parse only in a format with another date part are refused here.
    """
    strings = strings.str.strip()  # padding from fixed-width text columns is not a format of its own
    first = strings.iloc[0]
    fmt = _guess_format(first)
    if fmt is None:  # nothing to hold the other rows to: refuse rather than guess each row
        raise DataValidationError(
            f"cannot infer a date format from the first date {first!r}; parse the column with an "
            "explicit format first (pd.to_datetime(col, format=...))",
            column=column, rows=unique_list(ids.loc[strings.index[:1]]))
    parsed = _to_datetime(strings, fmt, column)
    pieces = [(parsed[parsed.notna()], isinstance(parsed.dtype, pd.DatetimeTZDtype))]
    failed = strings[parsed.isna()]
    others: dict[str, list] = {}
    for text in unique_list(failed):
        other = _guess_format(text)
        if other is not None:
            others.setdefault(other, []).append(text)
    foreign = [f for f in others if _date_part(f) != _date_part(fmt)]
    if foreign:
        rows = failed.isin([t for f in foreign for t in others[f]]).to_numpy()
        example = others[foreign[0]][0]
        raise DataValidationError(
            f"dates in more than one format: the first date {first!r} reads as {fmt!r}, but "
            f"{int(rows.sum())} date(s) read only as {foreign[0]!r} (e.g. {example!r}); write the column in "
            "one format or parse it yourself with an explicit one (pd.to_datetime(col, format=...))",
            column=column, rows=offending_ids(ids.loc[failed.index], rows))
    for other, texts in others.items():  # the same date written with another time of day
        subset = failed[failed.isin(texts)]
        again = _to_datetime(subset, other, column)
        pieces.append((again[again.notna()], isinstance(again.dtype, pd.DatetimeTZDtype)))
    return pieces


def _parse_stamps(stamps: pd.Series) -> list[tuple[pd.Series, bool]]:
    """Datetime-like objects (``datetime``, ``Timestamp``, ``date``) split by time-zone awareness."""
    aware = stamps.map(lambda v: getattr(v, "tzinfo", None) is not None).to_numpy(dtype=bool)
    pieces = []
    if aware.any():  # each stamp's own wall-clock time: zones may differ from row to row
        local = stamps[aware].map(lambda v: pd.Timestamp(v).tz_localize(None))
        pieces.append((pd.to_datetime(local), True))
    if not aware.all():
        pieces.append((pd.to_datetime(stamps[~aware]), False))
    return pieces


def _parse_objects(dates: pd.Series, ids: pd.Series, column: str) -> pd.Series:
    """Strings and/or datetime-like objects to naive datetimes (NaT where missing or unparseable)."""
    present = dates[dates.notna()]
    kinds = pd.Series("string" if pd.api.types.infer_dtype(present) == "string" else None, index=present.index)
    if kinds.isna().any():
        kinds = present.map(lambda v: "string" if isinstance(v, str) else
                            "stamp" if hasattr(v, "year") or isinstance(v, np.datetime64) else "number" if isinstance(v, numbers.Number) else "other")
    numeric = (kinds == "number").to_numpy()
    if numeric.any():
        raise DataValidationError(
            f"{int(numeric.sum())} numeric date(s) among the dates; numbers are not read as dates (convert "
            "them, e.g. pd.to_datetime(col.astype(str), format='%Y%m%d'))",
            column=column, rows=offending_ids(ids.loc[present.index], numeric))
    pieces = []
    strings = present[(kinds == "string").to_numpy()]
    if len(strings):
        pieces += _parse_strings(strings, ids, column)
    stamps = present[(kinds == "stamp").to_numpy()]
    if len(stamps):
        pieces += _parse_stamps(stamps)
    aware = [len(p) > 0 and a for p, a in pieces]
    naive = [len(p) > 0 and not a for p, a in pieces]
    if any(aware) and any(naive):
        n_aware = sum(len(p) for (p, _), a in zip(pieces, aware, strict=True) if a)
        n_naive = sum(len(p) for (p, _), n in zip(pieces, naive, strict=True) if n)
        odd = [p for (p, _), flag in zip(pieces, aware if n_aware < n_naive else naive, strict=True) if flag]
        rows = pd.concat(odd).index
        raise DataValidationError(
            f"dates mix time-zone-aware ({n_aware}) and naive ({n_naive}) values; the listed customers have "
            f"the less common kind. Give every date a time zone or none",
            column=column, rows=unique_list(ids.loc[rows]))
    out = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[us]")  # days only: any unit will do
    for piece, _ in pieces:
        local = piece.dt.tz_localize(None) if isinstance(piece.dtype, pd.DatetimeTZDtype) else piece
        out[local.index] = local.astype("datetime64[us]")
    return out


def parse_dates(dates: pd.Series, ids: pd.Series, *, column: str) -> pd.Series:
    """Parse ``dates`` to calendar days (datetime64, time of day dropped).

    Rules in the module docstring: one string format per column (time of day may
    vary), local wall-clock dates of time-zone-aware stamps, no mix of aware and
    naive, no numbers. Missing or unparseable dates raise, naming the customers
    whose dates failed.
    """
    if pd.api.types.is_bool_dtype(dates) or pd.api.types.is_numeric_dtype(dates):
        raise DataValidationError(
            f"dates are numeric (dtype {dates.dtype}); convert them to datetimes or "
            "date strings first (e.g. pd.to_datetime(col.astype(str), format='%Y%m%d'))",
            column=column,
            rows=unique_list(ids.iloc[:1]),
        )
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        parsed = dates.dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dates):
        parsed = dates
    else:
        parsed = _parse_objects(dates, ids, column)
    bad = parsed.isna().to_numpy()
    if bad.any():
        n_missing = int(dates.isna().to_numpy()[bad].sum())
        what = "missing" if n_missing == bad.sum() else "missing or unparseable"
        raise DataValidationError(
            f"{int(bad.sum())} {what} date(s) for the listed customers",
            column=column,
            rows=offending_ids(ids, bad),
        )
    return parsed.dt.normalize()


def check_values(values: pd.Series, ids: pd.Series, *, column: str) -> pd.Series:
    """Return ``values`` as float; raise on non-numeric, NaN, infinite or negative values."""
    if pd.api.types.is_bool_dtype(values):
        raise DataValidationError("values are booleans, expected amounts", column=column)
    num = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy())
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} missing, non-numeric or infinite value(s) for the listed customers",
            column=column,
            rows=offending_ids(ids, bad),
        )
    neg = (num < 0).to_numpy()
    if neg.any():
        raise DataValidationError(
            f"{int(neg.sum())} negative value(s) for the listed customers "
            "(returns/refunds must be netted out before summarising)",
            column=column,
            rows=offending_ids(ids, neg),
        )
    return num
