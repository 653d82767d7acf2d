"""The daily report DAG for real (``airflow dags test sentiment_daily_report <date>``) over fixture output in the
Spark sink's layout: two logical dates, their partitions' content against the fixture, and a re-run that leaves
identical files. (A day without posts: tests/dags/test_stream_units.py; a real ``airflow backfill create`` with a
running scheduler: tests/platform, on the platform ``make up`` starts.)"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from airflow_harness import airflow_env, asset_events, dags_test, tail
from dashboard.stream_fixtures import MODEL, post, reference_profile, write_output, write_run

from ml.drift import compare, profile

pytestmark = pytest.mark.slow
DAG_ID = "sentiment_daily_report"
#: Posts per (day, keyword, hour, label).
PLAN = {
    date(2026, 11, 29): {("kindle", 9, "Positive"): 5, ("kindle", 9, "Negative"): 2, ("kindle", 14, "Neutral"): 3,
                         ("obama", 14, "Negative"): 4, (None, 23, "Positive"): 1},
    date(2026, 11, 30): {("kindle", 0, "Positive"): 2, ("obama", 12, "Positive"): 6, ("obama", 12, "Negative"): 1},
}


def fixture_rows() -> list[dict]:
    rng = random.Random(11)
    rows = []
    for day, cells in PLAN.items():
        for (keyword, hour, label), n in cells.items():
            for i in range(n):
                moment = datetime(day.year, day.month, day.day, hour, 5 + i, tzinfo=UTC)
                rows.append(post(moment, keyword, label, rng=rng))
    rows.append({**rows[0], "ingest_ts": rows[0]["ingest_ts"] + timedelta(minutes=1)})  # a re-delivered post id
    return rows


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_two_dates_and_an_identical_rerun(airflow_home, tmp_path):
    home = tmp_path / "home"
    stream = home / "stream" / "tweets"
    rows = fixture_rows()
    write_output(stream / "output", rows[:30], batch=0)
    write_output(stream / "output", rows[30:], batch=1)
    (stream / "output" / "date=2026-11-29" / "keyword=kindle" / "part-99999-uncommitted.c000.snappy.parquet") \
        .write_bytes(b"not committed: a killed batch's leftover")  # not in _spark_metadata: never read
    write_run(home / "reports", "run-a", model_tag=MODEL)  # the champion's validation profile
    env = airflow_env(home, airflow_home)
    reports = stream / "reports"
    for day in ("2026-11-29", "2026-11-30"):
        done = dags_test(env, DAG_ID, {}, logical_date=day, log=tmp_path / f"{day}.log")
        assert done.returncode == 0, tail(done.stdout + done.stderr)

    for day, cells in PLAN.items():
        folder = reports / f"date={day.isoformat()}"
        assert sorted(p.name for p in folder.iterdir()) == ["chart.png", "hourly.parquet", "summary.json"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["stream"] == "tweets" and summary["date"] == day.isoformat()
        assert summary["rows"] == sum(cells.values()) and summary["reference_model"] == MODEL
        assert summary["duplicates_dropped"] == (1 if day == date(2026, 11, 29) else 0)
        for keyword in {k for k, _, _ in cells}:
            counts = {label: sum(n for (k, _, lab), n in cells.items() if k == keyword and lab == label)
                      for label in ("Negative", "Neutral", "Positive")}
            entry = summary["by_keyword"][keyword or "(none)"]
            assert entry["counts"] == counts
            assert entry["shares"] == {k: round(v / sum(counts.values()), 6) for k, v in counts.items()}
            mine = [r for r in rows[:-1] if r["keyword"] == keyword and r["ingest_ts"].date() == day]
            assert entry["mean_p_positive"] == pytest.approx(sum(r["p_positive"] for r in mine) / len(mine), abs=1e-6)
        live = profile([r["label"] for r in rows[:-1] if r["ingest_ts"].date() == day],
                       [r["p_positive"] for r in rows[:-1] if r["ingest_ts"].date() == day])
        assert summary["drift"] == compare(reference_profile(), live)  # PSI and JS, thresholds 0.2 / 0.1
        hourly = pq.read_table(folder / "hourly.parquet").to_pylist()
        assert {(r["keyword"], r["hour"], r["label"]): r["count"] for r in hourly} == cells
        for r in hourly:
            same_hour = sum(n for (k, h, _), n in cells.items() if k == r["keyword"] and h == r["hour"])
            assert r["share"] == round(r["count"] / same_hour, 6)
        assert (folder / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    events = asset_events(airflow_home, "sentiment_daily_report")[-2:]
    assert [(e["date"], e["rows"], e["stream"]) for e in events] == [("2026-11-29", 15, "tweets"),
                                                                      ("2026-11-30", 9, "tweets")]

    # a re-run of a date replaces its partition with the very same bytes
    before = digest(reports / "date=2026-11-29")
    done = dags_test(env, DAG_ID, {}, logical_date="2026-11-29", log=tmp_path / "rerun.log")
    assert done.returncode == 0, tail(done.stdout + done.stderr)
    assert digest(reports / "date=2026-11-29") == before
    assert sorted(p.name for p in reports.iterdir()) == ["date=2026-11-29", "date=2026-11-30"]  # no temp folders
