"""Service settings (the ``service`` section of ml.settings): defaults, environment, errors naming the variable."""

from __future__ import annotations

import pytest

from ml.errors import ConfigError
from ml.settings import get_settings

SERVICE_VARS = ("SENTIMENT_MODEL_TAG", "SENTIMENT_API_KEY", "SENTIMENT_MAX_TEXTS", "SENTIMENT_MAX_CHARS",
                "SENTIMENT_MAX_BODY_BYTES", "SENTIMENT_SERVICE_HOST", "SENTIMENT_SERVICE_PORT",
                "SENTIMENT_NEUTRAL_LOW", "SENTIMENT_NEUTRAL_HIGH", "SENTIMENT_CONFIG")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in SERVICE_VARS:
        monkeypatch.delenv(var, raising=False)


def test_defaults():
    settings = get_settings()
    s = settings.service
    assert (s.model_tag, s.host, s.port, s.api_key) == ("tweet-sentiment:latest", "127.0.0.1", 3000, None)
    assert (s.max_texts, s.max_chars, s.max_batch_size) == (1024, 1000, 256)
    assert s.body_limit > s.max_texts * s.max_chars
    assert not settings.is_set("neutral_low")  # the service keeps the packaged model's band
    assert s.base_url == "http://127.0.0.1:3000"


def test_environment(monkeypatch):
    monkeypatch.setenv("SENTIMENT_API_KEY", "k1")
    monkeypatch.setenv("SENTIMENT_MAX_TEXTS", "10")
    monkeypatch.setenv("SENTIMENT_MAX_BODY_BYTES", "5000")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_LOW", "0.3")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_HIGH", "0.7")
    settings = get_settings()
    s = settings.service
    assert s.api_key.get_secret_value() == "k1" and "k1" not in repr(settings)
    assert (s.max_texts, s.body_limit, settings.is_set("neutral_low"), settings.neutral_band) == (10, 5000, True,
                                                                                                  (0.3, 0.7))
    monkeypatch.setenv("SENTIMENT_API_KEY", "  ")
    assert get_settings().service.api_key is None  # blank means no key


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [("SENTIMENT_MAX_TEXTS", "0", "SENTIMENT_MAX_TEXTS"), ("SENTIMENT_MAX_CHARS", "many", "SENTIMENT_MAX_CHARS"),
     ("SENTIMENT_SERVICE_HOST", "localhost", "SENTIMENT_SERVICE_HOST"), ("SENTIMENT_NEUTRAL_LOW", "0.3", "both")],
)
def test_invalid_values_name_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=needle):
        get_settings()


def test_band_order(monkeypatch):
    monkeypatch.setenv("SENTIMENT_NEUTRAL_LOW", "0.7")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_HIGH", "0.3")
    with pytest.raises(ConfigError, match="neutral_low must not exceed neutral_high"):
        get_settings()


def test_the_service_uses_the_settings(service_cls):
    from serving.service import CONFIG

    api = service_cls.apis["classify"]
    assert api.batchable and api.max_batch_size == CONFIG.max_batch_size
    assert api.max_latency_ms == CONFIG.max_latency_ms
    assert service_cls.config["http"]["host"] == "127.0.0.1"
