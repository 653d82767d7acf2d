"""Service settings: defaults, environment overrides, validation errors that name the variable."""

from __future__ import annotations

import pytest

from ml.errors import ConfigError
from serving.config import serving_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SENTIMENT_MODEL_TAG", "SENTIMENT_API_KEY", "SENTIMENT_MAX_TEXTS", "SENTIMENT_MAX_CHARS",
                "SENTIMENT_MAX_BODY_BYTES", "SENTIMENT_HOST", "SENTIMENT_NEUTRAL_LOW", "SENTIMENT_NEUTRAL_HIGH"):
        monkeypatch.delenv(var, raising=False)


def test_defaults():
    s = serving_settings()
    assert (s.model_tag, s.host, s.port, s.api_key) == ("tweet-sentiment:latest", "127.0.0.1", 3000, None)
    assert (s.max_texts, s.max_chars, s.max_batch_size) == (1024, 1000, 256)
    assert s.body_limit > s.max_texts * s.max_chars
    assert s.band_override is None


def test_environment(monkeypatch):
    monkeypatch.setenv("SENTIMENT_API_KEY", "k1")
    monkeypatch.setenv("SENTIMENT_MAX_TEXTS", "10")
    monkeypatch.setenv("SENTIMENT_MAX_BODY_BYTES", "5000")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_LOW", "0.3")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_HIGH", "0.7")
    s = serving_settings()
    assert s.api_key.get_secret_value() == "k1" and "k1" not in repr(s)
    assert (s.max_texts, s.body_limit, s.band_override) == (10, 5000, (0.3, 0.7))
    monkeypatch.setenv("SENTIMENT_API_KEY", "  ")
    assert serving_settings().api_key is None  # blank means no key


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [("SENTIMENT_MAX_TEXTS", "0", "SENTIMENT_MAX_TEXTS"), ("SENTIMENT_MAX_CHARS", "many", "SENTIMENT_MAX_CHARS"),
     ("SENTIMENT_HOST", "localhost", "SENTIMENT_HOST"), ("SENTIMENT_NEUTRAL_LOW", "0.3", "both")],
)
def test_invalid_values_name_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=needle):
        serving_settings()


def test_band_order(monkeypatch):
    monkeypatch.setenv("SENTIMENT_NEUTRAL_LOW", "0.7")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_HIGH", "0.3")
    with pytest.raises(ConfigError, match="neutral_low must not exceed neutral_high"):
        serving_settings()


def test_the_service_uses_the_settings(service_cls):
    from serving.service import CONFIG

    api = service_cls.apis["classify"]
    assert api.batchable and api.max_batch_size == CONFIG.max_batch_size
    assert api.max_latency_ms == CONFIG.max_latency_ms
    assert service_cls.config["http"]["host"] == "127.0.0.1"
