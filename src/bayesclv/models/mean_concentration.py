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
"""

from __future__ import annotations

from typing import Any, ClassVar

import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

__all__ = ["BetaShapeSampling", "MeanConcentration", "beta_shapes"]


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


def beta_shapes(priors: dict[str, Any], pooling: str, first: str, second: str,
                dims: str | None = None) -> tuple[Any, Any]:
    """The shapes ``first, second`` of one beta distribution, sampled as mean and concentration.

    Creates the pair ``<first>_<second>`` (last axis: the two shapes; with
    ``pooling="none"`` one pair per ``dims`` entry) and the two shapes as
    deterministics. Returns them.
    """
    size = None if pooling == "complete" else (len(pm.modelcontext(None).coords[dims]),)

    def pair(size):
        parts = [getattr(pm, priors[n].distribution).dist(**priors[n].parameters, size=size) for n in (first, second)]
        return pt.stack(parts, axis=-1)

    shape = (2,) if size is None else (*size, 2)
    joint = pm.CustomDist(f"{first}_{second}", dist=pair, transform=MeanConcentration(), shape=shape,
                          signature="->(n)")
    kept = {} if size is None else {"dims": dims}
    return (pm.Deterministic(first, joint[..., 0], **kept), pm.Deterministic(second, joint[..., 1], **kept))


class BetaShapeSampling:
    """Mixin of a pooled model: the shapes of each beta distribution in ``beta_pairs`` sampled by :func:`beta_shapes`.

    Under partial pooling the shapes keep their non-centred log-normal hierarchy
    (:func:`~bayesclv.models.pooling.create_quantity`). The pairs themselves are
    sampling coordinates only: the posterior keeps the named shapes.
    """

    beta_pairs: ClassVar[tuple[tuple[str, str], ...]] = ()

    def _parameters(self) -> dict[str, Any]:
        if self.pooling == "partial":
            return super()._parameters()
        out = {}
        for first, second in self.beta_pairs:
            out[first], out[second] = beta_shapes(self.priors, self.pooling, first, second, dims="group")
        return out

    def _diagnosed_variables(self, model: pm.Model) -> list[str]:
        pairs = {f"{first}_{second}" for first, second in self.beta_pairs}
        return [name for name in super()._diagnosed_variables(model) if name not in pairs]
