"""Prepare a dataset: read, deduplicate, validate and split it into the parquet files every family trains and is
judged on (``data/processed/<dataset>/``), with a manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data.readers import read_source
from ml.data.split import deduplicate, drop_overlap, leak_free_split
from ml.download import file_digest
from ml.errors import DataError
from ml.predictor import TERNARY_LABELS, atomic_dir
from ml.settings.sections import DEFAULT_DATASET, NEUTRAL_DATASET

if TYPE_CHECKING:
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"


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


# ---------------------------------------------------------------------------------------------- prepare
def prepare(
    settings: Settings,
    source: str | os.PathLike[str] | None = None,
    *,
    validation: str | os.PathLike[str] | None = None,
    test: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    force: bool = False,
) -> dict[str, Any]:
    """Turn a labelled source into validated, leak-free parquet splits and a manifest, in the dataset folder
    ``settings.processed_dir`` (``data/processed/<settings.data.dataset>/``).

    Rows are deduplicated on their text whatever their id (:func:`~ml.data.split.deduplicate`). The test split
    is ``test``, else the official test file of a Sentiment140 zip, else a random share of the source; the
    validation split is ``validation``, else a random share of the rest. Random splits keep every cleaned text
    in one split, and rows whose cleaned text is in a named (or official) validation or test file leave the
    splits below them (test, then validation, then train). Every drop is counted in the manifest.

    Args:
        settings: Platform settings (artifacts root, dataset, seed, validation fraction).
        source: A Sentiment140 zip, a labelled CSV/TSV or a TweetEval text file, as a path or URL. Default: the
            neutral source (``SENTIMENT_NEUTRAL_URL``) for the dataset ``neutral``, else the archive ``data
            download`` fetched.
        validation: A labelled file to validate on instead of a random share of ``source`` (a Sentiment140 zip:
            its training file).
        test: A labelled file to test on instead of the official test file or a random share (a Sentiment140
            zip: its official test file).
        text_column: Text column of a labelled file with a header.
        label_column: Label column of a labelled file with a header.
        force: Rebuild even when the manifest says the same sources and settings were already prepared.

    Returns:
        The manifest.
    """
    source = _local(settings, source) if source else default_source(settings)
    if not source.exists():
        raise DataError(f"no input at {source}: run `python -m ml data download` first or pass a file")
    named = {"validation": _local(settings, validation) if validation else None,
             "test": _local(settings, test) if test else None}
    source_sha = _digest(source)
    params = {"seed": settings.data.seed, "val_fraction": settings.data.val_fraction,
              "text_column": text_column, "label_column": label_column,
              **{k: _digest(v) for k, v in named.items() if v is not None}}
    out_dir = settings.processed_dir
    old = read_manifest(settings, missing_ok=True)
    if old and not force and old["source"]["sha256"] == source_sha and old["params"] == params:
        log.info("%s already prepared (data version %s); nothing to do", source.name, old["data_version"])
        return old

    train_all, official_test, kind = read_source(source, text_column, label_column)
    n_raw = len(train_all)
    train_all, dropped = deduplicate(train_all)
    log.info("%s: %d rows read, drops: %s", source.name, n_raw, dropped)
    checks = validate(train_all, source.name)
    files: dict[str, Any] = {}
    frames: dict[str, pd.DataFrame | None] = {"validation": None, "test": official_test}
    for split, path in named.items():
        if path is not None:
            frame, official, file_kind = read_source(path, text_column, label_column)
            if split == "test" and official is not None:  # a Sentiment140 zip as test file: its official test file
                frame = official
            frames[split], file_drops = deduplicate(frame)
            validate(frames[split], path.name)
            files[split] = {"path": str(path), "name": path.name, "sha256": params[split], "kind": file_kind,
                            "rows_read": len(frame), "dropped": file_drops}
    test_df, val_df = frames["test"], frames["validation"]
    if test_df is None:
        train_all, test_df = leak_free_split(train_all, settings.data.val_fraction / 2, settings.data.seed)
    else:
        if "test" not in files:  # the official test file of a Sentiment140 zip
            n_test = len(test_df)
            test_df, _ = deduplicate(test_df)
            dropped["official_test"] = n_test - len(test_df)
        train_all, dropped["in_test"] = drop_overlap(train_all, test_df)
    if val_df is None:
        train, val_df = leak_free_split(train_all, settings.data.val_fraction, settings.data.seed)
    else:
        val_df, dropped["validation_in_test"] = drop_overlap(val_df, test_df)
        train, dropped["in_validation"] = drop_overlap(train_all, val_df)
        validate(train, source.name)
    frames = {"train": train, "validation": val_df, "test": test_df}
    digest = content_hash(frames)
    manifest = {
        "dataset": settings.data.dataset,
        "source": {"path": str(source), "name": source.name, "sha256": source_sha, "kind": kind},
        **({"files": files} if files else {}),
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
    log.info("prepared %s data version %s: %s", settings.data.dataset, manifest["data_version"], manifest["rows"])
    return manifest


def _local(settings: Settings, ref: str | os.PathLike[str]) -> Path:
    """A local path for a source named by a path or URL (remote files are fetched into ``data/raw``)."""
    from ml.data.fetch import fetch_source

    return fetch_source(ref, settings.raw_dir, retries=settings.data.download_retries)


def _digest(path: Path) -> str:
    """sha256 of a file, or of a TweetEval source's three files."""
    from ml.data.tweeteval import is_tweeteval, tweeteval_files

    if path.is_dir() or is_tweeteval(path):
        return hashlib.sha256("".join(file_digest(p) for p in tweeteval_files(path)).encode()).hexdigest()
    return file_digest(path)


def default_source(settings: Settings) -> Path:
    """What ``prepare`` reads without a source: for the dataset ``neutral``, the neutral source
    (``SENTIMENT_NEUTRAL_URL``, fetched when remote); otherwise the archive ``data download`` verified last, whatever
    its name, else the one named after the configured data URL."""
    from ml.download import archive_name, latest_archive

    if settings.data.dataset == NEUTRAL_DATASET:
        if not settings.data.neutral_url:
            raise DataError("the dataset 'neutral' needs a source: set SENTIMENT_NEUTRAL_URL or pass --source")
        return _local(settings, settings.data.neutral_url)
    return latest_archive(settings.raw_dir) or settings.raw_dir / archive_name(settings.data.url)


def read_manifest(settings: Settings, missing_ok: bool = False) -> dict[str, Any] | None:
    path = settings.processed_dir / MANIFEST
    if not path.exists():
        if missing_ok:
            return None
        hint = "" if settings.data.dataset == DEFAULT_DATASET else f" --dataset {settings.data.dataset}"
        raise DataError(f"no prepared data at {settings.processed_dir}: run `python -m ml data prepare{hint}` first")
    return json.loads(path.read_text())


def load_split(settings: Settings, name: str, max_samples: int | None = None) -> pd.DataFrame:
    """One prepared split; ``max_samples`` takes a seeded, stratified sample of it."""
    import pandas as pd

    if name not in SPLITS:
        raise DataError(f"unknown split {name!r}; choose one of {SPLITS}")
    path = settings.processed_dir / f"{name}.parquet"
    if not path.exists():
        raise DataError(f"no {name} split at {path}: run `python -m ml data prepare` first (dataset "
                        f"{settings.data.dataset!r})")
    df = pd.read_parquet(path)
    if max_samples and max_samples < len(df):
        frac = max_samples / len(df)
        df = (df.groupby("label", group_keys=False)
                .sample(frac=frac, random_state=settings.data.seed)
                .sample(frac=1.0, random_state=settings.data.seed)
                .reset_index(drop=True))
    return df
