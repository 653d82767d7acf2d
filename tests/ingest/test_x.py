"""The X source against a loopback server speaking the X API v2 filtered stream."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_x import CLIENT_NOT_ENROLLED, FakeX, tweet
from ingest_helpers import read_landing

from spark_apps.ingest.errors import SourceForbidden
from spark_apps.ingest.runner import run_ingest
from spark_apps.ingest.sinks import FileSink
from spark_apps.ingest.state import Status
from spark_apps.ingest.x import XSource, rule_value, tag_prefix

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "AAAAAAAAAAAAAAAAAAAAAsecret%2Btoken%3Dxyz"
PREFIX = tag_prefix("tweets")
FOREIGN = {"id": "1111", "value": "dogs has:images", "tag": "my-own-dogs"}


def source(fake: FakeX, keywords=("cats",), **kw) -> XSource:
    return XSource(TOKEN, list(keywords), stream="tweets", api_url=fake.url, retry_initial=kw.pop("retry_initial", 0.05),
                   retry_max=0.5, rate_limit_wait=kw.pop("rate_limit_wait", 0.3), **kw)


def ingest(src: XSource, folder: Path, max_posts: int | None = None, stop: threading.Event | None = None) -> dict:
    status = Status(None, stream="tweets", source="x", sink="file")
    return run_ingest(src, FileSink(folder, max_seconds=0.2), status=status, max_posts=max_posts, stop=stop)


def test_payloads_become_landing_records():
    src = XSource(TOKEN, ["cats", "machine learning"], stream="tweets")
    src.rule_ids = {"10": "cats"}
    item = src.to_item(json.dumps(tweet("1234567890", "I love cats\nso much 😀", ("10", PREFIX + "cats"))))
    assert item.record == {**item.record, "id": "1234567890", "text": "I love cats\nso much 😀", "keyword": "cats",
                           "created_at": "2024-01-15T10:35:00.000Z", "lang": "en", "author_id": "9876543210",
                           "source": "x"}
    foreign = src.to_item(json.dumps(tweet("2", "a dog", ("1111", "my-own-dogs"))))
    assert foreign.record is None and foreign.skipped == "filtered", "only this stream's rules land"
    by_tag = src.to_item(json.dumps(tweet("3", "ml", ("99", PREFIX + "machine learning"))))
    assert by_tag.record["keyword"] == "machine learning"
    assert src.to_item(b'{"errors":[{"title":"operational-disconnect"}]}').skipped == "error"
    assert rule_value("machine learning") == '"machine learning"' and rule_value("cats") == "cats"


def test_rules_are_synced_idempotently_and_foreign_rules_kept():
    stale = {"id": "2222", "value": "old", "tag": PREFIX + "old"}
    kept = {"id": "3333", "value": "cats", "tag": PREFIX + "cats"}
    with FakeX(rules=[FOREIGN, stale, kept]) as fake:
        src = source(fake, ["cats", "machine learning"])
        ids = src.sync_rules(src.make_client())
        assert {r["id"] for r in fake.rules} >= {"1111", "3333"} and "2222" not in {r["id"] for r in fake.rules}
        added = next(r for r in fake.rules if r.get("tag") == PREFIX + "machine learning")
        assert added["value"] == '"machine learning"'
        assert ids == {"3333": "cats", added["id"]: "machine learning"}
        assert fake.posts == [{"delete": {"ids": ["2222"]}},
                              {"add": [{"value": '"machine learning"', "tag": PREFIX + "machine learning"}]}]
        fake.posts.clear()
        assert src.sync_rules(src.make_client()) == ids
        assert fake.posts == [], "a second sync changes nothing"
        assert FOREIGN in fake.rules
        assert all(r["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


def test_stream_lands_posts_and_reconnects_after_drops_and_429(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("tweepy", "tweepy.client", "tweepy.streaming", "urllib3", "urllib3.connectionpool", "requests",
                 "spark_apps"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    script = [
        ("lines", [tweet("101", "cats one", ("3333", PREFIX + "cats")), tweet("102", "dog", ("1111", "my-own-dogs"))],
         "drop"),
        ("status", 429, {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}),
        ("status", 503, {"title": "Service Unavailable"}),
        ("lines", [tweet("103", "cats two", ("3333", PREFIX + "cats"))], "close"),
        ("lines", [tweet("104", "cats three", ("3333", PREFIX + "cats"))], "hold"),
    ]
    with FakeX(rules=[FOREIGN, {"id": "3333", "value": "cats", "tag": PREFIX + "cats"}], script=script) as fake:
        status = ingest(source(fake), tmp_path / "landing", max_posts=3)
        connects = list(fake.stream_connects)
        requests = list(fake.requests)
    records = read_landing(tmp_path / "landing")
    assert [(r["id"], r["keyword"], r["source"]) for r in records] == [
        ("101", "cats", "x"), ("103", "cats", "x"), ("104", "cats", "x")]
    assert status["filtered"] == 1 and status["errors"] >= 2 and "503" in status["last_error"] + caplog.text
    assert len(connects) == 5
    assert connects[2] - connects[1] >= 0.3, "a 429 waits at least the rate-limit wait"
    stream_calls = [r for r in requests if r["path"].startswith("/2/tweets/search/stream?")]
    assert all("tweet.fields=created_at%2Clang%2Cauthor_id" in r["path"] for r in stream_calls)
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in requests)
    # the token never reaches a log, tweepy's DEBUG request logging included
    assert "Making API request" in caplog.text, "tweepy's header logging ran"
    assert TOKEN not in caplog.text
    assert not any(TOKEN in record.getMessage() for record in caplog.records)
    assert TOKEN not in json.dumps(status)


def test_a_stream_403_stops_the_source(tmp_path):
    script = [("status", 403, CLIENT_NOT_ENROLLED)]
    with FakeX(rules=[{"id": "3333", "value": "cats", "tag": PREFIX + "cats"}], script=script) as fake, \
            pytest.raises(SourceForbidden, match="client-not-enrolled") as info:
        ingest(source(fake), tmp_path / "landing")
    message = str(info.value)
    assert "\n" not in message and "--source replay" in message and "--source bluesky" in message


def test_stop_disconnects_promptly(tmp_path):
    stop = threading.Event()
    with FakeX(rules=[{"id": "3333", "value": "cats", "tag": PREFIX + "cats"}],
               script=[("lines", [tweet("1", "cats", ("3333", PREFIX + "cats"))], "hold")]) as fake:
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        status = ingest(source(fake), tmp_path / "landing", stop=stop)
        timer.join()
    assert status["stop_reason"] == "stopped" and status["posts"] == 1
    assert [r["id"] for r in read_landing(tmp_path / "landing")] == ["1"]


def _cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "SENTIMENT_HOME": str(home), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", **env}
    environ.pop("SENTIMENT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "spark_apps.ingest", *args], env=environ, capture_output=True,
                          text=True, timeout=120)


def test_cli_client_not_enrolled_is_one_line_and_exit_1(tmp_path):
    with FakeX(rules_status=(403, CLIENT_NOT_ENROLLED)) as fake:
        proc = _cli(["--source", "x", "--keywords", "cats", "--x-api-url", fake.url, "-v"], tmp_path / "home",
                    X_BEARER_TOKEN=TOKEN)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: X API refused") and "client-not-enrolled" in last
    assert "--source replay" in last and "--source bluesky" in last
    assert TOKEN not in proc.stderr + proc.stdout, "not even at -v (DEBUG)"
    status = json.loads((tmp_path / "home/stream/tweets/ingest/status.json").read_text())
    assert status["running"] is False and "client-not-enrolled" in status["stop_reason"]


@pytest.mark.slow
def test_cli_takes_the_token_from_an_airflow_connection(tmp_path):
    conn = json.dumps({"conn_type": "http", "password": TOKEN})
    with FakeX(rules=[{"id": "3333", "value": "cats", "tag": PREFIX + "cats"}],
               script=[("lines", [tweet("7", "cats", ("3333", PREFIX + "cats"))], "hold")]) as fake:
        proc = _cli(["--source", "x", "--keywords", "cats", "--x-api-url", fake.url, "--x-conn-id", "x_api",
                     "--max-posts", "1"], tmp_path / "home", AIRFLOW_CONN_X_API=conn, X_BEARER_TOKEN="")
        auth = {r["authorization"] for r in fake.requests}
    assert proc.returncode == 0, proc.stderr
    assert auth == {f"Bearer {TOKEN}"} and json.loads(proc.stdout)["posts"] == 1
    assert TOKEN not in proc.stderr


def test_a_foreign_rule_with_the_same_value_serves_the_keyword_and_rules_429_is_retried(tmp_path):
    same = {"id": "4444", "value": "cats", "tag": "user-cats"}
    with FakeX(rules=[same], script=[("lines", [tweet("9", "cats", ("4444", "user-cats"))], "hold")]) as fake:
        fake.rules_status = (429, {"title": "Too Many Requests"})
        threading.Timer(0.2, lambda: setattr(fake, "rules_status", None)).start()
        status = ingest(source(fake, rate_limit_wait=0.3), tmp_path / "landing", max_posts=1)
        assert fake.posts == [], "X refuses duplicate values: the user's rule is used, not copied"
        assert fake.rules == [same]
    assert status["errors"] == 1 and "429" in status["last_error"]
    assert [(r["id"], r["keyword"]) for r in read_landing(tmp_path / "landing")] == [("9", "cats")]
