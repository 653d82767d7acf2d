"""The plugin's report pages behind Airflow's own login, on a real ``airflow api-server`` with this repository's
plugins and the simple auth manager: 401 (or, for a browser, the login page) without one, 200 with one."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from airflow_harness import BIN, ROOT, airflow_env, free_port

from ml.processes import Process

pytestmark = pytest.mark.slow
PASSWORD = "pw-for-the-plugin-test"


def call(url: str, *, token: str | None = None, cookie: str | None = None, accept: str = "application/json",
         body: dict | None = None) -> tuple[int, str, dict]:
    headers = {"Accept": accept, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"_token={cookie}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory, airflow_home):
    """``airflow api-server`` on a free loopback port, serving the reports of a fixture run."""
    sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
    import stream_fixtures

    home = tmp_path_factory.mktemp("plugin-auth") / "home"
    stream_fixtures.write_run(home / "reports", "manual__r1")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"dev": PASSWORD}))
    port = free_port()
    env = airflow_env(home, airflow_home, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="dev:viewer",
                      AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords))
    server = Process([str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env,
                     cwd=ROOT, log=home / "api-server.log", name="airflow-api-server")
    with server:
        server.wait_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=180)
        yield f"http://127.0.0.1:{port}", home


def test_no_login_no_reports(api_server):
    url, _ = api_server
    assert call(f"{url}/api/v2/dags")[0] == 401, "Airflow's own API"
    for path in ("/sentiment/leaderboard", "/sentiment/reports/manual__r1/run.json",
                 "/sentiment/reports/manual__r1/leaderboard.png"):
        status, body, _ = call(url + path)
        assert status == 401 and "manual__r1" not in body, path
    status, _, headers = call(f"{url}/sentiment/leaderboard?run=manual__r1", accept="text/html")
    assert status == 303 and headers["location"] == "/auth/login?next=%2Fsentiment%2Fleaderboard%3Frun%3Dmanual__r1"
    assert call(f"{url}/sentiment/leaderboard", token="not.a.jwt")[0] in (401, 403)


def test_a_login_opens_them(api_server):
    url, _ = api_server
    status, body, _ = call(f"{url}/auth/token", body={"username": "dev", "password": PASSWORD})
    token = json.loads(body)["access_token"]
    status, page, _ = call(f"{url}/sentiment/leaderboard", token=token, accept="text/html")
    assert status == 200 and "Leaderboard of run manual__r1" in page
    status, record, _ = call(f"{url}/sentiment/reports/manual__r1/run.json", cookie=token)  # the UI's session cookie
    assert status == 200 and json.loads(record)["champion"] == "logreg"


@pytest.mark.browser
def test_a_browser_goes_through_airflows_login_and_back(api_server):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed: `make browser`")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, home = api_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(f"{url}/sentiment/leaderboard")
        page.wait_for_url("**/auth/login**")
        page.fill("input[name=username]", "dev")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/sentiment/leaderboard", timeout=60_000)
        assert "Leaderboard of run manual__r1" in page.inner_text("h2")
        page.screenshot(path=str(Path(home) / "leaderboard-after-login.png"))
        browser.close()
