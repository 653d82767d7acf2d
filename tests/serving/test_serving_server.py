"""Third layer: real ``bentoml serve`` subprocesses on free loopback ports, with models packaged in the test."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import AUTH, KEY, NEGATIVE_TEXTS, POSITIVE_TEXTS, UNSEEN_TEXT, copy_home

from serving.launch import REPO_ROOT, BentoServer

pytestmark = pytest.mark.slow

def post(server, path, *, json_body=None, content=None, headers=None):
    headers = {**AUTH, **(headers or {})}
    return httpx.post(f"{server.url}{path}", json=json_body, content=content, headers=headers, timeout=30)


def test_serves_the_latest_packaged_model(server, platform):
    r = post(server, "/classify", json_body={"texts": POSITIVE_TEXTS + NEGATIVE_TEXTS})
    assert r.status_code == 200, r.text
    answers = r.json()
    assert [a["label"] for a in answers] == ["Positive"] * 3 + ["Negative"] * 3
    assert {a["model"] for a in answers} == {platform["latest"]["tag"]}
    assert all(a["scores"] is None and 0 <= a["p_positive"] <= 1 for a in answers)  # binary model
    one = post(server, "/predict", json_body={"text": POSITIVE_TEXTS[0]})
    assert one.status_code == 200 and one.json() == answers[0]


def test_neutral_band_and_blank_texts(server):
    answers = post(server, "/classify", json_body={"texts": [UNSEEN_TEXT, "", "   ", "http://t.co/x"]}).json()
    assert answers[0]["label"] == "Neutral" and 0.4 <= answers[0]["p_positive"] <= 0.6
    assert [(a["label"], a["p_positive"]) for a in answers[1:]] == [("Neutral", None)] * 3
    assert post(server, "/classify", json_body={"texts": []}).json() == []
    for a in post(server, "/classify", json_body={"texts": POSITIVE_TEXTS + NEGATIVE_TEXTS}).json():
        assert (a["label"] == "Neutral") == (0.4 <= a["p_positive"] <= 0.6)


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "needle"),
    [
        ("/classify", {"json_body": {"texts": ["ok"] * 9}}, 413, "the limit is 8 per request (SENTIMENT_MAX_TEXTS)"),
        ("/classify", {"json_body": {"texts": ["x" * 51]}}, 422, "the limit is 50 per text (SENTIMENT_MAX_CHARS)"),
        ("/predict", {"json_body": {"text": "x" * 51}}, 422, "SENTIMENT_MAX_CHARS"),
        ("/classify", {"content": b'{"texts": ["' + b"a" * 5000 + b'"]}'}, 413, "4096 bytes (SENTIMENT_MAX_BODY_BYTES)"),
        ("/classify", {"content": b'{"texts": ["good", '}, 400, "malformed JSON"),
        ("/classify", {"content": b"not json at all"}, 400, "malformed JSON"),
        ("/classify", {"content": b'{"texts": ["caf\xe9 \xff"]}'}, 400, "not valid UTF-8"),
        ("/classify", {"json_body": {"texts": "one text"}}, 422, "must be a list of strings"),
        ("/classify", {"json_body": {"texts": [1, 2]}}, 422, "texts[0] must be a string"),
        ("/classify", {"json_body": ["a", "b"]}, 422, "expected a JSON object"),
        ("/classify", {"json_body": {"text": "a"}}, 422, "unknown field(s) 'text'"),
        ("/predict", {"json_body": {}}, 422, "missing field 'text'"),
        ("/predict", {"json_body": {"text": None}}, 422, "text must be a string, got a JSON null"),
        ("/classify", {"content": b'{"texts": []}', "headers": {"Content-Type": "text/csv"}}, 415, "Content-Type"),
        ("/classify", {"content": b'{"texts": []}', "headers": {"Content-Type": "application/vnd.bentoml+pickle"}},
         415, "Content-Type"),
    ],
)
def test_bad_input_is_4xx_with_a_message_and_the_service_stays_ready(server, path, kwargs, status, needle):
    r = post(server, path, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert post(server, "/predict", json_body={"text": "what a great day"}).status_code == 200


def test_api_key(server):
    body = {"texts": ["what a great day"]}
    assert httpx.post(f"{server.url}/classify", json=body).status_code == 401
    wrong = httpx.post(f"{server.url}/classify", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["error"]
    assert httpx.post(f"{server.url}/predict", json={"text": "x"}).status_code == 401
    assert post(server, "/classify", json_body=body).status_code == 200
    assert KEY not in server.log_path.read_text(errors="replace")


def test_health_metrics_and_docs_are_open(server):
    for path in ("/livez", "/readyz", "/healthz"):
        assert httpx.get(f"{server.url}{path}").status_code == 200
    post(server, "/classify", json_body={"texts": ["what a great day"]})
    post(server, "/classify", json_body={"texts": ["x"] * 9})  # one 413
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'bentoml_service_request_total{endpoint="/classify",http_response_code="200"' in text
    assert "bentoml_service_request_duration_seconds_bucket" in text
    assert 'bentoml_service_adaptive_batch_size_count{method_name="classify"' in text
    assert 'sentiment_rejected_requests_total{reason="max_texts",status="413"}' in text
    assert 'sentiment_predictions_total{label="Positive"' in text
    assert httpx.get(f"{server.url}/").status_code == 200
    spec = httpx.get(f"{server.url}/docs.json").json()
    assert {"/classify", "/predict"} <= set(spec["paths"])


def test_binds_to_loopback_only(server):
    import psutil

    listening = [c.laddr for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}


def test_concurrent_clients_get_their_own_answers(server):
    requests = [[f"{POSITIVE_TEXTS[i % 3]}"] * (1 + i % 3) + [NEGATIVE_TEXTS[i % 3]] for i in range(40)]
    with httpx.Client(headers=AUTH, timeout=30) as c, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda texts: c.post(f"{server.url}/classify", json={"texts": texts}), requests))
    for texts, r in zip(requests, responses, strict=True):
        assert r.status_code == 200
        assert [a["label"] for a in r.json()] == ["Positive"] * (len(texts) - 1) + ["Negative"]


def test_repo_root_import_path_and_pinned_tag(platform):
    """``bentoml serve serving.service:TweetSentiment`` from the repository root, with SENTIMENT_MODEL_TAG."""
    env = {"SENTIMENT_HOME": str(platform["root"]), "BENTOML_HOME": str(platform["root"] / "bentoml"),
           "SENTIMENT_MODEL_TAG": platform["first"]["tag"], "SENTIMENT_API_KEY": None}
    with BentoServer("serving.service:TweetSentiment", cwd=REPO_ROOT, env=env) as srv:
        r = httpx.post(f"{srv.url}/classify", json={"texts": POSITIVE_TEXTS}, timeout=30)
        assert r.status_code == 200
        assert {a["model"] for a in r.json()} == {platform["first"]["tag"]}
        assert json.loads(httpx.get(f"{srv.url}/docs.json").text)["info"]["title"] == "tweet-sentiment"


def test_bento_build_and_serve(platform):
    """``bentoml build`` (via build_bento) makes a Bento with the service, the code, the model and requirements."""
    import yaml

    from ml.settings import get_settings
    from serving.package import build_bento

    store = platform["root"] / "bentoml"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(store))
        tag = build_bento(get_settings(home=platform["root"]))
    name, version = tag.split(":")
    bento = store / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "serving.service:TweetSentiment"
    assert [m["tag"] for m in info["services"][0]["models"]] == [platform["latest"]["tag"]]
    assert (bento / "src" / "serving" / "service.py").is_file() and (bento / "src" / "ml" / "text.py").is_file()
    assert not (bento / "src" / "tests").exists()
    from test_bento_contents import service_files

    shipped = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*.py")}
    assert shipped == service_files()  # what the service imports, nothing else (no CLI, pipeline, downloader)
    assert "scikit-learn==" in (bento / "env" / "python" / "requirements.txt").read_text()
    assert "ENV SENTIMENT_SERVICE_HOST=$SENTIMENT_SERVICE_HOST" in (bento / "env" / "docker" / "Dockerfile").read_text()
    env = {"BENTOML_HOME": str(store), "SENTIMENT_API_KEY": None, "SENTIMENT_MODEL_TAG": None}
    with BentoServer(tag, cwd=platform["root"], env=env) as srv:
        r = httpx.post(f"{srv.url}/classify", json={"texts": NEGATIVE_TEXTS}, timeout=30)
        assert r.status_code == 200
        assert [a["label"] for a in r.json()] == ["Negative"] * 3
        assert {a["model"] for a in r.json()} == {platform["latest"]["tag"]}


@pytest.mark.parametrize("family, options", [
    ("gru", {"embedding_dim": 16, "units": 8, "top_units": 8, "batch_size": 32, "learning_rate": 0.01, "epochs": 6}),
    ("minilm", {"epochs": 2, "batch_size": 16, "learning_rate": 3e-4, "progress": False}),
])
def test_a_neural_champion_is_served(trained_home, tmp_path, family, options):
    """A Keras GRU and a fine-tuned transformer, packaged and served by a real ``bentoml serve``: raw tweets in,
    the same probabilities as the model in-process, and labels by the Neutral band."""
    from ml.predictor import load_predictor
    from ml.settings import get_settings
    from ml.training import train
    from serving.package import package_model

    root = copy_home(trained_home, tmp_path / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BENTOML_HOME", raising=False)
        mp.delenv("SENTIMENT_RUN_ID", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        settings = get_settings(home=root)
        saved = train(family, settings, **options)
        packaged = package_model(settings, family)
    texts = ["@bob I LOVE this so much!!! http://t.co/x #happy", "what a TERRIBLE day...", *POSITIVE_TEXTS,
             *NEGATIVE_TEXTS, "", "café &amp; olé 😀"]
    expected = load_predictor(saved["path"]).p_positive(texts)
    env = {"SENTIMENT_HOME": str(root), "BENTOML_HOME": str(root / "bentoml"), "SENTIMENT_MODEL_TAG": packaged["tag"],
           "SENTIMENT_API_KEY": None, "HF_HUB_OFFLINE": "1"}
    with BentoServer("serving.service:TweetSentiment", cwd=REPO_ROOT, env=env, ready_timeout=240) as srv:
        r = httpx.post(f"{srv.url}/classify", json={"texts": texts}, timeout=60)
        assert r.status_code == 200, r.text
        answers = r.json()
    assert {a["model"] for a in answers} == {packaged["tag"]}
    blank = texts.index("")
    assert (answers[blank]["label"], answers[blank]["p_positive"]) == ("Neutral", None)  # nothing left to score
    scored = [i for i in range(len(texts)) if i != blank]
    np.testing.assert_allclose([answers[i]["p_positive"] for i in scored], expected[scored], atol=1e-4)
    for i in scored:
        p = expected[i]
        assert answers[i]["label"] == ("Neutral" if 0.4 <= p <= 0.6 else "Positive" if p > 0.6 else "Negative")
    assert {a["label"] for a in answers[2:8]} - {"Neutral"}, "a model that learned nothing"   # not all Neutral
