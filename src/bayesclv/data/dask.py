"""The RFM summary of a dask DataFrame of transactions, partition by partition, on any Dask scheduler.

dask stays an optional extra (``bayesclv[dask]``): nothing here imports it
unless a dask collection is passed.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from bayesclv.data.purchases import check_log_spend_argument, purchase_log, summarise_purchase_log
from bayesclv.data.validation import check_columns, check_period, check_time_unit, parse_dates
from bayesclv.errors import DataValidationError

__all__ = ["is_dask_collection", "require_dask", "rfm_summary_dask"]


def is_dask_collection(obj: Any) -> bool:
    """Whether ``obj`` is a dask collection (without importing dask when it is not in use)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def require_dask():
    """The ``dask`` module, with its array and dataframe parts; ImportError naming the extra if missing."""
    try:
        import dask
        import dask.array
        import dask.dataframe
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("dask-backed predictions need the optional extra: "
                          "pip install 'bayesclv[dask]'") from exc
    return dask


def _date_range(part: pd.DataFrame, customer_id: str, date: str) -> pd.DataFrame:
    if len(part) == 0:
        return pd.DataFrame({"first": [pd.NaT], "last": [pd.NaT]})
    days = parse_dates(part[date].reset_index(drop=True), part[customer_id].reset_index(drop=True),
                       column=date)
    return pd.DataFrame({"first": [days.min()], "last": [days.max()]})


def _rfm_partition(part: pd.DataFrame, *, customer_id: str, date: str, value: str | None, time_unit: str,
                   calibration_end, observation_end, cohort: str | None, litt: bool,
                   log_spend: bool) -> pd.DataFrame:
    work = purchase_log(part, customer_id=customer_id, date=date, value=value)
    out = summarise_purchase_log(work, time_unit=time_unit, calibration_end=calibration_end,
                                 observation_end=observation_end, date=date, value=value,
                                 cohort=cohort, litt=litt, log_spend=log_spend)
    out.attrs = {}
    return out


def rfm_summary_dask(transactions: Any, *, customer_id: str = "customer_id", date: str = "date",
                     value: str | None = None, time_unit: str = "W", calibration_end: Any = None,
                     observation_end: Any = None, cohort: str | None = None, litt: bool = True,
                     log_spend: bool = False):
    """:func:`bayesclv.rfm_summary` of a dask DataFrame of transactions, partition by partition.

    One pass finds the first and last dates (to resolve and check the period
    ends exactly as the in-memory version does); the log is then hash-partitioned
    by customer (``shuffle(on=customer_id)``), so each customer's transactions
    meet in one partition whichever files they came from, and each partition
    is summarised on its own.

    Parameters
    ----------
    transactions : dask.dataframe.DataFrame
        One row per transaction.
    customer_id, date, value, time_unit, calibration_end, observation_end, cohort, litt, log_spend
        As for :func:`bayesclv.rfm_summary`.

    Returns
    -------
    dask.dataframe.DataFrame
        The RFM columns of :func:`bayesclv.rfm_summary`, sorted by
        ``customer_id`` across partitions. Dask frames carry no ``attrs``:
        pass ``time_unit=`` when fitting or predicting from it.

    Raises
    ------
    bayesclv.errors.DataValidationError
        As the in-memory version (row-level problems surface when computed).
    """
    require_dask()
    import dask.dataframe as dd

    check_time_unit(time_unit)
    check_log_spend_argument(log_spend, value)
    check_columns(transactions._meta, [customer_id, date] + ([value] if value is not None else []))
    ranges = transactions.map_partitions(
        _date_range, customer_id, date,
        meta=pd.DataFrame({"first": pd.Series([], dtype="datetime64[ns]"),
                           "last": pd.Series([], dtype="datetime64[ns]")})).compute()
    if ranges["first"].isna().all():
        raise DataValidationError(f"the input has no rows (columns: {list(transactions.columns)!r}); "
                                  "nothing to summarise")
    cal_end, obs_end = check_period(ranges["first"].min(), ranges["last"].max(), calibration_end,
                                    observation_end, column=date)
    # A hash shuffle, not set_index: dask's optimiser may lower set_index to a blockwise
    # sort of each partition (as it does on Parquet files), which leaves a customer whose
    # transactions lie in several files in several partitions, counted once per file.
    by_customer = transactions.shuffle(on=customer_id)
    kwargs = {"customer_id": customer_id, "date": date, "value": value, "time_unit": time_unit,
              "calibration_end": cal_end, "observation_end": obs_end, "cohort": cohort, "litt": litt,
              "log_spend": log_spend}
    meta = _rfm_partition(by_customer._meta.copy(), **kwargs)
    summary = dd.map_partitions(_rfm_partition, by_customer, **kwargs, meta=meta, align_dataframes=False)
    return summary.sort_values(customer_id)
