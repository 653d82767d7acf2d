"""Prepare: exact parsing, drops, validation, splits, manifest, and every bad input failing cleanly."""

from __future__ import annotations

import gzip
import json
import zipfile

import pandas as pd
import pytest
from fixtures import make_s140_zip, s140_rows, tag, to_csv_bytes

from ml.data import load_split, prepare, read_labelled, read_manifest
from ml.errors import DataError


def test_prepare_outputs_and_manifest(prepared):
    s = prepared
    manifest = read_manifest(s)
    assert manifest["rows"] == {"train": 320, "validation": 80, "test": 60}
    assert manifest["label_counts"]["train"] == {"negative": 160, "positive": 160}  # stratified
    assert manifest["label_counts"]["test"] == {"negative": 20, "neutral": 20, "positive": 20}
    assert manifest["labels"] == ["negative", "positive"]
    assert len(manifest["data_version"]) == 12 and manifest["params"]["seed"] == 42
    train = load_split(s, "train")
    assert list(train.columns) == ["id", "date", "user", "text", "label"]
    assert not train["text"].str.contains("&amp;").any(), "HTML entities are unescaped"
    # Shuffled: the source is sorted by label, the split must not be.
    assert train["label"].head(40).nunique() == 2
    assert set(train["id"]).isdisjoint(load_split(s, "validation")["id"])


def test_same_input_same_version_and_rerun_is_noop(settings, s140_zip):
    first = prepare(settings, s140_zip)
    mtime = (settings.processed_dir / "train.parquet").stat().st_mtime_ns
    again = prepare(settings, s140_zip)
    assert again["data_version"] == first["data_version"]
    assert (settings.processed_dir / "train.parquet").stat().st_mtime_ns == mtime
    forced = prepare(settings, s140_zip, force=True)
    assert forced["content_hash"] == first["content_hash"], "deterministic given the seed"


def test_seed_changes_split(settings, s140_zip):
    from ml.settings import get_settings

    a = prepare(settings, s140_zip)
    b = prepare(get_settings(home=settings.home / "other", seed=7), s140_zip)
    assert a["content_hash"] != b["content_hash"]


def test_duplicates_and_conflicts_are_dropped_and_counted(settings, tmp_path):
    rows = s140_rows(200)
    rows.append(list(rows[0]))  # exact duplicate
    conflict = list(rows[150])
    conflict[0] = "0" if conflict[0] == "4" else "4"
    rows.append(conflict)  # same text, other label: both rows go
    repeat = list(rows[10])
    repeat[5] = "a different text for the same id"
    rows.append(repeat)  # same id and label, other text: keep the first
    copy = list(rows[20])
    copy[1] = "999999"
    rows.append(copy)  # same text and label under another id: a duplicate all the same
    other = list(rows[30])
    other[0], other[5] = ("0" if other[0] == "4" else "4"), "yet another text"
    rows.append(other)  # same id, other text and label: both rows go
    z = make_s140_zip(tmp_path / "dups.zip", train_bytes=to_csv_bytes(rows))
    m = prepare(settings, z)
    assert m["dropped"] == {"repeated_texts": 3, "duplicate_rows": 2, "conflicting_text_rows": 2,
                            "conflicting_texts": 1, "conflicting_id_rows": 2, "conflicting_ids": 1, "repeated_ids": 1,
                            "empty_text": 0, "official_test": 0, "in_test": 0}
    assert m["rows_read"] == 205
    assert sum(m["rows"][k] for k in ("train", "validation")) == 198


def test_kaggle_layout_without_test_file(settings, tmp_path):
    z = make_s140_zip(tmp_path / "sentiment140.zip", with_test=False)
    m = prepare(settings, z)
    assert m["rows"]["test"] > 0 and sum(m["rows"].values()) == 400


def _assert_no_output(settings):
    assert not settings.processed_dir.exists() or not list(settings.processed_dir.glob("*.parquet"))
    assert not list(settings.data_dir.glob("**/*.tmp")) if settings.data_dir.exists() else True


@pytest.mark.parametrize(
    ("train_bytes", "message"),
    [
        (b'"0","1","d","NO_QUERY","u"\n', r"line 1: expected 6 columns"),
        (to_csv_bytes(s140_rows(20)) + b'"1","99","d","NO_QUERY","u","text"\n', r"line 21: unknown polarity '1'"),
        (to_csv_bytes(s140_rows(20)) + b'"4","x9","d","NO_QUERY","u","text"\n', r"line 21: id 'x9' is not an integer"),
        (b"", r"the file is empty"),
        (b'"0","1","d","NO_QUERY","u","te"xt"\n', r"line 1: malformed csv"),
        (b'"0","1","d","NO_QUERY","u","a\x00b"\n', r"line 1: NUL byte"),
    ],
)
def test_bad_sentiment140_rows(settings, tmp_path, train_bytes, message):
    z = make_s140_zip(tmp_path / "bad.zip", train_bytes=train_bytes)
    with pytest.raises(DataError, match=message) as err:
        prepare(settings, z)
    assert "bad.zip:training.1600000.processed.noemoticon.csv" in str(err.value), "names file"
    _assert_no_output(settings)


def test_truncated_zip(settings, s140_zip, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(s140_zip.read_bytes()[:-200])
    with pytest.raises(DataError, match="cut.zip"):
        prepare(settings, cut)
    _assert_no_output(settings)


def test_corrupt_member(settings, tmp_path):
    z = make_s140_zip(tmp_path / "crc.zip", n_train=4000)
    data = bytearray(z.read_bytes())
    data[200:260] = bytes(60)  # damage compressed bytes of the first member
    z.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"crc.zip.*(corrupt|truncated|malformed|CRC)"):
        prepare(settings, z)


def test_failed_prepare_keeps_previous_good_output(prepared, tmp_path):
    before = read_manifest(prepared)
    bad = make_s140_zip(tmp_path / "bad.zip", train_bytes=b'"9","1","d","q","u","t"\n')
    with pytest.raises(DataError):
        prepare(prepared, bad)
    assert read_manifest(prepared) == before
    assert len(load_split(prepared, "train")) == 320


def test_single_class_rejected(settings, tmp_path):
    rows = [r for r in s140_rows(100) if r[0] == "0"]
    with pytest.raises(DataError, match="only one class"):
        prepare(settings, make_s140_zip(tmp_path / "one.zip", train_bytes=to_csv_bytes(rows)))


def test_missing_input(settings):
    with pytest.raises(DataError, match="data download"):
        prepare(settings)


# ------------------------------------------------------------------- generic labelled files
def test_semeval_style_tsv_three_classes(settings, tmp_path):
    tsv = tmp_path / "train.tsv"
    labels = ["positive", "neutral", "negative"] * 40
    tsv.write_text("".join(f"{1000 + i}\t{lab}\tsome {lab} tweet {tag(0, i)}\n" for i, lab in enumerate(labels)))
    m = prepare(settings, tsv)
    assert m["labels"] == ["negative", "neutral", "positive"]
    assert m["source"]["kind"] == "labelled" and sum(m["rows"].values()) == 120


def test_headered_gzip_csv_with_polarity(settings, tmp_path):
    path = tmp_path / "head_tail.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("polarity,text\n" + "".join(f'{p},"tweet, {tag(0, i)}"\n' for i, p in enumerate([0, 4] * 30)))
    df = read_labelled(path)
    assert set(df["label"]) == {"negative", "positive"} and df["text"][0] == "tweet, zqa"
    assert prepare(settings, path)["rows"]["train"] > 0


def test_labelled_undecodable_bytes(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"label,text\npositive,fine\nnegative,caf\xe9 latin-1 byte\n")
    with pytest.raises(DataError, match=r"bad.csv: line 3: undecodable bytes"):
        read_labelled(path)


def test_labelled_unknown_labels_and_short_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("label,text\nhappy,a\nsad,b\n")
    with pytest.raises(DataError, match="unknown labels"):
        read_labelled(path)
    path.write_text("id,label,text\n1,positive,a\n2,negative\n")
    with pytest.raises(DataError, match="line 3: expected at least 3 columns"):
        read_labelled(path)


def test_labelled_truncated_gzip(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("label,text\n" + "positive,good\n" * 5000)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated or corrupt gzip|truncated"):
        read_labelled(path)


def test_parquet_schema_roundtrip(prepared):
    df = pd.read_parquet(prepared.processed_dir / "test.parquet")
    assert df["id"].dtype == "int64" and set(df["label"]) == {"negative", "neutral", "positive"}
    assert json.loads((prepared.processed_dir / "manifest.json").read_text())["rows"]["test"] == len(df)
    assert zipfile  # imported for the corrupt-member test
