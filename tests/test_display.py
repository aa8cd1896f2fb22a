"""Rich HTML views (``_repr_html_``) of fitted models and evaluation results."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
from arviz_base import rc_context
import xarray as xr

import bayesclv as bc
from bayesclv.display import format_number
from bayesclv.models.diagnostics import compute_diagnostics


class _Tables(HTMLParser):
    """Cells of every ``<table>`` in a fragment, as lists of row texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables(fragment: str) -> list[dict[str, dict[str, str]]]:
    """Each table as {row label: {column: cell text}} (first row = header)."""
    parser = _Tables()
    parser.feed(fragment)
    out = []
    for header, *rows in parser.tables:
        out.append({row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows})
    return out


def synthetic_nuts_model(rfm, shift: float = 0.0) -> bc.BetaGeoModel:
    """A BG/NBD 'fitted' to ``rfm`` with known normal draws (chain 1 shifted by ``shift``)."""
    rng = np.random.default_rng(0)
    centre = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}
    draws = {k: v + 0.01 * v * rng.standard_normal((2, 1000)) for k, v in centre.items()}
    draws["r"][1] += shift
    post = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()},
                      coords={"chain": [0, 1], "draw": np.arange(1000)})
    model = bc.BetaGeoModel()
    model.idata = xr.DataTree.from_dict({"posterior": post})
    model.data, model.time_unit, model.fit_method = rfm, "W", "nuts"
    model.diagnostics = compute_diagnostics(model.idata, list(centre))
    return model


def test_format_number():
    assert format_number(0.242567) == "0.2426"
    assert format_number(np.float64(1882.0)) == "1882"
    assert format_number(float("nan")) == ""
    assert format_number("<b>") == "&lt;b&gt;"
    assert format_number(True) == "True"


def test_unfitted_model_shows_its_priors():
    view = bc.BetaGeoModel(priors={"r": bc.Prior("Gamma", alpha=2.0, beta=4.0)})._repr_html_()
    assert "(not fitted)" in view
    (priors,) = tables(view)
    assert priors["r"]["prior"] == "Prior('Gamma', alpha=2.0, beta=4.0)"
    assert priors["b"]["prior"] == "Prior('HalfNormal', sigma=50.0)"


def test_map_model_shows_point_estimates(map_models):
    model = map_models["BetaGeoModel"]
    view = model._repr_html_()
    (params,) = tables(view)
    with pytest.warns(bc.errors.PointEstimateWarning):
        summary = model.summary()
    assert list(params) == ["r", "alpha", "a", "b"]
    assert list(params["r"]) == ["point estimate"]  # no sd/interval/R-hat for a point estimate
    for name in params:
        assert float(params[name]["point estimate"]) == pytest.approx(summary.loc[name, "mean"], rel=1e-3)
    assert params["r"]["point estimate"] == "0.2426"  # the published MLE, 0.2426
    assert "fitted by map to 2,357 customers" in view
    assert "point estimate (no posterior uncertainty)" in view and "credible" not in view
    assert "optimiser converged" in view


def test_nuts_model_shows_intervals_and_diagnostics(cdnow_rfm):
    model = synthetic_nuts_model(cdnow_rfm)
    with rc_context({"stats.ci_prob": 0.9}):  # the view follows ArviZ's interval convention
        (params,) = tables(model._repr_html_())
    summary = model.summary(prob=0.9)
    assert list(params["r"]) == ["mean", "sd", "eti_90%_lower", "eti_90%_upper", "r_hat", "ess_bulk", "ess_tail"]
    for name in ("r", "alpha", "a", "b"):
        row = params[name]
        assert float(row["mean"]) == pytest.approx(summary.loc[name, "mean"], rel=1e-3)
        assert float(row["eti_90%_lower"]) == pytest.approx(summary.loc[name, "lower"], rel=1e-3)
        assert float(row["eti_90%_upper"]) == pytest.approx(summary.loc[name, "upper"], rel=1e-3)
    # normal draws with sd 1% of the centre: the 90% ETI is about centre +- 1.645%
    assert float(params["alpha"]["eti_90%_lower"]) == pytest.approx(4.4 * (1 - 0.01645), rel=3e-3)
    assert "OK: max R-hat" in model._repr_html_()


def test_poor_convergence_is_flagged(cdnow_rfm):
    model = synthetic_nuts_model(cdnow_rfm, shift=0.05)  # chains disagree on r: R-hat >> 1.01
    view = model._repr_html_()
    assert model.diagnostics["max_r_hat"] > 1.1
    assert "POOR: max R-hat" in view and "#cf222e" in view


def test_evaluation_result_shows_metrics_and_calibration(map_models):
    result = bc.evaluate(map_models["BetaGeoModel"], prob=(0.9,), random_seed=1, n_draws=200)
    view = result._repr_html_()
    metrics, calibration = tables(view)
    assert set(metrics) == set(result.metrics)
    assert float(metrics["actual_total"]["value"]) == 1882.0
    for name, value in result.metrics.items():
        if np.isnan(value):  # e.g. the churn metrics' interval bounds of a MAP fit: shown as an empty cell
            assert metrics[name]["value"] == ""
        else:
            assert float(metrics[name]["value"]) == pytest.approx(value, rel=1e-3, abs=1e-12)
    assert len(calibration) == len(result.calibration)
    assert sum(int(row["n"]) for row in calibration.values()) == 2357
    assert "horizon 39 (W)" in view
