"""Time-varying covariates: a long table of per-customer periods, validated, and the RFM rows that go with it.

A customer's covariates are constant on each period; periods are consecutive
calendar intervals of one length (``period``, a pandas frequency: ``"7D"`` for
weeks starting on any day, ``"W-MON"`` for weeks starting on Mondays, ``"MS"``
for calendar months), given by their first day. Each customer's periods must
follow each other without gaps or overlaps and cover the customer's time from
the first purchase to the end of what a model needs: the calibration end to
fit, the end of a prediction's horizon to predict (the future path of the
covariates is the user's to give).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import check_customer_ids, offending_ids, parse_dates, unique_list
from bayesclv.data.purchases import purchase_log
from bayesclv.data.rfm import rfm_summary
from bayesclv.data.validation import (
    check_columns,
    check_not_empty,
    check_time_unit,
    numeric_column,
    to_pandas,
    validate_rfm,
)
from bayesclv.errors import ArgumentError, DataValidationError, DataWarning

__all__ = ["SUM_PREFIX", "CovariatePaths", "covariate_paths", "time_varying_summary", "validate_time_varying"]

SUM_PREFIX = "purchase_sum:"  # column of the sum of a covariate over a customer's repeat purchase days
_TOLERANCE = 1e-9  # in time units: a period end that reaches a limit up to rounding covers it


@dataclass(frozen=True)
class Pieces:
    """Each customer's covariate periods in customer time (0 = first purchase), clipped to ``[0, until]``.

    ``start``, ``end`` of shape ``(N, K)`` (padding: ``start == end == until``),
    ``values`` of shape ``(N, K, P)`` in the order of the requested columns.
    """

    start: np.ndarray
    end: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class CovariatePaths:
    """A validated long table of covariate periods (build it with :func:`covariate_paths`).

    Attributes
    ----------
    table : pandas.DataFrame
        ``customer_id``, ``period_start``, ``period_end`` (exclusive; calendar
        days) and the covariates as floats, sorted by customer and start.
    covariates : tuple of str
    period : str
        The periods' length as a pandas frequency.
    """

    table: pd.DataFrame
    covariates: tuple[str, ...]
    period: str

    def check_cover(self, customer_ids: Sequence, first_purchase: Any, until: Any, time_unit: str) -> None:
        """Raise unless every customer has periods from ``first_purchase`` to ``until`` (customer time).

        Raises
        ------
        bayesclv.errors.DataValidationError
            Customers without periods (column ``customer_id``), whose periods start
            after their first purchase or end before ``until`` (column ``period_start``).
        """
        self._span(customer_ids, first_purchase, until, time_unit)

    def _span(self, customer_ids, first_purchase, until, time_unit):
        ids = pd.Index(customer_ids)
        per_customer = self.table.groupby("customer_id", sort=False)
        first_start, last_end = per_customer["period_start"].min(), per_customer["period_end"].max()
        known = ids.isin(first_start.index)
        if not known.all():
            raise DataValidationError("no covariate periods for the listed customers", column="customer_id",
                                      rows=unique_list(ids[~known]))
        days = check_time_unit(time_unit)
        first = pd.DatetimeIndex(first_purchase)
        until = np.broadcast_to(np.asarray(until, dtype=float), (len(ids),))
        late = (first_start.reindex(ids).to_numpy() > first.to_numpy())
        if late.any():
            raise DataValidationError("covariate periods start after the customer's first purchase: they must "
                                      "cover every day from it", column="period_start", rows=unique_list(ids[late]))
        reach = (pd.DatetimeIndex(last_end.reindex(ids)) - first).days.to_numpy() / days
        short = reach < until - _TOLERANCE
        if short.any():
            needed = first[short][0] + pd.Timedelta(days=float(until[short][0] * days))
            raise DataValidationError(
                f"covariate periods end before the time they must cover (e.g. customer {ids[short][0]!r}: "
                f"until {needed.date()}, periods end {pd.Timestamp(last_end[ids[short][0]]).date()}); "
                "predictions need the covariates' future path up to the horizon",
                column="period_start", rows=unique_list(ids[short]))
        return ids, first, until, days

    def pieces(self, customer_ids: Sequence, first_purchase: Any, until: Any, time_unit: str,
               columns: Sequence[str]) -> Pieces:
        """The periods of ``customer_ids`` in customer time, clipped to ``[0, until]``, after :meth:`check_cover`."""
        ids, first, until, days = self._span(customer_ids, first_purchase, until, time_unit)
        position = pd.Series(np.arange(len(ids)), index=ids)
        tab = self.table[self.table["customer_id"].isin(ids)]
        row = position.reindex(tab["customer_id"]).to_numpy()
        origin = first.to_numpy()[row]
        t0 = (tab["period_start"].to_numpy() - origin) / np.timedelta64(1, "D") / days
        t1 = (tab["period_end"].to_numpy() - origin) / np.timedelta64(1, "D") / days
        keep = (t1 > 0.0) & (t0 < until[row])
        row, t0, t1 = row[keep], t0[keep], t1[keep]
        slot = pd.Series(row).groupby(row).cumcount().to_numpy()
        k = int(slot.max()) + 1 if slot.size else 0
        start = np.repeat(until[:, None], k, axis=1)
        end = start.copy()
        values = np.zeros((len(ids), k, len(columns)))
        start[row, slot] = np.maximum(t0, 0.0)
        end[row, slot] = np.minimum(t1, until[row])
        values[row, slot] = tab[list(columns)].to_numpy(dtype=float)[keep]
        return Pieces(start, end, values)

    def to_json(self) -> str:
        """The table as JSON (for a saved model)."""
        tab = self.table.drop(columns="period_end")
        return json.dumps({"period": self.period, "covariates": list(self.covariates),
                           "customer_id": tab["customer_id"].tolist(),
                           "period_start": tab["period_start"].dt.strftime("%Y-%m-%d").tolist(),
                           **{c: tab[c].tolist() for c in self.covariates}})

    @classmethod
    def from_json(cls, text: str) -> CovariatePaths:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        table = pd.DataFrame({k: raw[k] for k in ("customer_id", "period_start", *raw["covariates"])})
        return covariate_paths(table, raw["covariates"], period=raw["period"])


def covariate_paths(table: Any, covariates: Sequence[str], *, customer_id: str = "customer_id",
                    period_start: str = "period_start", period: str = "7D") -> CovariatePaths:
    """Validate a long table of time-varying covariates: one row per customer and period.

    Parameters
    ----------
    table : pandas.DataFrame or polars.DataFrame
        Columns ``customer_id``, ``period_start`` (dates) and the covariates.
    covariates : list of str
        Numeric covariate columns (booleans are read as 0/1).
    customer_id, period_start : str
        Names of the id and period-start columns (output: ``customer_id``, ``period_start``).
    period : str, default "7D"
        Length of every period, a pandas frequency: a period ends where
        ``period_start + period`` falls.

    Returns
    -------
    CovariatePaths

    Raises
    ------
    bayesclv.errors.ArgumentError
        ``period`` is not a pandas frequency.
    bayesclv.errors.DataValidationError
        Empty table, missing columns, bad ids or dates, covariates that are
        missing, infinite or not numbers (naming column and customers), two
        periods of a customer that overlap or leave a gap (column
        ``period_start``, naming the customers).
    """
    try:
        offset = pd.tseries.frequencies.to_offset(period)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"not a pandas frequency ({exc}); e.g. '7D', 'W-MON', 'MS'", argument="period") from exc
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    tab = to_pandas(table)
    check_not_empty(tab)
    check_columns(tab, [customer_id, period_start, *covariates])
    ids = check_customer_ids(tab, customer_id).reset_index(drop=True)
    out = pd.DataFrame({"customer_id": ids,
                        "period_start": parse_dates(tab[period_start].reset_index(drop=True), ids, column=period_start)})
    for col in covariates:
        raw = tab[col].reset_index(drop=True)
        out[col] = numeric_column(pd.DataFrame({col: raw.astype(float) if pd.api.types.is_bool_dtype(raw) else raw}),
                                  col, ids)
    out = out.sort_values(["customer_id", "period_start"], kind="stable").reset_index(drop=True)
    out["period_end"] = out["period_start"] + offset
    same = out["customer_id"].eq(out["customer_id"].shift())
    previous_end = out["period_end"].shift()
    for mask, what in ((same & (out["period_start"] < previous_end), "overlap (a period starts before the previous "
                        "one ends, or twice on one day)"),
                       (same & (out["period_start"] > previous_end), "leave a gap (a period starts after the "
                        f"previous one ends; periods are {period} long)")):
        if mask.any():
            raise DataValidationError(f"{int(mask.sum())} covariate period(s) {what}", column=period_start,
                                      rows=offending_ids(out["customer_id"], mask.to_numpy()))
    order = ["customer_id", "period_start", "period_end", *covariates]
    return CovariatePaths(out[order], tuple(covariates), period)


#: Share of calibration transactions merged into another one's purchase day above which
#: :func:`time_varying_summary` warns: at 3.8% the synthetic bases' purchase effects came out ~4% low.
SAME_DAY_WARNING_SHARE = 0.01


def _warn_same_day_purchases(transactions: pd.DataFrame, days: pd.DataFrame) -> None:
    """Warn when many transactions share a customer's purchase day, which the day counts merge into one."""
    merged = len(transactions) - len(days)
    share = merged / max(len(transactions), 1)
    if share > SAME_DAY_WARNING_SHARE:
        warnings.warn(
            f"{merged} of {len(transactions)} calibration transactions ({share:.1%}) fall on a day on which the "
            "same customer already bought, and count as one purchase day. Where such days cluster in high-rate "
            "periods the fitted purchase effects are pulled towards 0 (docs: time_varying, 'Purchase days')",
            DataWarning, stacklevel=3)


def time_varying_summary(transactions: Any, paths: CovariatePaths, *, customer_id: str = "customer_id",
                         date: str = "date", time_unit: str = "W", calibration_end: Any = None,
                         observation_end: Any = None) -> pd.DataFrame:
    """RFM rows with what the time-varying Pareto/NBD needs from the log: first purchase day and covariate sums.

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per transaction (purchase days as in :func:`bayesclv.rfm_summary`).
    paths : CovariatePaths
        The covariates (:func:`covariate_paths`); they must cover each customer from
        the first purchase to the calibration end.
    customer_id, date, time_unit, calibration_end, observation_end
        As in :func:`bayesclv.rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        :func:`bayesclv.rfm_summary`'s columns, then ``first_purchase`` (the first
        purchase day) and, per covariate, ``purchase_sum:<covariate>``: its sum
        over the customer's repeat purchase days in calibration.

    Raises
    ------
    bayesclv.errors.DataValidationError
        :func:`bayesclv.rfm_summary`'s checks; customers without covariate periods
        or whose periods do not cover their calibration time.

    Warns
    -----
    bayesclv.errors.DataWarning
        When more than 1% of the calibration transactions share a customer's
        purchase day with another one (they count once, which attenuates the
        purchase effects where it happens more in high-rate periods).
    """
    tx = to_pandas(transactions)
    rfm = rfm_summary(tx, customer_id=customer_id, date=date, time_unit=time_unit,
                      calibration_end=calibration_end, observation_end=observation_end)
    end = pd.Timestamp(rfm.attrs.get("calibration_end", rfm.attrs["observation_end"]))
    log = purchase_log(tx, customer_id=customer_id, date=date, value=None)
    days = log[["customer_id", "day"]].drop_duplicates()
    first = days.groupby("customer_id")["day"].min()
    ids = rfm["customer_id"]
    first_day = first.reindex(ids)
    paths.check_cover(ids, first_day, rfm["T"].to_numpy(), time_unit)
    cal = days[days["customer_id"].isin(ids) & (days["day"] <= end)]
    _warn_same_day_purchases(log[log["customer_id"].isin(ids) & (log["day"] <= end)], cal)
    repeat = cal[cal["day"] > first.reindex(cal["customer_id"]).to_numpy()].sort_values("day")
    table = paths.table.sort_values("period_start")
    merged = pd.merge_asof(repeat, table, left_on="day", right_on="period_start", by="customer_id")
    uncovered = merged["period_start"].isna() | (merged["day"] >= merged["period_end"])
    if uncovered.any():
        raise DataValidationError("purchase days outside every covariate period", column="period_start",
                                  rows=unique_list(merged.loc[uncovered, "customer_id"]))
    sums = merged.groupby("customer_id")[list(paths.covariates)].sum().reindex(ids).fillna(0.0)
    out = rfm.copy()
    out["first_purchase"] = first_day.to_numpy()
    for col in paths.covariates:
        out[SUM_PREFIX + col] = sums[col].to_numpy()
    out.attrs = dict(rfm.attrs)
    return out


def validate_time_varying(data: Any, *, time_unit: str | None = None, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`bayesclv.data.validate_rfm` plus the ``first_purchase`` day and the ``purchase_sum:`` columns.

    Raises
    ------
    bayesclv.errors.DataValidationError
        A missing column, a missing first-purchase day, a sum that is not a
        finite number, or a non-zero sum for a customer without repeat purchases.
    """
    df = validate_rfm(data, time_unit=time_unit)
    sums = [SUM_PREFIX + c for c in covariates]
    check_columns(df, ["first_purchase", *sums])
    ids = df["customer_id"]
    first = parse_dates(df["first_purchase"], ids, column="first_purchase")
    df = df.copy()
    df["first_purchase"] = first.to_numpy()
    no_repeat = (df["frequency"] == 0).to_numpy()
    for col in sums:
        df[col] = numeric_column(df, col, ids).to_numpy()
        wrong = no_repeat & (df[col].to_numpy() != 0.0)
        if wrong.any():
            raise DataValidationError("customers without repeat purchases must have a zero sum", column=col,
                                      rows=offending_ids(ids, wrong))
    return df
