"""The Bluesky source: the Jetstream firehose over a websocket (no credentials).

It connects to ``<url>?wantedCollections=app.bsky.feed.post[&cursor=<time_us>]``. Only commit events creating an
``app.bsky.feed.post`` whose text matches a keyword land: id ``at://<did>/app.bsky.feed.post/<rkey>``, ``lang`` the
first of ``langs``, ``author_id`` the DID, ``created_at`` the record's ``createdAt``, ``keyword`` the matched
keyword. Deletes, updates, other collections, identity and account events are skipped.

Position (``state.json`` section ``bluesky``): ``{"cursor": <time_us>, "ids": [...]}``: the ``time_us`` of the last
event handled and the ids landed at exactly that time. Jetstream replays from the cursor's time inclusive, so on a
restart (or a reconnect) events before the cursor and those ids are skipped: no gap and no duplicate. Connection
errors reconnect with exponential backoff from the position reached so far.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import urllib.parse
from typing import Any

from spark_apps.ingest.errors import IngestError
from spark_apps.ingest.records import Item, KeywordMatcher, make_record, parse_time
from spark_apps.ingest.retry import Backoff
from spark_apps.ingest.runner import Emit

log = logging.getLogger(__name__)

COLLECTION = "app.bsky.feed.post"
_POLL = 0.5


def subscribe_url(base: str, cursor: int | None = None) -> str:
    """``base`` with ``wantedCollections`` (and ``cursor``) in its query string (other parameters kept)."""
    parts = urllib.parse.urlsplit(base)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("wantedCollections", "cursor")]
    query.append(("wantedCollections", COLLECTION))
    if cursor is not None:
        query.append(("cursor", str(cursor)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class Position:
    """The last ``time_us`` handled and the ids landed at that very time."""

    def __init__(self, state: dict[str, Any] | None = None):
        state = state or {}
        self.cursor: int | None = int(state["cursor"]) if state.get("cursor") is not None else None
        self.ids: list[str] = list(state.get("ids") or [])

    def seen(self, time_us: int, post_id: str | None) -> bool:
        """Whether this event was handled before (it is before the cursor, or landed at the cursor's time)."""
        if self.cursor is None:
            return False
        return time_us < self.cursor or (time_us == self.cursor and post_id is not None and post_id in self.ids)

    def advance(self, time_us: int, landed_id: str | None) -> dict[str, Any]:
        if self.cursor is None or time_us > self.cursor:
            self.cursor, self.ids = time_us, []
        if landed_id is not None:
            self.ids.append(landed_id)
        return {"cursor": self.cursor, "ids": list(self.ids)}


class BlueskySource:
    """Posts of the Jetstream firehose matching ``keywords``.

    Args:
        url: The Jetstream ``subscribe`` endpoint (``ws://`` or ``wss://``).
        keywords: Posts must match one (at least one keyword).
        retry_initial, retry_max: Backoff between reconnects (seconds).
    """

    name = "bluesky"
    state_key = "bluesky"

    def __init__(self, url: str, keywords: list[str], *, retry_initial: float = 1.0, retry_max: float = 60.0,
                 open_timeout: float = 10.0):
        if not keywords:
            raise IngestError("the bluesky source needs keywords (--keywords or SENTIMENT_STREAM_KEYWORDS): the "
                              "firehose carries every post of the network")
        if urllib.parse.urlsplit(url).scheme not in ("ws", "wss"):
            raise IngestError(f"bluesky url must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.matcher = KeywordMatcher(keywords)
        self.backoff = Backoff(retry_initial, retry_max)
        self.open_timeout = open_timeout

    def to_item(self, event: Any, position: Position) -> Item | None:
        """One Jetstream event as an item (``None``: handled before)."""
        if not isinstance(event, dict) or not isinstance(event.get("time_us"), int):
            return Item(None, None, "bad")
        time_us, commit = event["time_us"], event.get("commit")
        post = (event.get("kind") == "commit" and isinstance(commit, dict) and commit.get("operation") == "create"
                and commit.get("collection") == COLLECTION and isinstance(commit.get("record"), dict))
        post_id = f"at://{event.get('did')}/{COLLECTION}/{commit.get('rkey')}" if post else None
        if position.seen(time_us, post_id):
            return None
        if not post:
            return Item(None, position.advance(time_us, None), "")
        record = commit["record"]
        text = record.get("text")
        if not isinstance(text, str) or not event.get("did") or not commit.get("rkey"):
            return Item(None, position.advance(time_us, None), "bad")
        keyword = self.matcher.match(text)
        if keyword is None:
            return Item(None, position.advance(time_us, None), "filtered")
        langs = record.get("langs")
        lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
        landed = make_record(id=post_id, text=text, source="bluesky", created_at=parse_time(record.get("createdAt")),
                             keyword=keyword, lang=lang, author_id=event["did"])
        return Item(landed, position.advance(time_us, landed["id"]))

    def run(self, emit: Emit, stop: threading.Event, state: dict[str, Any] | None) -> None:
        asyncio.run(self._main(emit, stop, Position(state)))

    async def _main(self, emit: Emit, stop: threading.Event, position: Position) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        while not stop.is_set():
            url = subscribe_url(self.url, position.cursor)
            try:
                log.info("connecting to %s", url)
                async with connect(url, open_timeout=self.open_timeout, max_size=1 << 22) as ws:
                    while not stop.is_set():
                        try:
                            message = await asyncio.wait_for(ws.recv(), timeout=_POLL)
                        except TimeoutError:
                            continue
                        self.backoff.reset()
                        if not self._handle(message, position, emit):
                            return
                    return
            except InvalidURI as exc:
                raise IngestError(f"bad bluesky url: {exc}") from None
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                wait = self.backoff.next()
                what = f"{type(exc).__name__}: {exc}"
                log.warning("Jetstream connection: %s; reconnecting in %.1f s from cursor %s", what, wait,
                            position.cursor)
                if not emit(Item(None, None, "error", f"Jetstream: {what}")):
                    return
                await asyncio.get_running_loop().run_in_executor(None, stop.wait, wait)

    def _handle(self, message: str | bytes, position: Position, emit: Emit) -> bool:
        try:
            event = json.loads(message)
        except ValueError as exc:
            log.warning("Jetstream sent a message that is not JSON (%s)", exc)
            return emit(Item(None, None, "bad"))
        item = self.to_item(event, position)
        return True if item is None else emit(item)
