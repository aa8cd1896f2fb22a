"""BG/CNBD-k and MBG/CNBD-k model classes (Reutterer, Platzer & Schroder 2021), and the choice of ``k``."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.arguments import check_whole
from bayesclv.data.timing import validate_timing_rfm
from bayesclv.formulas import cnbd
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["BetaGeoCNBDModel", "ModifiedBetaGeoCNBDModel"]

_SELECT_METHODS = ("map", "nuts")


class _CNBDModel(ResidualPredictions, PooledTransactionModel):
    """The (M)BG/CNBD-k declaration shared by both variants; ``modified`` tells them apart."""

    parameter_names = cnbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "a": Prior("HalfNormal", sigma=50.0),
        "b": Prior("HalfNormal", sigma=50.0),
    }
    formulas = cnbd
    data_columns = ("litt", "frequency", "recency", "T")
    likelihood_only_columns = ("litt",)  # a constant of the likelihood; predictions depend on (x, t_x, T)
    validator = staticmethod(validate_timing_rfm)
    modified: ClassVar[bool] = False
    variant: ClassVar[str] = ""

    def __init__(self, priors: dict[str, Prior] | None = None, *, k: int, group: str | None = None,
                 pooling: str | None = None):
        self.k = check_whole("k", k)
        self._formula_options = {"k": self.k, "modified": self.modified}
        super().__init__(priors, group=group, pooling=pooling)

    @property
    def display_name(self) -> str:
        return f"{self.variant}/CNBD-{self.k}"

    @property
    def alive_stand_ins(self) -> dict[str, str]:
        # given alive, the phases of the next purchase already done depend on T - t_x: for k > 1 the
        # future depends on recency too, and only the Poisson case (k = 1) forgets it
        return {"recency": "T"} if self.k == 1 else {}

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "k": self.k}

    @classmethod
    def select_k(cls, data: Any, *, k_max: int = 8, method: str = "map", priors: dict[str, Prior] | None = None,
                 time_unit: str | None = None, **fit_kwargs: Any) -> pd.DataFrame:
        """Fit ``k = 1 .. k_max`` and tabulate the criterion to choose the regularity ``k`` by.

        The likelihoods of different ``k`` describe the same observations (the
        purchase times: each includes the inter-purchase-time constant
        ``(k-1) litt - x log((k-1)!)``), so they compare directly; the number
        of parameters does not change with ``k``.

        Parameters
        ----------
        data : DataFrame
            RFM frame with ``litt`` (``rfm_summary`` adds it).
        k_max : int, default 8
            Largest ``k`` fitted.
        method : {"map", "nuts"}, default "map"
            ``"map"``: the point estimates and the total log-likelihood there
            (fast). ``"nuts"``: the posterior means and PSIS-LOO
            (``arviz_stats.loo``) of NUTS fits.
        priors : dict of str to Prior, optional
            Priors of every fit.
        time_unit : str, optional
            Unit of the data when the frame does not record it.
        **fit_kwargs
            Passed to each ``fit`` (``draws``, ``chains``, ``random_seed``, ...).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``k``: ``r, alpha, a, b`` (MAP or posterior mean), then
            for MAP ``loglik`` and ``loglik_diff`` (best minus this), for NUTS
            ``elpd_loo, se, p_loo, elpd_diff, se_diff`` (the standard error of
            the difference from the pointwise differences), ``max_pareto_k`` and
            ``max_r_hat``. ``attrs["best_k"]`` is the ``k`` with the highest
            criterion, ``attrs["criterion"]`` its name.

        Examples
        --------
        >>> table = BetaGeoCNBDModel.select_k(rfm, k_max=4)  # doctest: +SKIP
        >>> BetaGeoCNBDModel(k=table.attrs["best_k"]).fit(rfm)  # doctest: +SKIP
        """
        k_max = check_whole("k_max", k_max)
        if method not in _SELECT_METHODS:
            raise ValueError(f"method must be one of {_SELECT_METHODS}, got {method!r}")
        df = cls.validator(data, time_unit=time_unit)
        fit_kwargs = {"progressbar": False, **fit_kwargs}
        rows, pointwise = {}, {}
        for k in range(1, k_max + 1):
            model = cls(priors, k=k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # each fit's diagnostics are in the table
                model.fit(df, method=method, time_unit=time_unit, **fit_kwargs)
            row = model.summary()["mean"].to_dict()
            if method == "map":
                row["loglik"] = float(model.log_likelihood().sum())
            else:
                loo = azs.loo(xr.DataTree.from_dict({
                    "posterior": model.posterior,
                    "log_likelihood": xr.Dataset({"purchases": model.log_likelihood().drop_attrs()})}),
                    pointwise=True)
                pointwise[k] = loo.elpd_i.to_numpy()
                row.update(elpd_loo=float(loo.elpd), se=float(loo.se), p_loo=float(loo.p),
                           max_pareto_k=float(np.nanmax(loo.pareto_k.values)),
                           max_r_hat=float(model.diagnostics["max_r_hat"]))
            rows[k] = row
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "k"
        criterion = "loglik" if method == "map" else "elpd_loo"
        best = int(table[criterion].idxmax())
        table.insert(table.columns.get_loc(criterion) + 1, f"{criterion}_diff",
                     table.loc[best, criterion] - table[criterion])
        if pointwise:
            diffs = {k: pointwise[best] - values for k, values in pointwise.items()}
            table.insert(table.columns.get_loc("elpd_loo_diff") + 1, "se_diff",
                         [float(np.sqrt(d.size * np.var(d))) for d in diffs.values()])
            table = table.rename(columns={"elpd_loo_diff": "elpd_diff"})
        table.attrs.update(best_k=best, criterion=criterion)
        return table


class BetaGeoCNBDModel(_CNBDModel):
    """BG/CNBD-k: the BG/NBD with Erlang-``k`` inter-purchase times (regular purchase timing).

    While alive, a customer's inter-purchase times are Erlang-``k`` with rate
    ``lambda ~ Gamma(r, rate=alpha)`` (``k`` exponential phases; ``k = 1`` is
    the BG/NBD); after each repeat purchase the customer drops out with
    probability ``p ~ Beta(a, b)``. The likelihood reads the data column
    ``litt`` (the sum of the log inter-purchase times), so build the frame
    by ``rfm_summary``. Given alive, the future depends on
    ``recency`` too for ``k > 1`` (how far the next purchase's phases have
    progressed). Choose ``k`` with :meth:`select_k`. The math is in the
    documentation's page on the MBG/NBD and (M)BG/CNBD-k
    (:mod:`bayesclv.formulas.cnbd`).

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``a``, ``b``. Defaults
        (weakly informative, as for :class:`~bayesclv.BetaGeoModel`):
        ``r, a, b ~ HalfNormal(50)``, ``alpha ~ HalfNormal(500)`` (the scale
        of the phase rate, in the data's time unit).
    k : int
        Erlang phases per inter-purchase time (a positive integer).
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.

    Examples
    --------
    >>> from bayesclv import BetaGeoCNBDModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = BetaGeoCNBDModel(k=2).fit(rfm, method="map", progressbar=False)
    >>> model.display_name, model.summary()["mean"].round(2).to_dict()
    ('BG/CNBD-2', {'r': 0.23, 'alpha': 1.46, 'a': 0.94, 'b': 2.07})
    """

    variant = "BG"


class ModifiedBetaGeoCNBDModel(_CNBDModel):
    """MBG/CNBD-k: the BG/CNBD-k in which customers can also drop out right after the first purchase.

    As :class:`BetaGeoCNBDModel` (Erlang-``k`` inter-purchase times, the data
    column ``litt``), with dropout after every purchase, the first included, as
    in the MBG/NBD (its ``k = 1`` case). Choose ``k`` with :meth:`select_k`.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``a``, ``b`` (defaults
        as for :class:`BetaGeoCNBDModel`).
    k : int
        Erlang phases per inter-purchase time (a positive integer).
    group, pooling : optional
        Group column and pooling; see :class:`~bayesclv.models.pooled.PooledModel`.

    Examples
    --------
    >>> from bayesclv import ModifiedBetaGeoCNBDModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = ModifiedBetaGeoCNBDModel(k=2).fit(rfm, method="map", progressbar=False)
    >>> model.display_name, model.summary()["mean"].round(3).to_dict()
    ('MBG/CNBD-2', {'r': 0.58, 'alpha': 2.288, 'a': 1.134, 'b': 1.585})
    """

    modified = True
    variant = "MBG"
