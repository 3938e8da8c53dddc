"""The README's dashboard pictures (docs/img/dashboard-*.png), taken in headless Chromium.

Makes a database with two short runs and a latency table of the small test space, starts
``archsearch serve`` on a free port and saves one screenshot of each page: the runs list, a
run (Pareto scatter with the zoo, history), an architecture (one the latency table covers,
with each block's predicted latency), a device's latency page.

    python docs/screenshots.py        (make screenshots; about 3 minutes)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
EXE = Path(sys.executable).with_name("archsearch")


def archsearch(*args: str) -> str:
    done = subprocess.run([str(EXE), *args], capture_output=True, text=True, check=True)
    return done.stdout


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("install Debian's chromium and chromium-driver first")
    folder = tempfile.mkdtemp(prefix="archsearch-shots-")
    db = f"sqlite:///{folder}/shots.db"
    fixture = str(ROOT / "tests" / "fixtures" / "tiny_space.yaml")
    archsearch("run", "--space", "hybrid", "--budget", "1GFLOP", "--trials", "300", "--db", db)
    archsearch("run", "--space", "hybrid", "--score", "entropy", "--trials", "200", "--db", db)
    archsearch("latency", "profile", "--space", fixture, "--calibrate", "5", "--db", db)
    archsearch("latency", "check", "--space", fixture, "--n", "20", "--db", db)
    device = _device_key(db)
    serve = subprocess.Popen(
        [str(EXE), "serve", "--db", db, "--port", "0", "--workers", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serve.stderr is not None
    port = re.search(r"127\.0\.0\.1:(\d+)/", serve.stderr.readline())[1]  # type: ignore[index]
    base = f"http://127.0.0.1:{port}"
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    wait = WebDriverWait(browser, 60)
    try:
        browser.get(base + "/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tr[data-run]"))
        time.sleep(1)
        browser.save_screenshot(str(OUT / "dashboard-runs.png"))
        browser.get(base + "/#/runs/1")
        wait.until(lambda d: d.find_element(By.ID, "pareto").get_attribute("data-front"))
        time.sleep(2)
        browser.save_screenshot(str(OUT / "dashboard-run.png"))
        digest = _timed_network(db, device)  # a network its latency table covers
        browser.get(f"{base}/#/arch/{digest}")
        wait.until(lambda d: d.find_elements(By.ID, "diagram"))
        time.sleep(1)
        browser.save_screenshot(str(OUT / "dashboard-architecture.png"))
        browser.get(f"{base}/#/latency/{device}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#latency .main-svg"))
        time.sleep(2)
        browser.save_screenshot(str(OUT / "dashboard-latency.png"))
    finally:
        browser.quit()
        serve.terminate()
    print("saved docs/img/dashboard-{runs,run,architecture,latency}.png")


def _timed_network(db: str, device: str) -> str:
    from archsearch.db import Store

    return str(Store(db).network_latencies(device)[-1]["digest"])


def _device_key(db: str) -> str:
    from archsearch.db import Store

    devices = Store(db).latency_devices()
    return str(devices[0]["key"])


if __name__ == "__main__":
    main()
