"""The plugins: the BentoML hook (URL, key, timeout, retries from the connection), the sensor, the report page."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeService:
    """A loopback HTTP server answering /readyz and /classify from a script of status codes."""

    def __init__(self, ready_codes=(200,), classify_codes=(200,)):
        self.ready_codes, self.classify_codes = list(ready_codes), list(classify_codes)
        self.requests: list[tuple[str, str, dict]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                service.requests.append(("GET", self.path, dict(self.headers)))
                code = service.ready_codes.pop(0) if len(service.ready_codes) > 1 else service.ready_codes[0]
                self._reply(code, {})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append(("POST", self.path, dict(self.headers)))
                code = (service.classify_codes.pop(0) if len(service.classify_codes) > 1
                        else service.classify_codes[0])
                self._reply(code, [{"label": "Positive", "text": t} for t in body["texts"]])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(monkeypatch):
    services = []

    def start(**kwargs):
        service = FakeService(**kwargs)
        services.append(service)
        monkeypatch.setenv("AIRFLOW_CONN_BENTOML_DEFAULT", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": service.port, "password": "s3cret-key",
             "extra": {"timeout": 5, "retries": 2, "backoff": 0.01}}))
        return service

    yield start
    for service in services:
        service.close()


def test_hook_reads_url_key_timeout_and_retries_from_the_connection(fake):
    from sentiment_platform.hooks import BentoMLHook

    service = fake()
    hook = BentoMLHook()
    cfg = hook.get_conn()
    assert cfg["base_url"] == f"http://127.0.0.1:{service.port}"
    assert (cfg["timeout"], cfg["retries"], cfg["backoff"]) == (5.0, 2, 0.01)
    assert hook.is_ready()
    assert service.requests[-1][2]["Authorization"] == "Bearer s3cret-key"


def test_hook_short_connection_uri(monkeypatch):
    from sentiment_platform.hooks import BentoMLHook

    monkeypatch.setenv("AIRFLOW_CONN_SERVICE_X", "http://127.0.0.1:3123")
    cfg = BentoMLHook("service_x").get_conn()
    assert cfg["base_url"] == "http://127.0.0.1:3123" and "Authorization" not in cfg["headers"]
    assert (cfg["timeout"], cfg["retries"]) == (30.0, 3)


def test_classify_retries_overload_then_answers(fake):
    from sentiment_platform.hooks import BentoMLHook

    service = fake(classify_codes=(503, 503, 200))
    assert BentoMLHook().classify(["a", "b"]) == [{"label": "Positive", "text": "a"},
                                                   {"label": "Positive", "text": "b"}]
    assert [r[1] for r in service.requests].count("/classify") == 3


def test_classify_gives_up_after_the_retries(fake):
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError

    service = fake(classify_codes=(503,))
    with pytest.raises(BentoMLServiceError, match="HTTP 503"):
        BentoMLHook().classify(["a"])
    assert [r[1] for r in service.requests].count("/classify") == 3  # 1 + 2 retries


def test_client_errors_are_not_retried(fake):
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError

    service = fake(classify_codes=(422,))
    with pytest.raises(BentoMLServiceError, match="422"):
        BentoMLHook().classify(["a"])
    assert [r[1] for r in service.requests].count("/classify") == 1


def test_readiness_and_sensor(fake, monkeypatch):
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError
    from sentiment_platform.sensors import BentoMLReadySensor

    service = fake(ready_codes=(503, 503, 200))
    sensor = BentoMLReadySensor(task_id="wait", poke_interval=1, timeout=10)
    assert sensor.poke({}) is False
    BentoMLHook().wait_until_ready(timeout=10, interval=0.05)
    assert sensor.poke({}) is True
    service.close()
    assert BentoMLHook().is_ready() is False
    with pytest.raises(BentoMLServiceError, match="not ready"):
        BentoMLHook().wait_until_ready(timeout=0.3, interval=0.1)
    monkeypatch.setenv("AIRFLOW_CONN_BENTOML_DEFAULT", "http://127.0.0.1:9")  # nothing listens there
    assert sensor.poke({}) is False


def test_report_pages(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from sentiment_platform.views import app, authorized

    monkeypatch.setenv("SENTIMENT_HOME", str(tmp_path))
    assert TestClient(app).get("/leaderboard").status_code == 401  # Airflow's login (tests/dags/test_plugin_auth.py)
    monkeypatch.setattr(app, "dependency_overrides", {authorized: lambda: None})  # as if signed in
    client = TestClient(app)
    assert "No leaderboard yet" in client.get("/leaderboard").text
    run = tmp_path / "reports" / "manual__r1"
    run.mkdir(parents=True)
    (run / "leaderboard.json").write_text(json.dumps([{"model": "logreg", "family": "logreg", "accuracy": 0.78}]))
    (run / "run.json").write_text(json.dumps({"dag_run_id": "manual__r1", "champion": "logreg"}))
    page = client.get("/leaderboard")
    assert page.status_code == 200 and "manual__r1" in page.text and "0.7800" in page.text
    assert client.get("/leaderboard", params={"run": "other"}).status_code == 404
    assert client.get("/reports/manual__r1/run.json").json()["champion"] == "logreg"
    assert client.get("/reports/manual__r1/..%2F..%2Fetc").status_code == 404
    assert client.get("/reports/..", params={}).status_code == 404


def test_plugin_registers_the_pages(monkeypatch):
    monkeypatch.setenv("SENTIMENT_SERVICE_URL", "http://127.0.0.1:3999")
    import importlib

    import sentiment_platform_plugin

    plugin = importlib.reload(sentiment_platform_plugin).SentimentPlatformPlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/sentiment"
    hrefs = [v["href"] for v in plugin.external_views]
    assert "/sentiment/leaderboard" in hrefs and "http://127.0.0.1:3999/" in hrefs
    assert "http://127.0.0.1:8501/" in hrefs  # the dashboard
