"""The product as its users see it, on one running pipeline (tests/e2e/live_pipeline.py):

- operators in Grafana: every panel of both dashboards answers with data. Each panel's query runs
  against the real Prometheus, which scrapes the running pipeline (its demo, processors, embedder,
  projections and the API's job metrics); a query that returns nothing fails with its panel.
- people in the web UI: headless Chromium (Debian's chromium and chromium-driver, driven by
  Selenium; no browser download) signs in with the API token, loads every page, checks that each
  chart is drawn with data, follows links from the overview to a job name to a job, watches the
  numbers refresh, and saves screenshots at 1280x800 and at phone width
  (JOBTRAIL_SCREENSHOTS_DIR, else a temporary folder; `make screenshots` refreshes the README's).
  Any error in the browser console fails the test.

One module, so the pipeline runs once and stops before the other end-to-end tests run (they use
the same metrics ports and want the CPUs).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from infra.grafana.dashboards import dashboard_files, panel_queries
from tests.e2e.live_pipeline import TOKEN, LivePipeline, live_pipeline


@pytest.fixture(scope="module")
def running(
    kafka_bootstrap: str,
    redis_url: str,
    couchbase_connstr: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LivePipeline]:
    with live_pipeline(kafka_bootstrap, redis_url, couchbase_connstr,
                       tmp_path_factory.mktemp("pipeline")) as pipeline:  # fmt: skip
        yield pipeline


WAIT_S = 240  # warm-up: first outcomes, vectors, two scrapes of every counter for rate()


def series(prometheus_url: str, expr: str) -> int:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", (expr, answer)
    return len(answer["data"]["result"])


def test_every_panel_of_both_dashboards_returns_data(
    running: LivePipeline, prometheus_url: str
) -> None:
    queries = [(path.stem, title, expr) for path in dashboard_files()
               for title, expr in panel_queries(json.loads(path.read_text()))]  # fmt: skip
    assert {board for board, _, _ in queries} == {"jobtrail", "jobs"}
    empty = queries
    deadline = time.monotonic() + WAIT_S
    while empty and time.monotonic() < deadline:
        running.check_alive()
        empty = [(b, t, e) for b, t, e in empty if series(prometheus_url, e) == 0]
        if empty:
            time.sleep(5)
    assert not empty, "panels whose query returns nothing:\n" + "\n".join(
        f"  {board}: {title}: {expr}" for board, title, expr in empty)  # fmt: skip


DRAWN = """return Array.from(document.querySelectorAll('canvas.chart')).map(canvas => {
  const chart = Chart.getChart(canvas);
  const points = chart ? chart.data.datasets.reduce(
      (n, d) => n + d.data.filter(v => v !== null && v !== undefined).length, 0) : 0;
  return [canvas.id, points, canvas.width, canvas.height];
});"""


def api(pipeline: LivePipeline, path: str) -> Any:
    request = urllib.request.Request(pipeline.url + path,
                                     headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for_data(pipeline: LivePipeline, timeout_s: float = 240) -> None:
    """Until every page has something to draw: finished and failed jobs, outcomes, errors with
    categories, job histories."""
    deadline = time.monotonic() + timeout_s
    missing = "everything"
    while time.monotonic() < deadline:
        pipeline.check_alive()
        names = api(pipeline, "/api/job-names")
        failed = [n for n in names if n["states"].get("failed") or n["states"].get("retrying")]
        categories = api(pipeline, "/api/categories")
        categorized = [c for c in categories["categories"] if c["occurrences"]
                       and c["name"] not in ("not_embedded", "uncategorized")]  # fmt: skip
        missing = ", ".join(what for what, ok in (
            ("job names with failures", failed), ("categorized errors", categorized),
            ("throughput", any(q["completed"] for q in api(pipeline, "/api/queues"))),
        ) if not ok)  # fmt: skip
        if not missing:
            return
        time.sleep(3)
    raise AssertionError(f"no {missing} after {timeout_s} s")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("JOBTRAIL_SCREENSHOTS_DIR")
    path = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser(width: int, height: int, *, phone: bool = False) -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "chromium and chromium-driver are needed (Debian packages): sudo apt-get install "
        "chromium chromium-driver (.ci/run installs them)"
    )
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if phone:  # a phone's viewport and touch, not only a narrow window (Chromium's minimum ~500)
        metrics = {"width": width, "height": height, "pixelRatio": 2, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def desktop(running: LivePipeline) -> Iterator[webdriver.Chrome]:
    """A browser signed in (each test may rely on it; the sign-in test signs out first)."""
    wait_for_data(running)
    driver = browser(1280, 800)
    try:
        driver.get(running.url + "/login")
        sign_in(driver, TOKEN)
        yield driver
    finally:
        driver.quit()


def until(driver: webdriver.Chrome, what: str, check: Any, timeout_s: float = 30) -> None:
    """Waits for a navigation's result: a click returns before the next page is there (on a
    busy machine, long before)."""
    WebDriverWait(driver, timeout_s).until(check, message=f"waited {timeout_s} s for {what}")


def sign_in(driver: webdriver.Chrome, token: str) -> None:
    """Submits the /login form the browser is on, and waits for where it leads."""
    driver.find_element(By.NAME, "token").send_keys(token)
    before = driver.current_url
    driver.find_element(By.TAG_NAME, "button").click()
    until(driver, "the sign-in to answer", lambda d: d.current_url != before)


def click_through(driver: webdriver.Chrome, link_text: str, heading: str) -> None:
    driver.find_element(By.LINK_TEXT, link_text).click()
    until(driver, f"the page of {heading}",
          lambda d: heading in d.find_element(By.TAG_NAME, "h1").text)  # fmt: skip


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visit(driver: webdriver.Chrome, url: str, shots: Path, name: str,
          charts: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Loads `url`, checks the console and every expected chart, saves a screenshot."""
    if url:
        driver.get(url)
    expected = json.dumps(list(charts))
    ready = (f"return document.readyState === 'complete' && typeof Chart !== 'undefined' && "
             f"{expected}.every(id => !document.getElementById(id) || "
             f"Chart.getChart(document.getElementById(id)))")  # fmt: skip
    until(driver, f"{name} to load and draw", lambda d: d.execute_script(ready))
    drawn = {chart_id: (points, w, h) for chart_id, points, w, h in driver.execute_script(DRAWN)}
    driver.save_screenshot(str(shots / f"{name}.png"))
    errors = console_errors(driver)  # reading the log empties it
    assert not errors, (name, errors)
    for chart_id in charts:
        assert chart_id in drawn, f"{name}: chart {chart_id!r} not drawn ({drawn}); page says: " + (
            driver.find_element(By.TAG_NAME, "main").text[:500])  # fmt: skip
        points, width, height = drawn[chart_id]
        assert points > 0 and width > 0 and height > 0, (name, chart_id, drawn[chart_id])


def pick_and_open_a_job(running: LivePipeline, driver: webdriver.Chrome, name: str) -> str:
    """Opens, from the job name's list, a job whose history Couchbase has, preferring one that ran
    more than once; returns its id."""
    deadline = time.monotonic() + 90
    while True:
        for state in ("completed", "failed", "retrying"):
            driver.get(f"{running.url}/job-names/{name}?state={state}")
            listed = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.job-link")][:15]
            details = {j: api(running, f"/api/jobs/{j}") for j in listed}
            ready = [j for j in listed if details[j].get("history")]
            again = [j for j in ready if details[j]["attempts"] > 1]
            last_chance = time.monotonic() > deadline - 30
            for job_id in again or (ready if last_chance else []):
                try:
                    click_through(driver, job_id, job_id)
                except (NoSuchElementException, StaleElementReferenceException):
                    continue  # it left the list since the page loaded: pick again
                return job_id
        assert time.monotonic() < deadline, f"no job of {name} with a history to open"
        time.sleep(2)  # Couchbase catches up


def test_sign_in_then_overview_to_a_job_name_to_a_job(
    running: LivePipeline, desktop: webdriver.Chrome, shots: Path
) -> None:
    driver = desktop
    driver.delete_all_cookies()  # signed out
    driver.get(running.url + "/")
    assert "/login" in driver.current_url, "with a token set, a page wants it first"
    sign_in(driver, "wrong")
    assert "failed=true" in driver.current_url
    sign_in(driver, TOKEN)
    assert driver.current_url.rstrip("/") == running.url
    visit(driver, "", shots, "overview", ("throughput",))
    # The job name with the most failures: its retry curve and concurrency have the most data.
    names = api(running, "/api/job-names")
    name = max(names, key=lambda n: n["states"].get("failed", 0) + n["states"].get("retrying", 0))
    driver.get(running.url + "/")  # a fresh page: the link cannot go stale mid-refresh
    click_through(driver, name["name"], name["name"])
    visit(driver, "", shots, "job-name", ("retries", "concurrency", "throughput"))
    # A job that ran more than once, when there is one: its timeline has something to show. The
    # demo keeps running, so a job can change state (and list) between two page loads: the link is
    # clicked on the same load that listed it, and the pick is made again if it went meanwhile.
    job_id = pick_and_open_a_job(running, driver, name["name"])
    assert urllib.parse.unquote(driver.current_url).endswith(f"/jobs/{job_id}")
    visit(driver, "", shots, "job", ("timeline",))


def test_every_other_page_loads_with_its_charts(
    running: LivePipeline, desktop: webdriver.Chrome, shots: Path
) -> None:
    url = running.url
    visit(desktop, url + "/errors", shots, "errors", ("hourly",))
    visit(desktop, url + "/categories", shots, "categories", ("shares", "hourly"))
    top = max(api(running, "/api/categories")["categories"], key=lambda c: c["occurrences"])
    visit(desktop, f"{url}/categories/{urllib.request.quote(top['name'])}", shots, "category",
          ("hourly",))  # fmt: skip
    for page in ("stuck", "dead-letters", "health"):
        visit(desktop, f"{url}/{page}", shots, page)
        assert desktop.find_elements(By.CSS_SELECTOR, "main table"), page


def test_numbers_refresh_while_the_pipeline_runs(
    running: LivePipeline, desktop: webdriver.Chrome
) -> None:
    desktop.get(running.url + "/")
    before = desktop.find_element(By.CSS_SELECTOR, "[data-testid=total-completed]").text
    deadline = time.monotonic() + 30
    changed = False
    while time.monotonic() < deadline and not changed:
        time.sleep(2)
        refreshed = desktop.execute_script("return document.body.dataset.refreshedAt || ''")
        now = desktop.find_element(By.CSS_SELECTOR, "[data-testid=total-completed]").text
        changed = bool(refreshed) and now != before
    assert changed, f"the overview still says {before} completed jobs after 30 s"
    errors = console_errors(desktop)
    assert not errors, errors


def test_readable_at_phone_width(running: LivePipeline, desktop: webdriver.Chrome,
                                 shots: Path) -> None:  # fmt: skip
    phone = browser(390, 844, phone=True)
    try:
        phone.get(running.url + "/login")
        sign_in(phone, TOKEN)
        name = api(running, "/api/job-names")[0]["name"]
        pages = (("phone-overview", "/", ("throughput",)),
                 ("phone-job-name", f"/job-names/{name}", ("retries",)))  # fmt: skip
        for page, path, charts in pages:
            visit(phone, running.url + path, shots, page, charts)
            overflow = phone.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, f"{page}: the page is {overflow} px wider than the phone"
    finally:
        phone.quit()
