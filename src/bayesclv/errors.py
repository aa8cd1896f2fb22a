"""Typed exceptions and warnings raised by bayesclv.

Every error raised on bad input names the offending column and, where rows
are at fault, the first offending customer ids, so the message alone is enough
to find the problem in the user's data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

__all__ = [
    "ArgumentError",
    "BayesCLVError",
    "ConvergenceWarning",
    "DataValidationError",
    "ModelFileError",
    "NotFittedError",
    "OverwriteError",
    "PointEstimateWarning",
    "PriorError",
    "TimeUnitError",
]

_MAX_SHOWN = 5


class BayesCLVError(Exception):
    """Base class of every error raised by bayesclv."""


class DataValidationError(BayesCLVError, ValueError):
    """Input data failed validation.

    Parameters
    ----------
    message : str
        What is wrong, in words.
    column : str, optional
        The column at fault.
    rows : sequence, optional
        Identifiers (customer ids, or row positions where ids are unusable) of
        the offending rows; the first few are quoted in the message.
    """

    def __init__(self, message: str, *, column: str | None = None, rows: Sequence | None = None):
        self.column = column
        self.rows = list(rows) if rows is not None else []
        parts = []
        if column is not None:
            parts.append(f"column {column!r}: ")
        parts.append(message)
        if self.rows:
            shown = ", ".join(repr(r) for r in self.rows[:_MAX_SHOWN])
            more = f" and {len(self.rows) - _MAX_SHOWN} more" if len(self.rows) > _MAX_SHOWN else ""
            parts.append(f" (offending rows: {shown}{more}; {len(self.rows)} in all)")
        super().__init__("".join(parts))


class ArgumentError(BayesCLVError, ValueError):
    """A function argument has the wrong type or is out of its range.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed, in words.
    argument : str, optional
        The name of the argument at fault; the message starts with it.
    """

    def __init__(self, message: str, *, argument: str | None = None):
        self.argument = argument
        super().__init__(message if argument is None else f"argument {argument!r}: {message}")


class PriorError(ArgumentError):
    """A :class:`~bayesclv.Prior` names an unsupported distribution or gives it bad arguments.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed.
    distribution : str
        The distribution named by the prior.
    argument : str, optional
        The distribution argument at fault (unknown, missing or out of range).
    """

    def __init__(self, message: str, *, distribution: str, argument: str | None = None):
        self.distribution = distribution
        self.argument = argument
        where = f"Prior({distribution!r})" + ("" if argument is None else f", argument {argument!r}")
        ValueError.__init__(self, f"{where}: {message}")


class TimeUnitError(DataValidationError):
    """Data and model (or two models) disagree on the unit of time."""


class NotFittedError(BayesCLVError, RuntimeError):
    """A method that needs a posterior was called before ``fit``."""


class ModelFileError(BayesCLVError, ValueError):
    """A file given to :func:`bayesclv.load` is not a model file this version can read.

    Parameters
    ----------
    message : str
        What is wrong with the file, in words.
    path : str, optional
        The file; the message starts with it.
    """

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message if path is None else f"model file {path!r}: {message}")


class OverwriteError(BayesCLVError, FileExistsError):
    """An output file exists and the call was not asked to replace it (``overwrite=True``)."""


class ConvergenceWarning(UserWarning):
    """Sampler diagnostics (R-hat, ESS, divergences) indicate a poor fit."""


class DataWarning(UserWarning):
    """Valid data with a property that can bias a result; the message says which, how much, and where to read why."""


class PointEstimateWarning(UserWarning):
    """Intervals were asked of a point estimate (a MAP fit, or any posterior of one draw).

    A point estimate has no posterior uncertainty: its intervals have lower =
    upper = the value and are labelled "point estimate (no posterior
    uncertainty)", never credible. Shown once per session (the same words each
    time), unless the warning filters say otherwise.
    """


# once per session, not once per call site: a table of several quantities would repeat it otherwise
warnings.filterwarnings("once", category=PointEstimateWarning)
