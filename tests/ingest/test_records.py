"""The landing record: scrubbed strings, one JSON line per post, keyword matching, timestamps."""

from __future__ import annotations

import json

import pytest

from spark_apps.ingest.records import KeywordMatcher, iso_utc, make_record, parse_keywords, parse_time, scrub, to_line

ODD = "line one\nline two\r\n\"quoted\" \\ back\ttab 😀 zero\u200bwidth\u200d joiner \u2028sep\u2029 nel\x85 end"


def test_scrub_replaces_lone_surrogates_and_joins_pairs():
    assert scrub("plain") == "plain"
    assert scrub("a\ud83d\ude00b") == "a😀b"  # a pair held as two code points becomes its character
    assert scrub("x\ud83dy\ude00z\udc80") == "x\ufffdy\ufffdz\ufffd"
    scrub("x\ud83dy").encode("utf-8")  # valid UTF-8 afterwards


def test_to_line_is_one_intact_line():
    record = make_record(id="1", text=ODD + "\ud800", source="replay", keyword="cats", lang="en", author_id="7")
    line = to_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line
    text = line.decode("utf-8")
    assert len(text.splitlines()) == 1, "no Unicode line break (U+2028, U+2029, U+0085) left raw"
    back = json.loads(text)
    assert back["text"] == ODD + "\ufffd"
    assert list(back) == ["id", "text", "created_at", "keyword", "lang", "author_id", "source", "ingest_ts"]


def test_record_fields_and_times():
    record = make_record(id=12, text="hi", source="x", created_at=parse_time("2024-01-15T10:35:00.000Z"),
                         keyword=" ", lang="", author_id=None)
    assert record["id"] == "12" and record["keyword"] is None and record["lang"] is None
    assert record["created_at"] == "2024-01-15T10:35:00.000Z"
    assert record["ingest_ts"].endswith("Z") and len(record["ingest_ts"]) == len("2026-12-01T08:00:00.123Z")
    assert parse_time("2024-11-20T18:41:22.5+02:00") == "2024-11-20T16:41:22.500Z"
    assert parse_time("not a time") is None and parse_time(None) is None
    with pytest.raises(ValueError):
        make_record(id="1", text="t", source="kafka")
    from datetime import datetime

    assert iso_utc(datetime(2026, 12, 1, 8, 0, 0, 123456)) == "2026-12-01T08:00:00.123Z"


def test_keywords():
    assert parse_keywords(" cats, Dogs,,CATS , machine learning") == ["cats", "Dogs", "machine learning"]
    m = KeywordMatcher(["cat", "machine learning", "c++"])
    assert m.match("I love my CAT!") == "cat"
    assert m.match("#cat pics") == "cat"
    assert m.match("category theory") is None
    assert m.match("Machine   Learning rocks") == "machine learning"
    assert m.match("writing C++ today") == "c++"
    assert m.match("nothing here", "CAT") == "cat"  # a query or tag equal to a keyword
    assert not KeywordMatcher([])
