"""The stream's supervisor and the daily report without Spark or Airflow runs: health verdicts from synthetic status
files, drain detection, the supervisor record, one launch try with a fake spark-submit, plan validation, and the
report's empty day, atomic replacement and reference choice."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from dashboard.stream_fixtures import MODEL, iso, post, write_output, write_run

from ml.errors import ConfigError, DataError
from sentiment_platform.stream import record
from sentiment_platform.stream.health import assess, drained
from sentiment_platform.stream.supervise import BadArguments, StreamFailed, run_supervised
from spark_apps.stream.lock import DriverLock
from spark_apps.stream.paths import StreamPaths


def write_status(paths: StreamPaths, now: float, *, state="running", updated_ago=1.0, progress_ago=2.0, query=None,
                 started_ago=600.0):
    stamp = datetime.fromtimestamp(now, UTC)
    doc = {"stream": paths.root.name, "state": state, "error": None, "stop_reason": None,
           "last_progress_utc": iso(stamp - timedelta(seconds=progress_ago)),
           "updated_utc": iso(stamp - timedelta(seconds=updated_ago)), "totals": {}, "batch_id": 3,
           "driver": {"pid": os.getpid(), "jvm_pid": None, "host": "h",
                      "started_utc": iso(stamp - timedelta(seconds=started_ago))}}
    if query is not None:
        doc["query"] = query
    paths.create()
    paths.status.write_text(json.dumps(doc))
    return doc


def landing_file(paths: StreamPaths, name: str, age: float, now: float):
    path = paths.landing / name
    path.write_text('{"id": "1"}\n')
    os.utime(path, (now - age, now - age))
    return path


@pytest.fixture
def paths(tmp_path) -> StreamPaths:
    paths = StreamPaths.under(tmp_path / "stream" / "s")
    paths.create()
    return paths


def verdict(paths, now, **kwargs):
    return assess(paths, trigger_s=1.0, stall_intervals=5, now=now, **kwargs)


def test_health_verdicts(paths):
    now = time.time()
    assert verdict(paths, now).verdict == "missing"
    write_status(paths, now)
    assert verdict(paths, now).verdict == "dead"  # says running, nobody holds the lock
    with DriverLock(paths.lock, stream="s"):
        assert verdict(paths, now).verdict == "ok"
        write_status(paths, now, updated_ago=45)
        health = verdict(paths, now)
        assert health.stalled and "has not refreshed its status file for 45 s (limit 30 s)" in health.cause
        write_status(paths, now, progress_ago=60, query={"trigger_active": False, "since_utc": iso(
            datetime.fromtimestamp(now - 50, UTC))})
        assert verdict(paths, now).verdict == "idle"  # no batch for a minute, and nothing to read
        landing_file(paths, "part-1.jsonl", 40, now)
        health = verdict(paths, now)
        assert health.stalled and "no micro-batch for 50 s while 1 landing files wait" in health.cause
        write_status(paths, now, progress_ago=60, query={"trigger_active": True, "since_utc": iso(
            datetime.fromtimestamp(now - 50, UTC))})
        assert verdict(paths, now).verdict == "ok"  # a long micro-batch is not a stall
        write_status(paths, now, state="starting", updated_ago=100)
        assert verdict(paths, now).verdict == "starting"  # Spark takes its time to start
        doc = write_status(paths, now, updated_ago=45)
        doc["driver"]["pid"] = 1  # the status of a driver that was just ended; the lock is its successor's
        paths.status.write_text(json.dumps(doc))
        health = verdict(paths, now)
        assert health.verdict == "starting" and health.driver_pid == os.getpid()  # not ended before its first word
    write_status(paths, now, state="stopped")
    assert verdict(paths, now).verdict == "stopped"


def test_drained_needs_every_landing_file_committed_by_both_queries(paths):
    now = time.time()
    files = [landing_file(paths, f"part-{i}.jsonl", 10, now) for i in range(3)]

    def log(checkpoint, names, committed=True):
        (checkpoint / "sources" / "0").mkdir(parents=True, exist_ok=True)
        (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"path": f"file://{p}", "batchId": 0}) for p in names]
        (checkpoint / "sources" / "0" / "0").write_text("v1\n" + "\n".join(lines))
        if committed:
            (checkpoint / "commits" / "0").write_text("v1\n{}")

    assert not drained(paths)
    log(paths.main_checkpoint, files)
    assert not drained(paths)  # the dead-letter query has not read them yet
    log(paths.deadletter_checkpoint, files[:2])
    assert not drained(paths)
    log(paths.deadletter_checkpoint, files)
    assert drained(paths)


def test_record_counts_restarts_keeps_the_last_events_and_notes_stops(tmp_path):
    folder = tmp_path / "s"
    for i in range(60):
        record.add_event(folder, "restart" if i % 2 else "end", f"cause {i}")
    doc = record.read_record(folder)
    assert doc["restarts"] == 30 and len(doc["events"]) == record.MAX_EVENTS and doc["events"][-1]["cause"] == "cause 59"
    before = datetime.now(UTC) - timedelta(seconds=2)
    assert record.stop_requested_since(folder, before) is None
    record.request_stop_mark(folder, "a test")
    assert record.stop_requested_since(folder, before)["by"] == "a test"
    assert record.stop_requested_since(folder, datetime.now(UTC) + timedelta(seconds=5)) is None


@pytest.fixture
def stream_settings(home, monkeypatch):
    monkeypatch.setenv("SENTIMENT_STREAM_CHECK_S", "0.1")
    from ml.settings import get_settings

    return get_settings(stream_name="s")


def test_a_failed_try_records_its_cause_and_the_next_try_restarts(stream_settings):
    plan = {"name": "s", "dag_run_id": "run-1", "mode": "continuous"}

    def killed():
        raise RuntimeError("spark-submit exited")

    with pytest.raises(StreamFailed, match=r"the driver died \(exit 137: signal 9, killed\)"):
        run_supervised(plan, stream_settings, try_number=1, retries=2, run_started=None, submit=killed,
                       returncode=lambda: 137)
    folder = stream_settings.stream_dir("s")
    assert record.read_record(folder)["launch"]["failure"].startswith("the driver died")
    calls = []
    run_supervised(plan, stream_settings, try_number=2, retries=2, run_started=None, submit=lambda: calls.append(1),
                   returncode=lambda: 0)
    doc = record.read_record(folder)
    assert calls == [1] and doc["restarts"] == 1 and doc["events"][-1]["action"] == "restart"
    assert doc["events"][-1]["cause"].startswith("the driver died (exit 137")
    with pytest.raises(StreamFailed):  # the last try: the restarts are spent
        run_supervised(plan, stream_settings, try_number=3, retries=2, run_started=None, submit=killed,
                       returncode=lambda: 1)
    assert record.read_record(folder)["events"][-1]["action"] == "give-up"
    with pytest.raises(BadArguments):
        run_supervised(plan, stream_settings, try_number=1, retries=2, run_started=None, submit=killed,
                       returncode=lambda: 2)


def test_a_running_driver_is_adopted_never_doubled_and_a_stop_request_starts_nothing(stream_settings):
    plan = {"name": "s", "dag_run_id": "run-2", "mode": "continuous"}
    paths = StreamPaths.for_stream(stream_settings, "s")
    lock = DriverLock(paths.lock, stream="s").acquire()  # a driver left running by a lost launch
    write_status(paths, time.time())

    def stop_later():
        time.sleep(1.0)
        write_status(paths, time.time(), state="stopped")
        lock.release()

    threading.Thread(target=stop_later).start()
    submitted = []
    state = run_supervised(plan, stream_settings, try_number=1, retries=2, run_started=None,
                           submit=lambda: submitted.append(1), returncode=lambda: 0)
    assert submitted == [] and state["state"] == "stopped"
    assert record.read_record(paths.root)["events"][-1]["action"] == "adopt"

    started = datetime.now(UTC) - timedelta(seconds=5)
    record.request_stop_mark(paths.root, "sentiment_stream_stop")
    run_supervised(plan, stream_settings, try_number=2, retries=2, run_started=started,
                   submit=lambda: submitted.append(1), returncode=lambda: 0)
    assert submitted == []


def test_plan_validation(home, tmp_path):
    from sentiment_platform.stream.plan import plan_stream

    with pytest.raises(ConfigError, match="give keywords"):
        plan_stream({"source": "bluesky"}, "r")
    with pytest.raises(ConfigError, match="X_BEARER_TOKEN"):
        plan_stream({"source": "x", "keywords": "cats"}, "r")
    with pytest.raises(DataError, match="no replay file"):
        plan_stream({"source": "replay"}, "r")
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"id": "1", "text": "hi"}\n')
    plan = plan_stream({"source": "replay", "replay_file": str(posts), "keywords": "a, b", "max_posts": 5,
                        "stream_name": "demo", "mode": "available-now", "trigger_seconds": 2}, "r")
    assert plan["keywords"] == ["a", "b"] and plan["name"] == "demo"
    assert plan["job_args"][-1] == "--available-now" and "--trigger-seconds" in plan["job_args"]
    endpoint = plan["job_args"][plan["job_args"].index("--service-endpoint-file") + 1]
    assert endpoint == str(home / "run" / "service-endpoint.json")
    assert plan["ingest_args"][-3:] == ["--no-loop", "--max-posts", "5"]
    with pytest.raises(ConfigError, match="mode"):
        plan_stream({"source": "replay", "replay_file": str(posts), "mode": "sometimes"}, "r")


def test_report_of_an_empty_day_and_an_atomic_replacement(settings):
    from sentiment_platform.report import build_daily_report

    now = datetime(2026, 11, 30, 10, tzinfo=UTC)
    write_output(settings.stream_dir("tweets") / "output",
                 [post(now, "kindle", "Positive"), post(now, None, "Negative")], partition_by=("date",))
    write_run(settings.reports_root, "run-a", model_tag=MODEL)
    empty = build_daily_report(settings, "tweets", date(2026, 11, 29))
    folder = settings.stream_dir("tweets") / "reports" / "date=2026-11-29"
    assert empty["rows"] == 0 and empty["by_keyword"] == {} and empty["drift"]["drift"] is None
    assert empty["reference_model"] is None  # nothing scored that day, nothing packaged
    assert pq.read_table(folder / "hourly.parquet").num_rows == 0 and (folder / "chart.png").stat().st_size > 0
    day = build_daily_report(settings, "tweets", date(2026, 11, 30))
    assert day["rows"] == 2 and set(day["by_keyword"]) == {"kindle", "(none)"} and day["reference_model"] == MODEL
    again = build_daily_report(settings, "tweets", date(2026, 11, 30))
    assert again == day
    names = sorted(p.name for p in (settings.stream_dir("tweets") / "reports").iterdir())
    assert names == ["date=2026-11-29", "date=2026-11-30"]  # the temporary and the replaced folders are gone
