"""The search page in headless Chromium (Debian's chromium + chromium-driver via selenium), against `spart serve`.

Locally the test skips when the browser is missing, saying how to install it (`make browser`); in CI it fails.
``SPART_SCREENSHOT=path.png`` also saves the screenshot there (docs/figures/search-page.png was made so).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
)


@pytest.fixture
def browser(tmp_path, require_service):
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        require_service(
            "no chromium/chromedriver for the search page test: run `make browser` "
            "(Debian's chromium and chromium-driver)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")  # fresh profile each run
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_question_shows_the_expected_passage_in_every_list(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server["url"] + "/")
    wait.until(lambda d: d.find_element(By.ID, "pipeline").get_attribute("value") == "hybrid_qa")
    browser.find_element(By.ID, "question").send_keys("which satellite did the Soviet Union launch first?")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".column.final li")))

    columns = {c.get_attribute("data-list"): c for c in browser.find_elements(By.CSS_SELECTOR, ".column")}
    assert list(columns) == ["bm25", "dense", "fuser (final)"]
    final = columns["fuser (final)"].find_elements(By.CSS_SELECTOR, "li")
    top = final[0]
    assert top.find_element(By.CSS_SELECTOR, ".title").text == "Sputnik 1"
    assert "first artificial satellite" in top.find_element(By.CSS_SELECTOR, ".text").text
    ranks = top.find_element(By.CSS_SELECTOR, ".ranks").text
    assert "bm25 #" in ranks and "dense #1" in ranks  # the rank each list gave the passage
    assert "Sputnik 1" in columns["dense"].text and "Sputnik 1" in columns["bm25"].text
    assert browser.find_element(By.ID, "error").text == ""

    screenshot = Path(os.environ.get("SPART_SCREENSHOT") or tmp_path / "search-page.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000


def test_bad_request_shows_the_servers_message(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server["url"] + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "pipeline").get_attribute("value"))
    browser.find_element(By.ID, "question").send_keys("   ")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert "the question must be a non-empty string" in browser.find_element(By.ID, "error").text
