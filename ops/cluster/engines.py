"""The engines of a cluster, started on loopback from what this machine has: a Spark standalone master and workers
(from the pyspark wheel), PostgreSQL (Debian's server binaries) and Redis (Debian's ``redis-server``).

Each daemon runs in a session of its own through :mod:`ml.components` (so ``python -m ops cluster down`` finds
it from another process), with its output in ``<run_dir>/<name>.log``. The same classes back the ``cluster``
tests' fixtures and ``bench/stream.py --spark-workers``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ml import components
from ml.processes import Process, ProcessError, descendants, environ, free_port, port_open, session_members, signal_all

HOST = "127.0.0.1"


class EngineError(RuntimeError):
    """An engine is missing, or did not start; the message says what to do."""


def spark_home() -> Path:
    """The installed ``pyspark/`` folder: it holds ``bin/spark-class``, ``bin/spark-submit`` and the JARs."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError("pyspark is not installed: `make install`")
    return Path(list(spec.submodule_search_locations)[0])


def spark_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """Environment of Spark daemons and spark-submit: this Python for the executors' workers, the repository on
    ``PYTHONPATH`` (on a real cluster the image installs it), loopback addresses, small daemon heaps."""
    root = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(dict.fromkeys([str(root), str(root / "plugins"),
                                          *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    return environ({"SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable,
                    "PYSPARK_DRIVER_PYTHON": sys.executable, "PYTHONPATH": path, "SPARK_LOCAL_IP": HOST,
                    "SPARK_DAEMON_MEMORY": os.environ.get("SPARK_DAEMON_MEMORY", "256m"), **(extra or {})})


def _json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


class SparkStandalone:
    """A Spark standalone master and ``workers`` workers on loopback (``spark-class ...deploy.master.Master`` and
    ``...deploy.worker.Worker``, both in the pyspark wheel).

    Args:
        run_dir: Where the daemons' records and logs go (``spark-master.json``, ``spark-worker-1.log``, ...).
        workers: Workers to start.
        cores, memory: What each worker offers to executors.
        port: The master's port (default: a free one); its web UI listens on ``ui_port`` (default: a free one).
        work_dir: Workers' scratch space (executor logs, shuffle files); default ``<run_dir>/spark-work``.
    """

    def __init__(self, run_dir: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g",
                 port: int | None = None, ui_port: int | None = None, work_dir: Path | None = None,
                 env: dict[str, str | None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.work_dir = Path(work_dir or self.run_dir / "spark-work")
        self.env = spark_env(env)
        self.master_url = f"spark://{HOST}:{self.port}"
        self.ui_url = f"http://{HOST}:{self.ui_port}"
        self.processes: dict[str, Process] = {}

    def _class(self, main: str, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), f"org.apache.spark.deploy.{main}", *map(str, args)]

    def state(self) -> dict[str, Any] | None:
        """The master's ``/json`` view (workers, apps, drivers); ``None`` when it does not answer."""
        return _json(f"{self.ui_url}/json/")

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in (self.state() or {}).get("workers", []) if w.get("state") == "ALIVE"]

    def start(self, timeout: float = 120) -> SparkStandalone:
        """Start the master, then the workers; return once every worker has registered."""
        for port in (self.port, self.ui_port):
            if port_open(port):
                raise EngineError(f"port {port} is in use: pick another Spark master port")
        master, _ = components.launch(self.run_dir, "spark-master", self._class(
            "master.Master", "--host", HOST, "--port", self.port, "--webui-port", self.ui_port), self.env,
            cwd=self.run_dir, url=self.master_url, ui=self.ui_url)
        self.processes["spark-master"] = master
        master.wait_until(lambda: (self.state() or {}).get("status") == "ALIVE", timeout, "an alive master")
        for i in range(1, self.workers + 1):
            self.start_worker(i, wait=False)
        self.wait_workers(self.workers, timeout)
        return self

    def start_worker(self, i: int, *, wait: bool = True, timeout: float = 120) -> Process:
        """Start worker ``i`` (again: after :meth:`kill_worker`)."""
        name = f"spark-worker-{i}"
        before = len(self.alive_workers())
        worker, _ = components.launch(self.run_dir, name, self._class(
            "worker.Worker", self.master_url, "--host", HOST, "--cores", self.cores, "--memory", self.memory,
            "--webui-port", free_port(), "--work-dir", self.work_dir / name), self.env, cwd=self.run_dir,
            master=self.master_url)
        self.processes[name] = worker
        if wait:
            self.wait_workers(before + 1, timeout, worker)
        return worker

    def wait_workers(self, n: int, timeout: float = 120, watch: Process | None = None) -> list[dict[str, Any]]:
        """Wait until the master lists ``n`` alive workers."""
        process = watch or self.processes["spark-master"]
        return process.wait_until(lambda: len(self.alive_workers()) >= n and self.alive_workers(), timeout,
                                  f"seeing {n} alive Spark workers")

    def kill_worker(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Kill worker ``i`` and its executors (what a machine crash does to them)."""
        name = f"spark-worker-{i}"
        process = self.processes.get(name)
        if process is not None and process.running():
            members = session_members(process.pid)  # the worker JVM and its executors (and their Python workers)
            signal_all(members + descendants(members), sig)
            process.proc.wait(30)
        components.stop(self.run_dir, name, grace=5)

    def stop(self) -> None:
        """Stop the workers, then the master (SIGTERM, then SIGKILL)."""
        names = [n for n in self.processes if n != "spark-master"] + ["spark-master"]
        for name in names:
            components.stop(self.run_dir, name, grace=15)
            if name in self.processes:
                self.processes[name].proc.poll()

    def __enter__(self) -> SparkStandalone:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bindir() -> Path:
    """Folder of PostgreSQL's server binaries (``pg_config --bindir``, else Debian's ``/usr/lib/postgresql/*/bin``)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if found and (Path(found) / "initdb").is_file():
            return Path(found)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").is_file():
            return candidate
    raise EngineError("PostgreSQL's server binaries (initdb, postgres) are missing: `sudo apt-get install -y "
                      "postgresql` (or `make cluster-deps` as root)")


def _as_root() -> bool:
    return os.geteuid() == 0


def default_postgres_dir(home: Path) -> Path:
    """``<home>/cluster/postgres``; as root (PostgreSQL refuses to run as root, so its server runs as the
    ``postgres`` user, who cannot enter root's folders): ``/var/lib/postgresql/sentiment-<hash of home>``."""
    if not _as_root():
        return Path(home) / "cluster" / "postgres"
    digest = hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam("postgres").pw_dir if _has_user("postgres") else "/var/lib/postgresql") \
        / f"sentiment-{digest}"


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Postgres:
    """A PostgreSQL server on ``127.0.0.1:port`` with a database and a user, both named ``airflow`` (trust
    authentication on loopback; no password), its data in ``data_dir``.

    As root the server runs as the ``postgres`` system user (``setpriv``); ``data_dir`` must then be in a folder
    that user can enter (``/tmp``, ``/var/lib/postgresql``), and is handed to it.
    """

    def __init__(self, run_dir: Path, data_dir: Path, *, port: int | None = None, database: str = "airflow",
                 user: str = "airflow") -> None:
        self.run_dir, self.data_dir = Path(run_dir), Path(data_dir)
        self.port = port or free_port()
        self.database, self.user = database, user
        self.bindir = postgres_bindir()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database (psycopg2 driver)."""
        return f"postgresql+psycopg2://{self.user}@{HOST}:{self.port}/{self.database}"

    def _prefix(self) -> list[str]:
        if not _as_root():
            return []
        if not _has_user("postgres"):
            raise EngineError("running as root, PostgreSQL needs the `postgres` system user (Debian's postgresql "
                              "package creates it)")
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self._prefix(), *cmd], capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise EngineError(f"{Path(cmd[0]).name} failed: {(done.stdout + done.stderr).strip()[-1500:]}")

    def start(self, timeout: float = 60) -> Postgres:
        if port_open(self.port):
            raise EngineError(f"port {self.port} is in use: set SENTIMENT_POSTGRES_PORT")
        fresh = not (self.data_dir / "PG_VERSION").is_file()
        if fresh:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if _as_root():
                shutil.chown(self.data_dir, "postgres", "postgres")
            self._run(str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync")
        cmd = [*self._prefix(), str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
               "-k", str(self.data_dir), "-c", f"listen_addresses={HOST}", "-c", "max_connections=200"]
        self.process, _ = components.launch(self.run_dir, "postgres", cmd, environ(), cwd="/", port=self.port,
                                            data_dir=str(self.data_dir))
        self.process.wait_until(lambda: port_open(self.port), timeout, f"listening on {HOST}:{self.port}")
        psql = [str(self.bindir / "psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-tAc"]
        deadline = time.monotonic() + timeout
        while True:  # the port opens a moment before the server accepts logins
            probe = subprocess.run([*psql, f"SELECT 1 FROM pg_roles WHERE rolname = '{self.user}'"],
                                   capture_output=True, text=True)
            if probe.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if probe.stdout.strip() != "1":
            subprocess.run([*psql, f"CREATE ROLE {self.user} LOGIN"], check=True, capture_output=True)
        has_db = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                                capture_output=True, text=True).stdout.strip()
        if has_db != "1":
            subprocess.run([*psql, f"CREATE DATABASE {self.database} OWNER {self.user}"], check=True,
                           capture_output=True)
        return self

    def stop(self) -> None:
        self.stop_recorded(self.run_dir)
        if self.process is not None:
            self.process.proc.poll()

    @staticmethod
    def stop_recorded(run_dir: Path) -> None:
        """A fast shutdown (SIGINT: roll back open transactions, disconnect clients), then the session."""
        record = components.read(run_dir, "postgres")
        if record and not record.get("leader_gone"):
            try:
                os.kill(record["pid"], signal.SIGINT)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 30
            while components.read(run_dir, "postgres") and time.monotonic() < deadline:
                time.sleep(0.2)
        components.stop(run_dir, "postgres", grace=30)


# ----------------------------------------------------------------------------------------------------- Redis
def redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise EngineError("redis-server is missing: `sudo apt-get install -y redis-server` (or `make cluster-deps` "
                          "as root)")
    return found


class Redis:
    """``redis-server`` on ``127.0.0.1:port`` without persistence (the Celery broker's queue is transient: the
    metadata DB is the record of what ran)."""

    def __init__(self, run_dir: Path, *, port: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.port = port or free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 30) -> Redis:
        if port_open(self.port):
            raise EngineError(f"port {self.port} is in use: set SENTIMENT_REDIS_PORT")
        work = self.run_dir / "redis"
        work.mkdir(parents=True, exist_ok=True)
        cmd = [redis_server(), "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
               "--dir", str(work), "--protected-mode", "yes", "--daemonize", "no"]
        self.process, _ = components.launch(self.run_dir, "redis", cmd, environ(), cwd=work, port=self.port)
        self.process.wait_until(lambda: port_open(self.port), timeout, f"listening on {HOST}:{self.port}")
        return self

    def stop(self) -> None:
        components.stop(self.run_dir, "redis", grace=10)
        if self.process is not None:
            self.process.proc.poll()


__all__ = ["EngineError", "HOST", "Postgres", "ProcessError", "Redis", "SparkStandalone", "default_postgres_dir",
           "postgres_bindir", "redis_server", "spark_env", "spark_home"]
