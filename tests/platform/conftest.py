"""Fixtures of the platform tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from platform_harness import ISOLATED  # noqa: E402


@pytest.fixture
def platform_home(tmp_path, monkeypatch) -> Path:
    """A fresh artifacts root in an environment without inherited Airflow/platform settings."""
    home = tmp_path / "home"
    for key in list(os.environ):
        if key.startswith(ISOLATED):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SENTIMENT_HOME", str(home))
    return home
