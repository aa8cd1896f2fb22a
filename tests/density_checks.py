"""Checks shared by the direct-density tests: a hand-written log density against PyMC's compiled graph."""

from __future__ import annotations

import numpy as np
import pytest


def assert_density_is_the_graphs(density, x, point, logp, dlogp) -> None:
    """At flat point ``x`` (``point``: the same values by variable), ``density.logp_and_grad`` equals the graph's
    compiled ``logp``/``dlogp`` and its gradient equals central differences of its own value."""
    value, grad = density.logp_and_grad(x)
    assert value == pytest.approx(float(logp(point)), rel=1e-9)
    np.testing.assert_allclose(grad, dlogp(point), rtol=1e-7, atol=1e-6)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = 1e-6
        fd = (density.logp_and_grad(x + step)[0] - density.logp_and_grad(x - step)[0]) / 2e-6
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-4)
