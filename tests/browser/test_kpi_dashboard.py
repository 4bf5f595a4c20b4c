"""The KPI dashboard as a person meets it: headless Chromium (Debian's chromium, driven by
Selenium through Debian's chromedriver) against Airflow's own API server served by uvicorn on
127.0.0.1, logging in through the simple auth manager's login page, then the tiles, the
charts and a screenshot. The hub behind it is tests/fixtures/kpi.py's population."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from edihub.stack.airflow import free_port
from tests.fixtures.exports import Exports

PAGE = "/edihub-kpi/kpi"
USER = "manager"  # management reads the dashboard: a viewer, not an admin
HOST = "127.0.0.1"

pytestmark = pytest.mark.timeout(120)


def _binary(name: str) -> str:
    # Fail, never skip: CI must not pass a browser test it did not run.
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found: install Debian's chromium and chromium-driver"
            " (apt-get install chromium chromium-driver; ./hub test does it as root)"
        )
    return found


@pytest.fixture(scope="module")
def server(airflow_db: None, population: Exports) -> Iterator[str]:
    """Airflow's API server (plugins from plugins/) on a free loopback port, in a thread."""
    import uvicorn

    port = free_port(HOST)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EDIHUB_DATABASE_URL", population.dsn)  # the kpi app reads the hub here
        # A viewer beside the default admin: the simple auth manager generates its password.
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"admin:admin,{USER}:viewer")
        env.setenv("AIRFLOW__API__BASE_URL", f"http://{HOST}:{port}")
        from airflow.api_fastapi.app import create_app

        app = create_app(apps="core")
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, name="airflow-api-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not uv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://{HOST}:{port}"
        finally:
            uv.should_exit = True
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def password(server: str) -> str:
    """The viewer's password, as the simple auth manager wrote it (like the hub's admin's)."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    file = Path(SimpleAuthManager.get_generated_password_file())
    return str(json.loads(file.read_text("utf-8"))[USER])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, its DevTools network events logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--no-first-run",
                 "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    # Every request the pages make, with its status: the offline and the 401 checks read it.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_binary("chromedriver")))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _network(driver: Any) -> list[dict[str, Any]]:
    """The DevTools Network events since the last call (reading the log drains it)."""
    events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    return [e for e in events if e["method"].startswith("Network.")]


def _document_status(events: list[dict[str, Any]], url: str) -> int:
    [status] = [e["params"]["response"]["status"] for e in events
                if e["method"] == "Network.responseReceived"
                and e["params"]["response"]["url"] == url]  # fmt: skip
    return int(status)


def _hosts(events: list[dict[str, Any]]) -> set[str]:
    urls = [e["params"]["request"]["url"] for e in events
            if e["method"] == "Network.requestWillBeSent"]  # fmt: skip
    return {urlsplit(u).hostname or u for u in urls if not u.startswith(("data:", "about:"))}


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


# browser first: without chromium the test fails at once, before seeding the hub.
def test_a_manager_logs_in_and_sees_the_hubs_figures_and_charts(
    browser: Any, server: str, password: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    # Anonymous: Airflow's login check refuses the plugin's page, no dashboard shown.
    browser.get(server + PAGE)
    assert _document_status(_network(browser), server + PAGE) == 401
    assert not browser.find_elements(By.CSS_SELECTOR, "article.tile")
    assert "Not authenticated" in browser.find_element(By.TAG_NAME, "body").text

    # Airflow's own login page (the simple auth manager's), back to the dashboard after.
    browser.get(f"{server}/auth/login?next={PAGE}")
    _wait(browser, ec.element_to_be_clickable((By.NAME, "username"))).send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.XPATH, "//button[@type='submit']").click()
    _wait(browser, ec.url_to_be(server + PAGE))
    _wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "article.tile")))
    events = _network(browser)
    assert _document_status(events, server + PAGE) == 200

    # kpi.json in the same session (the login's cookie): the figures the page must show.
    browser.get(f"{server}{PAGE}.json")
    data = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    browser.back()
    tiles = _wait(browser, ec.presence_of_all_elements_located((By.CSS_SELECTOR, "article.tile")))
    events += _network(browser)
    shown = {t.get_attribute("data-key"): t for t in tiles}
    assert list(shown) == [t["key"] for t in data["tiles"]]  # every tile, in order
    for tile in data["tiles"]:
        element = shown[tile["key"]]
        big = element.find_element(By.CSS_SELECTOR, ".big").text
        assert element.is_displayed() and big, tile["key"]
        percent = None if tile["ratio"] is None else f"{100 * tile['ratio']:.0f} %"
        if tile["headline"] == "ratio":  # the share first, the count beneath it
            assert big.startswith(percent), (tile["key"], big)
            assert element.find_element(By.CSS_SELECTOR, ".note").text.startswith(
                _number(tile["value"])
            ), tile["key"]
        else:
            assert big.split(" ")[0] == _number(tile["value"]), (tile["key"], big)
            if percent:
                assert percent in element.text, (tile["key"], element.text)
        assert tile["reference"]["wording"] in element.text  # the brochure's, beside it

    # Each chart drawn by the browser: a laid-out <svg> with marks inside.
    charts = browser.find_elements(By.CSS_SELECTOR, "figure[data-chart] > svg")
    assert [c.find_element(By.XPATH, "..").get_attribute("data-chart") for c in charts] == [
        c["key"] for c in data["charts"]
    ]
    for svg, chart in zip(charts, data["charts"], strict=True):
        box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", svg)
        assert box["width"] > 0 and box["height"] > 0, (chart["key"], box)
        marks = svg.find_elements(By.CSS_SELECTOR, "rect, circle, path, polyline")
        values = sum(len(s["values"]) for s in chart["series"])
        assert len(marks) >= values > 0, (chart["key"], len(marks), values)
        drawn = browser.execute_script(
            "return [...arguments[0].querySelectorAll('rect, circle, path, polyline')]"
            ".filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length",
            svg,
        )
        assert drawn > 0, chart["key"]

    # Offline: nothing fetched from anywhere but our server, at login or on the dashboard.
    entries = browser.execute_script(
        "return performance.getEntries().map(e => e.name).filter(n => n.startsWith('http'))"
    )
    assert {urlsplit(n).hostname for n in entries} <= {HOST}, entries
    assert _hosts(events) == {HOST}, _hosts(events)

    shot = tmp_path / "kpi-dashboard.png"
    width, height = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    browser.set_window_size(max(width, 1400), height + 200)  # whole page in one shot
    assert browser.save_screenshot(str(shot))
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, len(png)
    print(f"screenshot: {shot}")
