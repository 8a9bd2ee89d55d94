"""The analyst page in a real headless Chromium (Debian's chromium + chromedriver; no downloads)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img" / "web-triage.png"
LINES = ("CVE-2099-0001: SQL injection vulnerability in login.php in Acme CMS 2.1 allows remote attackers to "
         "execute arbitrary SQL commands via the username parameter.\n"
         "Cross-site scripting (XSS) vulnerability in search.php in Acme Forum 1.0 allows remote attackers to "
         "inject arbitrary web script or HTML via the q parameter.")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, predicate, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def test_triage_pasted_descriptions_and_open_an_entry(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    assert browser.title == "cyberslm analyst"
    browser.find_element(By.ID, "triage-input").send_keys(LINES)
    browser.find_element(By.ID, "triage-run").click()
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#triage-table tbody tr"))
    assert len(rows) == 6  # 2 descriptions x top 3
    assert rows[0].find_element(By.CSS_SELECTOR, "td.cve").text == "CVE-2099-0001"
    assert rows[3].find_element(By.CSS_SELECTOR, "td.cve").text == "line 2"
    cwes = [r.find_element(By.CSS_SELECTOR, "a.kb-link").text for r in rows]
    assert all(c.startswith("CWE-") for c in cwes) and "CWE-89" in cwes[:3]
    assert "triaged" in browser.find_element(By.ID, "triage-status").text

    shot = tmp_path / "web-triage.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("CYBERSLM_UPDATE_DOCS_IMG"):  # refresh the docs picture on purpose only
        shutil.copy(shot, DOCS_IMG)

    rows[0].find_element(By.CSS_SELECTOR, "a.kb-link").click()
    _wait(browser, lambda d: d.find_element(By.ID, "kb-title").text.startswith(cwes[0] + " "))
    link = browser.find_element(By.CSS_SELECTOR, "#kb-meta a").get_attribute("href")
    assert link.startswith("https://cwe.mitre.org/data/definitions/")

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # no CSP violations, no failed requests


def test_ask_shows_answer_with_sources(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    browser.find_element(By.ID, "ask-question").send_keys("Which technique covers abuse of PowerShell?")
    browser.find_element(By.ID, "ask-run").click()
    sources = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#ask-answer .sources li"))
    assert browser.find_element(By.CSS_SELECTOR, "#ask-answer .answer").text
    assert sources[0].find_element(By.CSS_SELECTOR, "a.kb-link").text


def test_key_entered_once_is_sent_as_bearer(browser, keyed_server):
    from selenium.webdriver.common.by import By

    browser.get(keyed_server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.find_element(By.ID, "triage-input").send_keys("Buffer overflow in the parser allows code execution.")
    browser.find_element(By.ID, "triage-run").click()
    _wait(browser, lambda d: "401" in d.find_element(By.ID, "triage-status").text)
    browser.find_element(By.ID, "api-key").send_keys(keyed_server.api_key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    assert browser.find_element(By.ID, "key-state").text == "key set"
    browser.find_element(By.ID, "triage-run").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#triage-table tbody tr"))


def test_feed_file_is_triaged(browser, server, tmp_path):
    import json

    from selenium.webdriver.common.by import By

    feed = tmp_path / "CVE-2099-7777.json"
    feed.write_text(json.dumps({
        "dataType": "CVE_RECORD", "dataVersion": "5.1",
        "cveMetadata": {"cveId": "CVE-2099-7777", "state": "PUBLISHED"},
        "containers": {"cna": {"descriptions": [{"lang": "en", "value": LINES.splitlines()[1]}]}}}))
    browser.get(server.url + "/")
    browser.find_element(By.ID, "feed-file").send_keys(str(feed))  # the same path as a drop
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#triage-table tbody tr"))
    assert rows[0].find_element(By.CSS_SELECTOR, "td.cve").text == "CVE-2099-7777"
    assert "1 record(s) from CVE-2099-7777.json" in browser.find_element(By.ID, "triage-status").text


def test_a_cwe_the_description_names_is_listed_after_the_predictions(browser, server):
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # drain what earlier tests left (the keyed page's expected 401)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "triage-input").send_keys(
        "Prototype pollution (CWE-1321) in the merge function of Acme Utils 1.2 lets attackers add properties.")
    browser.find_element(By.ID, "triage-run").click()
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#triage-table tbody tr"))
    assert len(rows) == 4  # top 3, then the CWE the text names, which is outside the classifier's labels
    last = rows[3].find_elements(By.CSS_SELECTOR, "td")
    assert last[1].text == "named" and last[2].text == "CWE-1321" and "not predicted" in last[4].text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
