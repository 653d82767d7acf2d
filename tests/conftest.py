"""Shared fixtures: an isolated artifacts root, fixture archives, prepared data and a trained model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

from fixtures import make_s140_zip  # noqa: E402


def shared_data() -> Path | None:
    """``../shared/data`` or ``$SENTIMENT_SHARED_DATA``, when present."""
    path = Path(os.environ.get("SENTIMENT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return path if (path / "sentiment140").is_dir() else None


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh artifacts root, exported as SENTIMENT_HOME (and BENTOML_HOME beneath it)."""
    root = tmp_path / "home"
    monkeypatch.setenv("SENTIMENT_HOME", str(root))
    monkeypatch.setenv("BENTOML_HOME", str(root / "bentoml"))
    for var in ("SENTIMENT_RUN_ID", "SENTIMENT140_URL", "SENTIMENT_DATA_URL", "SENTIMENT_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture
def settings(home):
    from ml.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def s140_zip(tmp_path_factory) -> Path:
    """A small zip in the exact official format (400 training rows, 60 test rows with neutrals)."""
    return make_s140_zip(tmp_path_factory.mktemp("zips") / "trainingandtestdata.zip")


@pytest.fixture
def prepared(settings, s140_zip):
    """Settings whose artifacts root holds prepared splits of the fixture archive."""
    from ml.data import prepare

    prepare(settings, s140_zip)
    return settings


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, s140_zip) -> Path:
    """An artifacts root (shared by the session, treat as read-only) with prepared data and a trained logreg.

    The model lives at ``<root>/models/default/logreg``.
    """
    from ml.data import prepare
    from ml.settings import get_settings
    from ml.training import train

    root = tmp_path_factory.mktemp("trained") / "home"
    settings = get_settings(home=root)
    prepare(settings, s140_zip)
    train("logreg", settings)
    return root


@pytest.fixture(scope="session")
def stream_model(trained_home, tmp_path_factory) -> dict:
    """The session's trained logreg packaged into a model store of its own (package_model's result: ``tag``,
    ``store``, ``path``...), shared by the streaming job's and the stream DAGs' tests; treat it as read-only."""
    from ml.settings import get_settings
    from serving.package import package_model

    store = tmp_path_factory.mktemp("stream-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(store))
        mp.delenv("SENTIMENT_RUN_ID", raising=False)
        return package_model(get_settings(home=trained_home), "logreg")


@pytest.fixture
def shared() -> Path:
    path = shared_data()
    if path is None:
        pytest.skip("real data not found: set SENTIMENT_SHARED_DATA or provide ../shared/data")
    return path
