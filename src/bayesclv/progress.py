"""One line of progress per step, on a stream and in the ``bayesclv`` log."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["Progress"]

logger = logging.getLogger("bayesclv")


class Progress:
    """Print ``label`` and a message per step (with the seconds since the start when ``timed``), or nothing.

    Parameters
    ----------
    label : str
        What is running, e.g. ``"report"``.
    enabled : bool
        Print (the message is logged at INFO level either way).
    timed : bool, default True
        Prefix the elapsed seconds: ``report [  1.2 s] CLV``; else ``label: message``.
    stream : file, optional
        Default stderr.
    """

    def __init__(self, label: str, enabled: bool, *, timed: bool = True, stream: TextIO | None = None):
        self.label, self.enabled, self.timed = label, enabled, timed
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.timed:
            line = f"{self.label} [{time.perf_counter() - self.start:6.1f} s] {message}"
        else:
            line = f"{self.label}: {message}"
        logger.info(line)
        if self.enabled:
            print(line, file=self.stream or sys.stderr, flush=True)
