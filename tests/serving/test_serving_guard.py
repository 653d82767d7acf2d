"""The input guard on its own: every rejection, its status and message, and untouched pass-through."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.guard import Rejected, RequestGuard

LIMITS = {"max_texts": 3, "max_chars": 10, "max_body_bytes": 200}


def guard(**overrides) -> RequestGuard:
    return RequestGuard(None, routes={"/classify": "texts", "/predict": "text"}, **{**LIMITS, **overrides})


@pytest.mark.parametrize(
    ("field", "body", "status", "message"),
    [
        ("texts", b'{"texts": ["a", "b", "c", "d"]}', 413, "too many texts: 4; the limit is 3 per request "
                                                            "(SENTIMENT_MAX_TEXTS)"),
        ("texts", b'{"texts": ["0123456789X"]}', 422, "texts[0] has 11 characters; the limit is 10 per text "
                                                      "(SENTIMENT_MAX_CHARS)"),
        ("text", b'{"text": "0123456789X"}', 422, "text has 11 characters; the limit is 10"),
        ("texts", b'{"texts": ["ok", 3]}', 422, "texts[1] must be a string, got a JSON number"),
        ("texts", b'{"texts": ["ok", null]}', 422, "texts[1] must be a string, got a JSON null"),
        ("texts", b'{"texts": "just one"}', 422, "'texts' must be a list of strings, got a JSON string"),
        ("texts", b'["a"]', 422, "expected a JSON object"),
        ("texts", b'{}', 422, "missing field 'texts'"),
        ("texts", b'{"text": "a"}', 422, "unknown field(s) 'text'"),
        ("texts", b'{"texts": [], "extra": 1}', 422, "unknown field(s) 'extra'"),
        ("text", b'{"text": ["a"]}', 422, "text must be a string, got a JSON array"),
        ("texts", b'{"texts": ["\\ud800"]}', 422, "lone surrogate \\ud800"),
        ("texts", b'{"texts": [', 400, "malformed JSON: Expecting value"),
        ("texts", b'', 400, "malformed JSON"),
        ("texts", b'{"texts": ["caf\xe9"]}', 400, "not valid UTF-8 (byte 0xe9 at offset 15)"),
        ("texts", b'\xef\xbb\xbf{"texts": []}', 400, "malformed JSON"),
        ("texts", b"[" * 50 + b"]" * 50, 422, "expected a JSON object"),
        ("texts", b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON: RecursionError"),
    ],
)
def test_rejections(field, body, status, message):
    with pytest.raises(Rejected) as info:
        guard().check_payload(field, body)
    assert info.value.status == status
    assert message in info.value.message


@pytest.mark.parametrize(
    ("field", "body"),
    [("texts", b'{"texts": []}'), ("texts", b'{"texts": ["", "  ", "0123456789"]}'),
     ("texts", '{"texts": ["café ✓ 😀"]}'.encode()), ("text", b'{"text": ""}'),
     ("texts", b'{"texts": ["\\u00e9t\\u00e9"]}')],
)
def test_valid_payloads_pass(field, body):
    assert field in guard().check_payload(field, body)


# --------------------------------------------------------------------------------------------- as ASGI
async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"received": body.decode("utf-8", "replace"), "size": len(body), "path": request.url.path})


def client(**overrides) -> TestClient:
    inner = Starlette(routes=[Route(p, echo, methods=["GET", "POST"]) for p in
                              ("/classify", "/predict", "/livez", "/readyz", "/metrics", "/other")])
    app = RequestGuard(inner, routes={"/classify": "texts", "/predict": "text"}, **{**LIMITS, **overrides})
    return TestClient(app)


def test_a_valid_body_reaches_the_app_unchanged():
    body = '{"texts": ["héllo", "x"]}'.encode()
    r = client().post("/classify", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json()["received"] == body.decode()


def test_json_errors_come_back_as_json():
    r = client().post("/classify", content=b'{"texts": ["a","b","c","d"]}')
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/json"
    assert "SENTIMENT_MAX_TEXTS" in r.json()["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Content-Type": "text/csv"}, 415), ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
     ({"Content-Type": "multipart/form-data; boundary=x"}, 415), ({"Content-Type": "application/vnd.bentoml+pickle"}, 415),
     ({"Content-Type": "application/json; charset=latin-1"}, 415), ({"Content-Encoding": "gzip"}, 415),
     ({"Content-Length": "nope"}, 400)],
)
def test_content_headers(headers, status):
    r = client().post("/classify", content=b'{"texts": []}', headers=headers)
    assert r.status_code == status, r.text


def test_body_limit_by_declared_length_and_by_stream():
    big = json.dumps({"texts": ["x" * 10] * 3}).encode() + b" " * 300
    r = client().post("/classify", content=big)
    assert r.status_code == 413 and "200 bytes (SENTIMENT_MAX_BODY_BYTES)" in r.json()["error"]

    def chunks():  # no Content-Length: chunked transfer
        for _ in range(10):
            yield b" " * 50

    r = client().post("/classify", content=chunks())
    assert r.status_code == 413


def test_other_routes_and_methods_pass_through():
    c = client()
    assert c.get("/classify").json()["path"] == "/classify"
    assert c.post("/other", content=b"\xff not json").json()["size"] == 10  # not validated


def test_api_key():
    c = client(api_key="s3cret")
    assert c.post("/classify", content=b'{"texts": []}').status_code == 401
    r = c.post("/classify", content=b'{"texts": []}', headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["error"]
    assert c.post("/classify", content=b'{"texts": []}', headers={"Authorization": "s3cret"}).status_code == 401
    assert c.post("/other", content=b"").status_code == 401
    ok = c.post("/classify", content=b'{"texts": []}', headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    for path in ("/livez", "/readyz", "/metrics"):
        assert c.get(path).status_code == 200
    # Without a key nothing needs one.
    assert client().post("/classify", content=b'{"texts": []}').status_code == 200
