"""The one chunking policy of the library: how much of a draws x rows array is held at once, and on how many threads.

Predictions, the posterior predictive check, the tracking forecast and the
bounded-memory summaries of :mod:`bayesclv.scale` all cut their work by the
budgets below and run the pieces with :func:`map_chunks`. NumPy, SciPy and the
library's numba loops release the GIL, so threads scale without copying the
posterior into processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["BLOCK_ELEMENTS", "CHUNK_ELEMENTS", "PASS_DRAWS", "available_cpus", "chunk_length", "map_chunks"]

#: Elements (draws x rows) of the temporaries of one chunk of a formula's evaluation.
CHUNK_ELEMENTS = 2_000_000
#: Elements (draws x customers) of the result of one block of :mod:`bayesclv.scale` (32 MB of float64):
#: a block's prediction holds its result plus the temporaries of its own chunks.
BLOCK_ELEMENTS = 2 * CHUNK_ELEMENTS
#: Draws per pass of the numba loops that expand or combine draws x rows arrays (a draw's row stays in cache).
PASS_DRAWS = 100


def chunk_length(per_item: int, elements: int | None = None) -> int:
    """Items per chunk when each item holds ``per_item`` elements: ``elements`` (default :data:`CHUNK_ELEMENTS`)
    divided by ``per_item``, at least 1."""
    budget = CHUNK_ELEMENTS if elements is None else elements
    return max(1, budget // max(int(per_item), 1))


def available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def map_chunks(evaluate_chunk: Callable[[int], None], n: int, step: int, parallel: bool = True) -> None:
    """Call ``evaluate_chunk(start)`` for ``start = 0, step, 2 step, ...`` below ``n``.

    With ``parallel`` the chunks run on a thread per available core;
    ``evaluate_chunk`` must write only its own slice of the output. Random
    simulations pass ``parallel=False``: chunks in order, so a seed reproduces them.
    """
    starts = range(0, n, step)
    workers = min(available_cpus(), len(starts)) if parallel else 1
    if workers <= 1:
        for start in starts:
            evaluate_chunk(start)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(evaluate_chunk, starts):  # re-raises the first error of a chunk
            pass
