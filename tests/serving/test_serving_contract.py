"""The service's contract against a real ``bentoml serve``: the OpenAPI spec fuzzed with schemathesis (every check),
and overload answered at once with 503 + Retry-After, counted, without tracebacks, memory or readiness loss."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import AUTH, KEY, NEGATIVE_TEXTS, POSITIVE_TEXTS

from ml.processes import descendants, session_members
from serving.launch import REPO_ROOT, BentoServer

pytestmark = pytest.mark.slow
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_the_spec_tells_the_truth_schemathesis_every_check(server, tmp_path):
    """``st run --checks all`` (fixed seed, bounded examples): undocumented statuses, schema-violating answers
    (null probabilities), accepted invalid bodies, ignored auth... each would fail it."""
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "--config-file", str(SCHEMATHESIS_CONFIG), "run", f"{server.url}/docs.json", "--checks", "all",
           "--max-examples", "40", "--seed", "20261201", "-H", f"Authorization: Bearer {KEY}", "--no-color",
           "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    spec = httpx.get(f"{server.url}/docs.json").json()
    classify = spec["paths"]["/classify"]["post"]
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(classify["responses"])
    assert classify["requestBody"]["required"] is True
    assert "Retry-After" in classify["responses"]["503"]["headers"]
    prediction = spec["components"]["schemas"]["Prediction"]["properties"]
    assert prediction["p_positive"]["nullable"] and prediction["scores"]["nullable"]
    body = classify["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["texts"]["maxItems"] == 8 and body["properties"]["texts"]["items"]["maxLength"] == 50


def test_a_request_without_a_body_is_rejected_as_the_spec_says(server):
    r = httpx.post(f"{server.url}/classify", headers=AUTH, timeout=30)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]


QUEUE = {"SENTIMENT_MAX_TEXTS": "256", "SENTIMENT_MAX_QUEUE_TEXTS": "512", "SENTIMENT_MAX_QUEUE_S": "1",
         "SENTIMENT_MAX_BATCH_SIZE": "256"}


@pytest.fixture(scope="module")
def busy_server(platform):
    env = {"SENTIMENT_HOME": str(platform["root"]), "BENTOML_HOME": str(platform["root"] / "bentoml"),
           "SENTIMENT_MODEL_TAG": platform["first"]["tag"], "SENTIMENT_API_KEY": None, **QUEUE}
    with BentoServer("serving.service:TweetSentiment", cwd=REPO_ROOT, env=env) as srv:
        yield srv


def _rss_mb(pid: int) -> float:
    import psutil

    return sum(psutil.Process(p).memory_info().rss for p in {*session_members(pid), *descendants([pid])}) / 2**20


def _busy_count(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics").text
    return next((float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith('sentiment_rejected_requests_total{reason="busy",status="503"}')), 0.0)


def _flood(url: str, requests: int, texts: int) -> list[tuple[int, float, str | None]]:
    batch = [f"{POSITIVE_TEXTS[i % 3]} {i}" if i % 2 else f"{NEGATIVE_TEXTS[i % 3]} {i}" for i in range(texts)]

    def one(_: int) -> tuple[int, float, str | None]:
        started = time.monotonic()
        r = client.post(f"{url}/classify", json={"texts": batch})
        return r.status_code, time.monotonic() - started, r.headers.get("retry-after")

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=requests)) as client, \
            ThreadPoolExecutor(requests) as pool:
        return list(pool.map(one, range(requests)))


def test_overload_is_answered_at_once_with_retry_after_counted_and_without_tracebacks(busy_server):
    url = busy_server.url
    _flood(url, 4, 256)  # warm up: the worker measures its throughput
    before, counted_before = _rss_mb(busy_server.proc.pid), _busy_count(url)
    ready_during: list[int] = []
    with ThreadPoolExecutor(1) as probe:
        watching = probe.submit(lambda: [ready_during.append(httpx.get(f"{url}/readyz", timeout=10).status_code)
                                         or time.sleep(0.05) for _ in range(20)])
        results = _flood(url, 120, 256) + _flood(url, 120, 256)
        watching.result()
    after = _rss_mb(busy_server.proc.pid)
    statuses = [status for status, _, _ in results]
    busy = [(seconds, retry) for status, seconds, retry in results if status == 503]
    served = [seconds for status, seconds, _ in results if status == 200]
    assert set(statuses) <= {200, 503} and served and busy, statuses
    print(f"flood: {len(served)} served, {len(busy)} busy; slowest 503 {max(s for s, _ in busy):.2f}s, "
          f"slowest 200 {max(served):.2f}s; RSS {before:.0f} -> {after:.0f} MB")
    assert all(retry is not None and int(retry) >= 1 for _, retry in busy)
    assert max(seconds for seconds, _ in busy) < 5.0, "a busy answer must come at once, not after a timeout"
    assert set(ready_during) == {200}
    assert after - before < 150, f"memory grew from {before:.0f} to {after:.0f} MB"
    assert _busy_count(url) - counted_before == len(busy)  # one counted metric per busy answer
    log = busy_server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "ServiceUnavailable" not in log
    r = httpx.post(f"{url}/classify", json={"texts": ["what a great day"]}, timeout=30)
    assert r.status_code == 200  # the flood is over: served again


def test_a_big_request_skips_the_batching_queue_with_the_same_answers(busy_server):
    """/classify with at least SENTIMENT_BULK_TEXTS texts (default 128) is answered by the bulk route: identical
    answers, its own metric label, and no trace of the internal route in the public spec."""
    texts = [f"{(POSITIVE_TEXTS + NEGATIVE_TEXTS)[i % 6]} {i}" for i in range(200)] + ["", "zyxw"]
    big = httpx.post(f"{busy_server.url}/classify", json={"texts": texts}, timeout=60)
    small = [httpx.post(f"{busy_server.url}/classify", json={"texts": texts[i:i + 40]}, timeout=60)
             for i in range(0, len(texts), 40)]
    assert big.status_code == 200 and all(r.status_code == 200 for r in small)
    assert big.json() == [answer for r in small for answer in r.json()]
    assert big.headers["content-type"].startswith("application/json")
    metrics = httpx.get(f"{busy_server.url}/metrics").text
    assert 'endpoint="/classify_bulk"' in metrics and 'endpoint="/classify"' in metrics
    assert "/classify_bulk" not in httpx.get(f"{busy_server.url}/docs.json").json()["paths"]
