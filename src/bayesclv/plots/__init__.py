"""Figures (matplotlib). One module per area; everything is re-exported here."""

from bayesclv.plots.evaluation import (
    frequency_recency_grid,
    plot_alive_calibration,
    plot_coverage,
    plot_frequency_ppc,
    plot_frequency_recency,
    plot_tracking,
)

__all__ = [
    "frequency_recency_grid",
    "plot_alive_calibration",
    "plot_coverage",
    "plot_frequency_ppc",
    "plot_frequency_recency",
    "plot_tracking",
]
