"""Sampling the two shapes of a beta distribution as its mean and concentration (BG/BB).

With ``p ~ Beta(alpha, beta)`` across customers, data pin the mean ``alpha /
(alpha + beta)`` well but the concentration ``alpha + beta`` (the inverse of
the heterogeneity) often hardly at all: in the log shapes the posterior is a
long ridge along ``log alpha - log beta = const``, diagonal to the axes, where
NUTS with a diagonal mass matrix diverged. Sampled as ``u = log alpha - log
beta`` (the mean's logit) and ``w = log(alpha + beta)`` the ridge runs along an
axis. (A concentration linear in ``w`` for large values, ``softplus(w)``, diverged
far more often on the shifted-BG.)

The priors stay those of ``alpha`` and ``beta`` (independent, the user's or the
defaults): the pair is one random variable whose density is the product of
theirs, with :class:`MeanConcentration` as its transform, so the sampler adds
the log-Jacobian ``log alpha + log beta`` and the MAP (``jacobian=False``) is
the mode in ``(alpha, beta)`` as before.

Covariates that move both shapes (BG/NBD's ``a_i = a exp(dropout_coef_a . z_i)``,
``b_i = b exp(dropout_coef_b . z_i)``) have the same ridge: the data pin the
effect on the mean's logit, ``dropout_coef_a - dropout_coef_b``, and hardly the
effect on the concentration, so the two coefficients of a covariate are
strongly correlated (0.94 on CDNOW). :func:`coefficient_pairs` samples each pair
as its difference and its mean (:class:`DifferenceAndMean`, a linear map of
unit determinant: no Jacobian term, the priors stay those of the two
coefficients).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

__all__ = ["BetaShapeSampling", "DifferenceAndMean", "MeanConcentration", "beta_shapes", "coefficient_pairs"]


class MeanConcentration(Transform):
    """``(alpha, beta)`` on the last axis <-> ``(log alpha - log beta, log(alpha + beta))``."""

    name = "mean_concentration"

    def forward(self, value, *inputs):
        log_a, log_b = pt.log(value[..., 0]), pt.log(value[..., 1])
        return pt.stack([log_a - log_b, pt.logaddexp(log_a, log_b)], axis=-1)

    def backward(self, value, *inputs):
        u, w = value[..., 0], value[..., 1]
        return pt.stack([pt.exp(w - pt.softplus(-u)), pt.exp(w - pt.softplus(u))], axis=-1)

    def log_jac_det(self, value, *inputs):
        u, w = value[..., 0], value[..., 1]
        return 2.0 * w - pt.softplus(-u) - pt.softplus(u)  # log alpha + log beta


class DifferenceAndMean(Transform):
    """``(c1, c2)`` on the last axis <-> ``(c1 - c2, (c1 + c2) / 2)``: linear, determinant 1."""

    name = "difference_and_mean"

    def forward(self, value, *inputs):
        first, second = value[..., 0], value[..., 1]
        return pt.stack([first - second, 0.5 * (first + second)], axis=-1)

    def backward(self, value, *inputs):
        difference, mean = value[..., 0], value[..., 1]
        return pt.stack([mean + 0.5 * difference, mean - 0.5 * difference], axis=-1)

    def log_jac_det(self, value, *inputs):
        return pt.zeros_like(value[..., 0])


def _pair(name: str, priors: dict[str, Any], first: str, second: str, transform: Transform,
          size: tuple[int, ...] | None, dims: str | None) -> tuple[Any, Any]:
    """One random variable ``name`` whose last axis holds ``first`` and ``second`` (independent, with
    their priors), sampled through ``transform``; the two as deterministics (dims ``dims``)."""

    def pair(size):
        parts = [getattr(pm, priors[n].distribution).dist(**priors[n].parameters, size=size) for n in (first, second)]
        return pt.stack(parts, axis=-1)

    shape = (2,) if size is None else (*size, 2)
    joint = pm.CustomDist(name, dist=pair, transform=transform, shape=shape, signature="->(n)")
    kept = {} if size is None else {"dims": dims}
    return (pm.Deterministic(first, joint[..., 0], **kept), pm.Deterministic(second, joint[..., 1], **kept))


def beta_shapes(priors: dict[str, Any], pooling: str, first: str, second: str,
                dims: str | None = None) -> tuple[Any, Any]:
    """The shapes ``first, second`` of one beta distribution, sampled as mean and concentration.

    Creates the pair ``<first>_<second>`` (last axis: the two shapes; with
    ``pooling="none"`` one pair per ``dims`` entry) and the two shapes as
    deterministics. Returns them.
    """
    size = None if pooling == "complete" else (len(pm.modelcontext(None).coords[dims]),)
    return _pair(f"{first}_{second}", priors, first, second, MeanConcentration(), size, dims)


def coefficient_pairs(priors: dict[str, Any], first: str, second: str, dims: str) -> tuple[Any, Any]:
    """Coefficient vectors ``first, second`` (dims ``dims``) sampled as their difference and mean.

    Creates the pairs ``<first>_<second>`` (one per entry of ``dims``; priors
    on the real line) and the two vectors as deterministics. Returns them.
    """
    size = (len(pm.modelcontext(None).coords[dims]),)
    return _pair(f"{first}_{second}", priors, first, second, DifferenceAndMean(), size, dims)


class BetaShapeSampling:
    """Mixin of a pooled model: the shapes of each beta distribution in ``beta_pairs`` sampled by :func:`beta_shapes`.

    Under partial pooling the shapes keep their non-centred log-normal hierarchy
    (:func:`~bayesclv.models.pooling.create_quantity`). The pairs themselves are
    sampling coordinates only: the posterior keeps the named shapes.
    """

    beta_pairs: ClassVar[tuple[tuple[str, str], ...]] = ()

    def _samples_beta_shapes(self) -> bool:
        """Whether the pairs are sampled as mean and concentration (subclasses may add conditions)."""
        return self.pooling != "partial"

    def _parameters(self) -> dict[str, Any]:
        if not self._samples_beta_shapes():
            return super()._parameters()
        paired = {name for pair in self.beta_pairs for name in pair}
        out = {name: self._quantity(name) for name in self.parameter_names if name not in paired}
        for first, second in self.beta_pairs:
            out[first], out[second] = beta_shapes(self.priors, self.pooling, first, second, dims="group")
        return out

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        pairs = {f"{first}_{second}" for first, second in self.beta_pairs}
        return [name for name in super()._diagnosed_variables(model) if name not in pairs]
