"""Airflow on PostgreSQL with the CeleryExecutor (api-server, scheduler, dag-processor, triggerer and two Celery
workers as separate processes, Redis as the broker): a SparkSubmitOperator task runs the streaming job on the
Spark standalone cluster through ``spark_default``, the training DAG runs end to end while a Celery worker is
killed under one of its tasks, and the platform's own ``sentiment_stream`` and ``sentiment_daily_report`` DAGs run
there unchanged: the job on the Spark cluster, scored by the scaled-out service, then the day's report."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from cluster_harness import KEY, ROOT, SPARK_SUBMIT, assert_exactly_once, posts

from ml.processes import descendants, session_members
from ops.cluster.engines import spark_env
from spark_apps.stream.landing import write_landing

FINISHED = {"success", "failed"}


def wait_run(api, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = api.run(run_id)
        if run["state"] in FINISHED:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']} after {timeout:.0f}s"
        time.sleep(2)


def wait_dag(api, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while api.dag() is None:
        assert time.monotonic() < deadline, f"DAG {api.dag_id} not parsed after {timeout:.0f}s"
        time.sleep(2)
    api.unpause()


def task_log(airflow, run: dict, task_id: str) -> str:
    logs = Path(airflow.env["AIRFLOW_HOME"]) / "logs"
    found = [p for p in logs.rglob("*.log") if task_id in str(p) and run["dag_run_id"] in str(p)]
    return "\n".join(p.read_text(errors="replace") for p in found)


def test_cluster_deploy_mode_is_refused_for_python_on_a_standalone_master(spark_cluster, tmp_path):
    """Why the connection says ``deploy-mode: client``: the provider's driver tracking (``--status`` polling,
    ``durable`` reconnects) needs cluster mode, which Spark refuses for Python applications on standalone."""
    app = tmp_path / "app.py"
    app.write_text("print('never runs')\n")
    done = subprocess.run([str(SPARK_SUBMIT), "--master", spark_cluster.master_url, "--deploy-mode", "cluster",
                           str(app)], env=spark_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Cluster deploy mode is currently not supported for python applications on standalone clusters" in \
        done.stdout + done.stderr


def test_spark_submit_operator_runs_the_job_on_the_cluster(celery_stack, spark_cluster, tmp_path):
    airflow, *_ = celery_stack
    api = airflow.api("cluster_spark_submit")
    wait_dag(api)
    assert api.import_errors() == []  # every DAG of the repository parses on the Celery deployment
    home = tmp_path / "stream-home"
    landing = home / "stream" / "tweets" / "landing"
    write_landing(landing, posts(range(0, 40)))
    write_landing(landing, posts(range(30, 60)))  # 10 re-delivered ids
    started = time.monotonic()
    run = wait_run(api, api.trigger({"home": str(home), "name": "tweets"})["dag_run_id"], 300)
    log = task_log(airflow, run, "stream_available_now")
    assert run["state"] == "success", log[-3000:]
    print(f"SparkSubmitOperator on Celery -> spark://: {time.monotonic() - started:.0f}s")
    assert f"spark-submit --master {spark_cluster.master_url} " in log and "--deploy-mode client" in log
    status = json.loads((home / "stream" / "tweets" / "status.json").read_text())
    assert status["state"] == "stopped" and status["config"]["spark_master"] == spark_cluster.master_url
    assert status["totals"]["written"] == 60 and status["totals"]["duplicates"] == 10
    assert_exactly_once(home / "stream" / "tweets" / "output", {f"p{i}" for i in range(60)})
    completed = (spark_cluster.state() or {}).get("completedapps", [])
    assert any(app["name"] == "sentiment-stream-tweets" for app in completed), completed


def _worker_running(airflow, ti_id: str) -> int | None:
    """Which Celery worker runs the task instance ``ti_id`` (its task runner's title names the id)."""
    for name, process in airflow.processes.items():
        if not name.startswith("worker-") or not process.running():
            continue
        members = session_members(process.pid)
        for pid in members + descendants(members):
            try:
                if ti_id.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(name.split("-")[1])
            except OSError:
                continue
    return None


def test_training_dag_on_celery_survives_a_killed_worker(celery_stack, s140_zip):
    airflow, home, *_ = celery_stack
    api = airflow.api("sentiment140_training")
    wait_dag(api)
    families = ["logreg", "multinomialnb"]
    conf = {"families": families, "max_samples": None, "eval_max_samples": None, "data_url": s140_zip.as_uri()}
    started = time.monotonic()
    run_id = api.trigger(conf)["dag_run_id"]
    killed = None
    deadline = time.monotonic() + 300
    while killed is None:  # kill the worker that runs a training task, while it runs
        assert time.monotonic() < deadline, "no training task started"
        for ti in api.task_instances(run_id):
            if ti["task_id"] == "train" and ti["state"] == "running" and ti.get("id"):
                worker = _worker_running(airflow, ti["id"])
                if worker:
                    airflow.kill_worker(worker)
                    killed = (worker, ti["map_index"], ti["try_number"])
                    break
        time.sleep(0.5)
    print(f"killed Celery worker {killed[0]} under train[{killed[1]}] after {time.monotonic() - started:.0f}s")
    run = wait_run(api, run_id, 600)
    seconds = time.monotonic() - started
    airflow.start_worker(killed[0])
    tis = api.task_instances(run_id)
    assert run["state"] == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    print(f"training DAG on Celery with a killed worker: {seconds:.0f}s")
    assert all(t["state"] in ("success", "skipped") for t in tis), [(t["task_id"], t["state"]) for t in tis]
    retried = [t for t in tis if t["task_id"] == "train" and t["map_index"] == killed[1]]
    assert retried[0]["try_number"] == killed[2] + 1  # retried once, on the other worker
    from sentiment_platform.pipeline import run_id_from

    record = json.loads((home / "reports" / run_id_from(run_id) / "run.json").read_text())
    assert record["status"] == "success" and sorted(record["models"]) == sorted(families)
    board = json.loads((home / "reports" / record["run_id"] / "leaderboard.json").read_text())
    assert sorted(row["model"] for row in board) == sorted(families)  # each family once
    assert sorted(p.name for p in (home / "models" / record["run_id"]).iterdir()) == sorted(families)
    events = api.call("GET", "/assets/events?limit=100")["asset_events"]
    names = sorted(e.get("name") for e in events if e.get("source_run_id") == run_id)
    assert names == ["sentiment140_prepared", "sentiment_champion_model"], names  # each asset updated once
    assert ROOT  # the DAGs ran from this repository


def test_stream_dag_on_the_cluster_then_the_daily_report(celery_stack, spark_cluster, scaled_bento, tmp_path):
    """The repository's ``sentiment_stream`` (bounded: replay N posts, drain, stop) with only the connections and
    ``service_url`` changed, then ``sentiment_daily_report`` for today over what it wrote."""
    from datetime import UTC, datetime

    airflow, home, *_ = celery_stack
    n, name = 300, "celery"
    replay = tmp_path / "posts.jsonl"
    replay.write_text("".join(json.dumps({"id": f"c-{i}", "text": ["I love it", "I hate it", "so so"][i % 3],
                                          "keyword": "phone"}) + "\n" for i in range(n)))
    api = airflow.api("sentiment_stream")
    wait_dag(api)
    conf = {"stream_name": name, "source": "replay", "replay_file": str(replay), "replay_rate": 0, "max_posts": n,
            "trigger_seconds": 1, "stop_when_ingest_ends": True}
    started = time.monotonic()
    run = wait_run(api, api.trigger(conf)["dag_run_id"], 600)
    seconds = time.monotonic() - started
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in api.task_instances(run["dag_run_id"])] \
        + [task_log(airflow, run, "run_stream")[-3000:]]
    print(f"sentiment_stream on Celery -> spark:// ({n} posts, bounded): {seconds:.0f}s")
    serve = task_log(airflow, run, "serve_champion")
    assert "deployed outside the platform" in serve  # the scaled-out service was used, not started
    assert f"--master {spark_cluster.master_url} " in task_log(airflow, run, "run_stream")
    stream = home / "stream" / name
    status = json.loads((stream / "status.json").read_text())
    assert status["state"] == "stopped" and status["config"]["spark_master"] == spark_cluster.master_url
    assert status["totals"]["written"] == n
    rows = assert_exactly_once(stream / "output", {f"c-{i}" for i in range(n)})
    assert set(rows["model"]) == {scaled_bento_tag(scaled_bento)}
    completed = (spark_cluster.state() or {}).get("completedapps", [])
    assert any(app["name"] == f"sentiment-stream-{name}" for app in completed), completed

    report = airflow.api("sentiment_daily_report")
    wait_dag(report)
    today = datetime.now(UTC).date().isoformat()
    run = report.call("POST", "/dags/sentiment_daily_report/dagRuns",
                      {"logical_date": f"{today}T00:00:00Z", "conf": {"stream_name": name}})
    run = wait_run(report, run["dag_run_id"], 300)
    assert run["state"] == "success", task_log(airflow, run, "build_report")[-3000:]
    summary = json.loads((stream / "reports" / f"date={today}" / "summary.json").read_text())
    assert summary["date"] == today and summary["rows"] == n
    assert (stream / "reports" / f"date={today}" / "chart.png").stat().st_size > 0


def scaled_bento_tag(server) -> str:
    from sentiment_platform.hooks import BentoMLHook

    return BentoMLHook(base_url=server.url, api_key=KEY).classify(["hello"])[0]["model"]
