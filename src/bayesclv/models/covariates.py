"""Static customer covariates on the population models: each customer's rate scales move with their covariates.

In the parameterisation of Fader & Hardie ("Incorporating time-invariant
covariates into the Pareto/NBD and BG/NBD models", 2007) a covariate shifts a
*scale* of the mixing distributions, so that given the covariates a customer
is still a draw from the family's population and the closed-form likelihood
applies per customer at their own parameters:

- purchase: ``alpha_i = alpha exp(-purchase_coef . z_i)``, so the mean purchase
  rate ``r / alpha_i`` is multiplied by ``exp(purchase_coef . z_i)``;
- Pareto/NBD dropout: ``beta_i = beta exp(-dropout_coef . z_i)`` (mean dropout
  rate ``s / beta_i``, multiplied by ``exp(dropout_coef . z_i)``);
- BG/NBD dropout: ``a_i = a exp(dropout_coef_a . z_i)``, ``b_i = b exp(dropout_coef_b . z_i)``;
  the odds ``a_i / b_i`` of the mean dropout probability are multiplied by
  ``exp((dropout_coef_a - dropout_coef_b) . z_i)``.

``z_i`` are the covariates standardised with the fitted data's mean and sd
(stored with the model), so the coefficients are effects *per standard
deviation* with ``Normal(0, 1)`` priors, comparable across covariates, and the
population parameters are those of a customer with average covariates.
:func:`bayesclv.drivers.key_drivers` reports them per sd or per unit.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from bayesclv.errors import DataValidationError
from bayesclv.formulas import NP
from bayesclv.models.mean_concentration import coefficient_pairs
from bayesclv.models.pooling import GROUP_CODE
from bayesclv.priors import Prior

__all__ = ["COLUMN_PREFIX", "PROCESSES", "CovariateEffects", "Target", "covariate_values"]

COLUMN_PREFIX = "covariate:"  # design-frame column of a standardised covariate
PROCESSES = ("purchase", "dropout")
COEF_PRIOR = Prior("Normal", mu=0.0, sigma=1.0)
# priors on the whole real line: a linear map of a coefficient pair needs no support constraint
REAL_LINE = frozenset({"Normal", "SkewNormal", "StudentT", "Cauchy", "Laplace", "Logistic", "Gumbel", "Flat"})


class Target(NamedTuple):
    """What a coefficient does: ``parameter_i = parameter exp(sign * coef . z_i)``, and its share of the
    process's reported effect (the effect on the process's latent is ``sum weight * coef``)."""

    process: str
    parameter: str
    sign: float
    weight: float


def covariate_values(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The covariate ``columns`` of ``df`` as floats, checked.

    Raises
    ------
    bayesclv.errors.DataValidationError
        A column is missing, holds values that are not numbers (naming the
        customers), or missing or infinite values (naming the customers).
    """
    out = pd.DataFrame(index=df.index)
    ids = df["customer_id"] if "customer_id" in df.columns else pd.Series(df.index, index=df.index)
    for col in columns:
        if col not in df.columns:
            raise DataValidationError(f"covariate column not in the data (columns: {list(df.columns)!r})",
                                      column=col)
        raw = df[col]
        if pd.api.types.is_bool_dtype(raw):
            raw = raw.astype(float)  # a yes/no covariate is its 0/1 indicator
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        not_number = values.isna() & raw.notna()
        if not_number.any():
            raise DataValidationError(
                f"{int(not_number.sum())} covariate value(s) that are not numbers (e.g. {raw[not_number].iloc[0]!r}); "
                "encode a category as 0/1 columns", column=col, rows=ids[not_number].tolist())
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            raise DataValidationError(f"{int(bad.sum())} missing or infinite covariate value(s)",
                                      column=col, rows=ids[bad].tolist())
        out[col] = values
    return out


class CovariateEffects:
    """Mixin for a population model: static covariates scale some of its parameters, row by row.

    A family declares ``covariate_targets`` (a :class:`Target` per coefficient)
    and ``driver_latents`` (per process, what its effects are additive on). The
    mixin adds the coefficients to the graph (dims ``<process>_covariate``),
    the standardised covariates to the design frame and the scaling to each
    row's parameters, so the engine, the CLV and ``scale`` work unchanged.
    """

    covariate_targets: ClassVar[dict[str, Target]] = {}
    driver_latents: ClassVar[dict[str, str]] = {}
    #: coefficients acting on one process through two parameters, sampled as their difference and mean
    #: (:func:`~bayesclv.models.mean_concentration.coefficient_pairs`)
    coefficient_pairs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: nutpie samples the covariate kernel plus the priors written out (:mod:`bayesclv.models.covariate_density`,
    #: no PyTensor graph compiled) where the configuration allows it
    samples_covariate_density: ClassVar[bool] = False
    #: ``(mean, cv2, shape, scale)``: a gamma mixing distribution sampled as its mean and squared coefficient of
    #: variation whose shape ``1/cv2`` and scale ``1/(cv2 mean)`` the kernel takes (the Pareto/NBD's dropout)
    gamma_mean_cv2: ClassVar[tuple[str, str, str, str] | None] = None

    def __init__(self, priors: dict[str, Prior] | None = None, *, group: str | None = None,
                 pooling: str | None = None, covariates: list[str] | None = None,
                 purchase_covariates: list[str] | None = None, dropout_covariates: list[str] | None = None):
        lists = {}
        for process, own in zip(PROCESSES, (purchase_covariates, dropout_covariates), strict=True):
            chosen = covariates if own is None else own
            chosen = [chosen] if isinstance(chosen, str) else list(chosen or [])
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"{process} covariates repeat a column: {chosen}")
            lists[process] = chosen
        self.process_covariates: dict[str, list[str]] = lists
        self.covariates: list[str] = list(dict.fromkeys(lists["purchase"] + lists["dropout"]))
        self.covariate_means: list[float] | None = None  # standardisation of the fit
        self.covariate_sds: list[float] | None = None
        super().__init__(priors, group=group, pooling=pooling)

    @property
    def nutpie_whiten(self) -> bool:
        """With covariates (and no partial pooling, whose group scales make no Laplace-shaped posterior): NUTS in
        coordinates whitened by the Laplace approximation at the mode, where the coefficients' and population
        parameters' correlations are taken out before the warm-up (``benchmarks/results/covariate_sampling_full.md``)."""
        return bool(self.covariates) and getattr(self, "pooling", "complete") != "partial"

    def _coefficient_processes(self) -> dict[str, str]:
        """The coefficients this configuration has, with their process."""
        return {name: t.process for name, t in self.covariate_targets.items() if self.process_covariates[t.process]}

    # ----------------------------------------------------------- model state
    def _all_default_priors(self) -> dict[str, Prior]:
        return {**super()._all_default_priors(), **{name: COEF_PRIOR for name in self._coefficient_processes()}}

    def _config(self) -> dict[str, Any]:
        lists = self.process_covariates
        return {**super()._config(), "covariates": None,
                "purchase_covariates": lists["purchase"], "dropout_covariates": lists["dropout"]}

    def _coefficient_names(self) -> list[str]:
        return list(self._coefficient_processes())

    def _coefficients(self) -> dict[str, Any]:
        """The coefficient vectors as random variables (inside a PyMC model), each pair of
        ``coefficient_pairs`` with priors on the real line sampled as difference and mean."""
        processes = self._coefficient_processes()
        out = {}
        for first, second in self._sampled_pairs():
            out[first], out[second] = coefficient_pairs(self.priors, first, second, dims=f"{processes[first]}_covariate")
        for name, process in processes.items():
            if name not in out:
                out[name] = self.priors[name].create(name, dims=f"{process}_covariate")
        return out

    def _sampled_pairs(self) -> list[tuple[str, str]]:
        """The pairs of ``coefficient_pairs`` this configuration samples as difference and mean."""
        processes = self._coefficient_processes()
        return [(first, second) for first, second in self.coefficient_pairs
                if first in processes and second in processes
                and all(self.priors[n].distribution in REAL_LINE for n in (first, second))]

    def _diagnosed_variables(self, model) -> list[str]:
        pairs = {f"{first}_{second}" for first, second in self._sampled_pairs()}  # sampling coordinates only
        return [name for name in super()._diagnosed_variables(model) if name not in pairs]

    def _coords(self) -> dict[str, list]:
        return {**super()._coords(),
                **{f"{p}_covariate": cols for p, cols in self.process_covariates.items() if cols}}

    def _total_loglik(self, params: dict[str, Any], rows: pd.DataFrame, summed: bool) -> Any:
        """The likelihood with the coefficients created next to the population parameters (in the PyMC model).

        With ``summed`` and covariates, the family's covariate kernel
        (``covariate_summed_loglik``): the total and its gradient in one
        compiled pass over the distinct rows, the chain rule to the
        coefficients inside it; else the per-row formula.
        """
        coefs = self._coefficients()
        if not (summed and coefs and hasattr(self.formulas, "covariate_summed_loglik")):
            return super()._total_loglik({**params, **coefs}, rows, summed)
        z = [rows[[COLUMN_PREFIX + c for c in self.process_covariates[p]]].to_numpy(dtype=float) for p in PROCESSES]
        tables = self.formulas.covariate_loglik_tables(*(rows[c] for c in self.data_columns), rows["weight"], *z,
                                                       group=rows[GROUP_CODE] if self.grouped else None)
        coefs = {name: coefs.get(name, np.zeros(0)) for name in self.covariate_targets}  # a process without covariates
        return self.formulas.covariate_summed_loglik(tables, *(params[n] for n in self.parameter_names), **coefs)

    @property
    def history_columns(self) -> tuple[str, ...]:
        return (*super().history_columns, *self.covariates)  # covariates give a customer its own parameters

    @property
    def scaling(self) -> pd.DataFrame:
        """Mean and sd of each covariate in the fitted data (sampling sees ``(x - mean) / sd``)."""
        self.check_fitted()
        return pd.DataFrame({"mean": self.covariate_means, "sd": self.covariate_sds},
                            index=pd.Index(self.covariates, name="covariate"))

    def _set_fit_state(self, df: pd.DataFrame) -> None:
        super()._set_fit_state(df)
        if not self.covariates:
            return
        values = covariate_values(df, self.covariates)
        sds = values.std(ddof=1) if len(values) > 1 else values.iloc[:1] * 0.0
        constant = [c for c in self.covariates if not sds[c] > 0]
        if constant:
            raise DataValidationError(
                f"covariate is constant in the data (value {values[constant[0]].iloc[0]!r}): "
                "its effect cannot be told apart from the population parameters", column=constant[0])
        self.covariate_means = values.mean().tolist()
        self.covariate_sds = sds.tolist()

    def _fit_state(self) -> dict[str, Any]:
        return {**super()._fit_state(), "covariate_means": self.covariate_means, "covariate_sds": self.covariate_sds}

    def _restore_fit_state(self, posterior, state: dict[str, Any]) -> None:
        super()._restore_fit_state(posterior, state)
        self.covariate_means = state.get("covariate_means")
        self.covariate_sds = state.get("covariate_sds")

    # ------------------------------------------------------------------ rows
    def _design(self, df: pd.DataFrame) -> pd.DataFrame:
        frame = super()._design(df)
        if self.covariates:
            values = covariate_values(df, self.covariates).to_numpy()
            z = (values - np.asarray(self.covariate_means)) / np.asarray(self.covariate_sds)
            frame[[COLUMN_PREFIX + c for c in self.covariates]] = z
        return frame

    def _row_params(self, params: dict[str, Any], rows: pd.DataFrame, xp) -> dict[str, Any]:
        """Each row's parameters, the targets scaled by ``exp(sign * z_process . coef)``."""
        params = dict(params)
        coefs = {name: params.pop(name) for name in self._coefficient_names()}
        out = super()._row_params(params, rows, xp)
        for name, coef in coefs.items():
            target = self.covariate_targets[name]
            z = rows[[COLUMN_PREFIX + c for c in self.process_covariates[target.process]]].to_numpy(dtype=float)
            shift = np.asarray(coef) @ z.T if xp is NP else pt.dot(z, coef)
            out[target.parameter] = out[target.parameter] * xp.exp(target.sign * shift)
        return out

    # --------------------------------------------------------------- effects
    def covariate_effects(self) -> dict[tuple[str, str], tuple[str, Any]]:
        """Posterior effect of each covariate on each process, per sd of the covariate.

        Returns
        -------
        dict
            ``(covariate, process) -> (latent, effect)`` with ``latent`` the
            quantity the effect is additive on (``log_lambda``: log mean
            purchase rate; ``log_mu``: log mean dropout rate; ``logit_p``: log
            odds of the mean dropout probability) and ``effect`` a DataArray
            ``(chain, draw)``.
        """
        self.check_fitted()
        post = self.posterior
        out = {}
        for process, cols in self.process_covariates.items():
            names = [n for n, p in self._coefficient_processes().items() if p == process]
            if not names:
                continue
            dim = f"{process}_covariate"
            for col in cols:
                effect = sum(self.covariate_targets[n].weight * post[n].sel({dim: col}, drop=True) for n in names)
                out[(col, process)] = (self.driver_latents[process], effect)
        return out
