import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_stream_settings_from_outside(monkeypatch):
    """The stream's settings of the machine running the tests (a config file, X_BEARER_TOKEN...) stay out."""
    from ml.settings import CONFIG_VARIABLE, SPECS

    monkeypatch.delenv(CONFIG_VARIABLE, raising=False)
    for spec in SPECS:
        if spec.section in ("stream", "paths"):
            monkeypatch.delenv(spec.env, raising=False)
