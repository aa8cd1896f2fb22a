"""Gamma-Gamma spend model class (Colombo & Jiang 1999; Fader, Hardie & Lee 2005)."""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import xarray as xr

from bayesclv.formulas import gammagamma
from bayesclv.models.base import CLVModel
from bayesclv.priors import Prior
from bayesclv.simulate import simulate_gammagamma

__all__ = ["GammaGammaModel"]


class GammaGammaModel(CLVModel):
    """Gamma-Gamma model of the mean value of repeat transactions.

    Fitted on customers with at least one repeat purchase (``frequency > 0``)
    and positive mean spend (repeat buyers whose purchases were all free are
    left out with a warning that names them);
    predictions cover every customer (those without repeat purchases get the
    population mean). Assumes spend is independent of purchase frequency:
    check with ``data[["frequency", "monetary_value"]].corr()``.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for ``p``, ``q``, ``gamma``. Defaults: ``p, q ~
        HalfNormal(50)``, ``gamma ~ HalfNormal(500)`` (a money scale, in the
        data's currency unit).
    """

    parameter_names = ("p", "q", "gamma")
    default_priors = {
        "p": Prior("HalfNormal", sigma=50.0),
        "q": Prior("HalfNormal", sigma=50.0),
        "gamma": Prior("HalfNormal", sigma=500.0),
    }
    data_columns = ("frequency", "monetary_value")
    requires_monetary = True
    display_name = "Gamma-Gamma"

    def _select_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        free = (df["frequency"] > 0) & (df["monetary_value"] == 0)
        if free.any():
            ids = df.loc[free, "customer_id"].tolist()
            warnings.warn(
                f"Gamma-Gamma: {len(ids)} repeat buyer(s) with mean spend 0 left out of the fit "
                f"(a gamma spend must be positive): customer_id {ids[:5]}"
                + (f" and {len(ids) - 5} more" if len(ids) > 5 else ""),
                UserWarning, stacklevel=4,
            )
        out = df[(df["frequency"] > 0) & ~free].reset_index(drop=True)
        out.attrs = dict(df.attrs)
        return out

    def _loglik(self, data, params, xp):
        return gammagamma.loglik(data["frequency"], data["monetary_value"], **params, xp=xp)

    def _simulate_population(self, df, params, rng):
        sim = simulate_gammagamma(df["frequency"].to_numpy(dtype=float)[None, :], **params, rng=rng)
        return {"monetary_value": sim["monetary_value"]}

    def expected_spend(self, data: Any | None = None) -> xr.DataArray:
        """Posterior of each customer's expected mean transaction value.

        Parameters
        ----------
        data : DataFrame, optional
            RFM frame with ``monetary_value``; default: the fitted data. Rows
            with ``frequency == 0`` get the population mean ``p gamma/(q-1)``.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, customer_id)``.
        """
        df = self._data_for_prediction(data)
        return self._over_customers(
            lambda c, p: gammagamma.expected_spend(c["frequency"], c["monetary_value"], **p),
            df, "expected_spend")

    def population_mean_spend(self) -> xr.DataArray:
        """Posterior of the population mean transaction value ``p gamma / (q - 1)``, dims ``(chain, draw)``."""
        post = self.posterior
        return xr.DataArray(gammagamma.population_mean_spend(post["p"], post["q"], post["gamma"]),
                            name="population_mean_spend")
