"""A loopback server speaking the X API v2 filtered stream: rules GET/POST (add, delete) and the stream itself.

Payload shapes follow the X API docs' examples. Each stream connection takes the next scripted behaviour:

* ``("status", code, body, headers)``: answer with that status and JSON body;
* ``("lines", [payload, ...], end)``: 200, then the payloads as newline-delimited JSON with a blank keep-alive line
  between them, then ``end``: ``"drop"`` (cut the connection mid-chunk), ``"close"`` (end the response) or
  ``"hold"`` (keep-alives until the server stops or the client leaves).

When the script is used up, connections hold.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SENT = "2024-01-15T10:35:00.000Z"


def tweet(tweet_id: str, text: str, *rules: tuple[str, str], author: str = "9876543210", lang: str = "en") -> dict:
    return {"data": {"id": tweet_id, "text": text, "author_id": author, "created_at": "2024-01-15T10:35:00.000Z",
                     "lang": lang, "edit_history_tweet_ids": [tweet_id]},
            "matching_rules": [{"id": rule_id, "tag": tag} for rule_id, tag in rules]}


CLIENT_NOT_ENROLLED = {
    "client_id": "12345678",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
              "Twitter developer App that is attached to a Project. You can create a project via the developer "
              "portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}


class FakeX:
    def __init__(self, rules: list[dict] | None = None, script: list[tuple] | None = None,
                 rules_status: tuple[int, dict] | None = None):
        self.rules = list(rules or [])
        self.script = list(script or [])
        self.rules_status = rules_status
        self.requests: list[dict[str, Any]] = []
        self.stream_connects: list[float] = []
        self.posts: list[dict] = []
        self.stopped = threading.Event()
        self._ids = itertools.count(1_500_000_000_000_000_000)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._record(self)
                path = urlsplit(self.path).path
                if path == "/2/tweets/search/stream/rules":
                    fake._rules_get(self)
                elif path == "/2/tweets/search/stream":
                    fake._stream(self)
                else:
                    fake._json(self, 404, {"title": "Not Found"})

            def do_POST(self) -> None:
                fake._record(self)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.posts.append(body)
                fake._rules_post(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeX:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------------------------------------- helpers
    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "authorization": handler.headers.get("Authorization"), "time": time.monotonic()})

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _rules_get(self, handler: BaseHTTPRequestHandler) -> None:
        if self.rules_status:
            return self._json(handler, *self.rules_status)
        body: dict[str, Any] = {"meta": {"sent": SENT, "result_count": len(self.rules)}}
        if self.rules:
            body["data"] = self.rules
        self._json(handler, 200, body)

    def _rules_post(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        if "delete" in body:
            ids = set(body["delete"]["ids"])
            before = len(self.rules)
            self.rules = [r for r in self.rules if r["id"] not in ids]
            return self._json(handler, 200, {"meta": {"sent": SENT, "summary": {
                "deleted": before - len(self.rules), "not_deleted": len(ids) - (before - len(self.rules))}}})
        created, errors = [], []
        for rule in body.get("add", []):
            if any(r["value"] == rule["value"] for r in self.rules):
                errors.append({"value": rule["value"], "id": "1", "title": "DuplicateRule",
                               "type": "https://api.twitter.com/2/problems/duplicate-rules"})
                continue
            new = {"id": str(next(self._ids)), "value": rule["value"], **({"tag": rule["tag"]} if "tag" in rule else {})}
            self.rules.append(new)
            created.append(new)
        answer: dict[str, Any] = {"meta": {"sent": SENT, "summary": {"created": len(created), "not_created": len(errors),
                                                                      "valid": len(created), "invalid": 0}}}
        if created:
            answer["data"] = created
        if errors:
            answer["errors"] = errors
        self._json(handler, 201, answer)

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.stream_connects.append(time.monotonic())
            step = self.script.pop(0) if self.script else ("lines", [], "hold")
        if step[0] == "status":
            _, code, body, *headers = step
            return self._json(handler, code, body, headers[0] if headers else None)
        _, payloads, end = step
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def chunk(data: bytes) -> None:
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        try:
            chunk(b"\r\n")  # keep-alive
            for payload in payloads:
                chunk(json.dumps(payload).encode() + b"\r\n")
                chunk(b"\r\n")
            if end == "drop":
                handler.wfile.write(b"7f\r\n{\"data\": {\"id\"")  # cut mid-chunk, mid-tweet
                handler.wfile.flush()
                handler.close_connection = True
                return
            if end == "hold":
                while not self.stopped.wait(0.1):
                    chunk(b"\r\n")
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True
