"""Figures (matplotlib), one module per area; every function draws on an ``ax`` and returns its Figure.

Everything is re-exported here.
"""

from bayesclv.plots.decisions import (
    plot_clv_distribution,
    plot_targeting_curve,
    plot_tiers,
    plot_top_customers,
)
from bayesclv.plots.evaluation import (
    frequency_recency_grid,
    plot_alive_calibration,
    plot_coverage,
    plot_frequency_ppc,
    plot_frequency_recency,
    plot_tracking,
)
from bayesclv.plots.hierarchy import plot_key_drivers
from bayesclv.plots.retention import plot_survival

__all__ = [
    "frequency_recency_grid",
    "plot_alive_calibration",
    "plot_clv_distribution",
    "plot_coverage",
    "plot_frequency_ppc",
    "plot_frequency_recency",
    "plot_key_drivers",
    "plot_survival",
    "plot_targeting_curve",
    "plot_tiers",
    "plot_top_customers",
    "plot_tracking",
]
