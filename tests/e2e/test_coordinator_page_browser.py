"""The coordinators' page in a real headless Chromium: the app served by uvicorn on a free local
port, driven with selenium through sign-in, picking a cohort, pinning a course with a note and
seeing the decision listed; screenshots at laptop and phone sizes.

Chromium and chromedriver must be installed (``.ci/run`` installs them): without them the test
fails, it never skips.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.main import create_app
from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from recommender.settings import Settings
from tests.api.conftest import API_KEYS, KEYS, artifacts, district, tables  # noqa: F401

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tables, artifacts, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    """The app on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'page.db'}"
    store = open_store(url)
    for name in TABLE_ORDER:
        store.insert(name, tables[name])
    store.dispose()
    app = create_app(Settings(database_url=url, artifacts_dir=artifacts, api_keys=API_KEYS))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through chromedriver (fails when either is missing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1366,768", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _screenshot(driver, path: Path, width: int, height: int) -> Path:
    """The whole page at ``width`` (the window stretched to the page's height)."""
    driver.set_window_size(width, height)
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, int(full)))
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
    return path


def test_a_coordinator_signs_in_picks_a_cohort_and_pins_a_course(server, browser, tables,  # noqa: F811
                                                                 tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)
    home = tables["residents"]["community_id"].value_counts().index[0]
    browser.get(f"{server}/coordinator")
    assert browser.current_url.endswith("/coordinator/login")  # not signed in: the form
    browser.find_element(By.ID, "key").send_keys(KEYS["coordinator"])
    browser.find_element(By.ID, "sign-in").click()
    wait.until(ready.presence_of_element_located((By.ID, "community")))
    cookie = browser.get_cookie("coordinator_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    Select(browser.find_element(By.ID, "community")).select_by_value(home)
    Select(browser.find_element(By.ID, "band")).select_by_value("elderly")
    browser.find_element(By.ID, "show").click()
    wait.until(ready.url_contains(f"community={home}"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.suggestions tbody tr")
    assert rows, "the cohort has suggestions"
    course = rows[0].get_attribute("id").removeprefix("course-")
    assert rows[0].find_element(By.TAG_NAME, "svg")  # demand against seats, drawn inline
    assert browser.find_element(By.CSS_SELECTOR, "#by-category svg rect")
    assert browser.find_element(By.CSS_SELECTOR, "#participation svg rect")

    rows[0].find_element(By.NAME, "note").send_keys("适合社区长者，优先推荐")
    rows[0].find_element(By.CSS_SELECTOR, "button[value=pin]").click()
    listed = wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, f'tr.decision[data-course="{course}"][data-action="pin"]')))
    assert "适合社区长者，优先推荐" in listed.text and "置顶" in listed.text
    assert browser.current_url.endswith("#decisions") and "band=elderly" in browser.current_url

    shots = [_screenshot(browser, tmp_path / "coordinator_1366x768.png", 1366, 768),
             _screenshot(browser, tmp_path / "coordinator_390x844.png", 390, 844)]
    for shot in shots:
        assert shot.exists() and shot.stat().st_size > 10_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # on a phone the page itself does not scroll sideways: only the tables' own boxes do
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0

    # undo from the page: the decision leaves the list
    listed.find_element(By.TAG_NAME, "button").click()
    wait.until(ready.url_contains("#decisions"))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "tr.decision[data-action=pin]"))
