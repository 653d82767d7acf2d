"""The replay source end to end into landing files: formats, pacing, loops, keywords, bad rows, restarts, odd posts."""

from __future__ import annotations

import gzip
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from fixtures import make_s140_zip, s140_rows, to_csv_bytes
from ingest_helpers import landed_files, read_landing, wait_until

from ml.settings import get_settings
from spark_apps.ingest.app import ingest
from spark_apps.ingest.state import StreamPaths

ODD_TEXTS = [
    "two\nlines",
    "windows\r\nline end",
    'say "hi" \\ o/',
    "emoji 😀🎉 and flags 🇫🇷",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "separators \u2028 and \u2029 and nel \x85 here",
    "tab\tand control \x01 char",
]


def run(home: Path, file: Path, *, max_posts: int | None = None, stop: threading.Event | None = None,
        **settings) -> dict:
    s = get_settings(home=home, replay_file=file, replay_rate=settings.pop("replay_rate", 0),
                     ingest_rotate_seconds=settings.pop("ingest_rotate_seconds", 0.2), **settings)
    return ingest(s, max_posts=max_posts, stop=stop)


def landing(home: Path, name: str = "tweets") -> Path:
    return StreamPaths(home / "stream" / name).landing


def write_jsonl(path: Path, objects: list) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------- formats
def test_sentiment140_zip_test_then_train(tmp_path):
    zip_path = make_s140_zip(tmp_path / "trainingandtestdata.zip", n_train=40, n_test=6)
    status = run(tmp_path / "home", zip_path)
    records = read_landing(landing(tmp_path / "home"))
    assert status["posts"] == 46 and status["stop_reason"] == "end of input"
    assert [r["id"] for r in records[:6]] == [str(14_000 + i) for i in range(6)], "the test file comes first"
    assert records[6]["id"] == "1000000"
    first = records[0]
    assert first["source"] == "replay" and first["keyword"] is None  # NO_QUERY
    assert first["created_at"] == "2009-04-07T05:19:45.000Z"  # Mon Apr 06 22:19:45 PDT 2009
    assert first["author_id"] == "user0" and first["lang"] is None
    assert "&amp;" not in "".join(r["text"] for r in records), "HTML entities unescaped as for training"
    status = run(tmp_path / "home2", zip_path, replay_s140_files="test")
    assert status["posts"] == 6


def test_sentiment140_csv_and_queries(tmp_path):
    rows = s140_rows(5)
    rows[0][3] = "kindle2"
    rows[1][2] = "Mon May 11 03:17:40 UTC 2009"
    path = tmp_path / "s140.csv"
    path.write_bytes(to_csv_bytes(rows))
    run(tmp_path / "home", path)
    records = read_landing(landing(tmp_path / "home"))
    assert [r["id"] for r in records] == [r[1] for r in rows]
    assert records[0]["keyword"] == "kindle2" and records[1]["created_at"] == "2009-05-11T03:17:40.000Z"


def test_csv_tsv_gz_with_header_and_stable_ids(tmp_path):
    csv_path = tmp_path / "posts.csv"
    csv_path.write_text('text,lang,user\n"hello ""world""\nnext line",en,ann\nsecond post,,bob\n', encoding="utf-8")
    tsv_path = tmp_path / "posts.tsv.gz"
    with gzip.open(tsv_path, "wt", encoding="utf-8") as fh:
        fh.write("id\ttweet\tdate\n7\tfirst tsv\t2024-01-15T10:35:00Z\n8\tsecond tsv\t\n")
    run(tmp_path / "a", csv_path)
    first = read_landing(landing(tmp_path / "a"))
    assert [r["text"] for r in first] == ['hello "world"\nnext line', "second post"]
    assert first[0]["lang"] == "en" and first[0]["author_id"] == "ann" and first[1]["lang"] is None
    ids = [r["id"] for r in first]
    assert ids[0].endswith("-0") and ids[1].endswith("-1") and len(ids[0]) == len("0123456789ab-0")
    run(tmp_path / "b", csv_path)
    assert [r["id"] for r in read_landing(landing(tmp_path / "b"))] == ids, "ids are stable across runs"
    run(tmp_path / "c", tsv_path)
    tsv = read_landing(landing(tmp_path / "c"))
    assert [(r["id"], r["text"], r["created_at"]) for r in tsv] == [
        ("7", "first tsv", "2024-01-15T10:35:00.000Z"), ("8", "second tsv", None)]


def test_jsonl_posts_and_x_payloads(tmp_path):
    path = write_jsonl(tmp_path / "posts.jsonl", [
        {"id": "a1", "text": "a post", "created_at": "2024-11-20T16:41:22.123Z", "keyword": "cats", "lang": "en",
         "author_id": "did:plc:xyz"},
        {"text": "no id here"},
        {"data": {"id": "1234567890", "text": "from X", "author_id": "9876543210", "lang": "en",
                  "created_at": "2024-01-15T10:35:00.000Z", "edit_history_tweet_ids": ["1234567890"]},
         "matching_rules": [{"id": "1273026480692322304", "tag": "cats"}]},
    ])
    run(tmp_path / "home", path)
    a, b, x = read_landing(landing(tmp_path / "home"))
    assert a == {**a, "id": "a1", "keyword": "cats", "lang": "en", "author_id": "did:plc:xyz",
                 "created_at": "2024-11-20T16:41:22.123Z"}
    assert b["id"].endswith("-1") and b["created_at"] is None
    assert (x["id"], x["keyword"], x["author_id"]) == ("1234567890", "cats", "9876543210")


# ------------------------------------------------------------------------------------- pacing, loops, filter
def test_rate_is_steady(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": str(i), "text": f"post {i}"} for i in range(100)])
    start = time.monotonic()
    run(tmp_path / "home", path, replay_rate=200)
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 2.0, elapsed
    from datetime import datetime

    stamps = [datetime.fromisoformat(r["ingest_ts"]) for r in read_landing(landing(tmp_path / "home"))]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps) < 0.2, "steady pacing, no bursts"
    assert 0.2 <= (stamps[50] - stamps[0]).total_seconds() <= 0.5


def test_loop_gives_new_ids_each_pass(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "text": f"post {k}"} for k in "abcde"])
    status = run(tmp_path / "home", path, replay_loop=True, max_posts=12)
    ids = [r["id"] for r in read_landing(landing(tmp_path / "home"))]
    assert ids == list("abcde") + [f"{k}-p1" for k in "abcde"] + ["a-p2", "b-p2"]
    assert status["stop_reason"] == "max posts (12)" and status["state"]["pass"] == 2


def test_keyword_filter(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "1", "text": "I love my Kindle!"}, {"id": "2", "text": "kindled a fire"},
        {"id": "3", "text": "nothing", "keyword": "KINDLE"}, {"id": "4", "text": "about #Obama today"},
        {"id": "5", "text": "unrelated"}])
    status = run(tmp_path / "home", path, stream_keywords="kindle, obama")
    records = read_landing(landing(tmp_path / "home"))
    assert [(r["id"], r["keyword"]) for r in records] == [("1", "kindle"), ("3", "kindle"), ("4", "obama")]
    assert status["filtered"] == 2


def test_bad_rows_are_skipped_and_counted(tmp_path, caplog):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(b"id,text\n1,good one\n2,\n3,caf\xe9 latin-1 byte\n4,good two\n")
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"id":"1","text":"ok"}\nnot json\n{"id":"3"}\n{"id":"4","text":"\xff\xfe"}\n[1,2]\n'
                      b'{"id":"6","text":"also ok"}\n')
    status = run(tmp_path / "a", csv_path)
    assert [r["id"] for r in read_landing(landing(tmp_path / "a"))] == ["1", "4"] and status["bad"] == 2
    status = run(tmp_path / "b", jsonl)
    assert [r["id"] for r in read_landing(landing(tmp_path / "b"))] == ["1", "6"] and status["bad"] == 4
    assert "row 2 skipped: missing text" in caplog.text and "undecodable" in caplog.text


def test_a_file_without_text_column_fails_with_one_line(tmp_path):
    from ml.errors import DataError

    path = tmp_path / "nope.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no text column"):
        run(tmp_path / "home", path)


# ---------------------------------------------------------------------------------------------- restarts
def test_restart_continues_without_gap_or_duplicate(tmp_path):
    zip_path = make_s140_zip(tmp_path / "trainingandtestdata.zip", n_train=300, n_test=20)
    home = tmp_path / "home"
    first = run(home, zip_path, max_posts=137, ingest_rotate_bytes=2000)
    assert first["posts"] == 137 and first["state"]["row"] == 137
    state = json.loads((home / "stream/tweets/ingest/state.json").read_text())
    assert state["replay"]["row"] == 137 and state["version"] == 1
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)  # stopped by a "signal" mid-way, at 200 posts/s
    timer.start()
    second = run(home, zip_path, replay_rate=200, stop=stop)
    timer.join()
    assert second["stop_reason"] == "stopped" and 137 < second["state"]["row"] < 320
    run(home, zip_path)
    ids = [r["id"] for r in read_landing(landing(home))]
    expected = [str(14_000 + i) for i in range(20)] + [str(1_000_000 + i) for i in range(300)]
    assert ids == expected, "no gap, no duplicate, in order"
    assert run(home, zip_path)["posts"] == 0, "a finished replay stays finished"
    status = json.loads((home / "stream/tweets/ingest/status.json").read_text())
    assert status["running"] is False and status["state"]["row"] == 320


# ------------------------------------------------------------------------------------------------ odd posts
def test_odd_posts_arrive_as_one_intact_record_each(tmp_path):
    lines = [json.dumps({"id": f"odd{i}", "text": t}) for i, t in enumerate(ODD_TEXTS)]
    lines.append('{"id": "lone", "text": "high \\ud83d alone, low \\ude00 alone, pair \\ud83d\\ude00 ok"}')
    (tmp_path / "odd.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv_path = tmp_path / "odd.csv"
    csv_path.write_text('id,text\nc1,"multi\nline ""quoted"" 😀"\n', encoding="utf-8")
    run(tmp_path / "home", tmp_path / "odd.jsonl")
    run(tmp_path / "home", csv_path)  # same stream: different file, so it starts from its beginning
    records = {r["id"]: r["text"] for r in read_landing(landing(tmp_path / "home"))}
    for i, text in enumerate(ODD_TEXTS):
        assert records[f"odd{i}"] == text
    assert records["lone"] == "high \ufffd alone, low \ufffd alone, pair 😀 ok"
    assert records["c1"] == 'multi\nline "quoted" 😀'
    raw = b"".join(p.read_bytes() for p in landed_files(landing(tmp_path / "home")))
    assert raw.count(b"\n") == len(records) and b"\xed\xa0" not in raw, "valid UTF-8, one line per post"
    raw.decode("utf-8")


@pytest.mark.slow
def test_spark_reads_the_landing_folder(tmp_path):
    """The contract with the Spark job: its file source with an explicit schema reads every post whole."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    lines = [json.dumps({"id": f"odd{i}", "text": t, "created_at": "2024-01-15T10:35:00.000Z"})
             for i, t in enumerate(ODD_TEXTS)]
    lines.append('{"id": "lone", "text": "lone \\ud83d surrogate"}')
    (tmp_path / "odd.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    run(home, tmp_path / "odd.jsonl")
    folder = landing(home)
    (folder / ".part-1-999999-1.jsonl.tmp").write_text('{"id": "partial", "te')  # a file being written
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(name, StringType()) for name in
                         ("id", "text", "created_at", "keyword", "lang", "author_id", "source", "ingest_ts",
                          "_corrupt_record")])
    spark = (SparkSession.builder.master("local[1]").appName("ingest-landing-test")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .getOrCreate())
    try:
        stream = spark.readStream.schema(schema).option("columnNameOfCorruptRecord", "_corrupt_record").json(str(folder))
        query = (stream.writeStream.format("memory").queryName("landed").trigger(availableNow=True)
                 .option("checkpointLocation", str(tmp_path / "checkpoint")).start())
        query.awaitTermination(120)
        rows = {r["id"]: r.asDict() for r in spark.sql("select * from landed").collect()}
    finally:
        spark.stop()
    assert set(rows) == {f"odd{i}" for i in range(len(ODD_TEXTS))} | {"lone"}, "hidden files are not read"
    assert all(r["_corrupt_record"] is None for r in rows.values())
    for i, text in enumerate(ODD_TEXTS):
        assert rows[f"odd{i}"]["text"] == text
    assert rows["lone"]["text"] == "lone \ufffd surrogate"
    assert rows["odd0"]["source"] == "replay" and rows["odd0"]["created_at"] == "2024-01-15T10:35:00.000Z"


def test_from_start_plays_a_finished_replay_again(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "text": f"post {k}"} for k in "abc"])
    home = tmp_path / "home"
    assert run(home, path)["posts"] == 3
    assert run(home, path)["posts"] == 0
    s = get_settings(home=home, replay_file=path, replay_rate=0)
    assert ingest(s, from_start=True)["posts"] == 3


def test_one_ingest_per_stream(tmp_path):
    from spark_apps.ingest.errors import IngestError

    path = write_jsonl(tmp_path / "p.jsonl", [{"id": str(i), "text": f"post {i}"} for i in range(100)])
    home = tmp_path / "home"
    stop = threading.Event()
    first = threading.Thread(target=run, args=(home, path), kwargs={"replay_rate": 50, "stop": stop})
    first.start()
    lock = home / "stream/tweets/ingest/ingest.lock"
    wait_until(lambda: lock.exists() and lock.read_text(), what="the first ingest's lock")
    try:
        with pytest.raises(IngestError, match="another ingest of this stream is running"):
            run(home, path)
    finally:
        stop.set()
        first.join(10)
    assert run(home, path)["posts"] > 0, "the lock is released when the first one stops"
