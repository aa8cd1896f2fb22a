"""HTML report: built from a short NUTS fit on the CDNOW sample, checked as text and in headless Chromium."""

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import bayesclv as bc
from bayesclv.report import build_report

SECTIONS = ("data", "model", "clv", "tiers", "segments", "top", "targeting", "tracking", "method")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# the flags the project runs Chromium with: no network services, no sandbox (root in CI), a fresh profile
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def report(cdnow_rfm, tmp_path_factory):
    """Short NUTS fits (2 chains x 150 draws): enough draws for intervals, fast enough for the suite."""
    fit = dict(method="nuts", draws=150, tune=250, chains=2, random_seed=7, progressbar=False)
    with pytest.warns(bc.errors.ConvergenceWarning):  # short chains: the report must say so
        bg = bc.BetaGeoModel().fit(cdnow_rfm, **fit)
        gg = bc.GammaGammaModel().fit(cdnow_rfm, **fit)
    path = tmp_path_factory.mktemp("report") / "report.html"
    built = build_report(bg, gg, cdnow_rfm, transactions=bc.datasets.load_cdnow("sample"), out=path,
                         progressbar=False, random_seed=7, offer_cost=5.0, uplift=0.1, min_prob_positive=0.8)
    return built, path, bg, gg


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
    assert "credible" in text and "predictive" in text and "POOR" in text


def test_report_tables_agree_with_the_posterior(report, cdnow_rfm):
    built, _, bg, gg = report
    n = len(cdnow_rfm)
    tiers = built.tables["tiers"]
    customers = built.tables["customers"]
    # expected tier sizes are exact (ties share places); assigned sizes are close to them
    assert customers["p_top_10"].sum() == pytest.approx(np.ceil(0.1 * n))
    assert customers["p_top_20"].sum() == pytest.approx(np.ceil(0.2 * n))
    assert tiers.index.tolist() == ["top 10%", "top 10%-20%", "rest"] and tiers["customers"].sum() == n
    assert abs(tiers.loc["top 10%", "customers"] - np.ceil(0.1 * n)) <= 0.02 * n
    assert (tiers["lower"] <= tiers["mean"]).all() and (tiers["mean"] <= tiers["upper"]).all()
    # tier totals add up to the whole base, draw by draw, hence in the mean
    assert tiers["mean"].sum() == pytest.approx(built.tables["total"].loc["all", "mean"], rel=1e-9)
    clv = bc.customer_lifetime_value(bg, gg, cdnow_rfm, horizon=12, time_unit="M", discount_rate=0.01)
    assert built.tables["total"].loc["all", "mean"] == pytest.approx(float(clv.sum(("customer_id",)).mean()))
    assert len(customers) == n and customers["tier"].notna().all()
    targets = built.tables["targeting"]
    # targeted customers: P(0.1 CLV > 5) >= 0.8, i.e. (nearly all) customers with CLV well above 50
    chosen = customers[customers["offer_target"]]
    assert len(chosen) == int(targets["target"].sum()) > 0
    assert (chosen["clv_mean"] > 40).all()
    assert built.tables["stages"]["mean"].sum() == pytest.approx(n)


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="headless Chromium not installed (apt-get install chromium chromium-driver; .ci/run does)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    _, path, _, _ = report
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(Path(path).as_uri())
        assert driver.title == "Customer lifetime value report"
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 6
        for image in images:  # every figure decoded and laid out at a real size
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 300
            assert image.size["height"] > 100
        tables = driver.find_elements(By.CSS_SELECTOR, "table.data")
        assert len(tables) >= 9
        tier_rows = driver.find_elements(By.CSS_SELECTOR, "#tiers table.data tbody tr")
        assert [row.find_element(By.TAG_NAME, "th").text for row in tier_rows] == ["top 10%", "top 10%-20%", "rest"]
        method = driver.find_element(By.ID, "method").text
        assert "Credible intervals" in method and "Predictive intervals" in method
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        driver.quit()
