"""Transaction log -> recency/frequency/monetary (RFM) summary, with optional holdout."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bayesclv.data.dask import is_dask_collection, rfm_summary_dask
from bayesclv.data.purchases import (
    check_cohort_frequency,
    check_log_spend_argument,
    cohort_labels,
    purchase_log,
    summarise_purchase_log,
)
from bayesclv.data.validation import check_columns, check_not_empty, check_period, check_time_unit, to_pandas

__all__ = ["first_purchase_cohort", "rfm_summary"]


def first_purchase_cohort(
    transactions: Any, *, customer_id: str = "customer_id", date: str = "date", freq: str = "M"
) -> pd.Series:
    """Each customer's acquisition cohort: the period of their first purchase.

    Use it as a ``group`` column of the models (``rfm["cohort"] =
    rfm["customer_id"].map(cohorts)``) or let :func:`rfm_summary` add it with
    ``cohort=freq``.

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per transaction.
    customer_id, date : str
        Columns holding the customer identifier and the transaction date.
    freq : {"W", "M", "Q", "Y"}, default "M"
        Cohort period: week, month, quarter or year of the first purchase.

    Returns
    -------
    pandas.Series
        Cohort labels (see :func:`cohort_labels`) indexed by ``customer_id``,
        sorted by it, named ``cohort``.

    Raises
    ------
    ValueError
        Unknown ``freq``.
    bayesclv.errors.DataValidationError
        Empty input, missing columns, missing ids or dates.

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> first_purchase_cohort(load_cdnow(), freq="M").value_counts().sort_index().to_dict()
    {'1997-01': 781, '1997-02': 857, '1997-03': 719}
    """
    check_cohort_frequency(freq)
    tx = to_pandas(transactions)
    check_not_empty(tx)
    check_columns(tx, [customer_id, date])
    work = purchase_log(tx, customer_id=customer_id, date=date, value=None)
    first = work.groupby("customer_id", sort=True)["day"].min()
    out = cohort_labels(first, freq).rename("cohort")
    out.index.name = "customer_id"
    return out


def rfm_summary(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    value: str | None = None,
    time_unit: str = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
    cohort: str | None = None,
    table: str | None = None,
    litt: bool = True,
    log_spend: bool = False,
) -> pd.DataFrame:
    """Summarise a transaction log into one RFM row per customer.

    Transactions are first reduced to **purchase days**: all transactions of a
    customer on the same calendar day are merged into a single purchase (their
    values summed; the time of day is ignored). This is the convention of the
    buy-till-you-die (BTYD) literature, and the published CDNOW numbers (Fader,
    Hardie & Lee 2005) are computed this way.

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame, dask.dataframe.DataFrame, database or path
        One row per transaction. A dask DataFrame (e.g. on a distributed
        cluster) gives a lazy dask DataFrame of the same rows, computed
        partition by partition (see :func:`bayesclv.data.dask.rfm_summary_dask`).
        A DuckDB relation or connection, a path to a DuckDB file or to Parquet
        files, a SQLAlchemy engine or connection, or a database URL: the
        database does the aggregation and only the summary comes back (see
        :func:`bayesclv.data.database.rfm_summary_chunks`).
    customer_id : str, default "customer_id"
        Column holding the customer identifier. The output column is always
        named ``customer_id``.
    date : str, default "date"
        Column holding the transaction date (datetime, or strings parsed by pandas).
    value : str, optional
        Column holding the (non-negative) transaction value. When given, the
        ``monetary_value`` columns are computed.
    time_unit : {"D", "W", "M", "Y"}, default "W"
        Unit of ``recency``, ``T`` and ``T_holdout``: days, weeks (7 days), months
        (365.25/12 days) or years (365.25 days). See ``TIME_UNITS``.
    calibration_end : date-like, optional
        Inclusive last day of the calibration period. When given, only customers
        whose first purchase is on or before it are kept (the cohort), the RFM
        statistics use transactions up to it, and holdout columns are added.
    observation_end : date-like, optional
        Inclusive last day of observation (the holdout end when ``calibration_end``
        is given). Defaults to the last date in the data. A transaction dated after
        it is an error, not silently dropped.
    cohort : {"W", "M", "Q", "Y"}, optional
        Add a ``cohort`` column: the week, month, quarter or year of each
        customer's first purchase (see :func:`first_purchase_cohort`), ready to
        be a model's ``group``.
    table : str, optional
        Table name or SQL query, for a database connection, file or URL.
    litt : bool, default True
        Add a ``litt`` column: the sum over each customer's repeat purchase days
        (in calibration) of the log of the time since the previous purchase day,
        in ``time_unit`` (0 without repeat purchases). The regularity models
        ((M)BG/CNBD-k, Pareto/GGG) need it; ``False`` leaves it out.
    log_spend : bool, default False
        With ``value``: add ``log_spend_mean`` and ``log_spend_ss``, the mean and
        the within sum of squares of the log values of the repeat purchase days
        in calibration (both 0 without repeat purchases): the spend sufficient
        statistics of the joint spend models (:class:`bayesclv.JointSpendParetoNBDModel`).
        A repeat purchase day of value 0 is an error. Every input kind (pandas, polars,
        dask, a database) gives the same numbers.

    Returns
    -------
    pandas.DataFrame
        RangeIndex, sorted by ``customer_id``, columns in this order:

        - ``customer_id``
        - ``frequency`` : number of repeat purchase days (distinct purchase days
          minus one), float64 holding whole numbers.
        - ``recency`` : time from the first to the last purchase day (0 without
          repeat purchases), in ``time_unit``.
        - ``T`` : time from the first purchase day to the end of observation
          (``calibration_end`` if given, else ``observation_end``, else the last
          date in the data), in ``time_unit``.
        - ``monetary_value`` (only with ``value``) : mean value of the *repeat*
          purchase days (first purchase day excluded), 0.0 when ``frequency == 0``,
          as the Gamma-Gamma spend model expects.
        - ``litt`` (unless ``litt=False``) : sum of the log inter-purchase times
          in calibration, in ``time_unit`` (0 when ``frequency == 0``).
        - with ``calibration_end`` only: ``frequency_holdout`` (number of purchase
          days in ``(calibration_end, observation_end]``), ``monetary_value_holdout``
          (mean value per holdout purchase day, 0.0 if none; only with ``value``),
          ``T_holdout`` (``observation_end - calibration_end`` in ``time_unit``).
        - with ``log_spend`` only: ``log_spend_mean`` and ``log_spend_ss``.
        - with ``cohort`` only: ``cohort`` (string label of the first-purchase period).

        ``attrs["time_unit"]`` records the unit, ``attrs["observation_end"]`` the
        end of observation and, with a holdout, ``attrs["calibration_end"]`` its
        start (both :class:`pandas.Timestamp`).

    Raises
    ------
    ValueError
        Unknown ``time_unit``.
    bayesclv.errors.DataValidationError
        Empty input, missing columns, missing customer ids, missing/unparseable
        dates, negative or missing values, ``calibration_end`` outside the data,
        ``observation_end`` before ``calibration_end`` or before some transaction.

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), value="value", calibration_end="1997-09-30")
    >>> int(rfm["frequency"].sum()), int(rfm["frequency_holdout"].sum())
    (2457, 1882)
    """
    if cohort is not None:
        check_cohort_frequency(cohort)
    from bayesclv.data.database import is_database_source, rfm_summary_database

    check_log_spend_argument(log_spend, value)
    if is_database_source(transactions, table):  # the database aggregates
        return rfm_summary_database(transactions, table=table, customer_id=customer_id, date=date, value=value,
                                    time_unit=time_unit, calibration_end=calibration_end,
                                    observation_end=observation_end, cohort=cohort, litt=litt,
                                    log_spend=log_spend)
    if is_dask_collection(transactions):  # partitioned data, possibly on a cluster
        return rfm_summary_dask(transactions, customer_id=customer_id, date=date, value=value,
                                time_unit=time_unit, calibration_end=calibration_end,
                                observation_end=observation_end, cohort=cohort, litt=litt,
                                log_spend=log_spend)
    check_time_unit(time_unit)
    tx = to_pandas(transactions)
    check_not_empty(tx)
    required = [customer_id, date] + ([value] if value is not None else [])
    check_columns(tx, required)
    work = purchase_log(tx, customer_id=customer_id, date=date, value=value)
    cal_end, obs_end = check_period(
        work["day"].min(), work["day"].max(), calibration_end, observation_end, column=date
    )
    return summarise_purchase_log(work, time_unit=time_unit, calibration_end=cal_end,
                                  observation_end=obs_end, date=date, value=value,
                                  cohort=cohort, litt=litt, log_spend=log_spend)
