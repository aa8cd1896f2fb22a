"""Data layer: transaction logs -> validated RFM frames.

``rfm_summary`` turns a transaction log into one recency/frequency/monetary row per
customer (optionally with a calibration/holdout split); ``validate_rfm`` checks an
RFM frame brought directly by the user; ``first_purchase_cohort`` labels each
customer's acquisition cohort (a natural ``group`` for the models);
``repeat_purchase_tracking`` counts a cohort's repeat purchases per period (the
tracking plot's data). Transactions in a database (DuckDB, Parquet files, PostgreSQL)
are summarised by the database itself (``bayesclv.data.database``; ``rfm_summary_chunks``
streams the summary of a large base). ``covariate_paths`` validates a long table of
time-varying covariates and ``time_varying_summary`` adds what the time-varying Pareto/NBD
needs from the log (first purchase day, covariate sums over the purchase days). ``TIME_UNITS`` maps each supported time unit to its length in days.
"""

from bayesclv.data.time_varying import CovariatePaths, covariate_paths, time_varying_summary
from bayesclv.data.database import rfm_summary_chunks
from bayesclv.data.purchases import COHORT_FREQUENCIES
from bayesclv.data.rfm import first_purchase_cohort, rfm_summary
from bayesclv.data.tracking import repeat_purchase_tracking
from bayesclv.data.validation import TIME_UNITS, validate_rfm

__all__ = [
    "COHORT_FREQUENCIES",
    "CovariatePaths",
    "TIME_UNITS",
    "covariate_paths",
    "first_purchase_cohort",
    "repeat_purchase_tracking",
    "rfm_summary",
    "rfm_summary_chunks",
    "time_varying_summary",
    "validate_rfm",
]
