"""Evaluation figures (Agg backend): drawn values equal the computed ones; heat maps stream in chunks."""

import matplotlib

matplotlib.use("Agg")

import copy

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import bayesclv as bc
from bayesclv import plots
from bayesclv.evaluate import evaluate
from bayesclv.metrics import pit_coverage


@pytest.fixture(scope="module")
def bg_draws(map_models):
    """BG/NBD with 2 x 50 draws scattered around the MAP estimate (a stand-in posterior)."""
    model = copy.copy(map_models["BetaGeoModel"])
    rng = np.random.default_rng(11)
    post = model.posterior
    draws = {n: (("chain", "draw"), float(post[n].values.ravel()[0]) * rng.lognormal(0, 0.05, (2, 50)))
             for n in model.parameter_names}
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(
        draws, coords={"chain": [0, 1], "draw": np.arange(50)})})
    model.fit_method = "nuts"
    return model


@pytest.fixture(scope="module")
def evaluation(bg_draws, cdnow_rfm):
    return evaluate(bg_draws, cdnow_rfm, n_draws=100, random_seed=4, transactions=bc.datasets.load_cdnow("sample"))


def test_tracking_plot_draws_actual_and_band(evaluation):
    tracking = evaluation.tracking
    fig = plots.plot_tracking(tracking, kind="cumulative")
    assert isinstance(fig, Figure)
    lines = fig.axes[0].get_lines()
    np.testing.assert_array_equal(lines[1].get_ydata(), tracking["actual_cumulative"])
    np.testing.assert_allclose(lines[0].get_ydata(), tracking["predicted_cumulative"].mean(("chain", "draw")))
    with pytest.raises(ValueError):
        plots.plot_tracking(tracking, kind="weekly")


def test_incremental_tracking_draws_whole_weeks(evaluation):
    """Week 39 is cut at the calibration end (6 days + 1 day) and the last week is 6 days long: the plot
    adds the two pieces of week 39 back together and leaves the partial last week out, saying so."""
    tracking = evaluation.tracking
    end = tracking["end"].to_numpy()
    cut = int(np.flatnonzero(np.isclose(end, tracking.attrs["calibration_end_time"]))[0])
    assert end[cut + 1] == 39.0 and end[-1] == pytest.approx(77 + 6 / 7)  # CDNOW sample: 1998-06-30
    ax = plots.plot_tracking(tracking, kind="incremental").axes[0]
    predicted, actual = ax.get_lines()[:2]
    np.testing.assert_array_equal(actual.get_xdata(), np.arange(1.0, 78.0))  # whole weeks 1..77
    pieces = tracking["actual_incremental"].to_numpy()
    expected = np.concatenate([pieces[:cut], [pieces[cut] + pieces[cut + 1]], pieces[cut + 2:-1]])
    np.testing.assert_array_equal(actual.get_ydata(), expected)
    week_39 = tracking["predicted_incremental"].isel(period=[cut, cut + 1]).sum("period").mean(("chain", "draw"))
    assert predicted.get_ydata()[38] == pytest.approx(float(week_39))
    assert actual.get_ydata()[38] > 40  # not the 1-day sliver (5 purchases) drawn as a week
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "last 6 days not shown (a partial week)" in legend
    assert ax.get_ylabel() == "repeat purchases per week"
    assert ax.get_xlabel() == "weeks since the cohort's first purchase"


def test_ppc_calibration_and_coverage_plots(bg_draws, evaluation):
    ppc = bc.frequency_ppc(bg_draws, n_draws=100, random_seed=2)
    fig = plots.plot_frequency_ppc(ppc)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_array_equal(heights[:8], ppc["observed"])
    np.testing.assert_allclose(heights[8:16], ppc["expected"])

    fig = plots.plot_alive_calibration(evaluation)
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), evaluation.calibration["observed"])

    fig = plots.plot_coverage(evaluation)
    lines = fig.axes[0].get_lines()
    c = evaluation.customers
    assert lines[1].get_ydata()[17] == pytest.approx(pit_coverage(c["pit_lower"], c["pit_upper"], 0.9))
    np.testing.assert_allclose(lines[2].get_ydata(), [evaluation.metrics[f"coverage_{p}"] for p in (50, 80, 90)])


def test_frequency_recency_grid_equals_direct_and_streams(bg_draws, monkeypatch):
    direct_calls = []
    original = type(bg_draws).probability_alive

    def spy(self, data=None):
        out = original(self, data)
        direct_calls.append(out.shape)
        return out

    grid = plots.frequency_recency_grid(bg_draws, max_frequency=6, T=30.0, n_recency=9, chunk_size=1000)
    monkeypatch.setattr(type(bg_draws), "probability_alive", spy)
    chunked = plots.frequency_recency_grid(bg_draws, max_frequency=6, T=30.0, n_recency=9, chunk_size=7)
    # 6 x 8 cells with frequency > 0 and recency > 0 plus the single valid zero-frequency cell; 7 at a time
    assert len(direct_calls) == int(np.ceil(49 / 7))
    assert max(shape[-1] for shape in direct_calls) == 7
    assert all(shape[:2] == (2, 50) for shape in direct_calls)
    xr.testing.assert_allclose(grid, chunked)
    # direct computation, cell by cell
    import pandas as pd

    cell = pd.DataFrame({"customer_id": [0], "frequency": [3.0], "recency": [7.5], "T": [30.0]})
    cell.attrs["time_unit"] = "W"
    draws = original(bg_draws, cell).values.ravel()
    assert float(grid["mean"].sel(frequency=3, recency=7.5)) == pytest.approx(draws.mean())
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert float(grid["width"].sel(frequency=3, recency=7.5)) == pytest.approx(hi - lo, rel=0.05)
    assert np.isnan(grid["mean"].sel(frequency=0, recency=7.5))
    assert np.isnan(grid["mean"].sel(frequency=3, recency=0.0))  # a repeat purchase comes after the first
    assert float(grid["mean"].sel(frequency=0, recency=0)) == pytest.approx(
        original(bg_draws, cell.assign(frequency=0.0, recency=0.0)).values.mean())

    fig = plots.plot_frequency_recency(grid)
    assert len(fig.axes) == 4  # two maps and their colour bars
    np.testing.assert_allclose(fig.axes[0].images[0].get_array().filled(np.nan), grid["mean"].values)


def test_expected_purchases_grid(bg_draws):
    grid = plots.frequency_recency_grid(bg_draws, "expected_purchases", max_frequency=3, T=20.0,
                                        n_recency=5, horizon=10.0, chunk_size=4)
    assert grid.attrs["horizon"] == 10.0
    # more recent buyers with more purchases are expected to buy more
    assert grid["mean"].sel(frequency=3, recency=20.0) > grid["mean"].sel(frequency=3, recency=5.0)
    with pytest.raises(ValueError):
        plots.frequency_recency_grid(bg_draws, "clv")
