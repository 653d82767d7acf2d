"""The HTTP scorer against a fake loopback /classify: batching, retries, backoff, Retry-After, errors, the key."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from spark_apps.stream.scoring import (
    PartitionScorer,
    ScoringError,
    Secret,
    ServiceClient,
    ServiceConfig,
    retry_after_seconds,
)

KEY = "fake-key-7d2e61"


class FakeService:
    """A loopback ``POST /classify``: answers each text (``Positive`` if it contains "love"), unless ``script``
    holds canned answers ``(status, headers, body)`` for the next calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.script: list[tuple[int, dict, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "texts": body["texts"]})
                if fake.script:
                    status, headers, text = fake.script.pop(0)
                else:
                    status, headers = 200, {}
                    text = json.dumps([{"label": "Positive" if "love" in t else "Negative",
                                        "p_positive": 0.9 if "love" in t else 0.1, "scores": None, "model": "m:1"}
                                       for t in body["texts"]])
                payload = text.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    yield service
    service.close()


def client(url: str, sleeps: list[float] | None = None, **config) -> ServiceClient:
    settings = {"chunk": 4, "retries": 3, "backoff_s": 0.5, "backoff_max_s": 8.0, "concurrency": 1, "timeout_s": 5.0,
                "api_key": Secret(KEY), **config}
    recorded = sleeps if sleeps is not None else []
    return ServiceClient(ServiceConfig(url=url, **settings), sleep=recorded.append, jitter=lambda: 1.0)


def test_one_call_per_chunk_in_order(fake):
    texts = [f"I love {i}" if i % 3 == 0 else f"meh {i}" for i in range(10)]
    with_chunks = client(fake.url, chunk=4, concurrency=3).classify_chunks(texts)
    assert sorted(len(c["texts"]) for c in fake.calls) == [2, 4, 4]  # 10 texts in chunks of 4: three calls
    labels = [a["label"] for answers, _ in with_chunks for a in answers]
    assert labels == ["Positive" if i % 3 == 0 else "Negative" for i in range(10)]
    assert all(c["path"] == "/classify" for c in fake.calls)


def test_retries_with_exponential_backoff_then_succeeds(fake):
    fake.script = [(503, {}, "busy"), (502, {}, "bad gateway"), (504, {}, "timeout")]
    sleeps: list[float] = []
    answers = client(fake.url, sleeps).classify(["I love it"])
    assert answers[0]["label"] == "Positive"
    assert len(fake.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]  # jitter pinned to its top: base, then doubling


def test_retry_after_is_honoured_and_capped(fake):
    fake.script = [(429, {"Retry-After": "3"}, "slow down"), (503, {"Retry-After": "120"}, "later")]
    sleeps: list[float] = []
    client(fake.url, sleeps).classify(["x"])
    assert sleeps == [3.0, 8.0]  # the header's value, capped by backoff_max_s


def test_jitter_keeps_half_of_each_step(fake):
    fake.script = [(503, {}, "")] * 2
    sleeps: list[float] = []
    ServiceClient(ServiceConfig(url=fake.url, retries=2, backoff_s=1.0), sleep=sleeps.append,
                  jitter=lambda: 0.0).classify(["x"])
    assert sleeps == [0.5, 1.0]


def test_not_retryable_4xx_fails_at_once(fake):
    fake.script = [(422, {}, json.dumps({"error": "text 1 has 1001 characters; the limit is 1000"}))]
    with pytest.raises(ScoringError, match=r"answered HTTP 422 \(not retryable\).*the limit is 1000"):
        client(fake.url).classify(["x"])
    assert len(fake.calls) == 1


def test_gives_up_naming_the_service(fake):
    fake.script = [(503, {}, "")] * 10
    with pytest.raises(ScoringError) as err:
        client(fake.url, retries=2).classify(["x"])
    assert f"scoring service {fake.url}/classify unavailable after 3 attempts" in str(err.value)
    assert "HTTP 503" in str(err.value)


def test_connection_refused_is_retried_then_fails():
    from ml.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    with pytest.raises(ScoringError, match=r"unavailable after 3 attempts .*ConnectError"):
        client(url, sleeps, retries=2).classify(["x"])
    assert len(sleeps) == 2


@pytest.mark.parametrize("body", ["not json", json.dumps([{"label": "Positive", "model": "m"}]),
                                  json.dumps([{"label": "Happy", "model": "m"}] * 2),
                                  json.dumps([{"p_positive": 0.5, "model": "m"}] * 2)])
def test_answers_without_a_label_for_every_text_fail(fake, body):
    fake.script = [(200, {}, body)]
    with pytest.raises(ScoringError):
        client(fake.url).classify(["a", "b"])


def test_key_is_sent_and_never_logged(fake, caplog):
    fake.script = [(503, {}, "")] * 2 + [(401, {}, json.dumps({"error": "missing or wrong API key"}))]
    config = ServiceConfig(url=fake.url, api_key=Secret(KEY), retries=5)
    with caplog.at_level(logging.DEBUG), pytest.raises(ScoringError) as err:
        ServiceClient(config, sleep=lambda s: None).classify(["x"])
    assert {c["auth"] for c in fake.calls} == {f"Bearer {KEY}"}
    assert KEY not in caplog.text and KEY not in str(err.value)
    assert "retry 1 of 5" in caplog.text
    assert KEY not in repr(config) and KEY not in str(config)


def test_retry_after_http_date():
    import email.utils

    assert retry_after_seconds(email.utils.formatdate(1796112010, usegmt=True), now=1796112000.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_partition_scorer_adds_the_score_columns(fake):
    config = ServiceConfig(url=fake.url, chunk=2, concurrency=2, max_chars=5)
    batch = pd.DataFrame({"id": ["a", "b", "c"], "text": ["I love it", "no", None], "clean_text": ["", "", ""]})
    out = list(PartitionScorer(config)(iter([batch])))[0]
    assert out["label"].tolist() == ["Negative", "Negative", "Negative"]  # texts cut to 5 chars: "I lov"
    assert sorted(c["texts"] for c in fake.calls) == [[""], ["I lov", "no"]]  # two calls, in flight at once
    assert out["id"].tolist() == ["a", "b", "c"] and out["model"].unique().tolist() == ["m:1"]
    assert str(out["scored_ts"].dtype) == "datetime64[ns]" and out["p_positive"].tolist() == [0.1, 0.1, 0.1]


def test_follows_the_endpoint_file_between_calls_and_on_retries(tmp_path):
    """A champion roll rewrites the endpoint file: the next call (and a retry of a failing one) goes there."""
    from ml.endpoints import write_endpoint

    old, new = FakeService(), FakeService()
    try:
        path = tmp_path / "run" / "service-endpoint.json"
        scorer = client("http://127.0.0.1:9", endpoint_file=str(path))  # nothing listens on the configured URL
        write_endpoint(path, old.url, model_tag="m:1")
        scorer.classify(["a"])
        write_endpoint(path, new.url, model_tag="m:2")
        scorer.classify(["b"])
        assert [c["texts"] for c in old.calls] == [["a"]] and [c["texts"] for c in new.calls] == [["b"]]

        new.script = [(503, {}, "stopping")]  # the old service answers 503 while it stops, then the file moves
        sleeps: list[float] = []
        moving = ServiceClient(ServiceConfig(url=new.url, retries=2, endpoint_file=str(path)),
                               sleep=lambda s: (sleeps.append(s), write_endpoint(path, old.url)), jitter=lambda: 1.0)
        write_endpoint(path, new.url)
        assert moving.classify(["c"])[0]["label"] == "Negative"
        assert [c["texts"] for c in old.calls][-1] == ["c"] and len(sleeps) == 1
    finally:
        old.close()
        new.close()
