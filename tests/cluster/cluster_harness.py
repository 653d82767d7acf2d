"""Shared code of the ``cluster`` tests: the streaming job under ``spark-submit --master spark://...``, landing
writers, exactly-once checks, and the service's worker processes.

The engines themselves (Spark standalone, PostgreSQL, Redis, Airflow with Celery) are :mod:`ops.cluster`, what
``python -m ops cluster up`` runs for users; the fixtures in ``conftest.py`` start one of each per session.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from ml.processes import Process, descendants, environ, session_members
from ops.cluster.engines import spark_env
from spark_apps.stream.landing import post, write_landing
from spark_apps.stream.paths import StreamPaths
from spark_apps.stream.status import read_status

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
KEY = "cluster-test-key-3f1a9d"
TEXTS = ["I love this so much", "what a terrible day", "so happy right now", "I hate this so much", "zyxw qvut",
         "", "http://t.co/abc @someone", "best movie ever #mood"]


def posts(ids, prefix: str = "p") -> list[dict]:
    return [post(f"{prefix}{i}", TEXTS[i % len(TEXTS)], keyword="phone" if i % 3 == 0 else None) for i in ids]


class ClusterJob(Process):
    """``spark-submit --master MASTER spark_apps/stream/job.py --home HOME ARGS`` in its own session (client
    deploy mode: the driver runs here, the executors on the cluster's workers)."""

    def __init__(self, home: Path, master: str, *args: str, service_url: str | None = None,
                 env: dict | None = None, name: str = "tweets", log: Path | None = None) -> None:
        self.home = Path(home)
        self.paths = StreamPaths.under(self.home / "stream" / name)
        base = spark_env({"SENTIMENT_HOME": str(home), "SENTIMENT_API_KEY": KEY, "SENTIMENT_CONFIG": None,
                          "SENTIMENT_SERVICE_URL": service_url})
        cmd = [str(SPARK_SUBMIT), "--master", master, "--driver-memory", "640m", "--executor-memory", "640m",
               "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
               str(ROOT / "spark_apps/stream/job.py"), "--name", name, "--trigger-seconds", "0.5",
               "--state-partitions", "2", *args]
        super().__init__(cmd, cwd=ROOT, env=environ({**base, **(env or {})}),
                         log=log or self.home / f"job-{name}.log", name="cluster-stream-job")

    def status(self) -> dict:
        return read_status(self.paths.status) or {}

    def wait_status(self, check, timeout: float = 120, what: str = "in the expected state") -> dict:
        def ready() -> dict | None:
            doc = self.status()
            return doc if doc and check(doc) else None

        return self.wait_until(ready, timeout, what)

    def wait_rows(self, rows_in: int, timeout: float = 180) -> dict:
        return self.wait_status(lambda d: (d.get("totals") or {}).get("rows_in", 0) >= rows_in, timeout,
                                f"past {rows_in} rows in")

    def wait_exit(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.running():
            raise TimeoutError(f"the job did not exit in {timeout:.0f}s:\n{self.log_tail()}")
        return self.proc.returncode

    def kill_driver(self) -> None:
        """SIGKILL the driver's whole process group (spark-submit's JVM and the Python driver): a lost host."""
        os.killpg(os.getpgid(self.pid), signal.SIGKILL)
        self.proc.wait(30)
        self.stop(grace=5)


class Writer(threading.Thread):
    """Writes a landing file of ``size`` posts every ``every`` s until ``done`` is set (at least ``files``
    files); every fourth file re-delivers 5 ids of the one before (a replay overlap)."""

    def __init__(self, landing: Path, start_id: int, files: int = 1, size: int = 25, every: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.landing, self.start_id, self.files, self.size, self.every = landing, start_id, files, size, every
        self.done = threading.Event()
        self.lines = 0
        self.ids: set[str] = set()

    def run(self) -> None:
        n = 0
        while n < self.files or not self.done.is_set():
            first = self.start_id + n * self.size
            batch = posts(range(first, first + self.size))
            if n % 4 == 3:
                batch += posts(range(first - self.size, first - self.size + 5))
            write_landing(self.landing, batch)
            self.lines += len(batch)
            self.ids.update(p["id"] for p in batch)
            n += 1
            time.sleep(self.every)

    def finish(self) -> None:
        self.done.set()
        self.join()


def output_rows(output: Path):
    """The committed output (read through ``_spark_metadata``) as a pandas DataFrame."""
    from spark_apps.stream.sparklog import committed_table

    table = committed_table(output)
    return None if table is None else table.to_pandas()


def assert_exactly_once(output: Path, expected: set[str]):
    """Every expected id once, each with a label and a model; returns the rows."""
    rows = output_rows(output)
    assert rows is not None, "nothing committed"
    counts = rows["id"].value_counts()
    assert set(counts.index) == expected, (sorted(expected - set(counts.index))[:10],
                                           sorted(set(counts.index) - expected)[:10])
    assert counts.max() == 1, counts[counts > 1]
    assert rows["label"].notna().all() and rows["model"].notna().all()
    return rows


def bento_workers(server_pid: int) -> list[int]:
    """Pids of the service's worker processes (``bentoml serve`` starts them under its arbiter)."""
    found = []
    members = session_members(server_pid)
    for pid in members + descendants(members):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"_bentoml_impl.worker.service" in cmdline:
            found.append(pid)
    return sorted(found)


def tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])
