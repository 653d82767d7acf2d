"""Helpers of the platform tests: the ``ops`` command line, free loopback ports, a clean environment."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPS = [sys.executable, "-m", "ops"]  # what `make up/down/status` run
ISOLATED = ("AIRFLOW", "SENTIMENT", "BENTOML_HOME")  # variables a test must not inherit


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without Airflow/platform settings, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED)}
    env.update({"SENTIMENT_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "HF_HUB_OFFLINE": "1"})
    env.update(extra)
    return env
