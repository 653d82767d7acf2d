"""Who may open the dashboard: loopback by default; beyond it, only a browser that presented the token.

:class:`TokenGate` is an ASGI middleware in front of the whole Streamlit server (page, static files, websocket),
so without a session nothing of the app is served, not even its script. A browser gets a session by posting the
token to the login form, or by opening ``/?token=...`` once (it is then redirected to the same page without the
token in its address). The session cookie is an HMAC of the token (HttpOnly, SameSite=Lax): changing the token
ends every session. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import ipaddress
import logging
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from ml.errors import ConfigError

log = logging.getLogger(__name__)

COOKIE = "sentiment_dashboard_session"
LOGIN_PATH = "/_dashboard/login"
#: Answered without a session: readiness checks of `make up` and the tests (they reveal nothing).
OPEN_PATHS = frozenset({"/_stcore/health", "/healthz"})
FAILURE_DELAY_S = 0.5
MAX_FORM_BYTES = 4096


def is_loopback(host: str | None) -> bool:
    """Whether a bind address reaches this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if not host:
        return False  # an empty address binds every interface
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str | None, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token.

    Raises:
        ConfigError: ``host`` is not a loopback address and no token is set.
    """
    if not token and not is_loopback(host):
        raise ConfigError(f"the dashboard would listen on {host or 'every interface'} without a token: set "
                          "SENTIMENT_DASHBOARD_TOKEN (dashboard_token), or bind it to 127.0.0.1")


def session_value(token: str) -> str:
    """The session cookie's value for ``token`` (an HMAC, so the cookie never holds the token itself)."""
    return hmac.new(token.encode(), b"sentiment-dashboard-session-v1", hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (of digests, so the token's length does not leak either)."""
    if not given:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest())


def _cookie_header(token: str) -> bytes:
    return f"{COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Lax".encode()


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//other.host`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_page(next_path: str = "/", error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sentiment dashboard: sign in</title>"
        "<meta name=viewport content='width=device-width,initial-scale=1'><style>"
        "body{font-family:system-ui,sans-serif;background:#f6f7f9;display:flex;justify-content:center;"
        "margin-top:12vh}form{background:#fff;padding:2em 2.5em;border-radius:8px;box-shadow:0 1px 4px #0002}"
        "input{font-size:1em;padding:.4em;width:22em;display:block;margin:.6em 0 1em}"
        "button{font-size:1em;padding:.4em 1.2em}.error{color:#b71c1c}</style></head><body>"
        f"<form method=post action='{LOGIN_PATH}'><h2>Sentiment dashboard</h2>{message}"
        "<label for=token>Token (SENTIMENT_DASHBOARD_TOKEN)</label>"
        "<input id=token name=token type=password autocomplete=current-password autofocus required>"
        f"<input type=hidden name=next value='{html.escape(_safe_next(next_path), quote=True)}'>"
        "<button type=submit>Open</button></form></body></html>")


class TokenGate:
    """ASGI middleware: every HTTP request and websocket needs the session cookie (or the token) when a token
    is set; without a token it passes everything through (loopback only, see :func:`check_bind`)."""

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token or None
        self.session = session_value(token) if token else None

    async def __call__(self, scope, receive, send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._has_session(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._http(scope, receive, send)

    def _has_session(self, scope) -> bool:
        for name, value in scope.get("headers") or []:
            if name == b"cookie":
                jar = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is no session
                    continue
                if COOKIE in jar and hmac.compare_digest(jar[COOKIE].value.encode(), self.session.encode()):
                    return True
        return False

    async def _http(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if path == LOGIN_PATH and method == "POST":
            form = dict(parse_qsl((await _body(receive)).decode("utf-8", "replace"), keep_blank_values=True))
            if token_matches(form.get("token"), self.token):
                await _redirect(send, _safe_next(form.get("next")), self.token)
                return
            await self._refuse(scope, send, _safe_next(form.get("next")), "That token is not right.")
            return
        given = [v for k, v in query if k == "token"]
        if given:
            rest = [(k, v) for k, v in query if k != "token"]
            target = path + (f"?{urlencode(rest)}" if rest else "")
            if token_matches(given[-1], self.token):
                await _redirect(send, _safe_next(target), self.token)
                return
            await self._refuse(scope, send, target, "That token is not right.")
            return
        if method == "GET" and _wants_html(scope):
            nxt = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
            await _html(send, 401, login_page(nxt))
            return
        await _plain(send, 401, b"401: sign in to the dashboard first\n")

    async def _refuse(self, scope, send, next_path: str, error: str) -> None:
        client = (scope.get("client") or ("?",))[0]
        log.warning("dashboard: refused a wrong token from %s", client)
        await asyncio.sleep(FAILURE_DELAY_S)  # slows guessing down
        await _html(send, 401, login_page(next_path, error))


def _wants_html(scope) -> bool:
    accept = next((v for k, v in scope.get("headers") or [] if k == b"accept"), b"")
    return b"text/html" in accept or scope["path"] == "/"


async def _body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b""
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _redirect(send, location: str, token: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1", "replace")), (b"set-cookie", _cookie_header(token)),
                            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _html(send, status: int, page: str) -> None:
    body = page.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _plain(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length",
                                                                            str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
