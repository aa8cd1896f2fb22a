"""Figures (matplotlib), one module per area."""

from bayesclv.plots.hierarchy import plot_key_drivers

__all__ = ["plot_key_drivers"]
