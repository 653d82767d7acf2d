"""The X source: the X API v2 filtered stream through tweepy's ``StreamingClient``.

(Slightly over 300 lines on purpose: the transport adapter that holds the token, the rule sync and the
backoff share one error model, and splitting them would spread the token handling over modules.)

* **Rules**: one per keyword, tagged ``tweet-sentiment:<stream>:<keyword>`` so this platform's rules are told apart
  from the app's other rules, which are never touched. Syncing is idempotent: rules of this stream that are no
  longer wanted are deleted, missing ones added, the rest kept. A keyword with spaces becomes a quoted phrase. An
  app rule with exactly a keyword's value serves that keyword as it is (X refuses duplicate values).
* **Posts**: only tweets that matched one of this stream's rules land (by rule id), with ``keyword`` = the
  keyword of the first such rule; ``tweet.fields=created_at,lang,author_id``; ids stay strings.
* **Base URL and token**: tweepy hard-codes ``https://api.twitter.com`` and logs its request headers (with the
  bearer token) at DEBUG. So tweepy gets a placeholder token, and :class:`XTransport`, a requests adapter mounted
  on tweepy's session, rewrites the base URL to ``api_url`` and adds the real ``Authorization`` header on the
  wire. The token lives only there and is never logged.
* **Reconnects**: a stream the server closes and network errors are retried by tweepy itself (at once, then with
  its growing waits). HTTP errors end tweepy's attempt here so this module can read the answer: 401 and 403 stop
  the source (a 403 such as ``client-not-enrolled`` raises :class:`SourceForbidden`, whose one-line message names
  the other sources); 429 waits at least ``rate_limit_wait`` seconds (or until ``x-rate-limit-reset``), doubling;
  other errors back off exponentially from ``retry_initial`` to ``retry_max``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from spark_apps.ingest.errors import IngestError, SourceForbidden
from spark_apps.ingest.records import Item, make_record, parse_time
from spark_apps.ingest.retry import Backoff
from spark_apps.ingest.runner import Emit

log = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"
TWEET_FIELDS = ["created_at", "lang", "author_id"]
PLACEHOLDER = "set-by-transport"
OTHER_SOURCES = "use --source replay (recorded posts, offline) or --source bluesky (Jetstream, no credentials)"


def tag_prefix(stream: str) -> str:
    return f"tweet-sentiment:{stream}:"


def rule_value(keyword: str) -> str:
    """The rule for a keyword: the word itself, or a quoted phrase for several words."""
    if re.search(r"\s", keyword) and not (keyword.startswith('"') and keyword.endswith('"')):
        return '"' + keyword.replace('"', "") + '"'
    return keyword


def _one_line(text: Any, limit: int = 200) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()[:limit]


class XTransport(HTTPAdapter):
    """Sends tweepy's requests to ``api_url`` with the bearer token, and remembers the last answers."""

    def __init__(self, api_url: str, token: str):
        super().__init__()
        self.base = api_url.rstrip("/")
        self._token = token
        self.status: int | None = None
        self.problem: dict[str, Any] = {}
        self.headers: dict[str, str] = {}
        self.stream_response: Any = None

    def __repr__(self) -> str:
        return f"XTransport({self.base!r})"

    def send(self, request, **kwargs):
        if request.url.startswith(TWEEPY_HOST):
            request.url = self.base + request.url[len(TWEEPY_HOST):]
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = super().send(request, **kwargs)
        if urlsplit(request.url).path.endswith("/2/tweets/search/stream"):  # the stream itself, not its rules
            self.status, self.headers = response.status_code, dict(response.headers)
            if response.status_code == 200:
                self.stream_response = response
            else:
                try:
                    body = response.json()
                except ValueError:
                    body = {"detail": response.text[:200]}
                self.problem = body if isinstance(body, dict) else {}
        return response

    def shutdown_stream(self) -> None:
        """Unblock a read of the open stream (from another thread)."""
        response, self.stream_response = self.stream_response, None
        if response is not None:
            try:
                response.raw.shutdown()
            except Exception:  # already closed or released: nothing to unblock
                log.debug("the X stream was already closed")


def forbidden_message(status: int, problem: dict[str, Any], what: str = "the filtered stream") -> str:
    reason = problem.get("reason") or problem.get("title") or "forbidden"
    detail = _one_line(problem.get("detail") or problem.get("title") or "")
    tier = ("this app's X API access level does not include the filtered stream" if reason == "client-not-enrolled"
            else "X refuses this app or token")
    return f"X API refused {what} (HTTP {status} {reason}{': ' + detail if detail else ''}); {tier}; {OTHER_SOURCES}"


def _client_class():
    import tweepy

    class Client(tweepy.StreamingClient):
        """tweepy's client, its payloads handed to ``handle`` raw (ids stay strings), HTTP errors ending the attempt."""

        def __init__(self, handle, connected, **kwargs):
            super().__init__(PLACEHOLDER, return_type=dict, **kwargs)
            self.handle = handle
            self.connected = connected
            self.http_error: int | None = None
            self.exception: BaseException | None = None

        def on_connect(self) -> None:
            log.info("X stream connected")
            self.connected()

        def on_data(self, raw_data: bytes) -> None:
            self.handle(raw_data)

        def on_keep_alive(self) -> None:
            log.debug("X keep-alive")

        def on_request_error(self, status_code: int) -> None:
            self.http_error = status_code
            self.disconnect()  # the waits are decided by XSource.run, which reads the answer first

        def on_closed(self, response) -> None:
            log.warning("X closed the stream; tweepy reconnects")

        def on_exception(self, exception: BaseException) -> None:
            self.exception = exception

    return Client


class XSource:
    """Posts of the X filtered stream matching ``keywords``.

    Args:
        token: The bearer token (never logged).
        keywords: One rule each (at least one).
        stream: The stream's name, part of the rules' tags.
        api_url: Base URL of the API.
        retry_initial, retry_max: Backoff of HTTP errors (seconds).
        rate_limit_wait: Shortest wait after a 429 (seconds).
    """

    name = "x"
    state_key = None  # the filtered stream has no cursor

    def __init__(self, token: str, keywords: list[str], *, stream: str = "tweets", api_url: str = TWEEPY_HOST,
                 retry_initial: float = 1.0, retry_max: float = 320.0, rate_limit_wait: float = 60.0,
                 max_network_retries: float = float("inf")):
        if not token:
            raise IngestError("the x source needs a bearer token: set X_BEARER_TOKEN or pass --x-conn-id")
        if not keywords:
            raise IngestError("the x source needs keywords (--keywords or SENTIMENT_STREAM_KEYWORDS): one rule each")
        self.keywords = keywords
        self.prefix = tag_prefix(stream)
        self.transport = XTransport(api_url, token)
        self.backoff = Backoff(retry_initial, retry_max)
        self.rate_limit_wait = rate_limit_wait
        self.max_network_retries = max_network_retries
        self.rule_ids: dict[str, str] = {}
        self._emit: Emit | None = None
        self._client: Any = None

    def make_client(self):
        client = _client_class()(self._handle, self.backoff.reset, max_retries=self.max_network_retries, daemon=True)
        client.session.mount(TWEEPY_HOST, self.transport)
        return client

    # ------------------------------------------------------------------------------------------------ rules
    def sync_rules(self, client) -> dict[str, str]:
        """Make this stream's rules exactly one per keyword; return ``{rule id: keyword}``."""
        existing = client.get_rules().get("data") or []
        wanted = {self.prefix + k: (rule_value(k), k) for k in self.keywords}
        ids: dict[str, str] = {}
        stale = []
        for rule in existing:
            tag = rule.get("tag") or ""
            if not tag.startswith(self.prefix):
                continue
            value, keyword = wanted.get(tag, (None, None))
            if rule.get("value") == value and keyword not in ids.values():
                ids[rule["id"]] = keyword
            else:
                stale.append(rule["id"])
        for rule in existing:  # a foreign rule with the very same value serves the keyword (X refuses duplicates)
            for value, keyword in wanted.values():
                if rule.get("value") == value and keyword not in ids.values():
                    ids[rule["id"]] = keyword
        if stale:
            client.delete_rules(stale)
        missing = [tag for tag, (_, keyword) in wanted.items() if keyword not in ids.values()]
        if missing:
            import tweepy

            answer = client.add_rules([tweepy.StreamRule(value=wanted[t][0], tag=t) for t in missing])
            errors = [e for e in answer.get("errors") or [] if e.get("title") != "DuplicateRule"]
            if errors:
                raise IngestError("X refused the rules: " + "; ".join(
                    _one_line(f"{e.get('value', '')}: {e.get('title', '')} {e.get('details') or ''}") for e in errors))
            for rule in answer.get("data") or []:
                ids[rule["id"]] = rule["tag"][len(self.prefix):]
        log.info("X rules: %d kept, %d added, %d deleted (other rules left alone)", len(ids) - len(missing),
                 len(missing), len(stale))
        return ids

    # ------------------------------------------------------------------------------------------------ posts
    def _handle(self, raw: bytes) -> None:
        item = self.to_item(raw)
        if item is not None and self._emit is not None and not self._emit(item) and self._client is not None:
            self._client.disconnect()

    def to_item(self, raw: bytes | str) -> Item | None:
        """One stream payload as an item: a record if it matched this stream's rules."""
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            return Item(None, None, "bad", f"X sent a line that is not JSON ({exc})")
        tweet = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(tweet, dict):
            if isinstance(payload, dict) and payload.get("errors"):
                return Item(None, None, "error", "X: " + _one_line(payload["errors"]))
            return None
        keyword = next((self.rule_ids[r.get("id")] for r in payload.get("matching_rules") or []
                        if r.get("id") in self.rule_ids), None)
        if keyword is None:
            keyword = next((r["tag"][len(self.prefix):] for r in payload.get("matching_rules") or []
                            if (r.get("tag") or "").startswith(self.prefix)), None)
        if keyword is None:
            return Item(None, None, "filtered")
        if tweet.get("id") is None or not isinstance(tweet.get("text"), str):
            return Item(None, None, "bad")
        return Item(make_record(id=str(tweet["id"]), text=tweet["text"], source="x",
                                created_at=parse_time(tweet.get("created_at")), keyword=keyword,
                                lang=tweet.get("lang"), author_id=tweet.get("author_id")))

    # ------------------------------------------------------------------------------------------------- loop
    def _wait_after(self, client, emit: Emit, headers: dict[str, str] | None = None) -> float:
        status, problem = client.http_error, self.transport.problem
        if status == 403:
            raise SourceForbidden(forbidden_message(status, problem))
        if status == 401:
            raise IngestError(f"X API refused the bearer token (HTTP 401 {_one_line(problem.get('title', ''))}); "
                              "check X_BEARER_TOKEN or the connection")
        floor = 0.0
        if status == 429:
            floor = self.rate_limit_wait
            reset = (headers if headers is not None else self.transport.headers).get("x-rate-limit-reset", "")
            if reset.isdigit():
                floor = max(floor, int(reset) - time.time())
        what = (f"HTTP {status}" if status else f"{type(client.exception).__name__}: {client.exception}"
                if client.exception else "the stream ended")
        wait = self.backoff.next(floor)
        log.warning("X stream: %s; reconnecting in %.1f s", _one_line(what), wait)
        emit(Item(None, None, "error", f"X stream: {_one_line(what)}"))
        return wait

    def run(self, emit: Emit, stop: threading.Event, state: dict[str, Any] | None) -> None:
        import tweepy

        self._emit = emit
        done = threading.Event()

        def watch() -> None:  # stop promptly: tweepy only checks between lines and keep-alives
            while not (stop.wait(0.2) or done.is_set()):
                pass
            if self._client is not None:
                self._client.disconnect()
            self.transport.shutdown_stream()

        threading.Thread(target=watch, name="x-stop", daemon=True).start()
        try:
            while not stop.is_set():
                self._client = client = self.make_client()
                try:
                    if not self.rule_ids:
                        self.rule_ids = self.sync_rules(client)
                except tweepy.Forbidden as exc:
                    raise SourceForbidden(forbidden_message(403, _problem(exc), "the stream rules")) from None
                except tweepy.Unauthorized:
                    raise IngestError("X API refused the bearer token (HTTP 401); check X_BEARER_TOKEN or the "
                                      "connection") from None
                except (tweepy.TooManyRequests, tweepy.TwitterServerError, OSError) as exc:
                    response = getattr(exc, "response", None)
                    client.http_error = getattr(response, "status_code", None)
                    client.exception = exc
                    stop.wait(self._wait_after(client, emit, dict(getattr(response, "headers", None) or {})))
                    continue
                self.transport.status, self.transport.problem = None, {}
                client.filter(tweet_fields=TWEET_FIELDS, threaded=False)
                if stop.is_set():
                    break
                stop.wait(self._wait_after(client, emit))
        finally:
            done.set()


def _problem(exc: Exception) -> dict[str, Any]:
    try:
        body = exc.response.json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
