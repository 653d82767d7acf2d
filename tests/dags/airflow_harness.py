"""Run this project's DAGs for real in tests: a migrated Airflow home and `airflow dags test` in a subprocess.

Shared by every DAG test (training now; streaming and reporting later)::

    env = airflow_env(sentiment_home, airflow_home)   # isolated AIRFLOW_HOME, this repo's dags/ and plugins/
    migrate(env)                                       # once per session: `airflow db migrate`
    result = dags_test(env, "sentiment140_training", {"families": ["logreg"]})
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLUGINS = ROOT / "plugins"


def airflow_env(sentiment_home: Path, airflow_home: Path, **extra: str) -> dict[str, str]:
    """Environment of an isolated Airflow that loads this repository's DAGs and plugins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SENTIMENT", "BENTOML_HOME"))}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SENTIMENT_HOME": str(sentiment_home),
        "BENTOML_HOME": str(sentiment_home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def migrate(env: dict[str, str], timeout: float = 300) -> None:
    """``airflow db migrate`` (raises with the output when it fails)."""
    done = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def dags_test(env: dict[str, str], dag_id: str, conf: dict[str, Any], timeout: float = 600,
              log: Path | None = None) -> subprocess.CompletedProcess:
    """Run one DAG run in-process with ``airflow dags test DAG -c CONF``; its output also goes to ``log``."""
    done = subprocess.run([str(BIN / "airflow"), "dags", "test", dag_id, "-c", json.dumps(conf)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if log is not None:
        log.write_text(done.stdout + "\n---- stderr ----\n" + done.stderr)
    return done


def asset_events(airflow_home: Path, asset_name: str) -> list[dict[str, Any]]:
    """Extras of the events recorded for an asset, oldest first (read from the SQLite metadata DB)."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ? ORDER BY e.id",
            (asset_name,),
        ).fetchall()
    return [json.loads(extra) if isinstance(extra, str) else (extra or {}) for (extra,) in rows]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])
