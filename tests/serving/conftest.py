"""Fixtures for the serving tests: a model store holding a packaged model, and the service class bound to it.

The in-process layers share one store per session, because BentoML caches its model store and the service's
resolved model per process. Each real-server test packages into its own artifacts root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Texts the fixture-trained logistic regression gets right with some margin.
POSITIVE_TEXTS = ["I love this so much", "what a great day", "so happy right now"]
NEGATIVE_TEXTS = ["I hate this so much", "what a terrible day", "so sad right now"]
#: Words the model never saw: P(positive) is the model's bias, near 0.5, so inside the Neutral band.
UNSEEN_TEXT = "zyxw qvut"
#: Texts with nothing left after cleaning.
EMPTY_TEXTS = ["", "   ", "\t\n", "http://t.co/abc", "@someone", "1234 !!"]


def copy_home(trained_home: Path, target: Path) -> Path:
    """A writable copy of the session's trained artifacts root (prepared data + a trained logreg)."""
    shutil.copytree(trained_home, target, ignore=shutil.ignore_patterns("bentoml"))
    return target


@pytest.fixture(scope="session")
def packaged(trained_home, tmp_path_factory) -> dict:
    """The trained logreg packaged into a session-wide model store; the package_model result."""
    from ml.settings import get_settings
    from serving.package import package_model

    store = tmp_path_factory.mktemp("bentoml-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(store))
        mp.delenv("SENTIMENT_RUN_ID", raising=False)
        return package_model(get_settings(home=trained_home), "logreg")


@pytest.fixture(scope="session")
def service_cls(packaged):
    """The ``TweetSentiment`` service with BentoML's model store pointed at the packaged model's store."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", packaged["store"])
        for var in ("SENTIMENT_MODEL_TAG", "SENTIMENT_API_KEY", "SENTIMENT_MAX_TEXTS", "SENTIMENT_MAX_CHARS",
                    "SENTIMENT_NEUTRAL_LOW", "SENTIMENT_NEUTRAL_HIGH"):
            mp.delenv(var, raising=False)
        from serving.service import TweetSentiment

        with BentoMLContainer.model_store.patch(ModelStore(Path(packaged["store"]) / "models")):
            yield TweetSentiment


@pytest.fixture(scope="session")
def service(service_cls):
    """One instance of the plain service class (the first test layer)."""
    return service_cls()


# ------------------------------------------------------------------ real servers (shared by the test modules)
KEY = "test-key-4f9a"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = {"SENTIMENT_MAX_TEXTS": "8", "SENTIMENT_MAX_CHARS": "50", "SENTIMENT_MAX_BODY_BYTES": "4096"}


@pytest.fixture(scope="session")
def platform(trained_home, tmp_path_factory):
    """An artifacts root with two packaged models (logreg, then multinomialnb = latest); their tags."""
    from ml.settings import get_settings
    from ml.training import train
    from serving.package import package_model

    root = copy_home(trained_home, tmp_path_factory.mktemp("served") / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BENTOML_HOME", raising=False)
        mp.delenv("SENTIMENT_RUN_ID", raising=False)
        settings = get_settings(home=root)
        assert settings.bentoml_home == root / "bentoml"
        first = package_model(settings, "logreg")
        train("multinomialnb", settings)
        latest = package_model(settings, "multinomialnb")
    return {"root": root, "first": first, "latest": latest}


@pytest.fixture(scope="session")
def server(platform):
    """``cd serving && bentoml serve`` with only SENTIMENT_HOME set (no BENTOML_HOME), an API key and small limits."""
    env = {"SENTIMENT_HOME": str(platform["root"]), "BENTOML_HOME": None, "SENTIMENT_MODEL_TAG": None,
           "SENTIMENT_API_KEY": KEY, **LIMITS}
    from serving.launch import REPO_ROOT, BentoServer

    with BentoServer(None, cwd=REPO_ROOT / "serving", env=env) as srv:
        yield srv


