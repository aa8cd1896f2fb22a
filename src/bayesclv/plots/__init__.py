"""Figures (matplotlib), one module per area; every function draws on an ``ax`` and returns its Figure."""

from bayesclv.plots.decisions import (
    plot_clv_distribution,
    plot_targeting_curve,
    plot_tiers,
    plot_top_customers,
)

__all__ = [
    "plot_clv_distribution",
    "plot_targeting_curve",
    "plot_tiers",
    "plot_top_customers",
]
