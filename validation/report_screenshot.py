"""Screenshot of an HTML report's first screen in headless Chromium, as a reader first sees it.

    uv run python validation/report_screenshot.py docs/cdnow_full_report.html docs/report.png

The window is 1300 x 900 CSS pixels (a laptop screen): what fits in it is what a reader sees
before scrolling. ``--height`` takes a taller window (e.g. to look at the whole report).
Needs chromium and chromedriver (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# the flags the tests run Chromium with (tests/test_report.py)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")


def screenshot(html: Path, png: Path, width: int = 1300, height: int = 900) -> Path:
    """Render ``html`` in a ``width`` x ``height`` window and save the visible part to ``png``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        raise SystemExit("chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            driver.set_window_size(width, height)
            driver.get(html.resolve().as_uri())
            # the window's outer size includes no browser chrome in headless mode; set the viewport exactly
            inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
            driver.save_screenshot(str(png))
        finally:
            driver.quit()
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    print(screenshot(args.html, args.png, args.width, args.height))


if __name__ == "__main__":
    main()
