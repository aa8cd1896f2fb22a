"""Every public plot function rendered (Agg): units on the axes from the attrs, bands drawn, no text
outside the figure, point estimates labelled as such."""

import matplotlib

matplotlib.use("Agg")

import copy  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import bayesclv as bc  # noqa: E402
from bayesclv import offers, plots, segment  # noqa: E402
from bayesclv.evaluate import evaluate  # noqa: E402
from bayesclv.plots.labels import duration, money, value_label  # noqa: E402

POINT = "point estimate (no posterior uncertainty)"


def _scattered(model, seed):
    """A copy of a MAP-fitted model with 2 x 50 draws scattered around the estimate (a stand-in posterior)."""
    model = copy.copy(model)
    rng = np.random.default_rng(seed)
    post = model.posterior
    draws = {n: (("chain", "draw"), float(post[n].values.ravel()[0]) * rng.lognormal(0, 0.05, (2, 50)))
             for n in model.parameter_names}
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(draws, coords={"chain": [0, 1],
                                                                                 "draw": np.arange(50)})})
    model.fit_method = "nuts"
    return model


@pytest.fixture(scope="module")
def fitted(map_models):
    return _scattered(map_models["BetaGeoModel"], 11), _scattered(map_models["GammaGammaModel"], 12)


@pytest.fixture(scope="module")
def clv(fitted, cdnow_rfm):
    bg, gg = fitted
    return bc.customer_lifetime_value(bg, gg, cdnow_rfm, horizon=12, time_unit="M", discount_rate=0.01,
                                      currency="USD")


@pytest.fixture(scope="module")
def evaluation(fitted, cdnow_rfm):
    return evaluate(fitted[0], cdnow_rfm, n_draws=100, random_seed=4, transactions=bc.datasets.load_cdnow("sample"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig):
    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def assert_no_clipped_text(fig):
    """Everything drawn (labels, ticks, titles, legends, annotations) lies inside the figure: its tight
    bounding box, which holds exactly the drawn artists, is within the figure's."""
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    tol = 1 / fig.dpi  # one pixel
    assert tight.x0 >= -tol and tight.y0 >= -tol and tight.x1 <= width + tol and tight.y1 <= height + tol, \
        f"drawn content {tight} reaches outside the {width} x {height} in figure"


def test_labels_in_words():
    assert duration(12, "M") == "12 months" and duration(1, "Y") == "1 year" and duration(38.857, "W") == "38.9 weeks"
    assert money(1234.5, "USD") == "USD 1,234" and money(-3.2, "€", 2) == "-€3.20" and money(7, None) == "7"
    assert value_label({"horizon": 12, "time_unit": "M", "currency": "USD"}) == "CLV over the next 12 months (USD)"
    assert value_label({}) == "CLV"


def test_clv_distribution_units_and_readable_bands(clv):
    fig = plots.plot_clv_distribution(clv)
    main, relative = fig.axes
    assert main.get_ylabel() == "CLV over the next 12 months (USD)"
    bands = [c for c in main.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # 90% and 50%
    table = bc.intervals(clv, prob=0.9).sort_values("mean", ascending=False)
    top = bands[0].get_paths()[0].vertices[:, 1]
    assert top.max() == pytest.approx(table["upper"].max()) and np.isclose(top, table["upper"].iloc[0]).any()
    # the relative panel shows the same 90% bounds as a percentage of the mean, where they are visible
    points = [c for c in relative.collections if isinstance(c, PathCollection)]
    assert len(points) == 4  # lower and upper of both bands
    upper = np.asarray(points[1].get_offsets())[:, 1]
    mean = table["mean"].to_numpy()
    shown = np.abs(mean) > 1e-9 * np.abs(mean).max()  # a mean of ~0 (a customer worth nothing) has no ratio
    assert shown.sum() >= len(mean) - 5 and np.isnan(upper[~shown]).all()
    np.testing.assert_allclose(upper[shown], 100 * (table["upper"].to_numpy() / mean - 1)[shown])
    assert 3 < np.median(upper[shown]) < 50  # a few per cent: a pixel on the log scale, tens of pixels here
    assert "%" in relative.get_ylabel()
    assert {t.get_text() for t in main.get_legend().get_texts()} == {
        "90% credible interval", "50% credible interval", "posterior mean"}
    assert_no_clipped_text(fig)


def test_decision_plots_take_units_from_attrs(clv):
    tiers = segment.group_totals(clv, segment.value_tiers(clv)["tier"])
    fig = plots.plot_tiers(tiers)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "total CLV over the next 12 months (USD)"
    kinds = {type(c).__name__: c for c in ax.containers}
    assert len(kinds["BarContainer"].patches) == 3 and kinds["ErrorbarContainer"].has_xerr  # bars, whiskers
    assert "90% credible interval" in ax.get_title()
    assert any("," in t.get_text() for t in ax.get_xticklabels())  # 10,000 rather than 10000
    assert_no_clipped_text(fig)

    fig = plots.plot_top_customers(clv, n=10)
    assert fig.axes[0].get_xlabel() == "CLV over the next 12 months (USD)"
    assert len(fig.axes[0].collections[0].get_segments()) == 10
    assert_no_clipped_text(fig)

    inc = offers.incremental_value(clv, cost=5.0, uplift=0.1)
    gain = offers.cumulative_gain(inc, offers.targeting(inc).index)
    fig = plots.plot_targeting_curve(gain)
    assert fig.axes[0].get_ylabel() == "total incremental value over the\nnext 12 months (USD)"
    assert any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
    assert_no_clipped_text(fig)


def test_point_estimate_plots_say_so(map_models, cdnow_rfm):
    clv = bc.customer_lifetime_value(map_models["BetaGeoModel"], map_models["GammaGammaModel"], cdnow_rfm,
                                     horizon=6, time_unit="M", discount_rate=0.01, currency="€")
    fig = plots.plot_clv_distribution(clv)
    main, relative = fig.axes
    assert not [c for c in main.collections if isinstance(c, PolyCollection)]
    assert [t.get_text() for t in main.get_legend().get_texts()] == [POINT]
    assert main.get_ylabel() == "CLV over the next 6 months (€)"
    assert POINT in [t.get_text() for t in relative.texts]
    ax = plots.plot_top_customers(clv, n=5).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [POINT]
    ax = plots.plot_tiers(segment.group_totals(clv, segment.value_tiers(clv)["tier"])).axes[0]
    assert POINT in ax.get_title() and "credible" not in ax.get_title()


def test_evaluation_plots_name_their_units(evaluation, fitted):
    for kind in ("cumulative", "incremental"):
        fig = plots.plot_tracking(evaluation.tracking, kind=kind)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "weeks since the cohort's first purchase"
        assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the credible band
        assert_no_clipped_text(fig)
    fig = plots.plot_alive_calibration(evaluation)
    assert "39 weeks" in fig.axes[0].get_xlabel()
    assert_no_clipped_text(fig)
    fig = plots.plot_coverage(evaluation)
    assert fig.axes[0].get_xlabel() == "nominal probability"
    assert_no_clipped_text(fig)
    fig = plots.plot_frequency_ppc(bc.frequency_ppc(fitted[0], n_draws=50, random_seed=2))
    assert fig.axes[0].get_xlabel() == "repeat purchases in calibration"
    assert_no_clipped_text(fig)


def test_frequency_recency_titles_in_words(fitted):
    grid = plots.frequency_recency_grid(fitted[0], max_frequency=5, n_recency=8)
    fig = plots.plot_frequency_recency(grid)
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles[0].startswith("P(alive): chance the customer is still active")
    assert titles[1] == "width of its 90% credible interval"
    assert fig.axes[0].get_xlabel() == ("recency: weeks from first to last purchase\n"
                                        "(customers observed for 38.9 weeks)")
    text = " ".join(t.get_text() for t in _texts(fig))
    assert "probability_alive" not in text and "38.8571" not in text
    assert [cb.get_ylabel() for cb in fig.axes[2:]] == ["probability", "probability"]
    assert_no_clipped_text(fig)
    grid = plots.frequency_recency_grid(fitted[0], "expected_purchases", max_frequency=3, n_recency=5, horizon=52)
    fig = plots.plot_frequency_recency(grid)
    assert fig.axes[0].get_title().startswith("expected purchases in the next 52 weeks")


def test_key_drivers_labels_are_not_clipped():
    index = pd.MultiIndex.from_product([["log first purchase amount", "acquired through the referral programme"],
                                        ["purchase", "dropout"]], names=["covariate", "process"])
    table = pd.DataFrame({"latent": ["log_lambda", "log_mu"] * 2, "mean": [0.31, -0.2, 0.05, 0.4],
                          "sd": [0.05] * 4, "lower": [0.22, -0.35, -0.04, 0.25],
                          "upper": [0.40, -0.05, 0.13, 0.55], "p_positive": [1.0, 0.01, 0.8, 1.0],
                          "ratio_mean": [1.36, 0.82, 1.05, 1.5]}, index=index)
    table.attrs = {"prob": 0.9, "per": "sd"}
    fig = plots.plot_key_drivers(table)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "purchase (log purchase rate)"
    texts = _texts(fig)
    assert {"P(>0) = 1.00", "P(>0) = 0.01", "P(>0) = 0.80"} <= {t.get_text() for t in texts}
    assert_no_clipped_text(fig)
    # the P(>0) labels overlap neither the titles nor each other
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts
             if (t.get_text().startswith("P(>0)") and t.get_window_extent(renderer).x0 > 0)
             or t in [ax.title for ax in fig.axes]]
    assert len(boxes) == 6
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_every_public_plot_function_is_rendered():
    """The tests above render each of these; a new public plot function needs a rendering test too."""
    rendered = {"plot_clv_distribution", "plot_tiers", "plot_top_customers", "plot_targeting_curve",
                "plot_tracking", "plot_alive_calibration", "plot_coverage", "plot_frequency_ppc",
                "plot_frequency_recency", "plot_key_drivers", "frequency_recency_grid",
                "plot_survival"}  # plot_survival: in test_discrete_models.py
    assert set(plots.__all__) == rendered
