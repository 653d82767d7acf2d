"""Helpers of the platform tests: ``scripts/platform.py`` as a module, free loopback ports, a clean environment."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "platform.py"
ISOLATED = ("AIRFLOW", "SENTIMENT", "BENTOML_HOME")  # variables a test must not inherit


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_platform_script():
    """``scripts/platform.py`` imported under another name (it must not shadow the standard ``platform``)."""
    spec = importlib.util.spec_from_file_location("sentiment_platform_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without Airflow/platform settings, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED)}
    env.update({"SENTIMENT_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "HF_HUB_OFFLINE": "1"})
    env.update(extra)
    return env
