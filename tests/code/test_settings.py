"""Typed settings: environment, file, defaults, and errors that name the field."""

import pytest

from ml.errors import ConfigError
from ml.settings import OFFICIAL_URL, get_settings


def test_defaults_and_layout(home):
    s = get_settings()
    assert s.home == home.resolve()
    assert s.data.url == OFFICIAL_URL
    assert s.neutral_band == (0.4, 0.6)
    assert s.processed_dir == home.resolve() / "data" / "processed"
    assert s.models_dir == home.resolve() / "models" / "default"
    assert s.reports_dir == home.resolve() / "reports" / "default"
    assert not home.exists(), "reading settings must not create folders"


def test_environment_overrides(home, monkeypatch):
    monkeypatch.setenv("SENTIMENT140_URL", "file:///tmp/x.zip")
    monkeypatch.setenv("SENTIMENT_SEED", "7")
    monkeypatch.setenv("SENTIMENT_RUN_ID", "manual__2026-01-01")
    s = get_settings()
    assert (s.data.url, s.data.seed, s.training.run_id) == ("file:///tmp/x.zip", 7, "manual__2026-01-01")


def test_toml_file(home, tmp_path, monkeypatch):
    cfg = tmp_path / "sentiment.toml"
    cfg.write_text('seed = 11\nneutral_low = 0.3\nneutral_high = 0.7\n')
    monkeypatch.setenv("SENTIMENT_CONFIG", str(cfg))
    monkeypatch.setenv("SENTIMENT_SEED", "12")  # the environment wins over the file
    s = get_settings()
    assert s.data.seed == 12 and s.neutral_band == (0.3, 0.7)


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("SENTIMENT_SEED", "abc", "seed"),
        ("SENTIMENT_VAL_FRACTION", "0.9", "val_fraction"),
        ("SENTIMENT_NEUTRAL_LOW", "1.5", "neutral_low"),
        ("SENTIMENT_RUN_ID", "../escape", "run_id"),
    ],
)
def test_bad_values_name_the_field(home, monkeypatch, var, value, field):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=field):
        get_settings()


def test_band_order(home):
    with pytest.raises(ConfigError, match="neutral_low must not exceed neutral_high"):
        get_settings(neutral_low=0.7, neutral_high=0.6)


def test_missing_config_file(home, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CONFIG", "/nonexistent/sentiment.toml")
    with pytest.raises(ConfigError, match="SENTIMENT_CONFIG"):
        get_settings()
