"""BG/NBD model class (Fader, Hardie & Lee 2005), with optional static covariates."""

from __future__ import annotations

from bayesclv.formulas import bgnbd
from bayesclv.models.covariates import CovariateEffects, Target
from bayesclv.models.mean_concentration import BetaShapeSampling
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.models.transaction import ResidualPredictions
from bayesclv.priors import Prior

__all__ = ["BetaGeoModel"]


class BetaGeoModel(BetaShapeSampling, CovariateEffects, ResidualPredictions, PooledTransactionModel):
    """Beta-geometric/NBD model of repeat purchases.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``r``, ``alpha``, ``a``, ``b`` (and the
        covariate coefficients). Defaults (weakly informative; ``alpha`` is a
        time scale, in the data's unit): ``r, a, b ~ HalfNormal(50)``,
        ``alpha ~ HalfNormal(500)``; each coefficient ``Normal(0, 1)`` per sd
        of its covariate.
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`. With partial pooling the
        posterior holds ``log_<name>_mean``, ``log_<name>_sd`` and the
        per-group ``r, alpha, a, b``.
    covariates : list of str, optional
        Numeric customer-level columns of the data that act on both processes
        (static, one value per customer). With ``z_i`` a customer's
        covariates standardised by the fitted data's means and sds:
        ``alpha_i = alpha exp(-purchase_coef . z_i)`` (the mean purchase rate
        ``r / alpha_i`` is multiplied by ``exp(purchase_coef . z_i)``),
        ``a_i = a exp(dropout_coef_a . z_i)`` and ``b_i = b exp(dropout_coef_b . z_i)``
        (the odds ``a_i / b_i`` of the mean dropout probability move by
        ``exp((dropout_coef_a - dropout_coef_b) . z_i)``); see
        :mod:`bayesclv.models.covariates` and :func:`bayesclv.key_drivers`.
    purchase_covariates, dropout_covariates : list of str, optional
        Separate lists per process (each defaults to ``covariates``).

    Notes
    -----
    With dropout covariates NUTS samples ``(a, b)`` as ``(log a - log b,
    log(a + b))`` (unless pooled partially) and each covariate's
    ``(dropout_coef_a, dropout_coef_b)`` as their difference and mean: the
    data pin the mean dropout probability and its odds effects, hardly the
    concentration, a ridge diagonal to the original axes. The priors and the
    posterior are unchanged (see :mod:`bayesclv.models.mean_concentration`);
    the posterior holds ``a, b`` and the coefficients.

    Examples
    --------
    >>> from bayesclv import BetaGeoModel, rfm_summary
    >>> from bayesclv.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow(), calibration_end="1997-09-30")
    >>> model = BetaGeoModel().fit(rfm, method="map", progressbar=False)
    >>> round(float(model.summary().loc["r", "mean"]), 2)
    0.24
    """

    parameter_names = bgnbd.PARAMETERS
    default_priors = {
        "r": Prior("HalfNormal", sigma=50.0),
        "alpha": Prior("HalfNormal", sigma=500.0),
        "a": Prior("HalfNormal", sigma=50.0),
        "b": Prior("HalfNormal", sigma=50.0),
    }
    formulas = bgnbd
    display_name = "BG/NBD"
    covariate_targets = {
        "purchase_coef": Target("purchase", "alpha", -1.0, 1.0),
        "dropout_coef_a": Target("dropout", "a", 1.0, 1.0),
        "dropout_coef_b": Target("dropout", "b", 1.0, -1.0),
    }
    driver_latents = {"purchase": "log_lambda", "dropout": "logit_p"}
    coefficient_pairs = (("dropout_coef_a", "dropout_coef_b"),)  # sampled as difference and mean
    samples_covariate_density = True

    beta_pairs = (("a", "b"),)  # sampled as mean and concentration when there are dropout covariates

    def _samples_beta_shapes(self) -> bool:
        """Only with dropout covariates: without them ``log a, log b`` mix well and keep the published coordinates."""
        return bool(self.process_covariates["dropout"]) and super()._samples_beta_shapes()

    @property
    def nutpie_adaptation(self) -> str:
        # in the paired coordinates a diagonal mass matrix suffices (7 steps per draw on CDNOW full); nutpie's
        # low-rank adaptation left 3 of 4 chains stuck at a ~ 1e-9 from the default start
        # (benchmarks/results/covariate_sampling_exploration.md, covariate_sampling_sample.md)
        return "diag" if self._samples_beta_shapes() else "low_rank"
