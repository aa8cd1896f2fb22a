"""Pareto/GGG model class (Platzer & Reutterer 2016): per-customer regularity, purchase and dropout rates.

Customer ``i`` buys at Gamma(``k_i``, rate ``k_i lambda_i``) inter-purchase times and
drops out at rate ``mu_i``; across customers ``k ~ Gamma(t, gamma)``,
``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``. The mathematics given the
three latents is :mod:`bayesclv.formulas.paretoggg`; this class samples the
population parameters and every customer's latents (by the data-augmentation
sweeps of :mod:`bayesclv.formulas._paretoggg_gibbs`, or NUTS) and makes each
prediction of the contract from the customer's own posterior draws, like the
individual-level hierarchical models (:mod:`bayesclv.models.hierarchical`), whose
prediction mixins and engine it shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from bayesclv.data.timing import validate_timing_rfm
from bayesclv.formulas import PT, paretoggg
from bayesclv.formulas._paretoggg_gibbs import sample
from bayesclv.formulas._prior_density import prior_arguments
from bayesclv.models.base import CLVModel
from bayesclv.models.diagnostics import FitDiagnostics, compute_diagnostics
from bayesclv.models.predictive import POSITION, CustomerLatents
from bayesclv.models.transaction import TransactionPredictions
from bayesclv.priors import Prior

__all__ = ["ParetoGGGModel", "gibbs_priors"]

_POPULATION = (("t", "gamma"), ("r", "alpha"), ("s", "beta"))  # shape and rate of each latent's population
# repeat purchases from which a customer's latent is sampled centred: the data then say more about it than
# the population (log lambda: about one observation per purchase; log k: about one per two gaps)
_CENTRED_FROM = {"k": 10, "lam": 2, "mu": np.inf}
_LAGUERRE_NODES = 5  # per latent, for a new customer's expectation over the population
#: ``fit()``'s sweeps where the call names none (``method="gibbs"``): the cheapest that converged on the CDNOW
#: sample (validation/results/paretoggg_mixing.md); one chain per core of a 2-core machine
GIBBS_DEFAULTS = {"chains": 2, "tune": 1000, "draws": 9000, "thin": 9}


def _gamma_latents(name: str, centred: np.ndarray, shape, rate):
    """Latents ``~ Gamma(shape, rate)`` of every customer, each in the parameterisation that samples well.

    A customer whose data pin the latent down gets it centred: the sampler moves
    ``log x`` under the log-Gamma density. The others get it non-centred:
    ``log x = log G - log rate`` with ``log G = psi(a) + sqrt(psi'(a)) z``
    (``G ~ Gamma(a, 1)``), ``z`` under the exact density of ``log G`` times the
    Jacobian, which is near a standard normal whatever the population, so the
    population and the latents of customers with little data form no funnel.
    Both are exact; only the sampler's geometry differs.
    """
    parts, order = [], []
    if (~centred).any():
        z = pm.Flat(f"{name}_innovation", shape=int((~centred).sum()))
        scale = pt.sqrt(pt.tri_gamma(shape))
        u = pt.digamma(shape) + scale * z
        pm.Potential(f"{name}_population", pt.sum(shape * u - pt.exp(u) - pt.gammaln(shape) + pt.log(scale)))
        parts.append(pt.exp(u) / rate)
        order.append(np.flatnonzero(~centred))
    if centred.any():
        w = pm.Flat(f"log_{name}", shape=int(centred.sum()))
        pm.Potential(f"{name}_population_centred",
                     pt.sum(shape * pt.log(rate) - pt.gammaln(shape) + shape * w - rate * pt.exp(w)))
        parts.append(pt.exp(w))
        order.append(np.flatnonzero(centred))
    return pt.concatenate(parts)[np.argsort(np.concatenate(order))]


def gibbs_priors(priors: dict[str, Prior], latent_names: tuple[str, ...]) -> np.ndarray:
    """The population priors as the compiled sweeps read them (``prior`` of
    :func:`~bayesclv.formulas._paretoggg_gibbs.sample`): per latent, the code and two arguments of its
    mean's prior, then of its cv2's.

    Raises
    ------
    bayesclv.errors.PriorError
        A prior the sweeps do not evaluate (the error names ``method='nuts'`` as the alternative).
    """
    return np.array([[value for quantity in ("mean", "cv2")
                      for value in prior_arguments(priors[f"{name}_{quantity}"].distribution,
                                                   priors[f"{name}_{quantity}"].parameters,
                                                   caller="method='gibbs'", instead="method='nuts'")]
                     for name in latent_names])

class ParetoGGGModel(TransactionPredictions, CustomerLatents, CLVModel):
    """Pareto/GGG (Platzer & Reutterer 2016): Pareto/NBD with regular, Gamma-distributed inter-purchase times.

    Each customer ``i`` has a regularity ``k_i`` (the shape of their
    inter-purchase times: 1 is the Poisson process of the Pareto/NBD, larger is
    more regular), a purchase rate ``lambda_i`` (purchases per time unit while
    alive) and a dropout rate ``mu_i``, drawn from ``k ~ Gamma(t, gamma)``,
    ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)`` (shape, rate).

    The likelihood needs, besides ``(frequency, recency, T)``, the sum of the
    log inter-purchase times ``litt``: build the frame with
    ``rfm_summary(transactions, ...)``.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of the sampled population quantities: each
        latent's mean and squared coefficient of variation, ``k_mean = t / gamma``,
        ``k_cv2 = 1 / t``, ``lam_mean = r / alpha`` (per time unit),
        ``lam_cv2 = 1 / r``, ``mu_mean = s / beta``, ``mu_cv2 = 1 / s``. Defaults
        (weakly informative): ``k_mean ~ HalfNormal(5)``, the rate means
        ``HalfNormal(1)``, every ``*_cv2 ~ HalfNormal(10)``. ``summary()`` shows
        ``t, gamma, r, alpha, s, beta``.

    Notes
    -----
    ``fit()`` (``method="gibbs"``, the default: a compiled data-augmentation
    MCMC) or ``fit(method="nuts")`` (NUTS on every latent, the reference) samples
    the six population parameters and every customer's three latents (stored as
    ``k``, ``lam``, ``mu``, dims ``(chain, draw, customer_id)``). MAP is refused (the joint mode of a model
    with per-customer latents collapses the population), and so is ADVI (its
    mean-field steps drive dropout latents to underflow). Predictions use each
    customer's posterior latents, so they exist only for the fitted customers
    (others raise :class:`~bayesclv.errors.DataValidationError`);
    :meth:`expected_purchases_new_customer` and :meth:`simulate_population`
    draw from the population instead.

    Examples
    --------
    >>> import bayesclv as bc
    >>> rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), calibration_end="1997-09-30")
    >>> model = bc.ParetoGGGModel().fit(rfm)  # doctest: +SKIP
    >>> model.probability_alive().mean(("chain", "draw"))  # doctest: +SKIP
    """

    parameter_names = paretoggg.PARAMETERS
    latent_names = paretoggg.LATENTS
    # sampled: each latent's population mean and squared coefficient of variation (1 / shape), as for the
    # Pareto/NBD's dropout: in (shape, rate) the posterior is a curved ridge
    default_priors = {
        "k_mean": Prior("HalfNormal", sigma=5.0),
        "k_cv2": Prior("HalfNormal", sigma=10.0),
        "lam_mean": Prior("HalfNormal", sigma=1.0),
        "lam_cv2": Prior("HalfNormal", sigma=10.0),
        "mu_mean": Prior("HalfNormal", sigma=1.0),
        "mu_cv2": Prior("HalfNormal", sigma=10.0),
    }
    formulas = paretoggg
    display_name = "Pareto/GGG"
    data_columns = ("litt", "frequency", "recency", "T")
    likelihood_only_columns = ("litt",)  # the predictions given the latents depend on (x, t_x, T) only
    given_columns = ("T",)  # a simulated history keeps each customer's observation length
    validator = staticmethod(validate_timing_rfm)
    # given alive, the time since the last purchase still sets the wait for the next one (k != 1)
    alive_stand_ins: dict[str, str] = {}
    unsupported_methods = {"map": "the joint mode of the per-customer latents and the population collapses "
                                  "the population's spread",
                           "advi": "mean-field ADVI drives dropout latents to underflow and stops on NaN"}
    # three latents per customer: a low-rank mass-matrix update costs more than it saves
    nutpie_adaptation = "diag"

    # ----------------------------------------------------------------- model
    def _population(self, name: str, shape_name: str, rate_name: str) -> tuple[Any, Any]:
        """Latent ``name``'s population (shape, rate) from the priors of its mean and cv2, in the model on the stack."""
        mean = self.priors[f"{name}_mean"].create(f"{name}_mean")
        shape = pm.Deterministic(shape_name, 1.0 / self.priors[f"{name}_cv2"].create(f"{name}_cv2"))
        return shape, pm.Deterministic(rate_name, shape / mean)

    def _graph(self, df: pd.DataFrame, summed: bool) -> pm.Model:
        """Population, each customer's latents (centred where the data pin them down), the likelihood."""
        coords = {"customer_id": df["customer_id"].to_numpy()}
        frequency = df["frequency"].to_numpy(dtype=float)
        with pm.Model(coords=coords) as graph:
            cols = {c: pm.Data(c, df[c].to_numpy(dtype=float), dims="customer_id") for c in self.data_columns}
            latent = {}
            for name, names in zip(self.latent_names, _POPULATION, strict=True):
                shape, rate = self._population(name, *names)
                centred = frequency >= _CENTRED_FROM[name]
                latent[name] = pm.Deterministic(name, _gamma_latents(name, centred, shape, rate), dims="customer_id")
            if summed:
                total = paretoggg.summed_loglik(*(df[c].to_numpy(dtype=float) for c in self.data_columns),
                                                **latent, xp=PT)
            else:  # a per-customer PyTensor graph, for backends that cannot call the compiled kernel (JAX)
                total = self._loglik(cols, latent, PT).sum()
            pm.Potential("loglik", total)
        return graph

    def fit(self, data: Any, *, method: str = "gibbs", **kwargs: Any) -> ParetoGGGModel:
        """Fit the model; see :meth:`bayesclv.models.CLVModel.fit`.

        ``method="gibbs"`` (the default) is the compiled data-augmentation MCMC
        (:mod:`bayesclv.formulas._paretoggg_gibbs`): ``tune`` and ``draws`` count
        sweeps over every customer, ``thin`` keeps every ``thin``-th, chains run
        on ``cores`` threads; the settings not given are :data:`GIBBS_DEFAULTS`
        (2 chains of 1,000 tuning and 9,000 sweeps, every 9th kept), and the
        fit report warns when they did not converge (then raise ``draws``).
        ``method="nuts"`` samples the same posterior by NUTS on every latent (the
        reference; hundreds of leapfrog steps per draw on thousands of customers).
        """
        if method == "gibbs":
            kwargs = {**GIBBS_DEFAULTS, **kwargs}
        return super().fit(data, method=method, **kwargs)

    def _fit_gibbs(self, df: pd.DataFrame, *, draws: int, tune: int, chains: int, random_seed: int | None,
                   thin: int, cores: int) -> tuple[xr.DataTree, FitDiagnostics]:
        """The population and every customer's latents by the compiled sweeps; posterior as the NUTS fit's."""
        prior = gibbs_priors(self.priors, self.latent_names)
        columns = [df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "litt")]
        draws_out = sample(*columns, prior, draws=draws, tune=tune, chains=chains, thin=thin,
                           random_seed=random_seed, cores=cores)
        coords = {"chain": np.arange(chains), "draw": np.arange(draws // thin)}
        variables = {name: (("chain", "draw"), draws_out["population"][..., j])
                     for j, name in enumerate(self.parameter_names)}
        variables.update({name: (("chain", "draw", "customer_id"), draws_out[name]) for name in self.latent_names})
        posterior = xr.Dataset(variables, coords={**coords, "customer_id": df["customer_id"].to_numpy()})
        idata = xr.DataTree.from_dict({"posterior": posterior})
        diagnostics = compute_diagnostics(idata, list(self.parameter_names))
        diagnostics["method"] = "gibbs"
        return idata, diagnostics

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        return list(self.parameter_names)

    def _stored_variables(self, model: pm.Model) -> list[str]:
        return [*self.parameter_names, *self.latent_names]

    def sample_prior_predictive(self, data: Any, draws: int = 500, random_seed: int | None = None,
                                time_unit: str | None = None) -> xr.Dataset:
        """Draw the population parameters from the priors and simulate histories like ``data``'s from each draw.

        As :meth:`bayesclv.models.pooled.PooledModel.sample_prior_predictive`: the customers keep their
        observation lengths ``T``; ``frequency``, ``recency`` and ``litt`` are simulated (latents drawn
        from each draw's population).

        Returns
        -------
        xarray.Dataset
            ``t, gamma, r, alpha, s, beta`` with dim ``draw``; the simulated columns with dims
            ``(draw, customer_id)``.

        Raises
        ------
        bayesclv.errors.ArgumentError
            A prior draw whose customers would make more purchases than the simulator allows.
        """
        df = self._prepare(data, time_unit=time_unit)
        with pm.Model():
            for name, names in zip(self.latent_names, _POPULATION, strict=True):
                self._population(name, *names)
            prior = pm.sample_prior_predictive(draws=draws, var_names=list(self.parameter_names),
                                               random_seed=random_seed)
        ds = prior["prior"].to_dataset().isel(chain=0, drop=True)
        T = np.broadcast_to(df["T"].to_numpy(dtype=float)[None, :], (draws, len(df)))
        sim = paretoggg.simulate_population(T, *(ds[n].values[:, None] for n in self.parameter_names),
                                            rng=np.random.default_rng(random_seed))
        for name in ("frequency", "recency", "litt"):
            ds[name] = (("draw", "customer_id"), np.asarray(sim[name], dtype=float))
        return ds.assign_coords(customer_id=df["customer_id"].to_numpy())

    # ----------------------------------------------------------- predictions
    def _param_arrays(self, post: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        post = self.posterior if post is None else post
        return {n: post[n].values for n in self.latent_names}

    def _row_params(self, params: dict[str, Any], rows: pd.DataFrame, xp) -> dict[str, Any]:
        """Each row's own latents: the posterior draws of its customer."""
        position = rows[POSITION].to_numpy()
        return {n: params[n][..., position] for n in self.latent_names}

    def latents(self, data: Any | None = None) -> xr.Dataset:
        """Posterior of each customer's regularity ``k``, purchase rate ``lam`` and dropout rate ``mu``.

        Parameters
        ----------
        data : DataFrame, optional
            Fitted customers to return; default all.

        Returns
        -------
        xarray.Dataset
            One variable per latent, dims ``(chain, draw, customer_id)``.
        """
        return self._per_customer(self.latent_names, data)

    # ------------------------------------------------------------ population
    def _population_draws(self, sample: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of the six population parameters, flattened over chains, at ``sample``."""
        post = self.posterior
        index = slice(None) if sample is None else np.asarray(sample)
        return {n: post[n].values.reshape(-1)[index] for n in self.parameter_names}

    def _new_customer_draws(self, t: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], dict[str, Any]]:
        """Expected purchases of a new customer (just after the first purchase): each draw's expectation over
        the population's ``k, lambda, mu`` by a generalised Gauss-Laguerre rule per latent."""
        post = self.posterior
        pop = self._population_draws()
        values = np.empty((pop["t"].size, t.size))
        for i in range(pop["t"].size):
            axes = []
            for shape, rate in _POPULATION:
                nodes, weights = special.roots_genlaguerre(_LAGUERRE_NODES, pop[shape][i] - 1.0)
                axes.append((nodes / pop[rate][i], weights / weights.sum()))
            grids = np.meshgrid(*(a[0] for a in axes), indexing="ij")
            weight = np.einsum("i,j,l->ijl", *(a[1] for a in axes)).ravel()
            k, lam, mu = (g.ravel() for g in grids)
            values[i] = [weight @ paretoggg.expected_purchases(h, 0.0, 0.0, 0.0, k, lam, mu, given_alive=True)
                         for h in t]
        values = values.reshape(post.sizes["chain"], post.sizes["draw"], t.size)
        return values, ("chain", "draw"), {"chain": post["chain"].values, "draw": post["draw"].values}

    def simulate_population(self, sample: np.ndarray, data: Any | None = None,
                            random_seed: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Histories of new customers like ``data``'s from the population of each posterior sample.

        For each sample every customer gets new latents from that sample's
        population and a history over their own ``T``; see
        :meth:`bayesclv.models.contract.TransactionModel.simulate_population`.

        Returns
        -------
        dict of numpy.ndarray
            ``frequency``, ``recency`` and ``litt``, each ``(len(sample), customers)``.
        """
        df = self.prediction_data(data)
        rng = np.random.default_rng(random_seed)
        pop = self._population_draws(sample)
        T = np.broadcast_to(df["T"].to_numpy(dtype=float)[None, :], (len(pop["t"]), len(df)))
        sim = paretoggg.simulate_population(T, *(pop[n][:, None] for n in self.parameter_names), rng=rng)
        return {"frequency": sim["frequency"], "recency": sim["recency"], "litt": sim["litt"]}
