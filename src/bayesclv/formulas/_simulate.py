"""Pieces shared by the families' simulators (NumPy, vectorised; every draw from the generator passed in)."""

from __future__ import annotations

import numpy as np

from bayesclv.chunks import CHUNK_ELEMENTS
from bayesclv.errors import ArgumentError

__all__ = ["alive_and_purchase_rate", "gamma_renewals", "last_event_time", "latent_rates"]

_FIRST_BLOCK = 8  # gaps drawn per process in the first block; each further block is _GROWTH times longer
_GROWTH = 4


def last_event_time(rng, count, window):
    """Time of the last of ``count`` uniform events in ``[0, window]`` (0 if none).

    The maximum of ``k`` uniforms on ``[0, w]`` is ``w U^(1/k)``.
    """
    u = rng.random(np.shape(count))
    with np.errstate(divide="ignore"):
        return np.where(count > 0, window * u ** (1.0 / np.maximum(count, 1)), 0.0)


def alive_and_purchase_rate(rng, p_alive, frequency, T, r, alpha):
    """Draw alive-at-``T`` flags and posterior purchase rates ``Gamma(r+x, alpha+T)``."""
    alive = rng.random(p_alive.shape) < p_alive
    lam = rng.gamma(r + frequency, 1.0 / (alpha + np.asarray(T)), size=p_alive.shape)
    return alive, lam


def latent_rates(rng, covariates, coefficients, cov, n_customers):
    """Rows of ``MvNormal(X B, Sigma)``: each customer's two latent log/logit rates."""
    X = np.ones((n_customers, 1)) if covariates is None else np.asarray(covariates, dtype=float)
    if X.ndim != 2 or X.shape[0] != n_customers:
        raise ValueError(f"covariates must have shape (n_customers, n_covariates) = ({n_customers}, k); "
                         f"got {X.shape}")
    B = np.asarray(coefficients, dtype=float)
    if B.shape != (X.shape[1], 2):
        raise ValueError(f"coefficients must have shape (n_covariates, 2) = ({X.shape[1]}, 2); got {B.shape}")
    return X @ B + rng.multivariate_normal(np.zeros(2), np.asarray(cov, dtype=float), size=n_customers)


def gamma_renewals(rng, start, end, shape, rate, limit, times=False):
    """Renewals of processes with ``Gamma(shape, rate)`` gaps from ``start`` up to ``end``, in blocks of gaps.

    Each process still open gets a block of gaps at once; the renewals inside its
    window are a prefix of the block's cumulative sums, and a process whose whole
    block fits gets a block ``_GROWTH`` times longer in the next round. So the
    Python steps number about ``log(count) / log(_GROWTH)`` whatever the count, and
    a round's arrays hold at most ``CHUNK_ELEMENTS`` gaps (but at least
    ``_FIRST_BLOCK`` per open process).

    Parameters
    ----------
    rng : numpy.random.Generator
    start, end, shape, rate : numpy.ndarray
        One entry per process (1-D): its clock, the end of its window, its gaps' shape and rate.
    limit : int
        Renewals per process beyond which the simulation is refused (a window that tiny shapes or huge
        rates fill with more renewals than memory holds).
    times : bool, default False
        Also return each process's renewal times.

    Returns
    -------
    count, last, log_gaps : numpy.ndarray
        Renewals in ``(start, end]``, the time of the last one (``start`` if none) and the sum of the log
        gaps up to it.
    times : list of numpy.ndarray or None

    Raises
    ------
    ArgumentError
        A process would make more than ``limit`` renewals in its window.
    """
    n = start.size
    count, last, log_gaps = np.zeros(n), start.astype(float), np.zeros(n)
    pieces = [[] for _ in range(n)] if times else None
    active = np.flatnonzero(start <= end)
    width = _FIRST_BLOCK
    while active.size:
        over = active[count[active] > limit]
        if over.size:
            i = over[0]
            raise ArgumentError(
                f"{over.size} customers would make more than {limit:,} purchases in their window "
                f"(e.g. shape {shape[i]:.3g}, rate {rate[i]:.3g}, window {end[i] - start[i]:.3g})",
                argument="k, lam")
        cols = max(_FIRST_BLOCK, min(width, CHUNK_ELEMENTS // active.size))
        gaps = rng.gamma(shape[active, None], 1.0 / rate[active, None], size=(active.size, cols))
        clock = last[active, None] + np.cumsum(gaps, axis=1)
        inside = clock <= end[active, None]  # cumulative sums rise: the renewals inside are a prefix
        m = inside.sum(axis=1)
        seen = m > 0
        rows = active[seen]
        count[rows] += m[seen]
        last[rows] = clock[seen, m[seen] - 1]
        with np.errstate(divide="ignore"):  # a gap that underflows to 0 has log -inf, as the density says
            log_gaps[rows] += np.where(inside[seen], np.log(gaps[seen]), 0.0).sum(axis=1)
        if times:
            for i, row in zip(rows, np.flatnonzero(seen), strict=True):
                pieces[i].append(clock[row, : m[row]])
        active = active[m == cols]
        width = cols * _GROWTH
    renewal_times = [np.concatenate(p) if p else np.zeros(0) for p in pieces] if times else None
    return count, last, log_gaps, renewal_times
