"""Fixtures of the streaming tests: ONE ``bentoml serve`` of the session's packaged model (``stream_model``, in
tests/conftest.py) for the whole session, a local SparkSession for the transform tests, and :class:`StreamJob`, the
real job under ``spark-submit --master local[2]`` started and stopped with the platform's process launcher."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ml.processes import Process, environ
from spark_apps.stream.paths import StreamPaths
from spark_apps.stream.status import read_status

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
KEY = "stream-test-key-5b8e0c"


@pytest.fixture(scope="session")
def bento(stream_model, tmp_path_factory):
    """One real ``bentoml serve`` of that model (API key required) for every streaming test; tests may stop it
    and start it again on the same port."""
    from serving.launch import BentoServer

    env = {"BENTOML_HOME": stream_model["store"], "SENTIMENT_MODEL_TAG": stream_model["tag"],
           "SENTIMENT_API_KEY": KEY, "SENTIMENT_HOME": str(tmp_path_factory.mktemp("bento-home"))}
    log = tmp_path_factory.mktemp("bento-log") / "bentoml.log"
    with BentoServer(env=env, log=log) as server:
        yield server


@pytest.fixture(scope="session")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("stream-tests").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.log.level", "WARN").getOrCreate())
    yield session
    session.stop()
    import logging

    logging.getLogger("py4j").setLevel(logging.WARNING)


class StreamJob(Process):
    """``spark-submit --master local[2] spark_apps/stream/job.py --home HOME ARGS`` in its own session."""

    def __init__(self, home: Path, *args: str, service_url: str | None = None, store: str | None = None,
                 env: dict | None = None, name: str = "tweets") -> None:
        self.home = Path(home)
        self.paths = StreamPaths.under(self.home / "stream" / name)
        base = {"SENTIMENT_HOME": str(home), "SENTIMENT_API_KEY": KEY, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
                "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                "SENTIMENT_SERVICE_URL": service_url, "BENTOML_HOME": store, "SENTIMENT_CONFIG": None,
                "SPARK_LOCAL_IP": "127.0.0.1"}
        cmd = [str(SPARK_SUBMIT), "--master", "local[2]", "--driver-memory", "768m",
               "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
               str(ROOT / "spark_apps/stream/job.py"), "--name", name, "--trigger-seconds", "0.5",
               "--state-partitions", "2", *args]
        super().__init__(cmd, cwd=ROOT, env=environ({**base, **(env or {})}), log=self.home / f"job-{name}.log",
                         name="stream-job")

    def status(self) -> dict:
        return read_status(self.paths.status) or {}

    def wait_status(self, check, timeout: float = 120, what: str = "in the expected state") -> dict:
        def ready() -> dict | None:
            doc = self.status()
            return doc if doc and check(doc) else None

        return self.wait_until(ready, timeout, what)

    def wait_running(self, timeout: float = 120) -> dict:
        return self.wait_status(lambda d: d.get("state") == "running", timeout, "running")

    def wait_rows(self, rows_in: int, timeout: float = 120) -> dict:
        return self.wait_status(lambda d: d["totals"]["rows_in"] >= rows_in, timeout, f"past {rows_in} rows in")

    def wait_exit(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.running():
            raise TimeoutError(f"the job did not exit in {timeout:.0f}s:\n{self.log_tail()}")
        return self.proc.returncode

    def kill_group(self) -> None:
        """SIGKILL the whole process group (spark-submit's JVM, the Python driver, the Python workers)."""
        os.killpg(os.getpgid(self.pid), signal.SIGKILL)
        self.proc.wait(30)
        self.stop(grace=5)  # reap anything that left the group


def output_rows(output: Path):
    """The committed output as a pandas DataFrame (read from ``_spark_metadata``, like any reader must)."""
    from spark_apps.stream.sparklog import committed_table

    table = committed_table(output)
    return None if table is None else table.to_pandas()


def dead_letter_rows(deadletter: Path) -> list[dict]:
    from spark_apps.stream.sparklog import committed_files

    return [json.loads(line) for f in committed_files(deadletter) for line in Path(f).read_text().splitlines()]
