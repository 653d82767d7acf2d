"""Typed settings: environment, file, defaults, and errors that name the field."""

import pytest

from ml.errors import ConfigError
from ml.settings import OFFICIAL_URL, get_settings


def test_defaults_and_layout(home):
    s = get_settings()
    assert s.home == home.resolve()
    assert s.data.url == OFFICIAL_URL
    assert s.neutral_band == (0.4, 0.6)
    assert s.processed_dir == home.resolve() / "data" / "processed" / "default"  # the dataset `default`
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


def test_sections_sources_and_one_variable_per_setting(home, tmp_path, monkeypatch):
    from ml.settings import SPECS

    cfg = tmp_path / "sentiment.toml"
    cfg.write_text('[service]\nport = 3101\nmax_texts = 64\n\n[data]\nseed = 5\n')
    monkeypatch.setenv("SENTIMENT_CONFIG", str(cfg))
    monkeypatch.setenv("SENTIMENT_MAX_TEXTS", "32")
    s = get_settings(run_id="exp1")
    assert (s.service.port, s.service.max_texts, s.data.seed, s.training.run_id) == (3101, 32, 5, "exp1")
    assert s.source("service_port") == f"file {cfg}" and s.source("max_texts") == "env SENTIMENT_MAX_TEXTS"
    assert s.source("run_id") == "argument" and s.source("max_chars") == "default"
    assert s.override(run_id="exp2").training.run_id == "exp2" and s.override(run_id="exp2").service.port == 3101
    envs = [spec.env for spec in SPECS]
    assert len(envs) == len(set(envs)), "one variable per setting"
    assert "SENTIMENT_PORT" not in envs and "SENTIMENT_SERVICE_PORT" in envs  # the service port has one name


def test_unknown_keys_are_refused(home, tmp_path, monkeypatch):
    cfg = tmp_path / "sentiment.toml"
    cfg.write_text('[service]\nprot = 3101\n')
    monkeypatch.setenv("SENTIMENT_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="unknown setting 'service.prot'"):
        get_settings()
    monkeypatch.delenv("SENTIMENT_CONFIG")
    with pytest.raises(ConfigError, match="unknown setting 'sed'"):
        get_settings(sed=1)


def test_no_raw_environment_reads_outside_the_settings():
    """Settings come from ml.settings only: no module reads SENTIMENT_* (or X_BEARER_TOKEN) from os.environ."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"(os\.environ(\.get)?|os\.getenv)\s*[\[(]\s*[\"'](SENTIMENT|X_BEARER)")
    offenders = [f"{path.relative_to(root)}:{n}" for folder in ("ml", "serving", "spark_apps", "plugins", "dags", "ops")
                 for path in (root / folder).rglob("*.py") if "settings" not in path.parts
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_settings_page_is_the_settings():
    """docs/settings.md's table is what `python -m ml config --markdown` prints (regenerate it when it fails)."""
    import re
    from pathlib import Path

    from ml.cli import settings_table

    page = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    block = re.search(r"<!-- settings-table:.*?-->\n(.*?)\n<!-- /settings-table -->", page, re.S)
    assert block, "docs/settings.md lost its settings table markers"
    assert block.group(1).strip() == settings_table().strip()
