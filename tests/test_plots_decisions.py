"""Decision plots draw what they are given: the plotted numbers are the posterior summaries."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from bayesclv import offers, segment  # noqa: E402
from bayesclv.plots import (  # noqa: E402
    plot_clv_distribution,
    plot_targeting_curve,
    plot_tiers,
    plot_top_customers,
)

RNG = np.random.default_rng(3)
CLV = xr.DataArray(RNG.gamma(2.0, [[[1, 5, 20, 2, 8]]] * np.ones((2, 50, 1))),
                   dims=("chain", "draw", "customer_id"),
                   coords={"chain": [0, 1], "draw": np.arange(50), "customer_id": list("abcde")}, name="clv")


def test_clv_distribution_line_is_sorted_posterior_mean():
    ax = plot_clv_distribution(CLV).axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), np.sort(CLV.mean(("chain", "draw")).values)[::-1])
    np.testing.assert_allclose(line.get_xdata(), [20, 40, 60, 80, 100])


def test_tiers_bars_and_whiskers():
    totals = segment.group_totals(CLV, pd.Series({"a": "rest", "b": "top", "c": "top", "d": "rest", "e": "top"}))
    ax = plot_tiers(totals).axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    np.testing.assert_allclose(widths, totals["mean"].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rest", "top"]


def test_top_customers_order_and_intervals():
    ax = plot_top_customers(CLV, n=3).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "e", "b"]
    segments = ax.collections[0].get_segments()
    q = CLV.quantile([0.05, 0.95], dim=("chain", "draw"))
    for seg, cid in zip(segments, "ceb", strict=True):
        np.testing.assert_allclose([seg[0][0], seg[1][0]], q.sel(customer_id=cid).values, rtol=1e-6)


def test_targeting_curve_marks_the_best_count():
    inc = offers.incremental_value(CLV, cost=10.0, uplift=0.5)
    order = offers.targeting(inc).index
    ax = plot_targeting_curve(offers.cumulative_gain(inc, order)).axes[0]
    mean = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(mean, np.cumsum(inc.mean(("chain", "draw")).sel(customer_id=list(order)).values))
    assert ax.get_lines()[1].get_xdata()[0] == np.argmax(mean) + 1
