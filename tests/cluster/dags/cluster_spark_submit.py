"""
### cluster_spark_submit (a test DAG of tests/cluster)

One `SparkSubmitOperator` task that runs the streaming job once over the landing files present
(`--available-now`) through the `spark_default` connection: whatever master that connection names (here a Spark
standalone cluster on loopback) runs it, with no change to this file. Client deploy mode: Spark refuses cluster
deploy mode for Python applications on a standalone master.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param

JOB = Path(__file__).resolve().parents[3] / "spark_apps" / "stream" / "job.py"

with DAG(
    dag_id="cluster_spark_submit",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["tests"],
    doc_md=__doc__,
    params={"home": Param("", type="string", description="Artifacts root of the stream."),
            "name": Param("tweets", type="string", description="Stream name.")},
):
    SparkSubmitOperator(
        task_id="stream_available_now",
        application=str(JOB),
        conn_id="spark_default",
        name="sentiment-stream-{{ params.name }}",
        application_args=["--home", "{{ params.home }}", "--name", "{{ params.name }}", "--available-now",
                          "--trigger-seconds", "0.5", "--state-partitions", "2"],
        conf={"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1"},
        driver_memory="640m",
        executor_memory="640m",
        retries=0,
    )
