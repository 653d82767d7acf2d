"""Airflow with its processes split and the CeleryExecutor: PostgreSQL as the metadata DB (and Celery's result
backend), Redis as the broker, ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and N ``celery
worker`` processes, each in a session of its own (records and logs in ``<run_dir>``).

The environment is the one ``make up`` gives Airflow (:func:`ops.layout.airflow_env`: the same DAGs, plugins,
connections and settings) with only the executor, the database and the broker changed: no DAG knows which
executor runs it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

from ml import components
from ml.processes import Process, descendants, free_port, port_open, session_members, signal_all
from ops.airflow_api import AirflowAPI
from ops.cluster.engines import EngineError
from ops.layout import BIN, ROOT, Layout, airflow_env, ensure_password

PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


def _secrets(airflow_home: Path) -> dict[str, str]:
    """The JWT and session secrets every Airflow process must share (generated once, kept mode 600)."""
    path = airflow_home / "cluster-secrets.json"
    if path.is_file():
        return json.loads(path.read_text())
    airflow_home.mkdir(parents=True, exist_ok=True)
    values = {"jwt_secret": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


def celery_env(layout: Layout, database_url: str, broker_url: str, *, concurrency: int = 2,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """Airflow's environment for the split deployment: ``make up``'s, with the executor, DB and broker changed."""
    env = airflow_env(layout)
    shared = _secrets(layout.airflow_home)
    backend = "db+" + database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__API_AUTH__JWT_SECRET": shared["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": shared["secret_key"],
        "AIRFLOW__CORE__STANDALONE_DAG_PROCESSOR": "True",
    })
    env.update(extra or {})
    return env


class CeleryAirflow:
    """Airflow's processes, split, with ``workers`` Celery workers.

    Args:
        layout: Where Airflow lives and on which port (``layout.airflow_home``, ``layout.airflow_port``).
        run_dir: Records and logs of the processes (``airflow-scheduler.json``, ``airflow-worker-1.log``, ...).
        database_url: SQLAlchemy URL of the PostgreSQL metadata DB.
        broker_url: Redis URL of the Celery broker.
        workers, concurrency: Celery workers, and task slots of each.
        extra_env: More ``AIRFLOW__...`` settings (tests shorten heartbeats and timeouts).
    """

    def __init__(self, layout: Layout, run_dir: Path, *, database_url: str, broker_url: str, workers: int = 2,
                 concurrency: int = 2, extra_env: dict[str, str] | None = None) -> None:
        self.layout, self.run_dir = layout, Path(run_dir)
        self.workers = workers
        self.env = celery_env(layout, database_url, broker_url, concurrency=concurrency, extra=extra_env)
        self.password, _ = ensure_password(layout)
        self.processes: dict[str, Process] = {}

    @property
    def url(self) -> str:
        return self.layout.airflow_url

    def api(self, dag_id: str) -> AirflowAPI:
        return AirflowAPI(self.url, self.layout.user, self.password, dag_id)

    def migrate(self, timeout: float = 600) -> None:
        done = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise EngineError(f"airflow db migrate failed:\n{(done.stdout + done.stderr)[-3000:]}")

    def _launch(self, name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        process, _ = components.launch(self.run_dir, f"airflow-{name}", [str(BIN / "airflow"), *args],
                                       env or self.env, cwd=ROOT, port=self.layout.airflow_port)
        self.processes[name] = process
        return process

    def start(self, timeout: float = 300) -> CeleryAirflow:
        """Migrate the DB, start every process, and wait until the API reports them healthy."""
        if port_open(self.layout.airflow_port):
            raise EngineError(f"port {self.layout.airflow_port} is in use: set SENTIMENT_AIRFLOW_PORT")
        self.migrate()
        for name in PROCESSES:
            self._launch(name, name)
        for i in range(1, self.workers + 1):
            self.start_worker(i)
        api = self.api("none")
        self.processes["api-server"].wait_until(api.healthy, timeout, "healthy (scheduler, dag-processor, "
                                                                       "triggerer, metadata DB)", interval=1.0)
        return self

    def start_worker(self, i: int) -> Process:
        """Start Celery worker ``i`` (its log server on a port of its own)."""
        env = {**self.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        return self._launch(f"worker-{i}", "celery", "worker", "--celery-hostname", f"worker{i}@%h",
                            "--without-mingle", "--without-gossip", env=env)

    def worker_ready(self, i: int) -> bool:
        """Whether worker ``i`` has connected to the broker (its log says ``ready``)."""
        log = components.log_path(self.run_dir, f"airflow-worker-{i}")
        return log.is_file() and f"worker{i}@" in log.read_text(errors="replace") and \
            " ready." in log.read_text(errors="replace")

    def kill_worker(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Kill Celery worker ``i`` with everything it runs (its task processes): a lost machine."""
        process = self.processes.get(f"worker-{i}")
        if process is None or not process.running():
            return
        members = session_members(process.pid)
        signal_all(members + descendants(members), sig)
        if sig == signal.SIGKILL:
            components.stop(self.run_dir, f"airflow-worker-{i}", grace=5)
        process.proc.poll()

    def stop(self, grace: float = 20.0) -> None:
        """The scheduler first (nothing new is queued), then the workers, then the rest (SIGTERM, then SIGKILL
        after ``grace`` seconds)."""
        order = ["scheduler", *[n for n in self.processes if n.startswith("worker-")], "triggerer",
                 "dag-processor", "api-server"]
        for name in order:
            components.stop(self.run_dir, f"airflow-{name}", grace=grace)
            if name in self.processes:
                self.processes[name].proc.poll()

    def state(self) -> dict[str, Any]:
        return {name: bool(components.read(self.run_dir, f"airflow-{name}")) for name in self.processes}
