"""Individual-level models with each customer's latent rates integrated out: NUTS on the population only.

The hierarchical Pareto/NBD and BG/NBD give customer ``i`` two latent quantities ``theta_i ~ N(m_i, Sigma)`` with a
closed-form likelihood given them. Integrating ``theta_i`` out of each distinct row (history, covariates, group) by
the fixed adaptive Gauss-Hermite rule of :mod:`bayesclv.formulas._marginal` leaves a density of the ~7-12 population
parameters alone, which nutpie samples on the C-compiled graph (no funnel between latents and population sds, no
per-customer coordinates).

The rule's frames are the rows' conditional posteriors at a reference value of the population parameters, found by
alternating frame adaptation and maximisation of the log density (:meth:`MarginalGraph.reference_point`); the rule's
node count is chosen so that it resolves the population covariances the posterior visits
(:func:`bayesclv.formulas._marginal_rule.nodes_for_range`), and a soft wall (zero inside the resolved range) keeps
early warm-up from leaving that range.

Per-customer quantities follow from ``p(theta_i | y_i, phi_d)`` in the same frames (:class:`LatentPosterior`): an
expectation (P(alive), expected purchases, their discounted sums) is the rule's weighted sum over its nodes for each
posterior draw, without sampling noise; where a draw of the latents is needed (simulated outcomes, the rates
themselves) one ``theta_i`` per posterior draw is drawn by importance resampling in the row's frame. Both are
computed on demand for the draws and customers a prediction asks for, never stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import clone_replace
from scipy import optimize, special

from bayesclv.arguments import check_horizon
from bayesclv.chunks import available_cpus
from bayesclv.formulas import _marginal as kernel
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas._marginal_lanes import as_lanes
from bayesclv.models.diagnostics import FitDiagnostics, compute_diagnostics
from bayesclv.models.latent import offset_start, population_coords, population_parameters, standardisation
from bayesclv.models.latent_chunks import expectations_by_rows, flat_draws
from bayesclv.models.marginal_settings import MARGINAL_TARGET_ACCEPT, marginal_target_accept, marginal_tune
from bayesclv.models.pooling import group_codes, group_labels
from bayesclv.models.sampling import compile_nutpie_model, laplace_covariance, whitened

__all__ = ["REFERENCE_ATTR", "LatentPosterior", "MarginalPredictions", "MarginalGraph", "RowTable", "fit_marginal",
           "row_table"]

REFERENCE_ATTR = "marginal_reference"  # posterior attribute: the frames' reference population (JSON)
_HISTORY = ["frequency", "recency", "T"]
_CANDIDATES, _SPREAD = 16, 1.2  # importance resampling: proposals per draw and customer, widening of the frame
_MAX_RADIUS = 1.0  # the reference search's largest box (sampler coordinates): the coarse rule's first box
# rounds of the search with the model's rule: it stops once a round moves less than ``tol``, so rounds beyond
# convergence cost nothing; with 6, a start the coarse rule had left short of the mode stayed short (a user-set
# 16-node rule on CDNOW full ended at dropout sd 3.84, the mode's 4.29:
# benchmarks/results/hierarchical_marginal_speed.md part 7)
_FINE_ROUNDS = 12

@dataclass
class RowTable:
    """Distinct rows (history, standardised covariates, group) of the fitted customers.

    Attributes
    ----------
    history : numpy.ndarray
        ``(n, 3)``: frequency, recency, T.
    X : numpy.ndarray
        ``(n, P)``: a column of ones, then the standardised covariates.
    group : numpy.ndarray
        ``(n,)`` group codes (0 without groups).
    weight : numpy.ndarray
        Customers sharing each row.
    codes : numpy.ndarray
        Each customer's row.
    """

    history: np.ndarray
    X: np.ndarray
    group: np.ndarray
    weight: np.ndarray
    codes: np.ndarray

    def means(self, B: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Each row's population mean ``X B + offset[group]``, shape ``(n, 2)``."""
        return self.X @ B + offset[self.group]


def row_table(model: Any, df: pd.DataFrame) -> RowTable:
    """The distinct rows of ``df`` for ``model`` (an individual-level model); covariates standardised as in ``df``."""
    frame = df[_HISTORY + model.covariates].astype(float)
    frame = frame.assign(group_code=group_codes(df, model.group, group_labels(df, model.group))
                         if model.group is not None else 0)
    grouped = frame.groupby(list(frame.columns), sort=True)
    unique = grouped.size().reset_index(name="weight")
    X = np.ones((len(unique), 1))
    if model.covariates:
        centre, scale = standardisation(df, model.covariates)
        X = np.column_stack([X, (unique[model.covariates].to_numpy(dtype=float) - centre) / scale])
    return RowTable(unique[_HISTORY].to_numpy(dtype=float), np.ascontiguousarray(X),
                    unique["group_code"].to_numpy(dtype=np.int64), unique["weight"].to_numpy(dtype=float),
                    grouped.ngroup().to_numpy())


def _covariance(sigma: np.ndarray, rho: float) -> np.ndarray:
    off = rho * sigma[0] * sigma[1]
    return np.array([[sigma[0] ** 2, off], [off, sigma[1] ** 2]])


class MarginalGraph:
    """The marginal model of one data set: PyMC graph, rule frames, reference point and sampling.

    Parameters
    ----------
    model : HierarchicalTransactionModel
        Supplies the priors, covariates, group and family (``quadrature_family``).
    df : pandas.DataFrame
        The prepared frame.
    nodes : int, optional
        Nodes per dimension of the rule; by default chosen from the rows and
        the posterior's range of population covariances.
    """

    kernel_op: Any = None  # the kernel's Op where it can split its rows over threads (not the joint spend models')
    large_target_accept: float | None = MARGINAL_TARGET_ACCEPT  # many customers' settings (marginal_settings)

    def __init__(self, model: Any, df: pd.DataFrame, nodes: int | None = None):
        self.family = model.quadrature_family
        self.has_group, self.has_slopes = model.group is not None, bool(model.covariates)
        self.rows = rows = row_table(model, df)
        self.auto_nodes = nodes is None
        self.nodes = rule.minimum_nodes(len(rows.weight)) if nodes is None else int(nodes)
        self.powers, self.log_weights = rule.product_rule(self.nodes)
        self.corrected = True
        n = len(rows.weight)
        with pm.Model(coords=population_coords(model, df)) as graph:
            params = population_parameters(model, df)
            B = params["intercept"][None, :]
            if self.has_slopes:
                B = pt.concatenate([B, params["slopes"]])
            offset = params["group_offset"] if self.has_group else pt.zeros((1, 2))
            self.group_centred = params["group_centred"]
            self.tables = {name: pytensor.shared(value, name=name) for name, value in (
                ("centre", np.zeros((n, 2))), ("chol", np.ones((n, 3))), ("log_terms", np.zeros((n, 1))),
                ("top_terms", np.zeros(n)), ("powers", np.zeros((5, 1))),
                ("correction", np.zeros((n, rule.CORRECTION_COLUMNS))),
                ("sigma_ref", np.eye(2)), ("walls", np.array([1e-3, 1e3])), ("node_mass", as_lanes(np.zeros((n, 0)))))}
            t = self.tables
            self.kernel_op = kernel.MarginalLoglikOp()
            total = self.kernel_op(B, offset, params["sigma"], params["correlation"], rows.X, rows.group,
                                              rows.weight, t["centre"], t["chol"], t["log_terms"], t["top_terms"],
                                              t["powers"], t["correction"], t["node_mass"])[0]
            pm.Potential("loglik", total)
            low, high = rule.covariance_range(params["sigma"], params["correlation"], t["sigma_ref"])
            pm.Potential("rule_range", rule.range_penalty(low, high, t["walls"]))
        self.graph = graph
        self.stored = [*model.parameter_names, "intercept"] + (["slopes"] if self.has_slopes else [])
        self._compile([B, offset, params["sigma"], params["correlation"]])

    def _compile(self, outputs: list) -> None:
        """The log density and gradient in the sampler's flat coordinates, and the kernel's parameters from them."""
        graph = self.graph
        point = graph.initial_point()
        free = [graph.rvs_to_values[rv] for rv in graph.free_RVs]
        shapes = [point[v.name].shape for v in free]
        offsets = np.cumsum([0, *(int(np.prod(s)) for s in shapes)])
        flat = pt.dvector("x")
        pieces = {v: flat[int(lo):int(hi)].reshape(s)
                  for v, lo, hi, s in zip(free, offsets[:-1], offsets[1:], shapes, strict=True)}
        logp = graph.logp(jacobian=True)
        grad = pt.concatenate([g.ravel() for g in pt.grad(logp, free)])
        logp, grad = clone_replace([logp, grad], pieces)
        outs = clone_replace(graph.replace_rvs_by_values(outputs), pieces)
        self.logp_grad = pytensor.function([flat], [logp, grad])
        self._population = pytensor.function([flat], outs, on_unused_input="ignore")
        self.free_names = [v.name for v in free]
        # centred group offsets: the density grows without bound towards group_sd -> 0 with the offsets (their
        # normal's -G log group_sd), so it has no mode to centre the rule at. The reference maximises it times
        # group_sd^G, the density of the non-centred coordinates (z = offset / group_sd), which has one; the
        # factor is linear in log group_sd, so the Laplace curvature there is the density's own
        self.mode_tilt = np.zeros(int(offsets[-1]))
        self.group_coordinates = np.zeros(int(offsets[-1]), dtype=bool)
        for j, name in enumerate(self.free_names):
            if name.startswith("group_"):
                self.group_coordinates[int(offsets[j]):int(offsets[j + 1])] = True
        if self.group_centred is not None:  # one factor group_sd per centred offset of its process
            sd = self.free_names.index("group_sd_log__")
            self.mode_tilt[int(offsets[sd]):int(offsets[sd + 1])] = self.group_centred.sum(axis=0)

    def population(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The kernel's ``(B, offset, sigma, rho)`` at the flat point ``x``."""
        B, offset, sigma, rho = self._population(x)
        return np.asarray(B), np.asarray(offset), np.asarray(sigma), float(rho)

    def adapt(self, B, offset, sigma, rho, refinements: int = 2) -> None:
        """Centre every row's rule at its conditional posterior under these population parameters."""
        frames = rule.row_frames(self.family, self.rows.history, self.rows.means(B, offset), sigma, rho, self.powers,
                                 self.log_weights, corrected=self.corrected, refinements=refinements)
        # the kernel reads the node masses in its lane layout, built here once per rule instead of per gradient
        for name, value in {**frames, "powers": self.powers, "node_mass": as_lanes(frames["node_mass"])}.items():
            self.tables[name].set_value(value)

    def initial_population(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """A start from the data: the mean purchase rate; a lifetime of about twice the mean observation
        period (Pareto/NBD) or a dropout probability of about 0.3 per repeat purchase (BG/NBD)."""
        h, w = self.rows.history, self.rows.weight
        B = np.zeros((self.rows.X.shape[1], 2))
        B[0, 0] = np.log((w @ (h[:, 0] + 0.5)) / (w @ h[:, 2]))
        B[0, 1] = -np.log(2.0 * (w @ h[:, 2]) / w.sum()) if self.family == rule.PARETONBD else -1.0
        return B, np.zeros((int(self.rows.group.max()) + 1, 2)), np.array([1.0, 1.5]), 0.0

    def flat_point(self, B, offset, sigma, rho) -> np.ndarray:
        """The sampler's (unconstrained) coordinates of these population parameters."""
        L = np.linalg.cholesky(_covariance(sigma, rho))
        values = {"intercept": B[0], "chol": np.array([L[0, 0], L[1, 0], L[1, 1]])}
        if self.has_slopes:
            values["slopes"] = B[1:]
        if self.has_group:
            values.update(offset_start(offset, self.group_centred))
        for rv in self.graph.free_RVs:
            self.graph.set_initval(rv, values[rv.name])
        point = self.graph.initial_point()
        return np.concatenate([np.ravel(point[name]) for name in self.free_names])

    def _optimise(self, x: np.ndarray, rounds: int, radius: float, tol: float, refinements: int = 2,
                  frozen: np.ndarray | None = None) -> np.ndarray:
        """Maximise the log density (see ``mode_tilt``) in a box around ``x`` (the rule is accurate near its
        centre), re-centre the rule there, and repeat until the point moves less than ``tol``; the ``frozen``
        coordinates stay where they are.

        A trust region: the box shrinks around a step that ends inside it and doubles (up to
        :data:`_MAX_RADIUS`) after one that ends on its edge. Along a long ridge (the HB BG/NBD's dropout
        intercept against its sd on CDNOW full) every step ends on the edge, and a box that only shrinks stops
        the search short of the mode: 3.9 nats below the posterior mean's density, 3.4 Laplace sds off in the
        intercept, which put the rule's resolved range (centred there) inside the posterior and its wall
        caused divergences (``validation/results/hb_bgnbd_reference.md``).
        """
        fixed = np.zeros(len(x), dtype=bool) if frozen is None else frozen
        for _ in range(rounds):
            width = np.where(fixed, 0.0, radius)
            res = optimize.minimize(self._negative_mode_objective, x, jac=True, method="L-BFGS-B",
                                    bounds=list(zip(x - width, x + width, strict=True)))
            step = np.abs(res.x - x)
            moved = float(np.max(step))
            x = res.x
            self.adapt(*self.population(x), refinements=refinements)
            if moved < tol:
                break
            if np.any(step[~fixed] >= 0.999 * radius):
                radius = min(2.0 * radius, _MAX_RADIUS)
            elif moved < 0.5 * radius:
                radius = max(2.0 * moved, 0.05)
        return x

    def _negative_mode_objective(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Minus the log density (times ``group_sd^G`` for centred offsets, see ``mode_tilt``) and its gradient."""
        value, grad = self.logp_grad(x)
        return -(float(value) + self.mode_tilt @ x), -(np.asarray(grad) + self.mode_tilt)

    def laplace_covariance(self, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
        """Inverse of the negative Hessian of the log density at ``x``
        (:func:`~bayesclv.models.sampling.laplace_covariance`)."""
        return laplace_covariance(self.logp_grad, x, step)

    def covariance_range(self, x: np.ndarray, cov: np.ndarray, draws: int = 4000, inflate: float = 1.5,
                         q: float = 5e-3, seed: int = 0) -> tuple[float, float]:
        """Quantiles ``q`` and ``1 - q`` of the extreme eigenvalues of ``Sigma^-1 Sigma_ref`` over the Laplace
        approximation at ``x`` with its sds widened by ``inflate``."""
        rng = np.random.default_rng(seed)
        refs = [_covariance(s, r) for s, r in zip(*self.rule_covariances(x), strict=True)]
        low, high = [], []
        for z in rng.multivariate_normal(x, inflate**2 * cov, size=draws):
            ranges = [rule.covariance_range(sz, rz, ref, xp=np)
                      for sz, rz, ref in zip(*self.rule_covariances(z), refs, strict=True)]
            low.append(min(lo for lo, _ in ranges))
            high.append(max(hi for _, hi in ranges))
        return float(np.quantile(low, q)), float(np.quantile(high, 1 - q))

    def rule_covariances(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sds ``(G, 2)`` and correlations ``(G,)`` of the populations the rule integrates against at ``x``
        (one here; the joint spend models have one per count of repeat purchases)."""
        _, _, s, r = self.population(x)
        return np.asarray(s)[None, :], np.array([r])

    def set_rule_reference(self, x: np.ndarray) -> None:
        """Record the covariance(s) at the reference ``x`` that the range penalty measures against."""
        _, _, s, r = self.population(x)
        self.tables["sigma_ref"].set_value(_covariance(s, r))

    def reference_record(self, x: np.ndarray) -> dict[str, Any]:
        """The population at the reference ``x``, as saved with the posterior (:data:`REFERENCE_ATTR`)."""
        B, offset, sigma, rho = self.population(x)
        return {"coefficients": B.tolist(), "offset": offset.tolist(), "sigma": sigma.tolist(), "rho": rho}

    def reference_point(self, tol: float = 2e-3) -> np.ndarray:
        """The frames' reference: alternately centre the rule and maximise the log density with it.

        First with a 5 x 5 rule without correction (to get close cheaply), then with the model's rule; with
        automatic nodes the node count is then raised until the rule resolves the range of ``Sigma`` under the
        Laplace approximation (``resolved`` is False where even the largest rule cannot). Sets the walls of that
        range; returns the flat point. The search evaluates one density at a time, so the kernel splits its
        rows over the cores meanwhile.
        """
        op = self.kernel_op
        if op is None:
            return self._reference_point(tol)
        op.threads = available_cpus()
        try:
            return self._reference_point(tol)
        finally:
            op.threads = 1

    def _reference_point(self, tol: float) -> np.ndarray:
        final = (self.powers, self.log_weights)
        self.powers, self.log_weights = rule.product_rule(5)
        self.corrected = False
        start = self.initial_population()
        self.adapt(*start, refinements=1)
        # the group coordinates wait for the accurate rule: with the coarse one and offsets free, the fit trades
        # the offsets against the rule's error (the CDNOW cohorts' dropout sd fell from 1.9 to 0.03)
        x = self._optimise(self.flat_point(*start), 12, 1.0, 0.05, refinements=1, frozen=self.group_coordinates)
        self.powers, self.log_weights = final
        self.corrected = True
        self.adapt(*self.population(x))
        x = self._optimise(x, _FINE_ROUNDS, 0.2, tol)
        self.laplace = self.laplace_covariance(x)
        self.range = self.covariance_range(x, self.laplace)
        widest = rule.resolved_range(rule.NODE_LADDER[-1])
        self.resolved = not self.auto_nodes or (widest[0] <= self.range[0] and self.range[1] <= widest[1])
        if self.auto_nodes and self.resolved:
            nodes = rule.nodes_for_range(*self.range, self.nodes)
            if nodes != self.nodes:
                self.nodes = nodes
                self.powers, self.log_weights = rule.product_rule(nodes)
                self.adapt(*self.population(x))
                x = self._optimise(x, _FINE_ROUNDS, 0.2, tol)
                self.laplace = self.laplace_covariance(x)
        self.set_rule_reference(x)
        self.tables["walls"].set_value(np.array(rule.resolved_range(self.nodes)))
        self.reference = x
        return x

    def sample(self, *, draws: int, tune: int, chains: int, cores: int, random_seed: int | None, progressbar: bool,
               target_accept: float, **settings: Any) -> xr.DataTree:
        """nutpie on the C-compiled density, in coordinates whitened by the Laplace approximation at the reference.

        NUTS sees ``z`` with ``x = x_ref + L z`` (``L L'`` the Laplace covariance), where
        the posterior is close to a standard normal: the mass matrix starts near
        its adapted value, so a short warm-up suffices. Chains start at ``z`` drawn
        from ``N(0, 0.5^2 I)`` (:func:`~bayesclv.models.sampling.whitened`; PyMC's
        uniform(-1, 1) jitter in ``x`` would start them where the rule is least
        accurate). The draws are recorded in ``x``'s variables.
        """
        import nutpie

        compiled = whitened(compile_nutpie_model(self.graph, self.stored), self.reference,
                            np.linalg.cholesky(self.laplace))
        seed = int(np.random.default_rng(random_seed).integers(2**31)) if random_seed is None else int(random_seed)
        settings.setdefault("adaptation", "low_rank")  # 7-12 correlated population parameters
        settings.setdefault("initial_step", 1.0)  # the whitened posterior's scale (nutpie starts at 0.1)
        settings.setdefault("save_warmup", False)
        return nutpie.sample(compiled.nutpie_model(), draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
                             seed=seed, progress_bar=progressbar, target_accept=target_accept, **settings)


def fit_marginal(model: Any, df: pd.DataFrame, *, draws: int, tune: int | None, chains: int, cores: int,
                 random_seed: int | None, progressbar: bool, target_accept: float | None, thin: int,
                 nodes: int | None = None, **settings: Any) -> tuple[xr.DataTree, FitDiagnostics] | None:
    """NUTS on the population parameters of ``model`` with the latents integrated out.

    The graph is ``model.marginal_graph`` where the model declares one (the joint
    spend models' :class:`~bayesclv.models.joint_spend.JointSpendGraph`), else :class:`MarginalGraph`.
    ``tune`` and ``target_accept`` None: the defaults of :mod:`bayesclv.models.marginal_settings`.

    Returns
    -------
    tuple or None
        ``(idata, diagnostics)``; the posterior's attribute :data:`REFERENCE_ATTR`
        records the frames' reference population, the node count and the seed
        of the per-draw latents (:class:`LatentPosterior`). None, before any
        sampling, where the posterior of ``Sigma`` spans more than the largest
        rule resolves (few customers): their latents are then better sampled.
    """
    marginal = getattr(model, "marginal_graph", MarginalGraph)(model, df, nodes)
    x = marginal.reference_point()
    if not marginal.resolved:
        return None
    customers = float(marginal.rows.weight.sum())
    if target_accept is None:
        target_accept = marginal_target_accept(model, customers, marginal.large_target_accept)
    tune = marginal_tune(customers, marginal.large_target_accept) if tune is None else tune
    idata = marginal.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                            progressbar=progressbar, target_accept=target_accept, **settings)
    if thin > 1:
        idata = idata.isel(draw=slice(None, None, thin), missing_dims="ignore")
    diagnostics = compute_diagnostics(idata, list(model.parameter_names))
    diagnostics["nodes"], diagnostics["latents"] = marginal.nodes, "integrated"
    posterior = idata["posterior"].to_dataset()
    posterior.attrs[REFERENCE_ATTR] = json.dumps({
        **marginal.reference_record(x), "nodes": marginal.nodes,
        "seed": int(np.random.default_rng(random_seed).integers(2**31))})
    idata["posterior"] = xr.DataTree(posterior)
    return idata, diagnostics


class LatentPosterior:
    """Each fitted customer's latents given each population draw, ``p(theta_i | y_i, phi_d)``, in the fit's frames.

    Expectations of a function of the latents are the rule's weighted sums
    over its nodes (:meth:`expectations`: the nodes and weights of the
    likelihood, no sampling noise); where a draw of the latents themselves is
    needed (outcomes, :meth:`rates`) they are drawn by importance resampling
    (:meth:`draw`).

    Parameters
    ----------
    model : HierarchicalTransactionModel
        A model fitted with its latents integrated out.
    """

    def __init__(self, model: Any):
        posterior = model.posterior
        reference = json.loads(posterior.attrs[REFERENCE_ATTR])
        self.family, self.seed = model.quadrature_family, int(reference["seed"])
        self.rows = row_table(model, model.data)
        h = self.rows.history
        self.x, self.t_x, self.T = (np.ascontiguousarray(h[:, j]) for j in range(3))
        B, offset = np.array(reference["coefficients"]), np.array(reference["offset"])
        self.centre, self.chol = rule.adapt_rows(self.family, self.x, self.t_x, self.T, self.rows.means(B, offset),
                                                 np.array(reference["sigma"]), reference["rho"])
        self.powers, log_weights = rule.product_rule(int(reference["nodes"]))
        self.log_terms = rule.node_log_terms(self.family, self.x, self.t_x, self.T, self.centre, self.chol,
                                             self.powers, log_weights)
        self.top_terms = self.log_terms.max(axis=1)
        self.node_mass = (np.exp(self.log_terms - self.top_terms[:, None]) if rule.is_product_rule(self.powers)
                          else None)  # a full product rule's weights are summed by factors

    @staticmethod
    def population_arrays(posterior: xr.Dataset, has_group: bool) -> dict[str, np.ndarray]:
        """The kernel's population draws, each ``(chain, draw, ...)``, and each draw's flat index ``sample``."""
        B = posterior["intercept"].values[:, :, None, :]
        if "slopes" in posterior:
            B = np.concatenate([B, posterior["slopes"].values], axis=2)
        chains, draws = B.shape[:2]
        offset = posterior["group_offset"].values if has_group else np.zeros((chains, draws, 1, 2))
        return {"coefficients": B, "offset": offset, "sigma": posterior["sigma"].values,
                "correlation": posterior["correlation"].values,
                "sample": np.arange(chains * draws, dtype=np.int64).reshape(chains, draws)}

    def nodes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The latents ``(theta0, theta1)`` at the rule's nodes of ``rows``, each ``(len(rows), nodes)``."""
        centre, chol = self.centre[rows], self.chol[rows]
        theta0 = centre[:, :1] + chol[:, :1] * self.powers[0]
        return theta0, centre[:, 1:] + chol[:, 1:2] * self.powers[0] + chol[:, 2:] * self.powers[1]

    def expectations(self, params: dict[str, np.ndarray], positions: np.ndarray, at_nodes: Callable,
                     ratio: bool = False, outputs: int = 1) -> np.ndarray:
        """``E[g(theta_i) | y_i, phi_d]`` for every draw ``d`` in ``params`` and customer at ``positions``.

        Parameters
        ----------
        params : dict
            Population draws (:meth:`population_arrays`), each ``(chain, draw, ...)``.
        positions : numpy.ndarray
            The customers' positions in the fitted data.
        at_nodes : callable
            ``at_nodes(rows, theta0, theta1)``: for the distinct ``rows`` (indices
            into the fit's rows) and the latents at their nodes (each
            ``(len(rows), nodes)``), a list of arrays ``g(theta)`` of that shape.
        ratio : bool, default False
            Return the ratio of the two expectations (a conditional expectation,
            ``E[g0] / E[g1]``) instead of the first.
        outputs : int, default 1
            Without ``ratio``, the expectations of the first ``outputs`` arrays, from one pass of the weights.

        Returns
        -------
        numpy.ndarray
            ``(chain, draw, len(positions), outputs)``. Distinct rows are evaluated once, in
            chunks of rows (each chunk over all draws) on every core.
        """
        lead, flat = flat_draws(params)

        def fill(rows: np.ndarray, values: np.ndarray, result: np.ndarray) -> None:
            kernel.node_expectations(flat["coefficients"], flat["offset"], flat["sigma"], flat["correlation"],
                                     self.rows.X[rows], self.rows.group[rows], self.centre[rows], self.chol[rows],
                                     self.log_terms[rows], self.top_terms[rows], self.powers, values, result,
                                     np.empty((len(rows), 0)), None if self.node_mass is None else self.node_mass[rows])

        return expectations_by_rows(self, lead, positions, at_nodes, ratio, fill, outputs)

    def draw(self, params: dict[str, np.ndarray], positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latents ``(theta0, theta1)`` of the customers at ``positions`` (in the fitted data) for the draws in
        ``params`` (:meth:`population_arrays`, all draws or a chunk), each shaped ``sample.shape + (customers,)``,
        by importance resampling in the rows' frames."""
        lead = params["sample"].shape
        flat = {k: np.ascontiguousarray(v.reshape(-1, *v.shape[len(lead):])) for k, v in params.items()}
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        out = np.empty((flat["sample"].size, positions.size, 2))
        kernel.sample_latents(self.family, flat["coefficients"], flat["offset"], flat["sigma"], flat["correlation"],
                              self.rows.X, self.rows.group, self.x, self.t_x, self.T, self.centre, self.chol,
                              self.rows.codes[positions], flat["sample"], positions, _CANDIDATES, _SPREAD,
                              self.seed, out)
        out = out.reshape(*lead, positions.size, 2)
        return out[..., 0], out[..., 1]


class MarginalPredictions:
    """Expectations of an individual-level model fitted with its latents integrated out, by the rule's nodes.

    Mixed in before :class:`~bayesclv.models.transaction.TransactionPredictions`: with the latents
    integrated out an expectation is ``E[q(rates_i) | y_i, phi_d]`` per draw (:meth:`LatentPosterior.expectations`);
    a fit with sampled latents (``method="latent"``) goes on to the per-draw formulas.
    """

    def _latent_posterior(self) -> LatentPosterior:
        """The fitted rows' frames and nodes (latents integrated out), built once per fit."""
        cached = getattr(self, "_latent_cache", None)
        if cached is None or cached[0] is not self.idata:
            cached = self._latent_cache = (self.idata, LatentPosterior(self))
        return cached[1]

    def _integrated(self) -> bool:
        return self.latent_names[0] not in self.posterior

    def _node_quantity(self, data: Any | None, name: str, quantities, ratio: bool = False) -> xr.DataArray:
        """``E[g(rates_i) | y_i, population draw]`` per draw and customer, by the rule's nodes (no sampling noise).

        ``quantities(columns, rates)`` gives ``g`` (one array, or two whose ratio of
        expectations is wanted) from the rows' columns and the rates at their nodes.
        """
        df = self.prediction_data(data)
        return self._as_dataarray(self._node_expectations(df, quantities, ratio)[..., 0], df, name)

    def _node_expectations(self, df, quantities, ratio: bool = False, outputs: int = 1) -> np.ndarray:
        """:meth:`LatentPosterior.expectations` of ``quantities(columns, rates)`` for the customers of ``df``."""
        posterior = self._latent_posterior()
        history = posterior.rows.history

        def at_nodes(rows, latent0, latent1):
            columns = {c: history[rows, j][:, None] for j, c in enumerate(("frequency", "recency", "T"))}
            rates = dict(zip(self.rate_names, self._natural_rates(latent0, latent1, np.exp, special.expit),
                             strict=True))
            return quantities(columns, rates)

        return posterior.expectations(self._param_arrays(), self._customer_positions(df), at_nodes, ratio,
                                      outputs=outputs)

    def customer_predictions(self, t: float, data: Any | None = None) -> xr.Dataset:
        """As :meth:`TransactionPredictions.customer_predictions`; with the latents integrated out, one pass
        of the node weights (the bulk of the work) serves both quantities, the two expectations of
        :meth:`_alive_products`."""
        if not self._integrated():
            return super().customer_predictions(t, data)
        check_horizon(t)
        df = self.prediction_data(data)
        values = self._node_expectations(df, self._alive_products(self.formulas.expected_purchases, (t,), False),
                                         outputs=2)
        return xr.Dataset({name: self._as_dataarray(values[..., q], df, name)
                           for name, q in (("probability_alive", 1), ("expected_purchases", 0))})

    def _history_quantity(self, fn, data: Any | None, name: str, *args: Any) -> xr.DataArray:
        """With the latents integrated out, the posterior expectation over each customer's latents per draw."""
        if not self._integrated():
            return super()._history_quantity(fn, data, name, *args)
        return self._node_quantity(
            data, name, lambda c, p: [fn(*args, *(c[col] for col in self.prediction_columns), **p)])

    def _alive_weighted(self, fn, data: Any | None, name: str, *args: Any, given_alive: bool) -> xr.DataArray:
        """With the latents integrated out, ``E[fn(given alive) P(alive)]`` per draw; given alive, divided by
        ``E[P(alive)]`` (the expectation conditional on being alive), so that the unconditional value is the
        given-alive one times :meth:`probability_alive` draw by draw."""
        if not self._integrated():
            return super()._alive_weighted(fn, data, name, *args, given_alive=given_alive)
        return self._node_quantity(data, name, self._alive_products(fn, args, given_alive), ratio=given_alive)

    def _alive_products(self, fn, args: tuple, given_alive: bool) -> Callable:
        """``quantities(columns, rates)`` of :meth:`_node_quantity`: ``fn(*args, given alive) P(alive)`` and
        ``P(alive)`` at the nodes; given alive (their ratio wanted) P(alive) is rescaled per row."""

        def quantities(c, p):
            columns = [c[col] for col in self.prediction_columns]
            alive = self.formulas.probability_alive(*columns, **p)
            if given_alive:
                # a row's scale cancels in the ratio: its largest node is made 1, and a row whose nodes are all
                # dead falls back to the unweighted mean. (A floor of 1e-300 did that before, but its products
                # with the weights were subnormal numbers, which the CPU adds many times slower.)
                top = alive.max(axis=-1, keepdims=True)
                alive = np.where(top > 0, alive / np.where(top > 0, top, 1.0), 1.0)
            return [fn(*args, *columns, **p, given_alive=True) * alive, alive]

        return quantities
