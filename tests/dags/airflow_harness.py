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
import time
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
              log: Path | None = None, logical_date: str | None = None) -> subprocess.CompletedProcess:
    """Run one DAG run in-process with ``airflow dags test DAG [DATE] -c CONF``; its output also goes to ``log``."""
    done = subprocess.run(dags_test_cmd(dag_id, conf, logical_date), env=env,
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


# ---------------------------------------------------------------------------------------------- the stream DAGs
def stream_env(sentiment_home: Path, airflow_home: Path, service_port: int, **extra: str) -> dict[str, str]:
    """:func:`airflow_env` for the stream DAGs: ``spark_default`` on ``local[2]`` (Spark's UI off, a small
    driver), ``bentoml_default`` on ``service_port``, this checkout on PYTHONPATH (the processes the DAGs start
    outside Airflow import it too) and a fast supervisor (checks every second, restarts after 1 s)."""
    conf_dir = Path(sentiment_home) / "spark-conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "spark-defaults.conf").write_text("spark.ui.enabled false\nspark.driver.memory 768m\n")
    env = airflow_env(sentiment_home, airflow_home, **{
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_CONN_BENTOML_DEFAULT": f"http://127.0.0.1:{service_port}",
        "SENTIMENT_SERVICE_PORT": str(service_port),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS)]),
        "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SENTIMENT_STATE_PARTITIONS": "2",
        "SENTIMENT_STREAM_CHECK_S": "1",
        "SENTIMENT_STREAM_RESTART_BACKOFF_S": "1",
        "SENTIMENT_INGEST_ROTATE_SECONDS": "0.5",
    })
    env.update(extra)
    return env


def install_model(stream_model: dict[str, Any], sentiment_home: Path) -> str:
    """Copy a packaged model into ``<home>/bentoml`` (the platform's store) as its latest; return its tag."""
    import shutil

    name, version = stream_model["tag"].split(":")
    source = Path(stream_model["store"]) / "models" / name / version
    target = Path(sentiment_home) / "bentoml" / "models" / name
    shutil.copytree(source, target / version, dirs_exist_ok=True)
    (target / "latest").write_text(version)
    return stream_model["tag"]


def stop_components(sentiment_home: Path) -> None:
    """Stop every component the DAGs started under ``<home>/run/`` (the service, ingests)."""
    from ml import components

    for record in sorted((Path(sentiment_home) / "run").glob("*.json")):
        if record.name != "service-endpoint.json":
            components.stop(record.parent, record.stem, grace=10)


def dags_test_cmd(dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> list[str]:
    return [str(BIN / "airflow"), "dags", "test", dag_id, *([logical_date] if logical_date else []), "-c",
            json.dumps(conf)]


def landing_ids(landing: Path) -> list[str]:
    """Every post id in a stream's landing files (repeated ids included)."""
    return [json.loads(line)["id"] for path in sorted(Path(landing).glob("part-*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def drivers(stream: str) -> list[int]:
    """Pids of the Python drivers of ``stream`` on this machine (``job.py ... --name <stream>``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if state != "Z" and any(a.endswith("spark_apps/stream/job.py") for a in args) and "java" not in args[0] \
                and stream in args and args[args.index(stream) - 1] == "--name":
            found.append(int(entry.name))
    return found


#: Texts the stream tests replay (one has nothing left after cleaning: Neutral, no probability).
TEXTS = ["I love this so much", "what a terrible day", "so happy right now", "I hate this so much",
         "@someone http://t.co/x", "best movie ever #mood", "stuck in traffic again", "zyxw qvut"]


def replay_file(path: Path, n: int) -> str:
    """A JSON-lines file of ``n`` posts ``post-<i>`` to replay (keywords ``phone`` and ``kindle``)."""
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"post-{i}", "text": TEXTS[i % len(TEXTS)],
                                 "keyword": "phone" if i % 3 else "kindle"}) + "\n")
    return str(path)


def output_rows(home: Path, stream: str):
    """A stream's committed output as a pandas DataFrame (None before the first batch)."""
    from spark_apps.stream.sparklog import committed_table

    table = committed_table(home / "stream" / stream / "output")
    return None if table is None else table.to_pandas()


def wait_for(what: str, check, timeout: float, process=None, interval: float = 1.0):
    """Poll ``check()`` until it returns something truthy; fail (with the log of ``process``, the DAG run that
    must keep running meanwhile) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if process is not None and not process.running():
            raise AssertionError(f"{what}: the DAG run ended first:\n{process.log_tail(60)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f}s" + (f":\n{process.log_tail(60)}" if process else ""))
        time.sleep(interval)
