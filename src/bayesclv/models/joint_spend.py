"""Joint spend models: each customer's log mean spend joins the latent rates of the hierarchical models.

``(theta_i, m_i) ~ N(X_i B, Sigma)`` with a 3 x 3 LKJ correlation; the log value
of each repeat purchase day is ``N(m_i, spend_sd^2)``
(:mod:`bayesclv.formulas.joint_spend` has the algebra). ``m_i`` integrates out
in closed form, which leaves each row's ``theta_i`` under a normal population
whose mean is linear in ``(X_i, log_spend_mean_i)`` and whose covariance
depends only on the row's count of repeat purchases: the hierarchical models'
2-D rule (:mod:`bayesclv.models.marginal`) then runs per block of rows with
one count (:class:`JointSpendGraph`), and nutpie samples the population only.
With ``group=`` each group's offsets of the three intercepts are columns of the
design (one indicator per group) with rows of ``B``: the conditional population
and the spend tilt are linear in ``B``, so they carry the offsets unchanged.
Per-customer expectations, spend and revenue included, are the rule's
node-weighted sums per posterior draw (:class:`JointLatentPosterior`), so
purchases and spend stay paired within each customer as well as draw by draw.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from bayesclv.arguments import check_clv_arguments
from bayesclv.errors import ArgumentError, DataValidationError
from bayesclv.formulas import _marginal as kernel
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas.joint_spend import PAIRS, conditional_population, spend_loglik, spend_tilt
from bayesclv.models.hierarchical import HierarchicalBetaGeoModel, HierarchicalParetoNBDModel
from bayesclv.models.integrated_loglik import joint_log_likelihood
from bayesclv.models.latent import group_offsets, offset_start, population_coefficients, standardisation
from bayesclv.models.latent_chunks import expectations_by_rows, flat_draws
from bayesclv.models.marginal import _CANDIDATES, _SPREAD, REFERENCE_ATTR, LatentPosterior, MarginalGraph, RowTable
from bayesclv.models.pooling import group_codes, group_labels
from bayesclv.priors import Prior

__all__ = ["JointLatentPosterior", "JointSpendBetaGeoModel", "JointSpendGraph", "JointSpendParetoNBDModel",
           "joint_rows"]

SPEND_COLUMNS = ("log_spend_mean", "log_spend_ss")
PROCESSES = ("purchase", "dropout", "spend")
_HISTORY = ["frequency", "recency", "T"]


def joint_rows(model: Any, df: pd.DataFrame) -> tuple[RowTable, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows (history, covariates, group, spend statistics), sorted by frequency, and their blocks.

    ``df`` is the fitted frame: it standardises the covariates and names the groups.

    Returns
    -------
    tuple
        ``(rows, bounds, counts, ss)``: ``rows.X`` is ``[1, standardised covariates,
        group indicators, log_spend_mean]``; block ``g`` holds rows ``bounds[g]:bounds[g + 1]``,
        all with ``counts[g]`` repeat purchases; ``ss`` the rows' ``log_spend_ss``.
    """
    frame = df[_HISTORY + model.covariates + list(SPEND_COLUMNS)].astype(float)
    if model.group is not None:
        labels = group_labels(df, model.group)
        frame = frame.assign(group_code=group_codes(df, model.group, labels).astype(float))
    grouped = frame.groupby(list(frame.columns), sort=True)
    unique = grouped.size().reset_index(name="weight")
    X = [np.ones(len(unique))]
    if model.covariates:
        centre, scale = standardisation(df, model.covariates)
        X += list(((unique[model.covariates].to_numpy(dtype=float) - centre) / scale).T)
    if model.group is not None:  # the offsets are rows of B, so the kernels need no group argument
        X += list(unique["group_code"].to_numpy()[None, :] == np.arange(len(labels))[:, None])
    X.append(unique["log_spend_mean"].to_numpy(dtype=float))
    history = unique[_HISTORY].to_numpy(dtype=float)
    counts, starts = np.unique(history[:, 0], return_index=True)
    rows = RowTable(history, np.ascontiguousarray(np.column_stack(X)), np.zeros(len(unique), dtype=np.int64),
                    unique["weight"].to_numpy(dtype=float), grouped.ngroup().to_numpy())
    return rows, np.append(starts, len(unique)).astype(np.int64), counts, unique["log_spend_ss"].to_numpy(dtype=float)


def block_frames(family: int, rows: RowTable, bounds: np.ndarray, populations: list, powers: np.ndarray,
                 log_weights: np.ndarray, refinements: int = 2, corrected: bool = False):
    """Each row's rule frame, node terms (and corrections) under its block's conditional population.

    ``populations[g] = (C, sd, rho)`` (:func:`~bayesclv.formulas.joint_spend.conditional_population`).
    Returns ``(centre, chol, log_terms, correction)``; ``correction`` has no columns unless ``corrected``.
    """
    n = len(rows.weight)
    h = rows.history
    centre, chol = np.empty((n, 2)), np.empty((n, 3))
    terms = np.empty((n, powers.shape[1]))
    correction = np.empty((n, rule.CORRECTION_COLUMNS if corrected else 0))
    for (C, sd, rho), lo, hi in zip(populations, bounds[:-1], bounds[1:], strict=True):
        part = slice(lo, hi)
        mean = rows.X[part] @ C
        centre[part], chol[part] = rule.adapt_rows(family, h[part, 0], h[part, 1], h[part, 2], mean, sd, rho,
                                                   refinements=refinements)
        terms[part] = rule.node_log_terms(family, h[part, 0], h[part, 1], h[part, 2], centre[part], chol[part],
                                          powers, log_weights)
        if corrected:
            tilts = rule.row_tilts(mean, sd, rho, centre[part], chol[part])
            correction[part] = rule.rule_corrections(family, h[part, 0], h[part, 1], h[part, 2], centre[part],
                                                     chol[part], terms[part], powers, tilts)
    return centre, chol, terms, correction


def _covariances(sd: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``(2, 2, G)`` covariances from sds ``(G, 2)`` and correlations ``(G,)``."""
    off = rho * sd[:, 0] * sd[:, 1]
    return np.array([[sd[:, 0] ** 2, off], [off, sd[:, 1] ** 2]])


class JointSpendGraph(MarginalGraph):
    """The marginal model of a joint spend model: the rule per block of rows with one count of repeat purchases,
    plus the closed-form spend term; reference point, node count and sampling as :class:`MarginalGraph`."""

    large_target_accept = None  # the 0.65 of many customers is measured for the HB Pareto/NBD only: 0.8 here

    def __init__(self, model: Any, df: pd.DataFrame, nodes: int | None = None):
        self.family = model.quadrature_family
        self.has_group, self.has_slopes = model.group is not None, bool(model.covariates)
        self.slope_count = len(model.covariates)
        self.rows, self.bounds, self.counts, ss = joint_rows(model, df)
        rows = self.rows
        self.auto_nodes = nodes is None
        self.nodes = rule.minimum_nodes(len(rows.weight)) if nodes is None else int(nodes)
        self.powers, self.log_weights = rule.product_rule(self.nodes)
        self.corrected = True
        n, blocks = len(rows.weight), len(self.counts)
        spending = rows.history[:, 0] > 0
        coords = {"process": list(PROCESSES), "covariate": ["intercept", *model.covariates],
                  "slope": model.covariates, "pair": list(PAIRS)}
        if self.has_group:
            coords["group"] = [str(g) for g in group_labels(df, model.group)]
        with pm.Model(coords=coords) as graph:
            params = joint_population(model, df)
            self.group_centred = params["group_centred"]
            B = pt.concatenate([params["intercept"][None, :]]
                               + [params[k] for k in ("slopes", "group_offset") if params[k] is not None])
            self.tables = {name: pytensor.shared(value, name=name) for name, value in (
                ("centre", np.zeros((n, 2))), ("chol", np.ones((n, 3))), ("log_terms", np.zeros((n, 1))),
                ("top_terms", np.zeros(n)), ("powers", np.zeros((5, 1))),
                ("correction", np.zeros((n, rule.CORRECTION_COLUMNS))),
                ("sigma_ref", np.repeat(np.eye(2)[:, :, None], blocks, axis=2)), ("walls", np.array([1e-3, 1e3])))}
            t = self.tables
            C, sd, rho = conditional_population(B, params["sigma"], params["correlation"], params["spend_sd"],
                                                pt.as_tensor_variable(self.counts), xp=pt)
            total = kernel.GroupedMarginalLoglikOp()(C, sd, rho, self.bounds, rows.X, rows.weight, t["centre"],
                                                     t["chol"], t["log_terms"], t["top_terms"], t["powers"],
                                                     t["correction"])[0]
            X = rows.X[spending, :-1]
            spend = spend_loglik(rows.X[spending, -1], ss[spending], rows.history[spending, 0],
                                 pt.dot(X, B[:, 2]), params["sigma"][2], params["spend_sd"], xp=pt)
            pm.Potential("loglik", total + pt.dot(rows.weight[spending], spend))
            low, high = rule.covariance_range(sd.T, rho, t["sigma_ref"])
            pm.Potential("rule_range", rule.range_penalty(low, high, t["walls"]).sum())
        self.graph = graph
        self.stored = [*model.parameter_names, "intercept"] + (["slopes"] if self.has_slopes else [])
        self._compile([B, params["sigma"], params["correlation"], params["spend_sd"]])

    def population(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(B, sigma, correlation, spend_sd)`` at the flat point ``x`` (``B`` per sd of the covariates, then
        the group offsets)."""
        B, sigma, correlation, spend_sd = self._population(x)
        return np.asarray(B), np.asarray(sigma), np.asarray(correlation), float(spend_sd)

    def populations(self, B, sigma, correlation, spend_sd) -> list:
        """Each block's conditional population of ``theta``."""
        return [conditional_population(B, sigma, correlation, np.asarray(spend_sd), float(n)) for n in self.counts]

    def adapt(self, B, sigma, correlation, spend_sd, refinements: int = 2) -> None:
        """Centre every row's rule at its conditional posterior under these population parameters."""
        centre, chol, terms, correction = block_frames(
            self.family, self.rows, self.bounds, self.populations(B, sigma, correlation, spend_sd), self.powers,
            self.log_weights, refinements, self.corrected)
        for name, value in (("centre", centre), ("chol", chol), ("log_terms", terms),
                            ("top_terms", terms.max(axis=1)), ("powers", self.powers), ("correction", correction)):
            self.tables[name].set_value(value)

    def initial_population(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The transaction model's start, the mean log spend of the spending rows and a within sd from the data."""
        B2, _, sigma2, _ = super().initial_population()  # one row too many: X ends with the mean log spend
        spending = self.rows.history[:, 0] > 0
        w = self.rows.weight[spending]
        B = np.column_stack([B2[:-1], np.zeros(B2.shape[0] - 1)])
        B[0, 2] = np.average(self.rows.X[spending, -1], weights=w) if spending.any() else 0.0
        return B, np.append(sigma2, 0.7), np.zeros(3), 0.5

    def flat_point(self, B, sigma, correlation, spend_sd) -> np.ndarray:
        """The sampler's (unconstrained) coordinates of these population parameters."""
        R = np.eye(3)
        R[0, 1] = R[1, 0] = correlation[0]
        R[0, 2] = R[2, 0] = correlation[1]
        R[1, 2] = R[2, 1] = correlation[2]
        L = np.linalg.cholesky(R * np.outer(sigma, sigma))
        values = {"intercept": B[0], "chol": L[np.tril_indices(3)], "spend_sd": spend_sd}
        if self.has_slopes:
            values["slopes"] = B[1:1 + self.slope_count]
        if self.has_group:
            values.update(offset_start(B[1 + self.slope_count:], self.group_centred))
        for rv in self.graph.free_RVs:
            self.graph.set_initval(rv, values[rv.name])
        point = self.graph.initial_point()
        return np.concatenate([np.ravel(point[name]) for name in self.free_names])

    def rule_covariances(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        populations = self.populations(*self.population(x))
        return np.array([p[1] for p in populations]), np.array([float(p[2]) for p in populations])

    def set_rule_reference(self, x: np.ndarray) -> None:
        self.tables["sigma_ref"].set_value(_covariances(*self.rule_covariances(x)))

    def reference_record(self, x: np.ndarray) -> dict[str, Any]:
        B, sigma, correlation, spend_sd = self.population(x)
        return {"coefficients": B.tolist(), "sigma": sigma.tolist(), "correlation": correlation.tolist(),
                "spend_sd": spend_sd}


def joint_population(model: Any, df: pd.DataFrame) -> dict[str, Any]:
    """The population parameters of a joint spend model, created in the current PyMC model: intercepts at the
    covariate means, slopes per sd (``coefficients`` per unit as a deterministic), group offsets of the three
    intercepts (:func:`~bayesclv.models.latent.group_offsets`), the 3 x 3 LKJ covariance (``sigma``,
    ``correlation`` over :data:`PAIRS`) and ``spend_sd``."""
    intercept, slopes = population_coefficients(model, df)
    offset, centred = group_offsets(model, df, spend_column="log_spend_mean")
    sigma_prior = model.priors["sigma"]
    sd_dist = getattr(pm, sigma_prior.distribution).dist(**sigma_prior.parameters, shape=3)
    _, corr, sigma = pm.LKJCholeskyCov("chol", eta=model.lkj_eta, n=3, sd_dist=sd_dist, compute_corr=True,
                                       store_in_trace=False)
    correlation = pt.stack([corr[0, 1], corr[0, 2], corr[1, 2]])
    return {"intercept": intercept, "slopes": slopes, "group_offset": offset, "group_centred": centred,
            "sigma": pm.Deterministic("sigma", sigma, dims="process"),
            "correlation": pm.Deterministic("correlation", correlation, dims="pair"),
            "spend_sd": model.priors["spend_sd"].create("spend_sd")}


class JointLatentPosterior(LatentPosterior):
    """Each fitted customer's latents given each population draw, per block of rows with one count of repeat
    purchases; expectations may carry the expected value of a purchase day given the latents (``tilted``)."""

    def __init__(self, model: Any):
        reference = json.loads(model.posterior.attrs[REFERENCE_ATTR])
        self.family, self.seed = model.quadrature_family, int(reference["seed"])
        self.rows, self.bounds, self.counts, _ = joint_rows(model, model.data)
        h = self.rows.history
        self.x, self.t_x, self.T = (np.ascontiguousarray(h[:, j]) for j in range(3))
        self.powers, log_weights = rule.product_rule(int(reference["nodes"]))
        populations = [conditional_population(np.array(reference["coefficients"]), np.array(reference["sigma"]),
                                              np.array(reference["correlation"]), np.array(reference["spend_sd"]),
                                              float(n)) for n in self.counts]
        self.centre, self.chol, self.log_terms, _ = block_frames(self.family, self.rows, self.bounds, populations,
                                                                 self.powers, log_weights)
        self.top_terms = self.log_terms.max(axis=1)
        self.block = np.repeat(np.arange(len(self.counts)), np.diff(self.bounds))

    @staticmethod
    def population_arrays(posterior: xr.Dataset, has_group: bool = False) -> dict[str, np.ndarray]:
        """The population draws, each ``(chain, draw, ...)`` (``B``: intercept, slopes per sd of the covariates,
        group offsets, as the rows' design), and ``sample``."""
        B = np.concatenate([posterior["intercept"].values[:, :, None, :]]
                           + [posterior[k].values for k in ("slopes", "group_offset") if k in posterior], axis=2)
        chains, draws = B.shape[:2]
        return {"coefficients": B, "sigma": posterior["sigma"].values,
                "correlation": posterior["correlation"].values, "spend_sd": posterior["spend_sd"].values,
                "sample": np.arange(chains * draws, dtype=np.int64).reshape(chains, draws)}

    def _blocks(self, flat: dict[str, np.ndarray]) -> list:
        """Per block, the draws' conditional populations of ``theta`` and the coefficients of the spend tilt."""
        out = []
        for n in self.counts:
            C, sd, rho = conditional_population(flat["coefficients"], flat["sigma"], flat["correlation"],
                                                flat["spend_sd"], float(n))
            tilt = spend_tilt(flat["coefficients"], flat["sigma"], flat["correlation"], flat["spend_sd"], float(n))
            out.append((np.ascontiguousarray(C), np.zeros((len(rho), 1, 2)), np.ascontiguousarray(sd),
                        np.ascontiguousarray(rho), np.ascontiguousarray(tilt)))
        return out

    def expectations(self, params: dict[str, np.ndarray], positions: np.ndarray, at_nodes, ratio: bool = False,
                     outputs: int = 1, tilted: tuple[bool, ...] = (False, False)) -> np.ndarray:
        """As :meth:`LatentPosterior.expectations`; a quantity with ``tilted[q]`` is multiplied at each node by
        the expected value of a purchase day given the latents and the customer's spend."""
        lead, flat = flat_draws(params)
        blocks = self._blocks(flat)
        flags = np.array(tilted[:2 if ratio else outputs], dtype=np.bool_)

        def fill(rows: np.ndarray, values: np.ndarray, result: np.ndarray) -> None:
            block = self.block[rows]
            for g in np.unique(block):
                part = np.flatnonzero(block == g)
                sub = rows[part]
                C, offset, sd, rho, tilt = blocks[g]
                piece = np.empty((len(sub), *result.shape[1:]))
                kernel.tilted_node_expectations(C, offset, sd, rho, self.rows.X[sub], self.rows.group[sub],
                                                self.centre[sub], self.chol[sub], self.log_terms[sub],
                                                self.top_terms[sub], self.powers, values[part], flags, tilt, piece)
                result[part] = piece

        return expectations_by_rows(self, lead, positions, at_nodes, ratio, fill, outputs)

    def draw(self, params: dict[str, np.ndarray], positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latents ``(theta0, theta1)`` by importance resampling in each block's frames (see the base class)."""
        lead = params["sample"].shape
        flat = {k: np.ascontiguousarray(v.reshape(-1, *v.shape[len(lead):])) for k, v in params.items()}
        blocks = self._blocks(flat)
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        codes = self.rows.codes[positions]
        out = np.empty((flat["sample"].size, positions.size, 2))
        for g in np.unique(self.block[codes]):
            part = np.flatnonzero(self.block[codes] == g)
            C, offset, sd, rho, _ = blocks[g]
            piece = np.empty((flat["sample"].size, part.size, 2))
            kernel.sample_latents(self.family, C, offset, sd, rho, self.rows.X, self.rows.group, self.x, self.t_x,
                                  self.T, self.centre, self.chol, np.ascontiguousarray(codes[part]), flat["sample"],
                                  np.ascontiguousarray(positions[part]), _CANDIDATES, _SPREAD, self.seed, piece)
            out[:, part] = piece
        out = out.reshape(*lead, positions.size, 2)
        return out[..., 0], out[..., 1]


class JointSpendPredictions:
    """The joint spend models' shared machinery (mixed in before a hierarchical transaction model).

    Parameters
    ----------
    covariates : sequence of str, optional
        Numeric columns of the RFM frame: each shifts the two latent rates and the
        log mean spend (``coefficients``, per unit of the column).
    group : str, optional
        Column naming each customer's group (segment, cohort, ...): each group
        gets its own three intercepts, ``group_offset ~ Normal(0, group_sd)``
        around the population's (partial pooling; centred or not as in the
        hierarchical models).
    priors : dict of str to Prior, optional
        Overrides for ``intercept`` (``Normal(0, 5)``, at the covariate means),
        ``slopes`` (``Normal(0, 1)`` per sd of a covariate), ``sigma`` (the three
        population sds, ``HalfNormal(2)``), ``spend_sd`` (sd of a purchase
        day's log value around the customer's own mean, ``HalfNormal(2)``) and
        ``group_sd`` (``HalfNormal(1)``).
    lkj_eta : float, default 2.0
        Shape of the LKJ prior on the 3 x 3 correlation.

    Notes
    -----
    The data are an RFM frame with ``log_spend_mean`` and ``log_spend_ss``
    (``rfm_summary(..., value=..., log_spend=True)``): the log values of the
    repeat purchase days, as Gamma-Gamma uses. ``correlation`` holds the three
    correlations of :data:`~bayesclv.formulas.joint_spend.PAIRS`
    (``purchase-spend`` is the spend-frequency correlation that Gamma-Gamma
    takes to be zero). Only NUTS with the latents integrated out is offered.
    """

    default_priors = {
        "intercept": Prior("Normal", mu=0.0, sigma=5.0),
        "slopes": Prior("Normal", mu=0.0, sigma=1.0),
        "sigma": Prior("HalfNormal", sigma=2.0),
        "spend_sd": Prior("HalfNormal", sigma=2.0),
        "group_sd": Prior("HalfNormal", sigma=1.0),
    }
    unsupported_methods = {
        "map": "the joint mode collapses the population sds to 0",
        "advi": "the spend latent is integrated out; only NUTS on the population is implemented",
        "latent": "the spend latent is integrated out; only NUTS on the population is implemented",
    }
    marginal_graph = JointSpendGraph

    def __init__(self, covariates: list[str] | tuple[str, ...] = (), group: str | None = None,
                 priors: dict[str, Prior] | None = None, lkj_eta: float = 2.0):
        super().__init__(covariates=covariates, group=group, priors=priors, lkj_eta=lkj_eta)
        self.parameter_names = ("coefficients", "sigma", "correlation", "spend_sd") + (
            ("group_sd", "group_offset") if group else ())

    def _prepare(self, data: Any, *, time_unit: str | None = None) -> pd.DataFrame:
        df = super()._prepare(data, time_unit=time_unit)
        for col in SPEND_COLUMNS:
            if col not in df.columns:
                raise DataValidationError("spend statistic missing: build the frame with "
                                          "rfm_summary(..., value=..., log_spend=True)", column=col)
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values) | ((values < 0) if col == "log_spend_ss" else False)
            if bad.any():
                raise DataValidationError("missing, infinite or (sum of squares) negative values", column=col,
                                          rows=df.loc[bad, "customer_id"].tolist())
        single = (df["frequency"].to_numpy() <= 1) & (df["log_spend_ss"].to_numpy(dtype=float) > 1e-9)
        if single.any():
            raise DataValidationError("a sum of squares around the mean of at most one repeat purchase day must "
                                      "be 0", column="log_spend_ss", rows=df.loc[single, "customer_id"].tolist())
        return df

    def _graph(self, df: pd.DataFrame, summed: bool) -> pm.Model:
        raise DataValidationError(
            "too few customers: the posterior of the population covariance is wider than the integration rule "
            "resolves, and the joint spend model has no latent-variable fit; fit more customers",
            column="customer_id")

    def _integrated(self) -> bool:
        return True

    @property
    def observed_columns(self) -> tuple[str, ...]:
        """The purchase history and the spend statistics: the likelihood observes both (LOO compares these
        models only with models of the same observations)."""
        return (*super().observed_columns, *SPEND_COLUMNS)

    def log_likelihood(self, data: Any | None = None) -> xr.DataArray:
        """Each customer's ``log p(purchases_i, spend_i | phi_d)`` per draw, the latents and the log mean spend
        integrated out (for LOO, see :meth:`HierarchicalTransactionModel.log_likelihood`)."""
        return joint_log_likelihood(self, data, *joint_rows(self, self.data))

    def _latent_posterior(self) -> JointLatentPosterior:
        cached = getattr(self, "_latent_cache", None)
        if cached is None or cached[0] is not self.idata:
            cached = self._latent_cache = (self.idata, JointLatentPosterior(self))
        return cached[1]

    def _param_arrays(self, post: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        return JointLatentPosterior.population_arrays(self.posterior if post is None else post)

    def _population_draws(self, sample: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The population of the two rates alone (the marginal of the joint one)."""
        draws = super()._population_draws(sample)
        rates = {"coefficients": draws["coefficients"][..., :2], "sigma": draws["sigma"][..., :2],
                 "correlation": draws["correlation"][..., 0]}
        if self.group:
            rates["group_offset"] = draws["group_offset"][..., :2]
        return rates

    # ------------------------------------------------------------------ spend
    def _spend_quantity(self, data: Any | None, name: str, quantities, tilted: tuple[bool, ...],
                        ratio: bool = False) -> xr.DataArray:
        """``E[g(rates_i) (spend_i)] | y_i, z_i, population draw]`` per draw and customer, by the rule's nodes;
        a quantity with ``tilted[q]`` carries the expected value of a purchase day given the latents."""
        df = self.prediction_data(data)
        posterior = self._latent_posterior()
        history = posterior.rows.history

        def at_nodes(rows, latent0, latent1):
            columns = [history[rows, j][:, None] for j in range(3)]
            latent = self._natural_rates(latent0, latent1, np.exp, special.expit)
            rates = dict(zip(self.rate_names, latent, strict=True))
            return quantities(columns, rates)

        values = posterior.expectations(self._param_arrays(), self._customer_positions(df), at_nodes, ratio,
                                        tilted=tilted)[..., 0]
        return self._as_dataarray(values, df, name)

    def expected_spend(self, data: Any | None = None) -> xr.DataArray:
        """Expected value of each customer's next purchase day, ``E[exp(m_i + spend_sd^2 / 2) | data]``, per draw.

        Conditions on the customer's purchases as well as their spend: the
        purchase history says something about ``m_i`` through the correlations.
        """
        return self._spend_quantity(data, "expected_spend", lambda c, p: [np.ones((1, 1))], (True,))

    def population_mean_spend(self, group: Any | None = None) -> xr.DataArray:
        """Mean value of a purchase day of a new customer at the covariate means, dims ``(chain, draw)``.

        Parameters
        ----------
        group : optional
            A fitted group's label (grouped models): a new customer of that group;
            left out, at the population intercept. A label not fitted raises
            :class:`~bayesclv.errors.DataValidationError` naming the group column.
        """
        post = self.posterior
        log_mean = post["intercept"].sel(process="spend")
        if group is not None:
            if self.group is None:
                raise ArgumentError("the model has no groups; fit it with group=", argument="group")
            codes = group_codes(pd.DataFrame({self.group: [group], "customer_id": ["new customer"]}), self.group,
                                group_labels(self.data, self.group))
            log_mean = log_mean + post["group_offset"].sel(process="spend").isel(group=int(codes[0]))
        mean = np.exp(log_mean + 0.5 * post["sigma"].sel(process="spend") ** 2 + 0.5 * post["spend_sd"] ** 2)
        mean.attrs = {"quantity": "expectation", "time_unit": self.time_unit,
                      "point_estimate": int(post.sizes["chain"] * post.sizes["draw"] == 1)}
        return mean.rename("population_mean_spend")

    def expected_revenue(self, t: float, data: Any | None = None) -> xr.DataArray:
        """Expected value of each customer's purchases in the next ``t`` time units, per draw.

        ``E[N_i(t) exp(m_i + spend_sd^2 / 2) | data]``: purchases and spend of one
        customer are averaged together over their joint posterior (not the product of
        the two expectations), with the same nodes and draws as :meth:`expected_purchases`.
        """
        return self._spend_quantity(
            data, "expected_revenue", lambda c, p: [self.formulas.expected_purchases(float(t), *c, **p)], (True,))

    def customer_lifetime_value(self, horizon: int, discount_rate: float, data: Any | None = None, *,
                                margin: float = 1.0) -> xr.DataArray:
        """Discounted value of each customer's purchases over ``horizon`` periods of the data's time unit.

        ``margin sum_k (1 + discount_rate)^-k E[(N_i(k) - N_i(k-1)) spend_i | data]`` per draw, the
        purchases and the spend of a customer taken jointly (see :meth:`expected_revenue`).
        """
        horizon, discount_rate, margin, _, _ = check_clv_arguments(
            horizon=horizon, discount_rate=discount_rate, margin=margin, acquisition_cost=0.0,
            service_cost_per_period=0.0)
        ends = np.arange(1.0, int(horizon) + 1.0)
        factors = (1.0 + discount_rate) ** -ends
        clv = self._spend_quantity(data, "customer_lifetime_value", lambda c, p: [
            margin * self.formulas.discounted_expected_purchases(ends, factors, *c, **p)], (True,))
        clv.attrs.update(horizon=int(horizon), discount_rate=float(discount_rate), margin=float(margin))
        return clv


class JointSpendParetoNBDModel(JointSpendPredictions, HierarchicalParetoNBDModel):
    """Hierarchical Pareto/NBD with spend: ``(log lambda_i, log mu_i, m_i) ~ MvNormal(X_i B, Sigma)``.

    ``m_i`` is the mean log value of customer ``i``'s purchase days. See
    :class:`JointSpendPredictions` for the parameters and the data.

    Examples
    --------
    >>> from bayesclv import JointSpendParetoNBDModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), value="value", calibration_end="1997-09-30", log_spend=True)
    >>> model = JointSpendParetoNBDModel().fit(rfm)  # doctest: +SKIP
    >>> model.posterior["correlation"].sel(pair="purchase-spend").mean()  # doctest: +SKIP
    """

    display_name = "hierarchical Pareto/NBD with spend"


class JointSpendBetaGeoModel(JointSpendPredictions, HierarchicalBetaGeoModel):
    """Hierarchical BG/NBD with spend: ``(log lambda_i, logit p_i, m_i) ~ MvNormal(X_i B, Sigma)``.

    See :class:`JointSpendPredictions` for the parameters and the data.
    """

    display_name = "hierarchical BG/NBD with spend"
