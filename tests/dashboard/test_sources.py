"""The files other parts write: stream health from the status file, restarts, daily reports, runs and the champion."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import stream_fixtures as fx

from serving.dashboard import sources


def test_health_levels(tmp_path, now):
    stream = tmp_path / "tweets"
    assert sources.health(None, now=now, stale_s=60).level == "missing"
    ok = sources.health(fx.write_status(stream, now, batch_age_s=3, update_age_s=1), now=now, stale_s=60)
    assert ok.ok and ok.colour == "green" and ok.batch_age_s == pytest.approx(3, abs=0.01)
    no_batch = sources.health(fx.write_status(stream, now, batch_age_s=300, update_age_s=5), now=now, stale_s=60)
    assert no_batch.level == "stale" and no_batch.colour == "red" and "micro-batch" in no_batch.reason
    dead = sources.health(fx.write_status(stream, now, batch_age_s=500, update_age_s=400), now=now, stale_s=60)
    assert dead.level == "stale" and "status file" in dead.reason
    assert sources.health(fx.write_status(stream, now, batch_age_s=300), now=now, stale_s=600).ok  # the setting
    failed = sources.health(fx.write_status(stream, now, state="failed", error="the service is down"), now=now,
                            stale_s=60)
    assert failed.level == "failed" and failed.colour == "red" and "the service is down" in failed.reason
    stopped = fx.write_status(stream, now, state="stopped", stop_reason="SIGTERM")
    assert sources.health(stopped, now=now, stale_s=60).level == "stopped"
    starting = fx.write_status(stream, now, state="starting", last_progress_utc=None)
    assert sources.health(starting, now=now, stale_s=60).level == "starting"


def test_stream_state_with_and_without_the_side_files(tmp_path, now):
    stream = tmp_path / "tweets"
    empty = sources.stream_state(stream)
    assert (empty.status, empty.ingest, empty.supervisor, empty.restarts, empty.totals) == (None, None, None, 0, {})
    fx.write_status(stream, now, restarts=1)
    assert sources.stream_state(stream).restarts == 1
    fx.write_side_files(stream, now, restarts=2)
    state = sources.stream_state(stream)
    assert state.restarts == 2 and [e["cause"] for e in state.restart_events][-1] == "status file stale for 300 s"
    assert state.ingest["posts"] == 12400 and state.totals["dead_letters"] == 37 and state.model == fx.MODEL
    (stream / "status.json").write_text('{"state": "runn')  # torn: never happens with atomic writes, but cope
    assert sources.stream_state(stream).status is None


def test_stream_names(tmp_path, now):
    root = tmp_path / "stream"
    assert sources.stream_names(root, "tweets") == ["tweets"]
    fx.write_status(root / "demo", now)
    (root / "other" / "output").mkdir(parents=True)
    (root / "junk").mkdir()
    assert sources.stream_names(root, "tweets") == ["tweets", "demo", "other"]
    assert sources.stream_names(root, "other") == ["other", "demo"]


def test_daily_reports(tmp_path, now):
    stream = tmp_path / "tweets"
    assert sources.daily_reports(stream) == []
    days = [now.date() - timedelta(days=i) for i in (3, 2, 1)]
    fx.write_daily_reports(stream, days, drift_on={days[1]})
    (stream / "reports" / "date=2001-01-01").mkdir()  # a folder whose summary is not written yet
    rows = sources.daily_reports(stream)
    assert [r["date"] for r in rows] == [d.isoformat() for d in days]
    assert [r["drift"] for r in rows] == [False, True, False] and rows[1]["psi"] == 0.35
    assert rows[0]["chart"].endswith("chart.png") and rows[0]["psi_threshold"] == 0.2


def test_runs_and_the_champion(tmp_path):
    root = tmp_path / "reports"
    assert sources.runs(root) == [] and sources.champion([]) is None
    fx.write_run(root, "older", model_tag="tweet-sentiment:old")
    newer = fx.write_run(root, "newer", status="failed", champion="linearsvc", model_tag="tweet-sentiment:new")
    record = json.loads((newer / "run.json").read_text())
    (newer / "run.json").write_text(json.dumps({**record, "finished_at": "2026-12-01T00:00:00+00:00"}))
    runs = sources.runs(root)
    assert [r.run_id for r in runs] == ["newer", "older"]
    assert runs[0].confusion("logreg").name == "confusion_logreg.png" and runs[0].figure("leaderboard.png")
    by_stream = sources.champion(runs, "tweet-sentiment:new")
    assert (by_stream["run"], by_stream["model"]) == ("newer", "linearsvc") and "stream" in by_stream["how"]
    latest_success = sources.champion(runs, "tweet-sentiment:unknown")
    assert (latest_success["run"], latest_success["model"]) == ("older", "logreg")
    assert latest_success["reference"]["n"] == 1000
    (root / "older" / "run.json").unlink()  # leaderboards written by `python -m ml evaluate` alone
    (newer / "run.json").unlink()
    fallback = sources.champion(sources.runs(root))
    assert fallback["model"] == "logreg" and fallback["how"] == "the newest leaderboard"
