"""Parse, validate and split the data every model family trains and is judged on.

Two inputs are accepted:

* the Sentiment140 archive (official ``trainingandtestdata.zip`` or Kaggle's ``sentiment140.zip``): six quoted
  columns ``polarity,id,date,query,user,text``, no header, latin-1, HTML entities escaped;
* a generic labelled CSV/TSV (optionally gzipped) with a text and a label column, 2 or 3 classes.

Output, in ``<home>/data/processed/`` (written atomically as a whole)::

    train.parquet, validation.parquet, test.parquet   columns: id, text, label (+ date, user for Sentiment140)
    manifest.json                                     counts, seed, drops, content hash = data version

Labels are stored as names: ``negative``, ``neutral``, ``positive``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import itertools
import json
import logging
import sys
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.download import TEST_MEMBER, TRAIN_MEMBER, file_digest
from ml.errors import DataError
from ml.predictor import TERNARY_LABELS, atomic_dir

if TYPE_CHECKING:
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
POLARITY = {"0": "negative", "2": "neutral", "4": "positive"}
S140_COLUMNS = ("polarity", "id", "date", "query", "user", "text")
csv.field_size_limit(sys.maxsize)


# --------------------------------------------------------------------------------------------- parsing
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


# ------------------------------------------------------------------------------------------ cleaning up
def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop exact duplicates, every row of an id seen with conflicting labels, repeated ids and empty texts."""
    counts: dict[str, int] = {}
    n = len(df)
    df = df.drop_duplicates()
    counts["exact_duplicates"] = n - len(df)
    n_labels = df.groupby("id")["label"].transform("nunique")
    conflicting = n_labels > 1
    counts["conflicting_id_rows"] = int(conflicting.sum())
    counts["conflicting_ids"] = int(df.loc[conflicting, "id"].nunique())
    df = df[~conflicting]
    n = len(df)
    df = df.drop_duplicates(subset="id", keep="first")
    counts["repeated_ids"] = n - len(df)
    empty = df["text"].str.strip() == ""
    counts["empty_text"] = int(empty.sum())
    return df[~empty], counts


def validate(df: pd.DataFrame, where: str, *, min_share: float = 0.01) -> dict[str, Any]:
    """Check schema, labels, nulls and balance; raise DataError on anything a model must not train on."""
    missing = {"id", "text", "label"} - set(df.columns)
    if missing:
        raise DataError(f"{where}: missing columns {sorted(missing)}")
    if df[["id", "text", "label"]].isna().any().any():
        raise DataError(f"{where}: null values in id/text/label")
    unknown = set(df["label"].unique()) - set(TERNARY_LABELS)
    if unknown:
        raise DataError(f"{where}: unknown labels {sorted(unknown)}")
    counts = df["label"].value_counts().to_dict()
    if len(counts) < 2:
        raise DataError(f"{where}: only one class ({list(counts)}) - a classifier needs at least two")
    shares = {k: v / len(df) for k, v in counts.items()}
    rare = [k for k, s in shares.items() if s < min_share]
    if rare:
        log.warning("%s: classes %s hold under %.0f%% of rows", where, rare, 100 * min_share)
    return {"label_counts": {k: int(v) for k, v in sorted(counts.items())},
            "min_class_share": round(min(shares.values()), 4)}


def content_hash(frames: dict[str, pd.DataFrame]) -> str:
    """A hash of the splits' ids, labels and texts in order: identical data, identical hash."""
    h = hashlib.sha256()
    for name in SPLITS:
        df = frames[name]
        h.update(name.encode())
        for col in ("id", "label", "text"):
            h.update("\x1f".join(map(str, df[col].tolist())).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    if len(df) < 10:
        raise DataError(f"only {len(df)} usable rows: too few to split")
    a, b = train_test_split(df, test_size=fraction, stratify=df["label"], random_state=seed, shuffle=True)
    return a.reset_index(drop=True), b.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- prepare
def prepare(
    settings: Settings,
    source: Path | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    force: bool = False,
) -> dict[str, Any]:
    """Turn a downloaded archive (or a labelled file) into validated parquet splits and a manifest.

    Args:
        settings: Platform settings (artifacts root, seed, validation fraction).
        source: A Sentiment140 zip or a labelled CSV/TSV. Default: the archive ``data download`` fetched.
        text_column: Text column of a labelled file with a header.
        label_column: Label column of a labelled file with a header.
        force: Rebuild even when the manifest says the same source and settings were already prepared.

    Returns:
        The manifest.
    """
    source = Path(source) if source else default_source(settings)
    if not source.is_file():
        raise DataError(f"no input at {source}: run `python -m ml data download` first or pass a file")
    source_sha = file_digest(source)
    params = {"seed": settings.data.seed, "val_fraction": settings.data.val_fraction,
              "text_column": text_column, "label_column": label_column}
    out_dir = settings.processed_dir
    old = read_manifest(settings, missing_ok=True)
    if old and not force and old["source"]["sha256"] == source_sha and old["params"] == params:
        log.info("%s already prepared (data version %s); nothing to do", source.name, old["data_version"])
        return old

    is_zip = zipfile.is_zipfile(source) or source.suffix == ".zip"
    if is_zip:
        train_all, test = read_sentiment140_zip(source)
        kind = "sentiment140"
    else:
        train_all, test = read_labelled(source, text_column, label_column), None
        kind = "labelled"
    n_raw = len(train_all)
    train_all, dropped = deduplicate(train_all)
    log.info("%s: %d rows read, drops: %s", source.name, n_raw, dropped)
    checks = validate(train_all, source.name)
    if test is None:
        train_all, test = _split(train_all, settings.data.val_fraction / 2, settings.data.seed)
    else:
        test = test.reset_index(drop=True)
    train, validation = _split(train_all, settings.data.val_fraction, settings.data.seed)
    frames = {"train": train, "validation": validation, "test": test}
    digest = content_hash(frames)
    manifest = {
        "source": {"path": str(source), "name": source.name, "sha256": source_sha, "kind": kind},
        "params": params,
        "rows_read": n_raw,
        "dropped": dropped,
        "rows": {k: len(v) for k, v in frames.items()},
        "label_counts": {k: {lab: int(c) for lab, c in sorted(v["label"].value_counts().items())}
                         for k, v in frames.items()},
        "labels": sorted(set(train["label"]), key=TERNARY_LABELS.index),
        "validation": checks,
        "content_hash": digest,
        "data_version": digest[:12],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with atomic_dir(out_dir) as tmp:
        for name, df in frames.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("prepared data version %s: %s", manifest["data_version"], manifest["rows"])
    return manifest


def default_source(settings: Settings) -> Path:
    """What ``prepare`` reads without a source: the archive ``data download`` verified last, whatever its name,
    else the one named after the configured data URL."""
    from ml.download import archive_name, latest_archive

    return latest_archive(settings.raw_dir) or settings.raw_dir / archive_name(settings.data.url)


def read_manifest(settings: Settings, missing_ok: bool = False) -> dict[str, Any] | None:
    path = settings.processed_dir / MANIFEST
    if not path.exists():
        if missing_ok:
            return None
        raise DataError(f"no prepared data at {settings.processed_dir}: run `python -m ml data prepare` first")
    return json.loads(path.read_text())


def load_split(settings: Settings, name: str, max_samples: int | None = None) -> pd.DataFrame:
    """One prepared split; ``max_samples`` takes a seeded, stratified sample of it."""
    import pandas as pd

    if name not in SPLITS:
        raise DataError(f"unknown split {name!r}; choose one of {SPLITS}")
    path = settings.processed_dir / f"{name}.parquet"
    if not path.exists():
        raise DataError(f"no {name} split at {path}: run `python -m ml data prepare` first")
    df = pd.read_parquet(path)
    if max_samples and max_samples < len(df):
        frac = max_samples / len(df)
        df = (df.groupby("label", group_keys=False)
                .sample(frac=frac, random_state=settings.data.seed)
                .sample(frac=1.0, random_state=settings.data.seed)
                .reset_index(drop=True))
    return df
