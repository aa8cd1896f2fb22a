"""The PyMC graph of the individual-level models: per-customer latent rates, partially centred, with covariates.

Each customer ``i`` has two latent quantities ``theta_i`` (purchase and
dropout, on the log or logit scale) drawn from a bivariate normal population::

    theta_i ~ MvNormal(X_i B (+ group intercept), Sigma)

with customer covariates ``X_i`` (an intercept always), an LKJ prior on the
correlation in ``Sigma`` and, with ``group=``, group-specific intercepts
partially pooled around the population intercept. The latent rates are
``theta_i = mean_i + L z_i`` with ``z_i ~ N(0, I)`` and ``L`` the Cholesky
factor of ``Sigma``; both innovations are sampled partially centred, with a
weight that grows with what the customer's history says about the latent
(:func:`centring_weights`, :func:`dropout_centring_weights`): the customers
whose rates the data pin down are nearly centred, the others non-centred, which
removes the funnel between them and the population sds. Every per-customer
input is a data container with dim ``customer_id``, so a minibatch can be
swapped in (:mod:`bayesclv.models.variational`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from scipy import optimize, special

from bayesclv.formulas import NP, PT
from bayesclv.models.pooling import centred_groups, group_codes, group_labels, partially_centred

__all__ = ["PROCESSES", "centring_weights", "customer_arrays", "dropout_centring_weights", "group_evidence",
           "group_offsets", "latent_model", "offset_start", "population_coefficients", "population_coords",
           "population_parameters", "standardisation"]

PROCESSES = ("purchase", "dropout")
_CENTRING_PRIOR_SD = 1.5  # a typical population sd of log purchase rates
_DROPOUT_CENTRING_WEIGHT = 0.5  # for customers with repeat purchases; see dropout_centring_weights


def centring_weights(frequency: np.ndarray, prior_sd: float = _CENTRING_PRIOR_SD) -> np.ndarray:
    """Per-customer weight ``w`` of the partially centred purchase latent (0: non-centred, 1: centred).

    The purchase latent ``theta = m + s z`` is sampled as ``u ~ Normal(w m, s^w)``
    with ``theta = m + s^(1-w) (u - w m)``, which leaves the model unchanged for
    any ``w`` in ``[0, 1]`` (Papaspiliopoulos, Roberts & Skold 2007). Sampling
    is easiest with ``w = I s^2 / (1 + I s^2)``, ``I`` the information of the
    data about ``theta`` (Gorinova, Moore & Hoffman 2020): for a Poisson count of
    ``x`` purchases ``I`` is about ``x``. ``s`` is not known before the fit, so a
    typical population sd ``prior_sd`` stands in for it.

    Parameters
    ----------
    frequency : numpy.ndarray
        Repeat purchases ``x`` of each customer.
    prior_sd : float, default 1.5
        Stand-in for the population sd of the log purchase rate.

    Returns
    -------
    numpy.ndarray
        Weights in ``[0, 1)``, 0 for customers without repeat purchases.
    """
    info = np.asarray(frequency, dtype=float) * prior_sd**2
    return info / (1.0 + info)


def dropout_centring_weights(frequency: np.ndarray) -> np.ndarray:
    """Per-customer weight of the partially centred dropout latent (see :func:`centring_weights`).

    A customer without repeat purchases says almost nothing about their own
    dropout rate (for the BG/NBD nothing at all), so their latent stays
    non-centred (``w = 0``). A customer with repeat purchases contributes about
    one observation of the lifetime, whatever the count: the posterior variance
    of their standardised innovation is about one half, and ``w = 1 - variance``
    (Gorinova, Moore & Hoffman 2020) gives ``w = 0.5`` (the measurements are in
    ``validation/results/design_measurements.md``).

    Parameters
    ----------
    frequency : numpy.ndarray
        Repeat purchases ``x`` of each customer.

    Returns
    -------
    numpy.ndarray
        0.5 for customers with repeat purchases, 0 for the others.
    """
    return np.where(np.asarray(frequency, dtype=float) > 0, _DROPOUT_CENTRING_WEIGHT, 0.0)


def standardisation(population: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (ddof 1) of each covariate in ``population``: sampling sees ``(x - mean) / sd``."""
    X = population[covariates].to_numpy(dtype=float)
    return X.mean(axis=0), X.std(axis=0, ddof=1)


def customer_arrays(model: Any, df: pd.DataFrame, population: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-customer inputs of the PyMC model: the data columns, standardised covariates, group codes and
    centring weights of the customers of ``df``, standardised and coded as in ``population``."""
    arrays = {c: df[c].to_numpy(dtype=float) for c in model.data_columns}
    if model.covariates:
        centre, scale = standardisation(population, model.covariates)
        arrays["standardised"] = (df[model.covariates].to_numpy(dtype=float) - centre) / scale
    if model.group is not None:
        arrays["group_code"] = group_codes(df, model.group, group_labels(population, model.group))
    arrays["purchase_weight"] = centring_weights(arrays["frequency"])
    arrays["dropout_weight"] = dropout_centring_weights(arrays["frequency"])
    return arrays


def population_coords(model: Any, population: pd.DataFrame) -> dict[str, list]:
    """Coordinates of the population parameters (processes, covariates, groups)."""
    coords = {"process": list(PROCESSES), "covariate": ["intercept", *model.covariates], "slope": model.covariates}
    if model.group is not None:
        coords["group"] = [str(g) for g in group_labels(population, model.group)]
    return coords


def population_coefficients(model: Any, population: pd.DataFrame) -> tuple[Any, Any]:
    """Intercepts at the covariate means and slopes per sd of a covariate, created in the current PyMC
    model, with the per-unit ``coefficients`` (rows: intercept, covariates) as a deterministic.

    Sampling the intercept at the covariates' means and the slopes per sd keeps the two
    nearly uncorrelated in the posterior; users read per-unit effects. Returns
    ``(intercept, slopes)``, ``slopes`` None without covariates.
    """
    intercept = model.priors["intercept"].create("intercept", dims="process")
    slopes = None
    if model.covariates:
        centre, scale = standardisation(population, model.covariates)
        slopes = model.priors["slopes"].create("slopes", dims=("slope", "process"))
        per_unit = slopes / scale[:, None]
        pm.Deterministic("coefficients", pt.concatenate(
            [(intercept - pt.as_tensor_variable(centre) @ per_unit)[None, :], per_unit]),
            dims=("covariate", "process"))
    else:
        pm.Deterministic("coefficients", intercept[None, :], dims=("covariate", "process"))
    return intercept, slopes


def _group_estimates(model: Any, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One group's two latent means as if every customer had the same rates (maximum likelihood) and their
    standard errors, robust to the customers' heterogeneity (sandwich: per-customer scores about the
    curvature of the total), by central differences of the family's per-customer log-likelihood."""
    n = len(data["frequency"])

    def per_customer(theta: np.ndarray) -> np.ndarray:
        rates = model._natural_rates(np.full(n, theta[0]), np.full(n, theta[1]), np.exp, special.expit)
        return model._loglik(data, dict(zip(model.rate_names, rates, strict=True)), NP)

    start = np.array([np.log((data["frequency"].sum() + 0.5 * n) / data["T"].sum()), -2.0])
    res = optimize.minimize(lambda t: -per_customer(t).sum(), start, method="L-BFGS-B",
                            bounds=[(-15.0, 8.0), (-15.0, 8.0)])
    theta, steps = res.x, 1e-4 * np.eye(2)

    def scores(t: np.ndarray) -> np.ndarray:  # (customers, 2)
        return np.column_stack([(per_customer(t + e) - per_customer(t - e)) / 2e-4 for e in steps])

    hessian = np.column_stack([(scores(theta + e).sum(axis=0) - scores(theta - e).sum(axis=0)) / 2e-4 for e in steps])
    at_mode = scores(theta)
    try:
        inverse = np.linalg.inv(-(hessian + hessian.T) / 2)
    except np.linalg.LinAlgError:
        return theta, np.full(2, np.inf)
    variance = np.diag(inverse @ (at_mode.T @ at_mode) @ inverse)
    return theta, np.where(variance > 0, np.sqrt(np.abs(variance)), np.inf)


def group_evidence(model: Any, population: pd.DataFrame, spend_column: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """What the data say about each group's intercepts before the fit: estimates and standard errors.

    Per group, the two latent means of the family with the same rates for all
    of the group's customers (:func:`_group_estimates`); with ``spend_column``
    (the joint spend models' mean log value of a customer's repeat purchases) a
    third column, the mean of that column over the group's customers with
    repeat purchases and its standard error. These are what
    :func:`~bayesclv.models.pooling.centred_groups` weighs the groups' spread against.

    Returns
    -------
    tuple of numpy.ndarray
        ``(estimates, standard_errors)``, each ``(groups, processes)``.
    """
    codes = group_codes(population, model.group, group_labels(population, model.group))
    columns = {c: population[c].to_numpy(dtype=float) for c in model.data_columns}
    estimates, errors = [], []
    for g in range(int(codes.max()) + 1):
        rows = codes == g
        m, se = _group_estimates(model, {c: v[rows] for c, v in columns.items()})
        if spend_column is not None:
            spend = population.loc[rows & (columns["frequency"] > 0), spend_column].to_numpy(dtype=float)
            m = np.append(m, spend.mean() if len(spend) else 0.0)
            se = np.append(se, spend.std(ddof=1) / np.sqrt(len(spend)) if len(spend) > 1 else np.inf)
        estimates.append(m)
        errors.append(se)
    return np.array(estimates), np.array(errors)


def group_offsets(model: Any, population: pd.DataFrame, spend_column: str | None = None) -> tuple[Any, Any]:
    """Each group's intercept offsets ``(group, process)`` around the population intercepts, created in the
    current PyMC model, partially pooled by ``group_sd`` (one per process), and which are centred.

    Each offset is centred or not by :func:`~bayesclv.models.pooling.centred_groups`
    from :func:`group_evidence` (``spend_column``: see there) and the prior of
    ``group_sd``: centred where the data pin the group's intercept down better
    than the groups differ, non-centred where the groups hardly differ or the
    group is small (see :func:`~bayesclv.models.pooling.partially_centred`).
    Returns ``(None, None)`` without ``group``.
    """
    if model.group is None:
        return None, None
    prior = model.priors["group_sd"]
    group_sd = prior.create("group_sd", dims="process")
    estimates, errors = group_evidence(model, population, spend_column)
    centred = centred_groups(estimates, errors, float(prior.parameters.get("sigma", 1.0)))
    offset = partially_centred("group_z", group_sd, centred, ("group", "process"))
    return pm.Deterministic("group_offset", offset, dims=("group", "process")), centred


def offset_start(offset: np.ndarray, centred: np.ndarray) -> dict[str, np.ndarray]:
    """Values of ``group_sd`` and ``group_z`` that give the offsets ``offset`` (a start for the sampler)."""
    sd = np.maximum(offset.std(axis=0), 0.05)
    return {"group_sd": sd, "group_z": offset / sd ** (1.0 - np.asarray(centred, dtype=float))}


def population_parameters(model: Any, population: pd.DataFrame) -> dict[str, Any]:
    """The population parameters of an individual-level model, created in the current PyMC model.

    Intercepts at the covariate means, slopes per sd of a covariate (with the
    per-unit ``coefficients`` as a deterministic), group offsets (each centred
    or not: :func:`group_offsets`), the sds and correlation of the two latent
    quantities under an LKJ prior. ``population`` standardises the covariates
    and is the evidence the offsets' parameterisation is chosen from.

    Returns
    -------
    dict
        ``intercept`` (2,), ``slopes`` (covariates, 2) or None, ``group_offset``
        (groups, 2) or None, ``group_centred`` (groups, 2) booleans or None,
        ``chol`` (the 2 x 2 Cholesky factor of ``Sigma``), ``sigma`` (2,) and ``correlation``.
    """
    intercept, slopes = population_coefficients(model, population)
    offset, centred = group_offsets(model, population)
    sigma_prior = model.priors["sigma"]
    sd_dist = getattr(pm, sigma_prior.distribution).dist(**sigma_prior.parameters, shape=2)
    chol, corr, sigma = pm.LKJCholeskyCov("chol", eta=model.lkj_eta, n=2, sd_dist=sd_dist,
                                          compute_corr=True, store_in_trace=False)
    return {"intercept": intercept, "slopes": slopes, "group_offset": offset, "group_centred": centred, "chol": chol,
            "sigma": pm.Deterministic("sigma", sigma, dims="process"),
            "correlation": pm.Deterministic("correlation", corr[0, 1])}


def latent_model(model: Any, df: pd.DataFrame, population: pd.DataFrame) -> pm.Model:
    """The PyMC model of ``model`` (an individual-level model) for the customers of ``df``.

    ``population`` standardises the covariates and names the groups (the full
    data when ``df`` is a minibatch, which is not validated on its own: a batch
    may hold one value of a covariate that varies in the population).
    """
    coords = {"customer_id": df["customer_id"].to_numpy(), **population_coords(model, population)}
    arrays = customer_arrays(model, df, population)
    with pm.Model(coords=coords) as graph:
        inputs = {name: pm.Data(name, values, dims=("customer_id", "slope")[:values.ndim])
                  for name, values in arrays.items()}
        population_params = population_parameters(model, population)
        intercept, slopes = population_params["intercept"], population_params["slopes"]
        mean = intercept[None, :]
        if model.covariates:
            # elementwise, not a matrix product: no BLAS call in the compiled graph
            mean = mean + sum(inputs["standardised"][:, k, None] * slopes[k][None, :]
                              for k in range(len(model.covariates)))
        if model.group is not None:
            mean = mean + population_params["group_offset"][inputs["group_code"]]
        chol = population_params["chol"]
        # latents partially centred (weights w_i from the customer's purchase count);
        # z = standard-normal innovations of theta = mean + L z
        w = inputs["purchase_weight"]
        scale_w = chol[0, 0] ** w
        purchase = pm.Normal("purchase_innovation", w * mean[:, 0], scale_w, dims="customer_id")
        z0 = (purchase - w * mean[:, 0]) / scale_w
        # the dropout innovation, given the purchase one, partially centred the same way
        w1 = inputs["dropout_weight"]
        conditional_mean = mean[:, 1] + chol[1, 0] * z0
        scale_w1 = chol[1, 1] ** w1
        dropout = pm.Normal("dropout_innovation", w1 * conditional_mean, scale_w1, dims="customer_id")
        z1 = (dropout - w1 * conditional_mean) / scale_w1
        # mean + z L^T written out elementwise (a 2x2 factor needs no matrix product)
        latent = [
            pm.Deterministic(model.latent_names[0], mean[:, 0] + chol[0, 0] * z0, dims="customer_id"),
            pm.Deterministic(model.latent_names[1], mean[:, 1] + chol[1, 0] * z0 + chol[1, 1] * z1,
                             dims="customer_id"),
        ]
        rates = dict(zip(model.rate_names, model._natural_rates(*latent, pt.exp, pt.sigmoid), strict=True))
        cols = {c: inputs[c] for c in model.data_columns}
        pm.Potential("loglik", model._loglik(cols, rates, PT).sum())
    return graph
