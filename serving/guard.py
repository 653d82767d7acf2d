"""An ASGI middleware in front of the BentoML app: API key, body limits, UTF-8, JSON and schema checks.

BentoML validates request bodies with pydantic and answers 400 for anything it cannot parse. The service's
contract is more specific, so this guard answers first, with ``{"error": "<message>"}``:

* ``401`` when ``SENTIMENT_API_KEY`` is set and ``Authorization: Bearer <key>`` is missing or wrong (the health
  probes, ``/metrics`` and the docs page stay open);
* ``413`` when a body is larger than ``SENTIMENT_MAX_BODY_BYTES`` or a request holds more than
  ``SENTIMENT_MAX_TEXTS`` texts;
* ``422`` when a text is longer than ``SENTIMENT_MAX_CHARS`` or the JSON does not have the API's shape;
* ``415`` for a body that is not JSON (another ``Content-Type``, a charset other than UTF-8, a content encoding);
* ``400`` for bytes that are not UTF-8 and for malformed JSON;
* ``503`` with ``Retry-After`` when the worker's queue is full (:mod:`serving.admission`): at once, counted in
  ``sentiment_rejected_requests_total{reason="busy"}``, never a traceback.

A valid body is handed on unchanged, so BentoML parses it as usual. Messages name the limit and its variable.
``GET /docs.json`` answers the spec of :func:`serving.contract.openapi`: every status above, documented. A valid
request with many texts (``bulk``) goes to an internal route that skips BentoML's batching queue.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.admission import Admission

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Paths that never need the API key: probes, metrics and the OpenAPI docs page.
PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/", "/docs.json", "/schema.json"})
PUBLIC_PREFIXES = ("/static_content/", "/assets/")
#: How much of an oversized body is read and discarded before answering 413 (so the client sees the answer).
DRAIN_LIMIT = 16 * 1024 * 1024


class Rejected(Exception):
    """A request the guard answers itself."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[bytes, bytes] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers or {}


@functools.cache
def _rejections():
    """Prometheus counter of rejected requests (created lazily, once per process, after BentoML set up metrics)."""
    from prometheus_client import Counter

    return Counter("sentiment_rejected_requests", "Requests the input guard rejected.", ["reason", "status"])


class RequestGuard:
    """Pure ASGI middleware; ``routes`` maps a POST path to the one JSON field it takes (``texts`` or ``text``)."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        routes: Mapping[str, str],
        max_texts: int,
        max_chars: int,
        max_body_bytes: int,
        api_key: str | None = None,
        admission: Admission | None = None,
        openapi: Callable[[], dict[str, Any]] | None = None,
        bulk: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        self.app = app
        self.bulk = dict(bulk or {})
        self.admission = admission
        self._openapi = openapi
        self._spec: bytes | None = None
        self.routes = dict(routes)
        self.max_texts = max_texts
        self.max_chars = max_chars
        self.max_body_bytes = max_body_bytes
        self._expected_auth = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/docs.json" and self._openapi is not None and scope["method"] in ("GET", "HEAD"):
            await self._send_spec(send)
            return
        try:
            if self._expected_auth is not None and not _is_public(path):
                self._authorize(scope)
            field = self.routes.get(path)
            if field is None or scope["method"] != "POST":
                await self.app(scope, receive, send)
                return
            headers = _headers(scope)
            self._check_headers(headers)
            body = await self._read_body(headers, receive)
            if body is None:  # the client went away
                return
            payload = self.check_payload(field, body)
            texts = len(payload[field]) if field == "texts" else 1
            self._admit(texts)
        except Rejected as exc:
            await _reject(send, exc)
            return
        route, at_least = self.bulk.get(path, (None, 0))
        if route is not None and texts >= at_least:  # a batch already: skip the batching queue
            scope = {**scope, "path": route, "raw_path": route.encode()}
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            if self.admission is not None:
                self.admission.release(texts)

    def _admit(self, texts: int) -> None:
        admission = self.admission
        if admission is None or admission.try_admit(texts):
            return
        wait = admission.retry_after()
        raise Rejected(503, f"the service is busy: {admission.texts} texts in flight, its queue holds {admission.limit()} "
                            f"(SENTIMENT_MAX_QUEUE_S of work, at most SENTIMENT_MAX_QUEUE_TEXTS); retry after {wait} s",
                       "busy", {b"retry-after": str(wait).encode()})

    async def _send_spec(self, send: Send) -> None:
        if self._spec is None:
            self._spec = json.dumps(self._openapi()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self._spec)).encode())]})
        await send({"type": "http.response.body", "body": self._spec})

    # ----------------------------------------------------------------------------------------- checks
    def _authorize(self, scope: Scope) -> None:
        given = _headers(scope).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._expected_auth):
            raise Rejected(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'", "auth")

    def _check_headers(self, headers: dict[bytes, bytes]) -> None:
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        media_type, _, params = content_type.partition(";")
        if media_type.strip() not in ("", "application/json"):
            raise Rejected(415, f"unsupported Content-Type {media_type.strip()!r}: send application/json",
                           "content_type")
        charset = next((p.split("=", 1)[1].strip().strip('"') for p in params.split(";") if "=" in p
                        and p.split("=", 1)[0].strip() == "charset"), "utf-8")
        if charset.replace("-", "").replace("_", "") != "utf8":
            raise Rejected(415, f"unsupported charset {charset!r}: send UTF-8 JSON", "content_type")
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ("", "identity"):
            raise Rejected(415, f"unsupported Content-Encoding {encoding!r}: send an uncompressed body",
                           "content_type")

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes | None:
        limit = self.max_body_bytes
        too_large = Rejected(413, f"request body too large: the limit is {limit} bytes (SENTIMENT_MAX_BODY_BYTES)",
                             "body_bytes")
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                raise Rejected(400, "invalid Content-Length header", "malformed") from None
            if declared_size > limit:
                if declared_size <= DRAIN_LIMIT:
                    await _drain(receive)
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if size <= DRAIN_LIMIT and message.get("more_body", False):
                    await _drain(receive, DRAIN_LIMIT - size)
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def check_payload(self, field: str, body: bytes) -> Any:
        """Validate one body for the API taking ``field``; return the parsed JSON or raise :class:`Rejected`."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset "
                                f"{exc.start}): send UTF-8 JSON", "utf8") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Rejected(400, f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                           "malformed") from None
        except (ValueError, RecursionError) as exc:
            raise Rejected(400, f"malformed JSON: {type(exc).__name__}", "malformed") from None
        example = '{"texts": ["..."]}' if field == "texts" else '{"text": "..."}'
        if not isinstance(payload, dict):
            raise Rejected(422, f"expected a JSON object like {example}, got a JSON {_json_type(payload)}", "schema")
        unknown = sorted(set(payload) - {field})
        if unknown:
            raise Rejected(422, f"unknown field(s) {', '.join(map(repr, unknown))}: expected {example}", "schema")
        if field not in payload:
            raise Rejected(422, f"missing field {field!r}: expected {example}", "schema")
        value = payload[field]
        if field == "texts":
            if not isinstance(value, list):
                raise Rejected(422, f"'texts' must be a list of strings, got a JSON {_json_type(value)}", "schema")
            if len(value) > self.max_texts:
                raise Rejected(413, f"too many texts: {len(value)}; the limit is {self.max_texts} per request "
                                    "(SENTIMENT_MAX_TEXTS)", "max_texts")
            for i, item in enumerate(value):
                self._check_text(item, f"texts[{i}]")
        else:
            self._check_text(value, "text")
        return payload

    def _check_text(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise Rejected(422, f"{where} must be a string, got a JSON {_json_type(value)}", "schema")
        if len(value) > self.max_chars:
            raise Rejected(422, f"{where} has {len(value)} characters; the limit is {self.max_chars} per text "
                                "(SENTIMENT_MAX_CHARS)", "max_chars")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise Rejected(422, f"{where} holds a lone surrogate \\u{ord(value[exc.start]):04x}, which is not "
                                    "valid Unicode", "schema") from None


# --------------------------------------------------------------------------------------------- helpers
def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


async def _drain(receive: Receive, budget: int = DRAIN_LIMIT) -> None:
    """Read and discard the rest of a body (bounded), so the client is not cut off while still sending."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body on once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reject(send: Send, exc: Rejected) -> None:
    try:
        _rejections().labels(reason=exc.reason, status=str(exc.status)).inc()
    except Exception:  # metrics must never turn a 4xx into a 500
        log.debug("could not count a rejection", exc_info=True)
    body = json.dumps({"error": exc.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    headers.extend(exc.headers.items())
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
