"""Where the platform lives on this machine, on which ports, and the environment of each component it starts."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv's bin/: airflow, bentoml, spark-submit


class PlatformError(RuntimeError):
    """Something the user has to fix; printed as one line."""


class Layout:
    """Where everything of the platform lives, and on which ports it listens (from :mod:`ml.settings`)."""

    def __init__(self, airflow_port: int | None = None, service_port: int | None = None) -> None:
        settings = self.settings
        self.home = settings.home
        self.run_dir = settings.run_dir
        self.airflow_home = self.home / "airflow"
        self.bentoml_home = settings.bentoml_home
        self.passwords = self.airflow_home / "passwords.json"
        self.user = settings.platform.airflow_user
        self.airflow_port = airflow_port or settings.platform.airflow_port
        self.service_port = service_port or settings.service.port

    @property
    def settings(self):
        """The settings as they are now (read again each time: cheap, and never stale)."""
        from ml.settings import get_settings

        return get_settings()

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.json"

    def log_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.log"


def base_env(layout: Layout) -> dict[str, str]:
    """The environment every component starts with: this one, pointed at the platform's home and tools."""
    env = dict(os.environ)
    env.update({
        "SENTIMENT_HOME": str(layout.home),
        "BENTOML_HOME": str(layout.bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    })
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def airflow_env(layout: Layout) -> dict[str, str]:
    """The environment of the Airflow processes (every setting ``up`` imposes is here)."""
    env = base_env(layout)
    connection: dict[str, Any] = {"conn_type": "http", "host": "127.0.0.1", "port": layout.service_port,
                                  "extra": {"timeout": 30, "retries": 3}}
    api_key = layout.settings.service.api_key
    if api_key:
        connection["password"] = api_key.get_secret_value()
    parallelism = layout.settings.platform.airflow_parallelism or max(8, 2 * (os.cpu_count() or 1))
    env.update({
        "AIRFLOW_HOME": str(layout.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{layout.user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{layout.airflow_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(layout.airflow_port),
        "AIRFLOW__API__BASE_URL": layout.airflow_url,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW_CONN_BENTOML_DEFAULT": json.dumps(connection),
        "SENTIMENT_SERVICE_URL": layout.service_url,
        "SENTIMENT_SERVICE_PORT": str(layout.service_port),  # the stream DAGs start the service on it
    })
    # the stream's Spark master: local[*] unless the environment names another connection (spark://, yarn, k8s)
    env.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[*]"}))
    return env


def ensure_password(layout: Layout) -> tuple[str, bool]:
    """The admin password (from the settings, or generated once); ``True`` when it was just generated."""
    layout.airflow_home.mkdir(parents=True, exist_ok=True)
    stored = json.loads(layout.passwords.read_text()) if layout.passwords.is_file() else {}
    wanted = layout.settings.platform.airflow_password
    generated = False
    if wanted:
        password = wanted.get_secret_value()
    elif stored.get(layout.user):
        password = stored[layout.user]
    else:
        password, generated = secrets.token_urlsafe(12), True
    if stored.get(layout.user) != password:
        stored[layout.user] = password
        fd = os.open(layout.passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    os.chmod(layout.passwords, 0o600)
    return password, generated
