"""Helpers for tests, benchmarks and validation scripts (not needed to use the library)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.simulate import simulate_hierarchical_paretonbd

__all__ = ["SEGMENT_COEFFICIENTS", "SEGMENT_COVARIANCE", "SEGMENT_SHIFTS", "jittered_posterior", "segmented_customers"]

SEGMENT_COEFFICIENTS = np.array([[-1.6, -3.0], [0.5, -0.4]])  # rows intercept, x; columns purchase, dropout
SEGMENT_COVARIANCE = np.array([[0.6**2, 0.0], [0.0, 0.6**2]])
SEGMENT_SHIFTS = np.array([[-0.5, 0.4], [0.0, 0.0], [0.5, -0.4]])  # each segment's intercept shift


def jittered_posterior(model: Any, *, chains: int = 4, draws: int = 1000, jitter: float = 0.01,
                       random_seed: int | np.random.Generator | None = None) -> Any:
    """Give a MAP-fitted population model ``chains x draws`` draws jittered around its estimate.

    Each parameter's draws are ``estimate * exp(jitter * N(0, 1))``. Prediction
    cost depends on the number of draws, not on their values, so this stands
    in for a NUTS posterior when timing or testing predictions, in seconds
    instead of minutes. The model is changed in place and returned; it
    predicts like a NUTS fit (``fit_method = "nuts"``).

    Parameters
    ----------
    model : bayesclv.models.CLVModel
        A population model (BG/NBD, Pareto/NBD, Gamma-Gamma) fitted with ``method="map"``.
    chains, draws : int
        Shape of the posterior made.
    jitter : float, default 0.01
        Multiplicative spread (sd on the log scale).
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    CLVModel
        ``model``, with the new posterior.
    """
    rng = np.random.default_rng(random_seed)
    point = model.posterior
    data = {name: (("chain", "draw"), float(value.values.ravel()[0])
                   * np.exp(jitter * rng.standard_normal((chains, draws))))
            for name, value in point.data_vars.items()}
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(
        data, coords={"chain": np.arange(chains), "draw": np.arange(draws)})})
    model.fit_method = "nuts"
    return model


def segmented_customers(sizes: list[int], seed: int = 5, shifts: np.ndarray = SEGMENT_SHIFTS) -> pd.DataFrame:
    """Customers of the hierarchical Pareto/NBD in segments ``s0, s1, ...``, the intercepts of segment ``g``
    shifted by ``shifts[g]``.

    Each customer has a standard-normal covariate ``x`` and ``T`` uniform on 30-52 weeks (whole weeks); the
    log purchase and dropout rates are normal around ``[1, x] @ (SEGMENT_COEFFICIENTS + shift)`` with covariance
    ``SEGMENT_COVARIANCE``. The grouped-fit tests and ``validation/fit_reproducibility.py`` fit the same customers.

    Parameters
    ----------
    sizes : list of int
        Customers per segment.
    seed : int, default 5
        Seed of the draws.
    shifts : numpy.ndarray, default SEGMENT_SHIFTS
        ``(len(sizes), 2)`` intercept shifts (purchase, dropout).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T, x, segment``; ``attrs["time_unit"] = "W"``.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for g, n in enumerate(sizes):
        x = rng.normal(size=n)
        T = np.round(rng.uniform(30, 52, size=n))
        B = SEGMENT_COEFFICIENTS + np.vstack([shifts[g], np.zeros(2)])
        sim = simulate_hierarchical_paretonbd(T, B, SEGMENT_COVARIANCE, covariates=np.column_stack([np.ones(n), x]),
                                              rng=rng)
        frames.append(pd.DataFrame({"frequency": sim["frequency"], "recency": sim["recency"], "T": T, "x": x,
                                    "segment": f"s{g}"}))
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "customer_id", [f"c{i}" for i in range(len(df))])
    df.attrs["time_unit"] = "W"
    return df
