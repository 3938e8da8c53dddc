"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by selenium against ``archsearch serve`` on a free loopback port.
Skipped, saying why, where no browser is installed; ``.ci/run`` installs it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from archsearch.db import Store
from tests.service.conftest import TOKEN, Served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="no headless browser: install Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: Any, check: Any, timeout: float = 30) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(check)


def test_runs_pareto_architecture_and_a_submitted_run(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    store = Store(served.db)
    browser.get(served.url + "/")
    rows = until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tr[data-run]"))
    assert [r.get_attribute("data-run") for r in rows] == ["1"]
    assert "finished" in rows[0].text and "hybrid" in rows[0].text

    # the run's Pareto plot: every trial, the front, the zoo
    rows[0].find_element(By.LINK_TEXT, "1").click()
    plot = until(browser, lambda d: d.find_element(By.ID, "pareto").get_attribute("data-front"))
    counts = browser.execute_script(
        "return document.getElementById('pareto').data.map(t => t.x.length)"
    )
    front = store.pareto(1, [("macs", "min"), ("entropy", "max")])
    assert counts[:2] == [20, len(front)] and plot == str(len(front))
    drawn = browser.find_elements(By.CSS_SELECTOR, "#pareto .scatterlayer .trace")[1]
    points = drawn.find_elements(By.CSS_SELECTOR, ".points path")
    assert len(points) == len(front)

    # clicking a front point opens its architecture
    ActionChains(browser).move_to_element(points[0]).click().perform()
    digest = until(browser, lambda d: d.find_elements(By.ID, "arch-digest"))[0].text
    assert digest in {r["digest"] for r in front}
    assert browser.find_elements(By.CSS_SELECTOR, "#diagram .block")
    export = browser.find_element(By.ID, "export-py").get_attribute("href")
    assert export.endswith(f"/api/v1/architectures/{digest}/export?format=py")

    # a run submitted from the page appears and progresses to its end
    browser.get(served.url + "/")
    token = until(browser, lambda d: d.find_element(By.ID, "token"))
    token.send_keys(TOKEN)
    browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#submit select option"))
    trials = browser.find_element(By.CSS_SELECTOR, "#submit input[name=trials]")
    trials.clear()
    trials.send_keys("24")
    browser.find_element(By.CSS_SELECTOR, "#submit button").click()
    result = until(browser, lambda d: d.find_element(By.ID, "submit-result").text)
    assert result == "run 2 queued"
    done = until(
        browser,
        lambda d: [
            r
            for r in d.find_elements(By.CSS_SELECTOR, "#runs tr[data-run='2']")
            if "finished" in r.text
        ],
        timeout=120,
    )
    assert done[0].find_element(By.CSS_SELECTOR, ".done").text == "24"
