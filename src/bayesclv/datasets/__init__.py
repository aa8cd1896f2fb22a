"""Bundled real data sets from the buy-till-you-die (BTYD) literature.

The files ship with the package (gzip-compressed CSV under ``bayesclv/datasets/data``)
and are read with :mod:`importlib.resources`; nothing is ever downloaded.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["load_cdnow", "load_donations", "load_retention"]

_CDNOW_FILES = {"sample": "cdnow_sample.csv.gz", "full": "cdnow_full.csv.gz"}


def _read_csv(name: str, **kwargs) -> pd.DataFrame:
    ref = resources.files(__package__).joinpath("data", name)
    with ref.open("rb") as fh:
        return pd.read_csv(fh, compression="gzip", **kwargs)


def load_cdnow(kind: str = "sample") -> pd.DataFrame:
    """Load the CDNOW transaction log.

    CDNOW was an online CD retailer. The data are every purchase made between
    1997-01-01 and 1998-06-30 by the cohort of 23,570 customers who made their
    first-ever purchase at CDNOW in the first quarter of 1997, as published by
    Fader, Hardie & Lee (2005) and used throughout the BTYD literature. The
    ``"sample"`` is the 1/10 random sample of 2,357 customers analysed in the
    papers.

    Parameters
    ----------
    kind : {"sample", "full"}, default "sample"
        ``"sample"``: 2,357 customers, 6,919 transaction lines; ``customer_id`` is
        the sample id 1..2357. ``"full"``: 23,570 customers, 69,659 transaction
        lines; ``customer_id`` is the original numeric id.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``date`` (datetime64), ``value`` (float64,
        US dollars), one row per transaction line as in the source file (several
        lines on the same day are *not* merged here; :func:`bayesclv.data.rfm_summary`
        does that), sorted by ``customer_id`` and ``date``.

    Raises
    ------
    ValueError
        If ``kind`` is not ``"sample"`` or ``"full"``.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting Your
       Customers" the Easy Way: An Alternative to the Pareto/NBD Model.
       *Marketing Science*, 24(2), 275-284.

    Examples
    --------
    >>> from bayesclv.datasets import load_cdnow
    >>> df = load_cdnow()
    >>> df["customer_id"].nunique()
    2357
    """
    if kind not in _CDNOW_FILES:
        raise ValueError(
            f"unknown CDNOW kind {kind!r}; valid choices are {sorted(_CDNOW_FILES)!r}"
        )
    df = _read_csv(
        _CDNOW_FILES[kind],
        dtype={"customer_id": "int64", "date": "string", "value": "float64"},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    df = df.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    return df[["customer_id", "date", "value"]]


#: Repeat donations of the 1995 cohort per year, 1996-2001 calibration and 2002-2006 holdout
#: (Fader, Hardie & Shang 2010; the series of Hardie's note 010 spreadsheet, as shipped in R's BTYD).
_DONATIONS_BY_YEAR = {1996: 5652, 1997: 4674, 1998: 4019, 1999: 3552, 2000: 3555, 2001: 3163,
                      2002: 3110, 2003: 2938, 2004: 2703, 2005: 2573, 2006: 1936}


def load_donations(holdout: bool = False) -> pd.DataFrame:
    """Load the donations data set (discrete-time BG/BB data).

    Annual donation records of 11,104 first-time supporters of a non-profit
    organisation who first donated in 1995, observed over the 6 following yearly
    donation opportunities (1996-2001), as published by Fader, Hardie & Shang
    (2010). Donors with the same (frequency, recency) pattern are compressed into
    one row whose ``weights`` counts them.

    Parameters
    ----------
    holdout : bool, default False
        Add the holdout years 2002-2006: ``holdout_donations`` (the repeat
        donations of *all* the row's donors together in those 5 years; they sum
        to 13,260), ``periods_holdout`` (5) and ``attrs["repeat_donations_by_year"]``
        (the cohort's repeat donations in each year 1996-2006).

    Returns
    -------
    pandas.DataFrame
        22 rows, int64 columns ``frequency`` (number of repeat donations),
        ``recency`` (opportunity of the last donation), ``periods`` (number of
        opportunities, 6) and ``weights`` (number of donors with that pattern;
        they sum to 11,104).

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Shang, J. (2010). Customer-Base
       Analysis in a Discrete-Time Noncontractual Setting. *Marketing Science*,
       29(6), 1086-1108. The holdout counts are those of the spreadsheet of
       Hardie's note 010 (brucehardie.com/notes/010), as shipped in R's BTYD
       package (``donationsSummary``).

    Examples
    --------
    >>> from bayesclv.datasets import load_donations
    >>> int(load_donations()["weights"].sum())
    11104
    """
    df = _read_csv("donations.csv.gz", dtype="int64")
    if not holdout:
        return df[["frequency", "recency", "periods", "weights"]]
    df = df[["frequency", "recency", "periods", "weights", "holdout_donations"]].assign(periods_holdout=np.int64(5))
    df.attrs["repeat_donations_by_year"] = dict(_DONATIONS_BY_YEAR)
    return df


def load_retention() -> pd.DataFrame:
    """Load the retention data of Fader & Hardie (2007), "How to project customer retention".

    Two segments ("regular" and "high end") of 1,000 customers each, acquired
    at the start of year 1 and observed for 12 yearly renewal periods (from
    Berry & Linoff 2004). Survivors after years 0-12: regular 1000, 631, 468,
    382, 326, 289, 262, 241, 223, 207, 194, 183, 173; high end 1000, 869, 743,
    653, 593, 551, 517, 491, 468, 445, 427, 409, 394. The paper fits the
    shifted-beta-geometric model to years 1-7
    (:func:`bayesclv.data.discrete.censor_retention` with ``periods=7``) and
    projects years 8-12.

    Returns
    -------
    pandas.DataFrame
        2,000 rows, one per customer: ``customer_id`` (int64, 1-1000 regular,
        1001-2000 high end), ``segment``, ``periods`` (years observed: the year
        the customer left, or 12) and ``churned`` (1 if the customer left in
        that year, 0 if still a customer after year 12); ``attrs["time_unit"]``
        is ``"Y"`` (yearly renewals).

    References
    ----------
    .. [1] Fader, P. S. and Hardie, B. G. S. (2007). How to Project Customer
       Retention. *Journal of Interactive Marketing*, 21(1), 76-90.

    Examples
    --------
    >>> from bayesclv.datasets import load_retention
    >>> df = load_retention()
    >>> int(((df["segment"] == "regular") & (df["periods"] > 7)).sum())
    241
    """
    df = _read_csv("retention.csv.gz", dtype={"customer_id": "int64", "segment": "string", "periods": "int64",
                                             "churned": "int64"})
    df = df[["customer_id", "segment", "periods", "churned"]]
    df.attrs["time_unit"] = "Y"
    return df
