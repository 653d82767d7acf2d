"""A loopback websocket server shaped like Bluesky's Jetstream ``/subscribe`` endpoint.

It holds a list of events ordered by ``time_us``. A connection gets the events from its ``cursor`` (inclusive, as
Jetstream replays from that time) or from the start, then stays open. ``drop_after`` cuts the first connections
after that many events (one number per connection). Each connection's request path is kept in :attr:`paths`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

DID = "did:plc:abc123xyz"


def post(time_us: int, rkey: str, text: str, *, did: str = DID, langs: list[str] | None = None,
         operation: str = "create", collection: str = "app.bsky.feed.post") -> dict[str, Any]:
    commit: dict[str, Any] = {"rev": "3l3qo2vutsw2b", "operation": operation, "collection": collection, "rkey": rkey}
    if operation != "delete":
        commit["record"] = {"$type": collection, "text": text, "langs": langs if langs is not None else ["en"],
                            "createdAt": "2024-11-20T16:41:22.123Z"}
        commit["cid"] = "bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4"
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}


def identity(time_us: int) -> dict[str, Any]:
    return {"did": DID, "time_us": time_us, "kind": "identity",
            "identity": {"did": DID, "handle": "alice.bsky.social", "seq": 1, "time": "2024-11-20T16:41:22.123Z"}}


def account(time_us: int) -> dict[str, Any]:
    return {"did": DID, "time_us": time_us, "kind": "account",
            "account": {"active": True, "did": DID, "seq": 2, "time": "2024-11-20T16:41:22.123Z"}}


class FakeJetstream:
    def __init__(self, events: list[dict[str, Any]], drop_after: list[int] | None = None):
        self.events = sorted(events, key=lambda e: e["time_us"])
        self.drop_after = list(drop_after or [])
        self.paths: list[str] = []
        self.sent = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    def __enter__(self) -> FakeJetstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def cursors(self) -> list[int | None]:
        out = []
        for path in self.paths:
            values = parse_qs(urlsplit(path).query).get("cursor")
            out.append(int(values[0]) if values else None)
        return out

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws) -> None:
        path = ws.request.path
        self.paths.append(path)
        query = parse_qs(urlsplit(path).query)
        assert query.get("wantedCollections") == ["app.bsky.feed.post"], path
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        limit = self.drop_after.pop(0) if self.drop_after else None
        sent = 0
        for event in self.events:
            if cursor is not None and event["time_us"] < cursor:
                continue
            if limit is not None and sent >= limit:
                await ws.close(code=1011, reason="going away")
                return
            await ws.send(json.dumps(event))
            sent += 1
            self.sent += 1
        await self._stop.wait()
