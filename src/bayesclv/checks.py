"""Model checks: posterior predictive check of the frequency distribution and
simulation-based calibration (SBC).

:func:`frequency_ppc` compares the observed number of customers with 0, 1, 2,
... repeat purchases in the calibration period with the same histogram of data
simulated from the model's population process
(:meth:`~bayesclv.models.contract.TransactionModel.simulate_population`) with
posterior draws: each posterior draw gives one simulated histogram, so the
predicted counts come with bands.

SBC (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, "Validating Bayesian
inference algorithms with simulation-based calibration"): draw parameters from
the prior, simulate a data set from them, fit, and record the rank of the true
value among ``L`` (nearly independent) posterior draws. If the fit is correct
the rank is uniform on ``0..L``. :func:`sbc_rank` and :func:`rank_uniformity`
are the pure pieces; :func:`sbc_simulation` runs one replication.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

import bayesclv.chunks as chunks
from bayesclv.arguments import check_whole
from bayesclv.models.base import CLVModel
from bayesclv.models.contract import TransactionModel

__all__ = [
    "frequency_histogram",
    "frequency_ppc",
    "rank_uniformity",
    "sbc_rank",
    "sbc_simulation",
    "thin_draws",
]

# --------------------------------------------------------------------------- PPC
def frequency_histogram(frequency: Any, max_count: int = 7) -> np.ndarray:
    """Number of customers with 0, 1, ..., ``max_count - 1`` and ``max_count``-or-more repeat purchases.

    Works along the last axis, so a ``(draws, customers)`` array gives one
    histogram per draw.

    Parameters
    ----------
    frequency : array_like
        Repeat-purchase counts; the last axis runs over customers.
    max_count : int, default 7
        The last bin collects every count ``>= max_count``.

    Returns
    -------
    numpy.ndarray
        Shape ``frequency.shape[:-1] + (max_count + 1,)``, integer counts.

    Examples
    --------
    >>> frequency_histogram([0, 0, 1, 3, 9, 12], max_count=3).tolist()
    [2, 1, 0, 3]
    """
    check_whole("max_count", max_count)
    x = np.minimum(np.asarray(frequency), max_count).astype(np.int64)
    onehot = x[..., None] == np.arange(max_count + 1)
    return onehot.sum(axis=-2)


def frequency_ppc(model: TransactionModel, data: Any | None = None, *, max_count: int = 7,
                  n_draws: int = 500, random_seed: int | None = None) -> xr.Dataset:
    """Posterior predictive check of the calibration-period frequency distribution.

    For each of ``n_draws`` posterior draws (all draws of a MAP fit repeated),
    the model's population simulator generates a calibration history for every
    customer, with the customer's own observation length ``T``; the histogram
    of simulated repeat purchases (0, 1, ..., ``max_count``+) is one draw of
    the predicted histogram. Simulation runs in chunks of draws so that at most
    about two million draw x customer values exist at once.

    Parameters
    ----------
    model : TransactionModel
        A fitted purchase-count model (population or individual-level).
    data : DataFrame, optional
        RFM frame; default: the fitted data.
    max_count : int, default 7
        The last bin holds customers with ``max_count`` or more repeat purchases.
    n_draws : int, default 500
        Simulated data sets (posterior draws used, with replacement when the
        posterior has fewer draws).
    random_seed : int, optional
        Seed of the draw selection and the simulation.

    Returns
    -------
    xarray.Dataset
        ``observed`` (dim ``frequency``), ``predicted`` (dims ``draw,
        frequency``: simulated customer counts) and ``expected`` (mean of
        ``predicted``). The coordinate ``frequency`` holds 0..``max_count``;
        ``attrs["max_count"]`` marks the last bin as open.
    """
    if not isinstance(model, TransactionModel):
        raise TypeError(f"frequency_ppc needs a purchase-count model, got {type(model).__name__}")
    check_whole("n_draws", n_draws)
    df = model.prediction_data(data)
    rng = np.random.default_rng(random_seed)
    post = model.posterior
    n_post = post.sizes["chain"] * post.sizes["draw"]
    if n_post >= n_draws:
        pick = np.sort(rng.choice(n_post, size=n_draws, replace=False))
    else:
        pick = rng.integers(0, n_post, size=n_draws)
    step = chunks.chunk_length(len(df))
    predicted = np.empty((n_draws, max_count + 1), dtype=np.int64)
    for start in range(0, n_draws, step):
        sim = model.simulate_population(pick[start:start + step], df, random_seed=rng)
        predicted[start:start + step] = frequency_histogram(sim["frequency"], max_count)
    observed = frequency_histogram(df["frequency"].to_numpy(dtype=float), max_count)
    bins = np.arange(max_count + 1)
    return xr.Dataset(
        {"observed": ("frequency", observed),
         "predicted": (("draw", "frequency"), predicted),
         "expected": ("frequency", predicted.mean(axis=0))},
        coords={"frequency": bins, "draw": np.arange(n_draws)},
        attrs={"max_count": int(max_count), "customers": len(df)},
    )


# --------------------------------------------------------------------------- SBC
def thin_draws(draws: Any, n_keep: int) -> np.ndarray:
    """``n_keep`` evenly spaced draws of a flattened chain (thinning to cut autocorrelation).

    Parameters
    ----------
    draws : array_like
        Posterior draws, any shape (flattened chain by chain).
    n_keep : int
        Number of draws to keep (``L`` in Talts et al.).

    Returns
    -------
    numpy.ndarray
        1-d array of ``n_keep`` draws.
    """
    flat = np.asarray(draws, dtype=float).ravel()
    if n_keep < 1 or n_keep > flat.size:
        raise ValueError(f"cannot keep {n_keep} of {flat.size} draws")
    idx = np.floor(np.arange(n_keep) * flat.size / n_keep).astype(int)
    return flat[idx]


def sbc_rank(draws: Any, true_value: float) -> int:
    """SBC rank statistic: how many posterior draws lie below the true value.

    With ``L`` draws the rank is in ``0..L`` and, for a correct posterior,
    uniform on it.

    Examples
    --------
    >>> sbc_rank([0.1, 0.5, 0.9, 0.3], 0.4)
    2
    """
    d = np.asarray(draws, dtype=float)
    if not np.isfinite(true_value) or not np.isfinite(d).all():
        raise ValueError("sbc_rank needs finite draws and a finite true value")
    return int(np.sum(d < true_value))


def rank_uniformity(ranks: Any, n_draws: int, n_bins: int = 20, random_seed: int = 0) -> dict[str, float]:
    """Tests of uniformity of SBC ranks on ``0..n_draws``.

    * chi-square: ranks grouped into ``n_bins`` equal-width bins of the
      ``n_draws + 1`` possible values (``n_draws + 1`` must be divisible by
      ``n_bins``); the statistic has ``n_bins - 1`` degrees of freedom.
    * Kolmogorov-Smirnov: on the randomised ranks ``(rank + U) / (n_draws + 1)``,
      ``U ~ Uniform(0, 1)``, exactly Uniform(0, 1) under the null (the
      randomisation removes the discreteness that makes a plain KS test of
      integer ranks conservative).

    Parameters
    ----------
    ranks : array_like of int
        One rank per simulation.
    n_draws : int
        ``L``, the number of posterior draws the ranks were computed from.
    n_bins : int, default 20
        Bins of the chi-square test.
    random_seed : int, default 0
        Seed of the KS randomisation.

    Returns
    -------
    dict
        ``n_sims``, ``chi2``, ``chi2_df``, ``chi2_pvalue``, ``ks``, ``ks_pvalue``.
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError("ranks must be a non-empty 1-d array")
    if ((r < 0) | (r > n_draws) | (r != np.round(r))).any():
        raise ValueError(f"ranks must be whole numbers in 0..{n_draws}")
    if (n_draws + 1) % n_bins:
        raise ValueError(f"n_draws + 1 = {n_draws + 1} is not divisible by n_bins = {n_bins}")
    width = (n_draws + 1) // n_bins
    observed = np.bincount((r // width).astype(int), minlength=n_bins)
    expected = r.size / n_bins
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    u = (r + np.random.default_rng(random_seed).random(r.size)) / (n_draws + 1)
    ks = stats.kstest(u, "uniform")
    return {
        "n_sims": int(r.size),
        "chi2": chi2,
        "chi2_df": n_bins - 1,
        "chi2_pvalue": float(stats.chi2.sf(chi2, n_bins - 1)),
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }


def sbc_simulation(model_cls: Callable[[], CLVModel], data: pd.DataFrame, truth: dict[str, float],
                   simulated: dict[str, np.ndarray], *, n_ranks: int = 99, method: str = "nuts",
                   fit_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One SBC replication: fit ``model_cls`` (default priors) to simulated data, rank the truth.

    Parameters
    ----------
    model_cls : callable
        A model class (or a factory of models, e.g. ``functools.partial(BetaGeoCNBDModel, k=2)``)
        called without arguments: default priors.
    data : DataFrame
        RFM frame supplying the fixed columns (``T``, or ``frequency`` for
        spend models) and ``attrs["time_unit"]``.
    truth : dict of str to float
        The parameter values the data were simulated from (a prior draw).
    simulated : dict of str to numpy.ndarray
        The simulated data columns, replacing those of ``data``.
    n_ranks : int, default 99
        ``L``: posterior draws kept (evenly thinned) for the ranks.
    method : str, default "nuts"
        The fit method calibrated, e.g. ``"gibbs"`` for the Pareto/GGG's sampler.
    fit_kwargs : dict, optional
        Passed to ``fit``.

    Returns
    -------
    dict
        ``rank_<parameter>`` per parameter, and the fit's ``max_r_hat``,
        ``min_ess_bulk``, ``divergences``.
    """
    df = data.copy()
    for col, values in simulated.items():
        df[col] = np.asarray(values, dtype=float)
    kwargs = {"draws": 500, "tune": 500, "chains": 2, "cores": 1, "progressbar": False, **(fit_kwargs or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits warn about ESS by design; diagnostics are recorded
        model = model_cls().fit(df, method=method, **kwargs)
    out: dict[str, Any] = {}
    for name in model.parameter_names:
        kept = thin_draws(model.posterior[name].values, n_ranks)
        out[f"rank_{name}"] = sbc_rank(kept, truth[name])
    diag = model.diagnostics
    out.update(max_r_hat=diag["max_r_hat"], min_ess_bulk=diag["min_ess_bulk"], divergences=diag["divergences"])
    return out
