"""Checks shared by the direct-density tests: a hand-written log density against PyMC's compiled graph."""

from __future__ import annotations

import numpy as np
import pytest


def compile_logp_dlogp(graph, extra=()):
    """The graph's log density (with the Jacobian), its gradient (flat, as ``compile_dlogp``) and ``extra`` as one
    compiled function of a point: one compilation (seconds each) instead of one per output."""
    return graph.compile_fn([graph.logp(jacobian=True), graph.dlogp(jacobian=True), *extra],
                            inputs=graph.value_vars, on_unused_input="ignore")


def assert_density_is_the_graphs(density, x, reference_logp, reference_dlogp) -> None:
    """At flat point ``x``, ``density.logp_and_grad`` equals the graph's compiled log density and gradient there
    (``reference_logp``, ``reference_dlogp``: see ``compile_logp_dlogp``) and its gradient equals central
    differences of its own value."""
    value, grad = density.logp_and_grad(x)
    assert value == pytest.approx(float(reference_logp), rel=1e-9)
    np.testing.assert_allclose(grad, reference_dlogp, rtol=1e-7, atol=1e-6)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = 1e-6
        fd = (density.logp_and_grad(x + step)[0] - density.logp_and_grad(x - step)[0]) / 2e-6
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-4)
