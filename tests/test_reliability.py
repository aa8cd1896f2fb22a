"""Issue #20, "nothing silently wrong": the failure cases as one table, plus hostile-input properties.

``CASES`` holds one row per case: what is done and the typed ``bayesclv`` error expected
(with the column or argument it names and the offending rows), or, for a documented
rule, a check of the value returned. Each part of the issue has its own block of rows;
a new case is one more row. Below the table: every distribution a ``Prior`` accepts,
checked against PyMC itself; property tests of ``rfm_summary`` and ``validate_rfm`` on
hostile frames (a typed error, or a frame that is right); hostile customer ids in the
HTML report.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pymc.distributions.distribution import support_point

import bayesclv as bc
from bayesclv.errors import (
    ArgumentError,
    BayesCLVError,
    DataValidationError,
    ModelFileError,
    OverwriteError,
    PriorError,
)
from bayesclv.models.persistence import FORMAT_VERSION
from bayesclv.priors import SUPPORTED, Prior
from bayesclv.report import build_report


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Case:
    """One case of issue #20 and what must happen now.

    ``call`` gets an :class:`Env` (fitted models on demand). With ``error`` set, the call
    must raise it; ``name`` is then the column (DataValidationError) or the argument
    (ArgumentError, PriorError) the error names, and ``rows`` the offending rows or
    customers it lists, exactly. With ``error=None`` the call must succeed and
    ``rule(returned, env)`` checks what it returned (a documented rule, not an error).
    """

    case: str
    call: Callable[[Env], Any]
    error: type[Exception] | None
    name: str | None = None
    rows: tuple = ()
    match: str | None = None
    rule: Callable[[Any, Env], None] | None = None


class Env:
    """What a case may need besides its own input: fitted MAP models of the CDNOW sample, a folder."""

    def __init__(self, request: pytest.FixtureRequest):
        self._request = request

    @property
    def models(self) -> dict:
        return self._request.getfixturevalue("map_models")

    @property
    def folder(self) -> Path:
        return self._request.getfixturevalue("tmp_path")

    def saved(self) -> Path:
        """The BG/NBD MAP fit saved to a file in :attr:`folder`."""
        path = self.folder / "bg.nc"
        if not path.exists():
            self.models["BetaGeoModel"].save(path)
        return path


def _column(values) -> pd.Series:
    """Values as given (no coercion of mixed kinds), in the dtype pandas infers for them."""
    return pd.Series(list(values), dtype=object).infer_objects()


def log(ids=(1, 1, 2), dates=("2020-01-01", "2020-01-05", "2020-01-03"), **columns) -> pd.DataFrame:
    """A small transaction log: customer 1 buys on days 0 and 4, customer 2 on day 2."""
    return pd.DataFrame({"customer_id": _column(ids), "date": _column(dates), **columns})


def rfm_frame(**columns) -> pd.DataFrame:
    base = {"customer_id": ["a", "b", "c"], "frequency": [0, 2, 1], "recency": [0.0, 3.0, 1.5], "T": [4.0, 3.0, 5.0]}
    base.update(columns)
    return pd.DataFrame({k: _column(v) for k, v in base.items()})


def repeated_column(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``frame`` with a second column of the same name (pandas allows it)."""
    return pd.concat([frame, frame[[column]]], axis=1)


def rfm(tx: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return bc.rfm_summary(tx, time_unit="D", **kwargs)


def clv(env: Env | None = None, **kwargs):
    """CLV with unfitted models unless ``env`` is given: argument checks come before the models are used."""
    if env is None:
        bg, gg = bc.BetaGeoModel(), bc.GammaGammaModel()
    else:
        bg, gg = env.models["BetaGeoModel"], env.models["GammaGammaModel"]
    settings_ = {"horizon": 3, "time_unit": "M", "discount_rate": 0.01, **kwargs}
    return bc.customer_lifetime_value(bg, gg, **settings_)


def rfm_is(**expected) -> Callable[[pd.DataFrame, Env], None]:
    def check(out: pd.DataFrame, env: Env) -> None:
        for column, values in expected.items():
            assert out[column].tolist() == values, column
    return check


def clv_matches(**reference) -> Callable[[Any, Env], None]:
    """The CLV equals the one computed with ``reference`` settings (e.g. ``horizon=3`` for ``3.0``)."""
    def check(value, env: Env) -> None:
        assert np.isfinite(value.values).all()
        np.testing.assert_array_equal(value.values, clv(env, **reference).values)
    return check


def file_of(env: Env, name: str, content: bytes | Callable[[bytes], bytes]) -> Path:
    """A file in the test's folder: ``content``, or ``content(bytes of the saved BG/NBD file)``."""
    path = env.folder / name
    path.write_bytes(content(env.saved().read_bytes()) if callable(content) else content)
    return path


def tampered(env: Env, posterior: Callable[[xr.Dataset], xr.Dataset] | None = None, drop: tuple = (),
             **attrs) -> Path:
    """The saved BG/NBD file with ``attrs`` replaced, ``drop`` removed or its posterior changed, as a new file."""
    tree = xr.open_datatree(env.saved(), engine="h5netcdf").load()
    tree.attrs = {k: v for k, v in {**tree.attrs, **attrs}.items() if k not in drop}
    if posterior is not None:
        tree["posterior"] = xr.DataTree(posterior(tree["posterior"].to_dataset()))
    path = env.folder / f"tampered-{len(list(env.folder.iterdir()))}.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def save_over(env: Env, **kwargs) -> bytes:
    """Save the BG/NBD fit over an existing file; the file's bytes afterwards."""
    path = file_of(env, "precious.nc", b"precious")
    env.models["BetaGeoModel"].save(path, **kwargs)
    return path.read_bytes()


def interrupted_save(env: Env) -> list[str]:
    """Ctrl-C halfway through writing a save over an existing file: the names left in the folder."""
    target = file_of(env, "old.nc", lambda saved: saved)
    original = xr.DataTree.to_netcdf

    def half(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half a file")
        raise KeyboardInterrupt

    xr.DataTree.to_netcdf = half
    try:
        with pytest.raises(KeyboardInterrupt):
            env.models["BetaGeoModel"].save(target, overwrite=True)
    finally:
        xr.DataTree.to_netcdf = original
    assert target.read_bytes() == env.saved().read_bytes()  # the previous file, untouched
    return sorted(p.name for p in env.folder.iterdir())


def loads_like_saved(model, env: Env) -> None:
    xr.testing.assert_identical(model.posterior, env.models["BetaGeoModel"].posterior)


def interrupted_fit(env: Env, method: str, **kwargs) -> tuple:
    """Ctrl-C (SIGINT to this process) in the middle of a long fit of a model already fitted by MAP.

    ADVI sends it from its own callback at step 100; NUTS from a timer 4 s in, after a
    short fit has compiled the graph (or loaded it from the cache), so that it arrives
    while nutpie samples. Returns the KeyboardInterrupt raised (or None), the model and
    its posterior before.
    """
    rfm = env.models["BetaGeoModel"].data
    model = bc.BetaGeoModel().fit(rfm.iloc[:300], method="map", progressbar=False)
    before = model.idata
    # Python's own Ctrl-C handler, whatever started the tests: a shell's background job inherits an
    # ignored SIGINT, which the library rightly leaves ignored, and the 10**6-draw fit would then run on
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGINT))
    if method == "advi":
        kwargs["callbacks"] = [lambda approx, loss, step: step == 100 and os.kill(os.getpid(), signal.SIGINT)]
    else:
        model.fit(rfm.iloc[:300], **{**kwargs, "draws": 20, "tune": 20, "chains": 1}, method=method,
                  progressbar=False)
        model.idata, model.fit_method = before, "map"
        timer.start()
    raised = None
    try:
        model.fit(rfm, method=method, progressbar=False, **kwargs)
    except KeyboardInterrupt as exc:
        raised = exc
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, handler)
    return raised, model, before


def unchanged_after_interrupt(out: tuple, env: Env) -> None:
    raised, model, before = out
    assert raised is not None, "fit() returned after Ctrl-C"
    assert model.idata is before and model.fit_method == "map" and len(model.data) == 300


def grouped_tracking(env: Env):
    """``evaluate(..., transactions=)`` of a BG/NBD fitted per channel (two groups, MAP): its tracking."""
    tx = bc.datasets.load_cdnow("sample")
    cal = bc.rfm_summary(tx, value="value", calibration_end="1997-09-30")
    cal["channel"] = np.where(cal["customer_id"] % 2 == 0, "web", "shop")
    model = bc.BetaGeoModel(group="channel", pooling="none").fit(cal, method="map", progressbar=False)
    # from the module: on main, bc.evaluate resolves to the module bayesclv.evaluate (lazy-import name clash)
    from bayesclv.evaluate import evaluate

    return evaluate(model, cal, transactions=tx, n_draws=20, random_seed=1), model, cal


def tracks_each_group_with_its_own_parameters(out, env: Env) -> None:
    # the cohort's expected cumulative purchases, customer by customer: E[X(e_k - b_i)] of customer
    # i's group at each period end e_k after their acquisition b_i = c - T_i
    result, model, cal = out
    tracking = result.tracking
    ends, c = tracking["end"].values, tracking.attrs["calibration_end_time"]
    expected = np.zeros(ends.size)
    for label in ("web", "shop"):
        ages = cal.loc[cal["channel"] == label, "T"].to_numpy()
        lags = ends[None, :] - (c - ages)[:, None]
        grid = np.unique(lags[lags > 0])
        new = model.expected_purchases_new_customer(grid).sel(group=label).values.ravel()
        expected += np.where(lags > 0, np.interp(lags, grid, new), 0.0).sum(axis=0)
    np.testing.assert_allclose(tracking["predicted_cumulative"].values.ravel(), expected, rtol=1e-9)
    assert abs(result.metrics["tracking_holdout_error_pct"]) < 15

CASES: list[Case] = [
    # ---- item 1, inputs: customer ids -------------------------------------------------------
    Case("mixed id types: customer 1 and '1' in a transaction log", lambda e: rfm(log(ids=(1, "1", 2))),
         DataValidationError, "customer_id", ("1",), match="mix types"),
    Case("mixed id types in an RFM frame", lambda e: bc.validate_rfm(rfm_frame(customer_id=[1, "1", 2])),
         DataValidationError, "customer_id", ("1",), match="astype\\(str\\)"),
    Case("boolean and integer ids (True == 1 in Python)", lambda e: rfm(log(ids=(1, True, 1))),
         DataValidationError, "customer_id", (True,)),
    Case("boolean ids", lambda e: rfm(log(ids=(True, True, False))), DataValidationError, "customer_id",
         match="booleans"),
    Case("blank customer ids (row positions)", lambda e: rfm(log(ids=("a", " ", "b"))),
         DataValidationError, "customer_id", (1,), match="blank"),
    Case("integer and float ids are one kind: 1 and 1.0 are one customer", lambda e: rfm(log(ids=(1, 1.0, 2))),
         None, rule=rfm_is(frequency=[1.0, 0.0], recency=[4.0, 0.0])),
    # ---- item 1, inputs: dates ----------------------------------------------------------------
    Case("mixed date formats: '05/01/2020' month first and '13/01/2020' day first",
         lambda e: rfm(log(ids=(1, 1, 2), dates=("05/01/2020", "13/01/2020", "07/02/2020"))),
         DataValidationError, "date", (1,), match="more than one format"),
    Case("mixed date formats: ISO and slashes", lambda e: rfm(log(ids=(1, 2, 3), dates=("2020-01-02", "05/01/2020", "2020-01-20"))),
         DataValidationError, "date", (2,), match="'%m/%d/%Y'"),
    Case("one date format with and without a time of day is one format",
         lambda e: rfm(log(dates=("2020-01-01", "2020-01-05 23:59", "2020-01-03T08:00:00"))),
         None, rule=rfm_is(frequency=[1.0, 0.0], recency=[4.0, 0.0], T=[4.0, 2.0])),
    Case("ambiguous day/month dates in one format read month first (pandas' reading), consistently",
         lambda e: rfm(log(dates=("05/01/2020", "06/01/2020", "05/03/2020"))),
         None, rule=rfm_is(frequency=[1.0, 0.0], recency=[31.0, 0.0], T=[31.0, 29.0])),
    Case("time-zone-aware and naive stamps mixed",
         lambda e: rfm(log(ids=(1, 1, 2), dates=(pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-01-05"),
                                                  pd.Timestamp("2020-01-03", tz="UTC")))),
         DataValidationError, "date", (1,), match="aware"),
    Case("aware stamps in several zones keep their own wall-clock dates",
         lambda e: rfm(log(dates=(pd.Timestamp("2020-01-01 23:30", tz="America/New_York"),
                                  pd.Timestamp("2020-01-05 00:30", tz="Asia/Tokyo"), pd.Timestamp("2020-01-03", tz="UTC")))),
         None, rule=rfm_is(frequency=[1.0, 0.0], recency=[4.0, 0.0])),
    Case("numbers among date strings (never read as epoch times)",
         lambda e: rfm(log(ids=(1, 1, 2), dates=("2020-01-01", 20200105, "2020-01-03"))),
         DataValidationError, "date", (1,), match="numeric"),
    Case("an unreadable first date", lambda e: rfm(log(ids=(3, 1, 2), dates=("soon", "2020-01-05", "2020-01-03"))),
         DataValidationError, "date", (3,), match="first date"),
    # ---- item 1, inputs: columns --------------------------------------------------------------
    Case("duplicate column names in a transaction log", lambda e: rfm(repeated_column(log(), "date")),
         DataValidationError, "date", match="appears 2 times"),
    Case("duplicate customer_id columns", lambda e: rfm(repeated_column(log(), "customer_id")),
         DataValidationError, "customer_id"),
    Case("duplicate column names in an RFM frame", lambda e: bc.validate_rfm(repeated_column(rfm_frame(), "frequency")),
         DataValidationError, "frequency"),
    Case("a repeated extra column of an RFM frame (kept for the models)",
         lambda e: bc.validate_rfm(repeated_column(rfm_frame(cohort=["x", "y", "x"]), "cohort")),
         DataValidationError, "cohort"),
    Case("an unused repeated column of a transaction log is no problem",
         lambda e: rfm(repeated_column(log(note=["x", "y", "z"]), "note")),
         None, rule=rfm_is(frequency=[1.0, 0.0])),
    # ---- item 1, inputs: RFM invariants -------------------------------------------------------
    Case("frequency > 0 with recency == 0 (an impossible history)",
         lambda e: bc.validate_rfm(rfm_frame(frequency=[0, 2, 1], recency=[0.0, 0.0, 1.5])),
         DataValidationError, "recency", ("b",), match="frequency > 0 but recency == 0"),
    Case("frequency == 0 with recency > 0", lambda e: bc.validate_rfm(rfm_frame(recency=[0.5, 3.0, 1.5])),
         DataValidationError, "recency", ("a",)),
    Case("recency > T", lambda e: bc.validate_rfm(rfm_frame(recency=[0.0, 3.5, 1.5])),
         DataValidationError, "recency", ("b",)),
    Case("non-integer frequency", lambda e: bc.validate_rfm(rfm_frame(frequency=[0, 2.5, 1])),
         DataValidationError, "frequency", ("b",)),
    Case("a frequency too large to be an exact count", lambda e: bc.validate_rfm(rfm_frame(frequency=[0, 1e300, 1])),
         DataValidationError, "frequency", ("b",), match="2\\*\\*53"),
    Case("infinite T", lambda e: bc.validate_rfm(rfm_frame(T=[4.0, np.inf, 5.0])), DataValidationError, "T", ("b",)),
    Case("float noise is cleaned: recency 1e-12 without repeat purchases, recency = T + 1e-12",
         lambda e: bc.validate_rfm(rfm_frame(recency=[1e-12, 3.0 + 1e-12, 1.5])),
         None, rule=rfm_is(recency=[0.0, 3.0, 1.5])),
    # ---- item 1, inputs: priors ---------------------------------------------------------------
    Case("misspelt prior argument Prior('HalfNormal', sd=0.01)", lambda e: Prior("HalfNormal", sd=0.01),
         PriorError, "sd", match="did you mean 'sigma'"),
    Case("prior out of range Prior('HalfNormal', sigma=-1), in a model", lambda e: bc.BetaGeoModel(
        priors={"r": Prior("HalfNormal", sigma=-1)}), PriorError, "sigma", match="HalfNormal.*> 0"),
    Case("prior missing an argument Prior('Gamma', alpha=2)", lambda e: Prior("Gamma", alpha=2),
         PriorError, "beta", match="alpha and beta \\| mu and sigma"),
    Case("prior argument given as a string", lambda e: Prior("Normal", mu="0", sigma=1), PriorError, "mu"),
    Case("a PyMC distribution that is no prior here", lambda e: Prior("MvNormal", mu=[0], cov=[[1]]), PriorError,
         match="not supported"),
    # ---- item 1, inputs: customer_lifetime_value arguments -------------------------------------
    *[Case(f"customer_lifetime_value({argument}={value!r})", lambda e, a=argument, v=value: clv(**{a: v}),
           ArgumentError, argument, match=match)
      for argument, value, match in [
          ("margin", np.nan, "finite"), ("margin", np.inf, "finite"), ("margin", -0.2, "\\[0, 1\\]"),
          ("margin", 1.5, "markup"), ("margin", 30, "\\[0, 1\\]"), ("margin", "0.3", "number"),
          ("margin", True, "number"),
          ("service_cost_per_period", np.inf, "finite"), ("service_cost_per_period", np.nan, "finite"),
          ("service_cost_per_period", -1.0, ">= 0"),
          ("acquisition_cost", np.nan, "finite"), ("acquisition_cost", -5.0, ">= 0"),
          ("discount_rate", 10, "pass 0.1\\b"), ("discount_rate", 1.5, "percentage"),
          ("discount_rate", np.nan, "finite"), ("discount_rate", np.inf, "finite"), ("discount_rate", -1, "> -1"),
          ("discount_rate", "0.01", "number"),
          ("horizon", "12", "whole number"), ("horizon", 2.5, "whole number"), ("horizon", 0, ">= 1"),
          ("horizon", True, "whole number"), ("horizon", np.nan, "whole number"), ("horizon", None, "whole number"),
          ("time_unit", "fortnight", "allowed units"),
      ]],
    Case("customer_lifetime_value(margin=1.0, discount_rate=1.0): the bounds themselves are allowed",
         lambda e: clv(e, margin=1.0, discount_rate=1.0), None, rule=lambda v, e: np.isfinite(v.values).all()),
    Case("customer_lifetime_value(horizon=3.0): a whole float is a horizon", lambda e: clv(e, horizon=3.0), None,
         rule=clv_matches(horizon=3)),
    # ---- item 1, model side: spend data, horizons as strings, grouped tracking ---------------------
    Case("Gamma-Gamma fit on data without repeat buyers (it returned the prior as a fit)",
         lambda e: bc.GammaGammaModel().fit(e.models["BetaGeoModel"].data.query("frequency == 0").assign(
             monetary_value=0.0), method="map", progressbar=False),
         DataValidationError, "frequency", match="repeat buyers .* have none"),
    *[Case(f"horizon given as a string: {label}", lambda e, f=f: f(e.models["BetaGeoModel"]), ArgumentError, argument)
      for label, f, argument in [
          ("expected_purchases('12')", lambda m: m.expected_purchases("12"), "t"),
          ("probability_alive_at('12')", lambda m: m.probability_alive_at("12"), "t"),
          ("expected_purchases_new_customer('12')", lambda m: m.expected_purchases_new_customer("12"), "t"),
          ("discounted_expected_purchases(['4', '8'], ...)",
           lambda m: m.discounted_expected_purchases(["4", "8"], [0.9, 0.8]), "t"),
          ("discounted_probability_alive(['0', '4'], ...)",
           lambda m: m.discounted_probability_alive(["0", "4"], [0.9, 0.8]), "t"),
          ("probability_of_purchases('1', 12)", lambda m: m.probability_of_purchases("1", 12), "n"),
          ("probability_of_purchases(True, 12)", lambda m: m.probability_of_purchases(True, 12), "n"),
      ]],
    Case("horizon given as a string: Pareto/NBD probability_alive_at('12') (a raw numpy TypeError)",
         lambda e: e.models["ParetoNBDModel"].probability_alive_at("12"), ArgumentError, "t"),
    Case("grouped model: evaluate(..., transactions=tx) (broadcasting ValueError; also broke build_report)",
         grouped_tracking, None, rule=tracks_each_group_with_its_own_parameters),
    # ---- item 2, model files (bayesclv.models.persistence) ---------------------------------------
    Case("save() over an existing file", lambda e: save_over(e), OverwriteError, match="overwrite=True"),
    Case("save(overwrite=True) over an existing file", lambda e: save_over(e, overwrite=True), None,
         rule=lambda out, e: out == e.saved().read_bytes() or pytest.fail("not replaced")),
    Case("save() interrupted while writing: the old file stays, no temporary file is left",
         interrupted_save, None, rule=lambda names, e: names == ["bg.nc", "old.nc"] or pytest.fail(str(names))),
    Case("load a truncated file", lambda e: bc.load(file_of(e, "half.nc", lambda b: b[: len(b) // 2])),
         ModelFileError, match="not a readable netCDF file"),
    Case("load a file of random bytes", lambda e: bc.load(file_of(e, "r.nc", np.random.default_rng(0).bytes(4096))),
         ModelFileError, match="not a readable netCDF file"),
    Case("load an empty file", lambda e: bc.load(file_of(e, "empty.nc", b"")), ModelFileError,
         match="not a readable netCDF file"),
    Case("load a foreign netCDF file",
         lambda e: bc.load(xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(e.folder / "f.nc", engine="h5netcdf")
                           or e.folder / "f.nc"), ModelFileError, match="not a bayesclv model file"),
    Case("load a file naming an unknown class", lambda e: bc.load(tampered(e, bayesclv_model="WeibullModel")),
         ModelFileError, match="unknown model class 'WeibullModel'; known classes: .*BetaGeoModel"),
    Case("load a file with a bad JSON attribute (priors)", lambda e: bc.load(tampered(e, priors="{not json")),
         ModelFileError, match="attribute 'priors' is not valid JSON"),
    Case("load a file with a bad JSON attribute (config)", lambda e: bc.load(tampered(e, config="[1, 2")),
         ModelFileError, match="attribute 'config' is not valid JSON"),
    Case("load a BG/NBD file marked as ParetoNBDModel", lambda e: bc.load(tampered(e, bayesclv_model="ParetoNBDModel")),
         ModelFileError, match="do not fit the class it names, ParetoNBDModel"),
    Case("load a file of a newer format", lambda e: bc.load(tampered(e, bayesclv_format=FORMAT_VERSION + 1)),
         ModelFileError, match=f"format {FORMAT_VERSION + 1} .* reads formats up to {FORMAT_VERSION}: upgrade"),
    Case("load a file whose format number is not a number", lambda e: bc.load(tampered(e, bayesclv_format="1")),
         ModelFileError, match="format number '1'"),
    Case("load a file written before format numbers (no bayesclv_format): read as format 1",
         lambda e: bc.load(tampered(e, drop=("bayesclv_format", "bayesclv_version"))), None,
         rule=loads_like_saved),
    Case("load a file marked bayesclv_version=99.0 in the current format: the format decides, not the version",
         lambda e: bc.load(tampered(e, bayesclv_version="99.0")), None, rule=loads_like_saved),
    Case("load a file with time_unit='fortnight'", lambda e: bc.load(tampered(e, time_unit="fortnight")),
         ModelFileError, match="bad time unit.*'fortnight'"),
    Case("load a file with an unknown fit method", lambda e: bc.load(tampered(e, fit_method="magic")),
         ModelFileError, match="unknown fit method 'magic'"),
    Case("load a file with a NaN posterior",
         lambda e: bc.load(tampered(e, posterior=lambda p: p.assign(r=p["r"] * np.nan))),
         ModelFileError, match="non-finite values: r \\(100% of its values\\)"),
    # ---- item 3, CLI: rows to be added with the CLI work -----------------------------------------
    # ---- item 4, interrupts (bayesclv.models.inference.fit_posterior; the CLI's exit 130 is in test_cli.py) ---
    Case("Ctrl-C during a nutpie NUTS fit (nutpie returned its partial draws as a fitted model)",
         lambda e: interrupted_fit(e, "nuts", sampler="nutpie", draws=10**6, tune=500, chains=2), None,
         rule=unchanged_after_interrupt),
    Case("Ctrl-C during ADVI (PyMC stopped the optimiser and returned the approximation so far)",
         lambda e: interrupted_fit(e, "advi", tune=10**6, draws=100), None, rule=unchanged_after_interrupt),
    # ---- item 5, CLV cost; item 6, Gamma-Gamma: rows to be added with that work -
]


@pytest.mark.parametrize("case", CASES, ids=[c.case for c in CASES])
def test_case(case: Case, request):
    env = Env(request)
    if case.error is None:
        case.rule(case.call(env), env)
        return
    with pytest.raises(case.error) as info:
        case.call(env)
    err, text = info.value, str(info.value)
    if case.name is not None:
        named = err.column if isinstance(err, DataValidationError) else err.argument
        assert named == case.name and repr(case.name) in text
    assert err.rows == list(case.rows) if isinstance(err, DataValidationError) else not case.rows
    for row in case.rows:
        assert repr(row) in text
    if case.match is not None:
        assert re.search(case.match, text), text
    if isinstance(err, PriorError):
        assert repr(err.distribution) in text


def test_every_case_names_a_typed_error_or_a_rule():
    for case in CASES:
        assert (case.error is None) == (case.rule is not None), case.case
        assert case.error is None or issubclass(case.error, BayesCLVError), case.case


def test_model_file_paths_that_do_not_exist_are_file_not_found(map_models, tmp_path):
    # Not bayesclv errors but Python's own, as for any file function: no folder to save into, no file to load.
    with pytest.raises(FileNotFoundError, match="does not exist"):
        map_models["BetaGeoModel"].save(tmp_path / "missing" / "m.nc")
    with pytest.raises(FileNotFoundError, match="no model file"):
        bc.load(tmp_path / "none.nc")
    assert list(tmp_path.iterdir()) == []


def test_every_model_file_error_is_also_a_value_error():
    # code written before ModelFileError caught ValueError around load(); OverwriteError is a FileExistsError
    assert issubclass(ModelFileError, ValueError) and issubclass(OverwriteError, FileExistsError)


# --------------------------------------------------------------------------- priors against PyMC
# valid parameters of every supported distribution, together covering each of its arguments
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "Normal": [{"mu": 0.5, "sigma": 2.0}, {"mu": -1.0, "tau": 0.5}],
    "HalfNormal": [{"sigma": 2.0}, {"tau": 0.5}],
    "LogNormal": [{"mu": 0.5, "sigma": 1.5}, {"tau": 2.0}],
    "TruncatedNormal": [{"mu": 1.0, "sigma": 2.0, "lower": 0.0, "upper": 5.0}, {"tau": 0.5, "lower": -1.0}],
    "SkewNormal": [{"alpha": 2.0, "mu": 0.0, "sigma": 1.0}, {"alpha": -1.0, "tau": 4.0}],
    "StudentT": [{"nu": 3.0, "mu": 1.0, "sigma": 2.0}, {"nu": 5.0, "lam": 0.5}],
    "HalfStudentT": [{"nu": 3.0, "sigma": 2.0}, {"nu": 1.0, "lam": 0.25}],
    "Cauchy": [{"alpha": 0.0, "beta": 2.0}],
    "HalfCauchy": [{"beta": 2.0}],
    "Laplace": [{"mu": 1.0, "b": 0.5}],
    "Logistic": [{"mu": 1.0, "s": 2.0}],
    "Gumbel": [{"mu": 0.0, "beta": 1.5}],
    "Exponential": [{"lam": 2.0}, {"scale": 3.0}],
    "Gamma": [{"alpha": 2.0, "beta": 4.0}, {"mu": 3.0, "sigma": 1.0}],
    "InverseGamma": [{"alpha": 3.0, "beta": 2.0}, {"mu": 2.0, "sigma": 1.0}],
    "Weibull": [{"alpha": 1.5, "beta": 2.0}],
    "Pareto": [{"alpha": 3.0, "m": 0.5}],
    "ChiSquared": [{"nu": 4.0}],
    "Beta": [{"alpha": 2.0, "beta": 3.0}, {"mu": 0.3, "sigma": 0.1}, {"mu": 0.6, "nu": 5.0}],
    "Uniform": [{"lower": -1.0, "upper": 3.0}],
    "Flat": [{}],
    "HalfFlat": [{}],
}
# out-of-range values per rule, and whether PyMC refuses them too (an infinite location is a limit PyMC may allow)
_BAD = {"> 0": [(-1.0, True), (0.0, True)], "in (0, 1)": [(1.5, True), (0.0, True)],
        "a finite number": [(np.nan, True), (np.inf, False)], "a number or None": [(np.nan, True)]}


def _pymc_logp(distribution: str, parameters: dict, at: float) -> float:
    """PyMC's own log density of ``distribution(**parameters)`` at ``at`` (nan if PyMC refuses the parameters)."""
    try:
        return float(pm.logp(getattr(pm, distribution).dist(**parameters), at).eval(mode="FAST_COMPILE"))
    except (ValueError, ZeroDivisionError, pm.logprob.utils.ParameterValueError):
        return np.nan


def test_examples_cover_every_supported_distribution_and_argument():
    assert set(EXAMPLES) == set(SUPPORTED)
    for name, (ranges, _) in SUPPORTED.items():
        assert set().union(*EXAMPLES[name]) == set(ranges), name
        # the table's names are the arguments of PyMC's own signature
        assert set(ranges) <= set(inspect.signature(getattr(pm, name).dist).parameters), name


@pytest.mark.parametrize("distribution", sorted(SUPPORTED))
def test_prior_accepts_what_pymc_accepts_and_refuses_what_it_refuses(distribution):
    ranges, _ = SUPPORTED[distribution]
    for example in EXAMPLES[distribution]:
        prior = Prior(distribution, **example)
        with pm.Model() as model:
            prior.create("x")
        assert np.isfinite(model.compile_logp()(model.initial_point()))
        at = float(support_point(getattr(pm, distribution).dist(**example)).eval())
        assert np.isfinite(_pymc_logp(distribution, example, at))
        for argument in example:
            for bad, pymc_refuses in _BAD[ranges[argument]]:
                with pytest.raises(PriorError) as info:
                    Prior(distribution, **{**example, argument: bad})
                assert info.value.argument == argument and info.value.distribution == distribution
                if pymc_refuses:  # PyMC itself has no finite density there (or refuses the parameters)
                    assert not np.isfinite(_pymc_logp(distribution, {**example, argument: bad}, at)), (argument, bad)
        with pytest.raises(PriorError, match="unknown argument"):
            Prior(distribution, **example, sd=1.0)


def test_prior_joint_rules_agree_with_pymc():
    cases = [("Uniform", {"lower": 2.0, "upper": 1.0}, 1.5, "upper"),
             ("TruncatedNormal", {"mu": 0.0, "sigma": 1.0, "lower": 2.0, "upper": 1.0}, 1.5, "upper"),
             ("Beta", {"mu": 0.5, "sigma": 0.6}, 0.5, "sigma")]
    for distribution, parameters, at, argument in cases:
        with pytest.raises(PriorError) as info:
            Prior(distribution, **parameters)
        assert info.value.argument == argument
        assert not np.isfinite(_pymc_logp(distribution, parameters, at))


def test_prior_parametrisations():
    with pytest.raises(PriorError, match="got sigma and tau"):
        Prior("Normal", sigma=1.0, tau=1.0)
    with pytest.raises(PriorError, match="nu and sigma"):
        Prior("StudentT", sigma=1.0)
    assert Prior("Normal", mu=[0.0, 1.0], sigma=[1.0, 2.0]).parameters["sigma"] == [1.0, 2.0]
    with pytest.raises(PriorError, match="> 0"):
        Prior("HalfNormal", sigma=[1.0, -2.0])
    assert Prior("TruncatedNormal", sigma=1.0, lower=None, upper=3.0).parameters["lower"] is None
    # a saved prior comes back through the same checks
    assert Prior.from_dict(Prior("Gamma", mu=2.0, sigma=0.5).to_dict()) == Prior("Gamma", mu=2.0, sigma=0.5)
    with pytest.raises(PriorError):
        Prior.from_dict({"distribution": "HalfNormal", "parameters": {"sd": 1.0}})


# --------------------------------------------------------------------------- hostile transaction logs
_DAY = st.tuples(st.integers(1, 12), st.integers(13, 28), st.integers(0, 23))  # days > 12: slashes unambiguous
_ZONES = ("UTC", "America/New_York", "Asia/Kolkata")
_ID_KINDS = {
    "int": st.integers(-3, 5),
    "huge int": st.integers(2**63 - 2, 2**64 + 3),
    "float": st.floats(-3, 5, allow_nan=False, allow_infinity=False),
    "text": st.text(min_size=0, max_size=4),
    "hostile text": st.sampled_from(["<script>", '"><img onerror=x>', "1", " ", "", "\u202e", "😀", "007", "7"]),
    "bool": st.booleans(),
    "missing": st.sampled_from([None, np.nan]),
}
_RENDER = ("stamp", "aware stamp", "iso", "iso time", "us", "eu", "number", "missing", "empty")


def _render(kind: str, day: pd.Timestamp, zone: str):
    return {"stamp": day, "aware stamp": day.tz_localize(zone), "iso": day.strftime("%Y-%m-%d"),
            "iso time": day.strftime("%Y-%m-%d %H:%M"), "us": day.strftime("%m/%d/%Y"),
            "eu": day.strftime("%d/%m/%Y"), "number": int(day.strftime("%Y%m%d")), "missing": None,
            "empty": ""}[kind]


def _one_or_two(kinds) -> st.SearchStrategy[list]:
    """One kind (half the time, so that valid inputs come up) or two different kinds to mix."""
    return st.one_of(st.sampled_from(sorted(kinds)).map(lambda k: [k]),
                     st.lists(st.sampled_from(sorted(kinds)), min_size=2, max_size=2, unique=True))


@st.composite
def hostile_logs(draw):
    """A transaction log with ids, dates and values drawn from hostile kinds, and the true purchase days."""
    id_kinds = draw(_one_or_two(_ID_KINDS))
    pool = draw(st.lists(st.one_of(*[_ID_KINDS[k] for k in id_kinds]), min_size=1, max_size=4))
    renders = draw(_one_or_two(_RENDER))
    values = st.floats(0, 1e6)
    if draw(st.integers(0, 2)) == 0:  # a third of the logs have some hostile values
        values = st.one_of(values, st.sampled_from([np.nan, np.inf, -1.0, 1e308, "12", "x", None, True]))
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        month, day, hour = draw(_DAY)
        stamp = pd.Timestamp(2020, month, day, hour)
        rows.append((draw(st.sampled_from(pool)), stamp, _render(draw(st.sampled_from(renders)), stamp,
                                                               draw(st.sampled_from(_ZONES))), draw(values)))
    tx = pd.DataFrame({"customer_id": pd.Series([r[0] for r in rows], dtype=object),
                       "date": pd.Series([r[2] for r in rows], dtype=object),
                       "value": pd.Series([r[3] for r in rows], dtype=object)})
    if draw(st.booleans()):  # the columns as pandas would infer them from the values
        tx = tx.infer_objects()
    if draw(st.integers(0, 5)) == 0:
        tx = repeated_column(tx, draw(st.sampled_from(["customer_id", "date", "value"])))
    return tx, [r[1] for r in rows]


def _expected_rfm(ids: list, days: list[pd.Timestamp], values: list[float]) -> pd.DataFrame:
    """RFM rows in days computed directly from the true purchase days (same-day purchases merged)."""
    truth = pd.DataFrame({"id": pd.Series(ids, dtype=object), "day": [d.normalize() for d in days],
                          "value": values})
    end = truth["day"].max()
    rows = {}
    for key, group in truth.groupby("id", sort=False):
        daily = group.groupby("day")["value"].sum().sort_index()
        repeat = daily.iloc[1:]
        rows[key] = ((len(daily) - 1), (daily.index[-1] - daily.index[0]).days, (end - daily.index[0]).days,
                     repeat.mean() if len(repeat) else 0.0)
    return pd.DataFrame(rows, index=["frequency", "recency", "T", "monetary_value"]).T


def assert_rfm_invariants(out: pd.DataFrame) -> None:
    """What every RFM frame the library returns satisfies."""
    f, r, t = (out[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    assert not out["customer_id"].duplicated().any() and not out["customer_id"].isna().any()
    assert np.isfinite(f).all() and np.isfinite(r).all() and np.isfinite(t).all()
    assert ((f >= 0) & (f == np.round(f))).all()
    assert ((r >= 0) & (r <= t)).all()
    np.testing.assert_array_equal(f == 0, r == 0)
    if "monetary_value" in out:
        m = out["monetary_value"].to_numpy(dtype=float)
        assert (np.isfinite(m) & (m >= 0)).all()


_HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_HOSTILE
@given(case=hostile_logs())
def test_rfm_summary_on_hostile_logs_is_a_typed_error_or_right(case):
    tx, days = case
    try:
        out = bc.rfm_summary(tx, value="value", time_unit="D")
    except DataValidationError as err:
        event(f"typed error on column {err.column}")
        return
    event("RFM frame")
    assert_rfm_invariants(out)
    assert (out.loc[out["frequency"] == 0, "monetary_value"] == 0).all()
    expected = _expected_rfm(tx["customer_id"].tolist(), days, pd.to_numeric(tx["value"]).tolist())
    assert len(out) == len(expected)  # no customers merged or split
    got = out.set_index("customer_id")
    for key, row in expected.iterrows():  # dates read as written: no format mixed up, no zone shifted
        np.testing.assert_allclose(got.loc[[key], ["frequency", "recency", "T"]].to_numpy(dtype=float)[0],
                                   row[["frequency", "recency", "T"]].to_numpy(dtype=float))
        np.testing.assert_allclose(float(got.loc[key, "monetary_value"]), row["monetary_value"], rtol=1e-9)
    bc.validate_rfm(out, require_monetary=True, time_unit="D")


_NUMBER = st.one_of(st.integers(-2, 10), st.floats(-1, 50), st.sampled_from([np.nan, np.inf, -np.inf, 1e300, 2**70,
                                                                            "3", "", "x", None, True]))


@st.composite
def hostile_rfm_frames(draw):
    n = draw(st.integers(1, 8))
    plausible = draw(st.booleans())  # half the frames are drawn from possible histories, to reach the valid path
    id_kinds = draw(_one_or_two(set(_ID_KINDS) - ({"bool", "missing"} if plausible else set())))
    ids = draw(st.lists(st.one_of(*[_ID_KINDS[k] for k in id_kinds]), min_size=n, max_size=n, unique=plausible))
    columns = {}
    if plausible:
        f = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n))
        t = draw(st.lists(st.floats(1e-3, 1e4), min_size=n, max_size=n))
        share = draw(st.lists(st.floats(0.01, 1), min_size=n, max_size=n))
        columns.update(frequency=f, T=t, recency=[0.0 if fi == 0 else s * ti for fi, s, ti in zip(f, share, t)],
                       monetary_value=draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n)))
    else:
        for column in ("frequency", "recency", "T", "monetary_value"):
            columns[column] = draw(st.lists(_NUMBER, min_size=n, max_size=n))
    frame = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object),
                          **{k: pd.Series(v, dtype=object) for k, v in columns.items()}})
    if draw(st.booleans()):
        frame = frame.infer_objects()
    if draw(st.integers(0, 5)) == 0:
        frame = repeated_column(frame, draw(st.sampled_from(list(frame.columns))))
    return frame


@_HOSTILE
@given(frame=hostile_rfm_frames())
def test_validate_rfm_on_hostile_frames_is_a_typed_error_or_valid(frame):
    try:
        out = bc.validate_rfm(frame, require_monetary=True)
    except DataValidationError as err:
        event(f"typed error on column {err.column}")
        return
    event("valid frame")
    assert_rfm_invariants(out)
    assert out["customer_id"].tolist() == frame["customer_id"].tolist() and len(out) == len(frame)
    np.testing.assert_allclose(out["T"], pd.to_numeric(frame["T"]).astype(float))
    np.testing.assert_allclose(out["frequency"], pd.to_numeric(frame["frequency"]).astype(float), atol=1e-9)


# --------------------------------------------------------------------------- hostile ids in the report
HOSTILE_IDS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "O'Brien & <Co>", "</table><h1>x",
               "${sections}", "$\\frac{$", "\u202eevil", "😀"]


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_report_escapes_hostile_customer_ids(cdnow_rfm):
    data = cdnow_rfm.iloc[:40].copy()
    data["customer_id"] = [HOSTILE_IDS[i] if i < len(HOSTILE_IDS) else f"c{i}" for i in range(len(data))]
    bg = bc.BetaGeoModel().fit(data, method="map", progressbar=False)
    gg = bc.GammaGammaModel().fit(data, method="map", progressbar=False)
    report = build_report(bg, gg, data, top=len(data), progressbar=False, random_seed=1)
    elements = _Elements()
    elements.feed(report.html)
    assert "script" not in {tag for tag, _ in elements.tags}
    for tag, attrs in elements.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,")
    for hostile in HOSTILE_IDS[:4]:  # shown escaped, in the per-customer tables
        assert hostile not in report.html
        assert hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in report.html
    assert "${sections}" in report.html  # no template substitution inside a value
    assert set(report.tables["customers"].index) == set(data["customer_id"])
