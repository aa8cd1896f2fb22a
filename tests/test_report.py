"""HTML report: built from a short NUTS fit (and a MAP fit) on the CDNOW sample, checked as text and in
headless Chromium: the first screen's figures against the library's own computations, words for the reader,
and honest labels for a point estimate."""

import base64
import html as html_lib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import bayesclv as bc
from bayesclv import segment
from bayesclv.cli import app
from bayesclv.report import build_report

SECTIONS = ("summary", "glossary", "clv", "tiers", "segments", "top", "targeting", "tracking", "data", "model",
            "method")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# the flags the project runs Chromium with: no network services, no sandbox (root in CI), a fresh profile
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# the library's column names that a reader must not meet in the report
RAW_NAMES = ("share_mean", "share_lower", "clv_lower", "clv_mean", "p_top_10", "p_alive_mean", "pit_coverage_90",
             "interval_mass_90", "coverage_90", "hdi_lower", "r_hat", "ess_bulk", "ess_tail", "customer_id",
             "predicted_total", "mean certainty", "(eti)")


@pytest.fixture(scope="module")
def report(cdnow_rfm, tmp_path_factory):
    """Short NUTS fits (2 chains x 150 draws): enough draws for intervals, fast enough for the suite."""
    fit = dict(method="nuts", draws=150, tune=250, chains=2, random_seed=7, progressbar=False)
    with pytest.warns(bc.errors.ConvergenceWarning):  # short chains: the report must say so
        bg = bc.BetaGeoModel().fit(cdnow_rfm, **fit)
        gg = bc.GammaGammaModel().fit(cdnow_rfm, **fit)
    path = tmp_path_factory.mktemp("report") / "report.html"
    built = build_report(bg, gg, cdnow_rfm, transactions=bc.datasets.load_cdnow("sample"), out=path,
                         currency="USD", progressbar=False, random_seed=7, offer_cost=5.0, uplift=0.1,
                         min_prob_positive=0.8)
    return built, path, bg, gg


@pytest.fixture(scope="module")
def map_report(map_models, cdnow_rfm):
    return build_report(map_models["BetaGeoModel"], map_models["GammaGammaModel"], cdnow_rfm, horizon=6,
                        currency="€", progressbar=False, random_seed=3)


def visible_text(document: str) -> str:
    """What a reader sees: no style sheet, tags or image data; entities decoded; spaces collapsed."""
    body = re.sub(r"<style.*?</style>", " ", document, flags=re.S)
    body = re.sub(r'src="data:[^"]*"', "", body)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def element(document: str, element_id: str) -> str:
    """Visible text of the section (or headline card) with this id."""
    end = "</div></div>" if element_id.startswith("headline-") else "</section>"
    match = re.search(rf'id="{element_id}">(.*?){end}', document, flags=re.S)
    assert match, element_id
    return visible_text(match.group(1))


def test_report_is_self_contained(report):
    built, path, _, _ = report
    text = path.read_text(encoding="utf-8")
    assert text == built.html
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in text
    # no external resources: nothing is loaded from a URL
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 6  # CLV bands, tiers, top customers, targeting curve, tracking, holdout by frequency
    assert "Tracking plot: cumulative repeat purchases" in text
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "credible" in text and "predictive" in text


def test_first_screen_has_the_headline_figures_with_intervals_and_units(report, cdnow_rfm):
    built, _, bg, gg = report
    n = len(cdnow_rfm)
    clv = bc.customer_lifetime_value(bg, gg, cdnow_rfm, horizon=12, time_unit="M", discount_rate=0.01)
    total = segment.group_totals(clv).loc["all"]
    value = element(built.html, "headline-value")
    assert "Value of the customer base, next 12 months" in value
    assert f"USD {total['mean']:,.0f}" in value
    assert f"90% credible interval: USD {total['lower']:,.0f} – {total['upper']:,.0f}" in value
    assert f"all {n:,} customers' CLV over the 12 months from 1997-09-30" in value

    active = segment.group_totals(bg.probability_alive(cdnow_rfm)).loc["all"]
    card = element(built.html, "headline-active")
    assert f"Customers likely still active, of {n:,} {active['mean']:,.0f} ({active['mean'] / n:.1%})" in card
    assert (f"90% credible interval: {active['lower']:,.0f} – {active['upper']:,.0f} "
            f"({active['lower'] / n:.1%} – {active['upper'] / n:.1%})") in card
    # BG/NBD: customers without a repeat purchase are alive with probability 1, and the card says so
    assert f"counts the {int((cdnow_rfm['frequency'] == 0).sum()):,} who never bought again" in card

    tiers = segment.group_totals(clv, segment.value_tiers(clv)["tier"]).loc["top 10%"]
    card = element(built.html, "headline-top")
    assert f"{tiers['share_mean']:.1%}" in card
    assert f"90% credible interval: {tiers['share_lower']:.1%} – {tiers['share_upper']:.1%}" in card
    assert f"{tiers['customers']:,} customers worth USD {tiers['mean']:,.0f}" in card
    np.testing.assert_allclose(built.tables["headline"].loc["value of the customer base", ["mean", "lower", "upper"]]
                               .to_numpy(dtype=float), total[["mean", "lower", "upper"]].to_numpy(dtype=float))

    summary = element(built.html, "summary")
    assert summary.startswith("At a glance: the 12 months after 1997-09-30")
    assert "Who matters" in summary and "Top customers" in summary and "An offer costing USD 5.00" in summary
    top = clv.mean(("chain", "draw")).to_series().sort_values(ascending=False)
    assert f"{top.index[0]} {top.iloc[0]:,.2f}" in summary  # the most valuable customer, first


def test_convergence_in_one_sentence_not_green_when_poor(report):
    built, *_ = report
    verdict = re.search(r'<div class="verdict (\w+)"><p>(.*?)</p>', built.html)
    assert verdict.group(1) == "poor"  # 2 x 150 draws do not pass the checks
    assert verdict.group(2).startswith("Not reliable yet: the sampler did not converge")
    numbers = re.search(r"<details><summary>the numbers behind this</summary><p>(.*?)</p>", built.html).group(1)
    assert "largest R-hat" in numbers and "divergent transitions" in numbers


def test_glossary_and_what_the_parameters_say(report):
    built, _, bg, gg = report
    glossary = element(built.html, "glossary")
    for term in ("Customer lifetime value (CLV)", "Still active, P(alive)", "90% credible interval",
                 "90% predictive interval", "Value tiers", "What the model says about your customers"):
        assert term in glossary
    post = bg.posterior
    rate = (365.25 / 7 * post["r"] / post["alpha"]).values.ravel()
    lo, hi = np.quantile(rate, [0.05, 0.95])
    assert (f"buys on average {rate.mean():.2f} (90% credible interval {lo:.2f} – {hi:.2f}) times a year"
            in glossary)
    dropout = (post["a"] / (post["a"] + post["b"])).values.ravel()
    assert f"stops buying for good with probability {dropout.mean():.1%}" in glossary
    spend = (gg.posterior["p"] * gg.posterior["gamma"] / (gg.posterior["q"] - 1)).values.ravel()
    assert f"spends USD {spend.mean():,.2f}" in glossary


def test_plain_words_for_the_reader(report):
    built, _, bg, _ = report
    text = visible_text(built.html)
    for name in RAW_NAMES:
        assert name not in text
    assert re.findall(r"\b\w+_\w+\b", text) == []  # no snake_case identifiers at all
    # integer ESS in the statistician's table
    statistician = element(built.html, "model")
    for ess in (*bg.summary()["ess_bulk"], *bg.summary()["ess_tail"]):
        assert f"{ess:,.0f}" in statistician and f"{ess:,.4f}" not in statistician
    holdout = element(built.html, "tracking")
    assert "share of customers whose actual purchases lie inside their 90% predictive interval" in holdout
    assert "predicted" in holdout and "happened" in holdout


def test_map_report_says_point_estimate_never_credible(map_report, map_models, cdnow_rfm):
    text = visible_text(map_report.html)
    assert "credible" not in text
    verdict = re.search(r'<div class="verdict (\w+)"><p>(.*?)</p>', map_report.html)
    assert verdict.group(1) == "note"  # not the green "ok"
    assert "point estimates (no posterior uncertainty)" in verdict.group(2)
    clv = bc.customer_lifetime_value(map_models["BetaGeoModel"], map_models["GammaGammaModel"], cdnow_rfm,
                                     horizon=6, time_unit="M", discount_rate=0.01)
    value = element(map_report.html, "headline-value")
    assert f"€{float(clv.sum()):,.0f}" in value and "point estimate (no posterior uncertainty)" in value
    assert "interval" not in value
    assert "Value of the customer base, next 6 months" in value


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="headless Chromium not installed (apt-get install chromium chromium-driver; .ci/run does)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    _, path, _, _ = report
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(Path(path).as_uri())
        assert driver.title == "Customer lifetime value report"
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        # the first screen answers before any scrolling: cards, verdict, tiers, top customers, the offer
        viewport = driver.execute_script("return window.innerHeight")
        for selector in ("#headline-value", "#headline-active", "#headline-top", ".verdict", ".who", ".offer"):
            box = driver.find_element(By.CSS_SELECTOR, selector).rect
            assert box["y"] + box["height"] <= viewport, f"{selector} below the first screen"
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 6
        for image in images:  # every figure decoded and laid out at a real size
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 300
            assert image.size["height"] > 100
        for table in driver.find_elements(By.CSS_SELECTOR, "table.data"):  # no table wider than its section
            section = table.find_element(By.XPATH, "./ancestor::section")
            assert table.rect["x"] + table.rect["width"] <= section.rect["x"] + section.rect["width"] + 1
        tier_rows = driver.find_elements(By.CSS_SELECTOR, "#tiers table.data tbody tr")
        assert [row.find_element(By.TAG_NAME, "th").text for row in tier_rows] == ["top 10%", "top 10%-20%", "rest"]
        method = driver.find_element(By.ID, "method").text
        assert "credible intervals" in method and "Predictive intervals" in method
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        driver.quit()


def test_report_command_takes_currency_and_horizon(tmp_path):
    src = tmp_path / "tx.csv"
    bc.datasets.load_cdnow("sample").to_csv(src, index=False)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(src), "--method", "map", "--calibration-end", "1997-09-30",
                                      "--currency", "EUR", "--horizon", "2", "--horizon-unit", "Y", "--out",
                                      str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    value = element(out.read_text(encoding="utf-8"), "headline-value")
    assert "Value of the customer base, next 2 years" in value and "EUR " in value


def _stub(name, method, **diagnostics):
    from types import SimpleNamespace

    import xarray as xr

    posterior = xr.Dataset(attrs={"fit_method": method, "point_estimate": int(method == "map")})
    return SimpleNamespace(display_name=name, fit_method=method, diagnostics=diagnostics, posterior=posterior)


def test_verdict_is_green_only_for_converged_nuts():
    from bayesclv.report.wording import Uncertainty, convergence_verdict

    good = dict(max_r_hat=1.002, min_ess_bulk=2100.0, min_ess_tail=1800.0, divergences=0, n_draws=4000, ok=True)
    cases = {
        ("nuts", "nuts"): ("credible", "ok", "90% credible interval"),
        ("map", "map"): ("point", "note", "point estimate (no posterior uncertainty)"),
        ("nuts", "map"): ("partial", "note", "90% interval (without the uncertainty of Gamma-Gamma)"),
        ("advi", "nuts"): ("approximate", "note", "90% interval (ADVI approximation)"),
    }
    for (first, second), (kind, css, interval) in cases.items():
        models = [_stub("BG/NBD", first, **(good if first == "nuts" else {})),
                  _stub("Gamma-Gamma", second, **(good if second == "nuts" else {}))]
        uncertainty = Uncertainty.of(models, 0.9)
        assert (uncertainty.kind, uncertainty.interval) == (kind, interval)
        verdict = convergence_verdict(models, uncertainty)
        assert verdict.startswith(f'<div class="verdict {css}">')
        assert ("credible" in visible_text(verdict)) == (kind == "credible")
    poor = [_stub("BG/NBD", "nuts", **{**good, "max_r_hat": 1.05, "ok": False}), _stub("Gamma-Gamma", "nuts", **good)]
    verdict = convergence_verdict(poor, Uncertainty.of(poor, 0.9))
    assert 'class="verdict poor"' in verdict and "did not converge for BG/NBD" in verdict
    assert "largest R-hat 1.050 (needs &lt; 1.01)" in verdict


def test_holdout_labels_are_words():
    from bayesclv.report.wording import holdout_label

    for metric in ("mae", "rmse", "bias", "predicted_total", "actual_total", "total_error_pct", "correlation", "auc",
                   "brier", "coverage_90", "interval_mass_90", "pit_coverage_90", "tracking_holdout_error_pct",
                   "some_future_metric"):
        assert "_" not in holdout_label(metric)
    assert holdout_label("pit_coverage_80") == "the same share by randomised PIT (a calibrated model shows exactly 80%)"


def test_user_strings_are_escaped(map_models, cdnow_rfm):
    data = cdnow_rfm.drop(columns=["frequency_holdout", "T_holdout"])
    data["customer_id"] = "<b>" + data["customer_id"].astype(str)
    data.attrs = dict(cdnow_rfm.attrs)
    built = build_report(map_models["BetaGeoModel"], map_models["GammaGammaModel"], data, currency="<i>€</i>",
                         title="<script>alert(1)</script>", progressbar=False)
    assert "<script" not in built.html and "<i>" not in built.html and "<b>" not in built.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in built.html and "&lt;i&gt;€&lt;/i&gt;" in built.html
    assert "<b>509" in element(built.html, "summary")  # the top customer's id, shown as text
