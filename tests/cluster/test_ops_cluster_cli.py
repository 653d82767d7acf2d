"""``python -m ops cluster up|status|down`` (what ``make cluster-up`` runs): the Spark half on free loopback ports
(the Airflow half is the same ``ops.cluster`` code the ``celery_stack`` fixture runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cluster_harness import ROOT

from ml.processes import free_port, port_open


def test_cluster_up_status_down(tmp_path):
    port = free_port()
    while port_open(port + 1000):
        port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT", "AIRFLOW", "BENTOML_HOME"))}
    env.update(SENTIMENT_HOME=str(tmp_path / "home"), SENTIMENT_SPARK_MASTER_PORT=str(port),
               SENTIMENT_SPARK_WORKERS="1", SENTIMENT_SPARK_WORKER_MEMORY="512m")

    def ops(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops", "cluster", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)

    try:
        up = ops("up", "--no-airflow")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"spark://127.0.0.1:{port}" in up.stdout
        again = ops("up", "--no-airflow")
        assert again.returncode == 1 and "already runs" in again.stderr
        status = ops("status", "--json")
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["spark-master"]["alive_workers"] == 1, status.stdout
        assert report["spark-worker-1"]["running"]
    finally:
        down = ops("down", "--grace", "10")
    assert down.returncode == 0 and "spark-master: stopped" in down.stdout, down.stdout + down.stderr
    assert not port_open(port)
    assert ops("status").stdout.strip() == "the cluster is not running"
