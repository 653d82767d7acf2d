"""Reading labelled tweets: the Sentiment140 archive (six quoted columns, no header, latin-1) and generic labelled
CSV/TSV files (2 or 3 classes); every bad input fails with the file and line."""

from __future__ import annotations

import csv
import gzip
import html
import io
import itertools
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.download import TEST_MEMBER, TRAIN_MEMBER
from ml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

POLARITY = {"0": "negative", "2": "neutral", "4": "positive"}
S140_COLUMNS = ("polarity", "id", "date", "query", "user", "text")
csv.field_size_limit(sys.maxsize)


def _rows(fh: io.TextIOBase, where: str, **fmt: Any) -> Iterator[tuple[int, list[str]]]:
    """csv rows with their line numbers; decoding and csv errors become a DataError naming file and line."""
    reader = csv.reader(fh, strict=True, **fmt)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: line {reader.line_num + 1}: undecodable bytes ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{where}: line {reader.line_num}: malformed csv ({exc})") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DataError(f"{where}: truncated or corrupt archive near line {reader.line_num} ({exc})") from None
        yield reader.line_num, row


def parse_sentiment140(fh: io.TextIOBase, where: str, allowed: set[str]) -> dict[str, list]:
    """Parse one Sentiment140 csv strictly into columns; labels as names."""
    from tqdm import tqdm

    cols: dict[str, list] = {"id": [], "date": [], "user": [], "text": [], "label": []}
    rows = tqdm(_rows(fh, where), desc=f"parsing {where.rsplit(':', 1)[-1]}", unit=" rows", mininterval=1.0,
                disable=None, leave=False)
    for line, row in rows:
        if len(row) != 6:
            raise DataError(f"{where}: line {line}: expected 6 columns ({','.join(S140_COLUMNS)}), got {len(row)}")
        polarity, tweet_id, date, _query, user, text = row
        if polarity not in allowed:
            raise DataError(f"{where}: line {line}: unknown polarity {polarity!r} (expected one of {sorted(allowed)})")
        if not tweet_id.isdigit():
            raise DataError(f"{where}: line {line}: id {tweet_id!r} is not an integer")
        if "\x00" in text:
            raise DataError(f"{where}: line {line}: NUL byte in text (binary data, not a tweet csv)")
        cols["id"].append(int(tweet_id))
        cols["date"].append(date)
        cols["user"].append(user)
        cols["text"].append(html.unescape(text))
        cols["label"].append(POLARITY[polarity])
    if not cols["id"]:
        raise DataError(f"{where}: the file is empty")
    return cols


def _member(zf: zipfile.ZipFile, exact: str, prefix: str) -> str | None:
    names = [n for n in zf.namelist() if not n.endswith("/")]
    for n in names:
        if Path(n).name == exact:
            return n
    for n in names:
        if Path(n).name.startswith(prefix) and n.endswith(".csv"):
            return n
    return None


def read_sentiment140_zip(path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The training frame and (when present) the official test frame of a Sentiment140 zip."""
    import pandas as pd

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path.name}: not a readable zip archive ({exc}); it may be truncated") from None
    with zf:
        train_name = _member(zf, TRAIN_MEMBER, "training")
        if train_name is None:
            raise DataError(f"{path.name}: no training csv inside (members: {zf.namelist()})")
        test_name = _member(zf, TEST_MEMBER, "testdata")
        frames = []
        for name, allowed in ((train_name, {"0", "2", "4"}), (test_name, {"0", "2", "4"})):
            if name is None:
                frames.append(None)
                continue
            try:
                with zf.open(name) as raw:
                    fh = io.TextIOWrapper(raw, encoding="latin-1", newline="")
                    frames.append(pd.DataFrame(parse_sentiment140(fh, f"{path.name}:{name}", allowed)))
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{path.name}:{name}: truncated or corrupt archive ({exc})") from None
    return frames[0], frames[1]


_LABEL_ALIASES = {
    "negative": "negative", "neg": "negative", "positive": "positive", "pos": "positive",
    "neutral": "neutral", "neu": "neutral", "objective": "neutral",
}


def _label_map(values: set[str], where: str) -> dict[str, str]:
    lowered = {v: v.strip().lower() for v in values}
    if all(v in _LABEL_ALIASES for v in lowered.values()):
        return {v: _LABEL_ALIASES[low] for v, low in lowered.items()}
    numeric = set(lowered.values())
    for scheme in (
        {"0": "negative", "4": "positive", "2": "neutral"},
        {"0": "negative", "1": "positive"},
        {"-1": "negative", "0": "neutral", "1": "positive"},
    ):
        if numeric <= set(scheme):
            return {v: scheme[low] for v, low in lowered.items()}
    raise DataError(
        f"{where}: unknown labels {sorted(values)[:10]}; use negative/neutral/positive, 0/2/4 (Sentiment140), "
        "0/1 or -1/0/1"
    )


def read_labelled(path: Path, text_column: str = "text", label_column: str = "label") -> pd.DataFrame:
    """Read a generic labelled CSV/TSV (``.gz`` allowed), strict UTF-8.

    With a header, the text column is ``text_column`` (or ``tweet``) and the label column ``label_column`` (or
    ``polarity``/``sentiment``). Without one, three columns mean ``id, label, text`` (SemEval layout) and two
    mean ``label, text``.
    """
    import pandas as pd

    if not path.is_file():
        raise DataError(f"no such file: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    delimiter = "\t" if ".tsv" in path.suffixes or ".tab" in path.suffixes else ","
    ids: list[str] = []
    texts: list[str] = []
    raw_labels: list[str] = []
    try:
        with opener(path, "rb") as raw:
            data = raw.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: truncated or corrupt gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path.name}: line {line}: undecodable bytes, not UTF-8 ({exc.reason})") from None
    del data
    with io.StringIO(text, newline="") as fh:
        rows = _rows(fh, path.name, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else 0)
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path.name}: the file is empty")
        _, header = first
        names = [h.strip().lower() for h in header]
        text_names = (text_column.lower(), "tweet", "text")
        label_names = (label_column.lower(), "polarity", "sentiment", "label")
        if any(n in names for n in text_names) and any(n in names for n in label_names):
            ti = next(names.index(n) for n in text_names if n in names)
            li = next(names.index(n) for n in label_names if n in names)
            ii = names.index("id") if "id" in names else None
            body = rows
        else:
            width = len(header)
            if width not in (2, 3):
                raise DataError(f"{path.name}: line 1: no header with '{text_column}' and '{label_column}', "
                                f"and {width} columns is neither 'label,text' nor 'id,label,text'")
            ii, li, ti = (0, 1, 2) if width == 3 else (None, 0, 1)
            body = itertools.chain([first], rows)
        need = max(i for i in (ii, li, ti) if i is not None) + 1
        for line, row in body:
            if len(row) < need:
                raise DataError(f"{path.name}: line {line}: expected at least {need} columns, got {len(row)}")
            ids.append(row[ii] if ii is not None else str(len(ids)))
            raw_labels.append(row[li])
            texts.append(html.unescape(row[ti]))
    if not texts:
        raise DataError(f"{path.name}: no data rows")
    mapping = _label_map(set(raw_labels), path.name)
    return pd.DataFrame({"id": ids, "text": texts, "label": [mapping[v] for v in raw_labels]})


def _looks_like_sentiment140_csv(path: Path) -> bool:
    """A headerless csv whose first field is a quoted Sentiment140 polarity (the official test file's layout)."""
    if path.suffix != ".csv":
        return False
    with open(path, "rb") as fh:
        head = fh.read(64)
    return head[:5] in (b'"0","', b'"2","', b'"4","')


def read_source(path: Path, text_column: str = "text",
                label_column: str = "label") -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Any labelled source the platform reads: ``(rows, official test rows or None, kind)``.

    * a Sentiment140 zip (``kind`` ``sentiment140``; the official test file, when inside, is the second frame);
    * a Sentiment140 csv (six quoted columns, no header, latin-1; e.g. the official test file alone);
    * the TweetEval layout (``<split>_text.txt`` with its labels and mapping beside it, or its folder);
    * a generic labelled CSV/TSV (:func:`read_labelled`).
    """
    import pandas as pd

    from ml.data.tweeteval import is_tweeteval, read_tweeteval

    path = Path(path)
    if path.is_dir() or is_tweeteval(path):
        return read_tweeteval(path), None, "tweeteval"
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if zipfile.is_zipfile(path) or path.suffix == ".zip":
        train, test = read_sentiment140_zip(path)
        return train, test, "sentiment140"
    if _looks_like_sentiment140_csv(path):
        with open(path, encoding="latin-1", newline="") as fh:
            cols = parse_sentiment140(fh, path.name, set(POLARITY))
        return pd.DataFrame(cols), None, "sentiment140"
    return read_labelled(path, text_column, label_column), None, "labelled"
