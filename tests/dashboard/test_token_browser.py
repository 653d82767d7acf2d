"""A dashboard on a non-loopback address: refused without a token; with one, nothing renders before the browser
presents it (login form or ``?token=``), and the token shows up in no log."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
import stream_fixtures as fx
from browser_helpers import PageWatch, running_dashboard, wait_idle
from conftest import artifacts_dir

from ml.processes import ProcessError

pytestmark = [pytest.mark.slow, pytest.mark.browser]
TOKEN = "t0ken-" + "x7Qp2" * 6


def get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("token") / "home"
    stream = home / "stream" / "tweets"
    now = datetime.now(UTC)
    fx.write_output(stream / "output", fx.sample_rows(now))
    fx.write_status(stream, now)
    return home


def test_an_open_address_without_a_token_refuses_to_start(home, tmp_path):
    with pytest.raises(ProcessError, match="SENTIMENT_DASHBOARD_TOKEN"), \
            running_dashboard(home, tmp_path / "refused.log", host="0.0.0.0"):
        pass


@pytest.fixture(scope="module")
def site(home, tmp_path_factory):
    log = tmp_path_factory.mktemp("token-logs") / "dashboard.log"
    with running_dashboard(home, log, host="0.0.0.0", env={"SENTIMENT_DASHBOARD_TOKEN": TOKEN}) as (url, process):
        yield {"url": url, "log": log, "process": process, "shots": artifacts_dir(tmp_path_factory, "dashboard-token")}


def test_without_the_token_only_the_login_form(site):
    status, body = get(site["url"] + "/")
    assert status == 401 and "name=token" in body and "stApp" not in body
    assert get(site["url"] + "/?token=wrong")[0] == 401
    assert get(site["url"] + "/_stcore/health")[0] == 200


def test_the_page_renders_only_after_the_token(browser, site):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(site["url"] + "/")
    assert page.locator('[data-testid="stApp"]').count() == 0 and page.locator("input[name=token]").is_visible()
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "not right" in page.inner_text("body")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
    wait_idle(page)
    page.screenshot(path=site["shots"] / "after-login.png", full_page=True)
    context.close()
    assert [e for e in watch.errors() if "401" not in e] == []  # the wrong token's page answered 401 on purpose

    context = browser.new_context()
    page = context.new_page()
    page.goto(site["url"] + f"/models?token={TOKEN}")
    page.wait_for_selector('h1:has-text("Models")', timeout=60_000)
    assert TOKEN not in page.url and page.url.endswith("/models")
    context.close()
    assert TOKEN not in site["log"].read_text()


def test_it_prints_its_url_without_the_token_and_stops_on_sigterm(site):
    port = site["url"].rsplit(":", 1)[1]
    first = next(line for line in site["log"].read_text().splitlines() if line.startswith("dashboard: "))
    assert f"http://127.0.0.1:{port}/" in first and "SENTIMENT_DASHBOARD_TOKEN" in first and TOKEN not in first
    process = site["process"]
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the dashboard did not stop within 15 s of SIGTERM")
    assert get(site["url"] + "/_stcore/health")[0] == 0
