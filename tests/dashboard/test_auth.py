"""Who may open the dashboard: the token gate in front of the ASGI app, the bind rule, and the entry point."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ml.errors import ConfigError
from serving.dashboard import auth

TOKEN = "s3cret-token-for-tests"


async def page(request):
    return PlainTextResponse("the dashboard")


async def stream(websocket):
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def client(token: str | None) -> TestClient:
    app = Starlette(routes=[Route("/", page), Route("/models", page), Route("/_stcore/health", page),
                            WebSocketRoute("/_stcore/stream", stream)],
                    middleware=[Middleware(auth.TokenGate, token=token)])
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


@pytest.fixture(autouse=True)
def no_delay(monkeypatch):
    monkeypatch.setattr(auth, "FAILURE_DELAY_S", 0.0)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.5", False), ("", False), (None, False)])
def test_loopback_addresses(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_an_open_address_needs_a_token():
    auth.check_bind("127.0.0.1", None)
    auth.check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ConfigError, match="SENTIMENT_DASHBOARD_TOKEN"):
        auth.check_bind("0.0.0.0", None)


def test_without_a_token_everything_passes():
    assert client(None).get("/").text == "the dashboard"


def test_no_session_no_page_and_no_websocket():
    c = client(TOKEN)
    page_ = c.get("/", headers={"Accept": "text/html"})
    assert page_.status_code == 401 and "the dashboard" not in page_.text
    assert "name=token" in page_.text and auth.LOGIN_PATH in page_.text
    assert c.get("/_stcore/host-config").status_code == 401
    assert c.get("/_stcore/health").text == "the dashboard"  # readiness checks stay open
    with pytest.raises(WebSocketDisconnect) as closed, c.websocket_connect("/_stcore/stream") as ws:
        ws.receive_text()
    assert closed.value.code == 1008


def test_query_token_sets_a_session_and_leaves_the_address(caplog):
    c = client(TOKEN)
    with caplog.at_level(logging.DEBUG):
        wrong = c.get("/", params={"token": "nope"})
        assert wrong.status_code == 401 and "not right" in wrong.text
        right = c.get("/models", params={"token": TOKEN, "window": "24h"})
    assert right.status_code == 303 and right.headers["location"] == "/models?window=24h"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and TOKEN not in cookie
    assert c.get("/models").text == "the dashboard"
    with c.websocket_connect("/_stcore/stream") as ws:
        assert ws.receive_text() == "hello"
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]  # not the test client's
    assert not [m for m in server_side if TOKEN in m] and any("refused a wrong token" in m for m in server_side)


def test_login_form():
    c = client(TOKEN)
    wrong = c.post(auth.LOGIN_PATH, data={"token": "nope", "next": "/models"})
    assert wrong.status_code == 401 and "/models" in wrong.text and c.get("/").status_code == 401
    right = c.post(auth.LOGIN_PATH, data={"token": TOKEN, "next": "/models"})
    assert right.status_code == 303 and right.headers["location"] == "/models"
    assert c.get("/").text == "the dashboard"
    offsite = client(TOKEN).post(auth.LOGIN_PATH, data={"token": TOKEN, "next": "//evil.example/x"})
    assert offsite.headers["location"] == "/"


def test_a_changed_token_ends_the_sessions():
    c = client(TOKEN)
    c.post(auth.LOGIN_PATH, data={"token": TOKEN})
    other = client("another-token")
    other.cookies = c.cookies
    assert other.get("/", headers={"Accept": "text/html"}).status_code == 401


def test_token_comparison():
    assert auth.token_matches(TOKEN, TOKEN) and not auth.token_matches(TOKEN + "x", TOKEN)
    assert not auth.token_matches("", TOKEN) and not auth.token_matches(None, TOKEN)
    assert auth.session_value(TOKEN) != TOKEN and len(auth.session_value(TOKEN)) == 64


def test_the_entry_point_refuses_an_open_address_without_a_token(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SENTIMENT_HOME": str(tmp_path), "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "serving.dashboard", "--host", "0.0.0.0", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "SENTIMENT_DASHBOARD_TOKEN" in done.stderr and "http://" not in done.stdout


def test_the_command_is_headless_without_telemetry_and_keeps_the_token_off_the_command_line(monkeypatch, tmp_path):
    from ml.settings import get_settings
    from serving.dashboard.cli import REPO_ROOT, command, url

    monkeypatch.setenv("SENTIMENT_DASHBOARD_TOKEN", TOKEN)
    settings = get_settings(home=tmp_path, dashboard_host="0.0.0.0", dashboard_port=8765)
    cmd, env = command(settings)
    line = " ".join(cmd)
    assert "streamlit run" in line and line.endswith("--theme.base light")
    for option in ("--server.headless true", "--browser.gatherUsageStats false", "--server.address 0.0.0.0",
                   "--server.port 8765", "--server.fileWatcherType none"):
        assert option in line
    assert TOKEN not in line and env["SENTIMENT_DASHBOARD_TOKEN"] == TOKEN
    assert env["SENTIMENT_HOME"] == str(tmp_path.resolve())
    assert env["PYTHONPATH"].split(":")[0] == str(REPO_ROOT), "the server runs this checkout's code"
    assert url(settings) == "http://127.0.0.1:8765/"
