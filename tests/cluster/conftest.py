"""Fixtures of the ``cluster`` tests, each started ONCE per session: a Spark standalone cluster (a master and two
workers, from the pyspark wheel), a scaled-out ``bentoml serve`` (two workers behind one port), and an Airflow on
PostgreSQL + Redis with its processes split and two Celery workers. Every test in this folder is marked
``cluster`` (and ``slow``); the engines come from :mod:`ops.cluster`, what ``python -m ops cluster up`` runs."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_harness import KEY  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def dag_folder(folder: Path) -> Path:
    """A DAG folder with the repository's DAGs and the test DAGs, as links (the DAG files stay where they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [*sorted((ROOT / "dags").glob("*.py")), *sorted((HERE / "dags").glob("*.py"))]:
        (folder / path.name).symlink_to(path)
    return folder


#: the Airflow stack starts last, so that its idle processes do not share the cores with the Spark tests
ORDER = ("test_stream_standalone.py", "test_ops_cluster_cli.py", "test_airflow_celery.py")


def pytest_collection_modifyitems(config, items):
    ours = []
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)
            ours.append(item)
    if ours:
        first = items.index(ours[0])
        rank = {name: i for i, name in enumerate(ORDER)}
        ours.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(ORDER)))
        rest = [item for item in items if item not in ours]
        items[:] = rest[:first] + ours + rest[first:]


def _need(what: str, found: bool, hint: str) -> None:
    if not found:
        pytest.skip(f"{what} is missing: {hint}")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone master and 2 workers (1 core, 1 GiB each) on loopback, shared by the session."""
    from ops.cluster.engines import SparkStandalone

    _need("java", bool(shutil.which("java")), "install a JDK 17")
    cluster = SparkStandalone(tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=1, memory="1g")
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_model(trained_home, tmp_path_factory) -> dict:
    """The session's trained logreg packaged into a model store of its own."""
    from ml.settings import get_settings
    from serving.package import package_model

    store = tmp_path_factory.mktemp("cluster-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(store))
        mp.delenv("SENTIMENT_RUN_ID", raising=False)
        return package_model(get_settings(home=trained_home), "logreg")


@pytest.fixture(scope="session")
def scaled_bento(cluster_model, tmp_path_factory):
    """``bentoml serve`` with SENTIMENT_SERVICE_WORKERS=2: two worker processes behind one port (API key on)."""
    from serving.launch import BentoServer

    env = {"BENTOML_HOME": cluster_model["store"], "SENTIMENT_MODEL_TAG": cluster_model["tag"],
           "SENTIMENT_API_KEY": KEY, "SENTIMENT_SERVICE_WORKERS": "2",
           "SENTIMENT_HOME": str(tmp_path_factory.mktemp("bento-home"))}
    log = tmp_path_factory.mktemp("bento-log") / "bentoml.log"
    with BentoServer(env=env, log=log, ready_timeout=180) as server:
        yield server


@pytest.fixture(scope="session")
def celery_stack(tmp_path_factory, spark_cluster, scaled_bento):
    """PostgreSQL + Redis + Airflow (api-server, scheduler, dag-processor, triggerer, 2 Celery workers with 2 slots
    each) on loopback. Its DAG folder holds this repository's DAGs (linked) and the test DAGs of
    ``tests/cluster/dags``; ``spark_default`` points at the session's Spark cluster and ``bentoml_default`` and
    ``service_url`` at the scaled-out service (deployed outside the platform): configuration only. Task heartbeats
    time out after 20 s so that a killed worker's tasks are retried quickly. Yields ``(airflow, sentiment_home, postgres, redis)``."""
    from ml.processes import free_port
    from ops.cluster.airflow import CeleryAirflow
    from ops.cluster.engines import HOST, EngineError, Postgres, Redis, postgres_bindir, redis_server
    from ops.layout import Layout

    try:
        postgres_bindir()
        redis_server()
    except EngineError as exc:
        pytest.skip(str(exc))
    base = tmp_path_factory.mktemp("celery-stack")
    home = base / "home"
    run_dir = base / "run"
    pg_parent = Path(tempfile.mkdtemp(prefix="sentiment-pg-"))  # the postgres user must be able to enter it
    os.chmod(pg_parent, 0o755)
    postgres = Postgres(run_dir, pg_parent / "data").start()
    redis = Redis(run_dir).start()
    airflow = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in list(os.environ):
                if key.startswith(("SENTIMENT", "AIRFLOW", "BENTOML_HOME")):
                    mp.delenv(key)
            mp.setenv("SENTIMENT_HOME", str(home))
            mp.setenv("SENTIMENT_AIRFLOW_PASSWORD", "cluster-test-pw")
            mp.setenv("SENTIMENT_API_KEY", KEY)
            layout = Layout(airflow_port=free_port(), service_port=scaled_bento.port)
            airflow = CeleryAirflow(layout, run_dir, database_url=postgres.url, broker_url=redis.url, workers=2,
                                    concurrency=2, extra_env={
                                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "3",
                                        "SENTIMENT_TRAIN_PARALLELISM": "2", "SPARK_LOCAL_IP": HOST,
                                        # the service is deployed outside the platform: the stream DAG uses it
                                        "SENTIMENT_SERVICE_URL": scaled_bento.url,
                                        "SENTIMENT_STATE_PARTITIONS": "2", "SENTIMENT_STREAM_CHECK_S": "2",
                                        "AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder(base / "dags")),
                                        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
                                            {"conn_type": "spark", "host": f"spark://{HOST}",
                                             "port": spark_cluster.port, "extra": {"deploy-mode": "client"}})})
        airflow.start(timeout=300)
        yield airflow, home, postgres, redis
    finally:
        if airflow is not None:
            airflow.stop(grace=5)
        redis.stop()
        postgres.stop()
        shutil.rmtree(pg_parent, ignore_errors=True)
