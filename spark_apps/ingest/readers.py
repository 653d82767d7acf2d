"""Read recorded posts for the replay, leniently: a bad row is reported and skipped, never fatal.

Formats, chosen by content and name:

* a Sentiment140 zip (official ``trainingandtestdata.zip`` or Kaggle's ``sentiment140.zip``): its test file, its
  training file, or both (test first); six columns ``polarity,id,date,query,user,text``, latin-1, HTML entities
  unescaped as in :mod:`ml.data`; the ``query`` is the post's keyword (``NO_QUERY``: none);
* a Sentiment140 CSV (the same six columns, no header), ``.gz`` allowed;
* a CSV or TSV (``.tsv``/``.tab``; ``.gz`` allowed) with a header naming a ``text`` (or ``tweet``) column and
  optionally ``id``, ``created_at``/``date``, ``keyword``/``query``, ``lang``, ``author_id``/``user`` (UTF-8);
* JSON lines (``.jsonl``/``.ndjson``/``.json``, ``.gz`` allowed): objects with ``text`` and optionally ``id``,
  ``created_at``, ``keyword``, ``lang``, ``author_id``; an X stream payload (``{"data": {...}, "matching_rules":
  [...]}``) and the ingest's own landing records work too.

:func:`read_rows` yields ``(index, row, problem)``: ``index`` numbers the data rows from 0 (bad ones included, so
it is stable for a given file), ``row`` is a dict of the fields above or ``None`` with ``problem`` saying why.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import re
import sys
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from ml.data.readers import POLARITY, S140_COLUMNS
from ml.download import TEST_MEMBER, TRAIN_MEMBER
from ml.errors import DataError
from spark_apps.ingest.records import iso_utc, parse_time

csv.field_size_limit(sys.maxsize)
Row = tuple[int, dict[str, Any] | None, str]
S140_PARTS = ("test", "train", "both")
_ESCAPED = re.compile("[\udc80-\udcff]")  # undecodable bytes, as the surrogateescape error handler keeps them
_TZ = {"UTC": 0, "GMT": 0, "PDT": -7, "PST": -8, "EDT": -4, "EST": -5}
_ALIASES = {
    "text": ("text", "tweet", "content", "body"),
    "id": ("id", "tweet_id", "post_id", "uri"),
    "created_at": ("created_at", "date", "timestamp", "time", "createdat"),
    "keyword": ("keyword", "query", "tag"),
    "lang": ("lang", "language"),
    "author_id": ("author_id", "user", "author", "username", "did"),
}


def s140_time(value: str) -> str | None:
    """``Mon Apr 06 22:19:45 PDT 2009`` as ISO-8601 UTC; ``None`` if unparsable."""
    parts = value.split()
    if len(parts) != 6 or parts[4] not in _TZ:
        return parse_time(value)
    try:
        local = datetime.strptime(" ".join(parts[:4] + parts[5:]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return iso_utc((local - timedelta(hours=_TZ[parts[4]])).replace(tzinfo=UTC))


def _s140_row(fields: list[str]) -> tuple[dict[str, Any] | None, str]:
    if len(fields) != len(S140_COLUMNS):
        return None, f"expected {len(S140_COLUMNS)} columns, got {len(fields)}"
    _polarity, tweet_id, date, query, user, text = fields
    text = html.unescape(text)
    if not text.strip():
        return None, "empty text"
    return {"id": tweet_id.strip() or None, "text": text, "created_at": s140_time(date),
            "keyword": None if query == "NO_QUERY" else query, "lang": None, "author_id": user}, ""


def _is_s140(fields: list[str]) -> bool:
    return len(fields) == 6 and fields[0].strip() in POLARITY and fields[1].strip().isdigit()


def _csv_rows(fh: IO[str], start: int, **fmt: Any) -> Iterator[tuple[int, list[str] | None, str]]:
    """csv rows numbered from ``start``; a csv error or undecodable bytes make a bad row, and reading goes on."""
    reader = csv.reader(fh, **fmt)
    index = start
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield index, None, f"malformed csv near line {reader.line_num} ({exc})"
            index += 1
            continue
        if not fields:
            continue  # blank line
        if any(_ESCAPED.search(f) for f in fields):
            yield index, None, f"undecodable bytes near line {reader.line_num} (not UTF-8)"
        else:
            yield index, fields, ""
        index += 1


def _opener(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def _member(zf: zipfile.ZipFile, exact: str, prefix: str) -> str | None:
    names = [n for n in zf.namelist() if not n.endswith("/")]
    return (next((n for n in names if Path(n).name == exact), None)
            or next((n for n in names if Path(n).name.startswith(prefix) and n.endswith(".csv")), None))


def _zip_rows(path: Path, parts: str) -> Iterator[Row]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path.name}: not a readable zip archive ({exc})") from None
    with zf:
        wanted = {"test": [("test", TEST_MEMBER, "testdata")], "train": [("train", TRAIN_MEMBER, "training")]}
        members = wanted["test"] + wanted["train"] if parts == "both" else wanted[parts]
        names = [_member(zf, exact, prefix) for _, exact, prefix in members]
        if not any(names):
            raise DataError(f"{path.name}: no Sentiment140 {parts} csv inside (members: {zf.namelist()})")
        start = 0  # rows are numbered across the members, in the order played
        for name in names:
            if name is None:
                continue
            try:
                with zf.open(name) as raw:
                    fh = io.TextIOWrapper(raw, encoding="latin-1", newline="")
                    following = start
                    for index, fields, problem in _csv_rows(fh, start):
                        yield (index, *_s140_row(fields)) if fields is not None else (index, None, problem)
                        following = index + 1
                    start = following
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{path.name}:{name}: truncated or corrupt archive ({exc})") from None


def _table_row(fields: list[str], columns: dict[str, int]) -> tuple[dict[str, Any] | None, str]:
    row = {key: (fields[i] if i < len(fields) else None) for key, i in columns.items()}
    text = row.get("text")
    if text is None or not text.strip():
        return None, "missing text"
    row["text"] = html.unescape(text)
    row["created_at"] = s140_time(row["created_at"]) if row.get("created_at") else None
    return row, ""


def _table_rows(path: Path) -> Iterator[Row]:
    with _opener(path) as raw:
        head = raw.readline()
        raw.seek(0)
        tsv = ".tsv" in path.suffixes or ".tab" in path.suffixes
        fmt: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
        first = next(csv.reader([head.decode("latin-1")], **fmt), [])
        if _is_s140(first):  # the Sentiment140 layout: latin-1, no header (as ml.data reads it)
            fh = io.TextIOWrapper(raw, encoding="latin-1", newline="")
            for index, fields, problem in _csv_rows(fh, 0, **fmt):
                yield (index, *_s140_row(fields)) if fields is not None else (index, None, problem)
            return
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = _csv_rows(fh, -1, **fmt)
        _, header, problem = next(reader, (0, None, "the file is empty"))
        if header is None:
            raise DataError(f"{path.name}: line 1: {problem}")
        names = [h.strip().lower() for h in header]
        columns = {key: next(names.index(a) for a in aliases if a in names)
                   for key, aliases in _ALIASES.items() if any(a in names for a in aliases)}
        if "text" not in columns:
            raise DataError(f"{path.name}: line 1: no text column (header: {header[:10]}); name it 'text', or use "
                            "a Sentiment140 csv or JSON lines")
        for index, fields, problem in reader:
            yield (index, *_table_row(fields, columns)) if fields is not None else (index, None, problem)


def _json_row(line: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"undecodable bytes (not UTF-8: {exc.reason})"
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if isinstance(obj, dict) and isinstance(obj.get("data"), dict):  # an X stream payload
        rules = obj.get("matching_rules") or [{}]
        obj = {**obj["data"], "keyword": rules[0].get("tag") if isinstance(rules[0], dict) else None}
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, "missing text"
    row = {key: obj.get(key) for key in _ALIASES}
    for key in ("id", "keyword", "lang", "author_id"):
        if row[key] is not None and not isinstance(row[key], str | int):
            row[key] = None
        elif row[key] is not None:
            row[key] = str(row[key])
    row["created_at"] = parse_time(obj.get("created_at"))
    return row, ""


def _json_rows(path: Path) -> Iterator[Row]:
    with _opener(path) as fh:
        index = 0
        for line in fh:
            if not line.strip():
                continue
            yield (index, *_json_row(line))
            index += 1


def read_rows(path: Path, s140_parts: str = "both") -> Iterator[Row]:
    """The rows of a recorded-posts file (see the module's doc for formats).

    Raises:
        DataError: the file is missing, not readable as a whole (a corrupt zip), or has no text column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such replay file: {path}")
    if s140_parts not in S140_PARTS:
        raise DataError(f"unknown Sentiment140 part {s140_parts!r}; choose one of {', '.join(S140_PARTS)}")
    name = path.name.lower().removesuffix(".gz")
    try:
        if zipfile.is_zipfile(path):
            yield from _zip_rows(path, s140_parts)
        elif name.endswith((".jsonl", ".ndjson", ".json")):
            yield from _json_rows(path)
        else:
            yield from _table_rows(path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: truncated or corrupt file ({exc})") from None
