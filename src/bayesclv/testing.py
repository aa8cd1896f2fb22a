"""Helpers for tests and benchmarks of predictions (not needed to use the library)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["jittered_posterior"]


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
