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

from bayesclv.formulas import PT
from bayesclv.models.pooling import group_codes, group_labels

__all__ = ["CENTRED_GROUP_SIZE", "PROCESSES", "centring_weights", "customer_arrays", "dropout_centring_weights",
           "group_offsets", "latent_model", "population_coefficients", "population_coords", "population_parameters",
           "standardisation"]

PROCESSES = ("purchase", "dropout")
_CENTRING_PRIOR_SD = 1.5  # a typical population sd of log purchase rates
_DROPOUT_CENTRING_WEIGHT = 0.5  # for customers with repeat purchases; see dropout_centring_weights
#: customers in the smallest group from which the group offsets are centred: a group's mean log rate is
#: then known to about sigma / sqrt(50) ~ 0.15, below the spread of the group sds it is sampled with
CENTRED_GROUP_SIZE = 50


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


def group_offsets(model: Any, population: pd.DataFrame) -> Any:
    """Each group's intercept offsets ``(group, process)`` around the population intercepts, created in the
    current PyMC model (None without ``group``), partially pooled by ``group_sd`` (one per process).

    Centred (``group_offset ~ Normal(0, group_sd)``) when every group of
    ``population`` holds at least ``CENTRED_GROUP_SIZE`` customers, non-centred
    (``group_z * group_sd``) otherwise: see :func:`population_parameters`.
    """
    if model.group is None:
        return None
    group_sd = model.priors["group_sd"].create("group_sd", dims="process")
    if population[model.group].value_counts().min() >= CENTRED_GROUP_SIZE:
        return pm.Normal("group_offset", 0.0, group_sd, dims=("group", "process"))
    group_z = pm.Normal("group_z", 0.0, 1.0, dims=("group", "process"))
    return pm.Deterministic("group_offset", group_z * group_sd, dims=("group", "process"))


def population_parameters(model: Any, population: pd.DataFrame) -> dict[str, Any]:
    """The population parameters of an individual-level model, created in the current PyMC model.

    Intercepts at the covariate means, slopes per sd of a covariate (with the
    per-unit ``coefficients`` as a deterministic), group offsets, the sds and
    correlation of the two latent quantities under an LKJ prior.
    ``population`` standardises the covariates and counts each group's
    customers. The group offsets are centred (``group_offset ~ Normal(0,
    group_sd)``) when every group holds at least ``CENTRED_GROUP_SIZE``
    customers, and non-centred (``group_z * group_sd``) otherwise: the data
    pin a large group's offset down, and the non-centred ``group_z = offset /
    group_sd`` then follows ``group_sd`` along a funnel that NUTS cannot
    cross; a small group's offset is its prior's, and there the centred form
    has the funnel.

    Returns
    -------
    dict
        ``intercept`` (2,), ``slopes`` (covariates, 2) or None, ``group_offset``
        (groups, 2) or None, ``chol`` (the 2 x 2 Cholesky factor of ``Sigma``),
        ``sigma`` (2,) and ``correlation``.
    """
    intercept, slopes = population_coefficients(model, population)
    offset = group_offsets(model, population)
    sigma_prior = model.priors["sigma"]
    sd_dist = getattr(pm, sigma_prior.distribution).dist(**sigma_prior.parameters, shape=2)
    chol, corr, sigma = pm.LKJCholeskyCov("chol", eta=model.lkj_eta, n=2, sd_dist=sd_dist,
                                          compute_corr=True, store_in_trace=False)
    return {"intercept": intercept, "slopes": slopes, "group_offset": offset, "chol": chol,
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
