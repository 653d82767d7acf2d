"""Second layer: the service's ASGI app in-process (BentoML routing, validation, batching, guard)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import EMPTY_TEXTS, NEGATIVE_TEXTS, POSITIVE_TEXTS, UNSEEN_TEXT
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(service_cls):
    with TestClient(service_cls.to_asgi()) as c:
        yield c


def test_classify_and_predict(client, service):
    r = client.post("/classify", json={"texts": POSITIVE_TEXTS + NEGATIVE_TEXTS + [UNSEEN_TEXT, "  "]})
    assert r.status_code == 200
    body = r.json()
    assert [a["label"] for a in body] == ["Positive"] * 3 + ["Negative"] * 3 + ["Neutral", "Neutral"]
    assert body[-1] == {"label": "Neutral", "p_positive": None, "scores": None, "model": service.tag}
    assert 0.4 <= body[-2]["p_positive"] <= 0.6
    assert all(a["model"] == service.tag for a in body)
    one = client.post("/predict", json={"text": POSITIVE_TEXTS[0]})
    assert one.status_code == 200 and one.json() == body[0]


def test_empty_list_and_blank_texts(client):
    assert client.post("/classify", json={"texts": []}).json() == []
    answers = client.post("/classify", json={"texts": EMPTY_TEXTS}).json()
    assert [a["label"] for a in answers] == ["Neutral"] * len(EMPTY_TEXTS)
    assert client.post("/predict", json={"text": ""}).json()["p_positive"] is None


def test_concurrent_requests_are_batched_and_each_gets_its_own_answers(client, service):
    requests = [[f"{POSITIVE_TEXTS[i % 3]} {i}"] * (1 + i % 4) + [NEGATIVE_TEXTS[i % 3]] for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda texts: client.post("/classify", json={"texts": texts}), requests))
    for texts, r in zip(requests, responses, strict=True):
        assert r.status_code == 200
        assert r.json() == [a.model_dump() for a in service.classify(texts)]


def test_a_request_larger_than_the_batch_size_is_split_and_reassembled(client, service, service_cls):
    from serving.service import CONFIG

    texts = [POSITIVE_TEXTS[i % 3] if i % 2 else NEGATIVE_TEXTS[i % 3] for i in range(CONFIG.max_batch_size + 7)]
    r = client.post("/classify", json={"texts": texts})
    assert r.status_code == 200
    assert [a["label"] for a in r.json()] == [a.label for a in service.classify(texts)]


@pytest.mark.parametrize(
    ("path", "content", "status"),
    [
        ("/classify", b'{"texts": [', 400),
        ("/classify", b'{"texts": ["\xff"]}', 400),
        ("/classify", b'{"texts": "one"}', 422),
        ("/classify", b'{"text": "one"}', 422),
        ("/classify", b"[]", 422),
        ("/predict", b'{"text": 1}', 422),
        ("/predict", b'{"texts": ["a"]}', 422),
    ],
)
def test_bad_input_is_4xx_and_the_service_stays_ready(client, path, content, status):
    r = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert "error" in r.json()
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json={"text": "what a great day"}).status_code == 200


def test_limits_name_the_variable(client):
    from serving.service import CONFIG

    r = client.post("/classify", json={"texts": ["x"] * (CONFIG.max_texts + 1)})
    assert r.status_code == 413 and "SENTIMENT_MAX_TEXTS" in r.json()["error"]
    r = client.post("/predict", json={"text": "x" * (CONFIG.max_chars + 1)})
    assert r.status_code == 422 and "SENTIMENT_MAX_CHARS" in r.json()["error"]


def test_health_metrics_and_docs(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/classify", "/predict"} <= set(spec["paths"])
    assert client.get("/").status_code == 200
