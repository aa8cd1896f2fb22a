"""Pointwise log-likelihood of the models with per-customer latents, the latents integrated out (integrated LOO).

PSIS-LOO approximates leaving one customer out by reweighting the posterior
draws with ``1 / p(y_i | draw)``. For the hierarchical models a draw could be
the population parameters with each customer's own latent rates; but leaving a
customer out moves their own latents most, so those weights are heavy-tailed
(``validation/results/hb_integrated_loo_sample.md``) and the quantity is another
predictive target than the pooled models', whose per-customer likelihood
integrates the customer's rates out. Vehtari et al. (2016, "Bayesian
leave-one-out cross-validation approximations for Gaussian latent variable
models") integrate them out instead: customer ``i``'s term at draw ``d`` is::

    log p(y_i | phi_d, x_i) = log int p(y_i | theta) N(theta; X_i B_d + offset_d, Sigma_d) dtheta,

exactly the row's term of the integrated fit's target, computed here per draw
by that fit's rule in the fit's frames (with its error correction:
:func:`bayesclv.formulas._marginal_pointwise.pointwise_marginal_loglik`), so
that a draw's terms sum to the fit's log-likelihood. A fit that sampled the
latents (``method="latent"``, ADVI) gets the same quantity from frames built
at its posterior mean population, so the two fits' LOO estimate the same
thing. The joint spend models' term adds the spend statistics' density with
the log mean spend integrated out (their observations are purchases and spend).
Per-customer predictions keep using the conditional latents; only the
likelihood for LOO is integrated.

Each distinct row is evaluated once for all draws, in chunks of rows on every
core; nothing draws x rows x nodes is held.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from bayesclv.chunks import available_cpus, chunk_length, map_chunks
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas._marginal_pointwise import pointwise_marginal_loglik
from bayesclv.formulas.joint_spend import conditional_population, spend_loglik
from bayesclv.models.latent_chunks import flat_draws
from bayesclv.models.marginal import REFERENCE_ATTR, LatentPosterior, RowTable, row_table

__all__ = ["RuleFrames", "hierarchical_log_likelihood", "joint_log_likelihood", "latent_fit_reference",
           "rule_frames"]


@dataclass
class RuleFrames:
    """The rule's tables of the rows, as the fit's kernel takes them (see :func:`rule_frames`)."""

    centre: np.ndarray
    chol: np.ndarray
    log_terms: np.ndarray
    top_terms: np.ndarray
    node_mass: np.ndarray
    correction: np.ndarray
    powers: np.ndarray

    def loglik(self, rows: np.ndarray, X: np.ndarray, group: np.ndarray, coefficients: np.ndarray,
               offset: np.ndarray, sigma: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """``log p(y_i | phi_d)`` of ``rows`` (indices into the tables) for every draw, shape ``(len(rows), D)``;
        ``X``, ``group`` are those rows' design and the population arrays carry a leading draw axis."""
        out = np.empty((len(rows), len(rho)))
        pointwise_marginal_loglik(coefficients, offset, sigma, rho, X, group, self.centre[rows], self.chol[rows],
                                  self.log_terms[rows], self.top_terms[rows], self.powers, self.correction[rows],
                                  self.node_mass[rows], out)
        return out


def rule_frames(family: int, history: np.ndarray, mean: np.ndarray, sigma: np.ndarray, rho: float,
                nodes: int) -> RuleFrames:
    """The frames, node terms and error corrections of an ``nodes x nodes`` rule centred at the rows' conditional
    posteriors under the population ``(mean, sigma, rho)``, as the integrated fit builds them at its reference.

    Parameters
    ----------
    family : int
        :data:`~bayesclv.formulas._marginal_rule.PARETONBD` or ``BGNBD``.
    history : numpy.ndarray
        ``(n, 3)``: frequency, recency, T.
    mean : numpy.ndarray
        ``(n, 2)``: each row's population mean of the latents.
    sigma, rho
        The population sds and correlation.
    nodes : int
        Nodes per dimension.
    """
    powers, log_weights = rule.product_rule(int(nodes))
    return RuleFrames(**rule.row_frames(family, history, mean, sigma, rho, powers, log_weights), powers=powers)


def _stack(parts: list[RuleFrames]) -> RuleFrames:
    """The frames of consecutive blocks of rows as one table (all with the same rule)."""
    return RuleFrames(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                        ("centre", "chol", "log_terms", "top_terms", "node_mass", "correction")), parts[0].powers)


def latent_fit_reference(params: dict[str, np.ndarray], rows: int) -> dict[str, Any]:
    """A reference for a fit without one (latents sampled): the posterior mean population, and the node count
    that resolves the range of population covariances its draws span
    (:func:`~bayesclv.formulas._marginal_rule.nodes_for_range`)."""
    _, flat = flat_draws(params)
    sigma, rho = flat["sigma"].mean(axis=0), float(flat["correlation"].mean())
    off = rho * sigma[0] * sigma[1]
    low, high = rule.covariance_range(flat["sigma"].T, flat["correlation"],
                                      np.array([[sigma[0] ** 2, off], [off, sigma[1] ** 2]]), xp=np)
    return {"coefficients": flat["coefficients"].mean(axis=0), "offset": flat["offset"].mean(axis=0),
            "sigma": sigma, "rho": rho,
            "nodes": rule.nodes_for_range(float(low.min()), float(high.max()), rule.minimum_nodes(rows))}


def _by_distinct_rows(model: Any, data: Any | None, codes: np.ndarray, lead: tuple[int, ...],
                    evaluate: Callable[[np.ndarray], np.ndarray]) -> xr.DataArray:
    """``evaluate(rows)`` (``(len(rows), draws)``) once per distinct row of ``data``'s customers, in chunks of
    rows on every core, spread to the customers: ``DataArray(chain, draw, customer_id)``."""
    df = model.prediction_data(data)
    local_codes = codes[model._customer_positions(df)]
    needed, inverse = np.unique(local_codes, return_inverse=True)
    n_draws = int(np.prod(lead))
    out = np.empty((n_draws, len(df)))
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(needed) + 1))
    # rows x draws per chunk within the budget, and at least one chunk per core
    step = max(1, min(chunk_length(n_draws), -(-len(needed) // available_cpus())))

    def chunk(start: int) -> None:
        stop = min(start + step, len(needed))
        values = evaluate(needed[start:stop])
        customers = order[bounds[start]:bounds[stop]]
        out[:, customers] = values[inverse[customers] - start].T

    map_chunks(chunk, len(needed), step)
    return model._as_dataarray(out.reshape(*lead, len(df)), df, "log_likelihood")


def hierarchical_log_likelihood(model: Any, data: Any | None = None) -> xr.DataArray:
    """Each customer's ``log p(y_i | phi_d, x_i)`` per draw, the latents integrated out, for a hierarchical
    Pareto/NBD or BG/NBD (covariates and groups included) fitted by any method.

    The integrated fit's own reference and rule give its frames (the terms of one draw sum to its
    log-likelihood at that draw); a fit with sampled latents gets frames at its posterior mean
    (:func:`latent_fit_reference`).
    """
    posterior = model.posterior
    rows: RowTable = row_table(model, model.data)
    params = LatentPosterior.population_arrays(posterior, model.group is not None)
    lead, flat = flat_draws(params)
    if REFERENCE_ATTR in posterior.attrs:
        reference = json.loads(posterior.attrs[REFERENCE_ATTR])
    else:
        reference = latent_fit_reference(params, len(rows.weight))
    mean = rows.means(np.asarray(reference["coefficients"]), np.asarray(reference["offset"]))
    frames = rule_frames(model.quadrature_family, rows.history, mean, np.asarray(reference["sigma"]),
                         float(reference["rho"]), int(reference["nodes"]))

    def evaluate(needed: np.ndarray) -> np.ndarray:
        return frames.loglik(needed, rows.X[needed], rows.group[needed], flat["coefficients"], flat["offset"],
                             flat["sigma"], flat["correlation"])

    return _by_distinct_rows(model, data, rows.codes, lead, evaluate)


def joint_log_likelihood(model: Any, data: Any | None, rows: RowTable, bounds: np.ndarray, counts: np.ndarray,
                         ss: np.ndarray) -> xr.DataArray:
    """Each customer's ``log p(y_i, z_i | phi_d, x_i)`` per draw for a joint spend model: purchases and the
    log values of the repeat purchase days, the latents and the log mean spend integrated out.

    ``rows, bounds, counts, ss`` are the fitted data's distinct rows in blocks of one repeat count
    (:func:`~bayesclv.models.joint_spend.joint_rows`). Per block, the rule runs under the conditional
    population of the rates given the mean log spend, in frames built as the fit builds them at its
    reference; rows with repeat purchases add the closed-form spend term.
    """
    reference = json.loads(model.posterior.attrs[REFERENCE_ATTR])
    B_ref = np.asarray(reference["coefficients"])
    frames = []
    for n, lo, hi in zip(counts, bounds[:-1], bounds[1:], strict=True):
        C, sd, rho = conditional_population(B_ref, np.asarray(reference["sigma"]),
                                            np.asarray(reference["correlation"]), np.asarray(reference["spend_sd"]),
                                            float(n))
        frames.append(rule_frames(model.quadrature_family, rows.history[lo:hi], rows.X[lo:hi] @ C, sd, float(rho),
                                  int(reference["nodes"])))
    table = _stack(frames)
    lead, flat = flat_draws(model._param_arrays())
    populations = [conditional_population(flat["coefficients"], flat["sigma"], flat["correlation"], flat["spend_sd"],
                                          float(n)) for n in counts]
    no_offset = np.zeros((len(flat["spend_sd"]), 1, 2))
    block = np.repeat(np.arange(len(counts)), np.diff(bounds))
    repeat = rows.history[:, 0]

    def evaluate(needed: np.ndarray) -> np.ndarray:
        out = np.empty((len(needed), len(flat["spend_sd"])))
        for g in np.unique(block[needed]):
            part = np.flatnonzero(block[needed] == g)
            sub = needed[part]
            C, sd, rho = (np.ascontiguousarray(v) for v in populations[g])
            out[part] = table.loglik(sub, np.ascontiguousarray(rows.X[sub]), rows.group[sub], C, no_offset, sd, rho)
        spending = repeat[needed] > 0
        sub = needed[spending]
        if sub.size:
            mean_log = rows.X[sub, :-1] @ flat["coefficients"][..., 2].T  # (rows, draws): X_i b_m per draw
            out[spending] += spend_loglik(rows.X[sub, -1][:, None], ss[sub][:, None], repeat[sub][:, None], mean_log,
                                          flat["sigma"][:, 2], flat["spend_sd"])
        return out

    return _by_distinct_rows(model, data, rows.codes, lead, evaluate)
