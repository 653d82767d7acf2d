"""``service_url`` names a service deployed outside the platform (the compose deployment's Bento, a scaled-out
service): the stream DAG's ``serve_champion`` and the rollout neither start, roll nor stop a service, they wait
until it is ready and report the model it serves. A loopback server speaking the service's protocol stands in for
it here; the cluster tests run the stream DAG against a real scaled-out ``bentoml serve``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml import components
from ml.errors import ModelError
from ml.processes import free_port


class _Service(BaseHTTPRequestHandler):
    ready = True
    key = "k-123"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" and self.ready else 503)
        self.end_headers()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != f"Bearer {self.key}":
            self.send_response(401)
            self.end_headers()
            return
        answer = [{"label": "Positive", "p_positive": 0.9, "scores": None, "model": "tweet-sentiment:abc"}
                  for _ in body["texts"]]
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def service():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    _Service.ready = True


def test_an_external_service_is_checked_never_started(home, monkeypatch, service):
    from ml.settings import get_settings
    from sentiment_platform.stream.service import ensure_service

    monkeypatch.setenv("SENTIMENT_SERVICE_URL", service)
    monkeypatch.setenv("SENTIMENT_API_KEY", _Service.key)
    outcome = ensure_service(get_settings(), "tweet-sentiment:new", timeout=5)
    assert outcome == {"action": "external", "model_tag": "tweet-sentiment:abc", "url": service,
                       "previous": "tweet-sentiment:abc"}
    assert components.read(get_settings().run_dir, "service") is None  # nothing started


def test_an_external_service_that_is_not_ready_fails_clearly(home, monkeypatch, service):
    from ml.settings import get_settings
    from sentiment_platform.stream.service import ensure_service

    _Service.ready = False
    monkeypatch.setenv("SENTIMENT_SERVICE_URL", service)
    with pytest.raises(ModelError, match="deployed outside the platform.*not ready"):
        ensure_service(get_settings(), timeout=1.5)


def test_an_external_service_that_refuses_the_key_fails_clearly(home, monkeypatch, service):
    from ml.settings import get_settings
    from sentiment_platform.stream.service import ensure_service

    monkeypatch.setenv("SENTIMENT_SERVICE_URL", service)
    monkeypatch.setenv("SENTIMENT_API_KEY", "wrong")
    with pytest.raises(ModelError, match="does not classify"):
        ensure_service(get_settings(), timeout=5)
