"""The Live and Drift pages' queries on fixture parquet in the Spark sink's layout: windows, buckets, latest posts,
profiles, the past-day cache, partition layouts, and no data at all."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stream_fixtures import SCHEMA, post, sample_rows, write_output

from ml.drift import profile as drift_profile
from serving.dashboard.queries import WINDOWS, Layout, StreamReader, window_bounds


def expected_counts(rows, start, end) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for r in rows:
        if start <= r["ingest_ts"] < end:
            counts[(r["keyword"], r["label"])] = counts.get((r["keyword"], r["label"]), 0) + 1
    return counts


def as_counts(series: pd.DataFrame) -> dict[tuple, int]:
    grouped = series.groupby(["keyword", "label"], dropna=False)["n"].sum()
    return {(None if pd.isna(k) else k, lab): int(n) for (k, lab), n in grouped.items()}


@pytest.fixture
def output(tmp_path, now):
    rows = sample_rows(now)
    write_output(tmp_path / "output", rows)
    return tmp_path / "output", rows


def test_layout_reads_partitions_and_ignores_spark_metadata_and_crc(output, now):
    out, rows = output
    layout = Layout.detect(out)
    assert layout.keys == ("date", "keyword")
    assert (out / "_spark_metadata" / "0").is_file()
    files = layout.files()
    assert files and all(os.path.basename(f).startswith("part-") and f.endswith(".parquet") for f in files)
    assert not any("_spark_metadata" in f or f.endswith(".crc") for f in files)
    assert layout.dates()[-1] == max(r["ingest_ts"].date() for r in rows)
    today = layout.files({now.date()})
    assert today and all(f"date={now.date().isoformat()}" in f for f in today)


@pytest.mark.parametrize("window", list(WINDOWS))
def test_every_window_counts_what_the_fixture_holds(output, now, window):
    out, rows = output
    start, end, bucket_s = window_bounds(window, now)
    series = StreamReader(out).series(window, now)
    assert as_counts(series) == expected_counts(rows, start, end)
    assert (series["bucket"].astype("int64") // 10**6 % bucket_s == 0).all(), "buckets start on a multiple of the size"
    assert series["bucket"].min() >= pd.Timestamp(start) and series["bucket"].max() < pd.Timestamp(end)


def test_sums_of_p_positive_and_missing_probabilities(output, now):
    out, rows = output
    start, end, _ = window_bounds("1h", now)
    series = StreamReader(out).series("1h", now)
    inside = [r for r in rows if start <= r["ingest_ts"] < end]
    assert series["sum_p"].sum() == pytest.approx(sum(r["p_positive"] for r in inside if r["p_positive"] is not None))
    assert int(series["n_p"].sum()) == sum(r["p_positive"] is not None for r in inside)
    assert int(series["n"].sum()) == len(inside)  # the post with nothing left of its text is counted, not averaged


def test_window_bounds_align_to_buckets():
    now = datetime(2026, 12, 1, 10, 7, 31, tzinfo=UTC)
    assert window_bounds("1h", now) == (datetime(2026, 12, 1, 9, 7, tzinfo=UTC), now, 60)
    assert window_bounds("24h", now)[0] == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown window"):
        window_bounds("2h", now)


def test_past_days_are_cached_until_their_folder_changes(output, now):
    out, rows = output
    reader = StreamReader(out)
    first = reader.series("7d", now)
    cached = reader.cache_info()
    assert cached["entries"] >= 1
    again = reader.series("7d", now)
    pd.testing.assert_frame_equal(first.sort_values(list(first.columns)).reset_index(drop=True),
                                  again.sort_values(list(again.columns)).reset_index(drop=True))
    assert reader.cache_info() == cached, "a second refresh reads past days from the cache"
    two_days_ago = now - timedelta(days=2)
    late = [post(two_days_ago.replace(minute=30), "kindle", "Neutral")]
    write_output(out, late, batch=1)  # a late file in a past day's partition changes its folder's mtime
    later = reader.series("7d", now)
    assert int(later["n"].sum()) == int(first["n"].sum()) + 1
    assert reader.cache_info()["entries"] == cached["entries"], "the day's old entry was replaced, not added"


def test_the_cache_is_bounded(output, now):
    out, _ = output
    reader = StreamReader(out, cache_entries=3)
    reader.series("30d", now)
    reader.series("7d", now)
    assert reader.cache_info()["entries"] <= 3


def test_latest_posts_newest_first_with_scores_and_keyword_filter(output, now):
    out, rows = output
    reader = StreamReader(out)
    latest = reader.latest(5)
    newest = sorted(rows, key=lambda r: r["ingest_ts"], reverse=True)[:5]
    assert latest["text"].tolist() == [r["text"] for r in newest]
    assert latest["ingest_ts"].is_monotonic_decreasing and str(latest["ingest_ts"].dt.tz) == "UTC"
    three_class = latest[latest["scores"].map(lambda s: isinstance(s, dict))]
    assert three_class["scores"].iloc[0] == {"Positive": 0.8, "Negative": 0.05, "Neutral": 0.15}
    obama = reader.latest(3, keyword="obama")
    assert len(obama) == 3 and set(obama["keyword"]) == {"obama"}
    assert len(reader.latest(1000)) == len(rows)


def test_latest_posts_come_from_older_days_when_today_is_empty(tmp_path, now):
    old = [post(now - timedelta(days=3, minutes=i), "kindle", "Positive") for i in range(4)]
    write_output(tmp_path / "out", old)
    (tmp_path / "out" / f"date={now.date().isoformat()}").mkdir()  # an empty partition folder
    latest = StreamReader(tmp_path / "out").latest(10)
    assert len(latest) == 4
    assert StreamReader(tmp_path / "out").series("1h", now).empty


def test_profile_is_the_drift_profile_of_the_window(output, now):
    out, rows = output
    start, end, _ = window_bounds("24h", now)
    inside = [r for r in rows if start <= r["ingest_ts"] < end]
    expected = drift_profile([r["label"] for r in inside], [r["p_positive"] for r in inside])
    assert StreamReader(out).profile("24h", now) == expected


def test_no_output_at_all(tmp_path, now):
    reader = StreamReader(tmp_path / "missing")
    assert reader.series("1h", now).empty and list(reader.series("1h", now).columns) == [
        "bucket", "keyword", "label", "n", "sum_p", "n_p"]
    assert reader.latest(10).empty
    assert reader.profile("1h", now) == {"labels": {"Negative": 0, "Neutral": 0, "Positive": 0},
                                         "score_hist": [0] * 10, "n": 0}
    assert reader.keywords() == []
    (tmp_path / "missing" / "_spark_metadata").mkdir(parents=True)  # the sink started, nothing committed yet
    assert reader.series("24h", now).empty and reader.layout().keys == ()


@pytest.mark.parametrize("partition_by", [("date",), (), ("keyword", "date")])
def test_other_partition_layouts_give_the_same_answers(tmp_path, now, partition_by):
    rows = sample_rows(now)
    write_output(tmp_path / "out", rows, partition_by=partition_by)
    reader = StreamReader(tmp_path / "out")
    assert reader.layout().keys == partition_by
    start, end, _ = window_bounds("24h", now)
    assert as_counts(reader.series("24h", now)) == expected_counts(rows, start, end)
    assert reader.latest(3)["text"].tolist() == [r["text"] for r in sorted(rows, key=lambda r: r["ingest_ts"],
                                                                             reverse=True)[:3]]
    assert set(reader.keywords()) == {"kindle", "obama", "machine learning"}


def test_escaped_keywords_null_keywords_and_utc_adjusted_timestamps(tmp_path, now):
    """Spark escapes '/' and '=' in partition values and names a null one __HIVE_DEFAULT_PARTITION__; files from
    other writers may hold UTC-adjusted microseconds instead of INT96."""
    rows = [post(now - timedelta(minutes=2), "a/b=c", "Positive"), post(now - timedelta(minutes=3), None, "Negative")]
    schema = pa.schema([f for f in SCHEMA if f.name != "keyword"])
    day = tmp_path / "out" / f"date={now.date().isoformat()}"
    for row, name, int96 in ((rows[0], "keyword=a%2Fb%3Dc", False), (rows[1], "keyword=__HIVE_DEFAULT_PARTITION__", True)):
        (day / name).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([{k: row[k] for k in schema.names}], schema=schema),
                       day / name / "part-00000-x.c000.snappy.parquet", use_deprecated_int96_timestamps=int96)
    reader = StreamReader(tmp_path / "out")
    assert reader.keywords() == ["a/b=c"]
    assert as_counts(reader.series("15m", now)) == {("a/b=c", "Positive"): 1, (None, "Negative"): 1}
    assert reader.latest(2)["ingest_ts"].tolist() == [pd.Timestamp(r["ingest_ts"]) for r in rows]


def test_a_busy_day_stays_exact(tmp_path, now):
    rng = random.Random(1)
    rows = [post(now - timedelta(seconds=rng.uniform(1, 3500)), rng.choice(["a", "b", "c"]),
                 rng.choice(["Positive", "Negative", "Neutral"]), rng=rng) for _ in range(3000)]
    write_output(tmp_path / "out", rows, files_per_partition=7)
    start, end, _ = window_bounds("1h", now)
    assert as_counts(StreamReader(tmp_path / "out", threads=1).series("1h", now)) == expected_counts(rows, start, end)


def test_today_is_read_incrementally_and_a_file_still_being_written_waits(output, now, monkeypatch):
    out, rows = output
    reader = StreamReader(out)
    read: list[list[str]] = []
    original = reader._series_files
    monkeypatch.setattr(reader, "_series_files", lambda layout, files, *a: read.append(files) or original(
        layout, files, *a))
    first = int(reader.series("1h", now)["n"].sum())
    assert read and reader.cache_info()["live_files"] == sum(len(f) for f in read)
    read.clear()
    assert int(reader.series("1h", now)["n"].sum()) == first and read == [], "nothing new, nothing read"
    new = [post(now - timedelta(minutes=1), "kindle", "Negative") for _ in range(3)]
    path = write_output(out, new, files_per_partition=1, batch=1)[0]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the sink is still writing it: no footer yet
    assert int(reader.series("1h", now)["n"].sum()) == first and read == []
    assert len(reader.latest(1000)) == len(rows) and reader.profile("1h", now)["n"] == first  # skipped, no error
    path.write_bytes(whole)
    assert int(reader.series("1h", now)["n"].sum()) == first + 3
    assert read == [[str(path)]], "only the new file was read"


def test_latest_posts_read_the_newest_files_first(tmp_path, now, monkeypatch):
    import time

    out = tmp_path / "out"
    for i in range(40):  # forty micro-batches, oldest first
        write_output(out, [post(now - timedelta(minutes=40 - i), "kindle", "Positive", text=f"batch {i}")],
                     files_per_partition=1, batch=i)
        time.sleep(0.002)
    reader = StreamReader(out)
    chunks: list[int] = []
    original = reader._query
    monkeypatch.setattr(reader, "_query", lambda sql, files, *a, **k: chunks.append(len(files)) or original(
        sql, files, *a, **k))
    assert reader.latest(3)["text"].tolist() == ["batch 39", "batch 38", "batch 37"]
    assert chunks == [32]
    chunks.clear()
    assert len(reader.latest(35)) == 35 and chunks == [32, 8]
