"""The integrated hierarchical fit's sampler defaults (:func:`bayesclv.models.marginal.fit_marginal`).

NUTS runs in coordinates whitened by the Laplace approximation at the rule's reference, where the posterior of
the population parameters is near a standard normal: the mass matrix starts near its adapted value, so the warm-up
is short (:data:`MARGINAL_TUNE`), and with many customers, where the posterior is closest to normal, shorter
still and with a lower target acceptance. With few customers the posterior is less normal and reaches the rule's
range walls, where longer steps diverge now and then: the settings of the many apply from
:data:`MARGINAL_LARGE` customers on, and only to graphs that declare a ``large_target_accept`` (the joint spend
models, not measured there, keep the rest). Measurements: ``benchmarks/results/hierarchical_marginal_speed.md``
(parts 4 and 5).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MARGINAL_LARGE", "MARGINAL_LARGE_TUNE", "MARGINAL_TARGET_ACCEPT", "MARGINAL_TUNE", "marginal_target_accept",
           "marginal_tune"]

# default tuning steps of the integrated fit (1000 elsewhere)
MARGINAL_TUNE = 300
# from MARGINAL_LARGE customers on: the step size and low-rank mass matrix settle within 200 steps on CDNOW full
MARGINAL_LARGE_TUNE = 200
# target acceptance of the integrated fit of many customers: on its near-normal whitened posterior 0.65 (Beskos et
# al. 2013) makes almost every draw a 3-step tree, about half a period; 0.8 takes 4-7
MARGINAL_TARGET_ACCEPT, MARGINAL_LARGE = 0.65, 10_000


def marginal_target_accept(model: Any, customers: float, large: float | None = MARGINAL_TARGET_ACCEPT) -> float:
    """The integrated fit's default target acceptance: ``large`` (:data:`MARGINAL_TARGET_ACCEPT`) from
    :data:`MARGINAL_LARGE` customers on, the model's ``default_target_accept`` below or where ``large`` is None."""
    return large if large is not None and customers >= MARGINAL_LARGE else model.default_target_accept


def marginal_tune(customers: float, large: float | None = MARGINAL_TARGET_ACCEPT) -> int:
    """The integrated fit's default warm-up: :data:`MARGINAL_LARGE_TUNE` steps where the target acceptance of many
    customers applies (:func:`marginal_target_accept`), :data:`MARGINAL_TUNE` otherwise."""
    return MARGINAL_LARGE_TUNE if large is not None and customers >= MARGINAL_LARGE else MARGINAL_TUNE
