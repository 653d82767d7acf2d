"""The streaming job on a Spark standalone cluster (a master and two workers on loopback), submitted with
``spark-submit --master spark://...`` exactly as on one machine, scoring through the service scaled out to two
workers behind one port: exactly once while a Spark worker is lost mid-stream, while a service worker is killed
and restarted, and while the driver is killed and restarted."""

from __future__ import annotations

import os
import signal
import time

from cluster_harness import KEY, ClusterJob, Writer, assert_exactly_once, bento_workers, posts

from spark_apps.stream.landing import write_landing


def test_job_on_the_cluster_survives_lost_spark_and_service_workers_and_a_killed_driver(tmp_path, spark_cluster, scaled_bento):
    home = tmp_path / "home"
    env = {"SENTIMENT_SCORE_RETRIES": "3", "SENTIMENT_SCORE_BACKOFF_S": "0.2"}
    job = ClusterJob(home, spark_cluster.master_url, "--max-files-per-trigger", "4", service_url=scaled_bento.url,
                     env=env)
    write_landing(job.paths.landing, posts(range(0, 50)))
    lines, ids = 50, {f"p{i}" for i in range(50)}
    started = time.monotonic()
    job.start()
    try:
        status = job.wait_rows(50, 240)
        assert status["config"]["spark_master"] == spark_cluster.master_url
        apps = (spark_cluster.state() or {}).get("activeapps", [])
        assert len(apps) == 1 and apps[0]["cores"] == 2, apps  # one executor on each worker
        print(f"job on the cluster: first 50 rows in {time.monotonic() - started:.0f}s")

        writer = Writer(job.paths.landing, 1000, files=12, every=0.3)
        writer.start()
        job.wait_status(lambda d: d["totals"]["rows_in"] >= 50 + 60, 120, "streaming")
        spark_cluster.kill_worker(1)  # a machine lost mid-stream: its executor and tasks go with it
        lost_at = time.monotonic()
        before = job.status()["batch_id"]
        job.wait_status(lambda d: d["batch_id"] >= before + 3, 180, "three batches past the lost worker")
        assert job.running() and job.status()["state"] == "running"
        print(f"lost worker: 3 more batches in {time.monotonic() - lost_at:.0f}s on the other worker")
        spark_cluster.start_worker(1)  # back: the master gives the application an executor there again

        # the service scaled out: two workers behind one port; one dies mid-stream and is restarted by BentoML
        workers = bento_workers(scaled_bento.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        restarted_at = time.monotonic()
        scaled_bento.wait_until(lambda: len(set(bento_workers(scaled_bento.pid)) - set(workers)) == 1, 120,
                                "running a new worker in place of the killed one")
        before = job.status()["batch_id"]
        job.wait_status(lambda d: d["batch_id"] >= before + 3, 180, "three batches past the service restart")
        assert job.running() and job.status()["state"] == "running"
        print(f"service worker restarted: back with 2 workers and 3 more batches in "
              f"{time.monotonic() - restarted_at:.0f}s")

        job.kill_driver()  # the driver's host dies mid-stream; the checkpoint is on shared storage
        killed_at = time.monotonic()
        time.sleep(1)
        job.start()
        writer.finish()
        lines, ids = lines + writer.lines, ids | writer.ids
        job.wait_rows(lines, 240)
        print(f"killed driver: restarted and caught up with {lines} lines in {time.monotonic() - killed_at:.0f}s")
        os.kill(job.status()["driver"]["pid"], signal.SIGTERM)
        assert job.wait_exit(90) == 0, job.log_tail()
    finally:
        job.stop()
    status = job.status()
    assert status["state"] == "stopped" and status["totals_exact"]
    rows = assert_exactly_once(job.paths.output, ids)
    assert status["totals"]["rows_in"] == lines and status["totals"]["written"] == len(rows) == len(ids)
    assert status["totals"]["duplicates"] == lines - len(ids)
    assert KEY not in job.log_path.read_text()
    assert len(spark_cluster.alive_workers()) == 2
