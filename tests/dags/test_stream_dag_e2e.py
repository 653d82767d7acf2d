"""The stream DAGs for real: ``airflow dags test sentiment_stream`` (a real ``bentoml serve`` started by the DAG,
the ingest replaying a file, ``spark-submit`` through the provider's operator on ``local[2]``), and, mid-stream,
``airflow dags test sentiment_champion_rollout`` with a second packaged model: every post exactly once, labelled,
its ``model`` the old champion's, then the new one's."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from airflow_harness import (
    ROOT,
    dags_test_cmd,
    free_port,
    install_model,
    landing_ids,
    output_rows,
    replay_file,
    stop_components,
    stream_env,
    wait_for,
)

from ml import components
from ml.processes import Process
from spark_apps.stream.status import read_status

pytestmark = [pytest.mark.slow, pytest.mark.stream]
KEY = "dag-test-api-key-41c7e2"
def test_stream_end_to_end_with_a_champion_roll_mid_stream(airflow_home, tmp_path, trained_home, stream_model):
    home = tmp_path / "home"
    old_tag = install_model(stream_model, home)
    port = free_port()
    env = stream_env(home, airflow_home, port, SENTIMENT_API_KEY=KEY)  # the service wants a key: never in a log
    n = 600
    conf = {"stream_name": "e2e", "source": "replay", "replay_file": replay_file(tmp_path / "posts.jsonl", n),
            "replay_rate": 50, "max_posts": n, "trigger_seconds": 1, "stop_when_ingest_ends": True}
    started = time.monotonic()
    run = Process(dags_test_cmd("sentiment_stream", conf), cwd=ROOT, env=env, log=tmp_path / "stream-dag.log",
                  name="dags-test-stream")
    status_file = home / "stream" / "e2e" / "status.json"
    ingest = None
    ingest_status = home / "stream" / "e2e" / "ingest" / "status.json"
    try:
        run.start()
        # the replay is held after a third of its posts (SIGSTOP: a slow source), so that the roll below happens
        # mid-stream however long Spark takes to start on this machine
        ingest = wait_for("the ingest", lambda: (read_status(ingest_status) or {}).get("posts", 0) >= n // 3
                          and components.read(home / "run", "ingest-e2e"), 240, run, interval=0.1)
        os.kill(ingest["pid"], signal.SIGSTOP)
        wait_for("rows scored by the first champion",
                 lambda: ((read_status(status_file) or {}).get("totals") or {}).get("written", 0) >= 20, 240, run)
        first_rows = time.monotonic() - started

        # a second champion is packaged (the training DAG's package task would do this) and rolled out
        from ml.settings import get_settings
        from serving.package import package_model

        new_tag = str(package_model(get_settings(home=trained_home, bentoml_home=home / "bentoml"), "logreg")["tag"])
        assert new_tag != old_tag
        rolled_at = time.monotonic()
        roll = Process(dags_test_cmd("sentiment_champion_rollout", {"model_tag": new_tag}), cwd=ROOT, env=env,
                       log=tmp_path / "rollout-dag.log", name="dags-test-rollout").start()
        endpoint = home / "run" / "service-endpoint.json"
        wait_for("the new champion holding the endpoint file",
                 lambda: new_tag in (endpoint.read_text() if endpoint.exists() else ""), 300, roll, interval=0.2)
        os.kill(ingest["pid"], signal.SIGCONT)  # the rest of the replay lands while the roll goes on
        roll.wait_until(lambda: not roll.running(), 300, "finished")
        assert roll.proc.returncode == 0, roll.log_tail(60)
        roll_seconds = time.monotonic() - rolled_at
        service = json.loads((home / "run" / "service.json").read_text())
        assert service["model_tag"] == new_tag and service["port"] == port  # the canonical address is kept
        assert json.loads((home / "run" / "service-endpoint.json").read_text())["url"] == f"http://127.0.0.1:{port}"
        assert not (home / "run" / "service-next.json").exists()

        run.wait_until(lambda: not run.running(), 400, "finished")
    finally:
        if ingest and components.read(home / "run", "ingest-e2e"):
            os.kill(ingest["pid"], signal.SIGCONT)
        run.stop()
        stop_components(home)
    seconds = time.monotonic() - started
    print(f"sentiment_stream e2e: first rows after {first_rows:.0f}s, rollout {roll_seconds:.0f}s, "
          f"{n} posts done in {seconds:.0f}s")
    assert run.proc.returncode == 0, run.log_tail(80)

    rows = output_rows(home, "e2e")
    ids = landing_ids(home / "stream" / "e2e" / "landing")
    assert sorted(ids) == sorted(f"post-{i}" for i in range(n))  # the ingest landed each post once
    counts = rows["id"].value_counts()
    assert len(rows) == n and counts.max() == 1 and set(rows["id"]) == set(ids)
    assert rows["label"].notna().all() and set(rows["label"]) <= {"Positive", "Negative", "Neutral"}
    assert set(rows["model"]) == {old_tag, new_tag}  # the switch is visible row by row ...
    by_time = rows.sort_values("scored_ts")
    last_old = by_time[by_time["model"] == old_tag]["scored_ts"].max()
    first_new = by_time[by_time["model"] == new_tag]["scored_ts"].min()
    assert last_old <= first_new + __import__("pandas").Timedelta(seconds=2)  # ... and happens once
    assert (by_time["model"].iloc[-50:] == new_tag).all()

    status = read_status(status_file)
    assert status["state"] == "stopped" and status["stop_reason"].startswith(("SIGTERM", "stop file"))
    assert status["totals"]["written"] == n and status["model"] == new_tag
    supervisor = json.loads((home / "stream" / "e2e" / "supervisor.json").read_text())
    assert supervisor["restarts"] == 0, supervisor
    assert "[DAG TEST] end task task_id=finish" in run.log_path.read_text()
    logs = [run.log_path, tmp_path / "rollout-dag.log", *sorted((home / "run").glob("*.log"))]
    assert len(logs) >= 4 and not [log.name for log in logs if KEY in log.read_text(errors="replace")]
