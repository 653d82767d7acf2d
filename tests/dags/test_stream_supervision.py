"""Supervision of the stream by ``sentiment_stream`` for real (``airflow dags test``, spark-submit on ``local[2]``,
``bentoml serve``): a SIGKILLed driver is restarted once; a SIGSTOPped driver (a stall) is detected, ended and
restarted; when the Airflow process running the launch task is killed, the orphaned driver goes on and the next
launch adopts it; ``sentiment_stream_stop`` ends it cleanly: exactly one driver at every moment, every post exactly
once."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from airflow_harness import (
    ROOT,
    dags_test,
    dags_test_cmd,
    drivers,
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
NAME = "sup"


def test_sigkill_sigstop_and_a_lost_launch_task(airflow_home, tmp_path, stream_model):
    home = tmp_path / "home"
    install_model(stream_model, home)
    env = stream_env(home, airflow_home, free_port(), SENTIMENT_STREAM_STALL_INTERVALS="5")  # a stall after 30 s
    conf = {"stream_name": NAME, "source": "replay", "replay_file": replay_file(tmp_path / "posts.jsonl", 200),
            "replay_rate": 20, "replay_loop": True, "trigger_seconds": 1, "stop_when_ingest_ends": True}
    folder = home / "stream" / NAME
    started = time.monotonic()
    marks: dict[str, float] = {}

    def status() -> dict:
        return read_status(folder / "status.json") or {}

    def supervisor() -> dict:
        try:
            return json.loads((folder / "supervisor.json").read_text())
        except (OSError, ValueError):
            return {}

    def running_driver(other_than: set[int], process: Process) -> int:
        """Wait for a driver (not one of ``other_than``) that has written rows; it must be the only one."""
        def check():
            doc = status()
            pid = (doc.get("driver") or {}).get("pid")
            if doc.get("state") == "running" and pid not in other_than and doc.get("last_batch"):
                return pid
            return None
        pid = wait_for("a new driver writing rows", check, 300, process)
        assert drivers(NAME) == [pid]
        return pid

    first = Process(dags_test_cmd("sentiment_stream", conf), cwd=ROOT, env=env, log=tmp_path / "run-1.log",
                    name="dags-test-1")
    second = Process(dags_test_cmd("sentiment_stream", conf), cwd=ROOT, env=env, log=tmp_path / "run-2.log",
                     name="dags-test-2")
    try:
        first.start()
        one = running_driver(set(), first)
        marks["first driver"] = time.monotonic() - started

        # 1. SIGKILL the driver: the try fails with the cause, the retry restarts it from the checkpoint, once
        os.kill(one, signal.SIGKILL)
        two = running_driver({one}, first)
        marks["restart after SIGKILL"] = time.monotonic() - started
        assert supervisor()["restarts"] == 1
        (restart,) = [e for e in supervisor()["events"] if e["action"] == "restart"]
        assert "the driver died" in restart["cause"] and "killed" in restart["cause"], restart

        # 2. SIGSTOP the driver: it stops refreshing its status; the watchdog ends it, the retry restarts it
        os.kill(two, signal.SIGSTOP)
        three = running_driver({one, two}, first)
        marks["restart after SIGSTOP"] = time.monotonic() - started
        record = supervisor()
        assert record["restarts"] == 2
        ended = [e for e in record["events"] if e["action"] == "end"]
        assert len(ended) == 1 and "has not refreshed its status file" in ended[0]["cause"]
        assert two in ended[0]["pids"] and "stalled" in record["events"][-1]["cause"]

        # 3. kill the Airflow process running the launch task: its spark-submit is orphaned and goes on
        os.kill(first.pid, signal.SIGKILL)
        first.proc.wait(30)
        batch = status()["batch_id"]
        wait_for("the orphaned driver's next batches", lambda: status()["batch_id"] >= batch + 2, 120)
        second.start()  # the scheduler's retry of the lost task; here: the next launch
        wait_for("the next launch adopting the driver",
                 lambda: any(e["action"] == "adopt" for e in supervisor().get("events", [])), 300, second)
        marks["adopted"] = time.monotonic() - started
        for _ in range(5):
            assert drivers(NAME) == [three]  # never a second driver
            time.sleep(1)

        # the stop DAG: the ingest stops (saving its position), the adopted driver after its running micro-batch;
        # the launch succeeds
        stop = dags_test(env, "sentiment_stream_stop", {"stream_name": NAME}, timeout=300, log=tmp_path / "stop.log")
        assert stop.returncode == 0, stop.stdout[-3000:] + stop.stderr[-3000:]
        assert components.read(home / "run", f"ingest-{NAME}") is None
        second.wait_until(lambda: not second.running(), 300, "finished")
    finally:
        for process in (second, first):
            process.stop()
        stop_components(home)
    print(f"supervision: {', '.join(f'{k} {v:.0f}s' for k, v in marks.items())}; "
          f"total {time.monotonic() - started:.0f}s")
    assert second.proc.returncode == 0, second.log_tail(80)
    assert drivers(NAME) == []

    record = supervisor()
    assert record["restarts"] == 2
    assert [e["action"] for e in record["events"]] == ["restart", "end", "restart", "adopt", "stop"]
    final = status()
    assert final["state"] == "stopped" and final["driver"]["pid"] == three
    ids = landing_ids(folder / "landing")
    rows = output_rows(home, NAME)
    assert len(ids) == len(set(ids)) > 200  # the replay looped (new ids each pass)
    assert sorted(rows["id"]) == sorted(ids)  # every post exactly once, through two restarts and an adoption
    assert rows["label"].notna().all()
    assert final["totals"]["written"] == len(ids) and final["totals_exact"]
