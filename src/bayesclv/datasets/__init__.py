"""Bundled real data sets from the buy-till-you-die (BTYD) literature.

The files ship with the package (gzip-compressed CSV under ``bayesclv/datasets/data``)
and are read with :mod:`importlib.resources`; nothing is ever downloaded.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow", "load_donations"]

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


def load_donations() -> pd.DataFrame:
    """Load the donations data set (discrete-time BG/BB data).

    Annual donation records of 11,104 first-time supporters of a non-profit
    organisation who first donated in 1995, observed over the 6 following yearly
    donation opportunities (1996-2001), as published by Fader, Hardie & Shang
    (2010). Donors with the same (frequency, recency) pattern are compressed into
    one row whose ``weights`` counts them.

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
       29(6), 1086-1108.

    Examples
    --------
    >>> from bayesclv.datasets import load_donations
    >>> int(load_donations()["weights"].sum())
    11104
    """
    df = _read_csv("donations.csv.gz", dtype="int64")
    return df[["frequency", "recency", "periods", "weights"]]
