"""The job's transforms on small batch DataFrames with a real local SparkSession."""

from __future__ import annotations

import json

import pytest

from ml.text import clean
from spark_apps.stream.landing import post

pytestmark = [pytest.mark.slow, pytest.mark.stream]

GOOD = post("1", "I love this so much", keyword="k", created_at="2009-04-06T22:19:45Z", lang="en", author_id="7")
CASES = [
    (json.dumps(GOOD), None),
    (json.dumps({**GOOD, "id": "2", "text": "", "keyword": None, "extra": [1]}), None),
    ("", "blank line"),
    ("{not json", "bad JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({**GOOD, "id": 3}), "id: expected a string, got BIGINT"),
    (json.dumps({**GOOD, "id": ""}), "no id"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "text"}), "no text"),
    (json.dumps({**GOOD, "text": None}), "no text"),
    (json.dumps({**GOOD, "text": ["a"]}), "text: expected a string, got ARRAY<STRING>"),
    (json.dumps({**GOOD, "keyword": 5}), "keyword: expected a string, got BIGINT"),
    (json.dumps({**GOOD, "created_at": "yesterday"}), "created_at: not an ISO-8601 timestamp"),
    (json.dumps({**GOOD, "ingest_ts": None}), "no ingest_ts"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "source"}), "no source"),
]


def lines_df(spark, lines):
    return spark.createDataFrame([(line, "f.jsonl") for line in lines], "value string, file string")


def test_each_malformed_line_gets_its_reason(spark):
    from spark_apps.stream.quality import dead_letters, parse_lines, valid_posts

    parsed = parse_lines(lines_df(spark, [line for line, _ in CASES]))
    got = {row["raw"]: row["reason"] for row in parsed.collect()}
    assert got == {line: reason for line, reason in CASES}
    posts = {row["id"]: row for row in valid_posts(parsed).collect()}
    assert set(posts) == {"1", "2"}
    assert posts["1"]["created_at"].isoformat() == "2009-04-06T22:19:45"
    assert posts["2"]["text"] == "" and posts["2"]["keyword"] is None
    letters = dead_letters(parsed).collect()
    assert len(letters) == len(CASES) - 2 and {r["file"] for r in letters} == {"f.jsonl"}
    assert all(r["received_ts"] is not None and r["date"] is not None for r in letters)


def test_dedup_keeps_one_row_per_id(spark):
    from spark_apps.stream.pipeline import dedup
    from spark_apps.stream.quality import parse_lines, valid_posts

    lines = [json.dumps(post(str(i % 3), f"text {i}")) for i in range(9)]
    rows = dedup(valid_posts(parse_lines(lines_df(spark, lines))), 24).collect()
    assert sorted(r["id"] for r in rows) == ["0", "1", "2"]


def test_scored_posts_with_the_local_scorer(spark, stream_model):
    from spark_apps.stream.pipeline import scored_posts
    from spark_apps.stream.schema import OUTPUT_DDL, columns
    from spark_apps.stream.scoring import LocalConfig

    texts = ["I love this so much", "what a terrible day", "zyxw qvut", "http://t.co/x", ""]
    lines = [json.dumps(post(str(i), t, keyword="k" if i % 2 else None)) for i, t in enumerate(texts)]
    lines += [json.dumps(post("0", "I love this so much")), "oops"]
    config = LocalConfig(model_path=stream_model["path"], tag=stream_model["tag"], band=(0.4, 0.6), chunk=2)
    out = scored_posts(lines_df(spark, lines), config, 24)
    assert out.columns == columns(OUTPUT_DDL)
    rows = {r["id"]: r for r in out.collect()}
    assert sorted(rows) == ["0", "1", "2", "3", "4"]
    assert [rows[str(i)]["label"] for i in range(5)] == ["Positive", "Negative", "Neutral", "Neutral", "Neutral"]
    assert 0.4 <= rows["2"]["p_positive"] <= 0.6
    assert rows["3"]["p_positive"] is None and rows["4"]["p_positive"] is None  # nothing left after cleaning
    for i, text in enumerate(texts):
        row = rows[str(i)]
        assert row["clean_text"] == clean(text) and row["model"] == stream_model["tag"] and row["scores"] is None
        assert row["scored_ts"] >= row["ingest_ts"] and row["date"] == row["ingest_ts"].date()


def test_dedup_window_in_a_stream(spark, tmp_path):
    """A re-delivery within W of the first copy is dropped; once the state is evicted (W to 2W later) the id
    would be written again: the guarantee's window, and the state stays bounded."""
    import time

    from spark_apps.stream.landing import write_landing
    from spark_apps.stream.pipeline import dedup
    from spark_apps.stream.quality import parse_lines, valid_posts

    landing, seen = tmp_path / "landing", []
    landing.mkdir()
    window_s = 2.0
    lines = spark.readStream.format("text").load(str(landing)).select("value")
    query = (dedup(valid_posts(parse_lines(lines, file=None)), window_s / 3600).writeStream
             .foreachBatch(lambda df, _: seen.extend(r["id"] for r in df.collect())).start())
    try:
        def deliver(*ids: str) -> None:
            write_landing(landing, [post(i, "text") for i in ids])
            query.processAllAvailable()

        deliver("x", "x", "y")  # two copies in one micro-batch
        deliver("x")  # again, well within W
        assert sorted(seen) == ["x", "y"]
        time.sleep(2 * window_s + 0.5)
        deliver("z")  # moves the watermark past x's expiry: x's state is evicted
        deliver("x")
        assert sorted(seen) == ["x", "x", "y", "z"]
        state = query.lastProgress["stateOperators"][0]
        assert state["numRowsTotal"] <= 2  # bounded: only ids seen within the window are kept
    finally:
        query.stop()


def test_a_committed_batch_the_status_missed_is_recounted(spark, tmp_path):
    """A driver killed between Spark's commit and the status write: the next one counts that batch from disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spark_apps.stream.landing import write_landing
    from spark_apps.stream.paths import StreamPaths
    from spark_apps.stream.run import catch_up
    from spark_apps.stream.status import StreamStatus

    paths = StreamPaths.under(tmp_path / "s")
    landing = write_landing(paths.landing, [post("a", "x"), post("b", "y"), post("a", "x again"), "{oops"])
    part = paths.output / "date=2026-12-01" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a", "b"]}), part)
    for folder, entry in ((paths.main_checkpoint / "sources" / "0", {"path": f"file://{landing}", "batchId": 0}),
                          (paths.output / "_spark_metadata", {"path": f"file://{part}", "action": "add"}),
                          (paths.main_checkpoint / "commits", {"nextBatchWatermarkMs": 0})):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "0").write_text("v1\n" + json.dumps(entry) + "\n")
    status = StreamStatus(paths.status, "s", config={}, paths={})
    catch_up(spark, status, paths)
    assert status.doc["batch_id"] == 0 and status.doc["totals_exact"]
    assert status.doc["totals"] == {"rows_in": 4, "written": 2, "dead_letters": 1, "duplicates": 1,
                                    "late_rows_dropped": 0, "batches": 1}
