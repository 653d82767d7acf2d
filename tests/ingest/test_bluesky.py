"""The Bluesky source against a loopback websocket server shaped like Jetstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_jetstream import DID, FakeJetstream, account, identity, post
from ingest_helpers import read_landing

from spark_apps.ingest.bluesky import BlueskySource, subscribe_url
from spark_apps.ingest.errors import IngestError
from spark_apps.ingest.runner import run_ingest
from spark_apps.ingest.sinks import FileSink
from spark_apps.ingest.state import StateStore, Status

T0 = 1_732_120_882_000_000


def ingest(url: str, home: Path, max_posts: int | None = None, keywords=("cats", "dogs")) -> dict:
    src = BlueskySource(url, list(keywords), retry_initial=0.05, retry_max=0.2)
    status = Status(home / "status.json", stream="tweets", source="bluesky", sink="file")
    return run_ingest(src, FileSink(home / "landing", max_seconds=0.2), status=status,
                      store=StateStore(home / "state.json"), max_posts=max_posts)


def firehose(n: int) -> list[dict]:
    """``n`` events: every third a matching post, the rest other posts and events, two matching at one time."""
    events = []
    for i in range(n):
        t = T0 + i * 1000
        if i % 3 == 0:
            events.append(post(t, f"m{i}", f"my cats #{i}"))
        elif i % 3 == 1:
            events.append(post(t, f"o{i}", f"other post {i}"))
        else:
            events.append(identity(t) if i % 2 else post(t, f"d{i}", "", operation="delete"))
    events.append(post(T0 + 3000, "same-time", "dogs at the same microsecond"))
    return events


def expected_ids(events: list[dict]) -> list[str]:
    return sorted(f"at://{e['did']}/app.bsky.feed.post/{e['commit']['rkey']}" for e in events
                  if e["kind"] == "commit" and e["commit"]["operation"] == "create"
                  and e["commit"]["collection"] == "app.bsky.feed.post"
                  and any(w in e["commit"]["record"]["text"] for w in ("cats", "dogs")))


def test_only_matching_post_creates_land(tmp_path):
    events = [
        post(T0 + 1, "3kabc1", "I love CATS\nso much 😀", langs=["fr", "en"]),
        post(T0 + 2, "3kabc2", "nothing to see"),
        post(T0 + 3, "3kabc3", "", operation="delete"),
        post(T0 + 4, "3kabc4", "cats edited", operation="update"),
        post(T0 + 5, "3kabc5", "cats liked", collection="app.bsky.feed.like"),
        identity(T0 + 6),
        account(T0 + 7),
        post(T0 + 8, "3kabc8", "hot dogs", langs=[]),
    ]
    with FakeJetstream(events) as server:
        status = ingest(server.url, tmp_path, max_posts=2)
    first, second = read_landing(tmp_path / "landing")
    assert first == {**first, "id": f"at://{DID}/app.bsky.feed.post/3kabc1", "text": "I love CATS\nso much 😀",
                     "keyword": "cats", "lang": "fr", "author_id": DID, "created_at": "2024-11-20T16:41:22.123Z",
                     "source": "bluesky"}
    assert second["id"].endswith("/3kabc8") and second["keyword"] == "dogs" and second["lang"] is None
    assert status["posts"] == 2 and status["filtered"] == 1 and status["skipped"] == 5
    assert json.loads((tmp_path / "state.json").read_text())["bluesky"] == {"cursor": T0 + 8,
                                                                            "ids": [second["id"]]}


def test_restart_resumes_from_the_cursor_without_gap_or_duplicate(tmp_path):
    events = firehose(30)
    with FakeJetstream(events) as server:
        first = ingest(server.url, tmp_path, max_posts=2)  # the 2nd post shares its time_us with the 3rd
        saved = json.loads((tmp_path / "state.json").read_text())["bluesky"]
        assert saved["cursor"] == T0 + 3000 and len(saved["ids"]) == 1
        second = ingest(server.url, tmp_path, max_posts=len(expected_ids(events)) - 2)
        cursors = server.cursors()
    assert first["posts"] == 2 and second["posts"] == len(expected_ids(events)) - 2
    assert cursors[0] is None and cursors[1] == T0 + 3000, "the restart asked for cursor=<saved time_us>"
    ids = [r["id"] for r in read_landing(tmp_path / "landing")]
    assert len(ids) == len(set(ids)), "no duplicate (the boundary event was delivered again and skipped)"
    assert sorted(ids) == expected_ids(events), "no gap"


def test_reconnects_after_drops_with_the_cursor_reached(tmp_path):
    events = firehose(30)
    with FakeJetstream(events, drop_after=[5, 7]) as server:
        status = ingest(server.url, tmp_path, max_posts=len(expected_ids(events)))
        cursors = server.cursors()
    assert len(cursors) == 3 and cursors[0] is None and cursors[1] is not None and cursors[2] > cursors[1]
    assert status["errors"] == 2 and "Jetstream" in status["last_error"]
    ids = [r["id"] for r in read_landing(tmp_path / "landing")]
    assert len(ids) == len(set(ids)) and sorted(ids) == expected_ids(events)


def test_options_are_checked():
    with pytest.raises(IngestError, match="needs keywords"):
        BlueskySource("wss://example/subscribe", [])
    with pytest.raises(IngestError, match="ws://"):
        BlueskySource("https://example/subscribe", ["cats"])
    assert subscribe_url("wss://h/subscribe?compress=false", 12) == \
        "wss://h/subscribe?compress=false&wantedCollections=app.bsky.feed.post&cursor=12"
