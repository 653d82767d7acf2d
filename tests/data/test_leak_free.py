"""Leak-free data: text-level deduplication whatever the id, splits by cleaned text, named validation and test
files, the TweetEval layout, datasets side by side, and sources named by URL."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pandas as pd
import pytest
from fixtures import tag

from ml.data import (
    deduplicate,
    drop_overlap,
    leak_free_split,
    load_split,
    prepare,
    read_manifest,
    read_source,
    read_tweeteval,
)
from ml.errors import DataError
from ml.text import clean


def labelled_tsv(path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")


def three_class_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    words = {"positive": "love it", "negative": "hate it", "neutral": "it is tuesday"}
    labels = ["positive", "neutral", "negative"]
    return [(labels[i % 3], f"{words[labels[i % 3]]} {tag(seed, i)}") for i in range(n)]


def test_dedup_on_text_whatever_the_id():
    df = pd.DataFrame({"id": ["0", "1", "2", "3", "4", "5"],  # numbered rows, as a file without ids gets
                       "text": ["a b", "a b", "c", "c", "d", "  "],
                       "label": ["positive", "positive", "positive", "negative", "negative", "negative"]})
    kept, counts = deduplicate(df)
    assert kept["text"].tolist() == ["a b", "d"]
    assert counts == {"repeated_texts": 2, "duplicate_rows": 1, "conflicting_text_rows": 2, "conflicting_texts": 1,
                      "conflicting_id_rows": 0, "conflicting_ids": 0, "repeated_ids": 0, "empty_text": 1}


def test_split_keeps_every_cleaned_text_in_one_split():
    rows = []
    for i in range(200):
        label = "positive" if i % 2 else "negative"
        base = f"{'great' if i % 2 else 'awful'} {tag(1, i // 4)}"  # four raw variants of each cleaned text
        rows += [(label, base + suffix) for suffix in ("", " http://t.co/x", " @bob", " !!")][: 1 + i % 4]
    df = pd.DataFrame({"id": range(len(rows)), "label": [r[0] for r in rows], "text": [r[1] for r in rows]})
    a, b = leak_free_split(df, 0.25, seed=3)
    assert len(a) + len(b) == len(df)
    assert not {clean(t) for t in a["text"]} & {clean(t) for t in b["text"]}
    assert 0.15 < len(b) / len(df) < 0.35
    assert b["label"].value_counts().min() > 0.3 * len(b)           # stratified by label
    again, _ = leak_free_split(df, 0.25, seed=3)
    assert again.equals(a)                                            # seeded


def test_drop_overlap_counts_rows_whose_cleaned_text_is_taken():
    df = pd.DataFrame({"text": ["Love it! http://x", "love it", "other"], "label": ["positive"] * 3})
    kept, n = drop_overlap(df, pd.DataFrame({"text": ["@a LOVE it"], "label": ["positive"]}))
    assert n == 2 and kept["text"].tolist() == ["other"]


def test_file_without_ids_deduplicates_and_splits_leak_free(settings, tmp_path):
    rows = three_class_rows(300)
    rows += rows[:30]                                                 # 30 duplicate rows
    rows += [("negative", rows[40][1])]                               # a text with two labels
    rows += [(label, text + " http://t.co/x") for label, text in rows[100:130]]  # same cleaned texts
    source = tmp_path / "plain.tsv"
    labelled_tsv(source, rows)
    m = prepare(settings, source)
    assert m["dataset"] == "default" and settings.processed_dir == settings.home / "data" / "processed" / "default"
    assert m["dropped"]["duplicate_rows"] == 30 and m["dropped"]["conflicting_texts"] == 1
    assert m["dropped"]["conflicting_text_rows"] == 2
    assert sum(m["rows"].values()) == len(rows) - 32
    keys = {name: {clean(t) for t in load_split(settings, name)["text"]} for name in ("train", "validation", "test")}
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]


def test_named_validation_and_test_files(settings, tmp_path):
    rows = three_class_rows(300)
    source, val, test = tmp_path / "train.tsv", tmp_path / "val.tsv", tmp_path / "test.tsv"
    labelled_tsv(source, rows)
    labelled_tsv(val, three_class_rows(60, seed=2) + rows[:10])       # 10 rows also in the source
    labelled_tsv(test, three_class_rows(45, seed=3) + rows[10:15] + three_class_rows(60, seed=2)[:4])
    m = prepare(settings, source, validation=val, test=test)
    assert m["rows"] == {"train": 285, "validation": 66, "test": 54}
    assert m["dropped"]["in_test"] == 5 and m["dropped"]["in_validation"] == 10
    assert m["dropped"]["validation_in_test"] == 4
    assert m["files"]["test"]["name"] == "test.tsv" and m["files"]["validation"]["rows_read"] == 70
    assert "validation" in m["params"] and "test" in m["params"]
    assert prepare(settings, source, validation=val, test=test)["created"] == m["created"]  # a no-op again
    assert prepare(settings, source, test=test)["rows"]["validation"] != 66                  # not the same inputs


def test_the_official_test_file_takes_priority_over_training_rows(settings, tmp_path):
    from fixtures import make_s140_zip, s140_rows, to_csv_bytes

    train = s140_rows(200)
    test_rows = s140_rows(60, 1, labels=("0", "2", "4"))
    for i, row in enumerate(test_rows):
        row[1] = str(14_000 + i)
    train[5][5] = test_rows[0][5] + " http://t.co/dup"                 # a training tweet the test file holds
    train[5][0] = test_rows[0][0] if test_rows[0][0] != "2" else "0"
    zip_path = make_s140_zip(tmp_path / "s.zip", train_bytes=to_csv_bytes(train))
    m = prepare(settings, zip_path)
    assert m["dropped"]["in_test"] == 1 and m["rows"]["test"] == 60


def write_tweeteval(folder, split: str, rows: list[tuple[str, str]]) -> None:
    code = {"negative": "0", "neutral": "1", "positive": "2"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mapping.txt").write_text("0\tnegative\n1\tneutral\n2\tpositive\n")
    (folder / f"{split}_text.txt").write_text("".join(f"{text}\n" for _, text in rows), encoding="utf-8")
    (folder / f"{split}_labels.txt").write_text("".join(f"{code[label]}\n" for label, _ in rows))


def test_tweeteval_reader(tmp_path):
    folder = tmp_path / "sentiment"
    write_tweeteval(folder, "test", [("positive", "good &amp; nice"), ("neutral", "ok"), ("negative", "bad")])
    df = read_tweeteval(folder / "test_text.txt")
    assert df.to_dict("list") == {"id": ["test-1", "test-2", "test-3"], "text": ["good & nice", "ok", "bad"],
                                  "label": ["positive", "neutral", "negative"]}
    assert read_source(folder)[0].equals(df) and read_source(folder)[2] == "tweeteval"  # a folder: its test split
    (folder / "test_labels.txt").write_text("2\n1\n")
    with pytest.raises(DataError, match="test_text.txt has 3 lines but test_labels.txt has 2"):
        read_tweeteval(folder / "test_text.txt")
    (folder / "test_labels.txt").write_text("2\n1\n7\n")
    with pytest.raises(DataError, match=r"test_labels.txt: line 3: label '7' is not in mapping.txt"):
        read_tweeteval(folder / "test_text.txt")
    (folder / "mapping.txt").unlink()
    with pytest.raises(DataError, match="no such file.*mapping.txt"):
        read_tweeteval(folder / "test_text.txt")


def test_datasets_side_by_side(settings, tmp_path, s140_zip):
    folder = tmp_path / "tweeteval"
    write_tweeteval(folder, "train", three_class_rows(150))
    default = prepare(settings, s140_zip)
    neutral_settings = settings.override(dataset="neutral", neutral_url=str(folder / "train_text.txt"))
    neutral = prepare(neutral_settings)                               # the neutral source by default
    assert neutral["dataset"] == "neutral" and neutral["labels"] == ["negative", "neutral", "positive"]
    assert neutral["source"]["kind"] == "tweeteval"
    assert read_manifest(settings)["data_version"] == default["data_version"]  # untouched
    assert neutral_settings.processed_dir.parent == settings.processed_dir.parent
    with pytest.raises(DataError, match="SENTIMENT_NEUTRAL_URL"):
        prepare(settings.override(dataset="neutral"))
    with pytest.raises(DataError, match=r"data prepare --dataset other"):
        read_manifest(settings.override(dataset="other"))


@pytest.fixture
def web_folder(tmp_path):
    """A loopback HTTP server over a folder; yields (folder, base URL)."""
    folder = tmp_path / "web"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sources_by_url_fetch_tweeteval_siblings_once(settings, web_folder):
    folder, url = web_folder
    write_tweeteval(folder / "sentiment", "train", three_class_rows(150))
    m = prepare(settings, f"{url}/sentiment/train_text.txt")
    fetched = next((settings.raw_dir / "sources").iterdir())
    assert sorted(p.name for p in fetched.iterdir()) == ["mapping.txt", "train_labels.txt", "train_text.txt"]
    assert m["source"]["kind"] == "tweeteval" and sum(m["rows"].values()) == 150
    with pytest.raises(DataError, match="HTTP 404"):
        prepare(settings, f"{url}/sentiment/nothing.tsv", force=True)


def test_a_sentiment140_zip_validates_with_its_training_file_and_tests_with_its_official_test(settings, tmp_path,
                                                                                             s140_zip):
    source = tmp_path / "plain.tsv"
    labelled_tsv(source, [(label, text) for label, text in three_class_rows(300) if label != "neutral"])
    m = prepare(settings, source, validation=s140_zip, test=s140_zip)
    assert m["rows"]["validation"] == 400 and m["rows"]["test"] == 60
    assert m["label_counts"]["test"] == {"negative": 20, "neutral": 20, "positive": 20}
