"""Node expectations of the models whose latents are integrated out, chunked over distinct rows.

The hierarchical models (:class:`bayesclv.models.marginal.LatentPosterior`) and the joint spend models
(:class:`bayesclv.models.joint_spend.JointLatentPosterior`) compute ``E[g(theta_i) | y_i, phi_d]`` the
same way: the distinct rows of the customers asked for, in chunks of rows (each over all draws) on every
core, each chunk's values of ``g`` at the rule's nodes handed to a compiled kernel, the result spread
back to the customers. Only the kernel call differs (the joint models' runs per block of rows with one
repeat count and may tilt by the spend), so the caller passes it in and the loop is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bayesclv.chunks import chunk_length, map_chunks

__all__ = ["expectations_by_rows", "flat_draws"]


def flat_draws(params: dict[str, np.ndarray]) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """The leading ``(chain, draw)`` shape of ``params`` (from its ``sample`` entry) and every other entry
    with those axes flattened into one, contiguous."""
    lead = params["sample"].shape
    return lead, {k: np.ascontiguousarray(v.reshape(-1, *v.shape[len(lead):]))
                  for k, v in params.items() if k != "sample"}


def expectations_by_rows(latents: Any, lead: tuple[int, ...], positions: np.ndarray, at_nodes: Callable,
                         ratio: bool, fill: Callable, outputs: int = 1) -> np.ndarray:
    """``E[g(theta_i) | y_i, phi_d]`` for every draw and the customers at ``positions``, row chunk by row chunk.

    Parameters
    ----------
    latents : LatentPosterior
        Gives ``rows.codes`` (each fitted customer's distinct row), ``powers`` (the rule's nodes) and
        ``nodes(rows)`` (the latents at the nodes of ``rows``).
    lead : tuple of int
        The draws' shape, ``(chain, draw)``; the kernel sees them flattened.
    positions : numpy.ndarray
        The customers' positions in the fitted data.
    at_nodes : callable
        ``at_nodes(rows, theta0, theta1)``: a list of arrays ``g(theta)`` at the nodes of ``rows``.
    ratio : bool
        Return ``E[g0] / E[g1]`` instead of ``E[g0]``.
    outputs : int, default 1
        Without ``ratio``, return ``E[g0], ..., E[g_{outputs-1}]``: one pass of the node weights, which cost
        the most, serves them all.
    fill : callable
        ``fill(rows, values, result)``: the kernel call writing ``result`` ``(len(rows), draws, quantities)``
        from ``values`` ``(len(rows), quantities, nodes)``.

    Returns
    -------
    numpy.ndarray
        ``lead + (len(positions), outputs)`` (``outputs`` is 1 with ``ratio``).
    """
    n_draws = int(np.prod(lead))
    needed, local = np.unique(latents.rows.codes[np.asarray(positions, dtype=np.int64)], return_inverse=True)
    order = np.argsort(local, kind="stable")
    bounds = np.searchsorted(local[order], np.arange(len(needed) + 1))
    n_q, outputs = (2, 1) if ratio else (outputs, outputs)
    out = np.empty((n_draws, len(order), outputs))
    n_nodes = latents.powers.shape[1]
    step = chunk_length(n_draws * 2 + n_nodes * 6)

    def evaluate(start: int) -> None:
        stop = min(start + step, len(needed))
        rows = needed[start:stop]
        values = np.stack([np.broadcast_to(v, (len(rows), n_nodes))
                           for v in at_nodes(rows, *latents.nodes(rows))][:n_q], axis=1)
        result = np.empty((len(rows), n_draws, n_q))
        fill(rows, np.ascontiguousarray(values, dtype=float), result)
        value = result[..., :1] / result[..., 1:] if ratio else result
        customers = order[bounds[start]:bounds[stop]]
        out[:, customers] = value[local[customers] - start].transpose(1, 0, 2)

    map_chunks(evaluate, len(needed), step)
    return out.reshape(*lead, len(order), outputs)
